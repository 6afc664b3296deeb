/* SPDX-License-Identifier: MIT */
/*
 * A TURN client (RFC 8656), sans-I/O: an allocation on a standard TURN
 * server (coturn, ...) with long-term credentials (RFC 8489 §9.2), kept
 * alive with Refresh; per peer a permission (CreatePermission) and a
 * channel (ChannelBind), both refreshed before they expire; a peer's data
 * wrapped as ChannelData once its channel is bound (a Send indication
 * before), and unwrapped from ChannelData or Data indications.
 *
 * The caller owns the socket and the clock, as for the agent: datagrams
 * from the TURN server go to punch_turn_handle, control messages for it
 * come out of punch_turn_poll_transmit, and punch_turn_handle_timeout runs
 * at punch_turn_next_timeout.
 *
 * The agent allocates with it when given a TURN server (turn_agent.c,
 * punch --turn), offers the relayed address to peers through punchd
 * (TURN_ADDR) and relays peers' data through it (issue 15).
 */
#ifndef PUNCH_CORE_TURN_H
#define PUNCH_CORE_TURN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "punch/punch.h"

#define PUNCH_TURN_CRED_MAX   128 /* username, password, realm, nonce (bytes + NUL) */
#define PUNCH_TURN_MAX_PEERS  16
#define PUNCH_TURN_TXQ        8
#define PUNCH_TURN_MSG_MAX    512 /* a control message (requests carry no data) */
/* ChannelData's and a Send indication's overhead over the peer's data. */
#define PUNCH_TURN_OVERHEAD   36

typedef struct punch_turn_cfg {
    punch_addr server;
    const char *username; /* long-term credentials: copied (OpaqueString-prepared) */
    const char *password;
    uint32_t lifetime_s;  /* asked for the allocation; 0: the server's default (600 s) */
    bool reliable;        /* over TCP or TLS: no retransmissions (RFC 8489 §6.2.2) */
    void (*random)(void *ctx, uint8_t *buf, size_t len);
    void *random_ctx;
} punch_turn_cfg;

typedef enum punch_turn_state {
    PUNCH_TURN_ALLOCATING = 1,
    PUNCH_TURN_ALLOCATED,
    PUNCH_TURN_FAILED, /* punch_turn.why says why */
} punch_turn_state;

/* One request in flight (RFC 8489 §6.2.1 retransmission). */
typedef struct punch_turn_txn {
    bool active;
    uint16_t method;
    int peer;          /* the peer it is for (-1: the allocation) */
    uint8_t txid[12];
    uint64_t sent_ms;  /* its first copy (with this txid) left then */
    uint64_t next_ms;
    uint64_t rto_ms;
    unsigned tries;
    bool authed;         /* sent with the credentials */
    unsigned auth_tries; /* 401/438 answered in a row */
    uint16_t len;
    uint8_t buf[PUNCH_TURN_MSG_MAX];
} punch_turn_txn;

/* A peer address's slot: its permission and channel. A slot in use (live)
 * is refreshed; one let go (punch_turn_release) lingers unrefreshed until
 * its channel has expired and RFC 8656 §12's five minutes after that have
 * passed, and only then takes another address (or it comes back to life
 * when its own address is permitted again: the same channel and address
 * may always be bound anew). */
typedef struct punch_turn_peer {
    bool used;         /* holds addr (live or lingering) */
    bool live;         /* in use: refreshed */
    punch_addr addr;
    uint16_t channel;
    bool permitted, bound;
    uint64_t permit_at_ms, bind_at_ms; /* the next CreatePermission / ChannelBind */
    /* The first copies of the latest answered requests left then: the
     * server's permission and channel last at least 300 s / 600 s on. */
    uint64_t permit_ok_ms, bind_ok_ms;
    bool asked;          /* a CreatePermission or ChannelBind left for it */
    uint64_t asked_tx_ms; /* ...the latest copy of either then */
    bool bind_tried;     /* a ChannelBind left for it */
    uint64_t bind_tx_ms; /* ...its latest copy then */
    punch_turn_txn permit_txn, bind_txn;
} punch_turn_peer;

typedef struct punch_turn {
    punch_turn_cfg cfg;
    char username[PUNCH_TURN_CRED_MAX], password[PUNCH_TURN_CRED_MAX];
    char realm[PUNCH_TURN_CRED_MAX], nonce[PUNCH_TURN_CRED_MAX];
    uint8_t key[16];   /* MD5(username:realm:password) */
    bool have_key;
    punch_turn_state state;
    char why[96];
    punch_addr relayed, mapped;
    uint64_t refresh_at_ms;
    punch_turn_txn alloc_txn; /* Allocate, then Refresh */
    punch_turn_peer peers[PUNCH_TURN_MAX_PEERS];
    /* Control messages to the server, oldest first. */
    uint8_t txq[PUNCH_TURN_TXQ][PUNCH_TURN_MSG_MAX];
    uint16_t txq_len[PUNCH_TURN_TXQ];
    unsigned tx_head, tx_count;
    uint64_t dropped;  /* datagrams from the server taken for nothing */
    uint64_t refreshes;
    uint64_t no_slot;       /* permits refused: every slot live or in quarantine */
    uint64_t reallocations; /* the server forgot the allocation: allocated anew */
} punch_turn;

/* Start: the first Allocate is queued. Returns 0 or PUNCH_ERR_INVAL (no
 * random, bad server, credentials missing or too long). */
int punch_turn_init(punch_turn *t, const punch_turn_cfg *cfg, uint64_t now);

/* A datagram from the TURN server. Returns 1 when it carried a peer's
 * data (*peer, *data and *len point at it, into buf), 0 when it was for the
 * client itself or dropped (counted in dropped). */
int punch_turn_handle(punch_turn *t, uint64_t now, const uint8_t *buf, size_t len,
                      punch_addr *peer, const uint8_t **data, size_t *data_len);

uint64_t punch_turn_next_timeout(const punch_turn *t);
void punch_turn_handle_timeout(punch_turn *t, uint64_t now);

/* The next control message for the server into buf. Returns 1 (one
 * written, *len set), 0 (none) or PUNCH_ERR_NOBUFS. */
int punch_turn_poll_transmit(punch_turn *t, uint8_t *buf, size_t cap, size_t *len);

/* Let peer (its IP: RFC 8656 §9) send to us through the relay, and bind
 * it a channel; both refreshed until punch_turn_release. Returns 0,
 * PUNCH_ERR_LIMIT (every slot in use or in its quarantine; counted in
 * no_slot) or PUNCH_ERR_INVAL. */
int punch_turn_permit(punch_turn *t, uint64_t now, const punch_addr *peer);

/* peer's permission and channel are no longer needed: they are not
 * refreshed any more and expire; the slot takes another address once
 * RFC 8656 §12's quarantine is over (punch_turn_reuse_at), or this one
 * again at once. Returns 0 or PUNCH_ERR_NOTFOUND. */
int punch_turn_release(punch_turn *t, const punch_addr *peer);

/* When slot i may take another address: 0 (free), the end of its
 * quarantine, or UINT64_MAX (in use, or no such slot). */
uint64_t punch_turn_reuse_at(const punch_turn *t, int i);

/* A path through the relay went quiet: Refresh now rather than at its
 * time, so a server that forgot the allocation says so (437) at once and
 * a new one is made. Nothing while not allocated or while the
 * allocation's request is in flight. */
void punch_turn_refresh_now(punch_turn *t, uint64_t now);

/* data for peer, wrapped for the TURN server into out: ChannelData once
 * the channel is bound, a Send indication before. Returns 0,
 * PUNCH_ERR_NOTFOUND (peer not permitted, or no allocation),
 * PUNCH_ERR_NOBUFS or PUNCH_ERR_INVAL. */
int punch_turn_wrap(punch_turn *t, const punch_addr *peer, const uint8_t *data, size_t len,
                    uint8_t *out, size_t cap, size_t *out_len);

/* Give up: the connection to the server is gone (over TCP or TLS the
 * allocation goes with it, RFC 8656 §3.1). State FAILED, why kept. */
void punch_turn_give_up(punch_turn *t, const char *why);

/* Whether a datagram from the server is TURN's (STUN or ChannelData). */
bool punch_turn_is_turn(const uint8_t *buf, size_t len);

#endif
