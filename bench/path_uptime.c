/* SPDX-License-Identifier: MIT */
/*
 * How much of the time a peer has a path to send on, in the simulator,
 * when paths die (issue 11's every_call question: which probe timer
 * behaviour keeps a peer connected). Every NAT preset pair x three agent
 * setups (default, no relay, relay only) x access-link loss (10 %, 30 %),
 * one seed each: after the connection starts alice sends a numbered
 * datagram every 100 ms for 40 s of virtual time. Printed per setup and
 * loss: the share of sends the agent took (it had a path: the uptime),
 * the share bob received, the path deaths told, and the probes sent.
 *
 *     build/bench/path_uptime
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
#define SENDS 400

typedef struct tally {
    unsigned runs, taken, received, deaths;
    uint64_t sent;
} tally;

static void one_run(world *w, tally *t)
{
    uint64_t t0 = register_and_connect(w);
    t->runs++;
    if (t0 == UINT64_MAX)
        return;
    for (unsigned i = 0; i < SENDS; i++) {
        punch_sim_run(w->sim, punch_sim_now(w->sim) + 100 * MS);
        char msg[16];
        int n = snprintf(msg, sizeof(msg), "#%u", i % 256);
        uint64_t now = punch_sim_now(w->sim) / MS;
        if (punch_agent_send(w->alice.agent, now, w->alice.peer, (const uint8_t *)msg,
                             (size_t)n) == 0)
            t->taken++;
        node_flush(&w->alice);
        if (strstr(w->alice.attempt, "path died"))
            t->deaths++, w->alice.attempt[0] = '\0';
    }
    punch_sim_run(w->sim, punch_sim_now(w->sim) + 1000 * MS);
    for (unsigned k = 0; k < 256; k++)
        t->received += w->bob.counts[k];
    punch_agent_stats st;
    punch_agent_stats_get(w->alice.agent, &st);
    t->sent += st.sent;
}

int main(void)
{
    static const struct {
        uint32_t flags;
        const char *name;
    } setups[] = {{0, "default"}, {PUNCH_AGENT_NO_RELAY, "no-relay"},
                  {PUNCH_AGENT_RELAY_ONLY, "relay-only"}};
    static const double losses[] = {0.10, 0.30};
    for (size_t f = 0; f < sizeof(setups) / sizeof(setups[0]); f++)
        for (size_t l = 0; l < sizeof(losses) / sizeof(losses[0]); l++) {
            tally t = {0};
            for (size_t a = 0; a < NP; a++)
                for (size_t b = 0; b < NP; b++) {
                    world w;
                    world_start(&w, 7919 + a * 31 + b);
                    w.agent_flags = setups[f].flags;
                    different_nats(&w, presets[a], presets[b], losses[l]);
                    one_run(&w, &t);
                    world_free(&w);
                }
            double sends = (double)t.runs * SENDS;
            printf("%-10s loss %2.0f%%: %u runs, uptime %.4f, received %.4f, path deaths %u, "
                   "datagrams sent by alice %llu\n",
                   setups[f].name, losses[l] * 100, t.runs, t.taken / sends, t.received / sends,
                   t.deaths, (unsigned long long)t.sent);
        }
    return 0;
}
