/* SPDX-License-Identifier: MIT */
/*
 * Which technique gets two peers through which pair of NATs, how often and
 * how fast (issue 5's table): the real agent and punchd services in the
 * simulator (src/sim/world.h), alice behind NAT A and bob behind NAT B, both
 * registered, then alice connects; after 12 s of virtual time, the path
 * each side ended on. Printed as a Markdown table: the technique alice's
 * path ended on most often, the share of runs that ended direct on both
 * sides, and the median time from connect to alice's first direct path.
 *
 * usage: nat_matrix [RUNS [LOSS_PERCENT]]     (defaults 100 and 0)
 * Seeds 1..RUNS, so a run is the same every time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/world.h"

static const char *const presets[] = {
    "full-cone", "restricted-cone", "port-restricted-cone", "p2p", "cgnat",
    "symmetric-sequential", "symmetric-random",
};
#define N_PRESETS (sizeof(presets) / sizeof(presets[0]))
#define MAX_RUNS 1000
#define N_TECH (PUNCH_TECH_BIRTHDAY + 1)

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void pair(const char *a, const char *b, unsigned runs, double loss)
{
    static uint64_t took[MAX_RUNS];
    unsigned direct = 0, tech_count[N_TECH] = {0};
    for (unsigned r = 0; r < runs; r++) {
        world w;
        world_start(&w, 1 + r);
        different_nats(&w, a, b, loss);
        uint64_t t0 = register_and_connect(&w);
        if (t0 == UINT64_MAX) {
            world_free(&w);
            continue;
        }
        punch_sim_run(w.sim, punch_sim_now(w.sim) + 12000 * MS);
        if (w.alice.have_path && w.alice.technique < N_TECH)
            tech_count[w.alice.technique]++;
        if (w.alice.have_path && w.bob.have_path && w.alice.kind == PUNCH_PATH_DIRECT &&
            w.bob.kind == PUNCH_PATH_DIRECT && w.alice.first_direct_ms)
            took[direct++] = w.alice.first_direct_ms - t0;
        world_free(&w);
    }
    unsigned best = 0;
    for (unsigned t = 1; t < N_TECH; t++)
        if (tech_count[t] > tech_count[best])
            best = t;
    qsort(took, direct, sizeof(took[0]), cmp_u64);
    printf("| %s | %s | %s | %.0f %% | ", a, b,
           tech_count[best] ? punch_technique_name((punch_technique)best) : "none",
           100.0 * direct / runs);
    if (direct)
        printf("%llu ms |\n", (unsigned long long)took[direct / 2]);
    else
        printf("- |\n");
    fflush(stdout);
}

int main(int argc, char **argv)
{
    unsigned runs = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 100;
    double loss = argc > 2 ? strtod(argv[2], NULL) / 100.0 : 0.0;
    if (runs == 0 || runs > MAX_RUNS || loss < 0 || loss >= 1) {
        fprintf(stderr, "usage: nat_matrix [RUNS (1..%d) [LOSS_PERCENT (0..99)]]\n", MAX_RUNS);
        return 2;
    }
    printf("Simulator, %u runs per pair, %.0f %% loss on each WAN link, 10 ms one way per "
           "NAT uplink, 5 ms to the server.\n\n",
           runs, loss * 100);
    printf("| NAT A (alice, connects) | NAT B (bob, listens) | technique (alice, most runs) | "
           "direct both sides | median to direct |\n|---|---|---|---|---|\n");
    for (size_t i = 0; i < N_PRESETS; i++)
        for (size_t j = i; j < N_PRESETS; j++)
            pair(presets[i], presets[j], runs, loss);
    return 0;
}
