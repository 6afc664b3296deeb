#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# install.package: `cmake --install` into a temporary prefix gives what a C
# programmer outside the tree needs, and it works:
#   - libpunch.so with its SONAME and versioned links, exporting punch_* and
#     nothing else: exactly the functions the public headers declare;
#   - the programs, which run from the prefix;
#   - examples/punch_chat.c built four times outside the tree: pkg-config
#     (libpunch.so and libpunch.a) and find_package(punch) (punch::punch and
#     punch::punch_static); each runs a line each way through the installed
#     punchd (tests/interop/example.sh, in a network namespace of its own);
#   - the API reference: a man page (section 3) per exported function;
#   - docs/tutorial.md's code, built against libpunch.so, run the same way.
#
# usage: install.sh BUILD_DIR SOURCE_DIR
# CC and CONSUMER_FLAGS (e.g. the sanitizers libpunch was built with) are
# used for the programs built outside the tree.
set -u
build=$1 src=$(cd "$2" && pwd)
cc=${CC:-cc} flags="-Wall -Wextra -Werror ${CONSUMER_FLAGS:-}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok: $*"; }

prefix=$tmp/prefix
cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" 2>&1 ||
    fail "cmake --install: $(cat "$tmp/install.log")"
so=$(find "$prefix" -name libpunch.so -print -quit)
[ -n "$so" ] || fail "no libpunch.so under $prefix: $(cat "$tmp/install.log")"
libdir=$(dirname "$so")

check_library() {
    local soname real
    soname=$(readelf -d "$so" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
    [[ $soname =~ ^libpunch\.so\.[0-9]+$ ]] || fail "SONAME is '$soname', want libpunch.so.N"
    [ "$(readlink "$so")" = "$soname" ] || fail "libpunch.so links to '$(readlink "$so")', not $soname"
    real=$(readlink "$libdir/$soname")
    [[ $real =~ ^$soname\.[0-9]+\.[0-9]+$ ]] || fail "$soname links to '$real', want $soname.MINOR.PATCH"
    [ -f "$libdir/libpunch.a" ] || fail "no libpunch.a beside libpunch.so"
    [ -f "$prefix/include/punch/punch.h" ] || fail "no include/punch/punch.h"
    pass "libpunch.so -> $soname -> $real, libpunch.a, include/punch/punch.h"
}

# Only punch_* leaves the library: what the headers promise, and no more.
check_exports() {
    nm -D --defined-only "$so" | awk '{print $NF}' | sort -u >"$tmp/exported"
    local n others missing extra
    n=$(wc -l <"$tmp/exported")
    others=$(grep -v '^punch_' "$tmp/exported" | head -5 | tr '\n' ' ')
    [ -z "$others" ] || fail "libpunch.so exports symbols outside punch_*: $others"
    # Declared: a punch_ name right before "(", on a line that is no typedef.
    cat "$prefix"/include/punch/*.h | grep -v '^[[:space:]]*typedef' |
        grep -oE '\bpunch_[a-z0-9_]+\(' | tr -d '(' | sort -u >"$tmp/declared"
    missing=$(comm -23 "$tmp/declared" "$tmp/exported" | tr '\n' ' ')
    [ -z "$missing" ] || fail "declared in include/punch but not exported: $missing"
    extra=$(comm -13 "$tmp/declared" "$tmp/exported" | head -5 | tr '\n' ' ')
    [ -z "$extra" ] || fail "exported but declared in no public header (internal): $extra"
    pass "nm -D: $n symbols, all punch_*: exactly the $(wc -l <"$tmp/declared") functions include/punch/*.h declares"
}

# The API reference: a man page in section 3 for every exported function.
check_man3() {
    local f missing=
    for f in $(cat "$tmp/exported") libpunch; do
        [ -f "$prefix/share/man/man3/$f.3" ] || missing="$missing $f"
    done
    [ -z "$missing" ] || fail "no man page in share/man/man3 for:$missing"
    MANPATH=$prefix/share/man man -w punch_driver_new >/dev/null 2>&1 ||
        [ ! -x "$(command -v man)" ] || fail "man -w punch_driver_new finds no page in the prefix"
    pass "share/man/man3: libpunch(3) and a page for each of the $(wc -l <"$tmp/exported") exported functions"
}

check_programs() {
    local p
    for p in bin/punch sbin/punchd sbin/punch-nat; do
        "$prefix/$p" --version >"$tmp/version" 2>&1 || fail "$p --version: $(cat "$tmp/version")"
    done
    pass "bin/punch, sbin/punchd, sbin/punch-nat run ($(cat "$tmp/version"))"
}

# build_pkg_config NAME shared|static: punch_chat with cc and punch.pc.
build_pkg_config() {
    local libs
    export PKG_CONFIG_PATH=$libdir/pkgconfig
    libs=$(pkg-config --libs punch) || fail "pkg-config --libs punch"
    if [ "$2" = static ]; then
        libs=$(pkg-config --static --libs punch) || fail "pkg-config --static --libs punch"
        libs=${libs/-lpunch /-l:libpunch.a }
    fi
    # shellcheck disable=SC2046,SC2086 # pkg-config's words are separate flags
    $cc -std=c11 $flags $(pkg-config --cflags punch) \
        "$src/examples/punch_chat.c" -o "$tmp/$1" $libs -Wl,-rpath,"$libdir" \
        >"$tmp/cc.log" 2>&1 || fail "cc with pkg-config ($2): $(cat "$tmp/cc.log")"
}

# build_cmake NAME TARGET: examples/ as a project of its own, find_package(punch).
build_cmake() {
    cmake -S "$src/examples" -B "$tmp/build-$1" -DCMAKE_PREFIX_PATH="$prefix" \
        -DCMAKE_C_COMPILER="$cc" -DCMAKE_C_FLAGS="$flags" -DPUNCH_EXAMPLES_LINK="$2" \
        >"$tmp/cmake.log" 2>&1 || fail "find_package(punch) ($2): $(cat "$tmp/cmake.log")"
    cmake --build "$tmp/build-$1" >"$tmp/cmake.log" 2>&1 ||
        fail "building against $2: $(cat "$tmp/cmake.log")"
    cp "$tmp/build-$1/punch_chat" "$tmp/$1"
}

# check_linked NAME shared|static: which libpunch the program uses.
check_linked() {
    local where
    where=$(ldd "$tmp/$1" | awk '$1 ~ /^libpunch\.so/ {print $3}')
    if [ "$2" = shared ]; then
        [ "$where" = "$libdir/$(readlink "$so")" ] || fail "$1 uses libpunch from '$where', not $libdir"
    else
        [ -z "$where" ] || fail "$1 should hold libpunch.a, but loads $where"
        nm "$tmp/$1" | grep -q ' T punch_agent_new$' || fail "$1 lacks punch_agent_new"
    fi
}

# run_chat NAME: a line each way through the installed punchd.
run_chat() {
    PUNCHD=$prefix/sbin/punchd PUNCH_CHAT=$tmp/$1 bash "$src/tests/interop/example.sh" \
        >"$tmp/run.log" 2>&1
    local rc=$?
    [ "$rc" = 77 ] && return 77
    [ "$rc" = 0 ] || fail "$1: $(cat "$tmp/run.log")"
}

# docs/tutorial.md's code blocks, in order, are one program: built outside
# the tree against the installed libpunch.so, it carries a line each way
# through the installed punchd, and the key file it wrote is one that the
# installed punch reads (the same public key).
build_tutorial() {
    awk '/^```c$/{on=1;next} /^```$/{on=0} on' "$src/docs/tutorial.md" >"$tmp/tutorial_chat.c"
    [ -s "$tmp/tutorial_chat.c" ] || fail "no C code in docs/tutorial.md"
    export PKG_CONFIG_PATH=$libdir/pkgconfig
    # shellcheck disable=SC2046 # pkg-config's words are separate flags
    $cc -std=c11 $flags -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
        "$tmp/tutorial_chat.c" -o "$tmp/tutorial_chat" $(pkg-config --cflags --libs punch) \
        -Wl,-rpath,"$libdir" >"$tmp/cc.log" 2>&1 || fail "docs/tutorial.md does not build: $(cat "$tmp/cc.log")"
}

run_tutorial() {
    mkdir -p "$tmp/tutorial" && cd "$tmp/tutorial" || fail "no folder for the tutorial"
    PUNCHD=$prefix/sbin/punchd PUNCH_CHAT=$tmp/tutorial_chat bash "$src/tests/interop/example.sh" \
        >"$tmp/run.log" 2>&1
    local rc=$? want got
    cd - >/dev/null || true
    [ "$rc" = 77 ] && return 77
    [ "$rc" = 0 ] || fail "docs/tutorial.md's program: $(cat "$tmp/run.log")"
    [ "$(stat -c %a "$tmp/tutorial/bob.key")" = 600 ] || fail "the tutorial's bob.key is not mode 600"
    want=$("$prefix/bin/punch" keygen --public "$tmp/tutorial/bob.key" 2>&1) ||
        fail "punch keygen --public of the tutorial's key: $want"
    # Started again, bob loads his key and says it (no server answers at
    # 127.0.0.1:9, the discard port: a second is enough).
    got=$(cd "$tmp/tutorial" && timeout 1 "$tmp/tutorial_chat" 127.0.0.1 9 bob 2>&1 |
          sed -n 's/^my public key: //p')
    [ "$got" = "$want" ] || fail "the tutorial's bob says his key is '$got', punch says $want"
    pass "docs/tutorial.md: built against libpunch.so, a line each way through punchd, its key file read by punch ($want)"
}

check_library
check_exports
check_man3
check_programs
build_pkg_config chat-pc-shared shared
build_pkg_config chat-pc-static static
build_cmake chat-cmake-shared punch::punch
build_cmake chat-cmake-static punch::punch_static
build_tutorial
skipped=0
for kind in pc-shared pc-static cmake-shared cmake-static; do
    check_linked "chat-$kind" "${kind#*-}"
    run_chat "chat-$kind" || skipped=1
done
run_tutorial || skipped=1
if [ "$skipped" = 1 ]; then
    echo "SKIP: the four punch_chat builds link, but running them needs root (network namespace)"
    exit 77
fi
pass "punch_chat built outside the tree with pkg-config and find_package, against libpunch.so and libpunch.a: each carried a line each way through the installed punchd"
