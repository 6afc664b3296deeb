/* SPDX-License-Identifier: MIT */
/*
 * Inside the rendezvous service (src/server): the state the registry
 * (registry.c: names, keys, registrations, introductions) and the relay
 * (relay.c: sessions and their quotas) share, and the calls between them
 * and the service (rendezvous.c: entry points, tables, queues). Not part of
 * any interface: rendezvous.h is.
 */
#ifndef PUNCH_SERVER_RENDEZVOUS_INTERNAL_H
#define PUNCH_SERVER_RENDEZVOUS_INTERNAL_H

#include "server/rendezvous.h"

#define NONE UINT32_MAX
/* Work per handle_timeout call: a million peers falling silent at once are
 * removed a thousand at a time, between datagrams. */
#define EXPIRE_BATCH 1024
#define TX_QUEUE 64         /* one datagram makes at most two answers */
#define EVENT_QUEUE 64
#define MAX_LOCALS 32       /* distinct server addresses remembered per peer */

/* A doubly linked list threaded through an array by index, oldest first:
 * every peer (session) has the same lifetime, so the one heard from least
 * recently is always at the head, and expiry looks at the head only. */
typedef struct link {
    uint32_t prev, next;
} link;

typedef struct lru {
    uint32_t head, tail;
} lru;

/* Open addressing with linear probing over a keyed hash; deletion shifts
 * entries back (no tombstones). tag is the hash's low 32 bits, so a probe
 * rarely has to look at the entry itself, and tag & mask is the home slot. */
typedef struct slot {
    uint32_t idx1; /* entry index + 1; 0: empty */
    uint32_t tag;
} slot;

typedef struct htable {
    slot *slots;
    uint32_t mask;
} htable;

typedef struct bucket {
    uint64_t milli; /* tokens x 1000 */
    uint64_t last_ms;
} bucket;

/* A peer's latest introduction, relayed or not (peer.met_*): whom it met,
 * so that its NAT rebinding is news for that peer even without a relay
 * session (punchd --no-relay, or no room for one; registry.c). */
typedef enum met_kind { MET_NONE = 0, MET_HERE, MET_FAR } met_kind;
/* Cluster: the member and key of the peer a peer met at another member
 * (MET_FAR); in an array beside the peers, made in cluster mode only, so
 * that a lone punchd's peers carry no more than the 16 bytes of met_*. */
typedef struct met_far {
    uint8_t member[PUNCH_RV_MEMBER_LEN];
    uint8_t key[PUNCH_KEY_LEN];
} met_far;

typedef struct peer {
    uint8_t key[PUNCH_KEY_LEN];
    uint8_t mac_key[PUNCH_AUTH_KEY_LEN]; /* derived once per key */
    punch_addr pub;                      /* family NONE: free slot */
    uint8_t n_priv;
    uint8_t n_mapped; /* the last n_mapped of priv: port mappings */
    uint8_t local;                       /* rv->locals index + 1; 0 unknown */
    uint8_t met_kind;                    /* its latest introduction (met_kind)... */
    uint16_t n_started;                  /* relay sessions it started, held now */
    uint16_t rtt_ms;                     /* its round trip to us, as it measured; 0 unknown */
    uint8_t nat_mapping;                 /* its NAT, as it found it (punch_msg_nat) */
    bool met_asked;                      /* ...in which it made the CONNECT */
    uint16_t nat_step, nat_port;
    uint32_t gen;                        /* bumped when the slot is freed */
    uint32_t cookie_period;              /* of cookie, made for pub */
    uint32_t last_session;               /* the latest relay session it is in */
    bucket relay_in_bytes, relay_in_packets; /* relayed to it, all sessions */
    uint8_t cookie[PUNCH_AUTH_COOKIE_LEN];
    uint8_t token[PUNCH_AUTH_TOKEN_LEN]; /* made with cookie, for the next start */
    bool token_used;                     /* a token registered it: token_serial is */
    uint32_t token_serial;               /* ...the newest such token's (replays are older) */
    punch_addr relayed;                  /* at a TURN server (TURN_ADDR); NONE: none */
    uint32_t met_peer, met_gen;          /* ...MET_HERE: the other peer */
    uint8_t met_session[PUNCH_MSG_SESSION_LEN]; /* ...and its session */
    uint64_t last_ms;
    uint64_t sequence;                   /* of the latest REGISTER accepted */
    uint8_t register_txid[PUNCH_MSG_TXID_LEN]; /* of the latest REGISTER accepted */
    char name[PUNCH_MSG_NAME_MAX + 1];
    punch_addr priv[PUNCH_MSG_MAX_PRIVATE];
} peer;

typedef struct session {
    uint8_t id[PUNCH_MSG_SESSION_LEN];
    bool used, opened;
    uint32_t peer[2]; /* [0] started it; a half across members: both [0] */
    uint32_t gen[2];
    bool remote;      /* a half across members: [1] is the other member, far */
    punch_rendezvous_far far;
    uint64_t opened_ms, last_ms;
    bucket bytes_q, packets_q;
    uint64_t bytes[2], packets[2], dropped;
} session;

typedef struct txslot {
    punch_rendezvous_out out;
    /* A relayed datagram still in the caller's buffer (punch_rendezvous_handle
     * says how long that holds), NULL when it is in data. */
    const uint8_t *ref;
    uint8_t data[PUNCH_RV_MAX_DATAGRAM];
} txslot;

struct punch_rendezvous {
    punch_rendezvous_cfg cfg;
    punch_ratelimit *rate;
    punch_ratelimit *connect_rate;     /* per source and target */
    punch_ratelimit *relay_src_bytes, *relay_src_packets;
    punch_counts *names;               /* registered peers per source */
    bucket unproven;
    punch_rendezvous_counters counters;

    peer *peers;
    link *peer_links;
    met_far *far_met;      /* cluster: beside peers (MET_FAR); NULL otherwise */
    uint32_t n_peers, peers_hwm, peer_free;
    lru peer_lru;
    htable by_key, by_name;

    session *sessions;
    link *session_links;
    uint32_t n_sessions, sessions_hwm, session_free;
    lru session_lru;
    htable by_id;
    uint32_t last_relayed; /* the session of the latest RELAY (a hint: checked) */

    punch_addr locals[MAX_LOCALS];
    uint8_t n_locals;

    txslot tx[TX_QUEUE];
    uint32_t tx_head, tx_count;
    punch_rendezvous_event events[EVENT_QUEUE];
    uint32_t ev_head, ev_count;
};

/* ---- shared by both (rendezvous.c) ---- */

void rv_lru_append(lru *l, link *links, uint32_t i);
void rv_lru_remove(lru *l, link *links, uint32_t i);
/* Move i to the tail: heard from just now. */
void rv_lru_touch(lru *l, link *links, uint32_t i);
/* The next free index: from the free list, else past the high-water mark. */
uint32_t rv_alloc_index(uint32_t *free_head, link *links, uint32_t *hwm);

uint64_t rv_keyed_hash(const punch_rendezvous *rv, const void *p, size_t n);
typedef bool (*match_fn)(const punch_rendezvous *rv, uint32_t idx, const void *what);
/* The entry of hash h for which match(rv, idx, what) holds, or NONE. */
uint32_t rv_htable_find(const punch_rendezvous *rv, const htable *t, uint64_t h, match_fn match,
                        const void *what);
void rv_htable_insert(htable *t, uint64_t h, uint32_t idx);
void rv_htable_remove(htable *t, uint64_t h, uint32_t idx);

bool rv_bucket_take(bucket *b, uint64_t rate, uint64_t cap, uint64_t cost, uint64_t now);

/* A slot at the tail of the transmit queue (NULL when full, counted);
 * rv_tx_commit queues it. */
txslot *rv_tx_reserve(punch_rendezvous *rv);
void rv_tx_commit(punch_rendezvous *rv);
/* A cleared event of this type at the tail of the event queue (NULL when
 * full, counted). */
punch_rendezvous_event *rv_event_reserve(punch_rendezvous *rv, punch_rendezvous_event_type type);
void rv_peer_info(const peer *p, punch_rendezvous_peer_info *info);

/* ---- the registry (registry.c) ---- */

void rv_handle_hello(punch_rendezvous *rv, uint64_t now, const punch_addr *src, uint8_t local,
                     const punch_msg *req);
void rv_handle_register(punch_rendezvous *rv, uint64_t now, const punch_addr *src,
                        uint8_t local, const uint8_t *data, const punch_msg *req);
void rv_handle_connect(punch_rendezvous *rv, uint64_t now, const punch_addr *src,
                       uint8_t local, const uint8_t *data, const punch_msg *req);
/* Peer i, or NONE when it is past its deadline (then removed as expired). */
uint32_t rv_live_peer(punch_rendezvous *rv, uint32_t i, uint64_t now);
/* Peer i goes (its name and key are free again). */
void rv_remove_peer(punch_rendezvous *rv, uint32_t i);
/* When the peer heard from least recently expires; UINT64_MAX: no peer. */
uint64_t rv_registry_deadline(const punch_rendezvous *rv);
/* Remove up to budget expired peers; returns how many. */
unsigned rv_expire_peers(punch_rendezvous *rv, uint64_t now, unsigned budget);

/* ---- a cluster's entry points (registry.c, rendezvous_remote.c) ---- */

uint32_t rv_find_key(punch_rendezvous *rv, const uint8_t *key, uint64_t now);
/* Whether m's MAC (over data) is right under mac_key; a wrong one is
 * counted (bad_mac). */
bool rv_mac_ok(punch_rendezvous *rv, const uint8_t *mac_key, const uint8_t *data,
               const punch_msg *m);
void rv_introduce(punch_rendezvous *rv, const peer *to, const peer *other, const uint8_t *txid,
                  const uint8_t *id, uint8_t flags);
void rv_refuse_peer(punch_rendezvous *rv, const peer *p, const uint8_t *txid,
                    punch_refusal code);
/* Peer i was introduced, in session id, to far's peer at far's member. */
void rv_met_far(punch_rendezvous *rv, uint32_t i, const uint8_t *id,
                const punch_rendezvous_far *far);
/* Encode m for p, MAC it with p's key, and queue it to p's endpoint. */
void rv_send_to_peer(punch_rendezvous *rv, const peer *p, const punch_msg *m);

/* ---- relayed addresses at TURN servers (turn_addr.c, issue 15) ---- */

/* A peer's TURN_ADDR: kept, and answered with the same as the receipt. */
void rv_handle_turn_addr(punch_rendezvous *rv, uint64_t now, const punch_addr *src,
                         const uint8_t *data, const punch_msg *req);
/* Peer i has another relayed address than before (a new allocation at
 * its TURN server, after 437, a lost Refresh or its TURN link back): the
 * peer it met last learns it in a TURN_ADDR of their session, as beside
 * an INTRODUCE, so that it permits and binds the new address; one at
 * another member through its member (a RELAYED event for the cluster). */
void rv_relayed_changed(punch_rendezvous *rv, uint32_t i);
/* Beside an INTRODUCE to `to` about `other` in session id: other's relayed
 * address, when it has one. */
void rv_tell_relayed(punch_rendezvous *rv, const peer *to, const peer *other,
                     const uint8_t *txid, const uint8_t *id);

/* The LOOKUP event for a CONNECT of p's for a name not registered here. */
void rv_cluster_lookup(punch_rendezvous *rv, uint64_t now, const peer *p, const punch_msg *req);

/* ---- limits per source and per peer (limits.c) ---- */

/* Defaults filled in, tables made: 0 or PUNCH_ERR_NOMEM. */
int rv_limits_init(punch_rendezvous *rv);
void rv_limits_free(punch_rendezvous *rv);
/* A new peer's relay buckets, full. */
void rv_limits_peer_init(const punch_rendezvous *rv, peer *p, uint64_t now);
/* Whether src's source may hold one more name (else counted). */
bool rv_names_room(punch_rendezvous *rv, const punch_addr *src);
/* A peer's name leaves source `from` and comes to `to` (either NULL or
 * family NONE: none). */
void rv_names_moved(punch_rendezvous *rv, const punch_addr *from, const punch_addr *to);
/* Whether src may have one more introduction to the peer of target_key
 * (else counted). */
bool rv_connect_allowed(punch_rendezvous *rv, uint64_t now, const punch_addr *src,
                        const uint8_t target_key[PUNCH_KEY_LEN]);
/* Whether a datagram of len bytes from src to peer `to` is within the
 * source's and the destination's relay rates (spent when it is). */
bool rv_relay_allowed(punch_rendezvous *rv, uint64_t now, const punch_addr *src, peer *to,
                      size_t len);
/* The half of a relay session across members held here for peer a: its
 * datagrams go to the other member at far->hop and come from there.
 * Returns whether one is held (a copy of the same CONNECT finds it again;
 * one from another member moves the half there). */
bool rv_open_remote_session(punch_rendezvous *rv, uint64_t now, uint32_t a,
                            const uint8_t id[PUNCH_MSG_SESSION_LEN],
                            const punch_rendezvous_far *far);

/* Whether half i is still its peer's latest introduction. */
bool rv_half_current(const punch_rendezvous *rv, uint32_t i);
/* Whether id names a half across members held here for peer a that is
 * no longer a's latest session (a was introduced to another since). */
bool rv_session_superseded(const punch_rendezvous *rv, uint32_t a,
                           const uint8_t id[PUNCH_MSG_SESSION_LEN]);

/* ---- address-validation tokens (tokens.c) ---- */

/* Whether req's token proves src for req's key (p: the key's entry, or
 * NULL); counts why not. *serial gets the token's serial. */
bool rv_token_proves(punch_rendezvous *rv, uint64_t now, const peer *p, const punch_addr *src,
                     const punch_msg *req, uint32_t *serial);
/* Peer p registered with the token of this serial. */
void rv_token_taken(punch_rendezvous *rv, peer *p, uint32_t serial);
/* A new token for p at its public endpoint (p->token). */
void rv_token_issue(const punch_rendezvous *rv, uint64_t now, peer *p);

/* ---- the relay (relay.c) ---- */

/* Whether the session's peer k (0: it started it) is still the one it was
 * made for. */
bool rv_session_peer_ok(const punch_rendezvous *rv, const session *s, int k);
/* Whether a CONNECT from a to b is a copy (the same transaction txid) of
 * the one that opened the pair's session: it opens nothing new. */
bool rv_is_connect_copy(const punch_rendezvous *rv, uint32_t a, uint32_t b,
                        const uint8_t txid[PUNCH_MSG_TXID_LEN]);
bool rv_open_session(punch_rendezvous *rv, uint64_t now, uint32_t a, uint32_t b,
                     const uint8_t txid[PUNCH_MSG_TXID_LEN], uint8_t id[PUNCH_MSG_SESSION_LEN]);
void rv_handle_relay(punch_rendezvous *rv, uint64_t now, const punch_addr *src,
                     const uint8_t *data, size_t len, const punch_msg *req);
/* When the session idle longest expires; UINT64_MAX: no session. */
uint64_t rv_relay_deadline(const punch_rendezvous *rv);
/* Close up to budget idle sessions; returns how many. */
unsigned rv_expire_sessions(punch_rendezvous *rv, uint64_t now, unsigned budget);

#endif
