/* SPDX-License-Identifier: MIT */
/* The NAT model's hashing (nat.c; kept apart to keep nat.c short):
 * a keyed multiply-xorshift mix, not cryptographic, keyed with the caller's
 * randomness so that a sender cannot aim at one bucket. */
#ifndef PUNCH_NAT_HASH_H
#define PUNCH_NAT_HASH_H

#include "punch/punch.h"

static inline uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v;
    h *= 0x9e3779b97f4a7c15ull;
    return h ^ (h >> 31);
}

static inline uint64_t fmix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 33);
}

static inline uint64_t hash_ip(uint64_t h, const punch_addr *a)
{
    uint64_t w0 = 0, w1 = 0;
    size_t len = a->family == PUNCH_AF_INET6 ? 16 : a->family == PUNCH_AF_INET ? 4 : 0;
    for (size_t i = 0; i < len && i < 8; i++)
        w0 = (w0 << 8) | a->ip[i];
    for (size_t i = 8; i < len; i++)
        w1 = (w1 << 8) | a->ip[i];
    return mix(mix(mix(h, a->family), w0), w1);
}

static inline uint64_t hash_addr(uint64_t h, const punch_addr *a)
{
    return mix(hash_ip(h, a), a->port);
}

#endif
