/* SPDX-License-Identifier: MIT */
/*
 * A seeded PRNG for the simulator and for tests: xoshiro256** (Blackman and
 * Vigna, 2018) seeded through splitmix64, so any uint64_t seed gives a good
 * state. Pure: the caller chooses the seed; the same seed gives the same
 * sequence on every machine.
 */
#ifndef PUNCH_SIM_RNG_H
#define PUNCH_SIM_RNG_H

#include <stdbool.h>
#include <stdint.h>

typedef struct punch_rng {
    uint64_t s[4];
} punch_rng;

void punch_rng_seed(punch_rng *r, uint64_t seed);
uint64_t punch_rng_next(punch_rng *r);
/* Uniform in [0, n); 0 when n is 0. */
uint64_t punch_rng_below(punch_rng *r, uint64_t n);
/* True with probability p (p <= 0: never, p >= 1: always; neither draws). */
bool punch_rng_chance(punch_rng *r, double p);
/* For callbacks such as punch_nat_cfg.random: ctx is a punch_rng. */
uint64_t punch_rng_callback(void *ctx);

#endif
