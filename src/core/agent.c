/* SPDX-License-Identifier: MIT */
/*
 * The peer agent: see include/punch/punch.h.
 *
 * How a connection comes about (draft §3.3.1):
 *  1. Registration: HELLO -> COOKIE (the server's key) -> REGISTER, MAC'd
 *     with the key derived from our identity and the server's (proof of
 *     possession) -> REGISTERED (our public endpoint). REGISTER again every
 *     keepalive to hold the NAT binding and the server's entry.
 *  2. Introduction: CONNECT(name) -> the server sends INTRODUCE to both
 *     sides at once: the other's key, public and private endpoints, and a
 *     relay session. The side that was asked is the Noise initiator: its
 *     message 1 reaches the side that asked (and waits) one crossing after
 *     the introduction, and opens the session there.
 *  3. Probing: at once, to every candidate (private endpoints, the public
 *     one, and the relay): the initiator sends Noise IK message 1; the
 *     responder, which cannot answer before it hears message 1, sends its
 *     own message 1 as the packet that opens its NAT (the initiator never
 *     answers it, but learns an address to send to). Probes are handshake
 *     messages, so a probe landing on a stranger (§6.1) means nothing to it.
 *     To a public endpoint the first probes go with a low TTL for a guard
 *     time worked out from both sides' round trips to the server (the
 *     conntrack trap, probe_guard_ms).
 *  4. The responder answers the first message 1 whose sender has the key
 *     the server introduced, from wherever it came, and repeats that answer
 *     to later copies. The initiator takes the first answer.
 *  5. Paths: a message 1 for this introduction (its prologue names the
 *     session, so it is fresh) that arrives on an introduced candidate
 *     proves that way in, and the NAT entry it passed carries our answers
 *     back out: the candidate is taken at once, as "heard", and confirmed
 *     by a PING/PONG within CONFIRM_MS or dropped again. A copy of the
 *     answer (message 2) coming back from where a message 1 went proves
 *     both ways. Every other candidate is validated with encrypted PING/PONG;
 *     the best validated one carries the data: private (§3.3.2) before
 *     hairpin (§3.3.3) before the public endpoint (§3.3.1) before the relay
 *     (§3.1). So data flows through the relay at once when direct probing
 *     has not succeeded, and moves to a direct path the moment one is
 *     proven. The path in use is kept alive with PINGs; three unanswered
 *     ones mark it dead, and the next best takes over while probing starts
 *     again.
 *
 * This file is the dispatcher: the public calls, the queues, the peer
 * table and the one table of timers. Each step has its own file:
 * registration.c (1), discovery.c (NAT behaviour, for 1 and 3),
 * introduction.c (2), candidates.c and holepunch.c (3, 5, with the
 * conntrack-trap openers), port_prediction.c and birthday.c (3, for NATs
 * that map per destination), handshake.c (3, 4, and rekeying),
 * transport.c (data), relay.c, keepalive.c (5, dead paths),
 * tcp_offer.c (TCP paths) and admission.c (strangers' slots and the
 * probe budget, draft §6.2, deciding with peer_admission.c);
 * technique.c holds the one table of techniques (name, rank, TCP, low-TTL
 * guard). Their shared declarations are in agent_internal.h.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/agent_internal.h"

const char *punch_path_kind_name(punch_path_kind k)
{
    return k == PUNCH_PATH_RELAY ? "relay" : "direct";
}

const char *punch_cipher_name(punch_cipher c)
{
    return c == PUNCH_CIPHER_AES256_GCM ? "aes-256-gcm" : "chacha20-poly1305";
}

ev *push_event(punch_agent *a, punch_event_kind kind, int peer_id)
{
    if (a->ev_count == EVQ_LEN) {
        /* Full: the oldest goes, the newest state matters more. */
        a->ev_head = (a->ev_head + 1) % EVQ_LEN;
        a->ev_count--;
        a->events_lost++;
    }
    ev *e = &a->evq[(a->ev_head + a->ev_count++) % EVQ_LEN];
    memset(&e->e, 0, sizeof(e->e));
    e->e.kind = kind;
    e->e.peer = peer_id;
    if (peer_id >= 0) {
        memcpy(e->e.peer_name, a->peers[peer_id].name, sizeof(e->e.peer_name));
        memcpy(e->e.peer_key, a->peers[peer_id].key, PUNCH_KEY_BYTES);
    }
    return e;
}

/* An ATTEMPT event: what was tried on candidate c, and why it failed. */
void tell_attempt(punch_agent *a, int id, const candidate *c, const char *why, ...)
{
    ev *e = push_event(a, PUNCH_EVENT_ATTEMPT, id);
    e->e.attempt.technique = c->technique;
    e->e.attempt.remote = c->addr;
    e->e.attempt.kind = path_kind(c->technique);
    va_list ap;
    va_start(ap, why);
    vsnprintf(e->e.attempt.why, sizeof(e->e.attempt.why), why, ap);
    va_end(ap);
}

/* Queue a datagram; the oldest is dropped when the queue is full. */
uint8_t *push_tx(punch_agent *a, punch_socket sock, const punch_addr *dst, uint8_t ttl, size_t len)
{
    if (len > DGRAM_MAX)
        return NULL;
    if (a->tx_count == TXQ_LEN) {
        a->tx_head = (a->tx_head + 1) % TXQ_LEN;
        a->tx_count--;
        a->overflowed++;
    }
    tx *t = &a->txq[(a->tx_head + a->tx_count++) % TXQ_LEN];
    t->dst = *dst;
    t->sock = sock;
    t->ttl = ttl;
    t->len = (uint16_t)len;
    return t->buf;
}

/* Encode m, MAC it with our server key when its type has a MAC, queue it
 * to leave with this TTL (0: the system's). Encoded in its queue slot:
 * every data datagram passes here. */
void send_msg_ttl(punch_agent *a, punch_socket sock, const punch_addr *dst, uint8_t ttl,
                  const punch_msg *m)
{
    size_t len;
    uint8_t *out = push_tx(a, sock, dst, ttl, DGRAM_MAX);
    if (!out)
        return;
    tx *t = &a->txq[(a->tx_head + a->tx_count - 1) % TXQ_LEN];
    if (punch_msg_encode(m, out, DGRAM_MAX, &len) != 0) {
        a->tx_count--; /* never happens for what we send: nothing goes */
        return;
    }
    if (punch_msg_has_mac(m->type))
        punch_auth_mac(a->mac_key, out, len - PUNCH_MSG_MAC_LEN, out + len - PUNCH_MSG_MAC_LEN);
    t->len = (uint16_t)len;
}

void send_msg(punch_agent *a, const punch_addr *dst, const punch_msg *m)
{
    send_msg_ttl(a, MAIN_SOCKET, dst, 0, m);
}

static bool from_server(const punch_agent *a, const punch_addr *src)
{
    return punch_addr_equal(src, &a->cfg.server);
}

static bool mac_ok(const punch_agent *a, const uint8_t *buf, const punch_msg *m)
{
    return m->mac && punch_auth_verify(a->mac_key, buf, m->mac_offset, m->mac) == 0;
}

int find_peer_by_session(const punch_agent *a, const uint8_t *session)
{
    for (int i = 0; i < MAX_PEERS; i++)
        if (a->peers[i].used && a->peers[i].introduced &&
            memcmp(a->peers[i].session, session, PUNCH_MSG_SESSION_LEN) == 0)
            return i;
    return -1;
}

int find_peer_by_index(const punch_agent *a, uint32_t index)
{
    for (int i = 0; i < MAX_PEERS; i++)
        if (a->peers[i].used && a->peers[i].ready &&
            (a->peers[i].t.local_index == index ||
             (a->peers[i].has_prev && a->peers[i].prev.local_index == index)))
            return i;
    return -1;
}

/* A slot for a new peer, a stranger (introduced without our asking) or
 * one we ask for (admission.c). Returns the slot or -1. */
int new_peer(punch_agent *a, uint64_t now, bool stranger)
{
    int i = admit_peer(a, now, stranger);
    if (i >= 0) {
        memset(&a->peers[i], 0, sizeof(peer));
        a->peers[i].used = true;
        a->peers[i].path = -1;
        a->peers[i].admission.admitted_ms = now;
    }
    return i;
}

/* Slot id (>= 0) forgotten and taken afresh (a new introduction replaces
 * the old session there), or a new slot when id < 0. Returns the slot or
 * -1. A stranger renewed before its handshake completed keeps no budget. */
int renew_peer(punch_agent *a, uint64_t now, int id)
{
    if (id < 0)
        return new_peer(a, now, true);
    spend_if_handshaking(a, now, id);
    forget_peer(a, id);
    a->peers[id].used = true;
    a->peers[id].path = -1;
    a->peers[id].admission.admitted_ms = now;
    return id;
}

void forget_peer(punch_agent *a, int id)
{
    peer *p = &a->peers[id];
    birthday_forget(a, id); /* the extra sockets it had may go */
    turn_forget_peer(a, id); /* ...and the TURN channels only it used */
    punch_noise_handshake_wipe(&p->hs.noise);
    punch_transport_wipe(&p->t);
    punch_transport_wipe(&p->prev);
    memset(p, 0, sizeof(*p));
}

peer *session_peer(punch_agent *a, int id)
{
    if (!a || id < 0 || id >= MAX_PEERS || !a->peers[id].used)
        return NULL;
    return &a->peers[id];
}

static void on_server_msg(punch_agent *a, uint64_t now, const uint8_t *buf, const punch_msg *m)
{
    if (m->type == PUNCH_MSG_COOKIE) {
        on_cookie(a, now, m);
        return;
    }
    if (!mac_ok(a, buf, m)) {
        a->dropped++;
        return;
    }
    servers_heard_current(a, now);
    switch (m->type) {
    case PUNCH_MSG_REGISTERED: on_registered(a, now, m); break;
    case PUNCH_MSG_INTRODUCE: on_introduce(a, now, m); break;
    case PUNCH_MSG_REFUSED: on_refused(a, now, m); break;
    case PUNCH_MSG_TURN_ADDR: turn_on_addr(a, now, m); break;
    case PUNCH_MSG_RELAY_RATE: on_relay_rate(a, m); break;
    default: a->dropped++;
    }
}

/* What a datagram is, and whose: the server's (registration, discovery,
 * introductions, the relay) or a peer's (handshake, transport). */
static void handle_datagram(punch_agent *a, uint64_t now, const punch_addr *src,
                            const uint8_t *data, size_t len)
{
    punch_msg m;
    if (is_main_socket(a->rx_sock) && turn_agent_on_datagram(a, now, src, data, len))
        return;
    if (!is_main_socket(a->rx_sock) && (punch_stun_is_stun(data, len) || from_server(a, src))) {
        a->dropped++; /* extra sockets are for the peer only */
        return;
    }
    if (punch_stun_is_stun(data, len)) {
        on_stun(a, now, data, len); /* answers come from the server's other addresses too */
        return;
    }
    if (punch_msg_decode(data, len, &m) != 0) {
        a->dropped++;
        return;
    }
    if (m.type == PUNCH_MSG_COOKIE && servers_on_cookie(a, now, src, &m))
        return; /* a probe's answer (several servers) */
    bool server = from_server(a, src);
    switch (m.type) {
    case PUNCH_MSG_COOKIE:
    case PUNCH_MSG_REGISTERED:
    case PUNCH_MSG_INTRODUCE:
    case PUNCH_MSG_REFUSED:
    case PUNCH_MSG_TURN_ADDR:
    case PUNCH_MSG_RELAY_RATE:
        if (server)
            on_server_msg(a, now, data, &m);
        else
            a->dropped++;
        break;
    case PUNCH_MSG_RELAY:
        if (server)
            on_relay(a, now, src, &m);
        else
            a->dropped++;
        break;
    default: on_peer_msg(a, now, src, &m);
    }
}

void on_peer_msg(punch_agent *a, uint64_t now, const punch_addr *src, const punch_msg *m)
{
    switch (m->type) {
    case PUNCH_MSG_DATA: on_data(a, now, src, false, NULL, m->payload, m->payload_len); break;
    case PUNCH_MSG_HANDSHAKE1:
    case PUNCH_MSG_HANDSHAKE2:
        route_handshake(a, now, src, false, NULL, m->type, m->payload, m->payload_len);
        break;
    default: a->dropped++;
    }
}

int punch_agent_handle_datagram(punch_agent *a, uint64_t now, const punch_addr *src,
                                const uint8_t *data, size_t len)
{
    return punch_agent_handle_datagram_on(a, now, MAIN_SOCKET, src, data, len);
}

static bool valid_socket(punch_socket s)
{
    switch (s.kind) {
    case PUNCH_SOCKET_MAIN: return true;
    case PUNCH_SOCKET_EXTRA: return s.index >= 1 && s.index <= PUNCH_MAX_SOCKETS;
    case PUNCH_SOCKET_TCP: return s.index < PUNCH_TCP_MAX_SOCKETS;
    }
    return false;
}

int punch_agent_handle_datagram_on(punch_agent *a, uint64_t now, punch_socket sock,
                                   const punch_addr *src, const uint8_t *data, size_t len)
{
    if (!a || !src || !data || !valid_socket(sock))
        return PUNCH_ERR_INVAL;
    a->received++;
    a->rx_sock = sock;
    handle_datagram(a, now, src, data, len);
    a->rx_sock = MAIN_SOCKET;
    return 0;
}

/* ---- time: one table of {deadline, timeout} (the str0m shape) ----
 *
 * punch_agent_next_timeout is the earliest deadline in the table and
 * punch_agent_handle_timeout calls, in table order, each handler whose
 * deadline has come, so a handler's condition lives in its deadline
 * function only. A deadline of UINT64_MAX is never. Agent-wide entries run
 * first (id -1), then the per-peer ones for each peer in turn, rechecking
 * that the peer is still there (a handler may forget it). */
typedef enum timer_scope {
    TIMER_AGENT,      /* once, for the agent */
    TIMER_PEER,       /* for each peer in the table */
    TIMER_INTRODUCED, /* for each peer the server (or a peer) introduced */
} timer_scope;

typedef struct timer {
    timer_scope scope;
    uint64_t (*deadline)(const punch_agent *a, int id);
    void (*timeout)(punch_agent *a, uint64_t now, int id);
} timer;

static const timer timers[] = {
    {TIMER_AGENT, reg_deadline, reg_timeout},
    {TIMER_AGENT, disc_deadline, disc_timeout},
    {TIMER_AGENT, second_deadline, second_timeout},
    {TIMER_AGENT, portmap_deadline, portmap_timeout},
    {TIMER_AGENT, servers_deadline, servers_timeout},
    {TIMER_AGENT, turn_deadline, turn_timeout},
    {TIMER_AGENT, turn_offer_deadline, turn_offer_timeout},
    {TIMER_AGENT, waiting_deadline, waiting_timeout},
    {TIMER_PEER, admission_deadline, admission_timeout},
    {TIMER_PEER, connect_deadline, connect_timeout},
    {TIMER_INTRODUCED, probe_deadline, probe_timeout},
    {TIMER_INTRODUCED, birthday_deadline, birthday_timeout},
    {TIMER_INTRODUCED, keepalive_deadline, keepalive_timeout},
    {TIMER_INTRODUCED, rekey_deadline, rekey_timeout},
};
#define N_TIMERS (sizeof(timers) / sizeof(timers[0]))

/* Does timer t apply to id (-1: the agent)? */
static bool timer_applies(const punch_agent *a, const timer *t, int id)
{
    if (t->scope == TIMER_AGENT)
        return id < 0;
    if (id < 0 || !a->peers[id].used)
        return false;
    return t->scope == TIMER_PEER || a->peers[id].introduced;
}

static void run_timers(punch_agent *a, uint64_t now, int id)
{
    for (size_t k = 0; k < N_TIMERS; k++) {
        const timer *t = &timers[k];
        if (timer_applies(a, t, id) && timer_due(t->deadline(a, id), now))
            t->timeout(a, now, id);
    }
}

static uint64_t earliest_timer(const punch_agent *a, int id)
{
    uint64_t at = UINT64_MAX;
    for (size_t k = 0; k < N_TIMERS; k++)
        if (timer_applies(a, &timers[k], id))
            at = min_u64(at, timers[k].deadline(a, id));
    return at;
}

void punch_agent_handle_timeout(punch_agent *a, uint64_t now)
{
    if (!a)
        return;
    for (int id = -1; id < MAX_PEERS; id++)
        run_timers(a, now, id);
}

uint64_t punch_agent_next_timeout(const punch_agent *a)
{
    if (!a)
        return UINT64_MAX;
    uint64_t at = UINT64_MAX;
    for (int id = -1; id < MAX_PEERS; id++)
        at = min_u64(at, earliest_timer(a, id));
    return at;
}

/* ---- the public calls (the TCP ones are in tcp_offer.c) ---- */

int punch_agent_connect(punch_agent *a, uint64_t now, const char *name, const uint8_t *pinned)
{
    if (!a || !punch_msg_valid_name(name))
        return PUNCH_ERR_INVAL;
    int id = new_peer(a, now, false);
    if (id < 0)
        return PUNCH_ERR_LIMIT;
    peer *p = &a->peers[id];
    snprintf(p->name, sizeof(p->name), "%s", name);
    if (pinned) {
        memcpy(p->key, pinned, PUNCH_KEY_BYTES);
        p->pinned = true;
    }
    new_txid(a, p->connect.txid);
    p->connect.asked = true;
    p->prefer_tcp = (a->cfg.flags & PUNCH_AGENT_TCP) != 0;
    p->connect.next_ms = now;
    if (timer_due(connect_deadline(a, id), now))
        connect_timeout(a, now, id);
    return id;
}

int punch_agent_introduce(punch_agent *a, uint64_t now, int x, int y)
{
    if (!a || x < 0 || y < 0 || x >= MAX_PEERS || y >= MAX_PEERS || x == y || !a->peers[x].used ||
        !a->peers[y].used)
        return PUNCH_ERR_NOTFOUND;
    if (!a->peers[x].ready || a->peers[x].path < 0 || !a->peers[y].ready || a->peers[y].path < 0)
        return PUNCH_ERR_LIMIT;
    uint8_t sid[PUNCH_MSG_SESSION_LEN];
    random_bytes(a, sid, sizeof(sid));
    int rc = send_introduction(a, now, x, y, sid, PUNCH_INTRO_INITIATOR);
    if (rc == 0)
        rc = send_introduction(a, now, y, x, sid, 0);
    return rc;
}

int punch_agent_send(punch_agent *a, uint64_t now, int id, const uint8_t *data, size_t len)
{
    if (!a || id < 0 || id >= MAX_PEERS || !a->peers[id].used)
        return PUNCH_ERR_NOTFOUND;
    if (len > max_datagram(a) || (!data && len))
        return PUNCH_ERR_INVAL;
    peer *p = &a->peers[id];
    if (!p->ready || p->path < 0)
        return PUNCH_ERR_LIMIT;
    uint8_t inner[PUNCH_MAX_DATAGRAM_LARGE + 1]; /* not zeroed: every datagram costs that */
    inner[0] = INNER_DATA;
    if (len)
        memcpy(inner + 1, data, len);
    return send_transport(a, now, p, &p->cand[p->path], inner, len + 1);
}

void punch_agent_close(punch_agent *a, uint64_t now, int id)
{
    if (!a || id < 0 || id >= MAX_PEERS || !a->peers[id].used)
        return;
    peer *p = &a->peers[id];
    /* CLOSE_COPIES copies (each sealed afresh, so the replay window takes
     * all): a lost goodbye leaves the peer holding a slot for a session
     * nobody answers (loss, issue 10). */
    for (int k = 0; p->ready && p->path >= 0 && k < CLOSE_COPIES; k++) {
        uint8_t bye = INNER_CLOSE;
        send_transport(a, now, p, &p->cand[p->path], &bye, 1);
    }
    forget_peer(a, id);
}

void punch_agent_stats_get(const punch_agent *a, punch_agent_stats *out)
{
    if (!a || !out)
        return;
    *out = (punch_agent_stats){.received = a->received,
                               .sent = a->sent,
                               .dropped = a->dropped,
                               .unsent = a->unsent,
                               .overflowed = a->overflowed,
                               .events_lost = a->events_lost,
                               .expired = a->expired,
                               .evicted = a->evicted,
                               .turned_away = a->turned_away,
                               .readmitted = a->readmitted,
                               .probes_withheld = a->probes_withheld,
                               .server_failovers = a->servers.failovers};
}

int punch_agent_poll_transmit(punch_agent *a, punch_addr *dst, uint8_t *ttl, uint8_t *buf,
                              size_t cap, size_t *len)
{
    punch_socket sock;
    int rc;
    while ((rc = punch_agent_poll_transmit_from(a, &sock, dst, ttl, buf, cap, len)) == 1 &&
           !is_main_socket(sock)) {
        /* For an extra socket this caller does not have: not sent. */
        a->sent--;
        a->unsent++;
    }
    return rc;
}

int punch_agent_poll_transmit_from(punch_agent *a, punch_socket *sock, punch_addr *dst, uint8_t *ttl,
                                   uint8_t *buf, size_t cap, size_t *len)
{
    if (!a || !sock || !dst || !ttl || !buf || !len)
        return PUNCH_ERR_INVAL;
    if (a->tx_count == 0)
        return 0;
    if (cap < a->txq[a->tx_head].len)
        return PUNCH_ERR_NOBUFS;
    const uint8_t *data;
    punch_agent_poll_transmit_view(a, sock, dst, ttl, &data, len);
    memcpy(buf, data, *len);
    return 1;
}

int punch_agent_poll_transmit_view(punch_agent *a, punch_socket *sock, punch_addr *dst, uint8_t *ttl,
                                   const uint8_t **data, size_t *len)
{
    if (!a || !sock || !dst || !ttl || !data || !len)
        return PUNCH_ERR_INVAL;
    if (a->tx_count == 0)
        return 0;
    /* Its slot is free now, and written again when the ring comes round
     * to it: not before the agent queues another. */
    const tx *t = &a->txq[a->tx_head];
    *sock = t->sock;
    *dst = t->dst;
    *ttl = t->ttl;
    *data = t->buf;
    *len = t->len;
    a->tx_head = (a->tx_head + 1) % TXQ_LEN;
    a->tx_count--;
    a->sent++;
    return 1;
}

int punch_agent_poll_event(punch_agent *a, punch_event *out)
{
    if (!a || !out || a->ev_count == 0)
        return 0;
    ev *slot = &a->evq[a->ev_head];
    *out = slot->e;
    if (out->kind == PUNCH_EVENT_DATA) {
        /* The slot's room becomes current's (valid until the next poll),
         * current's the slot's: the bytes are not copied. */
        uint8_t *room = a->current.room;
        a->current.room = slot->room;
        slot->room = room;
        out->data.bytes = a->current.room + 1;
    }
    a->ev_head = (a->ev_head + 1) % EVQ_LEN;
    a->ev_count--;
    return 1;
}

static bool valid_server(const punch_addr *s)
{
    return (s->family == PUNCH_AF_INET || s->family == PUNCH_AF_INET6) && s->port != 0;
}

static bool valid_servers(const punch_agent_cfg *cfg)
{
    if (!valid_server(&cfg->server) || cfg->n_more_servers >= PUNCH_MAX_SERVERS)
        return false;
    if (cfg->turn_server.family != PUNCH_AF_NONE && /* one socket: one family */
        (cfg->turn_server.family != cfg->server.family || cfg->turn_server.port == 0))
        return false;
    for (size_t i = 0; i < cfg->n_more_servers; i++)
        if (!valid_server(&cfg->more_servers[i]))
            return false;
    return true;
}

int punch_agent_new(punch_agent **out, const punch_agent_cfg *cfg, uint64_t now)
{
    if (!out || !cfg || !cfg->random || cfg->n_local > PUNCH_MAX_LOCAL || !valid_servers(cfg) ||
        (cfg->name && !punch_msg_valid_name(cfg->name)) ||
        punch_nat64_prefix_check(&cfg->nat64_prefix))
        return PUNCH_ERR_INVAL;
    punch_agent *a = calloc(1, sizeof(*a));
    if (!a)
        return PUNCH_ERR_NOMEM;
    a->txq = calloc(TXQ_LEN, sizeof(tx));
    a->evq = calloc(EVQ_LEN, sizeof(ev));
    a->rooms = malloc((size_t)(EVQ_LEN + 1) * EV_ROOM);
    if (!a->txq || !a->evq || !a->rooms) {
        punch_agent_free(a);
        return PUNCH_ERR_NOMEM;
    }
    for (size_t i = 0; i < EVQ_LEN; i++)
        a->evq[i].room = a->rooms + i * EV_ROOM;
    a->current.room = a->rooms + (size_t)EVQ_LEN * EV_ROOM;
    a->cfg = *cfg;
    family_nat64_servers(&a->cfg);
    if (punch_identity_from_secret(&a->id, cfg->secret_key) != 0) {
        punch_agent_free(a);
        return PUNCH_ERR_INVAL;
    }
    memset(a->cfg.secret_key, 0, sizeof(a->cfg.secret_key));
    a->cfg.name = NULL; /* the caller's string is not ours to keep */
    a->keepalive_ms = cfg->keepalive_ms ? cfg->keepalive_ms : DEFAULT_KEEPALIVE_MS;
    a->open.ttl = cfg->open_ttl ? cfg->open_ttl : DEFAULT_OPEN_TTL;
    a->open.low_ttl = cfg->open_guard_ms != UINT32_MAX;
    a->open.guard_ms = a->open.low_ttl ? cfg->open_guard_ms : 0;
    /* Everyone registers (the server introduces only registered peers);
     * without a name, one is made from the key. */
    if (cfg->name)
        snprintf(a->name, sizeof(a->name), "%s", cfg->name);
    else
        for (int i = 0; i < 8; i++)
            snprintf(a->name + 2 * i, 3, "%02x", a->id.public_key[i]);
    a->birthday_owner = -1;
    uint8_t nonce[12]; /* PCP's mapping nonce */
    random_bytes(a, nonce, sizeof(nonce));
    punch_portmap_init(&a->portmap, cfg->portmap, nonce, now);
    servers_init(a, now);
    reg_start(a, REG_HELLO, now);
    token_setup(a);
    reg_timeout(a, now, -1);
    disc_start(a, now); /* beside HELLO: no time lost */
    second_ask_now(a, now);
    int rc = turn_agent_start(a, now);
    if (rc != 0) {
        punch_agent_free(a);
        return rc;
    }
    *out = a;
    return 0;
}

void punch_agent_free(punch_agent *a)
{
    if (!a)
        return;
    for (int i = 0; i < MAX_PEERS; i++)
        if (a->peers[i].used)
            forget_peer(a, i);
    punch_identity_wipe(&a->id);
    turn_agent_free(a);
    free(a->txq);
    free(a->evq);
    free(a->rooms);
    free(a);
}
