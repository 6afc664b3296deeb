/* SPDX-License-Identifier: MIT */
/*
 * The peer agent in the wild (issue 10), in the simulator, seeded:
 *  - a punchd on one address: its second port tells a NAT with random
 *    ports from a cone, and many-port probing goes direct; without the
 *    second port the behaviour stays unknown and the agent tries
 *    many-port probing anyway once hole punching found nothing;
 *  - loss on the access links: registration and the first direct path
 *    within the targets, over many seeds;
 *  - a peer's first flight leaves at its start (no HELLO held back);
 *  - a listener runs many-port probing for peer after peer (its extra
 *    sockets come back when a run ends).
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

static bool replay(uint64_t *seed)
{
    const char *env = getenv("PUNCH_SIM_SEED");
    if (env)
        *seed = strtoull(env, NULL, 0);
    return env != NULL;
}

static void sort_u64(uint64_t *v, unsigned n)
{
    for (unsigned i = 1; i < n; i++)
        for (unsigned j = i; j > 0 && v[j - 1] > v[j]; j--) {
            uint64_t t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
}

static bool direct_by_birthday(const world *w)
{
    return w->alice.have_path && w->bob.have_path && w->alice.kind == PUNCH_PATH_DIRECT &&
           w->bob.kind == PUNCH_PATH_DIRECT &&
           (w->alice.technique == PUNCH_TECH_BIRTHDAY || w->bob.technique == PUNCH_TECH_BIRTHDAY);
}

/* Alice behind a NAT with random ports, Bob behind a port-restricted cone,
 * the server of this kind: over `runs` seeds, how many end direct by
 * birthday (the median time to it in *median_ms). */
static unsigned random_vs_cone(world_server_kind kind, unsigned runs, uint64_t first_seed,
                               const char *want_nat_alice, const char *want_nat_bob,
                               uint64_t *median_ms)
{
    uint64_t took[64];
    unsigned direct = 0;
    uint64_t one;
    bool single = replay(&one);
    for (unsigned r = 0; r < (single ? 1 : runs) && r < 64; r++) {
        world w;
        world_start_with(&w, single ? one : first_seed + r, kind);
        different_nats(&w, "symmetric-random", "port-restricted-cone", 0);
        uint64_t t0 = register_and_connect(&w);
        if (t0 == UINT64_MAX)
            fail_msg("seed %llu: not registered", (unsigned long long)w.seed);
        if (strcmp(w.alice.nat, want_nat_alice) != 0 || strcmp(w.bob.nat, want_nat_bob) != 0)
            fail_msg("seed %llu: nat alice %s (want %s), bob %s (want %s)",
                     (unsigned long long)w.seed, w.alice.nat, want_nat_alice, w.bob.nat,
                     want_nat_bob);
        punch_sim_run(w.sim, punch_sim_now(w.sim) + 12000 * MS);
        if (direct_by_birthday(&w))
            took[direct++] = w.alice.first_direct_ms - t0;
        world_free(&w);
    }
    sort_u64(took, direct);
    *median_ms = direct ? took[direct / 2] : 0;
    return direct;
}

/* punchd on one address with its second port (the default): Alice's NAT
 * is found to map per destination with random ports, Bob's to map
 * endpoint-independently, and many-port probing goes direct. */
static void one_address_server_goes_direct(void **state)
{
    (void)state;
    uint64_t median, unused;
    const unsigned runs = 40;
    unsigned direct = random_vs_cone(WORLD_SERVER_SECOND_PORT, runs, 2000, "apdm", "eim", &median);
    fprintf(stderr, "one address, second port: random x port-restricted cone: %u/%u direct by "
                    "birthday, median %llu ms\n",
            direct, runs, (unsigned long long)median);
    if (!replay(&unused))
        assert_true(direct * 100 >= 90 * runs);
}

/* Without the second port both register as unknown, and many-port probing
 * starts anyway once hole punching has found nothing for a second, each
 * side saying so. Both unknown, the side whose NAT changed its port (the
 * random one; the cone kept it) opens the sockets, whichever side asked:
 * with the random NAT on the asked side (bob) and on the asking side
 * (alice). Before, the side that was asked always did, and the second
 * case stayed on the relay (docs/nat-matrix.md, "punchd addresses"). */
static void unknown_behaviour_tries_birthday_anyway(void **state)
{
    (void)state;
    uint64_t one;
    bool single = replay(&one);
    const unsigned runs = single ? 1 : 20;
    static const char *const nats[2][2] = {{"port-restricted-cone", "symmetric-random"},
                                           {"symmetric-random", "port-restricted-cone"}};
    for (int k = 0; k < 2; k++) {
        unsigned direct = 0;
        for (unsigned r = 0; r < runs; r++) {
            world w;
            world_start_with(&w, single ? one : 3000 + r, WORLD_SERVER_ONE_PORT);
            different_nats(&w, nats[k][0], nats[k][1], 0);
            uint64_t t0 = register_and_connect(&w);
            if (t0 == UINT64_MAX)
                fail_msg("seed %llu: not registered", (unsigned long long)w.seed);
            assert_string_equal(w.alice.nat, "unknown");
            assert_string_equal(w.bob.nat, "unknown");
            punch_sim_run(w.sim, punch_sim_now(w.sim) + 12000 * MS);
            if (w.alice.birthday_anyway != 1 || w.bob.birthday_anyway != 1)
                fail_msg("seed %llu: 'trying birthday anyway' told %u times by alice, %u by bob",
                         (unsigned long long)w.seed, w.alice.birthday_anyway,
                         w.bob.birthday_anyway);
            if (direct_by_birthday(&w)) {
                direct++;
                /* Not before hole punching had its second. */
                assert_true(w.alice.first_direct_ms - t0 >= 1000);
            }
            world_free(&w);
        }
        fprintf(stderr, "one address, no second port: %s x %s, both unknown: %u/%u direct by "
                "birthday\n", nats[k][0], nats[k][1], direct, runs);
        if (!single)
            assert_true(direct * 100 >= 85 * runs);
    }
}

/* Loss (issue 10): port-restricted cones, LOSS each way on both NATs'
 * uplinks, both peers fresh at t = 0 (alice asks as soon as both are
 * registered): over `runs` seeds, how many have alice on a direct path
 * within target_ms of her start, registration included. */
static unsigned direct_under_loss(double loss, unsigned runs, uint64_t target_ms,
                                  uint64_t *median_ms, uint64_t *max_ms)
{
    uint64_t took[100];
    unsigned within = 0, direct = 0;
    uint64_t one;
    bool single = replay(&one);
    for (unsigned r = 0; r < (single ? 1 : runs) && r < 100; r++) {
        world w;
        world_start(&w, single ? one : 4000 + r);
        different_nats(&w, "port-restricted-cone", "port-restricted-cone", loss);
        /* register_and_connect steps 100 ms: step 5 ms here instead. */
        for (int i = 0; i < 2000 && !(w.alice.registered && w.bob.registered); i++)
            punch_sim_run(w.sim, punch_sim_now(w.sim) + 5 * MS);
        if (w.alice.registered && w.bob.registered) {
            w.alice.peer = punch_agent_connect(w.alice.agent, punch_sim_now(w.sim) / MS, "bob",
                                               NULL);
            node_flush(&w.alice);
            punch_sim_wake(w.sim, w.alice.host);
            punch_sim_run(w.sim, 8000 * MS);
        }
        if (w.alice.first_direct_ms) {
            took[direct++] = w.alice.first_direct_ms;
            within += w.alice.first_direct_ms <= target_ms;
        } else if (single) {
            fprintf(stderr, "seed %llu: no direct path\n", (unsigned long long)w.seed);
        }
        world_free(&w);
    }
    sort_u64(took, direct);
    *median_ms = direct ? took[direct / 2] : 0;
    *max_ms = direct ? took[direct - 1] : 0;
    return within;
}

static void loss_targets(void **state)
{
    (void)state;
    static const struct { double loss; uint64_t target_ms; unsigned pct; } levels[] = {
        {0.10, 2000, 95},
        {0.20, 5000, 90},
    };
    uint64_t unused;
    const unsigned runs = 100;
    for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
        uint64_t median, max;
        unsigned within = direct_under_loss(levels[i].loss, runs, levels[i].target_ms, &median,
                                            &max);
        fprintf(stderr, "loss %.0f%%: %u/%u direct within %llu ms of start, median %llu ms, "
                        "max %llu ms\n",
                levels[i].loss * 100, within, runs, (unsigned long long)levels[i].target_ms,
                (unsigned long long)median, (unsigned long long)max);
        if (!replay(&unused))
            assert_true(within * 100 >= levels[i].pct * runs);
    }
}

/* Loss as the lab measures it (lab/tests/loss.sh): bob registered long
 * before, listening; a fresh alice (not registered yet) asks for him at
 * her start. Returns the time from her start to her first direct path
 * (ms), UINT64_MAX when none within limit_ms. */
static uint64_t fresh_connect_ms(uint64_t seed, double loss, uint64_t limit_ms)
{
    world w;
    int l;
    world_start(&w, seed);
    int na = nat_on_core(&w, "port-restricted-cone", v4(203, 0, 113, 10, 0), 0);
    int nb = nat_on_core(&w, "port-restricted-cone", v4(203, 0, 113, 20, 0), 0);
    add_peer(&w, &w.bob, "bob", v4(10, 0, 2, 2, 5000), nb, true, loss, &l);
    for (int i = 0; i < 300 && !w.bob.registered; i++)
        punch_sim_run(w.sim, punch_sim_now(w.sim) + 100 * MS);
    /* Registered, then a while later alice starts. */
    punch_sim_run(w.sim, punch_sim_now(w.sim) + 1000 * MS);
    uint64_t t0 = punch_sim_now(w.sim) / MS;
    add_peer(&w, &w.alice, "alice", v4(10, 0, 1, 2, 5000), na, true, loss, &l);
    w.alice.peer = punch_agent_connect(w.alice.agent, t0, "bob", NULL);
    node_flush(&w.alice);
    punch_sim_wake(w.sim, w.alice.host);
    punch_sim_run(w.sim, (t0 + limit_ms) * MS);
    uint64_t took = w.alice.first_direct_ms ? w.alice.first_direct_ms - t0 : UINT64_MAX;
    if (!w.bob.registered)
        fail_msg("seed %llu: bob not registered", (unsigned long long)seed);
    world_free(&w);
    return took;
}

/* Issue 10's targets as lab.loss measures them, over 200 seeds per level,
 * with margin: 10 % loss -> >= 95 % direct within 2 s asked, 20 % -> >= 90 %
 * within 5 s asked; >= 99 % within 1 s here at both (with the RTO doubling
 * from the first try, 20 % had 5 of these 200 runs past 1 s, up to 2.7 s).
 * Seeds 6000.. (PUNCH_SIM_SEED replays one, printing its time). */
static void fresh_connects_under_loss(void **state)
{
    (void)state;
    static const struct {
        double loss;
        uint64_t target_ms, tight_ms;
        unsigned tight_pct;
    } levels[] = {
        {0.10, 2000, 1000, 99},
        {0.20, 5000, 1000, 99},
    };
    enum { RUNS = 200 };
    uint64_t one;
    bool single = replay(&one);
    const unsigned runs = single ? 1 : RUNS;
    uint64_t took[RUNS];
    for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
        unsigned within = 0, tight = 0;
        for (unsigned r = 0; r < runs; r++) {
            uint64_t seed = single ? one : 6000 + r;
            took[r] = fresh_connect_ms(seed, levels[i].loss, levels[i].target_ms + 1000);
            within += took[r] <= levels[i].target_ms;
            tight += took[r] <= levels[i].tight_ms;
            if (took[r] > levels[i].tight_ms)
                fprintf(stderr, "  loss %.0f%%, seed %llu: %llu ms\n", levels[i].loss * 100,
                        (unsigned long long)seed, (unsigned long long)took[r]);
        }
        sort_u64(took, runs);
        fprintf(stderr, "fresh connect, loss %.0f%% each way on both access links: %u/%u direct "
                        "within %llu ms, %u within %llu ms; median %llu ms, p95 %llu ms, max %llu ms\n",
                levels[i].loss * 100, within, runs, (unsigned long long)levels[i].target_ms, tight,
                (unsigned long long)levels[i].tight_ms, (unsigned long long)took[runs / 2],
                (unsigned long long)took[runs * 95 / 100], (unsigned long long)took[runs - 1]);
        if (single)
            continue;
        assert_true(within * 100 >= 99 * runs);
        assert_true(tight * 100 >= levels[i].tight_pct * runs);
    }
}

/* A peer that vanishes without a goodbye (its CLOSE lost: loss, or it
 * died) is forgotten once nothing came from it on any path for 60 s, so
 * it does not hold a slot for ever: a listener met that in lab.loss,
 * where lost goodbyes piled up in its 16 slots. Not before, though: its
 * path dies after three keepalives and the relay takes over first. */
static void vanished_peer_is_forgotten(void **state)
{
    (void)state;
    world w;
    world_start(&w, 77);
    different_nats(&w, "port-restricted-cone", "port-restricted-cone", 0);
    uint64_t t0 = register_and_connect(&w);
    assert_true(t0 != UINT64_MAX);
    punch_sim_run(w.sim, punch_sim_now(w.sim) + 2000 * MS);
    assert_true(w.bob.have_path && w.bob.kind == PUNCH_PATH_DIRECT);
    w.alice.gone = true;
    uint64_t gone_at = punch_sim_now(w.sim) / MS;
    punch_sim_run(w.sim, (gone_at + 58000) * MS);
    assert_int_equal(w.bob.closed_count, 0);
    punch_sim_run(w.sim, (gone_at + 64000) * MS);
    if (w.bob.closed_count != 1 || !strstr(w.bob.closed, "nothing heard from the peer in"))
        fail_msg("bob closed %u times, last '%s'", w.bob.closed_count, w.bob.closed);
    fprintf(stderr, "a vanished peer: bob forgot it (\"%s\")\n", w.bob.closed);
    world_free(&w);
}

/* Linux's conntrack trap (issue 10; trap=on in the NAT model, as
 * `conntrack -L` shows on a kernel NAT with no input firewall): two
 * port-restricted cones whose hosts are loaded, up to TRAP_JITTER_MS late
 * with what they send (jitter on their access links). Now and then a
 * host's low-TTL opener leaves its NAT after the peer's full probe came in:
 * the NAT takes that probe for itself, and the host's flow to the peer is
 * given another port, which the peer's NAT drops, for as long as the peer
 * keeps probing. Fresh connects as in the lab (bob registered first, a
 * fresh alice asks at her start) over `runs` seeds: how many have alice
 * direct within limit_ms (median in *median_ms). */
#define TRAP_JITTER_MS 12
/* One such connect with seed; returns how long alice took to go direct
 * (UINT64_MAX: not within limit_ms), adds the NATs' trap escapes. */
static uint64_t direct_through_trap(uint64_t seed, uint64_t limit_ms, uint64_t *escapes)
{
    world w;
    int l;
    world_start(&w, seed);
    w.wan_no_delay = true; /* the lab's shape: 10 ms between each host and its NAT */
    w.access_delay_us = 10 * MS;
    w.access_jitter_us = TRAP_JITTER_MS * MS;
    const char *spec = "port-restricted-cone,trap=on";
    int na = nat_on_core(&w, spec, v4(203, 0, 113, 10, 0), 0);
    int nb = nat_on_core(&w, spec, v4(203, 0, 113, 20, 0), 0);
    add_peer(&w, &w.bob, "bob", v4(10, 0, 2, 2, 5000), nb, true, 0, &l);
    for (int i = 0; i < 300 && !w.bob.registered; i++)
        punch_sim_run(w.sim, punch_sim_now(w.sim) + 100 * MS);
    punch_sim_run(w.sim, punch_sim_now(w.sim) + 1000 * MS);
    uint64_t t0 = punch_sim_now(w.sim) / MS;
    add_peer(&w, &w.alice, "alice", v4(10, 0, 1, 2, 5000), na, true, 0, &l);
    w.alice.peer = punch_agent_connect(w.alice.agent, t0, "bob", NULL);
    node_flush(&w.alice);
    punch_sim_wake(w.sim, w.alice.host);
    punch_sim_run(w.sim, (t0 + limit_ms) * MS);
    *escapes += punch_nat_counters_get(punch_sim_nat(w.sim, na))->trap_escapes +
                punch_nat_counters_get(punch_sim_nat(w.sim, nb))->trap_escapes;
    uint64_t took = w.alice.first_direct_ms && w.alice.first_direct_ms - t0 <= limit_ms
                        ? w.alice.first_direct_ms - t0
                        : UINT64_MAX;
    if (took == UINT64_MAX)
        fprintf(stderr, "seed %llu: no direct path within %llu ms\n", (unsigned long long)seed,
                (unsigned long long)limit_ms);
    world_free(&w);
    return took;
}

/* Fresh connects as in the lab (bob registered first, a fresh alice asks
 * at her start) over `runs` seeds from first_seed: how many have alice
 * direct within limit_ms (median and max in *median_ms, *max_ms). */
static unsigned direct_through_traps(unsigned runs, uint64_t first_seed, uint64_t limit_ms,
                                     uint64_t *median_ms, uint64_t *max_ms, uint64_t *escapes)
{
    uint64_t took[100], one;
    unsigned direct = 0;
    bool single = replay(&one);
    *escapes = 0;
    for (unsigned r = 0; r < (single ? 1 : runs) && r < 100; r++) {
        uint64_t t = direct_through_trap(single ? one : first_seed + r, limit_ms, escapes);
        if (t != UINT64_MAX)
            took[direct++] = t;
    }
    sort_u64(took, direct);
    *median_ms = direct ? took[direct / 2] : 0;
    *max_ms = direct ? took[direct - 1] : 0;
    return direct;
}

/* Every fresh connect through two trapping NATs goes direct within 4 s,
 * however late a loaded host's opener leaves: once hole punching has
 * found nothing, many-port probing from fresh sockets (birthday.c), and
 * when that finds nothing either (the ports side was the trapped one),
 * again with the sides swapped. Before, 44 of these 60 seeds were direct
 * (16 trapped, on the relay); with one round of many-port probing, 53. */
static void conntrack_trap_goes_direct(void **state)
{
    (void)state;
    uint64_t median, max, escapes, unused;
    const unsigned runs = 60;
    unsigned direct = direct_through_traps(runs, 9000, 4000, &median, &max, &escapes);
    fprintf(stderr, "conntrack trap, hosts up to %d ms late: %u/%u direct within 4 s, median "
                    "%llu ms, max %llu ms; %llu flows moved by a trap\n",
            TRAP_JITTER_MS, direct, runs, (unsigned long long)median, (unsigned long long)max,
            (unsigned long long)escapes);
    if (!replay(&unused)) {
        assert_true(escapes > 0); /* the trap was sprung: the test can fail */
        assert_int_equal(direct, runs);
    }
}

/* Seeds of the same world where the one round that can work (the probes
 * from the side whose NAT holds no trap) missed all 256 sockets with its
 * 1024 probes (1.7 % of the time): with one swap of sides they stayed on
 * the relay for good (60 s); with three (birthday.c BIRTHDAY_TRAP_SWAPS)
 * the next round that can work goes direct. */
static void conntrack_trap_missed_round_again(void **state)
{
    (void)state;
    const uint64_t seeds[] = {9160, 9183, 9191, 9216, 9231};
    const size_t n = sizeof(seeds) / sizeof(seeds[0]);
    uint64_t escapes = 0, worst = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t took = direct_through_trap(seeds[i], 6000, &escapes);
        if (took == UINT64_MAX)
            fail_msg("seed %llu: no direct path within 6 s", (unsigned long long)seeds[i]);
        worst = took > worst ? took : worst;
    }
    assert_true(escapes > 0);
    fprintf(stderr, "conntrack trap, a missed round: %zu/%zu direct, the last at %llu ms\n", n, n,
            (unsigned long long)worst);
}

/* A peer's first flight (HELLO and its STUN requests) leaves when its
 * agent is made, as the driver sends it (punch_driver_new flushes), and
 * registration takes its three round trips to the server: HELLO -> COOKIE,
 * REGISTER -> REGISTERED, and the REGISTER that tells what discovery found
 * (RFC 5780: the second address is known from the first answer). Before,
 * the world left that flight in the agent's queue until the first
 * retransmission, 250 ms on: every world registered at 312 ms or later,
 * as if each first HELLO had been lost. */
static void first_flight_leaves_at_start(void **state)
{
    (void)state;
    /* One round trip to the server: access link 0.2 ms, the NAT's uplink
     * 10 ms (+ up to 1 ms jitter), the server's link 5 ms, each way. */
    const uint64_t rtt_ms = 2 * (1 + 11 + 5);
    for (uint64_t seed = 1; seed <= 20; seed++) {
        world w;
        world_start(&w, seed);
        different_nats(&w, "port-restricted-cone", "port-restricted-cone", 0);
        /* Both HELLOs are on their links at t = 0, before any timer. */
        assert_true(punch_sim_counters_get(w.sim)->sent >= 2);
        for (int i = 0; i < 100 && !(w.alice.registered && w.bob.registered); i++)
            punch_sim_run(w.sim, punch_sim_now(w.sim) + 1 * MS);
        if (!w.alice.registered || !w.bob.registered || w.alice.registered_ms > 3 * rtt_ms ||
            w.bob.registered_ms > 3 * rtt_ms)
            fail_msg("seed %llu: registered at %llu ms (alice), %llu ms (bob); bound 3 round "
                     "trips, %llu ms", (unsigned long long)seed,
                     (unsigned long long)w.alice.registered_ms,
                     (unsigned long long)w.bob.registered_ms, (unsigned long long)(3 * rtt_ms));
        if (seed == 1)
            fprintf(stderr, "first flight at t = 0: registered at %llu ms (alice), %llu ms "
                            "(bob); 3 round trips to the server <= %llu ms\n",
                    (unsigned long long)w.alice.registered_ms,
                    (unsigned long long)w.bob.registered_ms, (unsigned long long)(3 * rtt_ms));
        world_free(&w);
    }
}

/* One more peer for a listener: alice's program starts again as peer
 * `round` (a name and key of its own), the last one saying goodbye or
 * vanishing without, and asks for bob at once. Returns the time to her
 * first direct path (ms; UINT64_MAX: none within 5 s). */
static uint64_t next_peer_connects(world *w, unsigned round, bool goodbye)
{
    snprintf(w->alice.name, sizeof(w->alice.name), "peer%u", round);
    w->alice.secret[1] = (uint8_t)round; /* byte 0 loses its low bits to X25519 clamping */
    w->alice.gone = !goodbye;
    node_restart(w, &w->alice, NULL);
    w->alice.gone = false;
    uint64_t t0 = punch_sim_now(w->sim) / MS;
    w->alice.peer = punch_agent_connect(w->alice.agent, t0, "bob", NULL);
    assert_true(w->alice.peer >= 0);
    node_flush(&w->alice);
    punch_sim_wake(w->sim, w->alice.host);
    for (int i = 0; i < 1200 && !w->alice.first_direct_ms; i++)
        punch_sim_run(w->sim, punch_sim_now(w->sim) + 10 * MS);
    /* A minute between peers: the NAT model keeps a mapping 5 minutes
     * (RFC 4787 REQ-5) and an inside host at most 2048 of them, so eight
     * runs in a row would meet the NAT's limit, not the agent's. */
    punch_sim_run(w->sim, (t0 + 60000) * MS);
    return w->alice.first_direct_ms ? w->alice.first_direct_ms - t0 : UINT64_MAX;
}

/* A listener behind a NAT with random ports (bob; punchd with two
 * addresses, so both behaviours are known) meets twelve peers one after
 * another, each behind a port-restricted cone: for every one bob runs
 * many-port probing again, from BIRTHDAY_SOCKETS (256) fresh sockets, and
 * it goes direct (a run finds a way with some 98 %: at least ten of the
 * twelve). Every other peer vanishes without a goodbye, so bob still holds
 * its session and the socket its path kept; the rest of each run's
 * sockets are given back. Before, they never came back: from the fifth
 * peer on bob had none, and the peer stayed on the relay. */
static void listener_runs_birthday_again(void **state)
{
    (void)state;
    enum { PEERS = 12 };
    uint64_t seed = 11;
    replay(&seed);
    world w;
    world_start(&w, seed);
    different_nats(&w, "port-restricted-cone", "symmetric-random", 0);
    for (int i = 0; i < 100 && !w.bob.registered; i++)
        punch_sim_run(w.sim, punch_sim_now(w.sim) + 10 * MS);
    assert_string_equal(w.bob.nat, "apdm");
    unsigned direct = 0, vanished = 0;
    for (unsigned round = 1; round <= PEERS; round++) {
        unsigned sent_before = w.bob.extra_sent;
        bool goodbye = round % 2 == 0;
        vanished += round > 1 && !goodbye;
        uint64_t took = next_peer_connects(&w, round, goodbye);
        unsigned sockets = w.bob.extra_sent - sent_before;
        bool by_birthday = took != UINT64_MAX &&
                           w.alice.first_direct_technique == PUNCH_TECH_BIRTHDAY;
        direct += by_birthday;
        fprintf(stderr, "listener, peer %u: bob sent %u datagrams from extra sockets; %s after %lld ms; bob "
                        "holds %u extra sockets\n",
                round, sockets, by_birthday ? "direct by birthday" : "not direct by birthday",
                took == UINT64_MAX ? -1LL : (long long)took, w.bob.extra_open);
        if (sockets < 256)
            fail_msg("seed %llu: peer %u: bob did not try birthday (%u datagrams from extra sockets)",
                     (unsigned long long)seed, round, sockets);
    }
    /* Left open: the sockets the vanished peers' paths kept, and the
     * last peer's. */
    uint64_t quota = punch_nat_counters_get(punch_sim_nat(w.sim, 3))->refused_host_quota;
    if (direct < PEERS - 2 || w.bob.extra_open > vanished + 1 || quota)
        fail_msg("seed %llu: %u/%u direct by birthday; bob holds %u extra sockets (at most %u); "
                 "%llu mappings refused by bob's NAT", (unsigned long long)seed, direct, PEERS,
                 w.bob.extra_open, vanished + 1, (unsigned long long)quota);
    fprintf(stderr, "listener: %u/%u peers direct by birthday\n", direct, PEERS);
    world_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(first_flight_leaves_at_start),
        cmocka_unit_test(conntrack_trap_goes_direct),
        cmocka_unit_test(conntrack_trap_missed_round_again),
        cmocka_unit_test(listener_runs_birthday_again),
        cmocka_unit_test(one_address_server_goes_direct),
        cmocka_unit_test(unknown_behaviour_tries_birthday_anyway),
        cmocka_unit_test(loss_targets),
        cmocka_unit_test(fresh_connects_under_loss),
        cmocka_unit_test(vanished_peer_is_forgotten),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
