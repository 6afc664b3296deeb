/* SPDX-License-Identifier: MIT */
/* The simulator (src/sim) with the NAT model: mapping and filtering of every
 * preset seen from the outside, hairpinning, timeouts in virtual time, TCP
 * simultaneous open, link statistics and replay from a seed.
 *
 * Every failure message carries the seed; PUNCH_SIM_SEED=N replays it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sim/sim.h"

static uint64_t seed = 20240611;

#define CHECK(sim, cond)                                                                     \
    do {                                                                                     \
        if (!(cond))                                                                         \
            fail_msg("seed %llu (PUNCH_SIM_SEED to replay): %s",                             \
                     (unsigned long long)punch_sim_seed(sim), #cond);                        \
    } while (0)

#define MS 1000ull
#define SEC (1000 * MS)

static punch_addr v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint16_t port)
{
    punch_addr x = {.family = PUNCH_AF_INET, .port = port};
    x.ip[0] = a, x.ip[1] = b, x.ip[2] = c, x.ip[3] = d;
    return x;
}

static punch_addr with_port(punch_addr a, uint16_t port)
{
    a.port = port;
    return a;
}

/* An endpoint that keeps what it receives. */
#define MAX_RX 64
typedef struct probe {
    size_t n;
    punch_sim_datagram rx[MAX_RX]; /* data not kept */
    punch_addr seen[MAX_RX];       /* reflected address, AF_NONE when not a reflection */
} probe;

static void probe_rx(void *ctx, punch_sim *sim, int host, uint64_t now,
                     const punch_sim_datagram *d)
{
    (void)sim, (void)host, (void)now;
    probe *p = ctx;
    if (p->n == MAX_RX)
        return;
    p->rx[p->n] = *d;
    p->rx[p->n].data = NULL;
    if (punch_sim_reflect_decode(d->data, d->len, &p->seen[p->n]) != 0)
        memset(&p->seen[p->n], 0, sizeof(p->seen[p->n]));
    p->n++;
}

static punch_sim_endpoint probe_ep(probe *p)
{
    memset(p, 0, sizeof(*p));
    return (punch_sim_endpoint){.on_datagram = probe_rx, .ctx = p};
}

/*
 *   A 10.0.0.2 --+
 *                NAT 203.0.113.1 -- R -- S1 198.51.100.1, S2 198.51.100.2,
 *   B 10.0.0.3 --+                        O 192.0.2.9
 */
typedef struct topo {
    punch_sim *sim;
    int a, b, nat, r, s1, s2, o;
    punch_addr A, B, S1, S2, O, PUB;
    probe pa, pb, po;
} topo;

static const punch_sim_link_cfg LAN = {.delay_us = 200};
static const punch_sim_link_cfg WAN = {.delay_us = 10 * MS};

static void build(topo *t, const char *nat_spec)
{
    punch_sim_cfg scfg = {.seed = seed};
    memset(t, 0, sizeof(*t));
    assert_int_equal(punch_sim_new(&t->sim, &scfg), 0);
    punch_sim *sim = t->sim;
    t->A = v4(10, 0, 0, 2, 5000);
    t->B = v4(10, 0, 0, 3, 5000);
    t->S1 = v4(198, 51, 100, 1, 3478);
    t->S2 = v4(198, 51, 100, 2, 3478);
    t->O = v4(192, 0, 2, 9, 4000);
    t->PUB = v4(203, 0, 113, 1, 0);

    punch_nat_cfg ncfg;
    punch_nat_cfg_default(&ncfg);
    ncfg.max_mappings = 64;
    ncfg.n_public = 1;
    ncfg.public_ip[0] = t->PUB;
    char err[128];
    if (punch_nat_cfg_parse(&ncfg, nat_spec, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    t->nat = punch_sim_add_nat(sim, &ncfg);
    assert_true(t->nat >= 0);
    t->a = punch_sim_add_host(sim);
    t->b = punch_sim_add_host(sim);
    t->r = punch_sim_add_router(sim);
    t->s1 = punch_sim_add_host(sim);
    t->s2 = punch_sim_add_host(sim);
    t->o = punch_sim_add_host(sim);

    punch_addr none = {0};
    int la = punch_sim_link(sim, &(punch_sim_end){t->a, t->A, false},
                            &(punch_sim_end){t->nat, none, true}, &LAN);
    int lb = punch_sim_link(sim, &(punch_sim_end){t->b, t->B, false},
                            &(punch_sim_end){t->nat, none, true}, &LAN);
    int lr = punch_sim_link(sim, &(punch_sim_end){t->nat, t->PUB, false},
                            &(punch_sim_end){t->r, none, false}, &WAN);
    int l1 = punch_sim_link(sim, &(punch_sim_end){t->s1, t->S1, false},
                            &(punch_sim_end){t->r, none, false}, &WAN);
    int l2 = punch_sim_link(sim, &(punch_sim_end){t->s2, t->S2, false},
                            &(punch_sim_end){t->r, none, false}, &WAN);
    int lo = punch_sim_link(sim, &(punch_sim_end){t->o, t->O, false},
                            &(punch_sim_end){t->r, none, false}, &WAN);
    assert_true(la >= 0 && lb >= 0 && lr >= 0 && l1 >= 0 && l2 >= 0 && lo >= 0);
    assert_int_equal(punch_sim_route(sim, t->nat, &t->A, 32, la), 0);
    assert_int_equal(punch_sim_route(sim, t->nat, &t->B, 32, lb), 0);
    none.family = PUNCH_AF_INET; /* 0.0.0.0/0 */
    assert_int_equal(punch_sim_route(sim, t->nat, &none, 0, lr), 0);
    assert_int_equal(punch_sim_route(sim, t->r, &t->PUB, 24, lr), 0);
    assert_int_equal(punch_sim_route(sim, t->r, &t->A, 8, lr), 0); /* firewall preset */
    assert_int_equal(punch_sim_route(sim, t->r, &t->S1, 32, l1), 0);
    assert_int_equal(punch_sim_route(sim, t->r, &t->S2, 32, l2), 0);
    assert_int_equal(punch_sim_route(sim, t->r, &t->O, 32, lo), 0);

    punch_sim_attach(sim, t->a, &(punch_sim_endpoint){.on_datagram = probe_rx, .ctx = &t->pa});
    punch_sim_attach(sim, t->b, &(punch_sim_endpoint){.on_datagram = probe_rx, .ctx = &t->pb});
    punch_sim_attach(sim, t->o, &(punch_sim_endpoint){.on_datagram = probe_rx, .ctx = &t->po});
    punch_sim_attach(sim, t->s1, &punch_sim_reflector);
    punch_sim_attach(sim, t->s2, &punch_sim_reflector);
}

static void send_udp(punch_sim *sim, int host, punch_addr from, punch_addr to)
{
    static const uint8_t hello[] = "hello";
    punch_sim_datagram d = {.local = from, .remote = to, .data = hello, .len = sizeof(hello)};
    assert_int_equal(punch_sim_send(sim, host, &d), 0);
}

/* A asks a reflector what it looks like from there. */
static punch_addr observe(topo *t, punch_addr from, punch_addr server)
{
    size_t before = t->pa.n;
    send_udp(t->sim, t->a, from, server);
    punch_sim_run(t->sim, punch_sim_now(t->sim) + SEC);
    CHECK(t->sim, t->pa.n == before + 1);
    return t->pa.seen[before];
}

static const char *const presets[] = {"p2p", "full-cone", "restricted-cone",
                                      "port-restricted-cone", "symmetric-sequential",
                                      "symmetric-random", "firewall", "basic-nat", "cgnat"};
#define N_PRESETS (sizeof(presets) / sizeof(presets[0]))

/* The public endpoints S1, S1 on another port and S2 observe are equal or
 * not as the preset's mapping behaviour says (RFC 4787 §4.1). */
static void mapping_of_every_preset(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_PRESETS; i++) {
        topo t;
        build(&t, presets[i]);
        const punch_nat_cfg *cfg = punch_nat_cfg_get(punch_sim_nat(t.sim, t.nat));
        punch_addr p1 = observe(&t, t.A, t.S1);
        punch_addr p1b = observe(&t, t.A, with_port(t.S1, 3479));
        punch_addr p2 = observe(&t, t.A, t.S2);
        if (cfg->mode == PUNCH_NAT_FIREWALL) {
            CHECK(t.sim, punch_addr_equal(&p1, &t.A));
        } else {
            CHECK(t.sim, punch_addr_same_ip(&p1, &t.PUB));
        }
        if (cfg->mode == PUNCH_NAT_BASIC)
            CHECK(t.sim, p1.port == t.A.port);
        punch_nat_mapping m = cfg->mode == PUNCH_NAT_NAPT ? cfg->mapping : PUNCH_NAT_EIM;
        CHECK(t.sim, punch_addr_equal(&p1, &p1b) == (m != PUNCH_NAT_APDM));
        CHECK(t.sim, punch_addr_equal(&p1, &p2) == (m == PUNCH_NAT_EIM));
        punch_sim_free(t.sim);
    }
}

/* After A talked to S1:3478 only, who else gets through (RFC 4787 §5)? */
static void filtering_of_every_preset(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_PRESETS; i++) {
        topo t;
        build(&t, presets[i]);
        const punch_nat_cfg *cfg = punch_nat_cfg_get(punch_sim_nat(t.sim, t.nat));
        punch_addr pub = observe(&t, t.A, t.S1);
        size_t n = t.pa.n;
        send_udp(t.sim, t.s1, t.S1, pub); /* the same endpoint: always */
        punch_sim_run(t.sim, punch_sim_now(t.sim) + SEC);
        CHECK(t.sim, t.pa.n == n + 1);
        send_udp(t.sim, t.s1, with_port(t.S1, 9), pub); /* same IP, other port */
        punch_sim_run(t.sim, punch_sim_now(t.sim) + SEC);
        bool port_ok = t.pa.n == n + 2;
        CHECK(t.sim, port_ok == (cfg->filtering != PUNCH_NAT_APDF));
        size_t m = t.pa.n;
        send_udp(t.sim, t.o, t.O, pub); /* another IP */
        punch_sim_run(t.sim, punch_sim_now(t.sim) + SEC);
        CHECK(t.sim, (t.pa.n == m + 1) == (cfg->filtering == PUNCH_NAT_EIF));
        if (t.pa.n == m + 1)
            CHECK(t.sim, punch_addr_equal(&t.pa.rx[m].remote, &t.O));
        punch_sim_free(t.sim);
    }
}

/* RFC 4787 §6 / draft §3.3.3: A reaches B through B's public endpoint only
 * with hairpinning, and sees it come from A's public endpoint. */
static void hairpin_on_and_off(void **state)
{
    (void)state;
    for (int on = 0; on < 2; on++) {
        topo t;
        build(&t, on ? "p2p" : "p2p,hairpin=off");
        punch_addr pa = observe(&t, t.A, t.S1);
        send_udp(t.sim, t.b, t.B, t.S1);
        punch_sim_run(t.sim, punch_sim_now(t.sim) + SEC);
        CHECK(t.sim, t.pb.n == 1);
        punch_addr pb = t.pb.seen[0];
        send_udp(t.sim, t.a, t.A, pb);
        punch_sim_run(t.sim, punch_sim_now(t.sim) + SEC);
        CHECK(t.sim, t.pb.n == (on ? 2u : 1u));
        if (on) {
            CHECK(t.sim, punch_addr_equal(&t.pb.rx[1].remote, &pa));
            CHECK(t.sim, punch_sim_counters_get(t.sim)->nat_hairpinned == 1);
        }
        punch_sim_free(t.sim);
    }
}

/* The UDP mapping times out in virtual time: a full-cone mapping is
 * reachable until udp-timeout after A's last packet, then gone; the NAT
 * reports the expiry at the deadline. */
static void mapping_timeout_in_virtual_time(void **state)
{
    (void)state;
    topo t;
    build(&t, "full-cone,udp-timeout=30s");
    send_udp(t.sim, t.a, t.A, t.S1);
    /* A's packet reaches the NAT after the 200 us LAN hop: t = 0 ms */
    punch_sim_run(t.sim, SEC);
    CHECK(t.sim, t.pa.n == 1);
    punch_addr pub = t.pa.seen[0];
    punch_sim_run(t.sim, 29 * SEC);
    send_udp(t.sim, t.o, t.O, pub); /* reaches the NAT at 29.010 s: in time */
    punch_sim_run(t.sim, 30 * SEC - 1);
    CHECK(t.sim, t.pa.n == 2);
    punch_nat *nat = punch_sim_nat(t.sim, t.nat);
    CHECK(t.sim, punch_nat_mapping_count(nat) == 1);
    punch_sim_run(t.sim, 30 * SEC); /* the NAT's timer fires at the deadline */
    CHECK(t.sim, punch_nat_mapping_count(nat) == 0);
    punch_nat_event ev;
    CHECK(t.sim, punch_nat_poll_event(nat, &ev) == 1 && ev.kind == PUNCH_NAT_EV_MAPPING_CREATED);
    CHECK(t.sim, punch_nat_poll_event(nat, &ev) == 1 && ev.kind == PUNCH_NAT_EV_MAPPING_EXPIRED);
    CHECK(t.sim, ev.t_ms == 30000);
    send_udp(t.sim, t.o, t.O, pub);
    punch_sim_run(t.sim, 31 * SEC);
    CHECK(t.sim, t.pa.n == 2);
    punch_sim_free(t.sim);
}

/* Draft §3.5: A and B behind port-restricted NATs that answer unsolicited
 * SYNs with RST; both send a SYN to the other's public endpoint at the same
 * moment: each SYN leaves its own NAT before the other's arrives, so both
 * get through. When only A sends, B's NAT answers with a RST. */
typedef struct two_nats {
    punch_sim *sim;
    int a, b, na, nb, r, s;
    punch_addr A, B, S;
    probe pa, pb;
} two_nats;

static void build_two_nats(two_nats *t, const char *spec)
{
    punch_sim_cfg scfg = {.seed = seed};
    memset(t, 0, sizeof(*t));
    assert_int_equal(punch_sim_new(&t->sim, &scfg), 0);
    punch_sim *sim = t->sim;
    t->A = v4(10, 0, 1, 2, 6000);
    t->B = v4(10, 0, 2, 2, 7000);
    t->S = v4(198, 51, 100, 1, 3478);
    punch_addr pub_a = v4(203, 0, 113, 1, 0), pub_b = v4(203, 0, 113, 2, 0), any = {0};
    any.family = PUNCH_AF_INET;
    int nats[2];
    for (int i = 0; i < 2; i++) {
        punch_nat_cfg c;
        punch_nat_cfg_default(&c);
        c.max_mappings = 32;
        c.n_public = 1;
        c.public_ip[0] = i ? pub_b : pub_a;
        assert_int_equal(punch_nat_cfg_parse(&c, spec, NULL, 0), 0);
        nats[i] = punch_sim_add_nat(sim, &c);
        assert_true(nats[i] >= 0);
    }
    t->na = nats[0], t->nb = nats[1];
    t->a = punch_sim_add_host(sim);
    t->b = punch_sim_add_host(sim);
    t->r = punch_sim_add_router(sim);
    t->s = punch_sim_add_host(sim);
    punch_addr none = {0};
    int la = punch_sim_link(sim, &(punch_sim_end){t->a, t->A, false},
                            &(punch_sim_end){t->na, none, true}, &LAN);
    int lb = punch_sim_link(sim, &(punch_sim_end){t->b, t->B, false},
                            &(punch_sim_end){t->nb, none, true}, &LAN);
    int lra = punch_sim_link(sim, &(punch_sim_end){t->na, pub_a, false},
                             &(punch_sim_end){t->r, none, false}, &WAN);
    int lrb = punch_sim_link(sim, &(punch_sim_end){t->nb, pub_b, false},
                             &(punch_sim_end){t->r, none, false}, &WAN);
    int ls = punch_sim_link(sim, &(punch_sim_end){t->s, t->S, false},
                            &(punch_sim_end){t->r, none, false}, &WAN);
    assert_int_equal(punch_sim_route(sim, t->na, &t->A, 32, la), 0);
    assert_int_equal(punch_sim_route(sim, t->na, &any, 0, lra), 0);
    assert_int_equal(punch_sim_route(sim, t->nb, &t->B, 32, lb), 0);
    assert_int_equal(punch_sim_route(sim, t->nb, &any, 0, lrb), 0);
    assert_int_equal(punch_sim_route(sim, t->r, &pub_a, 32, lra), 0);
    assert_int_equal(punch_sim_route(sim, t->r, &pub_b, 32, lrb), 0);
    assert_int_equal(punch_sim_route(sim, t->r, &t->S, 32, ls), 0);
    punch_sim_attach(sim, t->a, &(punch_sim_endpoint){.on_datagram = probe_rx, .ctx = &t->pa});
    punch_sim_attach(sim, t->b, &(punch_sim_endpoint){.on_datagram = probe_rx, .ctx = &t->pb});
    punch_sim_attach(sim, t->s, &punch_sim_reflector);
}

static void send_tcp(punch_sim *sim, int host, punch_addr from, punch_addr to, uint8_t flags)
{
    punch_sim_datagram d = {.proto = PUNCH_IP_TCP, .tcp_flags = flags, .local = from,
                            .remote = to};
    assert_int_equal(punch_sim_send(sim, host, &d), 0);
}

static void tcp_simultaneous_open(void **state)
{
    (void)state;
    for (int both = 0; both < 2; both++) {
        two_nats t;
        build_two_nats(&t, "port-restricted-cone,syn=rst");
        /* each learns its TCP public endpoint from S (a SYN, answered SYN|ACK) */
        send_tcp(t.sim, t.a, t.A, t.S, PUNCH_TCP_SYN);
        send_tcp(t.sim, t.b, t.B, t.S, PUNCH_TCP_SYN);
        punch_sim_run(t.sim, SEC);
        CHECK(t.sim, t.pa.n == 1 && t.pb.n == 1);
        punch_addr pa = t.pa.seen[0], pb = t.pb.seen[0];
        CHECK(t.sim, pa.port == t.A.port && pb.port == t.B.port); /* preserved */
        send_tcp(t.sim, t.a, t.A, pb, PUNCH_TCP_SYN);
        if (both)
            send_tcp(t.sim, t.b, t.B, pa, PUNCH_TCP_SYN);
        punch_sim_run(t.sim, 2 * SEC);
        if (both) {
            CHECK(t.sim, t.pa.n == 2 && t.pb.n == 2);
            CHECK(t.sim, t.pb.rx[1].tcp_flags == PUNCH_TCP_SYN);
            CHECK(t.sim, punch_addr_equal(&t.pb.rx[1].remote, &pa));
            CHECK(t.sim, punch_addr_equal(&t.pa.rx[1].remote, &pb));
            CHECK(t.sim, punch_sim_counters_get(t.sim)->nat_rst == 0);
        } else {
            /* A hears a RST from B's public endpoint */
            CHECK(t.sim, t.pb.n == 1 && t.pa.n == 2);
            CHECK(t.sim, t.pa.rx[1].tcp_flags & PUNCH_TCP_RST);
            CHECK(t.sim, punch_addr_equal(&t.pa.rx[1].remote, &pb));
        }
        punch_sim_free(t.sim);
    }
}

/* A direct link with loss, duplication, jitter and reordering: over many
 * packets the rates are as configured, within a bound. */
typedef struct counter {
    uint64_t n, dups, out_of_order, last;
    uint8_t seen[20000];
} counter;

static void count_rx(void *ctx, punch_sim *sim, int host, uint64_t now,
                     const punch_sim_datagram *d)
{
    (void)sim, (void)host, (void)now;
    counter *c = ctx;
    uint64_t seq = 0;
    memcpy(&seq, d->data, sizeof(seq));
    c->n++;
    if (c->seen[seq])
        c->dups++;
    else if (seq < c->last)
        c->out_of_order++;
    c->seen[seq] = 1;
    if (seq > c->last)
        c->last = seq;
}

static void link_statistics(void **state)
{
    (void)state;
    punch_sim *sim;
    assert_int_equal(punch_sim_new(&sim, &(punch_sim_cfg){.seed = seed}), 0);
    int x = punch_sim_add_host(sim), y = punch_sim_add_host(sim);
    punch_addr X = v4(192, 0, 2, 1, 1), Y = v4(192, 0, 2, 2, 2);
    punch_sim_link_cfg l = {.delay_us = 5 * MS, .jitter_us = 100, .loss = 0.10, .dup = 0.05,
                            .reorder = 0.10, .reorder_us = 3 * MS};
    assert_true(punch_sim_link(sim, &(punch_sim_end){x, X, false}, &(punch_sim_end){y, Y, false},
                               &l) >= 0);
    static counter c;
    memset(&c, 0, sizeof(c));
    punch_sim_attach(sim, y, &(punch_sim_endpoint){.on_datagram = count_rx, .ctx = &c});
    const uint64_t N = 20000;
    for (uint64_t i = 0; i < N; i++) {
        punch_sim_datagram d = {.local = X, .remote = Y, .data = (uint8_t *)&i, .len = sizeof(i)};
        assert_int_equal(punch_sim_send(sim, x, &d), 0);
        punch_sim_run(sim, punch_sim_now(sim) + MS);
    }
    punch_sim_run(sim, punch_sim_now(sim) + SEC);
    const punch_sim_counters *k = punch_sim_counters_get(sim);
    double lost = (double)k->lost / N, dup = (double)c.dups / (N - k->lost);
    double ooo = (double)c.out_of_order / (N - k->lost);
    CHECK(sim, lost > 0.09 && lost < 0.11);
    CHECK(sim, dup > 0.04 && dup < 0.06);
    CHECK(sim, c.n == N - k->lost + k->duplicated);
    /* a held-back packet (3 ms) arrives after the two sent 1 ms and 2 ms
     * later, so it counts as out of order unless those were lost */
    CHECK(sim, ooo > 0.08 && ooo < 0.11);
    punch_sim_free(sim);
}

/* Replay: the same seed gives the same trace, another seed another one. */
static uint64_t lossy_run(uint64_t s)
{
    punch_sim *sim;
    assert_int_equal(punch_sim_new(&sim, &(punch_sim_cfg){.seed = s}), 0);
    punch_nat_cfg ncfg;
    punch_nat_cfg_default(&ncfg);
    assert_int_equal(punch_nat_cfg_parse(&ncfg, "symmetric-random,public=203.0.113.1,mappings=512",
                                         NULL, 0),
                     0);
    int nat = punch_sim_add_nat(sim, &ncfg);
    int a = punch_sim_add_host(sim), srv = punch_sim_add_host(sim);
    punch_addr A = v4(10, 0, 0, 2, 1), S = v4(198, 51, 100, 1, 3478), none = {0};
    punch_sim_link_cfg lossy = {.delay_us = 10 * MS, .jitter_us = 5 * MS, .loss = 0.2,
                                .dup = 0.1, .reorder = 0.1};
    int la = punch_sim_link(sim, &(punch_sim_end){a, A, false}, &(punch_sim_end){nat, none, true},
                            &lossy);
    int ls = punch_sim_link(sim, &(punch_sim_end){nat, v4(203, 0, 113, 1, 0), false},
                            &(punch_sim_end){srv, S, false}, &lossy);
    punch_sim_route(sim, nat, &A, 32, la);
    none.family = PUNCH_AF_INET;
    punch_sim_route(sim, nat, &none, 0, ls);
    probe p;
    punch_sim_endpoint ep = probe_ep(&p);
    punch_sim_attach(sim, a, &ep);
    punch_sim_attach(sim, srv, &punch_sim_reflector);
    for (uint16_t i = 0; i < 200; i++) {
        send_udp(sim, a, with_port(A, (uint16_t)(1 + i % 7)), with_port(S, (uint16_t)(1 + i)));
        punch_sim_run(sim, punch_sim_now(sim) + 3 * MS);
    }
    punch_sim_run(sim, punch_sim_now(sim) + 10 * SEC);
    CHECK(sim, p.n > 20);
    uint64_t h = punch_sim_trace_hash(sim);
    punch_sim_free(sim);
    return h;
}

static void same_seed_same_trace(void **state)
{
    (void)state;
    uint64_t h1 = lossy_run(seed), h2 = lossy_run(seed), h3 = lossy_run(seed + 1);
    assert_true(h1 == h2);
    assert_true(h1 != h3);
}

/* Endpoint timers fire exactly at the time asked, in virtual time. */
typedef struct ticker {
    uint64_t next, fired_at[4];
    int n;
} ticker;

static void tick(void *ctx, punch_sim *sim, int host, uint64_t now)
{
    (void)sim, (void)host;
    ticker *t = ctx;
    t->fired_at[t->n++] = now;
    t->next = t->n < 4 ? now + 250 * MS : UINT64_MAX;
}

static uint64_t tick_next(void *ctx)
{
    return ((ticker *)ctx)->next;
}

static void ignore_rx(void *ctx, punch_sim *sim, int host, uint64_t now,
                      const punch_sim_datagram *d)
{
    (void)ctx, (void)sim, (void)host, (void)now, (void)d;
}

static void endpoint_timers(void **state)
{
    (void)state;
    punch_sim *sim;
    assert_int_equal(punch_sim_new(&sim, &(punch_sim_cfg){.seed = seed}), 0);
    int h = punch_sim_add_host(sim);
    ticker t = {.next = 1000};
    punch_sim_attach(sim, h, &(punch_sim_endpoint){.on_datagram = ignore_rx, .on_timeout = tick,
                                                   .next_timeout = tick_next, .ctx = &t});
    punch_sim_run(sim, 999);
    CHECK(sim, t.n == 0);
    punch_sim_run(sim, 10 * SEC);
    CHECK(sim, t.n == 4);
    CHECK(sim, t.fired_at[0] == 1000 && t.fired_at[3] == 1000 + 3 * 250 * MS);
    punch_sim_free(sim);
}

int main(void)
{
    const char *env = getenv("PUNCH_SIM_SEED");
    if (env)
        seed = strtoull(env, NULL, 0);
    printf("test_sim: seed %llu\n", (unsigned long long)seed);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(mapping_of_every_preset),
        cmocka_unit_test(filtering_of_every_preset),
        cmocka_unit_test(hairpin_on_and_off),
        cmocka_unit_test(mapping_timeout_in_virtual_time),
        cmocka_unit_test(tcp_simultaneous_open),
        cmocka_unit_test(link_statistics),
        cmocka_unit_test(same_seed_same_trace),
        cmocka_unit_test(endpoint_timers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
