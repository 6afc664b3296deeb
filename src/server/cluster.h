/* SPDX-License-Identifier: MIT */
/*
 * Messages between the members of a punchd cluster (punchd --cluster,
 * docs/cluster.md), sans-I/O: the caller moves the bytes (Redis).
 *
 *   RECORD  a name registered at a member: stored under the name with a
 *           TTL; stamp is the record's expiry (wall clock, ms); target_key
 *           is the peer's key again, at a fixed place, so that a script in
 *           Redis can compare owners without parsing the peer.
 *   INTRO   member `from` tells member `to` that a peer registered there
 *           (target_key) is introduced to peer `peer`, registered at `from`;
 *           stamp is when it was sent.
 *           On a member's channel (no `to`): news that the peer moved to
 *           member `from` (punch_cluster_read_channel).
 *   TURN    member `from` tells member `to` the relayed address at a TURN
 *           server (RFC 8656) of a peer registered at `from`, for its peer
 *           target_key in a session of theirs: what one server says in a
 *           TURN_ADDR beside its INTRODUCE (server/turn_addr.c). A type of
 *           its own, as TURN_ADDR is one of its own: a member of an older
 *           version drops it as malformed (counted) and works as before,
 *           passing no relayed address.
 *
 * Layout: 'P' 'C' version type, from[8], to[8], stamp (u64), target_key[32],
 * member's address (the endpoint where member `from` takes relayed
 * datagrams from other members; all zero: none), then the peer as a punch
 * INTRODUCE message (src/wire/msg.h: name, key, endpoints, NAT, txid,
 * session, flags; TURN: a TURN_ADDR message, the peer's key and relayed
 * address, txid and session), then a MAC over all of it
 * (crypto_auth, HMAC-SHA-512-256) with the cluster secret. A member
 * trusts nothing from Redis that this MAC does not cover.
 */
#ifndef PUNCH_SERVER_CLUSTER_H
#define PUNCH_SERVER_CLUSTER_H

#include "server/rendezvous.h"

#define PUNCH_CLUSTER_SECRET_LEN 32
#define PUNCH_CLUSTER_MEMBER_LEN PUNCH_RV_MEMBER_LEN
#define PUNCH_CLUSTER_MAC_LEN 32
#define PUNCH_CLUSTER_HEADER_LEN                                                             \
    (4 + 2 * PUNCH_CLUSTER_MEMBER_LEN + 8 + PUNCH_KEY_LEN + PUNCH_MSG_ENDPOINT_LEN)
/* Where a message holds its sender and (RECORD) its owner's key: what
 * the scripts in Redis read (apps/punchd/cluster_redis.c). */
#define PUNCH_CLUSTER_FROM_AT 4
#define PUNCH_CLUSTER_OWNER_AT (4 + 2 * PUNCH_CLUSTER_MEMBER_LEN + 8)
/* A buffer this large holds any cluster message. */
#define PUNCH_CLUSTER_MAX_MSG 1024
/* An INTRO is taken this long after it was sent and no later (members'
 * clocks are assumed NTP-close); a replay is harmless past it. */
#define PUNCH_CLUSTER_INTRO_WINDOW_MS 30000u
/* INTROs remembered to refuse a replay within the window: 65,536 cover the
 * whole 30 s up to 2,184 INTROs a second; past that the window shrinks to
 * what the cache holds (an older INTRO is refused as stale). */
#define PUNCH_CLUSTER_REPLAY_WAYS 8
#define PUNCH_CLUSTER_REPLAY_BUCKETS 8192

typedef enum punch_cluster_type {
    PUNCH_CLUSTER_RECORD = 1,
    PUNCH_CLUSTER_INTRO = 2,
    PUNCH_CLUSTER_TURN = 3,
} punch_cluster_type;

typedef struct punch_cluster_msg {
    punch_cluster_type type;
    uint8_t from[PUNCH_CLUSTER_MEMBER_LEN];
    uint8_t to[PUNCH_CLUSTER_MEMBER_LEN];    /* INTRO, TURN; RECORD: zero */
    uint64_t stamp_ms;
    uint8_t target_key[PUNCH_KEY_LEN];       /* INTRO, TURN; RECORD: the peer's key */
    punch_rendezvous_peer_info peer;         /* TURN: its key and relayed address only */
    uint8_t txid[PUNCH_MSG_TXID_LEN];        /* INTRO, TURN */
    uint8_t session[PUNCH_MSG_SESSION_LEN];  /* INTRO, TURN */
    uint8_t flags;                           /* INTRO: PUNCH_INTRO_* for the target */
    punch_addr member_addr;                  /* from's; PUNCH_AF_NONE: no relay across */
} punch_cluster_msg;

typedef struct punch_cluster_counters {
    uint64_t sent;          /* messages made */
    uint64_t accepted;      /* messages that passed every check */
    uint64_t malformed;     /* dropped: not a well-formed cluster message */
    uint64_t bad_mac;       /* dropped: MAC did not verify (forged, or another secret) */
    uint64_t stale;         /* dropped: a record past its expiry, an INTRO out of its window */
    uint64_t misdirected;   /* dropped: an INTRO for another member, a record of another name */
    uint64_t replayed;      /* dropped: an INTRO taken before (the same signed bytes) */
} punch_cluster_counters;

/* An INTRO taken: its MAC's first half and its stamp. */
typedef struct punch_cluster_seen {
    uint8_t mac[16];
    uint64_t stamp_ms;
} punch_cluster_seen;

typedef struct punch_cluster {
    uint8_t secret[PUNCH_CLUSTER_SECRET_LEN];
    uint8_t self[PUNCH_CLUSTER_MEMBER_LEN];
    punch_addr self_addr;   /* this member's address for relays (PUNCH_AF_NONE: none) */
    punch_cluster_counters counters;
    /* The replay cache (punch_cluster_remember_intros; NULL: none), and
     * the stamp at and below which it can no longer tell. */
    punch_cluster_seen *seen;
    uint64_t seen_floor_ms;
} punch_cluster;

/* Set c up for member self with the cluster secret. */
void punch_cluster_init(punch_cluster *c, const uint8_t secret[PUNCH_CLUSTER_SECRET_LEN],
                        const uint8_t self[PUNCH_CLUSTER_MEMBER_LEN]);
/* Remember the INTROs taken so that a replay of one is refused (counted
 * replayed). Returns 0 or PUNCH_ERR_NOMEM. */
int punch_cluster_remember_intros(punch_cluster *c);
/* Wipe the secret, free the replay cache. */
void punch_cluster_clear(punch_cluster *c);

/* The record of peer, registered here, valid until expiry_ms (wall clock).
 * Returns 0 with *len set, PUNCH_ERR_NOBUFS or PUNCH_ERR_INVAL (bad peer). */
int punch_cluster_record(punch_cluster *c, const punch_rendezvous_peer_info *peer,
                         uint64_t expiry_ms, uint8_t *buf, size_t cap, size_t *len);
/* The INTRO to member `to` for its peer target_key about asker (registered
 * here), sent at now_ms (wall clock). Returns as punch_cluster_record. */
int punch_cluster_intro(punch_cluster *c, const uint8_t to[PUNCH_CLUSTER_MEMBER_LEN],
                        const uint8_t target_key[PUNCH_KEY_LEN],
                        const punch_rendezvous_peer_info *asker,
                        const uint8_t txid[PUNCH_MSG_TXID_LEN],
                        const uint8_t session[PUNCH_MSG_SESSION_LEN], uint8_t flags,
                        uint64_t now_ms, uint8_t *buf, size_t cap, size_t *len);

/* The TURN to member `to` for its peer target_key: peer's relayed
 * address (peer->relayed; peer registered here), in session, sent at
 * now_ms (wall clock). Returns as punch_cluster_record (PUNCH_ERR_INVAL:
 * no relayed address). */
int punch_cluster_turn(punch_cluster *c, const uint8_t to[PUNCH_CLUSTER_MEMBER_LEN],
                       const uint8_t target_key[PUNCH_KEY_LEN],
                       const punch_rendezvous_peer_info *peer,
                       const uint8_t txid[PUNCH_MSG_TXID_LEN],
                       const uint8_t session[PUNCH_MSG_SESSION_LEN], uint64_t now_ms,
                       uint8_t *buf, size_t cap, size_t *len);

/* The session id of the introduction that answers asker's CONNECT txid:
 * the same for every copy of that CONNECT, so a copy is a repeat to both
 * peers, not a new session that replaces the one they are opening. */
void punch_cluster_session_id(const punch_cluster *c, const uint8_t asker_key[PUNCH_KEY_LEN],
                              const uint8_t txid[PUNCH_MSG_TXID_LEN],
                              uint8_t id[PUNCH_MSG_SESSION_LEN]);

/* Check and decode the record stored under name, read at now_ms (wall
 * clock). Returns 0, or (counted) PUNCH_ERR_MALFORMED, PUNCH_ERR_INTEGRITY
 * (MAC), PUNCH_ERR_LIMIT (expired) or PUNCH_ERR_NOTFOUND (a record of
 * another name, or an INTRO). */
int punch_cluster_read_record(punch_cluster *c, const char *name, const uint8_t *buf,
                              size_t len, uint64_t now_ms, punch_cluster_msg *m);
/* Check and decode an INTRO or a TURN (what comes on a member's channel;
 * m->type tells which) received at now_ms. Returns 0, or (counted)
 * PUNCH_ERR_MALFORMED, PUNCH_ERR_INTEGRITY, PUNCH_ERR_LIMIT (outside its
 * window, older than the replay cache can tell, or, with
 * punch_cluster_remember_intros, taken before: counted replayed) or
 * PUNCH_ERR_NOTFOUND (for another member, or a record). */
int punch_cluster_read_intro(punch_cluster *c, const uint8_t *buf, size_t len, uint64_t now_ms,
                             punch_cluster_msg *m);
/* Check and decode what comes on a member's channel: an INTRO or a TURN
 * (as punch_cluster_read_intro), or a RECORD: news that its peer now
 * registers at member m->from (that member took the registration of a
 * peer whose record named another member that is alive, and tells that
 * one; which passes it on to the far members of its halves). A RECORD is
 * addressed to nobody and lives to its expiry, so a copy published again
 * is taken again: what it makes a member do is look the name up in Redis,
 * where the record that counts is. Returns 0, or (counted) as
 * punch_cluster_read_intro, or for a RECORD PUNCH_ERR_LIMIT (expired). */
int punch_cluster_read_channel(punch_cluster *c, const uint8_t *buf, size_t len,
                               uint64_t now_ms, punch_cluster_msg *m);

#endif
