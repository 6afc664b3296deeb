/* SPDX-License-Identifier: MIT */
/*
 * Per-source token buckets in a fixed-size table (SPEC.md §4, draft §6.2).
 * Sans-I/O: time comes in as milliseconds; the hash key comes from the
 * caller's randomness so a sender cannot aim at one slot.
 */
#ifndef PUNCH_SERVER_RATELIMIT_H
#define PUNCH_SERVER_RATELIMIT_H

#include "punch/punch.h"
#include "wire/counts.h" /* punch_source_prefix: what one source is */

typedef struct punch_ratelimit punch_ratelimit;

typedef struct punch_ratelimit_cfg {
    uint32_t per_sec;   /* sustained events per second per source; 0 = unlimited */
    uint32_t burst;     /* bucket size; 0 means per_sec */
    size_t slots;       /* table capacity (sources tracked at once) */
    uint8_t hash_key[16];
    /* Optional: counts every time a source begins to be refused (a
     * refusal after an allowed event, or its first), for operators. */
    uint64_t *sources_limited;
} punch_ratelimit_cfg;

/* Returns 0, PUNCH_ERR_INVAL (slots == 0 with a limit) or PUNCH_ERR_NOMEM. */
int punch_ratelimit_new(punch_ratelimit **rl, const punch_ratelimit_cfg *cfg);
void punch_ratelimit_free(punch_ratelimit *rl);

/* Spend one token of src's bucket at now_ms. A source is its IPv4 address or
 * its IPv6 /64, since one host holds a whole /64. When the table is full the
 * least recently seen of the few candidate slots is recycled.
 * Returns true when allowed. */
bool punch_ratelimit_allow(punch_ratelimit *rl, const punch_addr *src, uint64_t now_ms);

/* Spend cost tokens of src's bucket (bytes, say, with per_sec in bytes). */
bool punch_ratelimit_take(punch_ratelimit *rl, const punch_addr *src, uint64_t cost,
                          uint64_t now_ms);

/* Spend one token of the bucket of src (its IP or /64) together with
 * target (up to 64 bytes naming what it asks for: a peer's key), so one
 * source is limited per target without being limited overall. */
bool punch_ratelimit_allow_pair(punch_ratelimit *rl, const punch_addr *src,
                                const uint8_t *target, size_t target_len, uint64_t now_ms);

#endif
