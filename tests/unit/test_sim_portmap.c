/* SPDX-License-Identifier: MIT */
/*
 * Port mapping (technique portmap, issue 10) in the simulator: alice and
 * bob behind NATs that give every destination a random port, so no hole
 * punching can work. When the NAT in front of either one answers PCP,
 * NAT-PMP or UPnP (a port forward, src/nat/portfwd.c), the agent there
 * gets a mapping, offers it, and both sides go direct by portmap, the
 * data through; when neither does, they stay on the relay and the
 * attempt says why. Where hole punching works too (two direct paths of
 * one rank), an idle session keeps the path it has. Several seeds each; a
 * failure prints its seed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "sim/world.h"

static const uint64_t seeds[] = {1, 2, 3, 42, 1234};

/* Both behind NATs of nat_spec, portmap auto, the gateways offering a
 * (alice's) and b (bob's); alice asks for bob. Returns when she asked. */
static uint64_t connect_via(world *w, uint64_t seed, const char *nat_spec, punch_portmap_proto a,
                            punch_portmap_proto b)
{
    world_start(w, seed);
    w->portmap = PUNCH_PORTMAP_AUTO;
    w->alice.gateway_offers = a;
    w->bob.gateway_offers = b;
    different_nats(w, nat_spec, nat_spec, 0);
    uint64_t t0 = register_and_connect(w);
    if (t0 == UINT64_MAX)
        fail_msg("seed %llu: did not register", (unsigned long long)seed);
    return t0;
}

/* Both behind symmetric-random NATs; 8 s after alice asked for bob. */
static uint64_t run(world *w, uint64_t seed, punch_portmap_proto a, punch_portmap_proto b)
{
    uint64_t t0 = connect_via(w, seed, "symmetric-random", a, b);
    punch_sim_run(w->sim, punch_sim_now(w->sim) + 8000 * MS);
    return t0;
}

static void send_both_ways(world *w)
{
    uint64_t now = punch_sim_now(w->sim) / MS;
    assert_int_equal(punch_agent_send(w->alice.agent, now, w->alice.peer, (const uint8_t *)"#3", 2), 0);
    assert_int_equal(punch_agent_send(w->bob.agent, now, w->bob.peer, (const uint8_t *)"#4", 2), 0);
    node_flush(&w->alice);
    node_flush(&w->bob);
    punch_sim_wake(w->sim, w->alice.host);
    punch_sim_wake(w->sim, w->bob.host);
    punch_sim_run(w->sim, punch_sim_now(w->sim) + 500 * MS);
}

/* Both behind port-restricted cones whose gateways answer PCP: hole
 * punching and the mapping both work, two direct paths of one rank. The
 * session idles (keepalives only) from 10 s to 30 s: no path changes then.
 * An idle path is quiet at every keepalive, and it used to hand the
 * session to the other path at each (7-8 PATH events in those 20 s). */
static void idle_session_keeps_its_path(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
        world w;
        uint64_t t0 = connect_via(&w, seeds[i], "port-restricted-cone", PUNCH_PORTMAP_PCP,
                                  PUNCH_PORTMAP_PCP);
        punch_sim_run(w.sim, (t0 + 10000) * MS);
        unsigned alice = w.alice.path_changes, bob = w.bob.path_changes;
        punch_sim_run(w.sim, (t0 + 30000) * MS);
        if (w.alice.kind != PUNCH_PATH_DIRECT || w.bob.kind != PUNCH_PATH_DIRECT)
            fail_msg("seed %llu: not direct at 30 s", (unsigned long long)seeds[i]);
        if (w.alice.path_changes != alice || w.bob.path_changes != bob)
            fail_msg("seed %llu: idle from 10 s to 30 s, alice's path changed %u times, bob's %u",
                     (unsigned long long)seeds[i], w.alice.path_changes - alice,
                     w.bob.path_changes - bob);
        world_free(&w);
    }
}

static void direct_with_a_mapping_on_either_side(void **state)
{
    (void)state;
    static const struct { punch_portmap_proto a, b; const char *what; } cases[] = {
        {PUNCH_PORTMAP_PCP, PUNCH_PORTMAP_OFF, "PCP at alice's NAT"},
        {PUNCH_PORTMAP_NATPMP, PUNCH_PORTMAP_OFF, "NAT-PMP at alice's NAT"},
        {PUNCH_PORTMAP_UPNP, PUNCH_PORTMAP_OFF, "UPnP at alice's NAT"},
        {PUNCH_PORTMAP_OFF, PUNCH_PORTMAP_PCP, "PCP at bob's NAT"},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++)
        for (size_t s = 0; s < sizeof(seeds) / sizeof(seeds[0]); s++) {
            world w;
            uint64_t t0 = run(&w, seeds[s], cases[k].a, cases[k].b);
            const node *mapped = cases[k].a ? &w.alice : &w.bob;
            if (mapped->portmaps != 1)
                fail_msg("%s, seed %llu: %u mappings obtained", cases[k].what,
                         (unsigned long long)seeds[s], mapped->portmaps);
            if (w.alice.kind != PUNCH_PATH_DIRECT || w.alice.technique != PUNCH_TECH_PORTMAP ||
                w.bob.kind != PUNCH_PATH_DIRECT || w.bob.technique != PUNCH_TECH_PORTMAP)
                fail_msg("%s, seed %llu: alice %s/%s, bob %s/%s, want direct/portmap",
                         cases[k].what, (unsigned long long)seeds[s],
                         punch_path_kind_name(w.alice.kind), punch_technique_name(w.alice.technique),
                         punch_path_kind_name(w.bob.kind), punch_technique_name(w.bob.technique));
            send_both_ways(&w);
            assert_int_equal(w.bob.counts[3], 1);
            assert_int_equal(w.alice.counts[4], 1);
            if (s == 0)
                print_message("%-24s direct by portmap %llu ms after alice asked\n", cases[k].what,
                              (unsigned long long)(w.alice.first_direct_ms - t0));
            world_free(&w);
        }
}

/* The mapping comes while the REGISTER is on its way (the gateway a few
 * round trips of 10-50 ms away, NAT-PMP's two exchanges after PCP's
 * refusal): the agent registers again once that REGISTER is answered, so
 * the peer learns the mapping at once, not at the keepalive 6 s later. */
static void mapping_during_registration_is_told(void **state)
{
    (void)state;
    for (uint64_t rtt = 10; rtt <= 50; rtt += 10)
        for (size_t s = 0; s < sizeof(seeds) / sizeof(seeds[0]); s++) {
            world w;
            world_start(&w, seeds[s]);
            w.portmap = PUNCH_PORTMAP_AUTO;
            w.alice.gateway_offers = PUNCH_PORTMAP_NATPMP;
            w.alice.gateway_rtt_ms = rtt;
            different_nats(&w, "symmetric-random", "symmetric-random", 0);
            uint64_t t0 = register_and_connect(&w);
            assert_true(t0 != UINT64_MAX);
            punch_sim_run(w.sim, punch_sim_now(w.sim) + 3000 * MS);
            if (w.alice.portmaps != 1 || !w.alice.first_direct_ms ||
                w.alice.first_direct_technique != PUNCH_TECH_PORTMAP ||
                w.alice.first_direct_ms - t0 > 1000)
                fail_msg("gateway %llu ms away, seed %llu: %u mappings, first direct path %s "
                         "%lld ms after asking, want portmap within 1000 ms",
                         (unsigned long long)rtt, (unsigned long long)seeds[s], w.alice.portmaps,
                         punch_technique_name(w.alice.first_direct_technique),
                         w.alice.first_direct_ms ? (long long)(w.alice.first_direct_ms - t0) : -1);
            world_free(&w);
        }
}

static void relay_without_one(void **state)
{
    (void)state;
    for (size_t s = 0; s < sizeof(seeds) / sizeof(seeds[0]); s++) {
        world w;
        run(&w, seeds[s], PUNCH_PORTMAP_OFF, PUNCH_PORTMAP_OFF);
        if (w.alice.kind != PUNCH_PATH_RELAY || w.bob.kind != PUNCH_PATH_RELAY)
            fail_msg("seed %llu: alice %s, bob %s, want the relay", (unsigned long long)seeds[s],
                     punch_path_kind_name(w.alice.kind), punch_path_kind_name(w.bob.kind));
        assert_int_equal(w.alice.portmaps + w.bob.portmaps, 0);
        assert_non_null(strstr(w.alice.attempt_by[PUNCH_TECH_PORTMAP], "no answer"));
        world_free(&w);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(idle_session_keeps_its_path),
        cmocka_unit_test(direct_with_a_mapping_on_either_side),
        cmocka_unit_test(mapping_during_registration_is_told),
        cmocka_unit_test(relay_without_one),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
