/* SPDX-License-Identifier: MIT */
/*
 * A fingerprint of the agent's behaviour in the simulator, for showing that
 * a change inside src/core changed nothing (issue 11): one line per seeded
 * run, with the simulator's trace hash (every datagram delivered, lost and
 * translated) and what each peer's events said. Every NAT preset pair x
 * agent flags x loss, plus the same-NAT, multi-level and public topologies.
 * Build it before and after a change and diff the two outputs:
 *
 *     build/bench/agent_fingerprint > before.txt   # on the old tree
 *     build/bench/agent_fingerprint > after.txt    # on the new one
 *     cmp before.txt after.txt
 */
#include <stdio.h>
#include <string.h>

#include "sim/world.h"

static const char *const presets[] = {
    "full-cone", "restricted-cone",      "port-restricted-cone", "p2p",
    "cgnat",     "symmetric-sequential", "symmetric-random",     "firewall",
    "basic-nat",
};
#define NP (sizeof(presets) / sizeof(presets[0]))

/* One line: the run, its trace hash, and what alice's and bob's events said. */
static void dump(const char *what, world *w, uint64_t t0)
{
    node *ns[2] = {&w->alice, &w->bob};
    printf("%s seed=%llu t0=%llu hash=%016llx now=%llu", what, (unsigned long long)w->seed,
           (unsigned long long)t0, (unsigned long long)punch_sim_trace_hash(w->sim),
           (unsigned long long)punch_sim_now(w->sim));
    for (int i = 0; i < 2; i++) {
        node *n = ns[i];
        printf(
            " | reg=%d path=%d kind=%d tech=%d first=%llu fk=%d ch=%u closed='%s' att='%s' off=%u",
            n->registered, n->have_path, n->kind, n->technique,
            (unsigned long long)n->first_direct_ms, n->first_kind, n->path_changes, n->closed,
            n->attempt, n->tcp_offers);
    }
    printf("\n");
}

/* Register, connect, run for ms of virtual time, print, free. */
static void run(const char *what, world *w, uint64_t ms)
{
    uint64_t t0 = register_and_connect(w);
    if (t0 != UINT64_MAX)
        punch_sim_run(w->sim, punch_sim_now(w->sim) + ms * MS);
    dump(what, w, t0);
    world_free(w);
}

int main(void)
{
    static const uint32_t flags[] = {0,
                                     PUNCH_AGENT_NO_BIRTHDAY,
                                     PUNCH_AGENT_TCP,
                                     PUNCH_AGENT_NO_RELAY,
                                     PUNCH_AGENT_RELAY_ONLY,
                                     PUNCH_AGENT_PEER_INTRODUCTIONS};
    static const double losses[] = {0, 0.05, 0.3};
    char what[200];
    for (size_t f = 0; f < sizeof(flags) / sizeof(flags[0]); f++)
        for (size_t l = 0; l < 3; l++)
            for (size_t a = 0; a < NP; a++)
                for (size_t b = 0; b < NP; b++)
                    for (uint64_t s = 1; s <= (f == 0 && l == 0 ? 4 : 1); s++) {
                        world w;
                        world_start(&w, s * 7919 + a * 31 + b);
                        w.agent_flags = flags[f];
                        different_nats(&w, presets[a], presets[b], losses[l]);
                        snprintf(what, sizeof what, "diff f=%x l=%.2f %s x %s", flags[f], losses[l],
                                 presets[a], presets[b]);
                        run(what, &w, 40000);
                    }
    for (size_t a = 0; a < NP; a++)
        for (uint64_t s = 1; s <= 3; s++) {
            world w;
            world_start(&w, s);
            same_nat(&w, presets[a], 0.02 * s);
            snprintf(what, sizeof what, "same %s", presets[a]);
            run(what, &w, 20000);
            world_start(&w, s);
            multi_level(&w, presets[a], 0.02 * s);
            snprintf(what, sizeof what, "multi %s", presets[a]);
            run(what, &w, 20000);
            world_start(&w, s);
            public_peers(&w, presets[a], 0.02 * s);
            snprintf(what, sizeof what, "public %s", presets[a]);
            run(what, &w, 20000);
        }
    return 0;
}
