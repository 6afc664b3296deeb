/* SPDX-License-Identifier: MIT */
/*
 * Peers that know several servers (issue 15; src/core/servers.c), in the
 * simulator, seeded: two punchd (the first 5 ms from the core, the second
 * 20 ms), each with keys of its own, and peers that know both.
 *  - both register at the first to answer (the nearer one);
 *  - the first dies at t: both are registered at the second within the
 *    bound, a direct session between them loses no datagram meanwhile,
 *    and a new peer connects to them through the second;
 *  - a session on the first's relay moves to the second's relay;
 *  - a TCP path after the failover asks the second server for its port.
 * A failure prints its seed; PUNCH_SIM_SEED=N replays one seed.
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

/* From the server's silence to the re-registration elsewhere: the
 * failover's 3 s of silence (3 probes 1 s apart), one more probe period
 * to notice, and the new registration's round trips. */
#define FAILOVER_BOUND_MS 5000

static bool at(const node *n, const server *s)
{
    return n->registered && punch_addr_equal(&n->server, &s->addr);
}

/* Two peers behind cone NATs that know both servers, connected directly. */
static void two_servers_direct(world *w, uint64_t seed)
{
    world_start(w, seed);
    world_add_server(w);
    different_nats(w, "port-restricted-cone", "port-restricted-cone", 0);
    if (register_and_connect(w) == UINT64_MAX)
        fail_msg("seed %llu: not registered", (unsigned long long)seed);
    for (int i = 0; i < 50 && !(w->alice.have_path && w->alice.kind == PUNCH_PATH_DIRECT &&
                                 w->bob.have_path && w->bob.kind == PUNCH_PATH_DIRECT);
         i++)
        punch_sim_run(w->sim, punch_sim_now(w->sim) + 100 * MS);
    if (w->alice.kind != PUNCH_PATH_DIRECT || w->bob.kind != PUNCH_PATH_DIRECT)
        fail_msg("seed %llu: no direct path", (unsigned long long)seed);
}

/* Run until both alice and bob are registered at s (up to limit_ms from
 * now); returns when the later of the two did, or UINT64_MAX. */
static uint64_t until_both_at(world *w, const server *s, uint64_t limit_ms)
{
    uint64_t end = now_ms(w) + limit_ms;
    while (!(at(&w->alice, s) && at(&w->bob, s)) && now_ms(w) < end)
        punch_sim_run(w->sim, punch_sim_now(w->sim) + 10 * MS);
    if (!at(&w->alice, s) || !at(&w->bob, s))
        return UINT64_MAX;
    return w->alice.last_registered_ms > w->bob.last_registered_ms ? w->alice.last_registered_ms
                                                                   : w->bob.last_registered_ms;
}

static void first_to_answer_is_used(void **state)
{
    (void)state;
    uint64_t seed = sim_seed_or(1500);
    world w;
    two_servers_direct(&w, seed);
    if (!at(&w.alice, &w.s) || !at(&w.bob, &w.s))
        fail_msg("seed %llu: not registered at the nearer server", (unsigned long long)seed);
    assert_int_equal(w.alice.registrations, 1);
    punch_agent_stats st;
    punch_agent_stats_get(w.alice.agent, &st);
    assert_int_equal(st.server_failovers, 0);
    world_free(&w);
}

/* The first server dies at t: both peers are at the second within the
 * bound, and alice's datagrams to bob, one every 100 ms through it all,
 * all arrive on the direct path that never changed. */
static void server_dies_direct_session_goes_on(void **state)
{
    (void)state;
    uint64_t seed = sim_seed_or(1501);
    world w;
    two_servers_direct(&w, seed);
    unsigned alice_changes = w.alice.path_changes, bob_changes = w.bob.path_changes;
    uint64_t t = now_ms(&w);
    w.s.down = true;
    unsigned sent = 0;
    for (; sent < 100; sent++) {
        char msg[8];
        int len = snprintf(msg, sizeof(msg), "#%u", sent + 1);
        assert_int_equal(punch_agent_send(w.alice.agent, now_ms(&w), w.alice.peer,
                                          (const uint8_t *)msg, (size_t)len),
                         0);
        node_flush(&w.alice);
        punch_sim_run(w.sim, punch_sim_now(w.sim) + 100 * MS);
    }
    uint64_t moved = until_both_at(&w, &w.s2, 1);
    if (moved == UINT64_MAX)
        fail_msg("seed %llu: not both at the second server 10 s after the first died "
                 "(alice at %d, bob at %d)",
                 (unsigned long long)seed, at(&w.alice, &w.s2), at(&w.bob, &w.s2));
    fprintf(stderr, "failover: registered at the second server %llu ms after the first died\n",
            (unsigned long long)(moved - t));
    if (moved - t > FAILOVER_BOUND_MS)
        fail_msg("seed %llu: failover took %llu ms (bound %d)", (unsigned long long)seed,
                 (unsigned long long)(moved - t), FAILOVER_BOUND_MS);
    punch_agent_stats st;
    punch_agent_stats_get(w.alice.agent, &st);
    assert_int_equal(st.server_failovers, 1);
    unsigned got = 0;
    for (unsigned i = 1; i <= sent; i++)
        got += w.bob.counts[i] == 1;
    if (got != sent || w.bob.closed_count || w.alice.closed_count ||
        w.alice.path_changes != alice_changes || w.bob.path_changes != bob_changes)
        fail_msg("seed %llu: the direct session was disturbed: %u of %u datagrams, closed %u/%u, "
                 "path changes alice %u (was %u) bob %u (was %u)",
                 (unsigned long long)seed, got, sent, w.alice.closed_count, w.bob.closed_count,
                 w.alice.path_changes, alice_changes, w.bob.path_changes, bob_changes);
    world_free(&w);
}

/* After the failover, a new peer (carol, public, who knows both servers)
 * finds the first dead, registers at the second and reaches bob there. */
static void new_connect_through_the_second(void **state)
{
    (void)state;
    uint64_t seed = sim_seed_or(1502);
    world w;
    two_servers_direct(&w, seed);
    w.s.down = true;
    if (until_both_at(&w, &w.s2, 10000) == UINT64_MAX)
        fail_msg("seed %llu: no failover", (unsigned long long)seed);
    int l;
    add_peer(&w, &w.carol, "carol", v4(203, 0, 113, 50, 6000), w.router, false, 0, &l);
    for (int i = 0; i < 100 && !w.carol.registered; i++)
        punch_sim_run(w.sim, punch_sim_now(w.sim) + 100 * MS);
    if (!at(&w.carol, &w.s2))
        fail_msg("seed %llu: carol not registered at the second server", (unsigned long long)seed);
    w.carol.peer = punch_agent_connect(w.carol.agent, now_ms(&w), "bob", NULL);
    assert_true(w.carol.peer >= 0);
    node_flush(&w.carol);
    for (int i = 0; i < 50 && !(w.carol.have_path && w.carol.kind == PUNCH_PATH_DIRECT); i++)
        punch_sim_run(w.sim, punch_sim_now(w.sim) + 100 * MS);
    if (!w.carol.have_path || w.carol.kind != PUNCH_PATH_DIRECT)
        fail_msg("seed %llu: carol has no direct path to bob (%s)", (unsigned long long)seed,
                 w.carol.closed);
    world_free(&w);
}

/* A session on the first server's relay (--relay-only) moves to the
 * second's when the first dies, and carries data again. */
static void relayed_session_moves(void **state)
{
    (void)state;
    uint64_t seed = sim_seed_or(1503);
    world w;
    world_start(&w, seed);
    world_add_server(&w);
    w.agent_flags = PUNCH_AGENT_RELAY_ONLY;
    different_nats(&w, "port-restricted-cone", "port-restricted-cone", 0);
    if (register_and_connect(&w) == UINT64_MAX)
        fail_msg("seed %llu: not registered", (unsigned long long)seed);
    for (int i = 0; i < 50 && !(w.alice.have_path && w.bob.have_path); i++)
        punch_sim_run(w.sim, punch_sim_now(w.sim) + 100 * MS);
    if (!w.alice.have_path || w.alice.kind != PUNCH_PATH_RELAY ||
        !punch_addr_equal(&w.alice.path_remote, &w.s.addr))
        fail_msg("seed %llu: not on the first server's relay", (unsigned long long)seed);
    uint64_t t = now_ms(&w);
    w.s.down = true;
    uint64_t end = t + 15000;
    while (now_ms(&w) < end &&
           !(punch_addr_equal(&w.alice.path_remote, &w.s2.addr) &&
             punch_addr_equal(&w.bob.path_remote, &w.s2.addr)))
        punch_sim_run(w.sim, punch_sim_now(w.sim) + 10 * MS);
    if (!punch_addr_equal(&w.alice.path_remote, &w.s2.addr) ||
        !punch_addr_equal(&w.bob.path_remote, &w.s2.addr))
        fail_msg("seed %llu: the relayed session did not move within 15 s", (unsigned long long)seed);
    fprintf(stderr, "relay moved to the second server %llu ms after the first died\n",
            (unsigned long long)(now_ms(&w) - t));
    w.bob.got[0] = '\0';
    assert_int_equal(punch_agent_send(w.alice.agent, now_ms(&w), w.alice.last_peer,
                                      (const uint8_t *)"after", 5),
                     0);
    node_flush(&w.alice);
    punch_sim_run(w.sim, punch_sim_now(w.sim) + 500 * MS);
    assert_string_equal(w.bob.got, "after");
    world_free(&w);
}

/* TCP paths (punch connect --tcp) after a failover: the STUN request that
 * tells a TCP port's public endpoint goes to the second server, and the
 * path comes up by TCP simultaneous open. */
static void tcp_path_after_failover(void **state)
{
    (void)state;
    uint64_t seed = sim_seed_or(1504);
    world w;
    world_start(&w, seed);
    world_add_server(&w);
    w.tcp_paths = true;
    w.tcp_asker = &w.alice;
    different_nats(&w, "port-restricted-cone", "port-restricted-cone", 0);
    if (until_both_at(&w, &w.s, 10000) == UINT64_MAX)
        fail_msg("seed %llu: not registered at the first server", (unsigned long long)seed);
    w.s.down = true;
    if (until_both_at(&w, &w.s2, 10000) == UINT64_MAX)
        fail_msg("seed %llu: no failover", (unsigned long long)seed);
    assert_true(register_and_connect(&w) != UINT64_MAX);
    for (int i = 0; i < 150 && !(w.alice.kind == PUNCH_PATH_DIRECT &&
                                 w.alice.technique == PUNCH_TECH_TCP_SIMOPEN);
         i++)
        punch_sim_run(w.sim, punch_sim_now(w.sim) + 100 * MS);
    if (w.alice.kind != PUNCH_PATH_DIRECT || w.alice.technique != PUNCH_TECH_TCP_SIMOPEN)
        fail_msg("seed %llu: no TCP path after the failover (%s; '%s')", (unsigned long long)seed,
                 punch_technique_name(w.alice.technique), w.alice.attempt);
    world_free(&w);
}

/* Over 30 seeds, the first server dying at moments spread over a probe
 * period: from its death to both peers registered at the second, each
 * within the bound; the median and the worst printed. */
static void failover_times_over_seeds(void **state)
{
    (void)state;
    enum { RUNS = 30 };
    uint64_t took[RUNS];
    for (unsigned r = 0; r < RUNS; r++) {
        world w;
        two_servers_direct(&w, 1600 + r);
        /* The death at another moment of the probes' second each run. */
        punch_sim_run(w.sim, punch_sim_now(w.sim) + (r * 97 % 1000) * MS);
        uint64_t t = now_ms(&w);
        w.s.down = true;
        uint64_t moved = until_both_at(&w, &w.s2, 10000);
        if (moved == UINT64_MAX || moved - t > FAILOVER_BOUND_MS)
            fail_msg("seed %u: failover took %llu ms", 1600 + r,
                     moved == UINT64_MAX ? 0ull : (unsigned long long)(moved - t));
        took[r] = moved - t;
        world_free(&w);
    }
    for (unsigned i = 1; i < RUNS; i++)
        for (unsigned j = i; j > 0 && took[j - 1] > took[j]; j--) {
            uint64_t x = took[j];
            took[j] = took[j - 1];
            took[j - 1] = x;
        }
    fprintf(stderr, "failover over %d seeds: median %llu ms, best %llu, worst %llu (bound %d)\n",
            RUNS, (unsigned long long)took[RUNS / 2], (unsigned long long)took[0],
            (unsigned long long)took[RUNS - 1], FAILOVER_BOUND_MS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(first_to_answer_is_used),
        cmocka_unit_test(server_dies_direct_session_goes_on),
        cmocka_unit_test(new_connect_through_the_second),
        cmocka_unit_test(relayed_session_moves),
        cmocka_unit_test(tcp_path_after_failover),
        cmocka_unit_test(failover_times_over_seeds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
