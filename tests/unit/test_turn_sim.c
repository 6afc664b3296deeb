/* SPDX-License-Identifier: MIT */
/*
 * The agent's TURN paths (issue 15) in the simulator, against the TURN
 * server model (src/sim/turn_server.c) and punchd with its relay off: two
 * peers behind NATs whose direct path is blocked (each hears no one but
 * the servers, node.deaf_until_ms) relay through the TURN server — with an
 * allocation each, or one side sending straight to the other's relayed
 * address — and move to a direct path when the block lifts; the same
 * under 10 % loss; a listener meeting 50 peers one after another over two
 * simulated hours, through 16 permission/channel slots that must be let go
 * and reused after RFC 8656 §12's quarantine; sixteen short sessions
 * that leave a seventeenth peer without a slot (said so) until the first
 * quarantine ends; and a TURN server that
 * forgets every allocation, after which the agent allocates anew and says
 * so. Several seeds each; a failure prints its seed (PUNCH_SIM_SEED=N
 * replays one).
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

static uint64_t seeds[SIM_SEEDS];
static size_t n_seeds;

#define NEVER UINT64_MAX

/* Run in steps of 100 ms until done(ctx) or limit_ms have passed. */
static bool run_until(world *w, uint64_t limit_ms, bool (*done)(const world *w, const void *ctx),
                      const void *ctx)
{
    uint64_t end = now_ms(w) + limit_ms;
    while (!done(w, ctx) && now_ms(w) < end)
        punch_sim_run(w->sim, punch_sim_now(w->sim) + 100 * MS);
    return done(w, ctx);
}

static bool both_registered(const world *w, const void *ctx)
{
    (void)ctx;
    return w->alice.registered && w->bob.registered;
}

/* The relayed address of every TURN user offered to punchd. */
static bool offered(const world *w, const void *ctx)
{
    (void)ctx;
    return (!w->alice.use_turn || w->alice.turn.offered) &&
           (!w->bob.use_turn || w->bob.turn.offered);
}

static bool on(const node *n, punch_path_kind kind, punch_technique technique)
{
    return n->have_path && n->kind == kind && (kind == PUNCH_PATH_DIRECT || n->technique == technique);
}

static bool both_on_turn(const world *w, const void *ctx)
{
    (void)ctx;
    return on(&w->alice, PUNCH_PATH_RELAY, PUNCH_TECH_TURN) &&
           on(&w->bob, PUNCH_PATH_RELAY, PUNCH_TECH_TURN);
}

static bool both_direct(const world *w, const void *ctx)
{
    (void)ctx;
    return on(&w->alice, PUNCH_PATH_DIRECT, 0) && on(&w->bob, PUNCH_PATH_DIRECT, 0);
}

/* a sends "#seq" to its peer every 100 ms until b got it (up to tries). */
static bool datagram_crosses(world *w, node *a, int a_peer, node *b, unsigned seq, int tries)
{
    char msg[16];
    int len = snprintf(msg, sizeof(msg), "#%u", seq);
    for (int i = 0; i < tries && !b->counts[seq]; i++) {
        punch_agent_send(a->agent, now_ms(w), a_peer, (const uint8_t *)msg, (size_t)len);
        node_flush(a);
        punch_sim_run(w->sim, punch_sim_now(w->sim) + 100 * MS);
    }
    return b->counts[seq] > 0;
}

/* A world with punchd's relay off and a TURN server; alice and bob behind
 * port-restricted NATs (WAN loss as given), each with --turn or not,
 * registered and their relayed addresses offered. */
static void turn_world(world *w, uint64_t seed, bool alice_turn, bool bob_turn, double loss)
{
    world_start(w, seed);
    world_relay_off(w);
    world_add_turn(w);
    w->alice.use_turn = alice_turn;
    w->bob.use_turn = bob_turn;
    different_nats(w, "port-restricted-cone", "port-restricted-cone", loss);
    if (!run_until(w, 20000, both_registered, NULL) || !run_until(w, 20000, offered, NULL))
        fail_msg("seed %llu: not registered (alice %d, bob %d) or not offered (%d, %d)",
                 (unsigned long long)seed, w->alice.registered, w->bob.registered,
                 w->alice.turn.offered, w->bob.turn.offered);
}

/* Blocked, alice connects: both must end on the TURN server, and data
 * cross both ways there. */
static void connect_through_turn(world *w, const char *what, int tries)
{
    w->alice.deaf_until_ms = w->bob.deaf_until_ms = NEVER;
    w->alice.peer = punch_agent_connect(w->alice.agent, now_ms(w), "bob", NULL);
    assert_true(w->alice.peer >= 0);
    node_flush(&w->alice);
    punch_sim_wake(w->sim, w->alice.host);
    if (!run_until(w, 15000, both_on_turn, NULL) && getenv("PUNCH_AGENT_DEBUG")) {
        const punch_sim_turn_stats *t = &w->turn->stats;
        fprintf(stderr, "turn: allocs %llu perms %llu binds %llu refused %llu to_peers %llu "
                "to_clients %llu filtered %llu unsent %llu dropped %llu mismatch %llu chal %llu bad %llu stale %llu\n",
                (unsigned long long)t->allocations, (unsigned long long)t->permissions,
                (unsigned long long)t->binds, (unsigned long long)t->rebinds_refused,
                (unsigned long long)t->to_peers, (unsigned long long)t->to_clients,
                (unsigned long long)t->filtered, (unsigned long long)t->unsent,
                (unsigned long long)t->dropped, (unsigned long long)t->mismatches, (unsigned long long)t->challenges, (unsigned long long)t->bad_auth, (unsigned long long)t->stale_nonces);
        punch_agent_stats st;
        punch_agent_stats_get(w->bob.agent, &st);
        fprintf(stderr, "bob: received %llu dropped %llu\n", (unsigned long long)st.received,
                (unsigned long long)st.dropped);
    }
    if (!both_on_turn(w, NULL))
        fail_msg("%s seed %llu: not on TURN: alice %s/%s, bob %s/%s; %s / %s", what,
                 (unsigned long long)w->seed, punch_path_kind_name(w->alice.kind),
                 punch_technique_name(w->alice.technique), punch_path_kind_name(w->bob.kind),
                 punch_technique_name(w->bob.technique), w->alice.attempt, w->bob.attempt);
    if (!datagram_crosses(w, &w->alice, w->alice.peer, &w->bob, 1, tries) ||
        !datagram_crosses(w, &w->bob, w->bob.peer, &w->alice, 2, tries))
        fail_msg("%s seed %llu: data did not cross on TURN (bob got %u, alice %u)", what,
                 (unsigned long long)w->seed, w->bob.counts[1], w->alice.counts[2]);
    assert_true(w->turn->stats.to_peers > 0 && w->turn->stats.to_clients > 0);
    assert_int_equal(w->alice.first_kind, PUNCH_PATH_RELAY);
    assert_int_equal(w->bob.first_kind, PUNCH_PATH_RELAY);
}

/* The block lifts: both move to a direct path (hole punching went on
 * beside TURN) within 30 s, and data crosses there. */
static void lift_to_direct(world *w, const char *what)
{
    w->alice.deaf_until_ms = w->bob.deaf_until_ms = 0;
    uint64_t t0 = now_ms(w);
    if (!run_until(w, 30000, both_direct, NULL))
        fail_msg("%s seed %llu: not direct 30 s after the block lifted: alice %s/%s, bob %s/%s",
                 what, (unsigned long long)w->seed, punch_path_kind_name(w->alice.kind),
                 punch_technique_name(w->alice.technique), punch_path_kind_name(w->bob.kind),
                 punch_technique_name(w->bob.technique));
    assert_true(datagram_crosses(w, &w->alice, w->alice.peer, &w->bob, 3, 10));
    assert_true(datagram_crosses(w, &w->bob, w->bob.peer, &w->alice, 4, 10));
    fprintf(stderr, "%s seed %llu: direct %llu ms after the block lifted\n", what,
            (unsigned long long)w->seed, (unsigned long long)(now_ms(w) - t0));
    assert_true(both_direct(w, NULL)); /* and stayed there */
}

static void turn_then_direct(bool alice_turn, const char *what)
{
    for (size_t s = 0; s < n_seeds; s++) {
        world w;
        turn_world(&w, seeds[s], alice_turn, true, 0);
        connect_through_turn(&w, what, 10);
        lift_to_direct(&w, what);
        assert_int_equal(w.turn->stats.rebinds_refused, 0);
        world_free(&w);
    }
}

/* Both have an allocation: each sends through its own. */
static void own_allocations_then_direct(void **state)
{
    (void)state;
    turn_then_direct(true, "own allocations");
}

/* Only bob has one: alice sends from her socket straight to his relayed
 * address, bob through his allocation to her public endpoint. */
static void straight_to_relayed_then_direct(void **state)
{
    (void)state;
    turn_then_direct(false, "straight to the relayed address");
}

/* 10 % loss on both WAN links: still through TURN, data crosses. */
static void through_turn_under_loss(void **state)
{
    (void)state;
    for (size_t s = 0; s < n_seeds; s++)
        for (int alice_turn = 1; alice_turn >= 0; alice_turn--) {
            world w;
            turn_world(&w, seeds[s], alice_turn, true, 0.10);
            connect_through_turn(&w, alice_turn ? "10 % loss, own" : "10 % loss, straight", 30);
            world_free(&w);
        }
}

/* ---- a listener meeting 50 peers over two hours ---- */

typedef struct meeting {
    const node *dialer;
    const node *listener;
} meeting;

static bool dialer_ready(const world *w, const void *ctx)
{
    (void)w;
    const node *d = ((const meeting *)ctx)->dialer;
    return d->registered && (!d->use_turn || d->turn.offered);
}

static bool met_on_turn(const world *w, const void *ctx)
{
    (void)w;
    const meeting *m = ctx;
    const node *l = m->listener;
    int id = l->last_peer;
    return on(m->dialer, PUNCH_PATH_RELAY, PUNCH_TECH_TURN) && id >= 0 && id < 16 &&
           l->kind_of[id] == PUNCH_PATH_RELAY && l->technique_of[id] == PUNCH_TECH_TURN;
}

static bool closed_at(const world *w, const void *ctx)
{
    (void)ctx;
    return w->alice.closed_count == *(const unsigned *)ctx;
}

/* Alice (--turn, behind a port-restricted NAT) listens, hearing no one
 * but the servers; punchd relays nothing. Returns once she is ready
 * (registered, allocated). */
static void listener_world(world *w, uint64_t seed)
{
    world_start(w, seed);
    world_relay_off(w);
    world_add_turn(w);
    /* Many-port probing would open 256 mappings a session on NATs that
     * three hosts share for 50 sessions; with the direct path blocked it
     * finds nothing anyway. */
    w->agent_flags = PUNCH_AGENT_NO_BIRTHDAY;
    w->alice.use_turn = true;
    int l, nat = nat_on_core(w, "port-restricted-cone", v4(203, 0, 113, 10, 0), 0);
    add_peer(w, &w->alice, "alice", v4(10, 0, 1, 2, 5000), nat, true, 0, &l);
    w->alice.deaf_until_ms = NEVER;
    meeting m = {&w->alice, &w->alice};
    if (!run_until(w, 20000, dialer_ready, &m))
        fail_msg("seed %llu: alice not ready", (unsigned long long)w->seed);
}

/* Dialer i (with --turn or not) asks for alice. Three hosts take turns,
 * each behind a NAT of its own (the core router has room for three
 * more), each time a new program on the next port: a new mapping, so a
 * new peer address for alice. */
static node *dialer_start(world *w, node *dialers, unsigned i, bool turn)
{
    node *d = &dialers[i % 3];
    if (i < 3) {
        memset(d, 0, sizeof(*d));
        d->use_turn = turn;
        char name[16];
        snprintf(name, sizeof(name), "d%u", i);
        int l, nat = nat_on_core(w, "port-restricted-cone", v4(203, 0, 113, (uint8_t)(100 + i), 0), 0);
        add_peer(w, d, name, v4(10, 0, 9, 2, 5000), nat, true, 0, &l);
    } else {
        d->use_turn = turn;
        memset(&d->turn, 0, sizeof(d->turn));
        node_restart(w, d, NULL);
        node_flush(d);
        punch_sim_wake(w->sim, d->host);
    }
    d->deaf_until_ms = NEVER; /* no direct path either way */
    meeting m = {d, &w->alice};
    run_until(w, 20000, dialer_ready, &m);
    if (!dialer_ready(w, &m))
        fail_msg("seed %llu: dialer %u not ready: registered %d, TURN %s (%s)",
                 (unsigned long long)w->seed, i, d->registered,
                 d->turn_events ? "allocated, not offered" : "not allocated",
                 d->attempt_by[PUNCH_TECH_TURN]);
    w->alice.last_peer = -1;
    memset(w->alice.kind_of, 0, sizeof(w->alice.kind_of)); /* no stale relay path */
    d->peer = punch_agent_connect(d->agent, now_ms(w), "alice", NULL);
    assert_true(d->peer >= 0);
    node_flush(d);
    punch_sim_wake(w->sim, d->host);
    return d;
}

/* Dialer i meets alice through the TURN server, data crosses both ways,
 * the session lasts hold_ms, then the dialer closes it. */
static void session(world *w, node *d, unsigned i, uint64_t hold_ms)
{
    uint64_t t0 = now_ms(w);
    meeting m = {d, &w->alice};
    if (!run_until(w, 15000, met_on_turn, &m))
        fail_msg("seed %llu: dialer %u (%s) not on TURN: %s/%s (%s); alice: %s",
                 (unsigned long long)w->seed, i, d->use_turn ? "with --turn" : "straight",
                 punch_path_kind_name(d->kind), punch_technique_name(d->technique), d->attempt,
                 w->alice.attempt_by[PUNCH_TECH_TURN]);
    if (!datagram_crosses(w, d, d->peer, &w->alice, 2 * i, 10) ||
        !datagram_crosses(w, &w->alice, w->alice.last_peer, d, 2 * i + 1, 10))
        fail_msg("seed %llu: dialer %u: data did not cross", (unsigned long long)w->seed, i);
    punch_sim_run(w->sim, (t0 + hold_ms) * MS);
    assert_true(met_on_turn(w, &m)); /* kept alive on TURN all along */
    unsigned closed = w->alice.closed_count + 1;
    punch_agent_close(d->agent, now_ms(w), d->peer);
    node_flush(d);
    if (!run_until(w, 5000, closed_at, &closed))
        fail_msg("seed %llu: alice did not hear dialer %u close", (unsigned long long)w->seed, i);
}

/* 50 peers one after another, one every 150 s (2 h 5 min): alice's 16
 * permission/channel slots are let go when a session ends and reused
 * after the quarantine; the server never sees a channel rebound inside it
 * nor runs out of room, alice's allocation lives on, and an hour after
 * the last peer nothing of them is held at the server (not refreshed). */
static void listener_meets_fifty_peers(void **state)
{
    (void)state;
    static node dialers[3];
    for (size_t s = 0; s < n_seeds && s < 3; s++) {
        world w;
        listener_world(&w, seeds[s]);
        for (unsigned i = 0; i < 50; i++) {
            punch_sim_run(w.sim, (60000 + i * 150000ull) * MS);
            session(&w, dialer_start(&w, dialers, i, i % 2 == 0), i, 120000);
        }
        const punch_sim_turn_stats *t = &w.turn->stats;
        assert_int_equal(t->rebinds_refused, 0);
        assert_int_equal(t->no_room, 0);
        assert_int_equal(t->allocations, 1 + 25); /* alice's one, and every other dialer's */
        assert_int_equal(w.alice.turn_events, 2); /* allocated, offered: nothing new since */
        punch_sim_run(w.sim, punch_sim_now(w.sim) + 3600 * 1000 * MS);
        const punch_sim_turn_alloc *a = punch_sim_turn_find(w.turn, now_ms(&w), &w.alice.turn.mapped);
        assert_non_null(a);
        assert_int_equal(punch_sim_turn_perms(a, now_ms(&w)), 0);
        assert_int_equal(punch_sim_turn_channels(a, now_ms(&w)), 0);
        fprintf(stderr, "seed %llu: 50 peers over %llu s: %llu binds, %llu permissions, "
                        "%llu refreshes at the TURN server\n",
                (unsigned long long)w.seed, (unsigned long long)(now_ms(&w) / 1000),
                (unsigned long long)t->binds, (unsigned long long)t->permissions,
                (unsigned long long)t->refreshes);
        for (int k = 0; k < 3; k++)
            punch_agent_free(dialers[k].agent);
        world_free(&w);
    }
}

/* Sixteen short sessions in eight minutes take every slot of alice's:
 * the seventeenth peer finds none free (each in use or in its quarantine)
 * and alice says so; once the first slot's quarantine is over (its last
 * ChannelBind + 15 min 5 s) the next peer relays through it again. */
static void slots_wait_out_the_quarantine(void **state)
{
    (void)state;
    static node dialers[3];
    for (size_t s = 0; s < n_seeds && s < 3; s++) {
        world w;
        listener_world(&w, seeds[s]);
        for (unsigned i = 0; i < 16; i++) {
            punch_sim_run(w.sim, (60000 + i * 30000ull) * MS);
            session(&w, dialer_start(&w, dialers, i, false), i, 5000);
        }
        /* Too soon at once, and still when the first channel has expired
         * (its ChannelBind + 605 s) but its quarantine holds. */
        for (unsigned i = 16; i < 18; i++) {
            punch_sim_run(w.sim, (i == 16 ? punch_sim_now(w.sim) / MS : 60000 + 605000 + 60000) * MS);
            w.alice.attempt_by[PUNCH_TECH_TURN][0] = '\0';
            node *d = dialer_start(&w, dialers, i, false);
            meeting late = {d, &w.alice};
            if (run_until(&w, 15000, met_on_turn, &late))
                fail_msg("seed %llu: dialer %u found a slot at %llu ms", (unsigned long long)w.seed,
                         i, (unsigned long long)now_ms(&w));
            assert_string_equal(w.alice.attempt_by[PUNCH_TECH_TURN],
                                "no TURN slot free: all 16 in use or in their 5 min quarantine");
            punch_agent_close(d->agent, now_ms(&w), d->peer);
            node_flush(d);
        }
        punch_sim_run(w.sim, (60000 + 905000 + 5000) * MS);
        session(&w, dialer_start(&w, dialers, 18, false), 18, 5000);
        assert_int_equal(w.turn->stats.rebinds_refused, 0);
        for (int k = 0; k < 3; k++)
            punch_agent_free(dialers[k].agent);
        world_free(&w);
    }
}

/* ---- the TURN server forgets every allocation ---- */

static const char FORGOT[] = "the TURN server forgot our allocation (437): allocating anew";

/* Bob's allocation made anew: another relayed address than ctx. */
static bool bob_reallocated(const world *w, const void *ctx)
{
    return strcmp(w->bob.turn_said, FORGOT) == 0 && w->bob.turn.relayed.family != PUNCH_AF_NONE &&
           !punch_addr_equal(&w->bob.turn.relayed, ctx);
}

static bool both_reallocated(const world *w, const void *ctx)
{
    (void)ctx;
    return strcmp(w->alice.turn_said, FORGOT) == 0 && strcmp(w->bob.turn_said, FORGOT) == 0 &&
           w->alice.turn.offered &&
           w->bob.turn.offered && w->alice.turn_events >= 4 && w->bob.turn_events >= 4;
}

/* On TURN with an allocation each, the server restarts (forgets them):
 * each side learns it at its next request (a 437; the permission's
 * refresh comes within 240 s), allocates anew, says so (an ATTEMPT of
 * technique turn, then TURN events with the new relayed address, offered
 * to punchd again), and the session goes on through the new allocations. */
static void forgotten_allocation_made_anew(void **state)
{
    (void)state;
    for (size_t s = 0; s < n_seeds; s++) {
        world w;
        turn_world(&w, seeds[s], true, true, 0);
        connect_through_turn(&w, "forgotten allocations", 10);
        punch_addr old_a = w.alice.turn.relayed, old_b = w.bob.turn.relayed;
        punch_sim_turn_forget(w.turn);
        uint64_t t0 = now_ms(&w);
        if (!run_until(&w, 300000, both_reallocated, NULL))
            fail_msg("seed %llu: not allocated anew: alice '%s', bob '%s'",
                     (unsigned long long)w.seed, w.alice.turn_said, w.bob.turn_said);
        assert_int_equal(w.turn->stats.allocations, 4);
        assert_true(w.turn->stats.mismatches >= 2);
        assert_false(punch_addr_equal(&w.alice.turn.relayed, &old_a));
        assert_false(punch_addr_equal(&w.bob.turn.relayed, &old_b));
        if (!datagram_crosses(&w, &w.alice, w.alice.peer, &w.bob, 5, 100) ||
            !datagram_crosses(&w, &w.bob, w.bob.peer, &w.alice, 6, 100))
            fail_msg("seed %llu: no data after the new allocations: %s / %s",
                     (unsigned long long)w.seed, w.alice.closed, w.bob.closed);
        assert_true(both_on_turn(&w, NULL));
        fprintf(stderr, "seed %llu: data through the new allocations %llu ms after the server "
                        "forgot the old ones\n",
                (unsigned long long)w.seed, (unsigned long long)(now_ms(&w) - t0));
        world_free(&w);
    }
}

/* A new allocation reaches the other side at once: bob (the only one
 * with --turn; alice sends straight to his relayed address) tells punchd
 * his new relayed address in a TURN_ADDR, punchd tells alice in a
 * TURN_ADDR of their session (as beside an INTRODUCE), she sends there,
 * and bob's new allocation permits her again. Data crosses both ways
 * within TOLD_BOUND_MS of the new allocation; before punchd told it
 * (about 4 s), alice kept sending to the forgotten address until the
 * path died and they were introduced again. */
#define TOLD_BOUND_MS 2000u
static void new_allocation_told_to_the_other_side(void **state)
{
    (void)state;
    for (size_t s = 0; s < n_seeds; s++) {
        world w;
        turn_world(&w, seeds[s], false, true, 0);
        connect_through_turn(&w, "new allocation told", 10);
        uint64_t told = punch_rendezvous_counters_get(w.s.rv)->relayed_told;
        punch_addr old = w.bob.turn.relayed;
        punch_sim_turn_forget(w.turn);
        if (!run_until(&w, 300000, bob_reallocated, &old))
            fail_msg("seed %llu: not allocated anew: bob '%s'", (unsigned long long)w.seed,
                     w.bob.turn_said);
        uint64_t t0 = now_ms(&w);
        if (!datagram_crosses(&w, &w.alice, w.alice.peer, &w.bob, 5, TOLD_BOUND_MS / 100) ||
            !datagram_crosses(&w, &w.bob, w.bob.peer, &w.alice, 6, TOLD_BOUND_MS / 100) ||
            now_ms(&w) - t0 > TOLD_BOUND_MS)
            fail_msg("seed %llu: no data both ways within %u ms of the new allocation "
                     "(bob got %u, alice %u): %s / %s",
                     (unsigned long long)w.seed, TOLD_BOUND_MS, w.bob.counts[5],
                     w.alice.counts[6], w.alice.closed, w.bob.closed);
        assert_int_equal(punch_rendezvous_counters_get(w.s.rv)->relayed_told, told + 1);
        assert_true(both_on_turn(&w, NULL));
        fprintf(stderr, "seed %llu: data both ways %llu ms after the new allocation\n",
                (unsigned long long)w.seed, (unsigned long long)(now_ms(&w) - t0));
        world_free(&w);
    }
}

int main(void)
{
    n_seeds = sim_seeds_pick(seeds);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(own_allocations_then_direct),
        cmocka_unit_test(straight_to_relayed_then_direct),
        cmocka_unit_test(through_turn_under_loss),
        cmocka_unit_test(listener_meets_fifty_peers),
        cmocka_unit_test(slots_wait_out_the_quarantine),
        cmocka_unit_test(forgotten_allocation_made_anew),
        cmocka_unit_test(new_allocation_told_to_the_other_side),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
