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
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/auth.h"
#include "crypto/noise.h"
#include "core/natcheck.h"
#include "core/portmap.h" /* portmap hook */
#include "crypto/transport.h"
#include "punch/punch.h"
#include "wire/bytes.h"
#include "wire/msg.h"
#include "wire/stun.h"

#define MAX_PEERS 16
#define MAX_CANDIDATES 24
#define TXQ_LEN 256
#define EVQ_LEN 128
#define DGRAM_MAX 1500

/* Retransmission of requests to the server: 250 ms, doubling up to 2 s,
 * 16 tries (about 25 s). RFC 8489 §6.2.1 doubles from 500 ms without a cap;
 * the cap keeps a lossy access link from costing tens of seconds. */
#define SERVER_RTO_MS 250
#define SERVER_RTO_MAX_MS 2000
#define SERVER_TRIES 16
#define DEFAULT_KEEPALIVE_MS 25000 /* well under common 30 s NAT timeouts */
/* The conntrack trap (punch_agent_cfg.open_ttl): 2 hops leave a host and
 * its NAT. The guard comes from both round trips to the server
 * (probe_guard_ms); without them, 100 ms covers the usual difference
 * between the two peers' delays from the server, which is how far apart
 * they start punching; never more than 2 s. */
#define DEFAULT_OPEN_TTL 2
#define DEFAULT_OPEN_GUARD_MS 100
#define MAX_OPEN_GUARD_MS 2000
/* A candidate taken on one-way proof must answer a PING within this. */
#define CONFIRM_MS 1000

/* Probing budget per candidate (§6.2, §4.3): every 100 ms for the first
 * second, then every second until 10 s; then every 15 s in the background
 * while the peer is on the relay or has no path. */
#define PROBE_FAST_MS 100
#define PROBE_FAST_COUNT 10
#define PROBE_SLOW_MS 1000
#define PROBE_GIVE_UP_MS 10000
#define PROBE_BACKGROUND_MS 15000

/* Port prediction (draft §3.4): the peer's NAT allocates a new public
 * port per destination, `step` after the latest; the first probes go to the
 * next PREDICT_WINDOW of them, in order, before anything else new, so that
 * two such NATs allocate in step with each other. */
#define PREDICT_WINDOW 8
/* Many-port probing ("birthday", issue 5) for a NAT that gives each
 * destination a random port: the side behind it opens BIRTHDAY_SOCKETS
 * more sockets and sends from each to the peer's public endpoint (with
 * the low TTL: it only has to open its own NAT); the peer, whose NAT maps
 * endpoint-independently, sends BIRTHDAY_PROBES probes to random ports of
 * that public address. With 256 of ~64k ports open, 1024 probes hit one
 * with probability 1 - (1 - 256/64512)^1024, about 98 %. Paced at
 * BIRTHDAY_BATCH per BIRTHDAY_TICK_MS, within BIRTHDAY_BUDGET_MS; the first
 * answer wins and the other sockets are closed (PUNCH_EVENT_SOCKETS). */
#define BIRTHDAY_SOCKETS 256
#define BIRTHDAY_PROBES 1024
#define BIRTHDAY_BATCH 16
#define BIRTHDAY_TICK_MS 10
#define BIRTHDAY_BUDGET_MS 10000
#define BIRTHDAY_PORT_MIN 1024

/* NAT discovery: STUN Binding retransmissions (250 ms doubling). */
#define DISC_RTO_MS 250
#define DISC_TRIES 4

/* Datagrams the responder sends before the initiator is known to hold
 * the session's keys (its message 2 may be late or lost): kept, sealed,
 * and sent once more when the first datagram under those keys comes in;
 * the receiver's replay window drops what it had already. */
#define EARLY_MAX 16

/* Path upkeep: a PING on the path in use when it has been quiet this long;
 * three unanswered mark it dead. */
#define KEEPALIVE_PATH_MS 2000
#define DEAD_AFTER_MISSED 3

/* Inner types of transport payloads. */
enum {
    INNER_PING = 1,
    INNER_PONG = 2,
    INNER_DATA = 3,
    INNER_CLOSE = 4,
    INNER_INTRODUCE = 5,
    INNER_TCP = 6, /* then a TCP_OFFER message (src/wire/msg.h) */
};
#define PING_LEN 9

static const char PROLOGUE_LABEL[] = "punch/0 introduction ";

typedef enum reg_state { REG_HELLO = 1, REG_REGISTER, REG_DONE } reg_state;

/* NAT discovery (draft §3.4, RFC 5780 §4.3): after the first registration,
 * a STUN Binding request to the server's address; when the answer names
 * another (OTHER-ADDRESS: punchd --alt), requests to the three other
 * address/port pairs, sent one after the other. The public endpoints the
 * server saw say whether our NAT maps per destination and with what step
 * it allocates; REGISTER tells the server, INTRODUCE tells peers. */
typedef enum disc_state { DISC_IDLE = 0, DISC_MAIN, DISC_OTHERS, DISC_DONE } disc_state;

typedef struct discovery {
    disc_state state;
    unsigned n;                /* destinations: 1, then 4 */
    punch_addr dst[4];         /* main, alt IP, alt IP and port, alt port */
    punch_addr seen[4];        /* our public endpoint as each saw it; AF_NONE: no answer */
    uint8_t txid[4][PUNCH_STUN_TXID_LEN];
    uint64_t next_ms, asked_ms;
    unsigned tries;
} discovery;

typedef struct candidate {
    punch_addr addr;           /* the server's address for the relay */
    uint16_t sock;             /* our socket it is reached from (0: the main one) */
    punch_technique technique;
    uint64_t first_probe_ms;
    uint64_t next_probe_ms;
    unsigned probes;
    uint64_t last_probe_ms;
    bool validated;
    bool confirmed;            /* validated both ways (a PONG or a message 2 came back) */
    uint64_t heard_ms;         /* validated one way: when */
    uint64_t unheard_ms;       /* when that last came to nothing (unhear) */
    bool gave_up;              /* the ATTEMPT event was told */
    uint64_t ping_sent_ms;
    uint8_t ping_nonce[8];
    uint32_t rtt_us;
    bool closed;               /* a TCP connection that is gone: never used again */
} candidate;

typedef struct peer {
    bool used;
    char name[PUNCH_NAME_MAX + 1];
    uint8_t key[PUNCH_KEY_BYTES];
    bool pinned;
    /* CONNECT, repeated (same transaction) until the session is up: the
     * server introduces both sides again for each copy, so a lost
     * INTRODUCE on either side is made good. */
    bool asked;
    bool introduced;
    uint8_t connect_txid[PUNCH_MSG_TXID_LEN];
    uint64_t connect_next_ms;
    unsigned connect_tries;
    /* From INTRODUCE. */
    uint8_t session[PUNCH_MSG_SESSION_LEN];
    bool initiator;
    uint16_t peer_rtt_ms;      /* the peer's round trip to the introducer (INTRODUCE) */
    uint32_t my_rtt_ms;        /* ours to the introducer (the server, or a peer) */
    uint64_t guard_ms;         /* low-TTL time for public endpoints (probe_guard_ms) */
    uint64_t guard_from_ms;    /* ...from the introduction (or the news of new endpoints) */
    bool reconnect;            /* asked again after the path died; until re-introduced */
    bool prefer_tcp;           /* we or the peer asked for a TCP path (punch_agent_tcp_offer) */
    /* Many-port probing: which side of it we are, from when, how far. */
    enum { BIRTHDAY_NONE, BIRTHDAY_MANY_SOCKETS, BIRTHDAY_MANY_PORTS } birthday;
    uint64_t birthday_start_ms, birthday_next_ms;
    unsigned birthday_sent;
    uint16_t birthday_first;   /* MANY_SOCKETS: our first extra socket */
    uint16_t birthday_ports[BIRTHDAY_PROBES]; /* MANY_PORTS: the ports probed */
    punch_addr birthday_to;    /* the peer's public endpoint */
    size_t n_cand;
    candidate cand[MAX_CANDIDATES];
    /* Handshake. */
    punch_noise_handshake hs;
    uint8_t msg1[128];         /* our message 1 (initiator) or opener (responder) */
    size_t msg1_len;
    uint8_t msg2[128];         /* responder: our answer, repeated to copies */
    size_t msg2_len;
    uint8_t answered_e[32];    /* responder: the ephemeral key we answered */
    uint8_t answer_e[32];      /* initiator: the responder's ephemeral in the answer taken */
    uint32_t local_index;
    /* Transport: the session in use, and the one before the last rekey,
     * still accepted while datagrams sealed with it are in flight. */
    bool ready;
    punch_transport t;
    punch_transport prev;
    bool has_prev;
    /* Responder: the initiator has not yet shown it holds t's keys. */
    bool unconfirmed;
    uint8_t n_early;
    uint16_t early_len[EARLY_MAX];
    uint8_t early[EARLY_MAX][PUNCH_MAX_DATAGRAM_LARGE + 64];
    /* Initiator: a new handshake is under way on the path (rekey). */
    bool rekeying;
    uint64_t rekey_next_ms;
    int path;                  /* candidate in use, -1 none */
    uint64_t last_rx_ms;       /* last authenticated datagram on the path */
    uint64_t next_keepalive_ms;
    unsigned missed;
} peer;

typedef struct tx {
    punch_addr dst;
    uint16_t sock;             /* 0: the main socket; k: many-port probing's k-th */
    uint8_t ttl;
    uint16_t len;
    uint8_t buf[DGRAM_MAX];
} tx;

typedef struct ev {
    punch_event e;
    uint8_t data[PUNCH_MAX_DATAGRAM_LARGE];
} ev;

struct punch_agent {
    punch_agent_cfg cfg;
    punch_identity id;
    char name[PUNCH_NAME_MAX + 1];
    /* Registration. */
    reg_state reg;
    uint8_t reg_txid[PUNCH_MSG_TXID_LEN];
    uint64_t reg_next_ms;
    unsigned reg_tries;
    uint64_t reg_sent_ms;      /* the latest HELLO or REGISTER */
    uint32_t server_rtt_ms;    /* from unrepeated requests (rtt_sample); 0 unknown */
    uint16_t rtt_told;         /* the one the latest REGISTER said */
    uint8_t server_key[PUNCH_KEY_BYTES];
    uint8_t mac_key[PUNCH_AUTH_KEY_LEN];
    uint8_t cookie[PUNCH_MSG_COOKIE_LEN];
    punch_addr public_addr;
    discovery disc;
    bool reg_told_nat;         /* the REGISTER in flight carries discovery's result */
    bool announced;            /* the REGISTERED event was told */
    uint8_t nat_mapping;       /* punch_msg_nat, from discovery */
    uint16_t nat_step, nat_port;
    uint32_t keepalive_ms;
    uint8_t open_ttl;
    uint64_t open_guard_ms;    /* 0: adaptive (probe_guard_ms) */
    bool low_ttl;              /* open_ttl used at all */
    /* Peers. */
    peer peers[MAX_PEERS];
    /* Queues. */
    tx *txq;
    size_t tx_head, tx_count;
    ev *evq;
    size_t ev_head, ev_count;
    ev current;                /* the event last handed out (its data stays valid) */
    uint64_t received, sent;   /* datagrams */
    uint64_t unsent;           /* for extra sockets, taken by punch_agent_poll_transmit */
    uint64_t overflowed;       /* the oldest queued datagram, pushed out by a new one */
    uint64_t events_lost;      /* the oldest queued event, pushed out by a new one */
    /* Many-port probing: extra sockets next_sock.. are free; one peer at a
     * time opens BIRTHDAY_SOCKETS of them. */
    uint16_t next_sock;
    int birthday_owner;        /* peer id, -1 */
    uint16_t rx_sock;          /* the socket of the datagram being handled */
    uint64_t dropped;          /* datagrams not for us, forged, stale */
    punch_portmap portmap;     /* portmap hook: core/portmap.c */
};

/* ---- small helpers ---- */

static void random_bytes(punch_agent *a, void *buf, size_t len)
{
    a->cfg.random(a->cfg.random_ctx, buf, len);
}

static void new_txid(punch_agent *a, uint8_t txid[PUNCH_MSG_TXID_LEN])
{
    random_bytes(a, txid, PUNCH_MSG_TXID_LEN);
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

const char *punch_path_kind_name(punch_path_kind k)
{
    return k == PUNCH_PATH_RELAY ? "relay" : "direct";
}

const char *punch_technique_name(punch_technique t)
{
    switch (t) {
    case PUNCH_TECH_PRIVATE: return "private";
    case PUNCH_TECH_HAIRPIN: return "hairpin";
    case PUNCH_TECH_HOLE_PUNCH: return "hole-punch";
    case PUNCH_TECH_PEER_REFLEXIVE: return "peer-reflexive";
    case PUNCH_TECH_RELAY: return "relay";
    case PUNCH_TECH_PORT_PREDICTION: return "port-prediction";
    case PUNCH_TECH_BIRTHDAY: return "birthday";
    case PUNCH_TECH_TCP_SIMOPEN: return "tcp-simultaneous-open";
    case PUNCH_TECH_REVERSAL: return "reversal";
    case PUNCH_TECH_TCP_DIRECT: return "tcp-direct";
    case PUNCH_TECH_PORTMAP: return "portmap"; /* portmap hook */
    }
    return "unknown";
}

static bool is_tcp(punch_technique t)
{
    return t == PUNCH_TECH_TCP_SIMOPEN || t == PUNCH_TECH_REVERSAL || t == PUNCH_TECH_TCP_DIRECT;
}

static bool is_tcp_sock(uint16_t sock)
{
    return sock >= PUNCH_TCP_SOCK_FIRST && sock <= PUNCH_TCP_SOCK_LAST;
}

/* Lower is better (module comment, step 5). A TCP path is worse than any
 * direct UDP one (head-of-line blocking under datagrams, a TCP connection
 * per peer) and better than the relay, unless a side asked for TCP: then
 * it beats everything. */
static int priority_of(bool prefer_tcp, punch_technique t)
{
    switch (t) {
    case PUNCH_TECH_PRIVATE: return 1;
    case PUNCH_TECH_HAIRPIN: return 2;
    case PUNCH_TECH_HOLE_PUNCH:
    case PUNCH_TECH_PORT_PREDICTION:
    case PUNCH_TECH_BIRTHDAY:
    case PUNCH_TECH_PORTMAP: /* portmap hook */
    case PUNCH_TECH_PEER_REFLEXIVE: return 3;
    case PUNCH_TECH_TCP_SIMOPEN:
    case PUNCH_TECH_REVERSAL:
    case PUNCH_TECH_TCP_DIRECT: return prefer_tcp ? 0 : 4;
    default: return 5;
    }
}

static int priority(const peer *p, punch_technique t)
{
    return priority_of(p->prefer_tcp, t);
}

/* The best kind of path (the private one, or TCP when asked for). */
#define PRIORITY_BEST 1

static ev *push_event(punch_agent *a, punch_event_kind kind, int peer_id)
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

/* Queue a datagram; the oldest is dropped when the queue is full. */
/* An ATTEMPT event: what was tried on candidate c, and why it failed. */
__attribute__((format(printf, 4, 5))) static void tell_attempt(punch_agent *a, int id,
                                                               const candidate *c,
                                                               const char *why, ...)
{
    ev *e = push_event(a, PUNCH_EVENT_ATTEMPT, id);
    e->e.technique = c->technique;
    e->e.remote = c->addr;
    e->e.path_kind = c->technique == PUNCH_TECH_RELAY ? PUNCH_PATH_RELAY : PUNCH_PATH_DIRECT;
    va_list ap;
    va_start(ap, why);
    vsnprintf(e->e.why, sizeof(e->e.why), why, ap);
    va_end(ap);
}

static uint8_t *push_tx(punch_agent *a, uint16_t sock, const punch_addr *dst, uint8_t ttl,
                        size_t len)
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
 * to leave with this TTL (0: the system's). */
static void send_msg_ttl(punch_agent *a, uint16_t sock, const punch_addr *dst, uint8_t ttl,
                         const punch_msg *m)
{
    uint8_t buf[DGRAM_MAX];
    size_t len;
    if (punch_msg_encode(m, buf, sizeof(buf), &len) != 0)
        return;
    if (punch_msg_has_mac(m->type))
        punch_auth_mac(a->mac_key, buf, len - PUNCH_MSG_MAC_LEN, buf + len - PUNCH_MSG_MAC_LEN);
    uint8_t *out = push_tx(a, sock, dst, ttl, len);
    if (out)
        memcpy(out, buf, len);
}

static void send_msg(punch_agent *a, const punch_addr *dst, const punch_msg *m)
{
    send_msg_ttl(a, 0, dst, 0, m);
}

/* ---- registration ---- */

static uint64_t server_rto(unsigned tries)
{
    uint64_t rto = (uint64_t)SERVER_RTO_MS << (tries < 4 ? tries : 4);
    return rto < SERVER_RTO_MAX_MS ? rto : SERVER_RTO_MAX_MS;
}

static void send_hello(punch_agent *a)
{
    punch_msg m = {.type = PUNCH_MSG_HELLO};
    memcpy(m.txid, a->reg_txid, PUNCH_MSG_TXID_LEN);
    send_msg(a, &a->cfg.server, &m);
}

static void send_register(punch_agent *a)
{
    punch_msg m = {.type = PUNCH_MSG_REGISTER, .n_private = a->cfg.n_local};
    memcpy(m.txid, a->reg_txid, PUNCH_MSG_TXID_LEN);
    memcpy(m.cookie, a->cookie, PUNCH_MSG_COOKIE_LEN);
    memcpy(m.key, a->id.public_key, PUNCH_KEY_BYTES);
    memcpy(m.name, a->name, sizeof(m.name));
    memcpy(m.private_addr, a->cfg.local, sizeof(punch_addr) * a->cfg.n_local);
    m.n_mapped = punch_portmap_advertise(&a->portmap, m.private_addr, &m.n_private,
                                         PUNCH_MSG_MAX_PRIVATE); /* portmap hook */
    m.rtt_ms = (uint16_t)(a->server_rtt_ms < UINT16_MAX ? a->server_rtt_ms : UINT16_MAX);
    a->rtt_told = m.rtt_ms;
    m.nat_mapping = a->nat_mapping;
    m.nat_step = a->nat_step;
    m.nat_port = a->nat_port;
    a->reg_told_nat = a->disc.state == DISC_DONE;
    send_msg(a, &a->cfg.server, &m);
}

/* (Re)start a registration step: a new transaction, sent now. */
static void reg_start(punch_agent *a, reg_state st, uint64_t now)
{
    a->reg = st;
    a->reg_tries = 0;
    new_txid(a, a->reg_txid);
    a->reg_next_ms = now;
}

static void reg_timeout(punch_agent *a, uint64_t now)
{
    if (now < a->reg_next_ms)
        return;
    if (a->reg == REG_DONE) {
        /* Keepalive: REGISTER again with the cookie we were given. */
        reg_start(a, REG_REGISTER, now);
    }
    if (a->reg_tries == SERVER_TRIES) {
        /* The server is gone or lost our state: start over, slowly. */
        reg_start(a, REG_HELLO, now);
        a->reg_next_ms = now + SERVER_RTO_MS * 16;
        return;
    }
    if (a->reg == REG_HELLO)
        send_hello(a);
    else
        send_register(a);
    a->reg_next_ms = now + server_rto(a->reg_tries);
    a->reg_sent_ms = now;
    a->reg_tries++;
}

/* An answer to an unrepeated request times the round trip (Karn's rule). */
/* The guard (probe_guard_ms) wants the path's delay, not its worst
 * moment (a first packet waits for ARP, a busy host answers late): a lower
 * sample is taken at once, a higher one moves the estimate an eighth. */
static void rtt_sample(punch_agent *a, uint64_t sent_ms, uint64_t now)
{
    uint32_t r = (uint32_t)min_u64(now - sent_ms, 60000);
    r = r ? r : 1;
    if (!a->server_rtt_ms || r <= a->server_rtt_ms)
        a->server_rtt_ms = r;
    else
        a->server_rtt_ms = (7 * a->server_rtt_ms + r) / 8;
}

static void sample_server_rtt(punch_agent *a, uint64_t now)
{
    if (a->reg_tries == 1)
        rtt_sample(a, a->reg_sent_ms, now);
}

/* Register again now (the path to a peer went quiet: our NAT may have
 * given us a new public endpoint, which the server and the peer must
 * learn). */
static void reregister(punch_agent *a, uint64_t now)
{
    if (a->reg == REG_DONE)
        a->reg_next_ms = now;
}

/* The REGISTERED event: our public endpoint and what discovery found. */
static void announce(punch_agent *a)
{
    static const char *const nat_names[] = {"unknown", "eim", "adm", "apdm"};
    ev *e = push_event(a, PUNCH_EVENT_REGISTERED, -1);
    e->e.remote = a->public_addr;
    e->e.nat = nat_names[a->nat_mapping];
    e->e.port_step = (int16_t)a->nat_step;
    e->e.nat_port = a->nat_port;
    a->announced = true;
}

/* ---- NAT discovery ---- */

static void disc_send(punch_agent *a, unsigned i)
{
    uint8_t req[64], *out;
    punch_stun_writer w;
    size_t len = 0;
    punch_stun_writer_init(&w, req, sizeof(req), PUNCH_STUN_BINDING, PUNCH_STUN_REQUEST,
                           a->disc.txid[i]);
    punch_stun_put_fingerprint(&w);
    if (punch_stun_finish(&w, &len) == 0 && (out = push_tx(a, 0, &a->disc.dst[i], 0, len)))
        memcpy(out, req, len);
}

/* Ask every destination not answered yet. */
static void disc_ask(punch_agent *a, uint64_t now)
{
    for (unsigned i = 0; i < a->disc.n; i++)
        if (a->disc.seen[i].family == PUNCH_AF_NONE)
            disc_send(a, i);
    a->disc.next_ms = now + ((uint64_t)DISC_RTO_MS << a->disc.tries);
    a->disc.asked_ms = now;
    a->disc.tries++;
}

static void disc_start(punch_agent *a, uint64_t now)
{
    discovery *d = &a->disc;
    memset(d, 0, sizeof(*d));
    d->state = DISC_MAIN;
    d->n = 1;
    d->dst[0] = a->cfg.server;
    random_bytes(a, d->txid, sizeof(d->txid));
    disc_ask(a, now);
}

static int16_t port_diff(uint16_t later, uint16_t earlier)
{
    return (int16_t)(uint16_t)(later - earlier);
}

static bool small_step(int16_t d)
{
    return d != 0 && d >= -PUNCH_NATCHECK_MAX_STEP && d <= PUNCH_NATCHECK_MAX_STEP;
}

/* What the answers say; then REGISTER again, so the server knows. */
static void disc_finish(punch_agent *a, uint64_t now)
{
    discovery *d = &a->disc;
    d->state = DISC_DONE;
    d->next_ms = UINT64_MAX;
    punch_nat_mapping mapping;
    if (d->n < 4 ||
        punch_natcheck_mapping(&d->seen[0], &d->seen[1], &d->seen[2], &mapping) != 0) {
        /* No second server address, or no answers: unknown, which every
         * REGISTER says unless told otherwise. */
        if (a->reg == REG_DONE && !a->announced)
            announce(a);
        return;
    }
    const uint16_t *p = (const uint16_t[]){d->seen[0].port, d->seen[1].port, d->seen[2].port,
                                           d->seen[3].port};
    int16_t step = 0;
    uint16_t last = p[0];
    if (mapping == PUNCH_NAT_APDM) {
        /* Four new mappings in a row: the same step each time. */
        int16_t s1 = port_diff(p[1], p[0]);
        if (small_step(s1) && port_diff(p[2], p[1]) == s1 && port_diff(p[3], p[2]) == s1)
            step = s1;
        last = p[3];
    } else if (mapping == PUNCH_NAT_ADM) {
        /* One new mapping (the other IP); the other port kept it. */
        int16_t s1 = port_diff(p[1], p[0]);
        if (small_step(s1) && p[2] == p[1] && p[3] == p[0])
            step = s1;
        last = p[1];
    }
    a->nat_mapping = mapping == PUNCH_NAT_EIM   ? PUNCH_MSG_NAT_EIM
                     : mapping == PUNCH_NAT_ADM ? PUNCH_MSG_NAT_ADM
                                                    : PUNCH_MSG_NAT_APDM;
    a->nat_step = (uint16_t)step;
    a->nat_port = last;
    reregister(a, now);
}

static void disc_timeout(punch_agent *a, uint64_t now)
{
    discovery *d = &a->disc;
    if ((d->state != DISC_MAIN && d->state != DISC_OTHERS) || now < d->next_ms)
        return;
    if (d->tries == DISC_TRIES)
        disc_finish(a, now);
    else
        disc_ask(a, now);
}

/* A STUN answer from the server: one of ours? */
static void on_stun(punch_agent *a, uint64_t now, const uint8_t *buf, size_t len)
{
    discovery *d = &a->disc;
    punch_stun_msg m;
    if ((d->state != DISC_MAIN && d->state != DISC_OTHERS) ||
        punch_stun_decode(&m, buf, len) != 0 || m.classic || m.cls != PUNCH_STUN_SUCCESS ||
        m.method != PUNCH_STUN_BINDING) {
        a->dropped++;
        return;
    }
    unsigned i = 0;
    while (i < d->n && memcmp(d->txid[i], m.txid, PUNCH_STUN_TXID_LEN) != 0)
        i++;
    const punch_stun_attr *x = punch_stun_find(&m, PUNCH_STUN_ATTR_XOR_MAPPED_ADDRESS);
    punch_addr seen;
    if (i == d->n || !x || punch_stun_read_addr(&m, x, &seen) != 0) {
        a->dropped++;
        return;
    }
    d->seen[i] = seen;
    if (d->tries == 1)
        rtt_sample(a, d->asked_ms, now); /* unrepeated: a round trip to the server */
    if (d->state == DISC_MAIN) {
        const punch_stun_attr *o = punch_stun_find(&m, PUNCH_STUN_ATTR_OTHER_ADDRESS);
        punch_addr other;
        if (!o || punch_stun_read_addr(&m, o, &other) != 0 || other.family != d->dst[0].family ||
            punch_addr_same_ip(&other, &d->dst[0]) || other.port == d->dst[0].port) {
            disc_finish(a, now);
            return;
        }
        /* The three others, one after the other (RFC 5780 §4.3 order). */
        d->dst[1] = other;
        d->dst[1].port = d->dst[0].port;
        d->dst[2] = other;
        d->dst[3] = d->dst[0];
        d->dst[3].port = other.port;
        d->n = 4;
        d->state = DISC_OTHERS;
        d->tries = 0;
        disc_ask(a, now);
        return;
    }
    for (i = 0; i < d->n; i++)
        if (d->seen[i].family == PUNCH_AF_NONE)
            return;
    disc_finish(a, now);
}

static bool from_server(const punch_agent *a, const punch_addr *src)
{
    return punch_addr_equal(src, &a->cfg.server);
}

static bool mac_ok(const punch_agent *a, const uint8_t *buf, const punch_msg *m)
{
    return m->mac && punch_auth_verify(a->mac_key, buf, m->mac_offset, m->mac) == 0;
}

static void on_cookie(punch_agent *a, uint64_t now, const punch_msg *m)
{
    if (a->reg != REG_HELLO || memcmp(m->txid, a->reg_txid, PUNCH_MSG_TXID_LEN) != 0)
        return;
    if (a->cfg.pin_server && memcmp(m->key, a->cfg.server_key, PUNCH_KEY_BYTES) != 0) {
        ev *e = push_event(a, PUNCH_EVENT_REFUSED, -1);
        strcpy(e->e.why, "the server's key is not the pinned one");
        return;
    }
    if (memcmp(m->key, a->server_key, PUNCH_KEY_BYTES) != 0) {
        memcpy(a->server_key, m->key, PUNCH_KEY_BYTES);
        if (punch_auth_derive(&a->id, a->server_key, a->mac_key) != 0)
            return;
    }
    memcpy(a->cookie, m->cookie, PUNCH_MSG_COOKIE_LEN);
    sample_server_rtt(a, now);
    reg_start(a, REG_REGISTER, now);
    reg_timeout(a, now);
}

static void on_registered(punch_agent *a, uint64_t now, const punch_msg *m)
{
    if (a->reg != REG_REGISTER || memcmp(m->txid, a->reg_txid, PUNCH_MSG_TXID_LEN) != 0)
        return;
    bool changed = !punch_addr_equal(&a->public_addr, &m->public_addr);
    sample_server_rtt(a, now);
    a->public_addr = m->public_addr;
    memcpy(a->cookie, m->cookie, PUNCH_MSG_COOKIE_LEN);
    a->reg = REG_DONE;
    uint32_t server_ms = m->keepalive_s ? (uint32_t)m->keepalive_s * 1000u : a->keepalive_ms;
    a->reg_next_ms = now + min_u64(a->keepalive_ms, server_ms);
    /* Registered, as far as peers can tell, once the server has what NAT
     * discovery found (nothing found is what a REGISTER says by default):
     * only then is the REGISTERED event told, and CONNECTs sent. */
    bool told = a->reg_told_nat ||
                (a->disc.state == DISC_DONE && a->nat_mapping == PUNCH_MSG_NAT_UNKNOWN);
    /* Tell the server again when it has what discovery did not find yet,
     * or a round trip far off the one we know now (the first one waited
     * for ARP, say): peers' guard times are worked out from it. */
    if ((!told && a->disc.state == DISC_DONE) || a->rtt_told > 2 * a->server_rtt_ms + 2)
        reregister(a, now);
    if (told && (changed || !a->announced))
        announce(a);
    /* Discovery that heard nothing (the server was away) starts over. */
    if (a->disc.state == DISC_DONE && a->disc.seen[0].family == PUNCH_AF_NONE)
        disc_start(a, now);
}

/* ---- peers and candidates ---- */

static int find_peer_by_session(const punch_agent *a, const uint8_t *session)
{
    for (int i = 0; i < MAX_PEERS; i++)
        if (a->peers[i].used && a->peers[i].introduced &&
            memcmp(a->peers[i].session, session, PUNCH_MSG_SESSION_LEN) == 0)
            return i;
    return -1;
}

static int find_peer_by_index(const punch_agent *a, uint32_t index)
{
    for (int i = 0; i < MAX_PEERS; i++)
        if (a->peers[i].used && a->peers[i].ready &&
            (a->peers[i].t.local_index == index ||
             (a->peers[i].has_prev && a->peers[i].prev.local_index == index)))
            return i;
    return -1;
}

/* A new session replaces the one in use, which stays readable as prev. */
static void retire_transport(peer *p)
{
    punch_transport_wipe(&p->prev);
    p->has_prev = p->ready;
    if (p->ready)
        p->prev = p->t;
    memset(&p->t, 0, sizeof(p->t));
}

static int new_peer(punch_agent *a)
{
    for (int i = 0; i < MAX_PEERS; i++)
        if (!a->peers[i].used) {
            memset(&a->peers[i], 0, sizeof(peer));
            a->peers[i].used = true;
            a->peers[i].path = -1;
            return i;
        }
    return -1;
}

static void forget_peer(punch_agent *a, int id);

/* Slot id (>= 0) forgotten and taken afresh (a new introduction replaces
 * the old session there), or a new slot when id < 0. Returns the slot or -1. */
static int renew_peer(punch_agent *a, int id)
{
    if (id < 0)
        return new_peer(a);
    forget_peer(a, id);
    a->peers[id].used = true;
    a->peers[id].path = -1;
    return id;
}

static void forget_peer(punch_agent *a, int id)
{
    peer *p = &a->peers[id];
    /* The extra sockets it had (many-port probing) may go. */
    uint16_t first = 0, last = 0;
    if (a->birthday_owner == id) {
        first = p->birthday_first;
        last = (uint16_t)(first + BIRTHDAY_SOCKETS - 1);
        a->birthday_owner = -1;
    } else if (p->path >= 0 && p->cand[p->path].sock && !is_tcp_sock(p->cand[p->path].sock)) {
        first = last = p->cand[p->path].sock;
    }
    if (first) {
        ev *e = push_event(a, PUNCH_EVENT_SOCKETS, id);
        e->e.sock_first = first;
        e->e.sock_last = last;
    }
    punch_noise_handshake_wipe(&p->hs);
    punch_transport_wipe(&p->t);
    punch_transport_wipe(&p->prev);
    memset(p, 0, sizeof(*p));
}

static int find_candidate(const peer *p, const punch_addr *addr, uint16_t sock, bool relay)
{
    for (size_t i = 0; i < p->n_cand; i++)
        if ((p->cand[i].technique == PUNCH_TECH_RELAY) == relay && p->cand[i].sock == sock &&
            !p->cand[i].closed &&
            punch_addr_equal(&p->cand[i].addr, addr))
            return (int)i;
    return -1;
}

static int add_candidate_on(peer *p, uint16_t sock, const punch_addr *addr, punch_technique t,
                            uint64_t now)
{
    int i = find_candidate(p, addr, sock, t == PUNCH_TECH_RELAY);
    if (i >= 0)
        return i;
    if (p->n_cand == MAX_CANDIDATES || addr->family == PUNCH_AF_NONE || addr->port == 0)
        return -1;
    candidate *c = &p->cand[p->n_cand];
    memset(c, 0, sizeof(*c));
    c->addr = *addr;
    c->sock = sock;
    c->technique = t;
    c->first_probe_ms = c->next_probe_ms = now;
    return (int)p->n_cand++;
}

static int add_candidate(peer *p, const punch_addr *addr, punch_technique t, uint64_t now)
{
    return add_candidate_on(p, 0, addr, t, now);
}

/* Send an inner punch message (handshake or transport) on a candidate: as
 * it is, or wrapped in RELAY through the server. */
static void send_on_ttl(punch_agent *a, const peer *p, const candidate *c, uint8_t ttl,
                        punch_msg_type type, const uint8_t *payload, size_t len)
{
    punch_msg inner = {.type = type, .payload = payload, .payload_len = len};
    if (c->technique != PUNCH_TECH_RELAY) {
        send_msg_ttl(a, c->sock, &c->addr, ttl, &inner);
        return;
    }
    uint8_t buf[DGRAM_MAX];
    size_t ilen;
    if (punch_msg_encode(&inner, buf, sizeof(buf), &ilen) != 0)
        return;
    punch_msg relay = {.type = PUNCH_MSG_RELAY, .payload = buf, .payload_len = ilen};
    memcpy(relay.session, p->session, PUNCH_MSG_SESSION_LEN);
    send_msg(a, &c->addr, &relay);
}

static void send_on(punch_agent *a, const peer *p, const candidate *c, punch_msg_type type,
                    const uint8_t *payload, size_t len)
{
    send_on_ttl(a, p, c, 0, type, payload, len);
}

/* The largest application datagram sent or delivered (punch.h). */
static size_t max_datagram(const punch_agent *a)
{
    return (a->cfg.flags & PUNCH_AGENT_LARGE_DATAGRAMS) ? PUNCH_MAX_DATAGRAM_LARGE
                                                         : PUNCH_MAX_DATAGRAM;
}

static int send_transport(punch_agent *a, uint64_t now, peer *p, const candidate *c,
                          const uint8_t *inner, size_t len)
{
    uint8_t dgram[DGRAM_MAX];
    size_t dlen;
    int rc = punch_transport_encrypt(&p->t, now, inner, len, dgram, sizeof(dgram), &dlen);
    if (rc != 0)
        return rc;
    send_on(a, p, c, PUNCH_MSG_DATA, dgram, dlen);
    if (p->unconfirmed && len && inner[0] == INNER_DATA && p->n_early < EARLY_MAX &&
        dlen <= sizeof(p->early[0])) {
        memcpy(p->early[p->n_early], dgram, dlen);
        p->early_len[p->n_early++] = (uint16_t)dlen;
    }
    return 0;
}

/* The initiator holds the keys now: what it may have missed, once more. */
static void confirm_keys(punch_agent *a, peer *p)
{
    if (p->path >= 0)
        for (unsigned i = 0; i < p->n_early; i++)
            send_on(a, p, &p->cand[p->path], PUNCH_MSG_DATA, p->early[i], p->early_len[i]);
    p->unconfirmed = false;
    p->n_early = 0;
}

static void send_ping(punch_agent *a, uint64_t now, peer *p, candidate *c)
{
    uint8_t ping[PING_LEN] = {INNER_PING};
    random_bytes(a, c->ping_nonce, sizeof(c->ping_nonce));
    memcpy(ping + 1, c->ping_nonce, 8);
    c->ping_sent_ms = now;
    send_transport(a, now, p, c, ping, sizeof(ping));
}

static void emit_path(punch_agent *a, int id)
{
    peer *p = &a->peers[id];
    ev *e = push_event(a, PUNCH_EVENT_PATH, id);
    const candidate *c = &p->cand[p->path];
    e->e.path_kind = c->technique == PUNCH_TECH_RELAY ? PUNCH_PATH_RELAY : PUNCH_PATH_DIRECT;
    e->e.technique = c->technique;
    e->e.remote = c->addr;
    e->e.sock = c->sock;
    e->e.rtt_us = c->rtt_us;
}

/* Take the best validated candidate when it beats the one in use. */
static void choose_path(punch_agent *a, int id)
{
    peer *p = &a->peers[id];
    /* The path in use, when it has gone quiet (a keepalive unanswered: the
     * peer's NAT may have moved), yields to an equal one that answers. */
    bool quiet = p->path >= 0 && p->missed > 0;
    int best = -1;
    for (size_t i = 0; i < p->n_cand; i++) {
        const candidate *c = &p->cand[i];
        if (!c->validated || c->closed || (quiet && (int)i == p->path))
            continue;
        if (best < 0 || priority(p, c->technique) < priority(p, p->cand[best].technique) ||
            (priority(p, c->technique) == priority(p, p->cand[best].technique) &&
             c->rtt_us < p->cand[best].rtt_us))
            best = (int)i;
    }
    if (best < 0 || best == p->path)
        return;
    /* Otherwise no flapping between equals. */
    if (p->path >= 0 && p->cand[p->path].validated &&
        (priority(p, p->cand[best].technique) > priority(p, p->cand[p->path].technique) ||
         (priority(p, p->cand[best].technique) == priority(p, p->cand[p->path].technique) &&
          !quiet)))
        return;
    p->path = best;
    p->missed = 0;
    emit_path(a, id);
}

/* Both ways proven: a PONG, or the answer to a message 1 sent there. */
static void validate(punch_agent *a, uint64_t now, int id, int ci, uint64_t sent_ms)
{
    peer *p = &a->peers[id];
    candidate *c = &p->cand[ci];
    c->rtt_us = (uint32_t)((now - sent_ms) * 1000u);
    c->validated = c->confirmed = true;
    if (ci == p->path)
        p->missed = 0;
    choose_path(a, id);
}

/* One way proven (a fresh message 1 came in on an introduced candidate):
 * taken at once, and PINGed until a PONG confirms it (probe_timeout). */
static void hear(punch_agent *a, uint64_t now, int id, int ci)
{
    peer *p = &a->peers[id];
    candidate *c = &p->cand[ci];
    /* Not again soon after it came to nothing (a way in, none out): no
     * flapping between it and the next best. */
    if (c->validated || (c->unheard_ms && now - c->unheard_ms < PROBE_GIVE_UP_MS))
        return;
    c->validated = true;
    c->confirmed = false;
    c->heard_ms = now;
    c->rtt_us = 0; /* unknown until the PONG */
    c->next_probe_ms = now;
    choose_path(a, id);
}

/* A candidate heard from but silent to our PINGs for CONFIRM_MS: its way
 * out does not work after all. */
static void unhear(punch_agent *a, uint64_t now, int id, int ci)
{
    peer *p = &a->peers[id];
    candidate *c = &p->cand[ci];
    tell_attempt(a, id, c, "heard from, but no answer to PINGs in %llu ms",
                 (unsigned long long)(now - c->heard_ms));
    c->validated = false;
    c->unheard_ms = now;
    if (p->path == ci)
        p->path = -1;
    choose_path(a, id);
}

/* How long the first probes to a public endpoint go with a low TTL.
 * Our first full-TTL packet must reach the peer's NAT after the peer's own
 * first packet left it (the conntrack trap). The server introduces both at
 * T; the peer's first packet leaves its NAT by T + rtt_peer at the latest
 * (its NAT next to the server, all the delay behind it); ours, sent at
 * T + rtt_us/2 + g, cannot reach the peer's NAT before T + rtt_us + g
 * (the way out is as long as the way in). So g > rtt_peer - rtt_us, plus a
 * margin for jitter and error: 2 ms and a sixteenth of the two round
 * trips. Without both round trips, DEFAULT_OPEN_GUARD_MS. */
static uint64_t probe_guard_ms(const punch_agent *a, const peer *p)
{
    if (!a->low_ttl)
        return 0;
    if (a->open_guard_ms)
        return a->open_guard_ms;
    uint64_t mine = p->my_rtt_ms, theirs = p->peer_rtt_ms;
    if (!mine || !theirs)
        return DEFAULT_OPEN_GUARD_MS;
    uint64_t g = (theirs > mine ? theirs - mine : 0) + 2 + (mine + theirs) / 16;
    return min_u64(g, MAX_OPEN_GUARD_MS);
}

/* ---- handshake ---- */

static void prologue(const peer *p, uint8_t out[sizeof(PROLOGUE_LABEL) - 1 + 8])
{
    memcpy(out, PROLOGUE_LABEL, sizeof(PROLOGUE_LABEL) - 1);
    memcpy(out + sizeof(PROLOGUE_LABEL) - 1, p->session, PUNCH_MSG_SESSION_LEN);
}

/* Our message 1: the real one (initiator) or the NAT-opening one
 * (responder, never answered). Its payload is our transport index. */
static int make_msg1(punch_agent *a, peer *p)
{
    uint8_t pro[sizeof(PROLOGUE_LABEL) - 1 + 8], e[32], payload[4];
    prologue(p, pro);
    random_bytes(a, e, sizeof(e));
    random_bytes(a, &p->local_index, sizeof(p->local_index));
    punch_put32(payload, p->local_index);
    punch_noise_handshake hs;
    int rc = punch_noise_initiator_init(&hs, &a->id, p->key, pro, sizeof(pro), e);
    if (rc == 0)
        rc = punch_noise_write_message(&hs, payload, sizeof(payload), p->msg1, sizeof(p->msg1),
                                       &p->msg1_len);
    memset(e, 0, sizeof(e));
    if (rc == 0 && p->initiator)
        p->hs = hs;
    else
        punch_noise_handshake_wipe(&hs);
    return rc;
}

static void start_probing(punch_agent *a, uint64_t now, int id)
{
    peer *p = &a->peers[id];
    for (size_t i = 0; i < p->n_cand; i++) {
        candidate *c = &p->cand[i];
        if (c->validated)
            continue;
        c->first_probe_ms = c->next_probe_ms = now;
        c->probes = 0;
        c->gave_up = false;
    }
}

/* Read a message 1 as a responder would: it must come from p's key.
 * On success *hs holds the handshake, ready to write message 2, and
 * *their_index the initiator's transport index. */
static bool read_msg1(punch_agent *a, peer *p, const uint8_t *msg, size_t len,
                      punch_noise_handshake *hs, uint32_t *their_index)
{
    uint8_t pro[sizeof(PROLOGUE_LABEL) - 1 + 8], e[32], payload[16], rs[32];
    size_t plen;
    prologue(p, pro);
    random_bytes(a, e, sizeof(e));
    int rc = punch_noise_responder_init(hs, &a->id, pro, sizeof(pro), e);
    memset(e, 0, sizeof(e));
    if (rc == 0)
        rc = punch_noise_read_message(hs, msg, len, payload, sizeof(payload), &plen);
    /* Only the peer the server introduced (SPEC.md §4). */
    if (rc != 0 || plen != 4 || punch_noise_remote_static(hs, rs) != 0 ||
        memcmp(rs, p->key, PUNCH_KEY_BYTES) != 0) {
        punch_noise_handshake_wipe(hs);
        return false;
    }
    *their_index = punch_get32(payload);
    return true;
}

/* What an address the peer's packets came from, not known before, is:
 * many-port probing's find (on an extra socket, or from the peer's
 * public address while we probe its ports), else peer-reflexive. */
static punch_technique learned_technique(const punch_agent *a, const peer *p,
                                         const punch_addr *src)
{
    if (a->rx_sock != 0)
        return PUNCH_TECH_BIRTHDAY;
    if (p->birthday == BIRTHDAY_MANY_PORTS && punch_addr_same_ip(src, &p->birthday_to))
        for (unsigned i = 0; i < p->birthday_sent; i++)
            if (p->birthday_ports[i] == src->port)
                return PUNCH_TECH_BIRTHDAY;
    if (punch_portmap_held(&a->portmap)) /* portmap hook: the way in was our mapping */
        return PUNCH_TECH_PORTMAP;
    return PUNCH_TECH_PEER_REFLEXIVE;
}

/* The candidate a handshake message from src belongs to, learning src as
 * a peer-reflexive one when it is new (the message is authenticated). */
static int candidate_for(const punch_agent *a, peer *p, const punch_addr *src, bool via_relay,
                         uint64_t now)
{
    int ci = find_candidate(p, src, a->rx_sock, via_relay);
    /* A TCP connection is a candidate from the moment it is up
     * (punch_agent_tcp_path), never learned. */
    if (ci < 0 && !via_relay && !is_tcp_sock(a->rx_sock))
        ci = add_candidate_on(p, a->rx_sock, src, learned_technique(a, p, src), now);
    return ci;
}

/* As initiator: the responder's message 2 opens the session. */
static bool on_handshake2(punch_agent *a, uint64_t now, int id, const punch_addr *src,
                          bool via_relay, const uint8_t *msg, size_t len)
{
    peer *p = &a->peers[id];
    uint8_t payload[16];
    size_t plen;
    if (p->initiator && p->ready && !p->rekeying && len >= 32 &&
        memcmp(msg, p->answer_e, 32) == 0) {
        /* A copy of the answer we took, from where a message 1 of ours
         * went: that way works both ways. Only known candidates: a copy
         * is no news about a new address. */
        int ci = find_candidate(p, src, a->rx_sock, via_relay);
        if (ci >= 0 && !p->cand[ci].confirmed && p->cand[ci].probes)
            validate(a, now, id, ci, p->cand[ci].last_probe_ms);
        return true;
    }
    if (!p->initiator || (p->ready && !p->rekeying) ||
        punch_noise_read_message(&p->hs, msg, len, payload, sizeof(payload), &plen) != 0)
        return false;
    int ci = candidate_for(a, p, src, via_relay, now);
    bool rekey = p->rekeying;
    if (rekey)
        retire_transport(p);
    p->rekeying = false;
    if (plen != 4 || ci < 0 ||
        punch_transport_init(&p->t, &p->hs, now, p->local_index, punch_get32(payload)) != 0) {
        /* Authentic but unusable: give up on this session. */
        ev *e = push_event(a, PUNCH_EVENT_CLOSED, id);
        strcpy(e->e.why, "the peer's handshake answer was unusable");
        forget_peer(a, id);
        return true;
    }
    p->ready = true;
    p->last_rx_ms = now;
    memcpy(p->answer_e, msg, 32);
    if (rekey)
        return true; /* same paths, new keys */
    /* The answer came back on this candidate: both directions work. */
    validate(a, now, id, ci, p->cand[ci].last_probe_ms);
    start_probing(a, now, id);
    return true;
}

/* A message 1 from p, if it is one. As responder we answer it (or repeat
 * our answer to a copy); as initiator it is the responder's NAT-opening
 * probe: its source reaches us, so probe it now. */
static bool on_handshake1(punch_agent *a, uint64_t now, int id, const punch_addr *src,
                          bool via_relay, const uint8_t *msg, size_t len)
{
    peer *p = &a->peers[id];
    punch_noise_handshake hs;
    uint32_t their_index;
    int ci;
    if (!p->initiator && p->msg2_len && len >= 32 && memcmp(msg, p->answered_e, 32) == 0) {
        if ((ci = candidate_for(a, p, src, via_relay, now)) >= 0) {
            send_on(a, p, &p->cand[ci], PUNCH_MSG_HANDSHAKE2, p->msg2, p->msg2_len);
            if (p->cand[ci].technique != PUNCH_TECH_PEER_REFLEXIVE)
                hear(a, now, id, ci);
        }
        return true;
    }
    if (!read_msg1(a, p, msg, len, &hs, &their_index))
        return false;
    if ((ci = candidate_for(a, p, src, via_relay, now)) < 0) {
        punch_noise_handshake_wipe(&hs);
        return true;
    }
    candidate *c = &p->cand[ci];
    if (p->initiator) {
        punch_noise_handshake_wipe(&hs);
        if (!p->ready)
            c->next_probe_ms = now;
        return true;
    }
    /* A new message 1 (first, or the initiator started over): a new session. */
    uint8_t ours[4];
    random_bytes(a, &p->local_index, sizeof(p->local_index));
    punch_put32(ours, p->local_index);
    bool rekey = p->ready;
    retire_transport(p);
    if (punch_noise_write_message(&hs, ours, sizeof(ours), p->msg2, sizeof(p->msg2),
                                  &p->msg2_len) != 0 ||
        punch_transport_init(&p->t, &hs, now, p->local_index, their_index) != 0) {
        punch_noise_handshake_wipe(&hs);
        p->ready = false;
        p->msg2_len = 0;
        return true;
    }
    memcpy(p->answered_e, msg, 32);
    p->ready = true;
    p->unconfirmed = true;
    p->n_early = 0;
    p->last_rx_ms = now;
    send_on(a, p, c, PUNCH_MSG_HANDSHAKE2, p->msg2, p->msg2_len);
    if (rekey)
        return true; /* same paths, new keys */
    /* Validate every candidate, this one first: a message 1 of this
     * introduction on a candidate the server gave proves the way in. */
    start_probing(a, now, id);
    send_ping(a, now, p, c);
    if (c->technique != PUNCH_TECH_PEER_REFLEXIVE)
        hear(a, now, id, ci);
    return true;
}

/* ---- transport ---- */

static void on_peer_introduce(punch_agent *a, uint64_t now, int from, const uint8_t *msg,
                              size_t len);
static void on_tcp_offer(punch_agent *a, int id, const uint8_t *msg, size_t len);

static void on_transport(punch_agent *a, uint64_t now, int id, int ci, const uint8_t *inner,
                         size_t len)
{
    peer *p = &a->peers[id];
    candidate *c = &p->cand[ci];
    if (ci == p->path) {
        p->last_rx_ms = now;
        p->missed = 0;
    }
    if (len == PING_LEN && inner[0] == INNER_PING) {
        uint8_t pong[PING_LEN];
        memcpy(pong, inner, PING_LEN);
        pong[0] = INNER_PONG;
        send_transport(a, now, p, c, pong, sizeof(pong));
        /* A PING (fresh and authenticated) proves the way in, and the
         * answer goes out through the NAT entry it came in by: take it at
         * once, as for a message 1 (hear). */
        if (c->technique != PUNCH_TECH_PEER_REFLEXIVE)
            hear(a, now, id, ci);
        /* Ask for the way back too. */
        if (!c->validated && now - c->ping_sent_ms >= PROBE_FAST_MS)
            send_ping(a, now, p, c);
    } else if (len == PING_LEN && inner[0] == INNER_PONG) {
        if (c->ping_sent_ms && memcmp(inner + 1, c->ping_nonce, 8) == 0) {
            uint64_t sent = c->ping_sent_ms;
            c->ping_sent_ms = 0;
            validate(a, now, id, ci, sent);
        }
    } else if (len >= 1 && inner[0] == INNER_DATA) {
        ev *e = push_event(a, PUNCH_EVENT_DATA, id);
        size_t max = max_datagram(a);
        e->e.len = len - 1 < max ? len - 1 : max;
        memcpy(e->data, inner + 1, e->e.len);
        e->e.remote = c->addr;
    } else if (len >= 1 && inner[0] == INNER_INTRODUCE) {
        on_peer_introduce(a, now, id, inner + 1, len - 1);
    } else if (len >= 1 && inner[0] == INNER_TCP) {
        on_tcp_offer(a, id, inner + 1, len - 1);
    } else if (len >= 1 && inner[0] == INNER_CLOSE) {
        ev *e = push_event(a, PUNCH_EVENT_CLOSED, id);
        strcpy(e->e.why, "peer closed");
        forget_peer(a, id);
    }
}

static void on_data(punch_agent *a, uint64_t now, const punch_addr *src, bool via_relay,
                    const uint8_t *session, const uint8_t *dgram, size_t len)
{
    uint32_t index;
    int id;
    if (punch_transport_peek_index(dgram, len, &index) != 0 ||
        (id = find_peer_by_index(a, index)) < 0) {
        a->dropped++;
        return;
    }
    peer *p = &a->peers[id];
    if (via_relay && memcmp(session, p->session, PUNCH_MSG_SESSION_LEN) != 0) {
        a->dropped++;
        return;
    }
    uint8_t inner[DGRAM_MAX];
    size_t ilen;
    punch_transport *t = p->t.local_index == index ? &p->t : &p->prev;
    if (punch_transport_decrypt(t, now, dgram, len, inner, sizeof(inner), &ilen) != 0) {
        a->dropped++;
        return;
    }
    if (t == &p->t && p->unconfirmed)
        confirm_keys(a, p);
    /* Authenticated: an address we did not know is the peer's too (its
     * NAT may have given it a new port). */
    int ci = candidate_for(a, p, src, via_relay, now);
    if (ci < 0)
        return;
    on_transport(a, now, id, ci, inner, ilen);
}

/* A handshake message names no session: it belongs to the first peer for
 * which it authenticates (the relay's RELAY header does name one). */
static void route_handshake(punch_agent *a, uint64_t now, const punch_addr *src, bool via_relay,
                            const uint8_t *session, punch_msg_type type, const uint8_t *msg,
                            size_t len)
{
    for (int i = 0; i < MAX_PEERS; i++) {
        peer *p = &a->peers[i];
        if (!p->used || !p->introduced ||
            (via_relay && memcmp(session, p->session, PUNCH_MSG_SESSION_LEN) != 0))
            continue;
        bool taken = type == PUNCH_MSG_HANDSHAKE1
                         ? on_handshake1(a, now, i, src, via_relay, msg, len)
                         : on_handshake2(a, now, i, src, via_relay, msg, len);
        if (taken)
            return;
    }
    a->dropped++;
}

/* ---- server messages ---- */

static void add_intro_candidates(punch_agent *a, uint64_t now, peer *p, const punch_msg *m)
{
    bool direct = !(a->cfg.flags & PUNCH_AGENT_RELAY_ONLY);
    bool relay = (m->flags & PUNCH_INTRO_RELAY) && !(a->cfg.flags & PUNCH_AGENT_NO_RELAY);
    if (direct) {
        bool hairpin = punch_addr_same_ip(&m->public_addr, &a->public_addr);
        /* A peer whose NAT maps per destination with a known step: its
         * next ports first, in order (PREDICT_WINDOW). */
        int16_t step = (int16_t)m->nat_step;
        if (!hairpin && step && m->nat_mapping >= PUNCH_MSG_NAT_ADM)
            for (int k = 1; k <= PREDICT_WINDOW; k++) {
                punch_addr at = m->public_addr;
                at.port = (uint16_t)(m->nat_port + k * step);
                if (at.port)
                    add_candidate(p, &at, PUNCH_TECH_PORT_PREDICTION, now);
            }
        /* Behind the same public IP, the public endpoint is a loop through
         * our own NAT (§3.3.3). It goes first: a peer without a NAT lists
         * it among its private endpoints too, and is reached by hole-punch.
         * When our own NAT maps per destination, the way there works only
         * because the peer predicts our port: port prediction too. */
        bool predicted = a->nat_mapping >= PUNCH_MSG_NAT_ADM && a->nat_step;
        add_candidate(p, &m->public_addr,
                      hairpin     ? PUNCH_TECH_HAIRPIN
                      : predicted ? PUNCH_TECH_PORT_PREDICTION
                                  : PUNCH_TECH_HOLE_PUNCH,
                      now);
        for (size_t i = 0; i < m->n_private; i++) /* portmap hook: the last n_mapped */
            add_candidate(p, &m->private_addr[i],
                          i + m->n_mapped >= m->n_private ? PUNCH_TECH_PORTMAP : PUNCH_TECH_PRIVATE,
                          now);
    }
    if (relay)
        add_candidate(p, &a->cfg.server, PUNCH_TECH_RELAY, now);
}

/* The server told us again of a session we have: a repeat (a CONNECT
 * copy), or news (the peer came back from a new endpoint). New endpoints
 * are probed at once; known ones keep their state. */
static void reintroduced(punch_agent *a, uint64_t now, int id, const punch_msg *m)
{
    peer *p = &a->peers[id];
    size_t before = p->n_cand;
    p->reconnect = false;
    if (m->rtt_ms)
        p->peer_rtt_ms = m->rtt_ms;
    add_intro_candidates(a, now, p, m);
    if (p->n_cand > before) {
        p->guard_ms = probe_guard_ms(a, p);
        p->guard_from_ms = now;
        start_probing(a, now, id);
    }
}

static void take_introduction(punch_agent *a, uint64_t now, int id, const punch_msg *m,
                              uint32_t my_rtt_ms);

static bool random_ports(uint8_t mapping, uint16_t step)
{
    return mapping >= PUNCH_MSG_NAT_ADM && step == 0;
}

/* Which side of many-port probing we take, if any: the side behind the
 * NAT with random ports opens the sockets, the one whose NAT maps
 * endpoint-independently probes the ports. */
static void birthday_plan(punch_agent *a, uint64_t now, int id, const punch_msg *m)
{
    peer *p = &a->peers[id];
    if (a->cfg.flags & (PUNCH_AGENT_NO_BIRTHDAY | PUNCH_AGENT_RELAY_ONLY) ||
        punch_addr_same_ip(&m->public_addr, &a->public_addr))
        return;
    p->birthday_to = m->public_addr;
    p->birthday_sent = 0;
    if (random_ports(a->nat_mapping, a->nat_step) && m->nat_mapping == PUNCH_MSG_NAT_EIM &&
        a->birthday_owner < 0 && a->next_sock + BIRTHDAY_SOCKETS - 1 <= PUNCH_MAX_SOCKETS) {
        p->birthday = BIRTHDAY_MANY_SOCKETS;
        p->birthday_first = a->next_sock;
        a->next_sock = (uint16_t)(a->next_sock + BIRTHDAY_SOCKETS);
        a->birthday_owner = id;
        p->birthday_start_ms = p->birthday_next_ms = now;
    } else if (a->nat_mapping == PUNCH_MSG_NAT_EIM && random_ports(m->nat_mapping, m->nat_step)) {
        /* Once the peer's sockets are open: its guard, and its pace. */
        p->birthday = BIRTHDAY_MANY_PORTS;
        p->birthday_start_ms = now;
        p->birthday_next_ms =
            now + p->guard_ms + BIRTHDAY_SOCKETS / BIRTHDAY_BATCH * BIRTHDAY_TICK_MS;
    }
}

/* Many-port probing is over for p (a direct path, or the budget spent):
 * the extra sockets may go, but the one the path uses. */
static void birthday_end(punch_agent *a, int id)
{
    peer *p = &a->peers[id];
    if (p->birthday == BIRTHDAY_MANY_SOCKETS) {
        ev *e = push_event(a, PUNCH_EVENT_SOCKETS, id);
        e->e.sock_first = p->birthday_first;
        e->e.sock_last = (uint16_t)(p->birthday_first + BIRTHDAY_SOCKETS - 1);
        e->e.sock_keep = p->path >= 0 ? p->cand[p->path].sock : 0;
        a->birthday_owner = -1;
    }
    p->birthday = BIRTHDAY_NONE;
    p->birthday_next_ms = UINT64_MAX;
}

static void birthday_timeout(punch_agent *a, uint64_t now, int id)
{
    peer *p = &a->peers[id];
    if (p->birthday == BIRTHDAY_NONE || now < p->birthday_next_ms)
        return;
    bool direct = p->path >= 0 && p->cand[p->path].technique != PUNCH_TECH_RELAY &&
                  p->cand[p->path].confirmed;
    if (direct || now - p->birthday_start_ms >= BIRTHDAY_BUDGET_MS) {
        if (!direct) {
            const candidate tried = {.addr = p->birthday_to, .technique = PUNCH_TECH_BIRTHDAY};
            tell_attempt(a, id, &tried, "no answer to %u %s in %llu ms", p->birthday_sent,
                         p->birthday == BIRTHDAY_MANY_SOCKETS ? "sockets" : "probes",
                         (unsigned long long)(now - p->birthday_start_ms));
        }
        birthday_end(a, id);
        return;
    }
    unsigned total = p->birthday == BIRTHDAY_MANY_SOCKETS ? BIRTHDAY_SOCKETS : BIRTHDAY_PROBES;
    punch_msg probe = {.type = PUNCH_MSG_HANDSHAKE1, .payload = p->msg1,
                       .payload_len = p->msg1_len};
    for (unsigned n = 0; n < BIRTHDAY_BATCH && p->birthday_sent < total; n++, p->birthday_sent++) {
        if (p->birthday == BIRTHDAY_MANY_SOCKETS) {
            uint16_t sock = (uint16_t)(p->birthday_first + p->birthday_sent);
            send_msg_ttl(a, sock, &p->birthday_to, a->low_ttl ? a->open_ttl : 0, &probe);
        } else {
            uint16_t r;
            random_bytes(a, &r, sizeof(r));
            punch_addr to = p->birthday_to;
            to.port = (uint16_t)(BIRTHDAY_PORT_MIN + r % (65536u - BIRTHDAY_PORT_MIN));
            p->birthday_ports[p->birthday_sent] = to.port;
            send_msg_ttl(a, 0, &to, 0, &probe);
        }
    }
    /* All sent: wait for answers until the budget ends. */
    p->birthday_next_ms = p->birthday_sent < total
                              ? now + BIRTHDAY_TICK_MS
                              : p->birthday_start_ms + BIRTHDAY_BUDGET_MS;
}

static void on_introduce(punch_agent *a, uint64_t now, const punch_msg *m)
{
    int id = find_peer_by_session(a, m->session);
    if (id >= 0) {
        reintroduced(a, now, id, m);
        return;
    }
    if (m->flags & PUNCH_INTRO_INITIATOR) {
        for (int i = 0; i < MAX_PEERS && id < 0; i++)
            if (a->peers[i].used && !a->peers[i].introduced &&
                memcmp(a->peers[i].connect_txid, m->txid, PUNCH_MSG_TXID_LEN) == 0)
                id = i;
        if (id < 0)
            return;
        if (a->peers[id].pinned && memcmp(a->peers[id].key, m->key, PUNCH_KEY_BYTES) != 0) {
            ev *e = push_event(a, PUNCH_EVENT_CLOSED, id);
            strcpy(e->e.why, "the server introduced another key than the pinned one");
            forget_peer(a, id);
            return;
        }
    } else {
        /* One entry per peer key: a new introduction (the other side asked
         * again, e.g. its answer from the server was lost, or it restarted)
         * replaces the old session, in the same slot. */
        for (int i = 0; i < MAX_PEERS && id < 0; i++)
            if (a->peers[i].used && a->peers[i].introduced &&
                memcmp(a->peers[i].key, m->key, PUNCH_KEY_BYTES) == 0)
                id = i;
        if ((id = renew_peer(a, id)) < 0) {
            a->dropped++;
            return;
        }
    }
    take_introduction(a, now, id, m, a->server_rtt_ms);
}

/* A peer introduces us to another (draft §3.3.1: any party both can reach
 * will do), over our encrypted session with it: taken only when the
 * application allows it (PUNCH_AGENT_PEER_INTRODUCTIONS), never with a
 * relay (the server knows nothing of this session), and never over a
 * working session with the same key. */
static void on_peer_introduce(punch_agent *a, uint64_t now, int from, const uint8_t *msg,
                              size_t len)
{
    punch_msg m;
    if (!(a->cfg.flags & PUNCH_AGENT_PEER_INTRODUCTIONS) || punch_msg_decode(msg, len, &m) != 0 ||
        m.type != PUNCH_MSG_INTRODUCE ||
        memcmp(m.key, a->id.public_key, PUNCH_KEY_BYTES) == 0 ||
        memcmp(m.key, a->peers[from].key, PUNCH_KEY_BYTES) == 0) {
        a->dropped++;
        return;
    }
    m.flags &= (uint8_t)~PUNCH_INTRO_RELAY;
    int id = find_peer_by_session(a, m.session);
    if (id >= 0) {
        reintroduced(a, now, id, &m);
        return;
    }
    for (int i = 0; i < MAX_PEERS && id < 0; i++)
        if (a->peers[i].used && memcmp(a->peers[i].key, m.key, PUNCH_KEY_BYTES) == 0)
            id = i;
    if (id >= 0 && (a->peers[id].ready || !a->peers[id].introduced)) {
        a->dropped++; /* connected already, or being connected by the server */
        return;
    }
    if ((id = renew_peer(a, id)) < 0) {
        a->dropped++;
        return;
    }
    const peer *via = &a->peers[from];
    take_introduction(a, now, id, &m, via->path >= 0 ? via->cand[via->path].rtt_us / 1000 : 0);
}

/* ---- TCP paths (draft §3.5, §3.2) ----
 *
 * The agent only carries the offers over the encrypted session (so nobody
 * but the peer can make us connect anywhere, §6.1) and treats an
 * established TCP connection as one more candidate on its own socket
 * index; the driver does the connecting (src/io/driver.c). */

/* A TCP_OFFER from the peer, over its session: told to the caller. */
static void on_tcp_offer(punch_agent *a, int id, const uint8_t *msg, size_t len)
{
    punch_msg m;
    if (punch_msg_decode(msg, len, &m) != 0 || m.type != PUNCH_MSG_TCP_OFFER ||
        m.n_private > PUNCH_TCP_MAX_PRIVATE) {
        a->dropped++;
        return;
    }
    peer *p = &a->peers[id];
    if (m.flags & PUNCH_TCP_FLAG_PREFER)
        p->prefer_tcp = true;
    ev *e = push_event(a, PUNCH_EVENT_TCP_OFFER, id);
    punch_tcp_offer *o = &e->e.tcp;
    o->answer = (m.flags & PUNCH_TCP_FLAG_ANSWER) != 0;
    o->reachable = (m.flags & PUNCH_TCP_FLAG_REACHABLE) != 0;
    o->prefer = (m.flags & PUNCH_TCP_FLAG_PREFER) != 0;
    o->attempt = m.attempt;
    o->delay_ms = m.delay_ms;
    o->public_addr = m.public_addr;
    o->n_private = m.n_private;
    memcpy(o->private_addr, m.private_addr, m.n_private * sizeof(punch_addr));
}

static peer *session_peer(punch_agent *a, int id)
{
    if (!a || id < 0 || id >= MAX_PEERS || !a->peers[id].used)
        return NULL;
    return &a->peers[id];
}

int punch_agent_tcp_offer(punch_agent *a, uint64_t now, int id, const punch_tcp_offer *o)
{
    peer *p = session_peer(a, id);
    if (!p)
        return PUNCH_ERR_NOTFOUND;
    if (!o || o->n_private > PUNCH_TCP_MAX_PRIVATE || o->attempt == 0)
        return PUNCH_ERR_INVAL;
    if (!p->ready || p->path < 0)
        return PUNCH_ERR_LIMIT;
    punch_msg m = {.type = PUNCH_MSG_TCP_OFFER, .attempt = o->attempt, .delay_ms = o->delay_ms,
                   .public_addr = o->public_addr, .n_private = o->n_private};
    m.flags = (uint8_t)((o->answer ? PUNCH_TCP_FLAG_ANSWER : 0) |
                        (o->reachable ? PUNCH_TCP_FLAG_REACHABLE : 0) |
                        (o->prefer ? PUNCH_TCP_FLAG_PREFER : 0));
    memcpy(m.private_addr, o->private_addr, o->n_private * sizeof(punch_addr));
    uint8_t inner[DGRAM_MAX] = {INNER_TCP};
    size_t len;
    int rc = punch_msg_encode(&m, inner + 1, sizeof(inner) - 1, &len);
    if (rc != 0)
        return rc;
    if (o->prefer)
        p->prefer_tcp = true;
    return send_transport(a, now, p, &p->cand[p->path], inner, len + 1);
}

int punch_agent_tcp_path(punch_agent *a, uint64_t now, int id, uint16_t sock,
                         punch_technique t, const punch_addr *remote)
{
    peer *p = session_peer(a, id);
    if (!p)
        return PUNCH_ERR_NOTFOUND;
    if (!is_tcp_sock(sock) || !is_tcp(t) || !remote)
        return PUNCH_ERR_INVAL;
    if (!p->ready)
        return PUNCH_ERR_LIMIT;
    int ci = add_candidate_on(p, sock, remote, t, now);
    if (ci < 0)
        return PUNCH_ERR_LIMIT;
    candidate *c = &p->cand[ci];
    c->technique = t;
    c->next_probe_ms = now; /* PINGed at once (probe_timeout) */
    send_ping(a, now, p, c);
    c->probes = 1;
    c->last_probe_ms = now;
    c->next_probe_ms = now + PROBE_FAST_MS;
    return 0;
}

void punch_agent_tcp_failed(punch_agent *a, uint64_t now, int id, uint16_t sock,
                            punch_technique t, const punch_addr *remote, const char *why)
{
    (void)now;
    peer *p = session_peer(a, id);
    if (!p)
        return;
    ev *e = push_event(a, PUNCH_EVENT_ATTEMPT, id);
    e->e.technique = t;
    e->e.path_kind = PUNCH_PATH_DIRECT;
    if (remote)
        e->e.remote = *remote;
    snprintf(e->e.why, sizeof(e->e.why), "%s", why ? why : "failed");
    if (!is_tcp_sock(sock))
        return;
    for (size_t i = 0; i < p->n_cand; i++) {
        candidate *c = &p->cand[i];
        if (c->sock != sock || c->closed)
            continue;
        c->closed = true;
        c->validated = c->confirmed = false;
        c->next_probe_ms = UINT64_MAX;
        if (p->path == (int)i) {
            p->path = -1;
            p->missed = 0;
            choose_path(a, id);
        }
    }
}

static void take_introduction(punch_agent *a, uint64_t now, int id, const punch_msg *m,
                              uint32_t my_rtt_ms)
{
    peer *p = &a->peers[id];
    p->introduced = true;
    p->initiator = (m->flags & PUNCH_INTRO_INITIATOR) == 0; /* the side asked (step 2) */
    p->peer_rtt_ms = m->rtt_ms;
    p->my_rtt_ms = my_rtt_ms;
    p->guard_ms = probe_guard_ms(a, p);
    p->guard_from_ms = now;
    memcpy(p->name, m->name, sizeof(p->name));
    memcpy(p->key, m->key, PUNCH_KEY_BYTES);
    memcpy(p->session, m->session, PUNCH_MSG_SESSION_LEN);
    add_intro_candidates(a, now, p, m);
    birthday_plan(a, now, id, m);
    ev *e = push_event(a, PUNCH_EVENT_INTRODUCED, id);
    e->e.remote = m->public_addr;
    if (p->n_cand == 0 || make_msg1(a, p) != 0) {
        e = push_event(a, PUNCH_EVENT_CLOSED, id);
        strcpy(e->e.why, p->n_cand ? "handshake failed to start" : "no way to reach the peer");
        forget_peer(a, id);
    }
}

static void on_refused(punch_agent *a, uint64_t now, const punch_msg *m)
{
    if (m->code == PUNCH_REFUSED_COOKIE || m->code == PUNCH_REFUSED_NOT_REGISTERED) {
        reg_start(a, REG_HELLO, now);
        reg_timeout(a, now);
        return;
    }
    for (int i = 0; i < MAX_PEERS; i++) {
        peer *p = &a->peers[i];
        if (p->used && !p->introduced &&
            memcmp(p->connect_txid, m->txid, PUNCH_MSG_TXID_LEN) == 0) {
            ev *e = push_event(a, PUNCH_EVENT_CLOSED, i);
            strcpy(e->e.why, m->code == PUNCH_REFUSED_NO_PEER ? "no such peer at the server"
                             : m->code == PUNCH_REFUSED_KEY_MISMATCH
                                 ? "the peer has another key than the pinned one"
                                 : "the server refused the connection");
            forget_peer(a, i);
            return;
        }
    }
    if (memcmp(m->txid, a->reg_txid, PUNCH_MSG_TXID_LEN) == 0) {
        ev *e = push_event(a, PUNCH_EVENT_REFUSED, -1);
        strcpy(e->e.why, m->code == PUNCH_REFUSED_NAME_TAKEN ? "the name belongs to another key"
                                                             : "the server refused to register us");
    }
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
    switch (m->type) {
    case PUNCH_MSG_REGISTERED: on_registered(a, now, m); break;
    case PUNCH_MSG_INTRODUCE: on_introduce(a, now, m); break;
    case PUNCH_MSG_REFUSED: on_refused(a, now, m); break;
    default: a->dropped++;
    }
}

/* ---- the public calls ---- */

static void handle_datagram(punch_agent *a, uint64_t now, const punch_addr *src,
                            const uint8_t *data, size_t len);

int punch_agent_handle_datagram(punch_agent *a, uint64_t now, const punch_addr *src,
                                const uint8_t *data, size_t len)
{
    return punch_agent_handle_datagram_on(a, now, 0, src, data, len);
}

int punch_agent_handle_datagram_on(punch_agent *a, uint64_t now, uint16_t sock,
                                   const punch_addr *src, const uint8_t *data, size_t len)
{
    if (!a || !src || !data || (sock > PUNCH_MAX_SOCKETS && !is_tcp_sock(sock)))
        return PUNCH_ERR_INVAL;
    a->received++;
    a->rx_sock = sock;
    handle_datagram(a, now, src, data, len);
    a->rx_sock = 0;
    return 0;
}

static void handle_datagram(punch_agent *a, uint64_t now, const punch_addr *src,
                            const uint8_t *data, size_t len)
{
    punch_msg m;
    if (a->rx_sock != 0 && (punch_stun_is_stun(data, len) || from_server(a, src))) {
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
    bool server = from_server(a, src);
    switch (m.type) {
    case PUNCH_MSG_COOKIE:
    case PUNCH_MSG_REGISTERED:
    case PUNCH_MSG_INTRODUCE:
    case PUNCH_MSG_REFUSED:
        if (server)
            on_server_msg(a, now, data, &m);
        else
            a->dropped++;
        break;
    case PUNCH_MSG_RELAY: {
        punch_msg inner;
        if (!server || punch_msg_decode(m.payload, m.payload_len, &inner) != 0) {
            a->dropped++;
            break;
        }
        if (inner.type == PUNCH_MSG_DATA)
            on_data(a, now, src, true, m.session, inner.payload, inner.payload_len);
        else if (inner.type == PUNCH_MSG_HANDSHAKE1 || inner.type == PUNCH_MSG_HANDSHAKE2)
            route_handshake(a, now, src, true, m.session, inner.type, inner.payload,
                            inner.payload_len);
        else
            a->dropped++;
        break;
    }
    case PUNCH_MSG_DATA:
        on_data(a, now, src, false, NULL, m.payload, m.payload_len);
        break;
    case PUNCH_MSG_HANDSHAKE1:
    case PUNCH_MSG_HANDSHAKE2:
        route_handshake(a, now, src, false, NULL, m.type, m.payload, m.payload_len);
        break;
    default:
        a->dropped++;
    }
}

static void connect_timeout(punch_agent *a, uint64_t now, int id)
{
    peer *p = &a->peers[id];
    /* Only once the server knows what our NAT does (step 1, discovery). */
    if (!p->asked || (p->ready && !p->reconnect) || a->reg != REG_DONE || !a->announced ||
        now < p->connect_next_ms)
        return;
    if (p->connect_tries == SERVER_TRIES) {
        if (p->introduced) {
            p->connect_next_ms = UINT64_MAX; /* probing and the relay go on */
            p->reconnect = false;
            return;
        }
        ev *e = push_event(a, PUNCH_EVENT_CLOSED, id);
        strcpy(e->e.why, "the server did not introduce us");
        forget_peer(a, id);
        return;
    }
    punch_msg m = {.type = PUNCH_MSG_CONNECT};
    memcpy(m.txid, p->connect_txid, PUNCH_MSG_TXID_LEN);
    memcpy(m.key, a->id.public_key, PUNCH_KEY_BYTES);
    if (p->pinned)
        memcpy(m.peer_key, p->key, PUNCH_KEY_BYTES);
    memcpy(m.name, p->name, sizeof(m.name));
    send_msg(a, &a->cfg.server, &m);
    p->connect_next_ms = now + server_rto(p->connect_tries);
    p->connect_tries++;
}

/* Until the guard time after the introduction (probe_guard_ms), what goes
 * to a peer's public endpoint goes with the low TTL, or not at all. */
static uint64_t guard_end(const peer *p)
{
    return p->guard_from_ms + p->guard_ms;
}

static bool guarded(const peer *p, const candidate *c, uint64_t now)
{
    return (c->technique == PUNCH_TECH_HOLE_PUNCH || c->technique == PUNCH_TECH_PORT_PREDICTION) &&
           now < guard_end(p);
}

static uint64_t probe_interval(const candidate *c, uint64_t now)
{
    if (c->probes < PROBE_FAST_COUNT)
        return PROBE_FAST_MS;
    return now - c->first_probe_ms < PROBE_GIVE_UP_MS ? PROBE_SLOW_MS : PROBE_BACKGROUND_MS;
}

static void tell_attempt_failed(punch_agent *a, int id, candidate *c, uint64_t now)
{
    tell_attempt(a, id, c, "no answer in %llu ms", (unsigned long long)(now - c->first_probe_ms));
    c->gave_up = true;
}

/* Probe every candidate that is not validated, on its schedule: handshake
 * messages before the session exists, PINGs after. */
static void probe_timeout(punch_agent *a, uint64_t now, int id)
{
    peer *p = &a->peers[id];
    bool on_best = p->path >= 0 && priority(p, p->cand[p->path].technique) <= PRIORITY_BEST;
    for (size_t i = 0; i < p->n_cand; i++) {
        candidate *c = &p->cand[i];
        if ((c->validated && c->confirmed) || c->closed || now < c->next_probe_ms)
            continue;
        if (c->validated && now - c->heard_ms >= CONFIRM_MS) {
            unhear(a, now, id, (int)i);
            if (!p->used)
                return;
        }
        /* The background retries stop once the best kind of path is in use. */
        if (now - c->first_probe_ms >= PROBE_GIVE_UP_MS) {
            if (!c->gave_up)
                tell_attempt_failed(a, id, c, now);
            if (on_best || (p->path >= 0 && c->technique == PUNCH_TECH_RELAY)) {
                c->next_probe_ms = UINT64_MAX; /* parked until probing starts again */
                continue;
            }
        }
        if (!p->ready) {
            /* Only the initiator's message 1 is worth repeating to the relay.
             * To a public endpoint, at first, only far enough to open our
             * own NAT (the conntrack trap, punch_agent_cfg.open_ttl). */
            bool low = guarded(p, c, now);
            if (c->technique != PUNCH_TECH_RELAY || p->initiator)
                send_on_ttl(a, p, c, low ? a->open_ttl : 0, PUNCH_MSG_HANDSHAKE1, p->msg1,
                            p->msg1_len);
            c->probes++;
            c->last_probe_ms = now;
            /* The first full-TTL probe goes the moment the guard ends. */
            c->next_probe_ms = low ? min_u64(now + probe_interval(c, now), guard_end(p))
                                   : now + probe_interval(c, now);
            continue;
        }
        if (guarded(p, c, now)) {
            /* A PING is a full-TTL packet: not before the guard ends. */
            c->next_probe_ms = guard_end(p);
            continue;
        }
        send_ping(a, now, p, c);
        c->probes++;
        c->last_probe_ms = now;
        c->next_probe_ms = now + probe_interval(c, now);
    }
}

/* Keep the path in use alive; three unanswered PINGs and it is dead. */
static void path_timeout(punch_agent *a, uint64_t now, int id)
{
    peer *p = &a->peers[id];
    if (!p->ready || p->path < 0 || now < p->next_keepalive_ms)
        return;
    candidate *c = &p->cand[p->path];
    if (now - p->last_rx_ms >= KEEPALIVE_PATH_MS) {
        if (p->missed >= DEAD_AFTER_MISSED) {
            tell_attempt(a, id, c, "path died: %u keepalives unanswered", p->missed);
            c->validated = false;
            c->first_probe_ms = c->next_probe_ms = now;
            c->probes = 0;
            c->gave_up = false;
            p->path = -1;
            p->missed = 0;
            start_probing(a, now, id);
            choose_path(a, id);
            /* If a NAT gave one of us a new public endpoint, the server
             * tells both again once that one re-registers (ours went at
             * the first miss); asking again covers a server without a
             * relay session to go by. */
            if (p->asked) {
                p->reconnect = true;
                p->connect_tries = 0;
                p->connect_next_ms = now;
            }
        } else {
            send_ping(a, now, p, c);
            if (p->missed++ == 0)
                reregister(a, now);
            choose_path(a, id); /* an equal one that answers may take over */
        }
    }
    p->next_keepalive_ms = now + KEEPALIVE_PATH_MS;
}

/* WireGuard's rule (crypto/transport.h): the initiator starts a new
 * handshake when the session is old, on the path in use, and repeats its
 * message 1 every second until the answer comes; data keeps flowing on the
 * old keys meanwhile. */
#define REKEY_RETRY_MS 1000

static uint64_t rekey_deadline(const peer *p)
{
    if (!p->initiator || !p->ready || p->path < 0)
        return UINT64_MAX;
    uint64_t due = p->t.established_ms + PUNCH_REKEY_AFTER_TIME_MS;
    return p->rekeying || p->rekey_next_ms > due ? p->rekey_next_ms : due;
}

static void rekey_timeout(punch_agent *a, uint64_t now, int id)
{
    peer *p = &a->peers[id];
    if (now < rekey_deadline(p))
        return;
    /* Whatever happens, the next try is a second away. */
    p->rekey_next_ms = now + REKEY_RETRY_MS;
    if (!p->rekeying) {
        if (make_msg1(a, p) != 0)
            return;
        p->rekeying = true;
    }
    send_on(a, p, &p->cand[p->path], PUNCH_MSG_HANDSHAKE1, p->msg1, p->msg1_len);
}

void punch_agent_handle_timeout(punch_agent *a, uint64_t now)
{
    if (!a)
        return;
    reg_timeout(a, now);
    disc_timeout(a, now);
    if (punch_portmap_timeout(&a->portmap, now) & PUNCH_PM_READVERTISE) /* portmap hook */
        reregister(a, now);
    for (int i = 0; i < MAX_PEERS; i++) {
        if (!a->peers[i].used)
            continue;
        connect_timeout(a, now, i);
        if (a->peers[i].used && a->peers[i].introduced) {
            probe_timeout(a, now, i);
            birthday_timeout(a, now, i);
            path_timeout(a, now, i);
            rekey_timeout(a, now, i);
        }
    }
}

uint64_t punch_agent_next_timeout(const punch_agent *a)
{
    if (!a)
        return UINT64_MAX;
    uint64_t t = a->reg_next_ms;
    if (a->disc.state == DISC_MAIN || a->disc.state == DISC_OTHERS)
        t = min_u64(t, a->disc.next_ms);
    t = min_u64(t, punch_portmap_next_timeout(&a->portmap)); /* portmap hook */
    for (int i = 0; i < MAX_PEERS; i++) {
        const peer *p = &a->peers[i];
        if (!p->used)
            continue;
        if (p->asked && (!p->ready || p->reconnect) && a->reg == REG_DONE && a->announced)
            t = min_u64(t, p->connect_next_ms);
        if (!p->introduced)
            continue;
        for (size_t j = 0; j < p->n_cand; j++)
            if (!p->cand[j].confirmed && !p->cand[j].closed)
                t = min_u64(t, p->cand[j].next_probe_ms);
        if (p->ready && p->path >= 0)
            t = min_u64(t, p->next_keepalive_ms);
        if (p->birthday != BIRTHDAY_NONE)
            t = min_u64(t, p->birthday_next_ms);
        t = min_u64(t, rekey_deadline(p));
    }
    return t;
}

int punch_agent_connect(punch_agent *a, uint64_t now, const char *name, const uint8_t *pinned)
{
    if (!a || !punch_msg_valid_name(name))
        return PUNCH_ERR_INVAL;
    int id = new_peer(a);
    if (id < 0)
        return PUNCH_ERR_LIMIT;
    peer *p = &a->peers[id];
    snprintf(p->name, sizeof(p->name), "%s", name);
    if (pinned) {
        memcpy(p->key, pinned, PUNCH_KEY_BYTES);
        p->pinned = true;
    }
    new_txid(a, p->connect_txid);
    p->asked = true;
    p->prefer_tcp = (a->cfg.flags & PUNCH_AGENT_TCP) != 0;
    p->connect_next_ms = now;
    connect_timeout(a, now, id);
    return id;
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
    uint8_t inner[PUNCH_MAX_DATAGRAM_LARGE + 1] = {INNER_DATA};
    if (len)
        memcpy(inner + 1, data, len);
    return send_transport(a, now, p, &p->cand[p->path], inner, len + 1);
}

void punch_agent_close(punch_agent *a, uint64_t now, int id)
{
    if (!a || id < 0 || id >= MAX_PEERS || !a->peers[id].used)
        return;
    peer *p = &a->peers[id];
    if (p->ready && p->path >= 0) {
        uint8_t bye = INNER_CLOSE;
        send_transport(a, now, p, &p->cand[p->path], &bye, 1);
    }
    forget_peer(a, id);
}

/* The endpoint of p to give a third party: where p's packets come from
 * when the path is a public one, else the public endpoint we were told,
 * else any address of p's we know; NULL when there is none. */
static const punch_addr *endpoint_to_share(const peer *p)
{
    static const punch_technique order[] = {PUNCH_TECH_HOLE_PUNCH, PUNCH_TECH_HAIRPIN,
                                            PUNCH_TECH_PEER_REFLEXIVE, PUNCH_TECH_PRIVATE};
    if (p->path >= 0 && (p->cand[p->path].technique == PUNCH_TECH_HOLE_PUNCH ||
                         p->cand[p->path].technique == PUNCH_TECH_PEER_REFLEXIVE))
        return &p->cand[p->path].addr;
    for (size_t k = 0; k < sizeof(order) / sizeof(order[0]); k++)
        for (size_t i = 0; i < p->n_cand; i++)
            if (p->cand[i].technique == order[k])
                return &p->cand[i].addr;
    return NULL;
}

/* Tell `to` of `about` in the session sid, over to's path. */
static int send_introduction(punch_agent *a, uint64_t now, int to, int about, const uint8_t *sid,
                             uint8_t flags)
{
    peer *pt = &a->peers[to];
    const peer *pa = &a->peers[about];
    const punch_addr *pub = endpoint_to_share(pa);
    if (!pub)
        return PUNCH_ERR_LIMIT;
    punch_msg m = {.type = PUNCH_MSG_INTRODUCE, .public_addr = *pub, .flags = flags};
    new_txid(a, m.txid);
    memcpy(m.session, sid, PUNCH_MSG_SESSION_LEN);
    memcpy(m.key, pa->key, PUNCH_KEY_BYTES);
    memcpy(m.name, pa->name, sizeof(m.name));
    for (size_t i = 0; i < pa->n_cand && m.n_private < PUNCH_MSG_MAX_PRIVATE; i++)
        if (pa->cand[i].technique == PUNCH_TECH_PRIVATE)
            m.private_addr[m.n_private++] = pa->cand[i].addr;
    uint32_t rtt = pa->path >= 0 ? pa->cand[pa->path].rtt_us / 1000 : 0;
    m.rtt_ms = (uint16_t)(rtt < UINT16_MAX ? rtt : UINT16_MAX);
    uint8_t inner[DGRAM_MAX] = {INNER_INTRODUCE};
    size_t len;
    int rc = punch_msg_encode(&m, inner + 1, sizeof(inner) - 1, &len);
    if (rc == 0)
        rc = send_transport(a, now, pt, &pt->cand[pt->path], inner, len + 1);
    return rc;
}

int punch_agent_introduce(punch_agent *a, uint64_t now, int x, int y)
{
    if (!a || x < 0 || y < 0 || x >= MAX_PEERS || y >= MAX_PEERS || x == y ||
        !a->peers[x].used || !a->peers[y].used)
        return PUNCH_ERR_NOTFOUND;
    if (!a->peers[x].ready || a->peers[x].path < 0 || !a->peers[y].ready ||
        a->peers[y].path < 0)
        return PUNCH_ERR_LIMIT;
    uint8_t sid[PUNCH_MSG_SESSION_LEN];
    random_bytes(a, sid, sizeof(sid));
    int rc = send_introduction(a, now, x, y, sid, PUNCH_INTRO_INITIATOR);
    if (rc == 0)
        rc = send_introduction(a, now, y, x, sid, 0);
    return rc;
}

/* ---- port mapping: the agent's side of core/portmap.c (portmap hook) ---- */

int punch_agent_poll_portmap(punch_agent *a, uint64_t now, punch_portmap_request *req)
{
    return a && req ? punch_portmap_poll(&a->portmap, now, req) : 0;
}

void punch_agent_portmap_result(punch_agent *a, uint64_t now, const punch_portmap_result *res)
{
    punch_event out;
    if (!a || !res)
        return;
    unsigned what = punch_portmap_take(&a->portmap, now, res, &out);
    if (what & PUNCH_PM_TELL)
        push_event(a, out.kind, -1)->e = out;
    if (what & PUNCH_PM_READVERTISE)
        reregister(a, now);
}

int punch_agent_portmap_release(punch_agent *a, punch_portmap_request *req)
{
    return a && req ? punch_portmap_release(&a->portmap, req) : 0;
}

void punch_agent_stats_get(const punch_agent *a, punch_agent_stats *out)
{
    if (!a || !out)
        return;
    *out = (punch_agent_stats){.received = a->received, .sent = a->sent, .dropped = a->dropped,
                               .unsent = a->unsent,
                               .overflowed = a->overflowed,
                               .events_lost = a->events_lost};
}

int punch_agent_poll_transmit(punch_agent *a, punch_addr *dst, uint8_t *ttl, uint8_t *buf,
                              size_t cap, size_t *len)
{
    uint16_t sock;
    int rc;
    while ((rc = punch_agent_poll_transmit_from(a, &sock, dst, ttl, buf, cap, len)) == 1 &&
           sock != 0)
    {
        /* For an extra socket this caller does not have: not sent. */
        a->sent--;
        a->unsent++;
    }
    return rc;
}

int punch_agent_poll_transmit_from(punch_agent *a, uint16_t *sock, punch_addr *dst, uint8_t *ttl,
                                   uint8_t *buf, size_t cap, size_t *len)
{
    if (!a || !sock || !dst || !ttl || !buf || !len)
        return PUNCH_ERR_INVAL;
    if (a->tx_count == 0)
        return 0;
    tx *t = &a->txq[a->tx_head];
    if (cap < t->len)
        return PUNCH_ERR_NOBUFS;
    *sock = t->sock;
    *dst = t->dst;
    *ttl = t->ttl;
    memcpy(buf, t->buf, t->len);
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
    a->current = a->evq[a->ev_head];
    a->ev_head = (a->ev_head + 1) % EVQ_LEN;
    a->ev_count--;
    *out = a->current.e;
    if (out->kind == PUNCH_EVENT_DATA)
        out->data = a->current.data;
    return 1;
}

int punch_agent_new(punch_agent **out, const punch_agent_cfg *cfg, uint64_t now)
{
    if (!out || !cfg || !cfg->random || cfg->n_local > PUNCH_MAX_LOCAL ||
        (cfg->server.family != PUNCH_AF_INET && cfg->server.family != PUNCH_AF_INET6) ||
        cfg->server.port == 0 || (cfg->name && !punch_msg_valid_name(cfg->name)))
        return PUNCH_ERR_INVAL;
    punch_agent *a = calloc(1, sizeof(*a));
    if (!a)
        return PUNCH_ERR_NOMEM;
    a->txq = calloc(TXQ_LEN, sizeof(tx));
    a->evq = calloc(EVQ_LEN, sizeof(ev));
    if (!a->txq || !a->evq) {
        punch_agent_free(a);
        return PUNCH_ERR_NOMEM;
    }
    a->cfg = *cfg;
    if (punch_identity_from_secret(&a->id, cfg->secret_key) != 0) {
        punch_agent_free(a);
        return PUNCH_ERR_INVAL;
    }
    memset(a->cfg.secret_key, 0, sizeof(a->cfg.secret_key));
    a->cfg.name = NULL; /* the caller's string is not ours to keep */
    a->keepalive_ms = cfg->keepalive_ms ? cfg->keepalive_ms : DEFAULT_KEEPALIVE_MS;
    a->open_ttl = cfg->open_ttl ? cfg->open_ttl : DEFAULT_OPEN_TTL;
    a->low_ttl = cfg->open_guard_ms != UINT32_MAX;
    a->open_guard_ms = a->low_ttl ? cfg->open_guard_ms : 0;
    /* Everyone registers (the server introduces only registered peers);
     * without a name, one is made from the key. */
    if (cfg->name)
        snprintf(a->name, sizeof(a->name), "%s", cfg->name);
    else
        for (int i = 0; i < 8; i++)
            snprintf(a->name + 2 * i, 3, "%02x", a->id.public_key[i]);
    a->next_sock = 1;
    a->birthday_owner = -1;
    uint8_t nonce[12]; /* portmap hook */
    random_bytes(a, nonce, sizeof(nonce));
    punch_portmap_init(&a->portmap, cfg->portmap, nonce, now);
    reg_start(a, REG_HELLO, now);
    reg_timeout(a, now);
    disc_start(a, now); /* beside HELLO: no time lost */
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
    free(a->txq);
    free(a->evq);
    free(a);
}
