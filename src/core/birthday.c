/* SPDX-License-Identifier: MIT */
/*
 * Many-port probing ("birthday", issue 5) for a NAT that gives each
 * destination a random port: the side behind it opens BIRTHDAY_SOCKETS
 * more sockets and sends from each to the peer's public endpoint (with
 * the low TTL: it only has to open its own NAT); the peer, whose NAT maps
 * endpoint-independently, sends BIRTHDAY_PROBES probes to random ports of
 * that public address. With 256 of ~64k ports open, 1024 probes hit one
 * with probability 1 - (1 - 256/64512)^1024, about 98 %. Paced at
 * BIRTHDAY_BATCH per BIRTHDAY_TICK_MS, within BIRTHDAY_BUDGET_MS; the first
 * answer wins and the other sockets are closed (PUNCH_EVENT_SOCKETS).
 */
#include "core/agent_internal.h"

#define BIRTHDAY_BUDGET_MS 10000
#define BIRTHDAY_PORT_MIN  1024

static bool random_ports(uint8_t mapping, uint16_t step)
{
    return mapping >= PUNCH_MSG_NAT_ADM && step == 0;
}

/* ---- many-port probing when a NAT's behaviour is unknown ----
 * (no second server address or port, or its answers were lost). The
 * agent does not give up: when ordinary hole punching has found nothing
 * after BIRTHDAY_UNKNOWN_AFTER_MS, it takes the side of many-port probing
 * that the known behaviour leaves, guessing the unknown one: an unknown
 * NAT facing a cone is taken for one with random ports (many sockets),
 * facing random ports for a cone (many ports); both unknown, the side
 * whose NAT changed its port opens the sockets (many_sockets_guess). It
 * costs what a known case costs (§6.2: BIRTHDAY_PROBES within
 * BIRTHDAY_BUDGET_MS). */
#define BIRTHDAY_UNKNOWN_AFTER_MS (PROBE_FAST_COUNT * PROBE_FAST_MS)

/* Against a conntrack trap, a round is this long plus the guard (the
 * sockets open over 160 ms, the probes go over the next 640 ms after the
 * guard, an answer takes a round trip), and then the sides swap: Linux
 * gives a trapped host's later flows the trapped port too (src/nat/trap.c),
 * so the probes must come from the side whose NAT holds no trap, and
 * neither side knows which that is. Only every other round can work, and
 * one misses all 256 sockets with its 1024 probes 1.7 % of the time
 * ((1 - 256/64512)^1024): with one swap, 5 of 100 seeds of
 * test_agent_wild's trap world stayed on the relay for good. Three swaps
 * (two rounds each way) leave 0.03 %. */
#define BIRTHDAY_TRAP_ROUND_MS 1000
#define BIRTHDAY_TRAP_SWAPS 3

/* Did the NAT keep the port of one of the sockets behind it (pub as the
 * server saw it, priv the private endpoints)? */
static bool port_kept(const punch_addr *pub, const punch_addr *priv, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (priv[i].port == pub->port)
            return true;
    return false;
}

/* Both behaviours unknown: do we open the sockets? A NAT that kept its
 * host's port (as Linux's masquerade does whenever it can) is taken for
 * the cone, one that changed it for the one with random ports; when that
 * tells them apart not, the side that was asked (the Noise initiator). */
static bool many_sockets_guess(const punch_agent *a, const peer *p, const punch_msg *m)
{
    bool me_kept = port_kept(&a->public_addr, a->cfg.local, a->cfg.n_local);
    size_t peer_n = m->n_private > m->n_mapped ? m->n_private - m->n_mapped : 0;
    bool peer_kept = port_kept(&m->public_addr, m->private_addr, peer_n);
    return me_kept != peer_kept ? !me_kept : p->initiator;
}

/* Which side we take (BIRTHDAY_NONE: neither); *guess when a behaviour
 * was unknown. */
static birthday_side birthday_role(const punch_agent *a, const peer *p, const punch_msg *m,
                                   bool *guess, bool *trap)
{
    bool me_unknown = a->nat.mapping == PUNCH_MSG_NAT_UNKNOWN;
    bool peer_unknown = m->nat_mapping == PUNCH_MSG_NAT_UNKNOWN;
    bool me_random = random_ports(a->nat.mapping, a->nat.step);
    bool peer_random = random_ports(m->nat_mapping, m->nat_step);
    bool me_eim = a->nat.mapping == PUNCH_MSG_NAT_EIM;
    bool peer_eim = m->nat_mapping == PUNCH_MSG_NAT_EIM;
    *guess = me_unknown || peer_unknown;
    *trap = me_eim && peer_eim;
    if (*trap) {
        /* Two cones: ordinary hole punching joins them, unless a kernel
         * NAT's conntrack trap (src/nat/trap.c) gave one side's flow to
         * the peer another port, which the peer's NAT drops for as long
         * as the peer keeps probing the old one. Fresh sockets, and
         * probes to their ports, are flows no trap holds: many-port
         * probing gets through, once punching has failed. */
        *guess = true;
        return many_sockets_guess(a, p, m) ? BIRTHDAY_MANY_SOCKETS : BIRTHDAY_MANY_PORTS;
    }
    if ((me_random || me_unknown) && (peer_eim || peer_unknown) &&
        !(me_unknown && peer_unknown && !many_sockets_guess(a, p, m)))
        return BIRTHDAY_MANY_SOCKETS;
    if ((me_eim || me_unknown) && (peer_random || peer_unknown))
        return BIRTHDAY_MANY_PORTS;
    return BIRTHDAY_NONE;
}

/* ---- the extra sockets (1..PUNCH_MAX_SOCKETS) ----
 * A run takes BIRTHDAY_SOCKETS of them and gives them back when it ends,
 * all but the one a path kept, which goes back with its peer: a listener
 * runs many-port probing as often as peers come (before, the sockets
 * never came back, and an agent could run it four times in its life).
 * Taken next-fit from the last one taken, so a socket the caller was
 * just told to close is not the next run's. */
static bool sock_taken(const punch_agent *a, unsigned k)
{
    return (a->socks_taken[k / 64] >> (k % 64)) & 1;
}

static void sock_mark(punch_agent *a, unsigned k, bool taken)
{
    uint64_t bit = (uint64_t)1 << (k % 64);
    if (taken)
        a->socks_taken[k / 64] |= bit;
    else
        a->socks_taken[k / 64] &= ~bit;
}

/* Give socks[0..n) back, all but keep: the caller may close them (one
 * PUNCH_EVENT_SOCKETS per run of consecutive ones). */
static void socks_give_back(punch_agent *a, int id, const uint16_t *socks, unsigned n,
                            uint16_t keep)
{
    for (unsigned i = 0, j; i < n; i = j) {
        for (j = i + 1; j < n && socks[j] == socks[j - 1] + 1; j++)
            ;
        ev *e = push_event(a, PUNCH_EVENT_SOCKETS, id);
        e->e.sockets.first = socks[i];
        e->e.sockets.last = socks[j - 1];
        e->e.sockets.keep = keep >= socks[i] && keep <= socks[j - 1] ? keep : 0;
    }
    for (unsigned i = 0; i < n; i++)
        if (socks[i] != keep)
            sock_mark(a, socks[i], false);
}

/* Take the extra sockets for p's many-port run (one peer at a time). */
static bool reserve_sockets(punch_agent *a, int id)
{
    if (a->birthday_owner >= 0)
        return false;
    unsigned n = 0, k = a->sock_cursor;
    for (unsigned looked = 0; looked < PUNCH_MAX_SOCKETS && n < BIRTHDAY_SOCKETS; looked++) {
        k = k % PUNCH_MAX_SOCKETS + 1;
        if (!sock_taken(a, k))
            a->birthday_socks[n++] = (uint16_t)k;
    }
    if (n < BIRTHDAY_SOCKETS)
        return false; /* paths kept all but a few */
    for (unsigned i = 0; i < n; i++)
        sock_mark(a, a->birthday_socks[i], true);
    a->sock_cursor = (uint16_t)k;
    a->birthday_owner = id;
    return true;
}

/* Which side of many-port probing we take, if any: the side behind the
 * NAT with random ports opens the sockets, the one whose NAT maps
 * endpoint-independently probes the ports. A guess takes its sockets
 * only when it starts: most never do. */
void birthday_plan(punch_agent *a, uint64_t now, int id, const punch_msg *m)
{
    peer *p = &a->peers[id];
    if (a->cfg.flags & (PUNCH_AGENT_NO_BIRTHDAY | PUNCH_AGENT_RELAY_ONLY) ||
        punch_addr_same_ip(&m->public_addr, &a->public_addr))
        return;
    p->birthday.to = m->public_addr;
    p->birthday.sent = 0;
    p->birthday.swaps = 0;
    bool guess, trap;
    birthday_side role = birthday_role(a, p, m, &guess, &trap);
    /* A guess waits for ordinary hole punching (birthday_guess_starts). */
    uint64_t start = guess ? now + BIRTHDAY_UNKNOWN_AFTER_MS : now;
    p->birthday.guess = guess && role != BIRTHDAY_NONE;
    p->birthday.trap = trap;
    bool sockets = role == BIRTHDAY_MANY_SOCKETS && (guess || reserve_sockets(a, id));
    /* Said for a peer we asked for: a burst of strangers would fill the
     * event queue with it (interop.silent_peers_mid counts introductions). */
    if (role == BIRTHDAY_MANY_SOCKETS && !sockets && p->connect.asked) {
        const candidate tried = {.addr = p->birthday.to, .technique = PUNCH_TECH_BIRTHDAY};
        tell_attempt(a, id, &tried, "no extra sockets free (another peer's run): birthday not tried");
    }
    if (sockets) {
        p->birthday.side = BIRTHDAY_MANY_SOCKETS;
        p->admission.probe_allowance = BIRTHDAY_SOCKETS;
        p->birthday.start_ms = p->birthday.next_ms = start;
    } else if (role == BIRTHDAY_MANY_PORTS) {
        /* Once the peer's sockets are open: its guard, and its pace. */
        p->birthday.side = BIRTHDAY_MANY_PORTS;
        p->admission.probe_allowance = BIRTHDAY_PROBES;
        p->birthday.start_ms = start;
        p->birthday.next_ms =
            guess ? start
                  : now + p->guard.ms + BIRTHDAY_SOCKETS / BIRTHDAY_BATCH * BIRTHDAY_TICK_MS;
    } else {
        p->birthday.guess = false;
    }
}

/* Did we probe src, the peer's public address at one of the random ports
 * we tried (MANY_PORTS)? */
bool birthday_probed(const peer *p, const punch_addr *src)
{
    if (p->birthday.side != BIRTHDAY_MANY_PORTS || !punch_addr_same_ip(src, &p->birthday.to))
        return false;
    for (unsigned i = 0; i < p->birthday.sent; i++)
        if (p->birthday.ports[i] == src->port)
            return true;
    return false;
}

/* Many-port probing is over for p (a direct path, or the budget spent):
 * the extra sockets go back, but the one the path uses. */
static void release_sockets(punch_agent *a, int id)
{
    peer *p = &a->peers[id];
    if (a->birthday_owner != id)
        return;
    uint16_t keep = p->path >= 0 && p->cand[p->path].sock.kind == PUNCH_SOCKET_EXTRA
                        ? p->cand[p->path].sock.index : 0;
    if (keep && p->birthday.kept && keep != p->birthday.kept) /* a second run's path */
        socks_give_back(a, id, &p->birthday.kept, 1, 0);
    socks_give_back(a, id, a->birthday_socks, BIRTHDAY_SOCKETS, keep);
    if (keep)
        p->birthday.kept = keep;
    a->birthday_owner = -1;
}

/* Peer id goes: every extra socket it holds goes back. */
void birthday_forget(punch_agent *a, int id)
{
    peer *p = &a->peers[id];
    if (a->birthday_owner == id) {
        socks_give_back(a, id, a->birthday_socks, BIRTHDAY_SOCKETS, 0);
        a->birthday_owner = -1;
    }
    if (p->birthday.kept)
        socks_give_back(a, id, &p->birthday.kept, 1, 0);
    p->birthday.kept = 0;
}

/* On a direct path that answered both ways. */
static bool direct_confirmed(const peer *p)
{
    return p->path >= 0 && path_kind(p->cand[p->path].technique) == PUNCH_PATH_DIRECT &&
           p->cand[p->path].confirmed;
}

static void birthday_end(punch_agent *a, int id)
{
    peer *p = &a->peers[id];
    release_sockets(a, id);
    p->birthday.side = BIRTHDAY_NONE;
    p->birthday.next_ms = UINT64_MAX;
}

/* A trap round found nothing: the sides swap (both at the same time, a
 * round after the same introduction or swap). Returns false when there is
 * no next round (BIRTHDAY_TRAP_SWAPS done, or no sockets are free). */
static bool birthday_swap(punch_agent *a, uint64_t now, int id)
{
    peer *p = &a->peers[id];
    if (!p->birthday.trap || p->birthday.swaps >= BIRTHDAY_TRAP_SWAPS)
        return false;
    p->birthday.swaps++;
    const candidate tried = {.addr = p->birthday.to, .technique = PUNCH_TECH_BIRTHDAY};
    if (p->birthday.side == BIRTHDAY_MANY_PORTS && !reserve_sockets(a, id)) {
        tell_attempt(a, id, &tried, "no extra sockets free: birthday not tried the other way");
        return false;
    }
    tell_attempt(a, id, &tried, "no answer to %u %s in %llu ms: swapping sides", p->birthday.sent,
                 p->birthday.side == BIRTHDAY_MANY_SOCKETS ? "sockets" : "probes",
                 (unsigned long long)(now - p->birthday.start_ms));
    if (p->birthday.side == BIRTHDAY_MANY_SOCKETS) {
        release_sockets(a, id);
        p->birthday.side = BIRTHDAY_MANY_PORTS;
        p->admission.probe_allowance = BIRTHDAY_PROBES;
        p->birthday.next_ms = now + p->guard.ms + BIRTHDAY_SOCKETS / BIRTHDAY_BATCH * BIRTHDAY_TICK_MS;
    } else {
        p->birthday.side = BIRTHDAY_MANY_SOCKETS;
        p->admission.probe_allowance = BIRTHDAY_SOCKETS;
        p->birthday.next_ms = now;
    }
    p->birthday.start_ms = now;
    p->birthday.sent = 0;
    return true;
}

/* A guessed plan starts now, unless punching found a way meanwhile. */
static bool birthday_guess_starts(punch_agent *a, uint64_t now, int id, bool direct)
{
    peer *p = &a->peers[id];
    p->birthday.guess = false;
    /* Against a trap only with a peer that proved who it is (over the
     * relay): a stranger that went silent gets no many-port run (§6). */
    if (direct || (p->birthday.trap && !(p->ready || p->has_prev))) {
        p->birthday.side = BIRTHDAY_NONE;
        p->birthday.next_ms = UINT64_MAX;
        return false;
    }
    const candidate tried = {.addr = p->birthday.to, .technique = PUNCH_TECH_BIRTHDAY};
    if (p->birthday.side == BIRTHDAY_MANY_SOCKETS && !reserve_sockets(a, id)) {
        tell_attempt(a, id, &tried, "no extra sockets free: birthday not tried");
        p->birthday.side = BIRTHDAY_NONE;
        p->birthday.next_ms = UINT64_MAX;
        return false;
    }
    tell_attempt(a, id, &tried,
                 p->birthday.trap
                     ? "no answer through two cone NATs (a conntrack trap?): trying birthday"
                     : "nat behaviour unknown: trying birthday anyway");
    p->birthday.start_ms = now;
    if (p->birthday.side == BIRTHDAY_MANY_PORTS)
        p->birthday.next_ms =
            now + p->guard.ms + BIRTHDAY_SOCKETS / BIRTHDAY_BATCH * BIRTHDAY_TICK_MS;
    return p->birthday.side == BIRTHDAY_MANY_SOCKETS;
}

/* The next batch, or the end of the budget. */
uint64_t birthday_deadline(const punch_agent *a, int id)
{
    const peer *p = &a->peers[id];
    return p->birthday.side != BIRTHDAY_NONE ? p->birthday.next_ms : UINT64_MAX;
}

void birthday_timeout(punch_agent *a, uint64_t now, int id)
{
    peer *p = &a->peers[id];
    bool direct = direct_confirmed(p);
    if (p->birthday.guess && !birthday_guess_starts(a, now, id, direct)) {
        if (direct)
            birthday_end(a, id);
        return; /* the ports side waits for the sockets to open */
    }
    uint64_t round = p->birthday.trap ? BIRTHDAY_TRAP_ROUND_MS + p->guard.ms : BIRTHDAY_BUDGET_MS;
    if (!direct && now - p->birthday.start_ms >= round && birthday_swap(a, now, id))
        return;
    if (direct || now - p->birthday.start_ms >= round) {
        if (!direct) {
            const candidate tried = {.addr = p->birthday.to, .technique = PUNCH_TECH_BIRTHDAY};
            tell_attempt(a, id, &tried, "no answer to %u %s in %llu ms", p->birthday.sent,
                         p->birthday.side == BIRTHDAY_MANY_SOCKETS ? "sockets" : "probes",
                         (unsigned long long)(now - p->birthday.start_ms));
        }
        birthday_end(a, id);
        return;
    }
    unsigned total = p->birthday.side == BIRTHDAY_MANY_SOCKETS ? BIRTHDAY_SOCKETS : BIRTHDAY_PROBES;
    punch_msg probe = {
        .type = PUNCH_MSG_HANDSHAKE1, .payload = p->hs.msg1, .payload_len = p->hs.msg1_len};
    for (unsigned n = 0; n < BIRTHDAY_BATCH && p->birthday.sent < total; n++, p->birthday.sent++) {
        if (!many_port_allowed(a, now, id))
            break; /* the budget (peer_admission.h): again at the next tick */
        if (p->birthday.side == BIRTHDAY_MANY_SOCKETS) {
            punch_socket sock = extra_socket(a->birthday_socks[p->birthday.sent]);
            send_msg_ttl(a, sock, &p->birthday.to, a->open.low_ttl ? a->open.ttl : 0, &probe);
        } else {
            uint16_t r;
            random_bytes(a, &r, sizeof(r));
            punch_addr to = p->birthday.to;
            to.port = (uint16_t)(BIRTHDAY_PORT_MIN + r % (65536u - BIRTHDAY_PORT_MIN));
            p->birthday.ports[p->birthday.sent] = to.port;
            send_msg_ttl(a, MAIN_SOCKET, &to, 0, &probe);
        }
    }
    /* All sent: wait for answers until the budget ends. */
    p->birthday.next_ms = p->birthday.sent < total ? now + BIRTHDAY_TICK_MS
                                                   : p->birthday.start_ms + round;
}

/* A path was confirmed: on a direct one, a run (or a plan) ends now, not
 * at the end of its budget, so its sockets go back (but the path's) for
 * the next peer's run. */
void birthday_on_confirmed(punch_agent *a, int id)
{
    peer *p = &a->peers[id];
    if (p->birthday.side != BIRTHDAY_NONE && direct_confirmed(p))
        birthday_end(a, id);
}
