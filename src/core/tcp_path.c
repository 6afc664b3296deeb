/* SPDX-License-Identifier: MIT */
/* TCP paths to peers: see tcp_path.h.
 *
 * One attempt per peer at a time, in a slot of its own. Each try:
 *  1. listen on a new TCP port P (shared with the connecting sockets,
 *     §4.4) and connect from it to the server, which answers a STUN
 *     Binding request in a frame: P's public endpoint (through our NAT).
 *  2. the side that asked for TCP sends an offer over the encrypted
 *     session (repeated every OFFER_RTO_MS); the other side does step 1
 *     and answers, saying it connects delay_ms later (half the session's
 *     round trip: when the answer arrives).
 *  3. both decide the same way who connects: when exactly one side's TCP
 *     endpoint is public (one of its own addresses: no NAT on the way),
 *     the other connects out to it (§3.2: `reversal` when that is the side
 *     that was asked, else `tcp-direct`); otherwise, and on any try after
 *     the first, both connect to each other's public endpoint from P at
 *     the agreed moment (§3.5).
 *     A NAT may answer a SYN that arrives before its own side's SYN left
 *     with a RST, or drop it (§3.5: "if either client's SYN arrives at the
 *     opposite middlebox too quickly"). So on the first try each side's
 *     first SYN goes with a TTL of open_ttl: it opens our own NAT and dies
 *     between the NATs (the socket's later packets go with the full TTL).
 *     The router's ICMP time exceeded for it ends that connect (measured
 *     on Linux 6.x, unless it arrives while the socket is in a system
 *     call): then the full SYN goes at once from the same port to the same
 *     place, a new socket on the same 4-tuple (RFC 6528: its ISN, drawn
 *     from a clock, is later, so conntrack takes it as the connection
 *     starting again). Where no ICMP error comes (routers rate-limit
 *     them), only the asker sends its full SYN, OPEN_MS plus the
 *     answerer's delay plus a round trip after the opening one, and only
 *     if its socket still waits; the answerer holds its opening socket
 *     (HOLD). Linux conntrack takes a new ISN only before the peer's SYN
 *     passed (SYN_SENT2: INVALID, untranslated; src/nat/tcp_state.c), so
 *     the socket that answers the peer's SYN must be the one whose SYN
 *     last went out; the round trip lets an answerer's full SYN sent at
 *     its ICMP error reach the asker's opening socket first. When both
 *     ICMP errors come, both full SYNs have new ISNs and must cross
 *     (docs/protocol.md). A
 *     NAT not yet open when our full SYN arrives drops it (our socket
 *     waits on, and the peer's SYN crosses it) or answers RST (the two
 *     sides' moments were further apart than a trip). That RST also
 *     closes our own NAT's session (Linux conntrack: the peer's SYN would
 *     now meet a RST from our NAT), so the try goes on with a reopen: a
 *     low-TTL SYN from the same port opens our NAT again, the peer's SYN
 *     comes to our listener through it, and ours goes again after the
 *     answerer's delay, by when the peer has reopened its NAT on its own
 *     RST (up to REOPENS times a try, then the RST fails the try).
 *     Linux conntrack checks sequence numbers: a peer's SYN that meets
 *     our listener (no socket of ours waiting) gets a SYN-ACK with another
 *     ISN than the SYN our NAT saw, INVALID, sent on untranslated; such a
 *     connection carries nothing and fails the try (UP_CONFIRM_MS). A
 *     try with the opening SYN ends SYN_RTO_MS after its full SYN's round
 *     trips; the second goes with it too (the ICMP errors that sank the
 *     first are rate-limited by then); the last goes without, the answerer
 *     50 ms + half a round trip after the asker, for two NATs in a row
 *     that a TTL of 2 cannot both open.
 *  4. the first connection up (connected, or accepted from the peer's
 *     address) is handed to the agent as a candidate on its own socket
 *     index, framed like the server's connection, and validated by PING/
 *     PONG; the rest are closed. A try with nothing up in CONNECT_MS, or a
 *     refused one, fails: the asker tries again with new ports up to TRIES
 *     times (§6.2), each failure an ATTEMPT event that says why. */
#include "core/tcp_path.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/vpn.h"
#include "wire/frame.h"
#include "wire/stun.h"

#define TRIES 3
#define STUN_MS 3000u
#define OFFER_RTO_MS 500u
#define CONNECT_MS 5000u
/* A try with the opening SYN ends two round trips after the full SYN plus
 * one SYN retransmission by the system (RFC 6298 §2.1: 1 s), not at
 * CONNECT_MS: one stuck (both ICMP errors came, see 3.) goes again with
 * new ports at once. */
#define SYN_RTO_MS 1000u
/* Without the opening SYN: one side starts HEAD_MS ahead, the asker on odd
 * tries, the other on even ones (a NAT that answers an early SYN with a
 * RST kills the try only when the SYN aimed at it leaves first). */
#define HEAD_MS 50u
/* From the opening SYN to the full one: the answerer's delay (half a
 * round trip: time for both opening SYNs to pass their NATs) and this. */
#define OPEN_MS 10u
/* A simultaneous open's SYNs answered with RST, each then reopened (see
 * 3.), before the try fails. */
#define REOPENS 3u
#define DEFAULT_RTT_MS 100u
/* A connection that is up must carry the agent's PING and PONG (a PATH
 * event on it) within this; else the try failed. A NAT that tracks
 * sequence numbers passes the SYNs and then marks a SYN-ACK with another
 * ISN INVALID (see 3.): both ends are "up", nothing goes through. */
#define UP_CONFIRM_MS 3000u
#define ACCEPTS 4      /* connections accepted per try from other addresses */
#define LISTEN_TRIES 4 /* ports drawn before one differs from our UDP port */
#define CMDQ_LEN 64
#define NO_TTL 255

typedef enum tp_state {
    TP_IDLE = 0,
    TP_STUN,       /* learning our public TCP endpoint */
    TP_OFFERED,    /* asker: offer sent, waiting for the answer */
    TP_WAIT,       /* waiting for the agreed moment */
    TP_CONNECTING,
    TP_UP,
    TP_DONE,       /* asker: gave up, or the connection is gone: no more tries */
} tp_state;

enum { ROLE_LISTEN, ROLE_STUN, ROLE_CONNECT, ROLE_UP, ROLES };

typedef struct slot {
    int peer;                   /* -1: free */
    tp_state state;
    bool asker;
    uint16_t attempt;
    unsigned tries;
    uint32_t rtt_ms;            /* of the session's path (PATH events) */
    uint32_t sock[ROLES];       /* 0: none */
    bool stun_up;
    unsigned listen_tries;
    bool opening;               /* sock[ROLE_CONNECT] is the opening SYN's */
    uint64_t full_at_ms;        /* ...and then the full one goes */
    bool early_full;            /* the full SYN went at the opener's ICMP error */
    bool reopening;             /* the opening SYN is a reopen's: the full one waits */
    unsigned reopens;           /* this try's */
    uint32_t open_delay_ms;     /* the answerer's wait from its answer to its moment */
    punch_addr local, public_addr;
    bool reachable;
    uint8_t txid[PUNCH_STUN_TXID_LEN];
    punch_tcp_offer peer_offer;
    bool have_peer;
    bool connect_out;
    punch_technique technique;
    uint64_t deadline_ms, connect_at_ms, next_offer_ms;
    punch_addr remote;
    unsigned accepts;
    bool confirmed;             /* up, and the agent took it as its path */
    uint32_t budget_ms;         /* from the agreed moment to this try's deadline */
    uint8_t family;             /* this try's address family */
} slot;

struct punch_tcp_paths {
    punch_tcp_paths_cfg cfg;
    slot slots[PUNCH_TCP_PATH_SLOTS];
    uint32_t next_sock;
    punch_tcp_cmd q[CMDQ_LEN];
    unsigned q_head, q_len;
    punch_tcp_paths_counters counters;
};

static void tp_fail(punch_tcp_paths *tp, slot *t, uint64_t now, const char *why);

/* ---- commands ---- */

static punch_tcp_cmd *push_cmd(punch_tcp_paths *tp, punch_tcp_cmd_kind kind, uint32_t sock)
{
    if (tp->q_len == CMDQ_LEN) {
        tp->counters.errors++; /* cannot happen with 8 slots; never block */
        return NULL;
    }
    punch_tcp_cmd *c = &tp->q[(tp->q_head + tp->q_len++) % CMDQ_LEN];
    memset(c, 0, sizeof(*c));
    c->kind = kind;
    c->sock = sock;
    return c;
}

static uint32_t new_sock(punch_tcp_paths *tp)
{
    if (++tp->next_sock == 0)
        tp->next_sock = 1;
    return tp->next_sock;
}

static void close_role(punch_tcp_paths *tp, slot *t, int role)
{
    if (t->sock[role])
        push_cmd(tp, PUNCH_TCP_CLOSE, t->sock[role]);
    t->sock[role] = 0;
}

static void connect_cmd(punch_tcp_paths *tp, slot *t, const punch_addr *to, uint8_t ttl)
{
    t->sock[ROLE_CONNECT] = new_sock(tp);
    punch_tcp_cmd *c = push_cmd(tp, PUNCH_TCP_CONNECT, t->sock[ROLE_CONNECT]);
    if (c) {
        c->local = t->local;
        c->remote = *to;
        c->ttl = ttl;
    }
}

static void listen_cmd(punch_tcp_paths *tp, slot *t)
{
    t->sock[ROLE_LISTEN] = new_sock(tp);
    punch_tcp_cmd *c = push_cmd(tp, PUNCH_TCP_LISTEN, t->sock[ROLE_LISTEN]);
    if (c)
        c->local = (punch_addr){.family = t->family};
}

/* punchd's address of this family, or NULL. */
static const punch_addr *server_of(const punch_tcp_paths *tp, uint8_t family)
{
    if (tp->cfg.server.family == family)
        return &tp->cfg.server;
    return tp->cfg.server_other.family == family ? &tp->cfg.server_other : NULL;
}

static bool have_local(const punch_tcp_paths *tp, uint8_t family)
{
    for (size_t i = 0; i < tp->cfg.n_local; i++)
        if (tp->cfg.local[i].family == family)
            return true;
    return false;
}

/* The family of a try (issue 16): want when we have an address of it and
 * can learn our public endpoint there (punchd has an address of it, or
 * it is IPv6, where our own address is it unless a router translates the
 * prefix), else the server's. */
static uint8_t try_family(const punch_tcp_paths *tp, uint8_t want)
{
    if (want && have_local(tp, want) && (server_of(tp, want) || want == PUNCH_AF_INET6))
        return want;
    return tp->cfg.server.family;
}

/* ---- slots ---- */

/* Close every socket of the try; the slot stays (state given). */
static void tp_reset(punch_tcp_paths *tp, slot *t, tp_state st)
{
    for (int r = 0; r < ROLES; r++)
        close_role(tp, t, r);
    t->stun_up = false;
    t->have_peer = false;
    t->opening = t->early_full = t->reopening = false;
    t->reopens = 0;
    t->state = st;
    t->accepts = 0;
}

static slot *tp_find(punch_tcp_paths *tp, int peer)
{
    for (unsigned i = 0; i < PUNCH_TCP_PATH_SLOTS; i++)
        if (tp->slots[i].peer == peer)
            return &tp->slots[i];
    return NULL;
}

static slot *tp_slot(punch_tcp_paths *tp, int peer)
{
    slot *t = tp_find(tp, peer);
    if (t)
        return t;
    if (!(t = tp_find(tp, -1)))
        return NULL;
    t->peer = peer;
    t->state = TP_IDLE;
    t->attempt = 0;
    t->tries = 0;
    return t;
}

/* The slot and role of a socket, or NULL. */
static slot *by_sock(punch_tcp_paths *tp, uint32_t sock, int *role)
{
    for (unsigned i = 0; sock && i < PUNCH_TCP_PATH_SLOTS; i++)
        for (int r = 0; r < ROLES; r++)
            if (tp->slots[i].peer >= 0 && tp->slots[i].sock[r] == sock) {
                *role = r;
                return &tp->slots[i];
            }
    return NULL;
}

/* The agent's name for the slot's connection: the TCP socket of its index. */
static punch_socket agent_sock(const punch_tcp_paths *tp, const slot *t)
{
    return (punch_socket){.kind = PUNCH_SOCKET_TCP, .index = (uint16_t)(t - tp->slots)};
}

static uint32_t tp_rtt(const slot *t)
{
    return t->rtt_ms ? t->rtt_ms : DEFAULT_RTT_MS;
}

/* Every try but the last opens with a low-TTL SYN; the last goes without,
 * one side first, in case the opening SYN cannot open our NAT (two NATs in
 * a row). Both sides tell from the attempt number alone. */
static bool use_opener(const punch_tcp_paths *tp, const slot *t)
{
    return tp->cfg.open_ttl != NO_TTL && t->attempt < TRIES;
}

/* ---- the try ---- */

/* Step 1: a new port, listening; its public endpoint comes next. */
static void tp_begin(punch_tcp_paths *tp, slot *t, uint64_t now, uint8_t family)
{
    tp_reset(tp, t, TP_STUN);
    t->family = try_family(tp, family);
    t->listen_tries = 1;
    tp->cfg.random(tp->cfg.random_ctx, t->txid, sizeof(t->txid));
    t->deadline_ms = now + STUN_MS;
    listen_cmd(tp, t);
}

static void tp_send_offer(punch_tcp_paths *tp, slot *t, uint64_t now)
{
    punch_tcp_offer o = {.answer = !t->asker, .reachable = t->reachable, .prefer = t->asker,
                         .attempt = t->attempt, .public_addr = t->public_addr};
    if (!t->asker)
        o.delay_ms = (uint16_t)(t->connect_at_ms > now ? t->connect_at_ms - now : 0);
    for (size_t i = 0; i < tp->cfg.n_local && o.n_private < PUNCH_TCP_MAX_PRIVATE; i++) {
        if (tp->cfg.local[i].family != t->local.family)
            continue;
        o.private_addr[o.n_private] = tp->cfg.local[i];
        o.private_addr[o.n_private++].port = t->local.port;
    }
    punch_agent_tcp_offer(tp->cfg.agent, now, t->peer, &o);
}

/* Step 3: who connects, and how it is called; the same on both sides. */
static void tp_decide(slot *t)
{
    bool asker_pub = t->asker ? t->reachable : t->peer_offer.reachable;
    bool answerer_pub = t->asker ? t->peer_offer.reachable : t->reachable;
    if (t->tries > 1 || t->attempt > 1 || asker_pub == answerer_pub) {
        if (t->attempt == 1 && asker_pub && answerer_pub) {
            t->technique = PUNCH_TECH_TCP_DIRECT;
            t->connect_out = t->asker;
            return;
        }
        t->technique = PUNCH_TECH_TCP_SIMOPEN;
        t->connect_out = true;
        return;
    }
    /* Exactly one side is public: the other connects out to it. */
    bool asker_connects = answerer_pub;
    t->technique = asker_connects ? PUNCH_TECH_TCP_DIRECT : PUNCH_TECH_REVERSAL;
    t->connect_out = asker_connects == t->asker;
}

/* When this side connects, counted from the moment the answer arrives at
 * the asker: with opening SYNs both at once; without, the side that goes
 * first on this try at 0, the other HEAD_MS later. */
static uint32_t tp_head(const punch_tcp_paths *tp, const slot *t)
{
    if (t->technique != PUNCH_TECH_TCP_SIMOPEN || use_opener(tp, t))
        return 0;
    bool asker_first = t->attempt % 2 == 1;
    return asker_first == t->asker ? 0 : HEAD_MS + tp_rtt(t) / 2;
}

/* Our public TCP endpoint is known (step 1 done): offer, or answer. */
static void tp_local_ready(punch_tcp_paths *tp, slot *t, uint64_t now)
{
    /* Over IPv6 our own address is what the server sees, and a stateful
     * firewall (RFC 6092) filters what comes in: never taken as public. */
    t->reachable = false;
    for (size_t i = 0; i < tp->cfg.n_local && t->family == PUNCH_AF_INET; i++)
        t->reachable = t->reachable || punch_addr_same_ip(&tp->cfg.local[i], &t->public_addr);
    t->reachable = t->reachable && t->public_addr.port == t->local.port;
    if (t->asker) {
        t->state = TP_OFFERED;
        t->deadline_ms = now + CONNECT_MS;
        t->next_offer_ms = now + OFFER_RTO_MS;
        tp_send_offer(tp, t, now);
        return;
    }
    tp_decide(t);
    t->state = TP_WAIT;
    t->open_delay_ms = tp_rtt(t) / 2;
    t->connect_at_ms = now + t->open_delay_ms + tp_head(tp, t);
    t->deadline_ms = t->connect_at_ms + CONNECT_MS;
    tp_send_offer(tp, t, now);
}

static bool tp_peer_addr(const slot *t, const punch_addr *a)
{
    if (punch_addr_same_ip(a, &t->peer_offer.public_addr))
        return true;
    for (size_t i = 0; i < t->peer_offer.n_private; i++)
        if (punch_addr_same_ip(a, &t->peer_offer.private_addr[i]))
            return true;
    return false;
}

/* Step 3, at the agreed moment: accept from the peer from now on, and
 * connect when it is our part (first with the opening SYN). */
static void tp_connect(punch_tcp_paths *tp, slot *t, uint64_t now)
{
    t->state = TP_CONNECTING;
    t->deadline_ms = now + CONNECT_MS;
    t->budget_ms = CONNECT_MS;
    if (!t->connect_out)
        return;
    t->remote = t->peer_offer.public_addr;
    if (t->technique == PUNCH_TECH_TCP_SIMOPEN && use_opener(tp, t)) {
        /* Both wait the same: the answerer's delay, which the asker
         * learned from the answer, and a round trip (see HOLD). */
        t->opening = true;
        t->full_at_ms = now + OPEN_MS + t->open_delay_ms + tp_rtt(t);
        t->deadline_ms = t->full_at_ms + 2 * tp_rtt(t) + SYN_RTO_MS;
        t->budget_ms = (uint32_t)(t->deadline_ms - now);
        tp->counters.opened++;
        connect_cmd(tp, t, &t->remote, tp->cfg.open_ttl);
        return;
    }
    connect_cmd(tp, t, &t->remote, 0);
}

/* The opening SYN had its time: the full one, from the same port (on the
 * same socket while it waits, so that one that has the peer's SYN by now
 * is not closed). */
static void tp_connect_full(punch_tcp_paths *tp, slot *t)
{
    t->opening = false;
    if (t->sock[ROLE_CONNECT] && !t->asker && t->reopens == 0)
        return; /* the answerer holds its opener for the asker's SYN (HOLD) */
    if (t->sock[ROLE_CONNECT])
        push_cmd(tp, PUNCH_TCP_RESYN, t->sock[ROLE_CONNECT]);
    else
        connect_cmd(tp, t, &t->remote, 0);
}

/* The try failed (on the agent's socket s when a connection was up, else
 * NULL): the asker tries again, or gives up. */
static void tp_fail_on(punch_tcp_paths *tp, slot *t, uint64_t now, const punch_socket *s,
                       const char *why)
{
    char msg[128];
    tp->counters.failures++;
    punch_technique tech = t->have_peer || s ? t->technique : PUNCH_TECH_TCP_SIMOPEN;
    punch_addr remote = s ? t->remote : t->have_peer ? t->peer_offer.public_addr : (punch_addr){0};
    if (!t->asker) {
        if (s)
            punch_agent_tcp_failed(tp->cfg.agent, now, t->peer, s, tech, &remote, why);
        tp_reset(tp, t, TP_IDLE); /* the asker decides what comes next */
        return;
    }
    bool again = t->tries < TRIES;
    snprintf(msg, sizeof(msg), "try %u of %u: %s%s", t->tries, TRIES, why,
             again ? "; again with new ports" : "; staying on the path in use");
    punch_agent_tcp_failed(tp->cfg.agent, now, t->peer, s, tech, &remote, msg);
    if (!again) {
        tp_reset(tp, t, TP_DONE);
        return;
    }
    t->tries++;
    t->attempt++;
    tp_begin(tp, t, now, 0);
}

static void tp_fail(punch_tcp_paths *tp, slot *t, uint64_t now, const char *why)
{
    tp_fail_on(tp, t, now, NULL, why);
}

/* Step 4: the connection on sock is up. */
static void tp_up(punch_tcp_paths *tp, slot *t, uint32_t sock, const punch_addr *remote,
                  uint64_t now)
{
    for (int r = 0; r < ROLES; r++)
        if (t->sock[r] == sock)
            t->sock[r] = 0; /* kept: not closed by the reset */
    tp_reset(tp, t, TP_UP);
    t->sock[ROLE_UP] = sock;
    t->remote = *remote;
    t->confirmed = false;
    t->deadline_ms = now + UP_CONFIRM_MS;
    if (punch_agent_tcp_path(tp->cfg.agent, now, t->peer, agent_sock(tp, t), t->technique,
                             remote) != 0) {
        tp_reset(tp, t, TP_DONE);
        return;
    }
    tp->counters.paths++;
}

/* The connection that was up is gone: the agent falls back. */
static void tp_lost(punch_tcp_paths *tp, slot *t, uint64_t now, const char *why)
{
    punch_socket s = agent_sock(tp, t);
    punch_addr remote = t->remote;
    tp_reset(tp, t, TP_DONE);
    punch_agent_tcp_failed(tp->cfg.agent, now, t->peer, &s, t->technique, &remote, why);
}

/* ---- results ---- */

static void on_listening(punch_tcp_paths *tp, slot *t, const punch_addr *bound, uint64_t now)
{
    if (t->state != TP_STUN)
        return;
    /* A TCP port with the number of our UDP one would look like the same
     * peer to the server (its tcp_clash rule): pick again. */
    if (bound->port == tp->cfg.udp_port && t->listen_tries++ < LISTEN_TRIES) {
        close_role(tp, t, ROLE_LISTEN);
        listen_cmd(tp, t);
        return;
    }
    t->local = *bound;
    if (!server_of(tp, t->family)) {
        /* IPv6 and no server to ask: our first address is the public one */
        t->public_addr = (punch_addr){0};
        for (size_t i = 0; i < tp->cfg.n_local && t->public_addr.family != t->family; i++)
            if (tp->cfg.local[i].family == t->family)
                t->public_addr = tp->cfg.local[i];
        t->public_addr.port = bound->port;
        tp_local_ready(tp, t, now);
        return;
    }
    t->sock[ROLE_STUN] = new_sock(tp);
    punch_tcp_cmd *c = push_cmd(tp, PUNCH_TCP_CONNECT, t->sock[ROLE_STUN]);
    if (c) {
        c->local = t->local;
        c->remote = *server_of(tp, t->family);
    }
}

/* Connected to the server: a STUN Binding request in a frame. */
static void on_stun_connected(punch_tcp_paths *tp, slot *t, uint64_t now)
{
    uint8_t req[PUNCH_TCP_CMD_DATA - PUNCH_FRAME_HEADER];
    size_t len;
    punch_stun_writer w;
    t->stun_up = true;
    punch_tcp_cmd *c = NULL;
    if (punch_stun_writer_init(&w, req, sizeof(req), PUNCH_STUN_BINDING, PUNCH_STUN_REQUEST,
                               t->txid) != 0 ||
        punch_stun_finish(&w, &len) != 0 ||
        !(c = push_cmd(tp, PUNCH_TCP_SEND, t->sock[ROLE_STUN])) ||
        punch_frame_header(len, c->data) != 0) {
        if (c)
            c->len = 0;
        tp_fail(tp, t, now, "cannot ask the server");
        return;
    }
    memcpy(c->data + PUNCH_FRAME_HEADER, req, len);
    c->len = PUNCH_FRAME_HEADER + len;
}

/* "IP:port" ("[IPv6]:port"), with the one IP formatter of the core. */
static void addr_text(const punch_addr *a, char *out, size_t cap)
{
    char ip[PUNCH_VPN_PREFIX_STRLEN];
    punch_vpn_prefix p = {.family = a->family, .len = 0};
    memcpy(p.ip, a->ip, sizeof(p.ip));
    punch_vpn_prefix_format(&p, ip);
    *strchr(ip, '/') = '\0';
    snprintf(out, cap, a->family == PUNCH_AF_INET6 ? "[%s]:%u" : "%s:%u", ip, a->port);
}

/* Why a connect to the peer ended, in words. */
static void connect_why(const slot *t, const punch_tcp_result *r, char *out, size_t cap)
{
    char addr[PUNCH_VPN_PREFIX_STRLEN + 8];
    addr_text(&t->remote, addr, sizeof(addr));
    switch (r->kind) {
    case PUNCH_TCP_REFUSED: snprintf(out, cap, "SYN answered with RST by %s", addr); break;
    case PUNCH_TCP_UNREACHABLE:
        snprintf(out, cap, "SYN to %s answered with an ICMP error", addr);
        break;
    case PUNCH_TCP_TIMED_OUT: snprintf(out, cap, "SYN to %s never answered", addr); break;
    default: snprintf(out, cap, "connect to %s: %s", addr, r->why ? r->why : "failed"); break;
    }
}

/* A RST for our simultaneous-open SYN: reopen, unless this try did enough. */
static bool can_reopen(const punch_tcp_paths *tp, const slot *t)
{
    return t->technique == PUNCH_TECH_TCP_SIMOPEN && tp->cfg.open_ttl != NO_TTL &&
           t->reopens < REOPENS;
}

/* Our SIMOPEN SYN met the peer's NAT before the peer's own SYN had opened
 * it (the two moments further apart than a trip between the NATs: no delay
 * at all, say), and it answered RST. That RST closed our NAT's session too
 * (Linux conntrack), so the peer's SYN would now meet a RST from our NAT.
 * Not the end of the try: a low-TTL SYN from the same port opens our NAT
 * again (a SYN from inside starts a closed session anew) and dies before
 * the peer's NAT; the peer's SYN then comes through to our listener, and
 * ours goes again after the answerer's delay, when the peer's NAT, which
 * does the same on its RST, is open. */
static void tp_reopen(punch_tcp_paths *tp, slot *t, uint64_t now)
{
    tp->counters.reopened++;
    tp->counters.opened++;
    t->reopens++;
    close_role(tp, t, ROLE_CONNECT);
    t->early_full = false;
    t->opening = t->reopening = true;
    t->full_at_ms = now + OPEN_MS + t->open_delay_ms;
    connect_cmd(tp, t, &t->remote, tp->cfg.open_ttl);
}

/* A result for the connecting socket. */
static void on_connect_result(punch_tcp_paths *tp, slot *t, const punch_tcp_result *r,
                              uint64_t now)
{
    if (r->kind == PUNCH_TCP_CONNECTED) {
        tp_up(tp, t, r->sock, &t->remote, now);
        return;
    }
    if (t->opening) {
        /* The opening SYN met the ICMP error it was bound to (or a RST):
         * that socket is gone, our NAT is open. The full SYN goes at once,
         * so a socket waits in SYN-SENT for the peer's SYN: where the
         * peer's NAT is not open yet and drops it, that socket lives on
         * and the peer's SYN crosses it later (see 3.). */
        close_role(tp, t, ROLE_CONNECT);
        if (t->reopening) {
            t->reopening = false; /* tp_connect_full at full_at_ms, on a new socket */
            return;
        }
        t->opening = false;
        t->early_full = now < t->full_at_ms;
        connect_cmd(tp, t, &t->remote, 0);
        return;
    }
    if (r->kind == PUNCH_TCP_REFUSED && can_reopen(tp, t)) {
        if (t->early_full)
            tp->counters.early_rst++;
        tp_reopen(tp, t, now);
        return;
    }
    if (r->kind == PUNCH_TCP_FAILED) {
        /* e.g. the peer's SYN was accepted on this 4-tuple first: wait
         * for the accept (or the deadline) */
        tp->counters.errors++;
        close_role(tp, t, ROLE_CONNECT);
        return;
    }
    char why[128];
    connect_why(t, r, why, sizeof(why));
    tp_fail(tp, t, now, why);
}

static void on_stun_result(punch_tcp_paths *tp, slot *t, const punch_tcp_result *r,
                           uint64_t now)
{
    if (t->state != TP_STUN) {
        /* the connection held our NAT's mapping of P while the try lasted */
        if (r->kind != PUNCH_TCP_CONNECTED)
            close_role(tp, t, ROLE_STUN);
        return;
    }
    if (r->kind == PUNCH_TCP_CONNECTED)
        on_stun_connected(tp, t, now);
    else if (r->kind == PUNCH_TCP_CLOSED && t->stun_up)
        tp_fail(tp, t, now, "the server closed the TCP connection");
    else
        tp_fail(tp, t, now, "cannot reach the server over TCP");
}

void punch_tcp_paths_handle_result(punch_tcp_paths *tp, uint64_t now, const punch_tcp_result *r)
{
    int role;
    slot *t = tp && r ? by_sock(tp, r->sock, &role) : NULL;
    if (!t)
        return;
    switch (role) {
    case ROLE_LISTEN:
        if (r->kind == PUNCH_TCP_LISTENING) {
            on_listening(tp, t, &r->local, now);
        } else if (t->state == TP_STUN) {
            tp->counters.errors++;
            tp_fail(tp, t, now, "cannot open a TCP socket");
        } else {
            tp->counters.errors++;
            close_role(tp, t, ROLE_LISTEN);
        }
        break;
    case ROLE_STUN: on_stun_result(tp, t, r, now); break;
    case ROLE_CONNECT: on_connect_result(tp, t, r, now); break;
    default:
        if (r->kind == PUNCH_TCP_CLOSED || r->kind == PUNCH_TCP_FAILED)
            tp_lost(tp, t, now, r->why ? r->why : "TCP connection closed");
        break;
    }
}

uint32_t punch_tcp_paths_handle_accept(punch_tcp_paths *tp, uint64_t now, uint32_t sock,
                                       const punch_addr *remote)
{
    int role;
    slot *t = tp && remote ? by_sock(tp, sock, &role) : NULL;
    /* From the agreed moment; from the answer on, too: the peer's clock
     * may run a little ahead of ours. */
    bool open = t && (t->state == TP_CONNECTING || t->state == TP_WAIT) && t->have_peer;
    if (!t || role != ROLE_LISTEN || !open || !tp_peer_addr(t, remote) ||
        t->accepts >= ACCEPTS) {
        if (tp)
            tp->counters.refused++; /* not the peer's: §6.1 */
        return 0;
    }
    t->accepts++;
    uint32_t id = new_sock(tp);
    tp_up(tp, t, id, remote, now);
    return t->state == TP_UP ? id : 0;
}

static bool stun_mapped(const uint8_t *buf, size_t len, const uint8_t *txid, punch_addr *out)
{
    punch_stun_msg m;
    const punch_stun_attr *x;
    return punch_stun_is_stun(buf, len) && punch_stun_decode(&m, buf, len) == 0 && !m.classic &&
           m.method == PUNCH_STUN_BINDING && m.cls == PUNCH_STUN_SUCCESS &&
           memcmp(m.txid, txid, PUNCH_STUN_TXID_LEN) == 0 &&
           (x = punch_stun_find(&m, PUNCH_STUN_ATTR_XOR_MAPPED_ADDRESS)) != NULL &&
           punch_stun_read_addr(&m, x, out) == 0;
}

void punch_tcp_paths_handle_frame(punch_tcp_paths *tp, uint64_t now, uint32_t sock,
                                  const uint8_t *data, size_t len)
{
    int role;
    slot *t = tp ? by_sock(tp, sock, &role) : NULL;
    if (t && role == ROLE_UP && t->state == TP_UP) {
        punch_agent_handle_datagram_on(tp->cfg.agent, now, agent_sock(tp, t), &t->remote, data,
                                       len);
        return;
    }
    if (t && role == ROLE_STUN && t->state == TP_STUN &&
        stun_mapped(data, len, t->txid, &t->public_addr)) {
        tp_local_ready(tp, t, now);
        return;
    }
    if (tp)
        tp->counters.dropped++;
}

/* ---- offers ---- */

static int tp_addr_cmp(const punch_addr *a, const punch_addr *b)
{
    int c = memcmp(a->ip, b->ip, sizeof(a->ip));
    return c ? c : (int)a->port - (int)b->port;
}

/* The peer's answer to our offer. */
static void on_answer(punch_tcp_paths *tp, slot *t, const punch_tcp_offer *o, uint64_t now)
{
    if (!t || !t->asker || t->state != TP_OFFERED || o->attempt != t->attempt) {
        tp->counters.stale++;
        return;
    }
    if (o->public_addr.family != t->family) {
        tp_fail(tp, t, now, t->family == PUNCH_AF_INET6 ? "the peer has no IPv6 TCP endpoint"
                                                       : "the peer answered in another family");
        return;
    }
    t->peer_offer = *o;
    t->have_peer = true;
    t->open_delay_ms = o->delay_ms;
    tp_decide(t);
    uint32_t head = tp_head(tp, t);
    if (head == 0) {
        tp_connect(tp, t, now);
        return;
    }
    t->state = TP_WAIT;
    t->connect_at_ms = now + head;
    t->deadline_ms = t->connect_at_ms + CONNECT_MS;
}

/* Both asked: the side with the lower public TCP endpoint answers (both
 * compare the same two), once it knows its own. */
static void on_crossed_offer(punch_tcp_paths *tp, slot *t, const punch_tcp_offer *o,
                             uint64_t now)
{
    if (t->state == TP_OFFERED && tp_addr_cmp(&t->public_addr, &o->public_addr) < 0) {
        t->asker = false;
        t->attempt = o->attempt;
        t->peer_offer = *o;
        t->have_peer = true;
        tp_local_ready(tp, t, now);
    } else {
        tp->counters.stale++;
    }
}

/* An offer or answer from the peer. */
static void on_offer(punch_tcp_paths *tp, int peer, const punch_tcp_offer *o, uint64_t now)
{
    slot *t = tp_find(tp, peer);
    if (o->answer) {
        on_answer(tp, t, o, now);
        return;
    }
    if (t && t->asker) {
        on_crossed_offer(tp, t, o, now);
        return;
    }
    if (t && o->attempt == t->attempt && t->state != TP_IDLE) {
        if (t->state == TP_WAIT || t->state == TP_CONNECTING)
            tp_send_offer(tp, t, now); /* our answer was lost */
        return;
    }
    if (t && o->attempt < t->attempt) {
        tp->counters.stale++;
        return;
    }
    /* The peer's tries are bounded here too (§6.2): an offer is a request
     * to connect to where it says. */
    if ((!t && !(t = tp_slot(tp, peer))) || t->tries >= TRIES) {
        tp->counters.refused++;
        return;
    }
    t->tries++;
    if (t->state == TP_UP)
        tp_lost(tp, t, now, "TCP connection replaced: the peer tries again");
    t->asker = false;
    t->attempt = o->attempt;
    tp_begin(tp, t, now, o->public_addr.family);
    t->peer_offer = *o;
    t->have_peer = true;
}

/* Start asking for a TCP path to this peer (its first path is up): over
 * IPv6 first where we can (issue 16; a stateful firewall is beaten the way
 * a NAT is), else, or when the peer cannot, over the server's family. */
static void tp_ask(punch_tcp_paths *tp, int peer, uint64_t now)
{
    slot *t = tp_find(tp, peer);
    if (t && t->state != TP_IDLE)
        return; /* under way, or done */
    if (!t && !(t = tp_slot(tp, peer)))
        return;
    t->asker = true;
    t->tries = 1;
    t->attempt = 1;
    tp_begin(tp, t, now, PUNCH_AF_INET6);
}

void punch_tcp_paths_handle_event(punch_tcp_paths *tp, uint64_t now, const punch_event *ev)
{
    slot *t;
    if (!tp || !ev)
        return;
    switch (ev->kind) {
    case PUNCH_EVENT_PATH:
        if (tp->cfg.ask)
            tp_ask(tp, ev->peer, now);
        /* fall through */
    case PUNCH_EVENT_RTT: /* the path's round trip (an untimed PATH's) */
        if ((t = tp_find(tp, ev->peer)) && ev->path.timed &&
            ev->path.socket.kind == PUNCH_SOCKET_MAIN)
            t->rtt_ms = ev->path.rtt_us / 1000 ? ev->path.rtt_us / 1000 : 1;
        if (t && t->state == TP_UP && ev->path.socket.kind == PUNCH_SOCKET_TCP &&
            ev->path.socket.index == agent_sock(tp, t).index)
            t->confirmed = true;
        break;
    case PUNCH_EVENT_TCP_OFFER: on_offer(tp, ev->peer, &ev->tcp_offer, now); break;
    case PUNCH_EVENT_REGISTERED: /* the agent may have moved to another server */
        if (ev->registered.server.family == tp->cfg.server.family)
            tp->cfg.server = ev->registered.server;
        else
            tp->cfg.server_other = ev->registered.server;
        break;
    case PUNCH_EVENT_CLOSED:
        if ((t = tp_find(tp, ev->peer))) {
            tp_reset(tp, t, TP_IDLE);
            t->peer = -1;
            t->rtt_ms = 0;
        }
        break;
    default: break;
    }
}

/* ---- time ---- */

static void slot_timeout(punch_tcp_paths *tp, slot *t, uint64_t now)
{
    char why[64];
    switch (t->state) {
    case TP_STUN:
        if (now >= t->deadline_ms)
            tp_fail(tp, t, now, "the server did not tell our TCP endpoint");
        break;
    case TP_OFFERED:
        if (now >= t->deadline_ms) {
            tp_fail(tp, t, now, "the peer did not answer the TCP offer");
        } else if (now >= t->next_offer_ms) {
            tp_send_offer(tp, t, now);
            t->next_offer_ms = now + OFFER_RTO_MS;
        }
        break;
    case TP_WAIT:
        if (now >= t->connect_at_ms)
            tp_connect(tp, t, now);
        break;
    case TP_CONNECTING:
        if (now >= t->deadline_ms) {
            snprintf(why, sizeof(why), "no TCP connection in %u ms", t->budget_ms);
            tp_fail(tp, t, now, why);
        } else if (t->opening && now >= t->full_at_ms) {
            tp_connect_full(tp, t);
        }
        break;
    case TP_UP:
        if (!t->confirmed && now >= t->deadline_ms) {
            snprintf(why, sizeof(why), "the TCP connection carried nothing in %u ms",
                     UP_CONFIRM_MS);
            punch_socket s = agent_sock(tp, t);
            tp_fail_on(tp, t, now, &s, why);
        }
        break;
    default: break;
    }
}

void punch_tcp_paths_handle_timeout(punch_tcp_paths *tp, uint64_t now)
{
    for (unsigned i = 0; tp && i < PUNCH_TCP_PATH_SLOTS; i++)
        if (tp->slots[i].peer >= 0)
            slot_timeout(tp, &tp->slots[i], now);
}

static uint64_t slot_deadline(const slot *t)
{
    switch (t->state) {
    case TP_STUN: return t->deadline_ms;
    case TP_CONNECTING: return t->opening && t->full_at_ms < t->deadline_ms ? t->full_at_ms
                                                                            : t->deadline_ms;
    case TP_OFFERED: return t->next_offer_ms < t->deadline_ms ? t->next_offer_ms : t->deadline_ms;
    case TP_WAIT: return t->connect_at_ms;
    case TP_UP: return t->confirmed ? UINT64_MAX : t->deadline_ms;
    default: return UINT64_MAX;
    }
}

uint64_t punch_tcp_paths_next_timeout(const punch_tcp_paths *tp)
{
    uint64_t when = UINT64_MAX;
    for (unsigned i = 0; tp && i < PUNCH_TCP_PATH_SLOTS; i++) {
        uint64_t x = tp->slots[i].peer >= 0 ? slot_deadline(&tp->slots[i]) : UINT64_MAX;
        when = x < when ? x : when;
    }
    return when;
}

/* ---- the rest of the interface ---- */

int punch_tcp_paths_poll_command(punch_tcp_paths *tp, punch_tcp_cmd *cmd)
{
    if (!tp || !cmd || tp->q_len == 0)
        return 0;
    *cmd = tp->q[tp->q_head];
    tp->q_head = (tp->q_head + 1) % CMDQ_LEN;
    tp->q_len--;
    return 1;
}

uint32_t punch_tcp_paths_sock_for(const punch_tcp_paths *tp, punch_socket s)
{
    unsigned i = s.index;
    if (!tp || s.kind != PUNCH_SOCKET_TCP || i >= PUNCH_TCP_PATH_SLOTS ||
        tp->slots[i].state != TP_UP)
        return 0;
    return tp->slots[i].sock[ROLE_UP];
}

const punch_tcp_paths_counters *punch_tcp_paths_counters_get(const punch_tcp_paths *tp)
{
    return &tp->counters;
}

int punch_tcp_paths_new(punch_tcp_paths **out, const punch_tcp_paths_cfg *cfg)
{
    if (!out || !cfg || !cfg->agent || !cfg->random || cfg->n_local > PUNCH_MAX_LOCAL)
        return PUNCH_ERR_INVAL;
    punch_tcp_paths *tp = calloc(1, sizeof(*tp));
    if (!tp)
        return PUNCH_ERR_NOMEM;
    tp->cfg = *cfg;
    if (!tp->cfg.open_ttl)
        tp->cfg.open_ttl = PUNCH_TCP_OPEN_TTL;
    for (unsigned i = 0; i < PUNCH_TCP_PATH_SLOTS; i++)
        tp->slots[i].peer = -1;
    *out = tp;
    return 0;
}

void punch_tcp_paths_free(punch_tcp_paths *tp)
{
    free(tp);
}
