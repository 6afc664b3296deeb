/* SPDX-License-Identifier: MIT */
/* Per-source token buckets: see ratelimit.h. */
#include "server/ratelimit.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

/* How many neighbouring slots a source may live in (linear probing). */
#define PROBE 8
/* The family of buckets that count a (source, target) pair. */
#define PAIR_FAMILY 0xff

typedef struct bucket {
    uint64_t key;      /* IPv4 address, or the IPv6 /64 prefix */
    uint64_t last_ms;  /* last refill */
    uint64_t milli;    /* tokens x 1000 */
    uint8_t family;    /* PUNCH_AF_NONE: free */
    bool refusing;     /* its last event was refused */
} bucket;

struct punch_ratelimit {
    punch_ratelimit_cfg cfg;
    uint64_t cap_milli;
    bucket *slots;
    bucket *last; /* the bucket found last (a hint: it may hold another source by now) */
};

int punch_ratelimit_new(punch_ratelimit **out, const punch_ratelimit_cfg *cfg)
{
    if (!out || !cfg || (cfg->per_sec && cfg->slots == 0))
        return PUNCH_ERR_INVAL;
    punch_ratelimit *rl = calloc(1, sizeof(*rl));
    if (!rl)
        return PUNCH_ERR_NOMEM;
    rl->cfg = *cfg;
    uint64_t burst = cfg->burst ? cfg->burst : cfg->per_sec;
    rl->cap_milli = burst * 1000;
    if (cfg->per_sec) {
        rl->slots = calloc(cfg->slots, sizeof(bucket));
        if (!rl->slots) {
            free(rl);
            return PUNCH_ERR_NOMEM;
        }
    }
    *out = rl;
    return 0;
}

void punch_ratelimit_free(punch_ratelimit *rl)
{
    if (!rl)
        return;
    free(rl->slots);
    free(rl);
}

static size_t source_slot(const punch_ratelimit *rl, uint8_t family, uint64_t key)
{
    uint8_t in[9], h[crypto_shorthash_BYTES];
    in[0] = family;
    memcpy(in + 1, &key, sizeof(key));
    crypto_shorthash(h, in, sizeof(in), rl->cfg.hash_key);
    uint64_t v;
    memcpy(&v, h, sizeof(v));
    return (size_t)(v % rl->cfg.slots);
}

/* The bucket of this source, or the stalest candidate, reset for it. */
static bucket *find_bucket(punch_ratelimit *rl, uint8_t family, uint64_t key,
                           uint64_t now_ms)
{
    size_t first = source_slot(rl, family, key);
    bucket *victim = NULL;
    for (size_t i = 0; i < PROBE && i < rl->cfg.slots; i++) {
        bucket *b = &rl->slots[(first + i) % rl->cfg.slots];
        if (b->family == family && b->key == key)
            return b;
        if (!victim || b->family == PUNCH_AF_NONE ||
            (victim->family != PUNCH_AF_NONE && b->last_ms < victim->last_ms))
            victim = b;
    }
    victim->family = family;
    victim->key = key;
    victim->last_ms = now_ms;
    victim->milli = rl->cap_milli;
    victim->refusing = false;
    return victim;
}

/* Refill b to now and spend cost tokens if it holds them; a source that
 * begins to be refused is counted. */
static bool take(const punch_ratelimit *rl, bucket *b, uint64_t cost, uint64_t now_ms)
{
    if (now_ms > b->last_ms) {
        /* A gap of cap_milli ms refills any bucket (per_sec >= 1): no overflow. */
        uint64_t gap = now_ms - b->last_ms;
        uint64_t milli = gap >= rl->cap_milli ? rl->cap_milli : b->milli + gap * rl->cfg.per_sec;
        b->milli = milli > rl->cap_milli ? rl->cap_milli : milli;
        b->last_ms = now_ms;
    }
    if (b->milli < cost * 1000) {
        if (!b->refusing && rl->cfg.sources_limited)
            (*rl->cfg.sources_limited)++;
        b->refusing = true;
        return false;
    }
    b->milli -= cost * 1000;
    b->refusing = false;
    return true;
}

/* A run of datagrams from one source (a relayed flow) finds its bucket
 * without hashing again: the one found last, while it still holds that
 * source (one source has one bucket at most, so it is that one). */
static bucket *source_bucket(punch_ratelimit *rl, uint8_t family, uint64_t key, uint64_t now_ms)
{
    bucket *b = rl->last;
    if (!b || b->family != family || b->key != key)
        b = rl->last = find_bucket(rl, family, key, now_ms);
    return b;
}

bool punch_ratelimit_take(punch_ratelimit *rl, const punch_addr *src, uint64_t cost,
                          uint64_t now_ms)
{
    if (!rl || !src || rl->cfg.per_sec == 0)
        return true;
    return take(rl, source_bucket(rl, src->family, punch_source_prefix(src), now_ms), cost, now_ms);
}

bool punch_ratelimit_allow(punch_ratelimit *rl, const punch_addr *src, uint64_t now_ms)
{
    return punch_ratelimit_take(rl, src, 1, now_ms);
}

bool punch_ratelimit_allow_pair(punch_ratelimit *rl, const punch_addr *src,
                                const uint8_t *target, size_t target_len, uint64_t now_ms)
{
    if (!rl || !src || !target || rl->cfg.per_sec == 0)
        return true;
    /* One SipHash of (source, target) names the pair; a sender cannot
     * make two pairs share a bucket without the hash key. */
    uint8_t in[1 + 8 + 64], h[crypto_shorthash_BYTES];
    uint64_t key = punch_source_prefix(src);
    size_t n = target_len > 64 ? 64 : target_len;
    in[0] = src->family;
    memcpy(in + 1, &key, sizeof(key));
    memcpy(in + 9, target, n);
    crypto_shorthash(h, in, 9 + n, rl->cfg.hash_key);
    uint64_t pair;
    memcpy(&pair, h, sizeof(pair));
    return take(rl, find_bucket(rl, PAIR_FAMILY, pair, now_ms), 1, now_ms);
}
