/* SPDX-License-Identifier: MIT */
/* xoshiro256** seeded with splitmix64: see rng.h. */
#include <stdbool.h>

#include "sim/rng.h"

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void punch_rng_seed(punch_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t punch_rng_next(punch_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t punch_rng_below(punch_rng *r, uint64_t n)
{
    if (n == 0)
        return 0;
    /* Lemire's multiply-shift; the bias (< n / 2^64) does not matter here */
    return (uint64_t)(((unsigned __int128)punch_rng_next(r) * n) >> 64);
}

bool punch_rng_chance(punch_rng *r, double p)
{
    if (p <= 0)
        return false;
    if (p >= 1)
        return true;
    return (double)(punch_rng_next(r) >> 11) * 0x1.0p-53 < p;
}

uint64_t punch_rng_callback(void *ctx)
{
    return punch_rng_next(ctx);
}
