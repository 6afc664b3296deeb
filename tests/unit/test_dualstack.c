/* SPDX-License-Identifier: MIT */
/*
 * Dual stack (issue 16) in the simulator, seeded: peers with IPv4 behind
 * NATs and IPv6 behind stateful firewalls (src/sim/world_dual.c).
 *  - dual x dual: direct over IPv6 through both firewalls (hole punching
 *    without translation), although IPv4 works too;
 *  - dual x dual with IPv6 much slower: IPv4 stays (the margin is small);
 *  - dual x IPv4-only: direct over IPv4, and no datagram to IPv6;
 *  - IPv6-only x IPv4-only: the relay, which bridges the families;
 *  - the IPv6 path dies mid-session: the session moves to IPv4 direct;
 *  - dual x dual, both routers translating IPv6 prefixes (NPTv6): direct
 *    over IPv6 to the translated addresses, which each side learns from a
 *    STUN Binding request to the server's IPv6 address (second_family.c);
 *  - IPv6-only behind a NAT64 x IPv4-only: direct through the NAT64 (the
 *    agent synthesizes 64:ff9b::/96 addresses, family.c);
 *  - NAT discovery on both families: an IPv4 NAT that maps per destination
 *    beside an IPv6 firewall, each reported as what it is.
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

#define RUNS 8
#define V6_WAN_US (10 * MS) /* as the NATs' WAN links */

static uint64_t seed_of(unsigned run)
{
    return sim_seed_or(1600 + run);
}

static unsigned runs(void)
{
    return getenv("PUNCH_SIM_SEED") ? 1 : RUNS;
}

static const char *family(const punch_addr *a)
{
    return a->family == PUNCH_AF_INET6 ? "ipv6" : a->family == PUNCH_AF_INET ? "ipv4" : "none";
}

/* Connect (alice asks for bob) and run for `ms` of virtual time. */
static void connect_for(world *w, uint64_t ms)
{
    uint64_t t0 = register_and_connect(w);
    if (t0 == UINT64_MAX)
        fail_msg("seed %llu: not registered (alice %d, bob %d)", (unsigned long long)w->seed,
                 w->alice.registered, w->bob.registered);
    punch_sim_run(w->sim, (t0 + ms) * MS);
}

/* Run r's world: alice and bob on these stacks behind NATs of nat_spec,
 * the IPv6 links v6_wan_us one way, connected for ms. */
static void dual_connected(world *w, unsigned r, world_stack alice, world_stack bob,
                           const char *nat_spec, uint64_t v6_wan_us, uint64_t ms)
{
    world_start(w, seed_of(r));
    dual_stack(w, alice, bob, nat_spec, v6_wan_us);
    connect_for(w, ms);
}

/* The same with alice asking for a TCP path (--tcp), both NATs and both
 * firewalls Linux's (a SYN to a closed port answered with RST,
 * rst-close, isn-check). */
static void dual_tcp_connected(world *w, unsigned r, world_stack bob)
{
    world_start(w, seed_of(r));
    w->tcp_paths = true;
    w->tcp_asker = &w->alice;
    dual_stack(w, STACK_DUAL, bob, "port-restricted-cone,syn=rst,rst-close=on,isn-check=on",
               V6_WAN_US);
    connect_for(w, 8000);
}

/* Both sides on a path of this kind whose remote is of this family. */
static void expect_path(const world *w, punch_path_kind kind, uint8_t fam, const char *what)
{
    const node *n[2] = {&w->alice, &w->bob};
    for (int i = 0; i < 2; i++)
        if (!n[i]->have_path || n[i]->kind != kind || n[i]->path_remote.family != fam)
            fail_msg("%s seed %llu: %s has %s path over %s (technique %d), want %s over %s", what,
                     (unsigned long long)w->seed, n[i]->name,
                     !n[i]->have_path ? "no" : n[i]->kind == PUNCH_PATH_DIRECT ? "a direct" : "a relay",
                     family(&n[i]->path_remote), n[i]->technique,
                     kind == PUNCH_PATH_DIRECT ? "direct" : "relay",
                     fam == PUNCH_AF_INET6 ? "ipv6" : "ipv4");
}

/* Alice sends "#seq"; bob counts what arrives (node.counts). */
static void say(world *w, unsigned seq)
{
    char msg[16];
    int len = snprintf(msg, sizeof(msg), "#%u", seq);
    uint64_t now = punch_sim_now(w->sim) / MS;
    punch_agent_send(w->alice.agent, now, w->alice.peer, (const uint8_t *)msg, (size_t)len);
    node_flush(&w->alice);
}

/* Alice says "#seq"; bob must hear it once within ms (what: across what). */
static void bob_hears(world *w, unsigned seq, uint64_t ms, const char *what)
{
    say(w, seq);
    punch_sim_run(w->sim, punch_sim_now(w->sim) + ms * MS);
    if (w->bob.counts[seq] != 1)
        fail_msg("seed %llu: bob heard #%u %u times across %s, want once",
                 (unsigned long long)w->seed, seq, w->bob.counts[seq], what);
}

static void dual_dual_goes_ipv6(void **state)
{
    (void)state;
    for (unsigned r = 0; r < runs(); r++) {
        world w;
        dual_connected(&w, r, STACK_DUAL, STACK_DUAL, "port-restricted-cone", V6_WAN_US, 8000);
        expect_path(&w, PUNCH_PATH_DIRECT, PUNCH_AF_INET6, "dual x dual");
        /* both chose alike: no keepalive found the other gone from a path
         * (at most relay, IPv4, IPv6) */
        if (w.alice.path_changes > 3 || w.bob.path_changes > 3)
            fail_msg("seed %llu: %u and %u path changes", (unsigned long long)w.seed,
                     w.alice.path_changes, w.bob.path_changes);
        assert_int_equal(w.alice.technique, PUNCH_TECH_HOLE_PUNCH);
        assert_memory_equal(w.alice.path_remote.ip, w.bob.addr6.ip, 16);
        bob_hears(&w, 1, 200, "two firewalls");
        world_free(&w);
    }
    fprintf(stderr, "dual x dual: direct over IPv6 through two firewalls, %u seeds\n", runs());
}

/* Dual x dual with `--tcp` (alice asks), both NATs and both firewalls
 * Linux's (a SYN to a closed port answered with RST, rst-close,
 * isn-check): a TCP path over IPv6 by simultaneous open through the two
 * firewalls, on the first try, to bob's own IPv6 address, carrying data
 * (issue 16: before, TCP paths were IPv4 only and went through the NATs). */
static void dual_dual_tcp_goes_ipv6(void **state)
{
    (void)state;
    for (unsigned r = 0; r < runs(); r++) {
        world w;
        dual_tcp_connected(&w, r, STACK_DUAL);
        expect_path(&w, PUNCH_PATH_DIRECT, PUNCH_AF_INET6, "dual x dual --tcp");
        if (w.alice.technique != PUNCH_TECH_TCP_SIMOPEN || w.bob.technique != PUNCH_TECH_TCP_SIMOPEN)
            fail_msg("seed %llu: techniques %s and %s, want tcp-simultaneous-open; alice's TCP "
                     "attempt '%s'", (unsigned long long)w.seed,
                     punch_technique_name(w.alice.technique), punch_technique_name(w.bob.technique),
                     w.alice.attempt_by[PUNCH_TECH_TCP_SIMOPEN]);
        assert_int_equal(punch_tcp_paths_counters_get(w.alice.tcp)->failures, 0);
        assert_memory_equal(w.alice.path_remote.ip, w.bob.addr6.ip, 16);
        bob_hears(&w, 2, 200, "two firewalls over TCP");
        world_free(&w);
    }
    fprintf(stderr, "dual x dual --tcp: TCP over IPv6 through two firewalls, %u seeds\n", runs());
}

/* Dual (alice asks, --tcp) x IPv4-only: her IPv6 try is answered with an
 * IPv4 endpoint and fails at once ("the peer has no IPv6 TCP endpoint");
 * the next goes over IPv4, with the opening SYN, and is the path. */
static void dual_v4only_tcp_goes_ipv4(void **state)
{
    (void)state;
    for (unsigned r = 0; r < runs(); r++) {
        world w;
        dual_tcp_connected(&w, r, STACK_V4_ONLY);
        expect_path(&w, PUNCH_PATH_DIRECT, PUNCH_AF_INET, "dual x v4-only --tcp");
        assert_int_equal(w.alice.technique, PUNCH_TECH_TCP_SIMOPEN);
        assert_int_equal(w.bob.technique, PUNCH_TECH_TCP_SIMOPEN);
        assert_int_equal(punch_tcp_paths_counters_get(w.alice.tcp)->failures, 1);
        assert_non_null(strstr(w.alice.attempt_by[PUNCH_TECH_TCP_SIMOPEN],
                               "try 1 of 3: the peer has no IPv6 TCP endpoint"));
        world_free(&w);
    }
    fprintf(stderr, "dual x v4-only --tcp: TCP over IPv4 after one IPv6 try, %u seeds\n", runs());
}

/* IPv6 60 ms one way per firewall link against IPv4's 10: far more than
 * the margin, so IPv4 it is (and the preference is no blind one). */
static void slow_ipv6_loses(void **state)
{
    (void)state;
    for (unsigned r = 0; r < runs(); r++) {
        world w;
        dual_connected(&w, r, STACK_DUAL, STACK_DUAL, "port-restricted-cone", 60 * MS, 5000);
        expect_path(&w, PUNCH_PATH_DIRECT, PUNCH_AF_INET, "slow ipv6");
        world_free(&w);
    }
}

/* Alice knows the server's IPv4 and IPv6 addresses; whichever answers
 * first takes her registration (servers.c). Over IPv6, her public IPv4
 * endpoint comes from a Binding request to the IPv4 one (second_family.c),
 * and bob, who has IPv4 only, needs it. */
static void dual_v4only_goes_ipv4(void **state)
{
    (void)state;
    unsigned over_v6 = 0;
    for (unsigned r = 0; r < runs(); r++) {
        world w;
        dual_connected(&w, r, STACK_DUAL, STACK_V4_ONLY, "port-restricted-cone", V6_WAN_US, 3000);
        expect_path(&w, PUNCH_PATH_DIRECT, PUNCH_AF_INET, "dual x v4-only");
        /* bob cannot send IPv6: alice's IPv6 endpoints are no candidates of his */
        assert_int_equal(w.bob.sent_v6, 0);
        over_v6 += w.alice.server.family == PUNCH_AF_INET6;
        world_free(&w);
    }
    fprintf(stderr, "dual x v4-only: direct over IPv4, alice registered over IPv6 in %u of %u seeds\n",
            over_v6, runs());
}

/* The relay's remote is the server's address of each side's family. */
static void v6only_v4only(void **state)
{
    (void)state;
    for (unsigned r = 0; r < runs(); r++) {
        world w;
        dual_connected(&w, r, STACK_V6_ONLY, STACK_V4_ONLY, "port-restricted-cone", V6_WAN_US, 3000);
        const node *n[2] = {&w.alice, &w.bob};
        for (int i = 0; i < 2; i++)
            if (!n[i]->have_path || n[i]->kind != PUNCH_PATH_RELAY)
                fail_msg("seed %llu: %s not on the relay", (unsigned long long)w.seed,
                         n[i]->name);
        assert_int_equal(w.alice.path_remote.family, PUNCH_AF_INET6);
        assert_int_equal(w.bob.path_remote.family, PUNCH_AF_INET);
        bob_hears(&w, 2, 300, "the relay");
        world_free(&w);
    }
    fprintf(stderr, "v6-only x v4-only: relayed across families, %u seeds\n", runs());
}

/* RFC 6052 §2.4's example: 192.0.2.33 under 64:ff9b::/96 is
 * 64:ff9b::c000:221; an agent's servers are rewritten only on a host
 * without IPv4, only global ones, never with NAT64 off. The NAT64 model
 * gives each inside host a pool address of its own and takes back only
 * what is for one. */
static void nat64_addresses(void **state)
{
    (void)state;
    static const uint8_t want[16] = {0, 0x64, 0xff, 0x9b, [12] = 192, 0, 2, 33};
    static const punch_nat64_prefix nsp = {.ip = {0x20, 0x01, 0x0d, 0xb8, 0, 0x64}, .bits = 96};
    punch_addr four = v4(192, 0, 2, 33, 3478), six, back;
    assert_int_equal(punch_nat64_synthesize(NULL, &four, &six), 0);
    assert_int_equal(six.family, PUNCH_AF_INET6);
    assert_memory_equal(six.ip, want, 16);
    assert_int_equal(six.port, 3478);
    assert_true(punch_nat64_is_synthesized(NULL, &six));
    assert_false(punch_nat64_is_synthesized(&nsp, &six));
    assert_int_equal(punch_nat64_extract(NULL, &six, &back), 0);
    assert_true(punch_addr_equal(&back, &four));
    assert_int_equal(punch_nat64_synthesize(NULL, &six, &back), PUNCH_ERR_INVAL);

    punch_agent_cfg c = {.server = four, .n_more_servers = 1,
                         .more_servers = {v4(10, 0, 0, 1, 3478)}};
    assert_int_equal(punch_agent_cfg_nat64(&c, true, true), 0);   /* IPv4 of its own */
    assert_int_equal(punch_agent_cfg_nat64(&c, false, false), 0); /* no IPv6 either */
    c.flags = PUNCH_AGENT_NO_NAT64;
    assert_int_equal(punch_agent_cfg_nat64(&c, false, true), 0);
    c.flags = 0;
    c.nat64_prefix = nsp;
    assert_int_equal(punch_agent_cfg_nat64(&c, false, true), 1); /* not 10.0.0.1 */
    assert_true(punch_nat64_is_synthesized(&nsp, &c.server));
    assert_int_equal(c.more_servers[0].family, PUNCH_AF_INET);

    punch_nat64 t;
    punch_addr pool = v4(192, 168, 255, 2, 0);
    assert_int_equal(punch_nat64_init(&t, NULL, &pool), 0);
    punch_addr h1 = {.family = PUNCH_AF_INET6, .port = 5000, .ip = {0x20, 0x01, 0x0d, 0xb8, [15] = 1}};
    punch_addr h2 = h1;
    h2.ip[15] = 2;
    punch_nat_tuple in = {.proto = PUNCH_IP_UDP, .src = h1, .dst = six}, out, ret;
    assert_true(punch_nat64_out(&t, &in, &out));
    assert_true(punch_addr_equal(&out.dst, &four));
    assert_true(punch_addr_equal(&out.src, &(punch_addr){.family = PUNCH_AF_INET, .port = 5000,
                                                          .ip = {192, 168, 255, 2}}));
    in.src = h2;
    assert_true(punch_nat64_out(&t, &in, &out));
    assert_int_equal(out.src.ip[3], 3); /* a pool address of its own */
    punch_nat_tuple reply = {.proto = PUNCH_IP_UDP, .src = four, .dst = out.src};
    assert_true(punch_nat64_in(&t, &reply, &ret));
    assert_true(punch_addr_equal(&ret.dst, &h2));
    assert_true(punch_addr_equal(&ret.src, &six));
    reply.dst.ip[3] = 9; /* given to nobody */
    assert_false(punch_nat64_in(&t, &reply, &ret));
    in.dst = h1; /* native IPv6: not the NAT64's */
    assert_false(punch_nat64_out(&t, &in, &out));
}

/* Alice is IPv6-only behind a NAT64 (and given the server's IPv4
 * address, as DNS64 would give her its name's): she reaches the server
 * and bob at their addresses under 64:ff9b::/96, and bob reaches her at
 * the NAT64's IPv4 mapping the server saw. Hole punching goes through
 * the NAT64 as through any NAT: direct, no relay. Without synthesis she
 * would not even register (no IPv4 route). */
static void nat64_direct(const punch_nat64_prefix *prefix, const char *what)
{
    punch_addr want, bob_nat = v4(203, 0, 113, 20, 0);
    assert_int_equal(punch_nat64_synthesize(prefix, &bob_nat, &want), 0);
    for (unsigned r = 0; r < runs(); r++) {
        world w;
        world_start(&w, seed_of(r));
        if (prefix)
            w.nat64_prefix = *prefix;
        dual_stack(&w, STACK_V6_NAT64, STACK_V4_ONLY, "port-restricted-cone", V6_WAN_US);
        connect_for(&w, 5000);
        if (!w.alice.have_path || w.alice.kind != PUNCH_PATH_DIRECT ||
            !punch_addr_same_ip(&w.alice.path_remote, &want))
            fail_msg("seed %llu: alice has %s path over %s, want direct to 203.0.113.20 "
                     "under %s", (unsigned long long)w.seed, !w.alice.have_path ? "no" :
                     w.alice.kind == PUNCH_PATH_DIRECT ? "a direct" : "a relay",
                     family(&w.alice.path_remote), what);
        if (!w.bob.have_path || w.bob.kind != PUNCH_PATH_DIRECT ||
            w.bob.path_remote.family != PUNCH_AF_INET ||
            memcmp(w.bob.path_remote.ip, (uint8_t[]){203, 0, 113, 10}, 4) != 0)
            fail_msg("seed %llu: bob is not direct to the NAT64's 203.0.113.10",
                     (unsigned long long)w.seed);
        assert_int_equal(w.alice.technique, PUNCH_TECH_HOLE_PUNCH);
        bob_hears(&w, 3, 300, "the NAT64");
        world_free(&w);
    }
    fprintf(stderr, "nat64 (%s) x v4-only: direct through the NAT64, %u seeds\n", what, runs());
}

static void nat64_v4only_goes_direct(void **state)
{
    (void)state;
    nat64_direct(NULL, "64:ff9b::/96");
}

/* The same with a network-specific /64 prefix (RFC 6052 §2.4's): the
 * IPv4 address straddles the u-octet, which stays zero. */
static void nat64_nsp64_goes_direct(void **state)
{
    (void)state;
    const punch_nat64_prefix nsp = {.ip = {0x20, 0x01, 0x0d, 0xb8, 0x01, 0x22, 0x03, 0x44},
                                    .bits = 64};
    nat64_direct(&nsp, "2001:db8:122:344::/64");
}

/* NAT discovery over both families: alice's IPv4 NAT maps per
 * destination (symmetric, sequential), her IPv6 firewall translates
 * nothing. Whichever family she registered over, the REGISTERED event
 * says each one's behaviour (the IPv6 one from the server's second port
 * there, the IPv4 one from its two IPs). */
static void discovery_both_families(void **state)
{
    (void)state;
    unsigned over_v6 = 0;
    for (unsigned r = 0; r < runs(); r++) {
        world w;
        world_start(&w, seed_of(r));
        /* every other run registered over IPv6, the IPv4 run the other
         * one: the first HELLO goes to the first server (IPv4) alone and
         * the retransmission adds the IPv6 one, so there IPv4 is slower
         * than the first retransmission timeout (250 ms) and IPv6 near */
        if (r % 2)
            w.wan_delay_us = 200 * MS;
        dual_stack(&w, STACK_DUAL, STACK_V4_ONLY, "symmetric-sequential",
                   r % 2 ? 1 * MS : V6_WAN_US);
        connect_for(&w, 1000);
        bool v6 = w.alice.server.family == PUNCH_AF_INET6;
        over_v6 += v6;
        const char *nat4 = v6 ? w.alice.other_nat : w.alice.nat;
        const char *nat6 = v6 ? w.alice.nat : w.alice.other_nat;
        if (w.alice.other_family != (v6 ? PUNCH_AF_INET : PUNCH_AF_INET6) ||
            strcmp(nat4, "apdm") != 0 || strcmp(nat6, "eim") != 0)
            fail_msg("seed %llu: registered over %s, ipv4 nat '%s', ipv6 nat '%s' (other family %d)",
                     (unsigned long long)w.seed, v6 ? "ipv6" : "ipv4", nat4, nat6,
                     w.alice.other_family);
        /* bob has no IPv6: no other family to discover */
        assert_int_equal(w.bob.other_family, PUNCH_AF_NONE);
        world_free(&w);
    }
    if (runs() > 1 && (over_v6 == 0 || over_v6 == runs()))
        fail_msg("registered over ipv6 in %u of %u runs: one family's run untried", over_v6, runs());
    fprintf(stderr, "discovery on both families: ipv4 apdm, ipv6 eim, %u seeds (%u over ipv6)\n",
            runs(), over_v6);
}

/* Alice on a direct path to bob's native IPv6 address. */
static void expect_bobs_native_ipv6(const world *w)
{
    if (!w->alice.have_path || w->alice.kind != PUNCH_PATH_DIRECT ||
        memcmp(w->alice.path_remote.ip, w->bob.addr6.ip, 16) != 0)
        fail_msg("seed %llu: alice is not direct to bob's native IPv6 (%s path, %u changes)",
                 (unsigned long long)w->seed, family(&w->alice.path_remote),
                 w->alice.path_changes);
}

/* Alice behind a NAT64 with native IPv6 too, bob dual: both ways work,
 * native IPv6 and the NAT64 to bob's IPv4. The native one is 12 ms a hop
 * away against the NATs' 10: slower, within the margin, so it wins (the
 * NAT64 path is IPv4 beyond the NAT64, family.c's via_nat64; bob, for
 * whom it is IPv4, prefers IPv6 too). Seen to hold without via_nat64 as
 * well: the native path is up first here (no low-TTL guard on it). */
static void nat64_native_ipv6_wins(void **state)
{
    (void)state;
    for (unsigned r = 0; r < runs(); r++) {
        world w;
        dual_connected(&w, r, STACK_V6_NAT64, STACK_DUAL, "port-restricted-cone", 12 * MS, 8000);
        expect_bobs_native_ipv6(&w);
        world_free(&w);
    }
    fprintf(stderr, "nat64 x dual: native IPv6 over the NAT64, %u seeds\n", runs());
}

/* As nat64_native_ipv6_wins, but alice's native IPv6 link is slow (40 ms
 * one way more) for the first 600 ms: a loaded host's first moments (the
 * handshakes' CPU; seen in CI under the sanitizers, lab.nat64). Its first
 * round trip loses to the NAT64's; later ones (family_measure) win it
 * back, and an idle session then keeps its path: a keepalive's PING
 * going out is no reason to leave (keepalive.c). */
static void nat64_native_wins_after_slow_start(void **state)
{
    (void)state;
    for (unsigned r = 0; r < runs(); r++) {
        world w;
        world_start(&w, seed_of(r));
        dual_stack(&w, STACK_V6_NAT64, STACK_DUAL, "port-restricted-cone", 12 * MS);
        punch_sim_link_cfg slow = {.delay_us = 52 * MS, .jitter_us = 1 * MS};
        punch_sim_link_cfg usual = {.delay_us = 12 * MS, .jitter_us = 1 * MS};
        if (punch_sim_link_set(w.sim, w.alice.v6_link, &slow) != 0)
            fail_msg("no v6 link");
        connect_for(&w, 600);
        if (punch_sim_link_set(w.sim, w.alice.v6_link, &usual) != 0)
            fail_msg("no v6 link");
        punch_sim_run(w.sim, punch_sim_now(w.sim) + 9400 * MS);
        unsigned changes = w.alice.path_changes;
        punch_sim_run(w.sim, punch_sim_now(w.sim) + 10000 * MS);
        expect_bobs_native_ipv6(&w);
        if (w.alice.path_changes != changes)
            fail_msg("seed %llu: alice's path changed %u times in 10 idle seconds",
                     (unsigned long long)w.seed, w.alice.path_changes - changes);
        world_free(&w);
    }
    fprintf(stderr, "nat64 x dual, native IPv6 slow at first: native IPv6 by 10 s, then kept, %u seeds\n",
            runs());
}

/* Alice sends every 50 ms; at 1 s her IPv6 dies. Within 10 s both are on
 * IPv4 direct (not the relay), and what alice sends then arrives. */
static void ipv6_dies_moves_to_ipv4(void **state)
{
    (void)state;
    uint64_t worst = 0;
    for (unsigned r = 0; r < runs(); r++) {
        world w;
        dual_connected(&w, r, STACK_DUAL, STACK_DUAL, "port-restricted-cone", V6_WAN_US, 3000);
        expect_path(&w, PUNCH_PATH_DIRECT, PUNCH_AF_INET6, "before the cut");
        uint64_t cut_ms = punch_sim_now(w.sim) / MS;
        cut_v6(&w, &w.alice);
        uint64_t moved_ms = 0, alice_ms = 0, bob_ms = 0; /* both, alice, bob on IPv4 */
        for (unsigned i = 0; i < 200; i++) {
            say(&w, 10 + i % 200);
            punch_sim_run(w.sim, punch_sim_now(w.sim) + 50 * MS);
            uint64_t now = punch_sim_now(w.sim) / MS;
            if (!alice_ms && w.alice.path_remote.family == PUNCH_AF_INET)
                alice_ms = now;
            if (!bob_ms && w.bob.path_remote.family == PUNCH_AF_INET)
                bob_ms = now;
            if (!moved_ms && alice_ms && bob_ms)
                moved_ms = now;
        }
        expect_path(&w, PUNCH_PATH_DIRECT, PUNCH_AF_INET, "after the cut");
        if (!moved_ms)
            fail_msg("seed %llu: never moved", (unsigned long long)w.seed);
        unsigned late = 0;
        for (unsigned i = 150; i < 200; i++)
            late += w.bob.counts[10 + i] > 0;
        if (late < 48)
            fail_msg("seed %llu: only %u of the last 50 datagrams arrived on IPv4",
                     (unsigned long long)w.seed, late);
        worst = moved_ms - cut_ms > worst ? moved_ms - cut_ms : worst;
        world_free(&w);
    }
    fprintf(stderr, "IPv6 path cut: on IPv4 direct within %llu ms (worst of %u seeds)\n",
            (unsigned long long)worst, runs());
}

/* Alice and bob register over IPv4 (their IPv6 is 2 ms slower one way,
 * which loses the race of the server's addresses, servers.c, but stays
 * within the path choice's margin); their IPv6 interface addresses are
 * unreachable from outside (the routers translate them): only the
 * endpoints the server's IPv6 address saw can make an IPv6 path. */
static void nptv6_goes_ipv6(void **state)
{
    (void)state;
    for (unsigned r = 0; r < runs(); r++) {
        world w;
        dual_connected(&w, r, STACK_DUAL_NPT, STACK_DUAL_NPT, "port-restricted-cone", 12 * MS, 8000);
        expect_path(&w, PUNCH_PATH_DIRECT, PUNCH_AF_INET6, "nptv6 x nptv6");
        assert_int_equal(w.alice.technique, PUNCH_TECH_HOLE_PUNCH);
        assert_memory_equal(w.alice.path_remote.ip, w.bob.addr6_outside.ip, 16);
        assert_memory_equal(w.bob.path_remote.ip, w.alice.addr6_outside.ip, 16);
        assert_int_equal(w.alice.server.family, PUNCH_AF_INET); /* registered over IPv4 */
        assert_int_equal(w.bob.server.family, PUNCH_AF_INET);
        bob_hears(&w, 3, 200, "IPv6 to the translated addresses");
        world_free(&w);
    }
    fprintf(stderr, "nptv6 x nptv6: direct over IPv6 to the translated addresses, %u seeds\n",
            runs());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(dual_dual_goes_ipv6),
        cmocka_unit_test(dual_dual_tcp_goes_ipv6),
        cmocka_unit_test(dual_v4only_tcp_goes_ipv4),
        cmocka_unit_test(slow_ipv6_loses),
        cmocka_unit_test(dual_v4only_goes_ipv4),
        cmocka_unit_test(v6only_v4only),
        cmocka_unit_test(nat64_addresses),
        cmocka_unit_test(nat64_v4only_goes_direct),
        cmocka_unit_test(nat64_nsp64_goes_direct),
        cmocka_unit_test(nat64_native_ipv6_wins),
        cmocka_unit_test(nat64_native_wins_after_slow_start),
        cmocka_unit_test(discovery_both_families),
        cmocka_unit_test(ipv6_dies_moves_to_ipv4),
        cmocka_unit_test(nptv6_goes_ipv6),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
