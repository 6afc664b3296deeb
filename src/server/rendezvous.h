/* SPDX-License-Identifier: MIT */
/*
 * The rendezvous and relay service of punchd, sans-I/O (draft §3.3.1
 * introduction, §3.1 relaying; SPEC.md §4 security model).
 *
 * The caller owns the sockets and the clock. It hands in each datagram of
 * punch type (first byte PUNCH_MSG_MAGIC; STUN goes to src/server/binding)
 * with punch_rendezvous_handle, then drains the answers with
 * punch_rendezvous_poll_transmit and the events with
 * punch_rendezvous_poll_event. Expiry: call punch_rendezvous_handle_timeout
 * when punch_rendezvous_next_timeout says so; each call does bounded work,
 * so a deadline in the past just means "call again soon".
 *
 * What it does, in protocol order:
 *   HELLO     -> COOKIE: a cookie bound to the source address and the
 *                current minute; no state kept; COOKIE < HELLO (no amplification).
 *   REGISTER  -> REGISTERED or REFUSED: cookie (or a token from an earlier
 *                REGISTERED: one flight, no cookie round trip) proves the address, the MAC
 *                proves the key (X25519 once per key; the MAC key is cached),
 *                the name is bound to the key. REGISTER is also the keepalive.
 *   CONNECT   -> INTRODUCE to both peers at once (each gets the other's key,
 *                public and private endpoints), or REFUSED.
 *   RELAY     -> the same datagram to the other peer of the session, only
 *                between the two registered endpoints, within quotas.
 * Everything else is counted and dropped without an answer.
 *
 * Tables have fixed capacities from the config and are indexed with a keyed
 * hash (SipHash, crypto_shorthash) so a sender cannot aim at one bucket;
 * nothing is allocated per packet.
 */
#ifndef PUNCH_SERVER_RENDEZVOUS_H
#define PUNCH_SERVER_RENDEZVOUS_H

#include "crypto/auth.h"
#include "crypto/identity.h"
#include "punch/punch.h"
#include "server/ratelimit.h"
#include "wire/msg.h"

/* Cookies are made per period of this length; one is accepted in its
 * period and the next (src/crypto/auth.h), so it lives 60 to 120 s. */
#define PUNCH_RV_COOKIE_PERIOD_MS 60000u
/* Below the 30 s UDP mapping timeout many NATs use, although RFC 4787
 * REQ-5 asks for at least 2 minutes. */
#define PUNCH_RV_DEFAULT_KEEPALIVE_S 25
#define PUNCH_RV_DEFAULT_MAX_PEERS 100000
#define PUNCH_RV_DEFAULT_MAX_SESSIONS 10000
#define PUNCH_RV_DEFAULT_SESSIONS_PER_PEER 16
#define PUNCH_RV_DEFAULT_SESSION_IDLE_MS 120000u
#define PUNCH_RV_DEFAULT_RELAY_BYTES_PER_S (256u * 1024)
#define PUNCH_RV_DEFAULT_RELAY_PACKETS_PER_S 1000u
#define PUNCH_RV_DEFAULT_RELAY_MAX_BYTES (256ull * 1024 * 1024)
#define PUNCH_RV_DEFAULT_UNPROVEN_DERIVE_PER_S 1000u
/* Aggregate limits (limits.c; docs/security.md says why each). */
#define PUNCH_RV_DEFAULT_NAMES_PER_SOURCE 256u
#define PUNCH_RV_DEFAULT_CONNECTS_PER_TARGET_PER_S 1u
#define PUNCH_RV_DEFAULT_CONNECTS_PER_TARGET_BURST 10u
#define PUNCH_RV_DEFAULT_RELAY_SOURCE_BYTES_PER_S (1024u * 1024)
#define PUNCH_RV_DEFAULT_RELAY_SOURCE_PACKETS_PER_S 4000u
#define PUNCH_RV_DEFAULT_RELAY_PEER_BYTES_PER_S (1024u * 1024)
#define PUNCH_RV_DEFAULT_RELAY_PEER_PACKETS_PER_S 4000u
/* Sources (or source and target pairs) tracked at once by those limits. */
#define PUNCH_RV_QUOTA_SLOTS 65536u
/* How long an address-validation token stays good (docs/security.md): a
 * day, so a peer started again the next day still skips the cookie. */
#define PUNCH_RV_DEFAULT_TOKEN_LIFETIME_S 86400u
/* Server ports with a second STUN port beside them (punchd's --listen). */
#define PUNCH_RV_MAX_SECOND_PORTS 8
/* The largest datagram the service answers or relays. */
#define PUNCH_RV_MAX_DATAGRAM 2048

/* Randomness for session ids and INTRODUCE transaction ids (the caller's CSPRNG). */
typedef void (*punch_rendezvous_random_fn)(void *arg, uint8_t *buf, size_t len);

typedef struct punch_rendezvous_cfg {
    punch_identity identity;                 /* the server's key pair */
    uint8_t cookie_secret[PUNCH_AUTH_SECRET_LEN];
    uint8_t hash_key[16];                    /* table hashing (crypto_shorthash) */
    punch_rendezvous_random_fn random;       /* required */
    void *random_arg;
    /* Zero in any field below means its default (PUNCH_RV_DEFAULT_*). */
    size_t max_peers;
    size_t max_sessions;                     /* relay sessions held at once */
    uint32_t max_sessions_per_peer;          /* relay sessions one peer may start */
    uint16_t keepalive_s;                    /* told to peers in REGISTERED */
    uint32_t peer_expiry_ms;                 /* default 3 keepalives + 15 s */
    uint32_t session_idle_ms;                /* a session without relay traffic */
    bool no_relay;                           /* introduce only, never relay */
    uint32_t relay_bytes_per_s;              /* per session, both directions */
    uint32_t relay_packets_per_s;
    uint64_t relay_max_bytes;                /* per session in total; then closed */
    /* Per source (IPv4 address or IPv6 /64) and per peer, over all its
     * names and sessions (quota.h). */
    uint32_t names_per_source;               /* peers registered from one source */
    uint32_t connects_per_target_per_s;      /* introductions one source asks for */
    uint32_t connects_per_target_burst;      /*   towards one peer */
    uint32_t relay_source_bytes_per_s;       /* relayed from one source */
    uint32_t relay_source_packets_per_s;
    uint32_t relay_peer_bytes_per_s;         /* relayed to one peer */
    uint32_t relay_peer_packets_per_s;
    size_t quota_slots;                      /* sources those limits track at once */
    /* Per source IP: HELLOs, and REGISTER/CONNECT that need an X25519 (new
     * key). per_sec 0 = unlimited. hash_key is the caller's. */
    punch_ratelimit_cfg rate;
    /* All sources together: X25519 derivations for sources that have not
     * proved their address (CONNECT or a stale-cookie REGISTER from an
     * unknown key), so spoofed floods cannot buy much CPU. */
    uint32_t unproven_derive_per_s;
    /* Address-validation tokens handed out in REGISTERED; a later REGISTER
     * may carry one instead of a cookie (docs/protocol.md). */
    uint32_t token_lifetime_s;
    /* NAT discovery with one server address: COOKIE tells a peer that
     * asked on port second_port[i].port that the same IP answers STUN
     * Binding on second_port[i].second too (punchd serves PORT+1). */
    size_t n_second_port;
    struct { uint16_t port, second; } second_port[PUNCH_RV_MAX_SECOND_PORTS];
    /* A member of a cluster (punchd --cluster, src/server/cluster.h): a
     * CONNECT for a name not registered here becomes a LOOKUP event for the
     * caller to answer (punch_rendezvous_introduce_remote or
     * punch_rendezvous_refuse), and every registration, keepalives too,
     * gives a REGISTERED event (refresh set when nothing changed) so the
     * caller can keep the name's record alive in the cluster. */
    bool cluster;
} punch_rendezvous_cfg;

/* One datagram out: send out[0..len) to dst, from local (the server address
 * the peer talks to; PUNCH_AF_NONE when the caller never said). */
typedef struct punch_rendezvous_out {
    punch_addr dst;
    punch_addr local;
    size_t len;
    /* poll_transmit_view: the datagram is a RELAY as it came, in the
     * buffer handed to punch_rendezvous_handle (valid as long as that is). */
    bool in_place;
} punch_rendezvous_out;

typedef enum punch_rendezvous_event_type {
    PUNCH_RV_EVENT_REGISTERED = 1,  /* peer[0]: new, or its endpoints changed */
    PUNCH_RV_EVENT_INTRODUCED,      /* peer[0] asked for peer[1]; relay offered or not */
    PUNCH_RV_EVENT_RELAY_OPENED,    /* first datagram relayed; peer[0] initiated the session */
    PUNCH_RV_EVENT_RELAY_CLOSED,    /* reason, bytes, packets, dropped */
    PUNCH_RV_EVENT_LOOKUP,          /* cluster: peer[0] asked for peer[1].name (peer[1].key:
                                       its pinned key, all zero if none), txid */
    PUNCH_RV_EVENT_MOVED,           /* cluster: peer[0], introduced in `session` to far.key
                                       at far.member (a relay half across members when relay
                                       is set), came back from a new endpoint (its NAT
                                       rebound): far.member must tell far.key */
    PUNCH_RV_EVENT_RELAYED,         /* cluster: peer[0], introduced in `session` to far.key
                                       at far.member, has another relayed address at its
                                       TURN server (peer[0].relayed): far.member must tell
                                       far.key */
} punch_rendezvous_event_type;

/* Cluster: a member's id (cluster.h's PUNCH_CLUSTER_MEMBER_LEN). */
#define PUNCH_RV_MEMBER_LEN 8

/* Cluster: the other end of a relay session across members, as the half
 * held at this member knows it. */
typedef struct punch_rendezvous_far {
    punch_addr hop;     /* the other member's relay address: forwarded there, taken from there */
    punch_addr via;     /* this member's relay address, the source the other member checks
                           (PUNCH_AF_NONE: the address the local peer talks to) */
    uint8_t member[PUNCH_RV_MEMBER_LEN]; /* the other member */
    uint8_t key[PUNCH_KEY_LEN];          /* the peer registered there */
    char name[PUNCH_MSG_NAME_MAX + 1];   /* ...and its name, to find it again in the cluster
                                            when that member stops */
    bool asked;                          /* that peer made the CONNECT */
} punch_rendezvous_far;

typedef struct punch_rendezvous_peer_info {
    char name[PUNCH_MSG_NAME_MAX + 1];
    uint8_t key[PUNCH_KEY_LEN];
    punch_addr public_addr;
    size_t n_private;
    punch_addr private_addr[PUNCH_MSG_MAX_PRIVATE];
    uint8_t n_mapped;          /* the last n_mapped private endpoints are port mappings */
    uint16_t rtt_ms;           /* its round trip to its server, as it measured */
    uint8_t nat_mapping;       /* its NAT, as it found it (punch_msg_nat) */
    uint16_t nat_step, nat_port;
    punch_addr relayed;        /* at a TURN server (its TURN_ADDR); PUNCH_AF_NONE: none */
} punch_rendezvous_peer_info;

typedef struct punch_rendezvous_event {
    punch_rendezvous_event_type type;
    punch_rendezvous_peer_info peer[2];
    uint8_t session[PUNCH_MSG_SESSION_LEN];
    bool relay;                /* INTRODUCED: the session may be relayed */
    const char *reason;        /* RELAY_CLOSED: "idle", "peer gone", "byte cap" (static) */
    uint64_t bytes[2];         /* RELAY_CLOSED: relayed from peer[i] to the other */
    uint64_t packets[2];
    uint64_t dropped;          /* RELAY_CLOSED: datagrams over the rate quotas */
    bool refresh;              /* REGISTERED (cluster): a keepalive, nothing changed */
    uint8_t txid[PUNCH_MSG_TXID_LEN]; /* LOOKUP: the CONNECT's; REGISTERED: the REGISTER's */
    punch_rendezvous_far far;  /* MOVED, RELAYED */
} punch_rendezvous_event;

typedef struct punch_rendezvous_counters {
    uint64_t received;         /* datagrams handed in */
    uint64_t malformed;        /* dropped: not a well-formed punch message, short HELLO */
    uint64_t unexpected;       /* dropped: a well-formed type a server does not take */
    uint64_t bad_mac;          /* dropped: MAC did not verify (or a low-order key) */
    uint64_t rate_limited;     /* dropped: source over its rate for unauthenticated work */
    uint64_t rate_limited_sources; /* times a source began to be over that rate */
    uint64_t bad_cookie;       /* REGISTER with a stale or foreign cookie (answered
                                  REFUSED(COOKIE) when its MAC verifies) */
    uint64_t stale_register;   /* dropped: a REGISTER from another address than the
                                  peer's, no newer than the latest (a replay) */
    uint64_t cookies;          /* COOKIE sent */
    /* Address-validation tokens in REGISTERs without a good cookie: taken
     * (the REGISTER goes on as if its cookie were good), or dropped without
     * an answer: MAC wrong (forged, another IP, key or server secret),
     * expired, or older than one this key registered with (a replay). */
    uint64_t token_accepted;
    uint64_t token_bad;
    uint64_t token_expired;
    uint64_t token_replayed;
    uint64_t registrations;    /* REGISTERED sent (keepalives included) */
    uint64_t refused[8];       /* REFUSED sent, by punch_refusal code */
    uint64_t introductions;    /* CONNECTs answered with INTRODUCE */
    uint64_t reintroductions;  /* sessions told again: a peer came back from a new address */
    uint64_t relayed_told;     /* a peer's relayed address at a TURN server changed after
                                  its introduction: told to the peer it met (TURN_ADDR, or
                                  a RELAYED event for its member) */
    uint64_t peers_added;
    uint64_t peers_expired;
    uint64_t sessions_opened;  /* relay sessions created */
    uint64_t sessions_full;    /* introductions without relay: no session slot */
    uint64_t sessions_closed;
    uint64_t relayed;          /* RELAY datagrams forwarded */
    uint64_t relayed_bytes;
    uint64_t relay_unknown;    /* dropped: no such session (or relay off) */
    uint64_t relay_wrong_source; /* dropped: not from one of the session's peers */
    uint64_t relay_over_quota; /* dropped: over the session's rate or byte cap */
    uint64_t relay_source_over;/* dropped: over its source's relay rate (all sessions) */
    uint64_t relay_peer_over;  /* dropped: over the destination peer's relay rate */
    uint64_t names_per_source_full; /* REGISTERs refused: their source holds enough names */
    uint64_t connects_limited; /* CONNECTs dropped: one source asked for one peer too often */
    uint64_t no_room;          /* dropped: the transmit queue was full */
    uint64_t private_dropped;  /* private endpoints of REGISTERs not passed on (endpoints.h) */
    uint64_t events_dropped;   /* events lost: the event queue was full */
    uint64_t peers;            /* registered now */
    uint64_t sessions;         /* relay sessions now */
} punch_rendezvous_counters;

typedef struct punch_rendezvous punch_rendezvous;

/* Returns 0, PUNCH_ERR_INVAL (no random callback, a capacity over 2^30)
 * or PUNCH_ERR_NOMEM. Memory is reserved for the capacities but pages are
 * only touched as the tables fill. */
int punch_rendezvous_new(punch_rendezvous **rv, const punch_rendezvous_cfg *cfg);
void punch_rendezvous_free(punch_rendezvous *rv);

/* Handle one datagram from src, received on the server address local
 * (NULL: unknown). Answers and events are queued. Returns 0 (handled or
 * dropped; see the counters) or PUNCH_ERR_INVAL.
 * A RELAY goes on as it came, read from data when it is taken from the
 * queue, not copied before: data must stay as it is until the queue is
 * drained or the next punch_rendezvous_handle or _handle_timeout (which
 * copy what is still queued first). */
int punch_rendezvous_handle(punch_rendezvous *rv, uint64_t now_ms, const punch_addr *src,
                            const punch_addr *local, const uint8_t *data, size_t len);

/* Take the next datagram to send. Returns 1 with out filled, 0 when none is
 * queued, PUNCH_ERR_NOBUFS when cap is too small (it stays queued). A buffer
 * of PUNCH_RV_MAX_DATAGRAM bytes always suffices. */
int punch_rendezvous_poll_transmit(punch_rendezvous *rv, punch_rendezvous_out *out,
                                   uint8_t *buf, size_t cap);
/* The same without a copy: *data points at the datagram (out->len bytes),
 * valid until the next call into rv. Returns 1 or 0 (none queued). */
int punch_rendezvous_poll_transmit_view(punch_rendezvous *rv, punch_rendezvous_out *out,
                                        const uint8_t **data);

/* Take the next event. Returns 1 with ev filled or 0 when none is queued. */
int punch_rendezvous_poll_event(punch_rendezvous *rv, punch_rendezvous_event *ev);

/* The earliest time handle_timeout has work, UINT64_MAX when none. */
uint64_t punch_rendezvous_next_timeout(const punch_rendezvous *rv);
/* Remove peers silent for peer_expiry_ms (a peer last heard at t is gone at
 * exactly t + peer_expiry_ms) and sessions idle for session_idle_ms, at most
 * a bounded number per call. */
void punch_rendezvous_handle_timeout(punch_rendezvous *rv, uint64_t now_ms);

const punch_rendezvous_counters *punch_rendezvous_counters_get(const punch_rendezvous *rv);

/* Cluster: hold this member's half of relay session session_id for the
 * peer registered here with key local_key, the other half at the member
 * far names (a relay across members runs through both: each peer sends
 * RELAY to its own member, the members to each other). When the local
 * peer's NAT rebinds, a MOVED event says so for far's member. Returns 0
 * (held; a copy of the same introduction holds the same, and one naming
 * another member moves the half there: the far peer moved, its member
 * stopped), PUNCH_ERR_NOTFOUND (no such peer here) or PUNCH_ERR_LIMIT
 * (relay off, no room, or the session is another pair's). */
int punch_rendezvous_relay_remote(punch_rendezvous *rv, uint64_t now_ms,
                                  const uint8_t local_key[PUNCH_KEY_LEN],
                                  const uint8_t session_id[PUNCH_MSG_SESSION_LEN],
                                  const punch_rendezvous_far *far);
/* Cluster: whether session_id names a half held here for the peer with
 * key local_key that is no longer its latest session (it was introduced
 * to another peer since): an INTRO of it (news that the far peer moved)
 * is old news, which would have the peer take up a session it left (one
 * server tells a peer of its latest session only). */
bool punch_rendezvous_session_superseded(punch_rendezvous *rv, uint64_t now_ms,
                                         const uint8_t local_key[PUNCH_KEY_LEN],
                                         const uint8_t session_id[PUNCH_MSG_SESSION_LEN]);
/* Cluster (cfg.cluster): tell the peer registered here with key local_key
 * about remote, a peer registered at another member, with an INTRODUCE
 * of this txid and session (flags: PUNCH_INTRO_*); *local (unless NULL)
 * gets what is known of the local peer. Returns 0 or PUNCH_ERR_NOTFOUND
 * (no such peer here, or it expired). */
int punch_rendezvous_introduce_remote(punch_rendezvous *rv, uint64_t now_ms,
                                      const uint8_t local_key[PUNCH_KEY_LEN],
                                      const punch_rendezvous_peer_info *remote,
                                      const uint8_t txid[PUNCH_MSG_TXID_LEN],
                                      const uint8_t session_id[PUNCH_MSG_SESSION_LEN], uint8_t flags,
                                      punch_rendezvous_peer_info *local);
/* Cluster: the peer registered here with key local_key was introduced in
 * session session_id to far's peer (far.key, far.asked) at far's member,
 * with or without a relay half: a rebinding of its NAT is news for that
 * member (a MOVED event, relay false without a half), as one server
 * tells both again. Returns 0 or PUNCH_ERR_NOTFOUND (no such peer here). */
int punch_rendezvous_met_remote(punch_rendezvous *rv, uint64_t now_ms,
                                const uint8_t local_key[PUNCH_KEY_LEN],
                                const uint8_t session_id[PUNCH_MSG_SESSION_LEN],
                                const punch_rendezvous_far *far);
/* Cluster: tell the peer registered here with key local_key the relayed
 * address at a TURN server of `about` (about->key, about->relayed), a
 * peer registered at another member, in session session_id: the
 * TURN_ADDR one server sends beside its INTRODUCE. Returns 0,
 * PUNCH_ERR_NOTFOUND (no such peer here) or PUNCH_ERR_INVAL (no relayed
 * address). */
int punch_rendezvous_tell_relayed_remote(punch_rendezvous *rv, uint64_t now_ms,
                                         const uint8_t local_key[PUNCH_KEY_LEN],
                                         const punch_rendezvous_peer_info *about,
                                         const uint8_t txid[PUNCH_MSG_TXID_LEN],
                                         const uint8_t session_id[PUNCH_MSG_SESSION_LEN]);
/* Cluster: the name of the peer with key local_key belongs to another key
 * at another member: answer its REGISTER txid (and its latest REGISTER's,
 * when another came since) with REFUSED(NAME_TAKEN) and forget the peer, as one server refuses a name it holds for another
 * key. Returns 0 or PUNCH_ERR_NOTFOUND (no such peer here). */
int punch_rendezvous_refuse_name(punch_rendezvous *rv, uint64_t now_ms,
                                 const uint8_t local_key[PUNCH_KEY_LEN],
                                 const uint8_t txid[PUNCH_MSG_TXID_LEN]);
/* Cluster: answer the LOOKUP of the peer with key local_key with REFUSED
 * of this code. Returns 0 or PUNCH_ERR_NOTFOUND (no such peer here). */
int punch_rendezvous_refuse(punch_rendezvous *rv, uint64_t now_ms,
                            const uint8_t local_key[PUNCH_KEY_LEN],
                            const uint8_t txid[PUNCH_MSG_TXID_LEN], punch_refusal code);

/* Cluster: a half of a relay session across members held here. */
typedef struct punch_rendezvous_half {
    uint8_t session[PUNCH_MSG_SESSION_LEN];
    punch_rendezvous_peer_info local;  /* the peer registered here */
    punch_rendezvous_far far;
} punch_rendezvous_half;

/* Cluster: the halves held here one by one, those that are their local
 * peer's latest session (to move them when their far member stops).
 * Start with *cursor 0; returns 1 with *half filled and *cursor moved on,
 * 0 past the last. */
int punch_rendezvous_next_half(const punch_rendezvous *rv, uint32_t *cursor,
                               punch_rendezvous_half *half);

/* Cluster: the registered peers one by one, to publish them again (Redis
 * came back). Start with *cursor 0; returns 1 with info filled and
 * *cursor moved on, 0 past the last. Peers registered meanwhile may be
 * missed (they publish themselves). */
int punch_rendezvous_next_peer(const punch_rendezvous *rv, uint32_t *cursor,
                               punch_rendezvous_peer_info *info);

/* The server's public key (for logs and events). */
const uint8_t *punch_rendezvous_public_key(const punch_rendezvous *rv);

#endif
