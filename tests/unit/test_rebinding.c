/* SPDX-License-Identifier: MIT */
/*
 * A NAT that rebinds under a direct session while punchd relays nothing
 * (punchd --no-relay; issue 15), in the simulator, seeded: alice and bob
 * behind port-restricted cones with random ports, connected directly,
 * alice sending bob a numbered datagram every 100 ms and bob answering
 * each. Then one NAT forgets every mapping (as a reset home router or a
 * CGN that timed out does): the side behind it comes back from a new
 * port, which the other side's NAT filters until that side sends there.
 * punchd hears the new port at the first keepalive the path misses (both
 * re-register then) and tells both again of their session (as it does
 * for a relay session): both probe, and a direct path between the new
 * endpoints carries the datagrams again, within REBOUND_BOUND_MS of the
 * rebinding. Without the news the path has to die first (3 keepalives
 * unanswered) and the asker ask again: 8 s and more.
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

#include "crypto/identity.h"
#include "sim/world.h"
#include "sim_seeds.h"

/* The first keepalive missed (2 s of silence), the re-registration and
 * the news, a round of probes: 3.2 or 3.3 s in 25 seeds; 9.2 s without
 * the news (the path dies first, the asker asks again). */
#define REBOUND_BOUND_MS 4500

static void rng_fill(void *arg, uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)punch_rng_next(arg);
}

/* The world's punchd again, with its relay off. */
static void relay_off(world *w, punch_rng *rng)
{
    punch_rendezvous_cfg rc = {.random = rng_fill, .random_arg = rng, .no_relay = true,
                               .max_peers = 64, .max_sessions = 16};
    uint8_t secret[32];
    rng_fill(rng, secret, sizeof(secret));
    assert_int_equal(punch_identity_from_secret(&rc.identity, secret), 0);
    rng_fill(rng, rc.cookie_secret, sizeof(rc.cookie_secret));
    rng_fill(rng, rc.hash_key, sizeof(rc.hash_key));
    rc.second_port[0].port = 3478;
    rc.second_port[0].second = 3479;
    rc.n_second_port = 1;
    punch_rendezvous_free(w->s.rv);
    assert_int_equal(punch_rendezvous_new(&w->s.rv, &rc), 0);
}

typedef struct run {
    world w;
    punch_rng rng;
    int nat[2]; /* alice's, bob's */
    unsigned sent;
} run;

static void start(run *r, uint64_t seed)
{
    int l;
    world_start(&r->w, seed);
    punch_rng_seed(&r->rng, seed ^ 0x4e6f52);
    relay_off(&r->w, &r->rng);
    r->nat[0] = nat_on_core(&r->w, "port-restricted-cone,ports=random", v4(203, 0, 113, 10, 0), 0);
    r->nat[1] = nat_on_core(&r->w, "port-restricted-cone,ports=random", v4(203, 0, 113, 20, 0), 0);
    add_peer(&r->w, &r->w.alice, "alice", v4(10, 0, 1, 2, 5000), r->nat[0], true, 0, &l);
    add_peer(&r->w, &r->w.bob, "bob", v4(10, 0, 2, 2, 5000), r->nat[1], true, 0, &l);
    if (register_and_connect(&r->w) == UINT64_MAX)
        fail_msg("seed %llu: not registered", (unsigned long long)seed);
    for (int i = 0; i < 50 && !(r->w.alice.have_path && r->w.alice.kind == PUNCH_PATH_DIRECT &&
                                 r->w.bob.have_path && r->w.bob.kind == PUNCH_PATH_DIRECT);
         i++)
        punch_sim_run(r->w.sim, punch_sim_now(r->w.sim) + 100 * MS);
    if (r->w.alice.kind != PUNCH_PATH_DIRECT || r->w.bob.kind != PUNCH_PATH_DIRECT)
        fail_msg("seed %llu: no direct path", (unsigned long long)seed);
}

/* "#N" from one to the other (peer id `to` at `from`); not sent while
 * the agent has no path to send it on. */
static void say(node *from, uint64_t now, int to, unsigned n)
{
    char msg[8];
    int len = snprintf(msg, sizeof(msg), "#%u", n);
    if (punch_agent_send(from->agent, now, to, (const uint8_t *)msg, (size_t)len) == 0)
        node_flush(from);
}

/* 100 ms: alice's next datagram, bob's answer to the last he got. */
static void tick(run *r)
{
    world *w = &r->w;
    r->sent++;
    say(&w->alice, now_ms(w), w->alice.peer, r->sent);
    if (w->bob.have_path)
        say(&w->bob, now_ms(w), w->bob.last_peer, r->sent);
    punch_sim_run(w->sim, punch_sim_now(w->sim) + 100 * MS);
}

/* side's NAT forgets its mappings; returns how long (ms) until a
 * datagram each way, sent after it, crossed (UINT64_MAX: not in 12 s). */
static uint64_t rebind(run *r, int side)
{
    world *w = &r->w;
    punch_nat *nat = punch_sim_nat(w->sim, r->nat[side]);
    uint64_t t = now_ms(w);
    assert_true(punch_nat_expire(nat, UINT64_MAX) > 0);
    unsigned from = r->sent + 1;
    while (now_ms(w) < t + 12000) {
        tick(r);
        bool to_bob = false, to_alice = false;
        for (unsigned n = from; n <= r->sent && n < 256; n++) {
            to_bob |= w->bob.counts[n] > 0;
            to_alice |= w->alice.counts[n] > 0;
        }
        if (to_bob && to_alice)
            return now_ms(w) - t;
    }
    return UINT64_MAX;
}

static void check_rebound(uint64_t seed, int side)
{
    run r;
    memset(&r, 0, sizeof(r));
    start(&r, seed);
    for (int i = 0; i < 10; i++)
        tick(&r);
    if (!r.w.bob.counts[10] || !r.w.alice.counts[10])
        fail_msg("seed %llu: no datagrams before the rebinding", (unsigned long long)seed);
    const punch_rendezvous_counters *k = punch_rendezvous_counters_get(r.w.s.rv);
    uint64_t reintroduced = k->reintroductions;
    uint64_t took = rebind(&r, side);
    fprintf(stderr, "%s's NAT rebound: datagrams both ways again after %llu ms, direct: %s / %s\n",
            side ? "bob" : "alice", (unsigned long long)took,
            r.w.alice.kind == PUNCH_PATH_DIRECT ? "yes" : "no",
            r.w.bob.kind == PUNCH_PATH_DIRECT ? "yes" : "no");
    if (took == UINT64_MAX || took > REBOUND_BOUND_MS)
        fail_msg("seed %llu: %s's NAT rebound: datagrams both ways again after %llu ms (bound %d)",
                 (unsigned long long)seed, side ? "bob" : "alice", (unsigned long long)took,
                 REBOUND_BOUND_MS);
    if (k->reintroductions != reintroduced + 1 || k->sessions_opened != 0)
        fail_msg("seed %llu: punchd told %llu times again, opened %llu relay sessions",
                 (unsigned long long)seed,
                 (unsigned long long)(k->reintroductions - reintroduced),
                 (unsigned long long)k->sessions_opened);
    if (r.w.alice.kind != PUNCH_PATH_DIRECT || r.w.bob.kind != PUNCH_PATH_DIRECT ||
        r.w.alice.closed_count || r.w.bob.closed_count)
        fail_msg("seed %llu: not direct again, or closed (%s / %s)", (unsigned long long)seed,
                 r.w.alice.closed, r.w.bob.closed);
    world_free(&r.w);
}

/* The asker's NAT rebinds. */
static void askers_nat_rebinds(void **state)
{
    (void)state;
    check_rebound(sim_seed_or(1600), 0);
}

/* The NAT of the side that was asked rebinds. */
static void asked_sides_nat_rebinds(void **state)
{
    (void)state;
    check_rebound(sim_seed_or(1601), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(askers_nat_rebinds),
        cmocka_unit_test(asked_sides_nat_rebinds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
