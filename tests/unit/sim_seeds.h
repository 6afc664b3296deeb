/* SPDX-License-Identifier: MIT */
/*
 * What the simulator's seeded tests share: which seeds they run (a
 * failure prints its seed; PUNCH_SIM_SEED=N replays that one alone) and
 * the world's virtual time in milliseconds.
 */
#ifndef PUNCH_TEST_SIM_SEEDS_H
#define PUNCH_TEST_SIM_SEEDS_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "sim/world.h"

#define SIM_SEEDS 5

/* The seed PUNCH_SIM_SEED names, or dflt. */
static inline uint64_t sim_seed_or(uint64_t dflt)
{
    const char *env = getenv("PUNCH_SIM_SEED");
    return env ? strtoull(env, NULL, 0) : dflt;
}

/* The seeds to run into seeds: 1 to SIM_SEEDS, or PUNCH_SIM_SEED's
 * alone. Returns how many. */
static inline size_t sim_seeds_pick(uint64_t seeds[SIM_SEEDS])
{
    if (getenv("PUNCH_SIM_SEED")) {
        seeds[0] = sim_seed_or(0);
        return 1;
    }
    for (size_t i = 0; i < SIM_SEEDS; i++)
        seeds[i] = i + 1;
    return SIM_SEEDS;
}

static inline uint64_t now_ms(const world *w)
{
    return punch_sim_now(w->sim) / MS;
}

#endif
