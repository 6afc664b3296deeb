/* SPDX-License-Identifier: MIT */
/*
 * The round trip that PATH and RTT events tell (issue 14): on both sides,
 * direct and through the relay, it is the simulated path's, within the
 * links' jitter, and it is told within a few round trips of the path
 * being taken, also under loss. Before, the initiator told the time from
 * its latest copy of message 1 to the answer (0 ms seen) and the
 * responder 0: its path was taken on a message heard, and a later PONG
 * told nothing. A failure prints its seed; PUNCH_SIM_SEED=N replays one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sim/world.h"
#include "sim_seeds.h"

/* The world's links (src/sim/world.c): each peer's access link
 * ACCESS_MS, its NAT's WAN link to the core router 10 ms plus up to 1 ms
 * of jitter, the server 5 ms from the core router. */
#define ACCESS_MS 10u
#define WAN_MS 10u
#define SERVER_MS 5u
#define DIRECT_RTT_MS (4 * ACCESS_MS + 4 * WAN_MS)
#define RELAY_RTT_MS (DIRECT_RTT_MS + 4 * SERVER_MS)
/* Four WAN crossings of up to 1 ms jitter each, and the agent's clock in
 * whole milliseconds at both ends. */
#define SLACK_MS 6u

static uint64_t seeds[SIM_SEEDS];
static size_t n_seeds;

/* Both register, alice asks for bob, 12 s of virtual time pass. */
static void connect_pair(world *w, const char *what)
{
    punch_sim *sim = w->sim;
    uint64_t asked = register_and_connect(w);
    if (asked == UINT64_MAX)
        fail_msg("%s seed %llu: not registered", what, (unsigned long long)w->seed);
    punch_sim_run(sim, punch_sim_now(sim) + 12000 * MS);
}

/* n's latest path is of this kind, timed at want_ms (within SLACK_MS),
 * and the timing came within `within_ms` of the path event. */
static void check_side(const world *w, const node *n, const char *who, const char *what,
                       punch_path_kind kind, unsigned want_ms, uint64_t within_ms)
{
    unsigned long long seed = (unsigned long long)w->seed;
    if (!n->have_path || n->kind != kind)
        fail_msg("%s seed %llu: %s has no %s path (%s)", what, seed, who,
                 punch_path_kind_name(kind), n->have_path ? punch_path_kind_name(n->kind) : "none");
    if (!n->path_timed)
        fail_msg("%s seed %llu: %s's path was never timed (%u RTT events)", what, seed, who,
                 n->rtt_events);
    double got = n->path_rtt_us / 1000.0;
    if (got < want_ms - 1.0 || got > want_ms + SLACK_MS)
        fail_msg("%s seed %llu: %s's path rtt %.1f ms, the path's is %u to %u ms", what, seed, who,
                 got, want_ms, want_ms + SLACK_MS);
    if (n->timed_ms - n->path_ms > within_ms)
        fail_msg("%s seed %llu: %s's rtt told %llu ms after its path, not within %llu", what, seed,
                 who, (unsigned long long)(n->timed_ms - n->path_ms),
                 (unsigned long long)within_ms);
}

static void rtt_case(uint32_t flags, punch_path_kind kind, unsigned rtt_ms, double loss,
                     const char *what)
{
    for (size_t s = 0; s < n_seeds; s++) {
        world w;
        world_start(&w, seeds[s]);
        w.access_delay_us = ACCESS_MS * MS;
        w.agent_flags = flags;
        different_nats(&w, "port-restricted-cone", "port-restricted-cone", loss);
        connect_pair(&w, what);
        /* Without loss a PING's PONG times it one round trip after the
         * path; the responder's first PINGs may overtake its message 2
         * (the links' jitter) and die unread, and its probes PING again
         * 100 ms later (PROBE_FAST_MS). With loss, the path's PING is
         * repeated each keepalive period (2 s) until a PONG comes. */
        uint64_t within = loss > 0 ? 10000 : rtt_ms + 2 * 100 + SLACK_MS;
        check_side(&w, &w.alice, "alice", what, kind, rtt_ms, within);
        check_side(&w, &w.bob, "bob", what, kind, rtt_ms, within);
        world_free(&w);
    }
}

static void direct_path_rtt(void **state)
{
    (void)state;
    rtt_case(0, PUNCH_PATH_DIRECT, DIRECT_RTT_MS, 0, "direct");
}

static void relay_path_rtt(void **state)
{
    (void)state;
    rtt_case(PUNCH_AGENT_RELAY_ONLY, PUNCH_PATH_RELAY, RELAY_RTT_MS, 0, "relay");
}

static void direct_path_rtt_under_loss(void **state)
{
    (void)state;
    rtt_case(0, PUNCH_PATH_DIRECT, DIRECT_RTT_MS, 0.10, "direct, 10% loss");
}

int main(void)
{
    n_seeds = sim_seeds_pick(seeds);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(direct_path_rtt),
        cmocka_unit_test(relay_path_rtt),
        cmocka_unit_test(direct_path_rtt_under_loss),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
