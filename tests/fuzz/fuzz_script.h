/* SPDX-License-Identifier: MIT */
/*
 * What the script-driven fuzz targets share (fuzz_agent, fuzz_rendezvous):
 * the input read as a script, one byte at a time (0 once it runs out);
 * randomness that is a fixed function of its state; identities made from
 * one seed byte.
 */
#ifndef PUNCH_FUZZ_SCRIPT_H
#define PUNCH_FUZZ_SCRIPT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "crypto/identity.h"

typedef struct script {
    const uint8_t *p;
    size_t left;
} script;

static inline uint8_t script_next(script *s)
{
    if (!s->left)
        return 0;
    s->left--;
    return *s->p++;
}

/* A punch_random_fn: a 64-bit LCG whose state is *ctx (a uint64_t). */
static inline void fuzz_fixed_random(void *ctx, uint8_t *buf, size_t len)
{
    uint64_t *state = ctx;
    for (size_t i = 0; i < len; i++) {
        *state = *state * 6364136223846793005ull + 1442695040888963407ull;
        buf[i] = (uint8_t)(*state >> 56);
    }
}

/* The identity whose secret is 32 times seed. */
static inline void fuzz_identity(punch_identity *id, uint8_t seed)
{
    uint8_t secret[PUNCH_KEY_LEN];
    memset(secret, seed, sizeof(secret));
    if (punch_identity_from_secret(id, secret) != 0)
        __builtin_trap();
}

#endif
