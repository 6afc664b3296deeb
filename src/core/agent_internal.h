/* SPDX-License-Identifier: MIT */
/*
 * The peer agent's inside, shared by its files (see agent.c for how a
 * connection comes about and which file holds which step). Not a public
 * header: only the agent's files in src/core include it.
 *
 * agent.c is the dispatcher: the public calls, the queues, the peer table
 * and the one table of timers. Every technique's file owns its slice of
 * state (a sub-struct of peer or punch_agent named after it) and exposes a
 * deadline and a timeout handler for that table.
 */
#ifndef PUNCH_CORE_AGENT_INTERNAL_H
#define PUNCH_CORE_AGENT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/auth.h"
#include "crypto/identity.h"
#include "crypto/noise.h"
#include "crypto/transport.h"
#include "core/peer_admission.h"
#include "core/portmap.h"
#include "core/turn.h"
#include "punch/punch.h"
#include "wire/msg.h"
#include "wire/stun.h"

#define MAX_PEERS      16
#define MAX_CANDIDATES 24
#define TXQ_LEN        256
#define EVQ_LEN        128
#define DGRAM_MAX      1500

/* Retransmission of requests to the server: 250 ms (less once the round
 * trip is known: server_rto), four tries at that, then doubling up to 1 s,
 * 16 tries (about 10 s).
 * RFC 8489 §6.2.1 doubles from 500 ms without a cap; the cap keeps a lossy
 * access link from costing tens of seconds. */
#define SERVER_RTO_MS        250
#define SERVER_RTO_MAX_MS    1000
#define SERVER_TRIES         16
#define DEFAULT_KEEPALIVE_MS 25000 /* well under common 30 s NAT timeouts */
/* The conntrack trap (punch_agent_cfg.open_ttl): 2 hops leave a host and
 * its NAT. The guard comes from both round trips to the server
 * (probe_guard_ms); without them, 100 ms covers the usual difference
 * between the two peers' delays from the server, which is how far apart
 * they start punching; never more than 2 s. */
#define DEFAULT_OPEN_TTL      2
#define DEFAULT_OPEN_GUARD_MS 100
#define MAX_OPEN_GUARD_MS     2000
/* A candidate taken on one-way proof must answer a PING within this. */
#define CONFIRM_MS 1000

/* Probing budget per candidate (§6.2, §4.3): every 100 ms for the first
 * second, then every second until 10 s; then every 15 s in the background
 * while the peer is on the relay or has no path. */
#define PROBE_FAST_MS       100
#define PROBE_FAST_COUNT    10
#define PROBE_SLOW_MS       1000
#define PROBE_GIVE_UP_MS    10000
#define PROBE_BACKGROUND_MS 15000
/* The first probes of a candidate go twice, back to back (loss, issue 10). */
#define PROBE_COPY_COUNT    2
/* punch_agent_close's goodbye goes three times (agent.c). */
#define CLOSE_COPIES        3

/* Many-port probing (birthday.c): how many sockets one side opens, how
 * many ports the other probes. */
#define BIRTHDAY_SOCKETS 256
#define BIRTHDAY_PROBES  1024
/* ...paced at BIRTHDAY_BATCH every BIRTHDAY_TICK_MS. */
#define BIRTHDAY_BATCH   16
#define BIRTHDAY_TICK_MS 10

/* Datagrams the responder sends before the initiator is known to hold
 * the session's keys (its message 2 may be late or lost): kept, sealed,
 * and sent once more when the first datagram under those keys comes in;
 * the receiver's replay window drops what it had already. */
#define EARLY_MAX 16

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

/* The best kind of path (the private one, or TCP when asked for). */
#define PRIORITY_BEST 1

typedef enum reg_state { REG_HELLO = 1, REG_REGISTER, REG_DONE } reg_state;

/* Registration (registration.c). */
typedef struct registration {
    reg_state state;
    uint8_t txid[PUNCH_MSG_TXID_LEN];
    uint64_t sequence; /* of the REGISTER transaction: larger each time */
    uint64_t next_ms;
    unsigned tries;
    uint64_t sent_ms;  /* the latest HELLO or REGISTER */
    uint16_t rtt_told; /* the round trip the latest REGISTER said */
    bool told_nat;     /* the REGISTER in flight carries discovery's result */
    bool told_second;  /* ...and what second_family.c asked, if it asked */
    bool announced;    /* the REGISTERED event was told */
    unsigned done;     /* times a REGISTERED made us registered (REG_DONE) */
    bool again;        /* reregister() came during a registration: once more after it */
    /* Address-validation token (punch_agent_cfg.token; token.c): a REGISTER
     * with it goes beside the HELLO until a COOKIE or REGISTERED is in. */
    bool token_live;
    bool by_token;     /* the REGISTERED came in the first flight (token) */
    bool early;        /* CONNECTs go with the token REGISTER (the NAT was eim) */
    uint8_t hello_txid[PUNCH_MSG_TXID_LEN]; /* the HELLO beside the token */
    uint8_t token_txid[PUNCH_MSG_TXID_LEN]; /* the token's REGISTER: its own, so its
                                               answer is told from the cookie's */
} registration;

/* NAT discovery (draft §3.4, RFC 5780 §4.3; discovery.c): after the first
 * registration, a STUN Binding request to the server's address; when the
 * answer names another (OTHER-ADDRESS: punchd --alt), requests to the three
 * other address/port pairs, sent one after the other. Without one, a
 * request to the server's second port on the same IP, which its COOKIE
 * names (punchd --second-port; DISC_AWAIT_COOKIE until the COOKIE is in).
 * The public endpoints the server saw say whether our NAT maps per
 * destination and with what step it allocates; REGISTER tells the server,
 * INTRODUCE tells peers. */
typedef enum disc_state {
    DISC_IDLE = 0,
    DISC_MAIN,
    DISC_OTHERS,
    DISC_AWAIT_COOKIE,
    DISC_DONE
} disc_state;

typedef struct discovery {
    disc_state state;
    unsigned n;         /* destinations: 1, then 4 (or 2: the second port) */
    punch_addr dst[4];  /* main, alt IP, alt IP and port, alt port */
    punch_addr seen[4]; /* our public endpoint as each saw it; AF_NONE: no answer */
    uint8_t txid[4][PUNCH_STUN_TXID_LEN];
    uint64_t next_ms, asked_ms;
    unsigned tries;
} discovery;

/* Our endpoint as a server's IPv6 address sees it, while registered over
 * IPv4 (second_family.c): NPTv6 shows there. */
typedef struct second_family {
    bool asking;        /* a Binding request is out, unanswered */
    punch_addr seen;    /* the latest answer's; AF_NONE: none yet */
    uint8_t txid[PUNCH_STUN_TXID_LEN];
    uint64_t next_ms;   /* the next try, or the next keepalive's ask */
    unsigned tries;
} second_family;

/* The servers we know (servers.c): the one in use is cfg.server. */
typedef struct known_server {
    punch_addr addr;
    uint32_t rtt_ms;        /* from its latest probe's answer; 0 unknown */
    uint64_t heard_ms;      /* its latest answer (a probe's, or MAC'd) */
    uint64_t next_probe_ms;
    uint64_t asked_ms;      /* the probe in flight went then; 0 none */
    unsigned unanswered;    /* probes since it last answered */
    uint8_t txid[PUNCH_MSG_TXID_LEN]; /* the probe's HELLO */
} known_server;

typedef struct server_list {
    size_t n;
    known_server s[PUNCH_MAX_SERVERS];
    size_t current;         /* index of cfg.server */
    bool chosen;            /* false: the HELLO goes to several, the first COOKIE chooses */
    size_t first;           /* ...starting with this one */
    unsigned failovers;
} server_list;

/* What discovery found, as REGISTER and INTRODUCE carry it. */
typedef struct nat_behaviour {
    uint8_t mapping; /* punch_msg_nat */
    uint16_t step, port;
} nat_behaviour;

/* The conntrack-trap openers (holepunch.c), from the config. */
typedef struct opener {
    uint8_t ttl;
    uint64_t guard_ms; /* 0: adaptive (probe_guard_ms) */
    bool low_ttl;      /* the low TTL used at all */
} opener;

typedef struct candidate {
    punch_addr addr; /* the server's address for the relay */
    punch_socket sock; /* our socket it is reached from */
    punch_technique technique;
    uint64_t first_probe_ms;
    uint64_t next_probe_ms;
    unsigned probes;
    uint64_t last_probe_ms;
    bool validated;
    bool confirmed;      /* validated both ways (a PONG or a message 2 came back) */
    uint64_t heard_ms;   /* validated one way: when */
    uint64_t proven_ms;  /* validated (either way) latest: when */
    uint64_t unheard_ms; /* when that last came to nothing (unhear) */
    bool gave_up;        /* the ATTEMPT event was told */
    uint64_t ping_sent_ms;
    uint8_t ping_nonce[8];
    uint64_t prev_ping_sent_ms; /* the PING before, still answerable (0: none) */
    uint8_t prev_ping_nonce[8];
    uint32_t rtt_us; /* with rtt_pinged: the least of rtt_samples PONGs' */
    bool rtt_pinged; /* rtt_us from a PING's PONG (else a handshake's: maybe short) */
    uint8_t rtt_samples;
    bool closed; /* a TCP connection that is gone: never used again */
    bool spoke;  /* an authenticated datagram came from it (§6.2: verified) */
    bool claimed; /* from the peer's list of its endpoints only (§6.2: per claimed IP) */
    bool via_nat64; /* an IPv4 endpoint reached through our NAT64 (family.c) */
    uint16_t unverified_sent; /* probes to it before the handshake (admission.c) */
} candidate;

/* The sessions a peer slot held before its current one (newest first):
 * an INTRODUCE naming one of them is a replay, never a new start. */
#define RETIRED_SESSIONS 4
typedef struct retired_sessions {
    uint8_t id[RETIRED_SESSIONS][PUNCH_MSG_SESSION_LEN];
    unsigned n;
} retired_sessions;

/* CONNECT, repeated (same transaction) until the session is up: the
 * server introduces both sides again for each copy, so a lost INTRODUCE
 * on either side is made good (introduction.c). */
typedef struct connect_state {
    bool asked;
    uint8_t txid[PUNCH_MSG_TXID_LEN];
    uint64_t next_ms;
    unsigned tries;
    bool reconnect; /* asked again after the path died; until re-introduced */
    unsigned sent_in; /* registration.done when it last went */
} connect_state;

/* The low-TTL time for a peer's public endpoints (holepunch.c). */
typedef struct punch_guard {
    uint16_t peer_rtt_ms; /* the peer's round trip to the introducer (INTRODUCE) */
    uint32_t my_rtt_ms;   /* ours to the introducer (the server, or a peer) */
    uint64_t ms;          /* low-TTL time for public endpoints (probe_guard_ms) */
    uint64_t from_ms;     /* ...from the introduction (or the news of new endpoints) */
} punch_guard;

/* Many-port probing (birthday.c): which side of it we are, from when, how far. */
typedef enum birthday_side {
    BIRTHDAY_NONE,
    BIRTHDAY_MANY_SOCKETS,
    BIRTHDAY_MANY_PORTS
} birthday_side;

typedef struct birthday_state {
    birthday_side side;
    uint64_t start_ms, next_ms;
    bool guess; /* a NAT's behaviour is unknown: only once punching failed */
    bool trap;  /* two cones: the guess is a conntrack trap (birthday_role) */
    uint8_t swaps; /* trap: rounds after the first, each with the sides swapped (birthday_swap) */
    unsigned sent;
    uint16_t kept;                   /* the extra socket a path kept when a run
                                        ended (0: none): open till the peer goes */
    uint16_t ports[BIRTHDAY_PROBES]; /* MANY_PORTS: the ports probed */
    punch_addr to;                   /* the peer's public endpoint */
} birthday_state;

/* A peer's admission (admission.c): when introduced, and the probes sent
 * to unverified addresses before the handshake, of how many allowed
 * beyond PUNCH_PROBES_PER_PEER (a many-port run's). */
typedef struct admission_state {
    uint64_t admitted_ms;
    unsigned unverified_sent;
    unsigned probe_allowance;
} admission_state;

/* Introductions of strangers that found no slot (admission.c,
 * peer_admission.h): copies of the INTRODUCEs, payload not kept. */
typedef struct waiting_room {
    punch_msg intro[PUNCH_WAITING_ROOM];
    uint64_t at_ms[PUNCH_WAITING_ROOM];
    bool used[PUNCH_WAITING_ROOM];
} waiting_room;

/* Noise IK (handshake.c). */
typedef struct handshake {
    punch_noise_handshake noise;
    uint8_t msg1[128]; /* our message 1 (initiator) or opener (responder) */
    size_t msg1_len;
    uint8_t msg2[128]; /* responder: our answer, repeated to copies */
    size_t msg2_len;
    uint8_t answered_e[32]; /* responder: the ephemeral key we answered */
    uint8_t answer_e[32];   /* initiator: the responder's ephemeral in the answer taken */
    uint32_t local_index;
} handshake;

/* Initiator: a new handshake is under way on the path (handshake.c). */
typedef struct rekey_state {
    bool in_progress;
    uint64_t next_ms;
} rekey_state;

/* The path in use kept alive (keepalive.c). */
typedef struct keepalive_state {
    uint64_t last_rx_ms; /* last authenticated datagram on the path */
    uint64_t heard_ms;   /* ...from the peer at all, on any path */
    uint64_t next_ms;
    unsigned missed;
    uint64_t quiet_ms;   /* the first of the missed PINGs went: when */
    bool ping_asked;     /* punch_agent_ping: a PONG on the path makes an event */
} keepalive_state;

typedef struct peer {
    bool used;
    char name[PUNCH_NAME_MAX + 1];
    uint8_t key[PUNCH_KEY_BYTES];
    bool pinned;
    connect_state connect;
    /* From INTRODUCE. */
    bool introduced;
    uint8_t session[PUNCH_MSG_SESSION_LEN];
    retired_sessions retired; /* the sessions this slot held before */
    bool initiator;
    punch_guard guard;
    uint64_t moved_ms; /* the server's news that the peer is elsewhere (0: none) */
    bool prefer_tcp; /* we or the peer asked for a TCP path (punch_agent_tcp_offer) */
    birthday_state birthday;
    size_t n_cand;
    candidate cand[MAX_CANDIDATES];
    handshake hs;
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
    rekey_state rekey;
    int path; /* candidate in use, -1 none */
    punch_addr turn_relayed; /* the peer's relayed address at a TURN server (TURN_ADDR) */
    /* What punchd's relay forwards from us in the session, per second
     * (RELAY_RATE); 0: not told (an older punchd). */
    uint32_t relay_bytes_per_s, relay_packets_per_s;
    bool rtt_owed; /* its PATH event had no timed round trip: an RTT event follows */
    keepalive_state keepalive;
    admission_state admission;
} peer;

/* Our relayed address told to the server (turn_agent.c): TURN_ADDR until
 * its receipt, again after every registration (the server may have
 * restarted or be another one). */
typedef struct turn_offer {
    uint8_t txid[PUNCH_MSG_TXID_LEN];
    punch_addr sent;    /* the relayed address the latest TURN_ADDR told */
    unsigned txn_in;    /* registration.done it went for */
    unsigned settled_in; /* ...when its receipt came, or it went unanswered (0: never) */
    punch_addr told;    /* the relayed address an offered TURN event told */
    punch_addr gave_up_at; /* the server that never took it (an older punchd) */
    uint64_t next_ms;
    unsigned tries;
} turn_offer;

typedef struct tx {
    punch_addr dst;
    punch_socket sock;
    uint8_t ttl;
    uint16_t len;
    uint8_t buf[DGRAM_MAX];
} tx;

/* An event's room: one byte of headroom (the inner type byte, when a
 * datagram is decrypted straight into the room of the DATA event it makes:
 * on_data), then a DATA event's bytes. */
#define EV_ROOM (1 + PUNCH_MAX_DATAGRAM_LARGE)
typedef struct ev {
    punch_event e;
    /* One of the agent's EVQ_LEN + 1 rooms; the one handed out last is
     * current's, swapped on every poll instead of copied. */
    uint8_t *room;
} ev;

struct punch_agent {
    punch_agent_cfg cfg;
    punch_identity id;
    char name[PUNCH_NAME_MAX + 1];
    registration reg;
    server_list servers;
    uint32_t server_rtt_ms; /* from unrepeated requests (rtt_sample); 0 unknown */
    uint8_t server_key[PUNCH_KEY_BYTES];
    uint8_t mac_key[PUNCH_AUTH_KEY_LEN];
    uint8_t cookie[PUNCH_MSG_COOKIE_LEN];
    punch_server_token token_told; /* the latest PUNCH_EVENT_TOKEN's */
    punch_addr public_addr;
    discovery disc;
    discovery disc_other; /* the other family's (discovery.c, issue 16) */
    second_family second;
    uint16_t second_port; /* the server's second STUN port (COOKIE), 0 none */
    nat_behaviour nat;
    nat_behaviour nat_other; /* disc_other's: the other family's NAT (or none) */
    uint32_t keepalive_ms;
    opener open;
    /* Peers. */
    peer peers[MAX_PEERS];
    /* Queues. */
    tx *txq;
    size_t tx_head, tx_count;
    ev *evq;
    size_t ev_head, ev_count;
    ev current;              /* its room: the DATA event's last handed out (stays valid) */
    uint8_t *rooms;          /* EVQ_LEN + 1 of EV_ROOM bytes */
    uint64_t received, sent; /* datagrams */
    uint64_t unsent;         /* for extra sockets, taken by punch_agent_poll_transmit */
    uint64_t overflowed;     /* the oldest queued datagram, pushed out by a new one */
    uint64_t events_lost;    /* the oldest queued event, pushed out by a new one */
    /* Many-port probing's extra sockets 1..PUNCH_MAX_SOCKETS (birthday.c):
     * one peer at a time (birthday_owner) holds BIRTHDAY_SOCKETS of them
     * (birthday_socks, in the order it sends from them); a run that ends
     * gives them back but the one a path kept (birthday_state.kept). */
    uint64_t socks_taken[PUNCH_MAX_SOCKETS / 64 + 1]; /* bit k: socket k is taken */
    uint16_t sock_cursor;                             /* the last one taken */
    uint16_t birthday_socks[BIRTHDAY_SOCKETS];
    int birthday_owner; /* peer id, -1 */
    punch_socket rx_sock; /* the socket of the datagram being handled */
    uint64_t dropped;   /* datagrams not for us, forged, stale */
    punch_portmap portmap; /* port mapping: portmap.c decides, portmap_agent.c wires */
    punch_turn *turn;      /* cfg.turn_server's allocation (turn_agent.c), NULL: none */
    punch_addr turn_told;  /* the relayed address a TURN event told */
    bool turn_failed_told;
    uint64_t turn_reallocs_told; /* the TURN client's reallocations an ATTEMPT told */
    turn_offer offer;      /* our relayed address told to the server (TURN_ADDR) */
    /* Admission and the probe budget (admission.c, peer_admission.h). */
    punch_probe_bucket probe_bucket;
    punch_spent_keys spent;
    waiting_room waiting;
    uint64_t expired, evicted, turned_away, readmitted, probes_withheld;
};

/* ---- small helpers ---- */

static inline void random_bytes(punch_agent *a, void *buf, size_t len)
{
    a->cfg.random(a->cfg.random_ctx, buf, len);
}

static inline void new_txid(punch_agent *a, uint8_t txid[PUNCH_MSG_TXID_LEN])
{
    random_bytes(a, txid, PUNCH_MSG_TXID_LEN);
}

static inline uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

/* Has a timer's deadline come? UINT64_MAX is never. */
static inline bool timer_due(uint64_t deadline, uint64_t now)
{
    return deadline != UINT64_MAX && now >= deadline;
}

/* ---- agent.c: queues and the peer table ---- */
ev *push_event(punch_agent *a, punch_event_kind kind, int peer_id);
__attribute__((format(printf, 4, 5))) void tell_attempt(punch_agent *a, int id, const candidate *c,
                                                        const char *why, ...);
uint8_t *push_tx(punch_agent *a, punch_socket sock, const punch_addr *dst, uint8_t ttl, size_t len);
void send_msg_ttl(punch_agent *a, punch_socket sock, const punch_addr *dst, uint8_t ttl,
                  const punch_msg *m);
void send_msg(punch_agent *a, const punch_addr *dst, const punch_msg *m);
int find_peer_by_session(const punch_agent *a, const uint8_t *session);
int find_peer_by_index(const punch_agent *a, uint32_t index);
int new_peer(punch_agent *a, uint64_t now, bool stranger);
int renew_peer(punch_agent *a, uint64_t now, int id);
void forget_peer(punch_agent *a, int id);
peer *session_peer(punch_agent *a, int id);

/* ---- registration.c (draft §3.3.1 step 1) ---- */
uint64_t server_rto(const punch_agent *a, unsigned tries);
unsigned server_copies(unsigned tries);
void reg_start(punch_agent *a, reg_state st, uint64_t now);
uint64_t reg_deadline(const punch_agent *a, int id);
void reg_timeout(punch_agent *a, uint64_t now, int id);
void rtt_sample(punch_agent *a, uint64_t sent_ms, uint64_t now);
void reregister(punch_agent *a, uint64_t now);

/* ---- servers.c (several servers: the first to answer, failover) ---- */
void servers_init(punch_agent *a, uint64_t now);
void servers_send_hello(punch_agent *a, const punch_msg *m);
/* A MAC'd message from the server in use: it is there (and took us). */
void servers_heard_current(punch_agent *a, uint64_t now);
bool servers_on_cookie(punch_agent *a, uint64_t now, const punch_addr *src, const punch_msg *m);
uint64_t servers_deadline(const punch_agent *a, int id);
void servers_timeout(punch_agent *a, uint64_t now, int id);

/* ---- token.c (address-validation tokens: registration in one flight) ---- */
void token_setup(punch_agent *a);
/* Whether CONNECTs may go now: registered and announced, or with a token
 * REGISTER that the server is taking (the NAT mapped eim last time). */
bool may_connect(const punch_agent *a);
/* A REGISTER sent while the token is live carries it. */
void token_put(const punch_agent *a, punch_msg *m);
/* Registered with a cookie after the token failed: the CONNECTs that went
 * with it were refused, and go again now rather than at their timer's. */
void token_connect_now(punch_agent *a, uint64_t now);
/* Whether a REGISTERED answers the token's REGISTER. */
bool token_answered(const punch_agent *a, const punch_msg *m);
/* A REGISTERED: tell the application of a new token (or a new NAT). */
void token_on_registered(punch_agent *a, const punch_msg *m);

/* turn_agent.c: a standard TURN server's allocation (technique turn) */
int turn_agent_start(punch_agent *a, uint64_t now);
void turn_agent_free(punch_agent *a);
bool turn_agent_on_datagram(punch_agent *a, uint64_t now, const punch_addr *src,
                            const uint8_t *data, size_t len);
uint64_t turn_deadline(const punch_agent *a, int id);
void turn_timeout(punch_agent *a, uint64_t now, int id);
/* Our relayed address to the server (TURN_ADDR), once registered. */
uint64_t turn_offer_deadline(const punch_agent *a, int id);
void turn_offer_timeout(punch_agent *a, uint64_t now, int id);
/* A MAC'd TURN_ADDR from the server: the receipt of ours, or a peer's. */
void turn_on_addr(punch_agent *a, uint64_t now, const punch_msg *m);
/* An introduction's TURN candidates: through our allocation to the peer's
 * public endpoint (and relayed address, when known), or straight to its
 * relayed address without one. Returns how many are new. */
size_t turn_add_candidates(punch_agent *a, uint64_t now, peer *p, const punch_addr *public_addr);
/* Send an inner punch message through our allocation to c->addr. */
void turn_send(punch_agent *a, const candidate *c, const punch_msg *inner);
/* The path in use, through our allocation, missed a keepalive: is the
 * allocation still there? (A Refresh now: a 437 makes a new one.) */
void turn_path_quiet(punch_agent *a, uint64_t now, const candidate *c);
/* Peer id is forgotten: the permissions and channels only it used are let
 * go (they expire, and their slots take other peers later). */
void turn_forget_peer(punch_agent *a, int id);

/* portmap_agent.c: the router's port mapping (technique portmap) */
uint64_t portmap_deadline(const punch_agent *a, int id);
void portmap_timeout(punch_agent *a, uint64_t now, int id);
void announce(punch_agent *a);
void on_cookie(punch_agent *a, uint64_t now, const punch_msg *m);
void on_registered(punch_agent *a, uint64_t now, const punch_msg *m);
void on_refused(punch_agent *a, uint64_t now, const punch_msg *m);

/* ---- admission.c (peer slots and the probe budget, draft §6.2) ---- */
/* A slot for a new peer (a stranger, or one we ask for), freeing the
 * oldest stranger's when there is no other room. Returns the slot or -1. */
int admit_peer(punch_agent *a, uint64_t now, bool stranger);
/* Slot id is taken afresh: a stranger still handshaking there spends its key. */
void spend_if_handshaking(punch_agent *a, uint64_t now, int id);
/* Strangers that did not complete the handshake in time are forgotten. */
uint64_t admission_deadline(const punch_agent *a, int id);
void admission_timeout(punch_agent *a, uint64_t now, int id);
/* A stranger's introduction that found no slot waits (the waiting room);
 * the newest takes the next slot a window frees. */
void wait_for_room(punch_agent *a, uint64_t now, const punch_msg *m);
uint64_t waiting_deadline(const punch_agent *a, int id);
void waiting_timeout(punch_agent *a, uint64_t now, int id);
/* A stranger's key that was forgotten lately gets no new budget. */
void spend_again(punch_agent *a, uint64_t now, peer *p);
/* Whether a probe may go to candidate ci of peer id now (§6.2). */
bool probe_allowed(punch_agent *a, uint64_t now, int id, int ci);
/* Whether one more many-port probe of peer id may go now. */
bool many_port_allowed(punch_agent *a, uint64_t now, int id);

/* ---- discovery.c (NAT behaviour, RFC 5780 §4.3) ---- */
void disc_start(punch_agent *a, uint64_t now);
/* The other family's run, towards dst (NULL: none, the result unknown). */
void disc_other_start(punch_agent *a, uint64_t now, const punch_addr *dst);
bool disc_running(const discovery *d);
/* The server in use is of the other family now: the two runs swap roles. */
void disc_swap(punch_agent *a);
void disc_on_cookie(punch_agent *a, uint64_t now);
uint64_t disc_deadline(const punch_agent *a, int id);
void disc_timeout(punch_agent *a, uint64_t now, int id);
void on_stun(punch_agent *a, uint64_t now, const uint8_t *buf, size_t len);
/* A STUN Binding request with this transaction id to dst (the main socket). */
void stun_ask(punch_agent *a, const punch_addr *dst, const uint8_t txid[PUNCH_STUN_TXID_LEN]);

/* ---- second_family.c (our public IPv6 endpoint while on IPv4, issue 16) ---- */
void second_start(punch_agent *a, uint64_t now);
uint64_t second_deadline(const punch_agent *a, int id);
void second_timeout(punch_agent *a, uint64_t now, int id);
/* Ask now (at the start; the server in use changed family). */
void second_ask_now(punch_agent *a, uint64_t now);
/* A STUN answer: true when it was ours (used or counted as dropped). */
bool second_on_answer(punch_agent *a, uint64_t now, const punch_stun_msg *m);
/* Whether the first answer, or the other family's NAT discovery, is still
 * awaited (REGISTERED waits for both). */
bool second_asking(const punch_agent *a);
/* Our endpoints for REGISTER into out (cap), their number: the one seen
 * first, unless it is one of ours (punchd passes on the first four), then
 * our interface addresses. */
size_t second_endpoints(const punch_agent *a, punch_addr *out, size_t cap);

/* ---- introduction.c (draft §3.3.1 step 2, and peers as introducers) ---- */
uint64_t connect_deadline(const punch_agent *a, int id);
void connect_timeout(punch_agent *a, uint64_t now, int id);
void on_introduce(punch_agent *a, uint64_t now, const punch_msg *m);
void on_peer_introduce(punch_agent *a, uint64_t now, int from, const uint8_t *msg, size_t len);
int send_introduction(punch_agent *a, uint64_t now, int to, int about, const uint8_t *sid,
                      uint8_t flags);

/* ---- technique.c (one row per technique: name, rank, TCP, low-TTL guard) ---- */
bool is_tcp(punch_technique t);
bool technique_guarded(punch_technique t);
/* The path choice's rank of t: lower is better. */
int technique_rank(bool prefer_tcp, punch_technique t);

/* ---- candidates.c (the addresses a peer may be reached at, and the path) ---- */
/* The main socket; the k-th extra one; is s the main one; are a and b one. */
#define MAIN_SOCKET ((punch_socket){.kind = PUNCH_SOCKET_MAIN})
/* Through our TURN allocation (turn_agent.c): the datagram goes wrapped to
 * the TURN server on the main socket. Extra sockets count from 1, so extra
 * socket 0 is never a caller's: it stands for this inside the agent. */
#define TURN_SOCKET ((punch_socket){.kind = PUNCH_SOCKET_EXTRA, .index = 0})
bool is_turn_socket(punch_socket s);
/* Whether what goes to c is wrapped for a relay: punchd's (RELAY) or a
 * TURN server's (through our allocation). */
bool wrapped(const candidate *c);
/* direct, or relay (punchd's relay or a TURN server's) */
punch_path_kind path_kind(punch_technique t);
punch_socket extra_socket(uint16_t k);
bool is_main_socket(punch_socket s);
bool same_socket(punch_socket a, punch_socket b);
int priority(const peer *p, punch_technique t);
int find_candidate(const peer *p, const punch_addr *addr, punch_socket sock, bool relay);
int add_candidate_on(peer *p, punch_socket sock, const punch_addr *addr, punch_technique t,
                     uint64_t now);
int add_candidate(peer *p, const punch_addr *addr, punch_technique t, uint64_t now);
void add_intro_candidates(punch_agent *a, uint64_t now, peer *p, const punch_msg *m);
int candidate_for(const punch_agent *a, peer *p, const punch_addr *src, bool via_relay,
                  uint64_t now);
void choose_path(punch_agent *a, uint64_t now, int id);
void time_path(punch_agent *a, uint64_t now, int id);
void validate(punch_agent *a, uint64_t now, int id, int ci, uint64_t sent_ms);
void validate_by_pong(punch_agent *a, uint64_t now, int id, int ci, uint64_t sent_ms);
void hear(punch_agent *a, uint64_t now, int id, int ci);
void unhear(punch_agent *a, uint64_t now, int id, int ci);
void forget_paths(punch_agent *a, int id);

/* ---- family.c (dual stack: IPv4 and IPv6 candidates, issue 16) ---- */
/* Whether we can send to this family (the server's, or one of our endpoints'). */
bool family_usable(const punch_agent *a, uint8_t family);
/* The technique of a peer's interface address: a global IPv6 or public
 * IPv4 one is public (hole punching). */
punch_technique family_private_technique(const punch_addr *addr);
/* NAT64 (RFC 6146/6052): cfg's IPv4 servers synthesized when cfg->local
 * has IPv6 and no IPv4; an IPv4 address we cannot send to, rewritten to
 * its synthesized IPv6 one (true when it was); a candidate marked when its
 * address is such a one. */
void family_nat64_servers(punch_agent_cfg *cfg);
bool family_nat64(const punch_agent *a, punch_addr *addr);
void family_mark_nat64(const punch_agent *a, candidate *c);
/* Of two candidates of one priority, is c the better (IPv6 direct first,
 * unless PINGs found it slower by more than a margin; else the shorter
 * round trip)? */
bool family_better(const candidate *c, const candidate *d);
/* Whether best, of the priority of the path in use cur, takes over from
 * it: an IPv6 direct path from an IPv4 one within the margin, an IPv4 one
 * from an IPv6 one measured slower by twice the margin. */
bool family_switch(const candidate *best, const candidate *cur);
/* The path moved from candidate was (to the other family): a PING on the
 * new one tells the peer; an IPv6 one left is probed again before it may
 * win back (by family_switch), or it would take over again at once. */
void family_moved(punch_agent *a, uint64_t now, int id, int was);
/* A PING from the peer came on candidate ci: when it is of the other family
 * than our path, and our path has been silent for a while, the peer has
 * left it (its keepalive found it dead first): follow. */
void family_follow(punch_agent *a, uint64_t now, int id, int ci);
/* The path in use is quiet (a keepalive went out): may best take over?
 * One of the same family and kind at once, as ever; one of the other
 * family, or native IPv6 against the NAT64, only
 * once a PING went unanswered for a keepalive period (an idle path is
 * quiet at every keepalive, and would flap between the families). */
bool family_quiet_enough(const peer *p, const candidate *best);
/* The path in use and the direct candidates of the other kind (native
 * IPv6, or IPv4 and NAT64): a PING to each until FAMILY_RTT_SAMPLES round
 * trips are timed, so family_switch compares like with like. */
void family_measure(punch_agent *a, uint64_t now, int id);

/* ---- holepunch.c (draft §3.3, with the conntrack-trap openers) ---- */
uint64_t probe_guard_ms(const punch_agent *a, const peer *p);
void start_probing(punch_agent *a, uint64_t now, int id);
uint64_t probe_deadline(const punch_agent *a, int id);
void probe_timeout(punch_agent *a, uint64_t now, int id);

/* ---- port_prediction.c (draft §3.4) ---- */
void add_predicted_candidates(peer *p, const punch_msg *m, const punch_addr *pub, uint64_t now);
bool our_port_predicted(const punch_agent *a, uint8_t family);

/* ---- birthday.c (many-port probing) ---- */
void birthday_plan(punch_agent *a, uint64_t now, int id, const punch_msg *m);
bool birthday_probed(const peer *p, const punch_addr *src);
uint64_t birthday_deadline(const punch_agent *a, int id);
void birthday_timeout(punch_agent *a, uint64_t now, int id);
void birthday_forget(punch_agent *a, int id);
void birthday_on_confirmed(punch_agent *a, int id);

/* ---- handshake.c (Noise IK, and rekeying) ---- */
int make_msg1(punch_agent *a, peer *p);
void route_handshake(punch_agent *a, uint64_t now, const punch_addr *src, bool via_relay,
                     const uint8_t *session, punch_msg_type type, const uint8_t *msg, size_t len);
uint64_t rekey_deadline(const punch_agent *a, int id);
void rekey_timeout(punch_agent *a, uint64_t now, int id);

/* ---- transport.c (data under the session's keys) ---- */
size_t max_datagram(const punch_agent *a);
int send_transport(punch_agent *a, uint64_t now, peer *p, const candidate *c, const uint8_t *inner,
                   size_t len);
void send_ping(punch_agent *a, uint64_t now, peer *p, candidate *c);
void on_data(punch_agent *a, uint64_t now, const punch_addr *src, bool via_relay,
             const uint8_t *session, const uint8_t *dgram, size_t len);

/* ---- relay.c (draft §3.1) ---- */
void send_on_ttl(punch_agent *a, const peer *p, const candidate *c, uint8_t ttl,
                 punch_msg_type type, const uint8_t *payload, size_t len);
void send_on(punch_agent *a, const peer *p, const candidate *c, punch_msg_type type,
             const uint8_t *payload, size_t len);
void on_relay(punch_agent *a, uint64_t now, const punch_addr *src, const punch_msg *m);
/* The server's RELAY_RATE (MAC checked): kept for the peer of its session. */
void on_relay_rate(punch_agent *a, const punch_msg *m);
/* A handshake or transport message from a peer (not through punchd's
 * relay): taken, or counted as dropped. */
void on_peer_msg(punch_agent *a, uint64_t now, const punch_addr *src, const punch_msg *m);

/* ---- keepalive.c (draft §5.5: the NAT binding held, and dead-path detection) ---- */
uint64_t keepalive_deadline(const punch_agent *a, int id);
void keepalive_timeout(punch_agent *a, uint64_t now, int id);
/* A PONG to our PING sent at sent_ms came back on candidate ci. */
void pong_heard(punch_agent *a, uint64_t now, int id, int ci, uint64_t sent_ms);

/* ---- tcp_offer.c (draft §3.2, §3.5: the offers over the session) ---- */
void on_tcp_offer(punch_agent *a, int id, const uint8_t *msg, size_t len);

#endif
