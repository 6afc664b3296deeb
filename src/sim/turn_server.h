/* SPDX-License-Identifier: MIT */
/*
 * A TURN server model (RFC 8656 over UDP) for the simulator, sans-I/O like
 * the NAT models: a datagram in, at most one datagram out, time passed in.
 * It speaks through our STUN codec (src/wire/stun.h) and keeps what a
 * TURN server keeps: allocations per client endpoint with a lifetime
 * (Allocate, Refresh, expiry), long-term credentials (RFC 8489 §9.2: a
 * 401 with realm and nonce first, a nonce that goes stale with 438),
 * permissions per peer IP (300 s) filtering what comes in on a relayed
 * address, Send and Data indications, and channels (600 s) carrying
 * ChannelData.
 *
 * Stricter than a real server in one way, so tests can see the client
 * keep RFC 8656 §12's rule: a channel number or a peer address bound less
 * than 5 minutes after its binding expired is refused (400) and counted
 * in rebinds_refused.
 *
 * Lifetimes are checked when an allocation is next used (no timers).
 * punch_sim_turn_forget drops every allocation, as a restart does.
 */
#ifndef PUNCH_SIM_TURN_SERVER_H
#define PUNCH_SIM_TURN_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "punch/punch.h"
#include "sim/sim.h"

#define PUNCH_SIM_TURN_ALLOCS   16
#define PUNCH_SIM_TURN_PERMS    64 /* per allocation */
#define PUNCH_SIM_TURN_CHANNELS 32 /* per allocation, quarantined ones too */
#define PUNCH_SIM_TURN_CRED     64

typedef struct punch_sim_turn_cfg {
    punch_addr addr;      /* where clients reach it; relayed ports on its IP */
    const char *realm, *username, *password; /* copied */
    uint32_t nonce_s;     /* a nonce is good this long (0: 3600 s), then 438 */
    uint32_t max_lifetime_s; /* the most an allocation is given (0: 3600 s) */
} punch_sim_turn_cfg;

typedef struct punch_sim_turn_perm {
    punch_addr ip;        /* port 0 */
    uint64_t until_ms;
} punch_sim_turn_perm;

typedef struct punch_sim_turn_channel {
    bool used;
    uint16_t number;
    punch_addr peer;
    uint64_t until_ms;    /* bound until then; held 300 s more */
} punch_sim_turn_channel;

typedef struct punch_sim_turn_alloc {
    bool used;
    punch_addr client, relayed;
    uint64_t until_ms;
    uint8_t txid[12];     /* its Allocate's: a retransmission is answered again */
    punch_sim_turn_perm perms[PUNCH_SIM_TURN_PERMS];
    punch_sim_turn_channel channels[PUNCH_SIM_TURN_CHANNELS];
} punch_sim_turn_alloc;

typedef struct punch_sim_turn_stats {
    uint64_t allocations, refreshes, deleted, expired;
    uint64_t challenges;      /* 401 with a nonce to an unsigned request */
    uint64_t stale_nonces;    /* 438 */
    uint64_t bad_auth;        /* 401 to a signed request (wrong key or user) */
    uint64_t mismatches;      /* 437: no allocation (or one already) for the client */
    uint64_t permissions;     /* CreatePermission taken */
    uint64_t binds;           /* ChannelBind taken (new or refreshed) */
    uint64_t rebinds_refused; /* ChannelBind against a binding or its quarantine */
    uint64_t no_room;         /* 508: no allocation, permission or channel free */
    uint64_t to_peers;        /* Send indications and ChannelData relayed out */
    uint64_t to_clients;      /* peers' datagrams relayed in (Data or ChannelData) */
    uint64_t filtered;        /* a peer's datagram without a permission, dropped */
    uint64_t unsent;          /* Send or ChannelData without a permission or channel */
    uint64_t dropped;         /* malformed, or for no allocation */
} punch_sim_turn_stats;

/* A datagram the server sends: from local to remote. */
typedef struct punch_sim_turn_out {
    punch_addr local, remote;
    size_t len;
    uint8_t buf[PUNCH_SIM_MTU];
} punch_sim_turn_out;

typedef struct punch_sim_turn {
    punch_sim_turn_cfg cfg;
    char realm[PUNCH_SIM_TURN_CRED], username[PUNCH_SIM_TURN_CRED];
    uint8_t key[16];      /* MD5(username:realm:password) */
    uint16_t next_port;
    punch_sim_turn_alloc allocs[PUNCH_SIM_TURN_ALLOCS];
    punch_sim_turn_stats stats;
    punch_sim *sim;       /* punch_sim_turn_attach's */
    int host;
    punch_sim_turn_out out; /* what it sends there */
} punch_sim_turn;

/* Returns 0 or PUNCH_ERR_INVAL (no address, credentials missing or too long). */
int punch_sim_turn_init(punch_sim_turn *s, const punch_sim_turn_cfg *cfg);

/* A datagram that arrived at local (its listening address or a relayed
 * one) from remote. Returns 1 when it answers or relays (*out filled),
 * 0 when not (dropped and counted, or an indication taken). */
int punch_sim_turn_handle(punch_sim_turn *s, uint64_t now_ms, const punch_addr *local,
                          const punch_addr *remote, const uint8_t *data, size_t len,
                          punch_sim_turn_out *out);

/* Every allocation forgotten (a restart): clients get 437 next. */
void punch_sim_turn_forget(punch_sim_turn *s);

/* The allocation of client (live at now), or NULL. */
const punch_sim_turn_alloc *punch_sim_turn_find(const punch_sim_turn *s, uint64_t now_ms,
                                                const punch_addr *client);

/* Live permissions / channels of a at now. */
unsigned punch_sim_turn_perms(const punch_sim_turn_alloc *a, uint64_t now_ms);
unsigned punch_sim_turn_channels(const punch_sim_turn_alloc *a, uint64_t now_ms);

/* Run s on a simulated host: every datagram for it handled, what it
 * sends sent. Returns 0 or PUNCH_ERR_INVAL. */
int punch_sim_turn_attach(punch_sim_turn *s, punch_sim *sim, int host);

#endif
