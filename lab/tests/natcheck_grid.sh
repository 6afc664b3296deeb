#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `punch natcheck`, run on alice in the lab against punchd --alt on the
# server, names the behaviour of every NAT preset on both backends (issue 3).
# On the kernel backend coturn's turnutils_natdiscovery must agree with it.
# Against a second punchd on one address (port 4478, its second port 4479:
# punchd's default, issue 10) the mapping comes from the two ports and must
# be the same (no preset here maps per address alone, which would look
# endpoint-independent there), the filtering unknown.
. "$(dirname "$0")/lib.sh"
B=${PUNCH_BUILD_DIR:?}
PUNCH=$B/apps/punch PUNCHD=$B/apps/punchd
[ -x "$PUNCH" ] && [ -x "$PUNCHD" ] && [ -x "$B/apps/punch-nat" ] || fail "build punch, punchd and punch-nat first"
command -v turnutils_natdiscovery >/dev/null || fail "turnutils_natdiscovery missing (apt-get install coturn)"

# backend preset -> "nat mapping filtering port_allocation hairpin"
# Presets that hairpin (p2p, cgnat) run with --hairpin-a on, the others off.
grid=(
    "punch-nat p2p                  true eim  eif  preserve   true"
    "punch-nat full-cone            true eim  eif  preserve   false"
    "punch-nat restricted-cone      true eim  adf  preserve   false"
    "punch-nat port-restricted-cone true eim  apdf preserve   false"
    "punch-nat symmetric-sequential true apdm apdf sequential false"
    "punch-nat symmetric-random     true apdm apdf random     false"
    "punch-nat cgnat                true eim  apdf random     true"
    "punch-nat basic-nat            true eim  eif  preserve   false"
    "punch-nat firewall             false eim apdf preserve   true"
    "kernel port-restricted-cone    true eim  apdf preserve   false"
    "kernel symmetric-random        true apdm apdf random     false"
    "kernel basic-nat               true eim  eif  preserve   false"
    "kernel firewall                false eim apdf preserve   true"
)
field() { grep -o "\"$2\":[^,}]*" <<<"$1" | cut -d: -f2- | tr -d '"'; }
# What turnutils_natdiscovery says, in RFC 4787 words.
discovery_words() {
    sed -n 's/^NAT with \(.*\)!$/\1/p' <<<"$1" | sed \
        -e 's/^Endpoint Independent Mapping$/eim/' -e 's/^Address Dependent Mapping$/adm/' \
        -e 's/^Address and Port Dependent Mapping$/apdm/' \
        -e 's/^Endpoint Independent Filtering$/eif/' -e 's/^Address Dependent Filtering$/adf/' \
        -e 's/^Address and Port Dependent Filtering$/apdf/' | tr '\n' ' '
}

passed=0
for row in "${grid[@]}"; do
    read -r backend preset nat mapping filtering ports hairpin <<<"$row"
    hp=off; [ "$hairpin" = true ] && [ "$nat" = true ] && hp=on
    lab up different-nats --backend "$backend" --nat-a "$preset" --hairpin-a "$hp" >/dev/null
    lab exec server -- "$PUNCHD" --listen 198.51.100.1:3478 --alt 198.51.100.2 \
        --events "$TMP/punchd.ev" 2>"$TMP/punchd.err" </dev/null &
    lab exec server -- "$PUNCHD" --listen 198.51.100.1:4478 \
        --events "$TMP/punchd1.ev" 2>"$TMP/punchd1.err" </dev/null &
    wait_for "$TMP/punchd.ev"
    wait_for "$TMP/punchd1.ev"
    # The checks wait out what should not come: they run side by side
    # (each from ports of its own), and turnutils_natdiscovery with them.
    lab exec alice -- "$PUNCH" --server 198.51.100.1 natcheck --json --wait 1000 >"$TMP/two" 2>"$TMP/two.err" & two_pid=$!
    lab exec alice -- "$PUNCH" --server 198.51.100.1:4478 natcheck --json --wait 1000 >"$TMP/one" 2>"$TMP/one.err" & one_pid=$!
    discovery_pid=
    if [ "$backend" = kernel ] && [ "$nat" = true ]; then
        lab exec alice -- timeout 60 turnutils_natdiscovery -m -f 198.51.100.1 >"$TMP/discovery" 2>&1 & discovery_pid=$!
    fi
    wait "$two_pid" || fail "$backend $preset: natcheck failed: $(cat "$TMP/two.err")"
    wait "$one_pid" || fail "$backend $preset: natcheck against one address failed: $(cat "$TMP/one.err")"
    out=$(cat "$TMP/two") one=$(cat "$TMP/one")
    got="$(field "$out" nat) $(field "$out" mapping) $(field "$out" filtering) $(field "$out" port_allocation) $(field "$out" hairpin)"
    want="$nat $mapping $filtering $ports $hairpin"
    [ "$got" = "$want" ] || fail "$backend $preset: natcheck says '$got', want '$want' ($out)"
    if [ "$ports" = sequential ]; then
        [ "$(field "$out" port_step)" = 1 ] || fail "$backend $preset: step $(field "$out" port_step), want 1"
    fi
    got="$(field "$one" nat) $(field "$one" mapping) $(field "$one" filtering) $(field "$one" port_allocation) $(field "$one" hairpin) $(field "$one" second_port)"
    [ "$got" = "$nat $mapping unknown $ports $hairpin 4479" ] ||
        fail "$backend $preset: natcheck against one address says '$got', want '$nat $mapping unknown $ports $hairpin 4479' ($one)"
    line="$backend $preset: $want (one address: $mapping from ports 4478 and 4479)"
    if [ -n "$discovery_pid" ]; then
        wait "$discovery_pid" || fail "$backend $preset: turnutils_natdiscovery failed: $(cat "$TMP/discovery")"
        d=$(cat "$TMP/discovery")
        words=$(discovery_words "$d")
        [ "$words" = "$mapping $filtering " ] ||
            fail "$backend $preset: turnutils_natdiscovery says '$words', natcheck '$mapping $filtering'"
        line="$line (turnutils_natdiscovery agrees)"
    fi
    ok "$line"
    passed=$((passed + 1))
    lab down >/dev/null
    rm -f "$TMP/punchd.ev" "$TMP/punchd1.ev"
done
ok "$passed presets x backends named correctly"
