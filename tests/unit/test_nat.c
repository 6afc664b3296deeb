/* SPDX-License-Identifier: MIT */
/* The NAT behaviour model (src/nat): one test per RFC 4787 / RFC 5382
 * requirement and per guideline of the draft's §5, in virtual time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "nat/nat.h"
#include "nat_fixture.h"

#define MIN_MS 60000ull

static punch_addr v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint16_t port)
{
    punch_addr x = {.family = PUNCH_AF_INET, .port = port};
    x.ip[0] = a, x.ip[1] = b, x.ip[2] = c, x.ip[3] = d;
    return x;
}

/* Inside hosts 10.0.0.x, the NAT 203.0.113.1, outside 198.51.100.x. */
static const punch_addr A = V4(10, 0, 0, 2, 5000);
static const punch_addr B = V4(10, 0, 0, 3, 5000);
static const punch_addr S1 = V4(198, 51, 100, 1, 3478);
static const punch_addr S2 = V4(198, 51, 100, 2, 3478);
static const punch_addr PUB = V4(203, 0, 113, 1, 0);

static uint64_t seed = 42;

/* A NAT from a spec, with small tables and events on. */
static punch_nat *make(const char *spec)
{
    punch_nat_cfg cfg;
    punch_nat_cfg_default(&cfg);
    nat_fixture_cfg(&cfg, PUB, &seed);
    cfg.max_events = 16;
    char err[128];
    int rc = punch_nat_cfg_parse(&cfg, spec, err, sizeof(err));
    if (rc != 0)
        fail_msg("%s: %s", spec, err);
    punch_nat *nat = NULL;
    assert_int_equal(punch_nat_new(&nat, &cfg), 0);
    return nat;
}

static punch_nat_verdict out_flags(punch_nat *nat, uint64_t now, uint8_t proto, punch_addr src,
                                   punch_addr dst, uint8_t flags, punch_nat_tuple *res)
{
    punch_nat_tuple in = {.proto = proto, .src = src, .dst = dst};
    memset(res, 0, sizeof(*res));
    return punch_nat_outbound(nat, now, &in, flags, res);
}

static punch_nat_verdict in_flags(punch_nat *nat, uint64_t now, uint8_t proto, punch_addr src,
                                  punch_addr dst, uint8_t flags, punch_nat_tuple *res)
{
    punch_nat_tuple in = {.proto = proto, .src = src, .dst = dst};
    memset(res, 0, sizeof(*res));
    return punch_nat_inbound(nat, now, &in, flags, res);
}

/* UDP out; asserts it is forwarded and returns the public source. */
static punch_addr udp_out(punch_nat *nat, uint64_t now, punch_addr src, punch_addr dst)
{
    punch_nat_tuple res;
    assert_int_equal(out_flags(nat, now, PUNCH_IP_UDP, src, dst, 0, &res), PUNCH_NAT_FORWARD);
    assert_true(punch_addr_equal(&res.dst, &dst));
    return res.src;
}

/* UDP in from src to pub; returns the verdict (and checks the translation). */
static punch_nat_verdict udp_in(punch_nat *nat, uint64_t now, punch_addr src, punch_addr pub,
                                punch_addr expect_inside)
{
    punch_nat_tuple res;
    punch_nat_verdict v = in_flags(nat, now, PUNCH_IP_UDP, src, pub, 0, &res);
    if (v == PUNCH_NAT_FORWARD) {
        assert_true(punch_addr_equal(&res.dst, &expect_inside));
        assert_true(punch_addr_equal(&res.src, &src));
    }
    return v;
}

/* RFC 4787 REQ-1 (and draft §5.3): eim gives one public endpoint for every
 * destination. */
static void req1_eim_same_mapping_every_destination(void **state)
{
    (void)state;
    punch_nat *nat = make("p2p");
    punch_addr p1 = udp_out(nat, 0, A, S1);
    punch_addr p2 = udp_out(nat, 1, A, S2);
    punch_addr p3 = udp_out(nat, 2, A, with_port(S2, 9999));
    assert_true(punch_addr_equal(&p1, &p2));
    assert_true(punch_addr_equal(&p1, &p3));
    assert_true(punch_addr_same_ip(&p1, &PUB));
    assert_int_equal(punch_nat_mapping_count(nat), 1);
    assert_int_equal(punch_nat_session_count(nat), 3);
    punch_nat_free(nat);
}

/* RFC 4787 §4.1: adm depends on the remote IP only, apdm on IP and port. */
static void mapping_adm_and_apdm(void **state)
{
    (void)state;
    punch_nat *nat = make("mapping=adm");
    punch_addr p1 = udp_out(nat, 0, A, S1);
    punch_addr p2 = udp_out(nat, 0, A, with_port(S1, 1));
    punch_addr p3 = udp_out(nat, 0, A, S2);
    assert_true(punch_addr_equal(&p1, &p2));
    assert_false(punch_addr_equal(&p1, &p3));
    punch_nat_free(nat);

    nat = make("symmetric-sequential");
    p1 = udp_out(nat, 0, A, S1);
    p2 = udp_out(nat, 0, A, with_port(S1, 1));
    p3 = udp_out(nat, 0, A, S1);
    assert_false(punch_addr_equal(&p1, &p2));
    assert_true(punch_addr_equal(&p1, &p3));
    assert_int_equal(punch_nat_mapping_count(nat), 2);
    punch_nat_free(nat);
}

/* RFC 4787 REQ-2: "paired" pooling, one inside IP -> one public IP. */
static void req2_paired_pooling(void **state)
{
    (void)state;
    punch_nat_cfg cfg;
    punch_nat_cfg_default(&cfg);
    cfg.max_mappings = 256;
    assert_int_equal(punch_nat_cfg_parse(&cfg,
                                         "symmetric-random,public=203.0.113.1+203.0.113.2+"
                                         "203.0.113.3+203.0.113.4",
                                         NULL, 0),
                     0);
    assert_int_equal(cfg.n_public, 4);
    cfg.random = splitmix;
    cfg.random_ctx = &seed;
    punch_nat *nat;
    assert_int_equal(punch_nat_new(&nat, &cfg), 0);
    bool ip_used[4] = {false};
    for (uint8_t host = 2; host < 18; host++) {
        punch_addr first = udp_out(nat, 0, v4(10, 0, 0, host, 1000), S1);
        for (uint16_t i = 0; i < 8; i++) {
            punch_addr p = udp_out(nat, 0, v4(10, 0, 0, host, (uint16_t)(1000 + i)),
                                   with_port(S2, (uint16_t)(100 + i)));
            assert_true(punch_addr_same_ip(&p, &first));
        }
        ip_used[first.ip[3] - 1] = true;
    }
    /* 16 hosts spread over the pool (keyed hash); not all on one address */
    int used = 0;
    for (int i = 0; i < 4; i++)
        used += ip_used[i];
    assert_true(used >= 2);
    punch_nat_free(nat);
}

/* RFC 4787 REQ-3 a: no port overloading: two inside endpoints never share a
 * public endpoint, even when a symmetric NAT could tell them apart by
 * destination. Port preservation falls back when the port is taken. */
static void req3_no_port_overloading_preserve_falls_back(void **state)
{
    (void)state;
    punch_nat *nat = make("p2p");
    punch_addr pa = udp_out(nat, 0, A, S1);
    punch_addr pb = udp_out(nat, 0, B, S2);
    assert_int_equal(pa.port, 5000); /* preserved */
    assert_int_not_equal(pb.port, 5000); /* taken: another port */
    assert_int_equal(pb.port, 5001);     /* the next free one */
    punch_nat_free(nat);

    nat = make("symmetric-sequential,port-range=2000-2003");
    /* 4 ports, 4 mappings from 2 hosts to 2 servers: all distinct */
    punch_addr seen[4];
    seen[0] = udp_out(nat, 0, A, S1);
    seen[1] = udp_out(nat, 0, B, S2);
    seen[2] = udp_out(nat, 0, A, S2);
    seen[3] = udp_out(nat, 0, B, S1);
    for (int i = 0; i < 4; i++)
        for (int j = i + 1; j < 4; j++)
            assert_int_not_equal(seen[i].port, seen[j].port);
    /* a fifth is refused rather than overloading a port */
    punch_nat_tuple res;
    assert_int_equal(out_flags(nat, 0, PUNCH_IP_UDP, v4(10, 0, 0, 9, 1), S1, 0, &res),
                     PUNCH_NAT_DROP);
    assert_int_equal(punch_nat_counters_get(nat)->refused_no_port, 1);
    punch_nat_free(nat);
}

/* RFC 4787 REQ-4: parity preservation is only RECOMMENDED; the model does
 * not keep parity, so sequential step 1 alternates it. Pinned so a change
 * is a decision, not an accident. */
static void req4_parity_not_preserved(void **state)
{
    (void)state;
    punch_nat *nat = make("symmetric-sequential,port-range=3000-3999");
    punch_addr p1 = udp_out(nat, 0, A, S1);
    punch_addr p2 = udp_out(nat, 0, A, S2);
    assert_int_equal(p1.port, 3000);
    assert_int_equal(p2.port, 3001);
    punch_nat_free(nat);
}

/* RFC 4787 REQ-5: the UDP mapping timer is >= 2 min; the default is 5 min
 * (draft §5.5) and it expires exactly at its deadline. */
static void req5_udp_timeout_exact(void **state)
{
    (void)state;
    punch_nat_cfg cfg;
    punch_nat_cfg_default(&cfg);
    assert_true(cfg.udp_timeout_ms >= 2 * MIN_MS);
    assert_int_equal(cfg.udp_timeout_ms, 5 * MIN_MS);

    punch_nat *nat = make("p2p");
    uint64_t t0 = 1000;
    punch_addr p = udp_out(nat, t0, A, S1);
    uint64_t deadline = t0 + 5 * MIN_MS;
    assert_int_equal(punch_nat_next_expiry(nat), deadline);
    assert_int_equal(punch_nat_expire(nat, deadline - 1), 0);
    assert_int_equal(udp_in(nat, deadline - 1, S1, p, A), PUNCH_NAT_FORWARD);
    punch_addr got;
    assert_int_equal(punch_nat_lookup(nat, deadline - 1, PUNCH_IP_UDP, &A, &S1, &got), 0);
    assert_int_equal(punch_nat_lookup(nat, deadline, PUNCH_IP_UDP, &A, &S1, &got),
                     PUNCH_ERR_NOTFOUND);
    assert_int_equal(punch_nat_expire(nat, deadline), 1);
    assert_int_equal(punch_nat_mapping_count(nat), 0);
    assert_int_equal(punch_nat_session_count(nat), 0);
    assert_int_equal(punch_nat_next_expiry(nat), UINT64_MAX);
    assert_int_equal(udp_in(nat, deadline, S1, p, A), PUNCH_NAT_DROP);

    /* the same deadline holds without punch_nat_expire(): lookups see it */
    punch_nat_free(nat);
    nat = make("p2p,udp-timeout=30s");
    p = udp_out(nat, 0, A, S1);
    assert_int_equal(udp_in(nat, 29999, S1, p, A), PUNCH_NAT_FORWARD);
    assert_int_equal(udp_in(nat, 30000, S1, p, A), PUNCH_NAT_DROP);
    assert_int_equal(punch_nat_counters_get(nat)->dropped_no_mapping, 1);
    punch_nat_free(nat);
}

/* RFC 4787 REQ-6: outbound refreshes; inbound only when configured. */
static void req6_refresh_direction(void **state)
{
    (void)state;
    punch_nat *nat = make("p2p,udp-timeout=60s");
    punch_addr p = udp_out(nat, 0, A, S1);
    udp_out(nat, 50000, A, S1); /* refresh: deadline 110000 */
    assert_int_equal(udp_in(nat, 100000, S1, p, A), PUNCH_NAT_FORWARD); /* no refresh */
    assert_int_equal(punch_nat_expire(nat, 109999), 0);
    assert_int_equal(punch_nat_expire(nat, 110000), 1);
    punch_nat_free(nat);

    nat = make("p2p,udp-timeout=60s,refresh=both");
    p = udp_out(nat, 0, A, S1);
    assert_int_equal(udp_in(nat, 50000, S1, p, A), PUNCH_NAT_FORWARD); /* refresh */
    assert_int_equal(punch_nat_expire(nat, 109999), 0);
    assert_int_equal(punch_nat_expire(nat, 110000), 1);
    punch_nat_free(nat);
}

/* RFC 4787 REQ-8 / §5: eif, adf, apdf, after A sent to S1 only. */
static void req8_filtering(void **state)
{
    (void)state;
    static const struct {
        const char *spec;
        punch_nat_verdict same_ip_new_port, new_ip;
    } cases[] = {
        {"full-cone", PUNCH_NAT_FORWARD, PUNCH_NAT_FORWARD},
        {"restricted-cone", PUNCH_NAT_FORWARD, PUNCH_NAT_DROP},
        {"port-restricted-cone", PUNCH_NAT_DROP, PUNCH_NAT_DROP},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        punch_nat *nat = make(cases[i].spec);
        punch_addr p = udp_out(nat, 0, A, S1);
        assert_int_equal(udp_in(nat, 1, S1, p, A), PUNCH_NAT_FORWARD);
        assert_int_equal(udp_in(nat, 1, with_port(S1, 4000), p, A), cases[i].same_ip_new_port);
        assert_int_equal(udp_in(nat, 1, S2, p, A), cases[i].new_ip);
        /* nothing reaches a public port without a mapping */
        assert_int_equal(udp_in(nat, 1, S1, with_port(p, (uint16_t)(p.port + 1)), A),
                         PUNCH_NAT_DROP);
        punch_nat_free(nat);
    }
}

/* Filtering follows sessions: under adf, a session that expired on its own
 * no longer opens its IP even though the mapping lives on. */
static void filtering_forgets_expired_sessions(void **state)
{
    (void)state;
    punch_nat *nat = make("restricted-cone,udp-timeout=60s");
    punch_addr p = udp_out(nat, 0, A, S1);
    udp_out(nat, 30000, A, S2); /* mapping now lives until 90000 */
    assert_int_equal(udp_in(nat, 59999, with_port(S1, 7), p, A), PUNCH_NAT_FORWARD);
    assert_int_equal(udp_in(nat, 60000, with_port(S1, 7), p, A), PUNCH_NAT_DROP);
    assert_int_equal(udp_in(nat, 60000, with_port(S2, 7), p, A), PUNCH_NAT_FORWARD);
    assert_int_equal(punch_nat_counters_get(nat)->dropped_filtered, 1);
    punch_nat_free(nat);
}

/* RFC 4787 REQ-9 (draft §5.6): hairpinning, with the sender's public
 * endpoint as source (REQ-9 a); off: dropped and counted. */
static void req9_hairpin(void **state)
{
    (void)state;
    punch_nat *nat = make("p2p");
    punch_addr pa = udp_out(nat, 0, A, S1);
    punch_addr pb = udp_out(nat, 0, B, S1);
    punch_nat_tuple res;
    assert_int_equal(out_flags(nat, 1, PUNCH_IP_UDP, A, pb, 0, &res), PUNCH_NAT_HAIRPIN);
    assert_true(punch_addr_equal(&res.src, &pa));
    assert_true(punch_addr_equal(&res.dst, &B));
    /* B answers A's public endpoint: looped back to A */
    assert_int_equal(out_flags(nat, 2, PUNCH_IP_UDP, B, pa, 0, &res), PUNCH_NAT_HAIRPIN);
    assert_true(punch_addr_equal(&res.src, &pb));
    assert_true(punch_addr_equal(&res.dst, &A));
    assert_int_equal(punch_nat_counters_get(nat)->hairpinned, 2);
    /* to a public port nobody holds: dropped */
    assert_int_equal(out_flags(nat, 3, PUNCH_IP_UDP, A, with_port(PUB, 1), 0, &res),
                     PUNCH_NAT_DROP);
    punch_nat_free(nat);

    /* filtering applies to hairpinned packets too */
    nat = make("port-restricted-cone,hairpin=on");
    pa = udp_out(nat, 0, A, S1);
    pb = udp_out(nat, 0, B, S1);
    assert_int_equal(out_flags(nat, 1, PUNCH_IP_UDP, A, pb, 0, &res), PUNCH_NAT_DROP);
    assert_int_equal(out_flags(nat, 2, PUNCH_IP_UDP, B, pa, 0, &res), PUNCH_NAT_HAIRPIN);
    assert_int_equal(out_flags(nat, 3, PUNCH_IP_UDP, A, pb, 0, &res), PUNCH_NAT_HAIRPIN);
    punch_nat_free(nat);

    nat = make("p2p,hairpin=off");
    pb = udp_out(nat, 0, B, S1);
    assert_int_equal(out_flags(nat, 1, PUNCH_IP_UDP, A, pb, 0, &res), PUNCH_NAT_DROP);
    assert_int_equal(punch_nat_counters_get(nat)->dropped_hairpin_off, 1);
    assert_int_equal(punch_nat_mapping_count(nat), 1); /* no mapping made for A */
    punch_nat_free(nat);
}

/* Draft §5.3.1: a binding made while the preserved port was taken is kept
 * for new sessions even after that port frees up. */
static void draft_5_3_1_binding_kept_when_port_frees(void **state)
{
    (void)state;
    punch_nat *nat = make("p2p,udp-timeout=60s");
    punch_addr a1234 = v4(10, 0, 0, 2, 1234), b1234 = v4(10, 0, 0, 3, 1234);
    punch_addr pb = udp_out(nat, 0, b1234, S1);
    assert_int_equal(pb.port, 1234);
    punch_addr pa = udp_out(nat, 1000, a1234, S1);
    assert_int_not_equal(pa.port, 1234);
    udp_out(nat, 50000, a1234, S1); /* A keeps its binding alive */
    assert_int_equal(punch_nat_expire(nat, 60000), 1); /* B's goes: 1234 is free */
    punch_addr pa2 = udp_out(nat, 61000, a1234, S2);   /* new session, to B */
    assert_true(punch_addr_equal(&pa, &pa2));
    punch_nat_free(nat);
}

/* Draft §5.4: the same consistency for TCP. */
static void draft_5_4_tcp_consistent(void **state)
{
    (void)state;
    punch_nat *nat = make("p2p");
    punch_nat_tuple r1, r2;
    assert_int_equal(out_flags(nat, 0, PUNCH_IP_TCP, A, S1, PUNCH_TCP_SYN, &r1),
                     PUNCH_NAT_FORWARD);
    assert_int_equal(out_flags(nat, 0, PUNCH_IP_TCP, A, S2, PUNCH_TCP_SYN, &r2),
                     PUNCH_NAT_FORWARD);
    assert_true(punch_addr_equal(&r1.src, &r2.src));
    /* TCP and UDP ports are separate spaces: 5000/udp is still free */
    punch_addr pu = udp_out(nat, 0, B, S1);
    assert_int_equal(pu.port, 5000);
    punch_nat_free(nat);
}

/* Sequential assignment with a step. */
static void sequential_step(void **state)
{
    (void)state;
    punch_nat *nat = make("symmetric-sequential,step=2,port-range=40000-40100");
    uint16_t prev = 0;
    for (uint16_t i = 0; i < 10; i++) {
        punch_addr p = udp_out(nat, 0, A, with_port(S1, (uint16_t)(100 + i)));
        if (i > 0)
            assert_int_equal(p.port, prev + 2);
        prev = p.port;
    }
    assert_int_equal(prev, 40018);
    punch_nat_free(nat);
}

/* Random assignment stays inside the pool and really varies. */
static void random_ports_within_pool(void **state)
{
    (void)state;
    punch_nat *nat = make("symmetric-random,port-range=50000-50999");
    uint16_t lo = UINT16_MAX, hi = 0;
    int ascending = 0;
    uint16_t prev = 0;
    for (uint16_t i = 0; i < 60; i++) {
        punch_addr p = udp_out(nat, 0, A, with_port(S1, (uint16_t)(100 + i)));
        assert_true(p.port >= 50000 && p.port <= 50999);
        lo = p.port < lo ? p.port : lo;
        hi = p.port > hi ? p.port : hi;
        ascending += p.port > prev;
        prev = p.port;
    }
    assert_true(hi - lo > 500);
    assert_true(ascending > 10 && ascending < 50);
    punch_nat_free(nat);
}

/* Draft §3.5: two SYNs crossing. The outbound SYN opens the way for the
 * peer's SYN even under apdf; then it is an established connection. */
static void tcp_simultaneous_open(void **state)
{
    (void)state;
    punch_nat *nat = make("port-restricted-cone,syn=rst");
    punch_nat_tuple r;
    assert_int_equal(out_flags(nat, 0, PUNCH_IP_TCP, A, S1, PUNCH_TCP_SYN, &r),
                     PUNCH_NAT_FORWARD);
    punch_addr p = r.src;
    assert_int_equal(in_flags(nat, 10, PUNCH_IP_TCP, S1, p, PUNCH_TCP_SYN, &r),
                     PUNCH_NAT_FORWARD);
    assert_true(punch_addr_equal(&r.dst, &A));
    /* SYN-ACKs both ways, then data: established, 2 h 4 min */
    assert_int_equal(out_flags(nat, 20, PUNCH_IP_TCP, A, S1, PUNCH_TCP_SYN | PUNCH_TCP_ACK, &r),
                     PUNCH_NAT_FORWARD);
    assert_int_equal(in_flags(nat, 30, PUNCH_IP_TCP, S1, p, PUNCH_TCP_ACK, &r),
                     PUNCH_NAT_FORWARD);
    uint64_t deadline = 30 + (2 * 60 + 4) * MIN_MS;
    assert_int_equal(punch_nat_expire(nat, deadline - 1), 0);
    assert_int_equal(punch_nat_expire(nat, deadline), 1);
    punch_nat_free(nat);
}

/* An unsolicited SYN: silently dropped by default (RFC 5382 REQ-4), a RST
 * when configured; either way counted as filtered. */
static void unsolicited_syn(void **state)
{
    (void)state;
    punch_nat *nat = make("port-restricted-cone");
    punch_nat_tuple r;
    assert_int_equal(out_flags(nat, 0, PUNCH_IP_TCP, A, S1, PUNCH_TCP_SYN, &r),
                     PUNCH_NAT_FORWARD);
    punch_addr p = r.src;
    assert_int_equal(in_flags(nat, 1, PUNCH_IP_TCP, S2, p, PUNCH_TCP_SYN, &r), PUNCH_NAT_DROP);
    punch_nat_free(nat);

    nat = make("port-restricted-cone,syn=rst");
    assert_int_equal(out_flags(nat, 0, PUNCH_IP_TCP, A, S1, PUNCH_TCP_SYN, &r),
                     PUNCH_NAT_FORWARD);
    p = r.src;
    assert_int_equal(in_flags(nat, 1, PUNCH_IP_TCP, S2, p, PUNCH_TCP_SYN, &r), PUNCH_NAT_RST);
    /* to a port with no mapping at all */
    assert_int_equal(in_flags(nat, 1, PUNCH_IP_TCP, S2, with_port(p, 1), PUNCH_TCP_SYN, &r),
                     PUNCH_NAT_RST);
    /* a stray ACK never gets a RST from the NAT */
    assert_int_equal(in_flags(nat, 1, PUNCH_IP_TCP, S2, p, PUNCH_TCP_ACK, &r), PUNCH_NAT_DROP);
    assert_int_equal(punch_nat_counters_get(nat)->rst, 2);
    punch_nat_free(nat);

    /* eif lets the SYN in and tracks the connection it starts */
    nat = make("full-cone");
    assert_int_equal(out_flags(nat, 0, PUNCH_IP_TCP, A, S1, PUNCH_TCP_SYN, &r),
                     PUNCH_NAT_FORWARD);
    p = r.src;
    assert_int_equal(in_flags(nat, 1, PUNCH_IP_TCP, S2, p, PUNCH_TCP_SYN, &r), PUNCH_NAT_FORWARD);
    assert_int_equal(punch_nat_session_count(nat), 2);
    punch_nat_free(nat);
}

/* Linux conntrack's CLOSE (rst-close=on, tcp_state.c): our SYN went out
 * and the peer's NAT answered it with RST, which closed our session; the
 * peer's SYN, now in the reply direction, is refused by our NAT (a RST of
 * its own with syn=rst, nothing without) until a SYN from inside opens the
 * session again. Without rst-close the session stays open (RFC 5382). */
static void rst_closes_session(void **state)
{
    (void)state;
    const char *const specs[] = {"port-restricted-cone,syn=rst,rst-close=on",
                                 "port-restricted-cone,rst-close=on",
                                 "port-restricted-cone,syn=rst"};
    const punch_nat_verdict peer_syn[] = {PUNCH_NAT_RST, PUNCH_NAT_DROP, PUNCH_NAT_FORWARD};
    for (int k = 0; k < 3; k++) {
        punch_nat *nat = make(specs[k]);
        punch_nat_tuple r;
        assert_int_equal(out_flags(nat, 0, PUNCH_IP_TCP, A, S1, PUNCH_TCP_SYN, &r),
                         PUNCH_NAT_FORWARD);
        punch_addr p = r.src;
        assert_int_equal(in_flags(nat, 1, PUNCH_IP_TCP, S1, p, PUNCH_TCP_RST | PUNCH_TCP_ACK, &r),
                         PUNCH_NAT_FORWARD);
        assert_int_equal(in_flags(nat, 2, PUNCH_IP_TCP, S1, p, PUNCH_TCP_SYN, &r), peer_syn[k]);
        assert_int_equal(punch_nat_counters_get(nat)->refused_closed, k < 2 ? 1 : 0);
        /* a SYN from inside, same ports: the session opens again */
        assert_int_equal(out_flags(nat, 3, PUNCH_IP_TCP, A, S1, PUNCH_TCP_SYN, &r),
                         PUNCH_NAT_FORWARD);
        assert_true(punch_addr_equal(&r.src, &p));
        assert_int_equal(in_flags(nat, 4, PUNCH_IP_TCP, S1, p, PUNCH_TCP_SYN, &r),
                         PUNCH_NAT_FORWARD);
        assert_true(punch_addr_equal(&r.dst, &A));
        punch_nat_free(nat);
    }
    /* a RST from inside closes it too; the SYN-ACK and ACK of a closed
     * session still pass (conntrack only refuses a SYN the reply way) */
    punch_nat *nat = make("port-restricted-cone,syn=rst,rst-close=on");
    punch_nat_tuple r;
    out_flags(nat, 0, PUNCH_IP_TCP, A, S1, PUNCH_TCP_SYN, &r);
    punch_addr p = r.src;
    assert_int_equal(out_flags(nat, 1, PUNCH_IP_TCP, A, S1, PUNCH_TCP_RST, &r), PUNCH_NAT_FORWARD);
    assert_int_equal(in_flags(nat, 2, PUNCH_IP_TCP, S1, p, PUNCH_TCP_ACK, &r), PUNCH_NAT_FORWARD);
    assert_int_equal(in_flags(nat, 3, PUNCH_IP_TCP, S1, p, PUNCH_TCP_SYN, &r), PUNCH_NAT_RST);
    punch_nat_free(nat);
    /* a session the remote's SYN made (eif): closed, the SYN from inside
     * is the reply way and is refused; the remote's opens it again */
    nat = make("full-cone,rst-close=on");
    out_flags(nat, 0, PUNCH_IP_TCP, A, S1, PUNCH_TCP_SYN, &r);
    p = r.src;
    assert_int_equal(in_flags(nat, 1, PUNCH_IP_TCP, S2, p, PUNCH_TCP_SYN, &r), PUNCH_NAT_FORWARD);
    assert_int_equal(in_flags(nat, 2, PUNCH_IP_TCP, S2, p, PUNCH_TCP_RST, &r), PUNCH_NAT_FORWARD);
    assert_int_equal(out_flags(nat, 3, PUNCH_IP_TCP, A, S2, PUNCH_TCP_SYN, &r), PUNCH_NAT_DROP);
    assert_int_equal(in_flags(nat, 4, PUNCH_IP_TCP, S2, p, PUNCH_TCP_SYN, &r), PUNCH_NAT_FORWARD);
    assert_int_equal(out_flags(nat, 5, PUNCH_IP_TCP, A, S2, PUNCH_TCP_SYN | PUNCH_TCP_ACK, &r),
                     PUNCH_NAT_FORWARD);
    assert_int_equal(punch_nat_counters_get(nat)->refused_closed, 1);
    punch_nat_free(nat);
}

/* TCP without a connection: a non-SYN segment does not create one. */
static void tcp_needs_syn(void **state)
{
    (void)state;
    punch_nat *nat = make("p2p");
    punch_nat_tuple r;
    assert_int_equal(out_flags(nat, 0, PUNCH_IP_TCP, A, S1, PUNCH_TCP_ACK, &r), PUNCH_NAT_DROP);
    assert_int_equal(punch_nat_mapping_count(nat), 0);
    assert_int_equal(punch_nat_counters_get(nat)->dropped_tcp_invalid, 1);
    punch_nat_free(nat);
}

/* RFC 5382 REQ-5: established vs transitory; FIN both ways shortens the
 * mapping's life to the transitory timeout. */
static void tcp_timeouts(void **state)
{
    (void)state;
    punch_nat *nat = make("p2p,tcp-timeout=1h,tcp-transitory-timeout=4m");
    punch_nat_tuple r;
    out_flags(nat, 0, PUNCH_IP_TCP, A, S1, PUNCH_TCP_SYN, &r);
    punch_addr p = r.src;
    /* only a SYN so far: transitory */
    assert_int_equal(punch_nat_next_expiry(nat), 4 * MIN_MS);
    in_flags(nat, 10, PUNCH_IP_TCP, S1, p, PUNCH_TCP_SYN | PUNCH_TCP_ACK, &r);
    out_flags(nat, 20, PUNCH_IP_TCP, A, S1, PUNCH_TCP_ACK, &r);
    assert_int_equal(punch_nat_expire(nat, 20 + 59 * MIN_MS), 0);
    out_flags(nat, 1000, PUNCH_IP_TCP, A, S1, PUNCH_TCP_FIN | PUNCH_TCP_ACK, &r);
    assert_int_equal(in_flags(nat, 2000, PUNCH_IP_TCP, S1, p, PUNCH_TCP_FIN | PUNCH_TCP_ACK, &r),
                     PUNCH_NAT_FORWARD);
    uint64_t deadline = 2000 + 4 * MIN_MS;
    assert_int_equal(punch_nat_expire(nat, deadline - 1), 0);
    assert_int_equal(punch_nat_expire(nat, deadline), 1);
    punch_nat_free(nat);
}

/* A full table refuses new mappings and counts them; expiry makes room. */
static void table_full_refused_and_counted(void **state)
{
    (void)state;
    punch_nat *nat = make("p2p,mappings=3,host-mappings=3,udp-timeout=10s");
    for (uint16_t i = 0; i < 3; i++)
        udp_out(nat, 0, v4(10, 0, 0, 2, (uint16_t)(6000 + i)), S1);
    punch_nat_tuple r;
    assert_int_equal(out_flags(nat, 0, PUNCH_IP_UDP, v4(10, 0, 0, 2, 7000), S1, 0, &r),
                     PUNCH_NAT_DROP);
    assert_int_equal(out_flags(nat, 1, PUNCH_IP_UDP, v4(10, 0, 0, 2, 7001), S1, 0, &r),
                     PUNCH_NAT_DROP);
    assert_int_equal(punch_nat_counters_get(nat)->refused_table_full, 2);
    /* existing mappings still work */
    udp_out(nat, 2, v4(10, 0, 0, 2, 6000), S2);
    punch_nat_expire(nat, 10000);
    udp_out(nat, 10001, v4(10, 0, 0, 2, 7000), S1);
    punch_nat_free(nat);

    /* the session table has a bound of its own */
    nat = make("p2p,sessions=2");
    udp_out(nat, 0, A, S1);
    udp_out(nat, 0, A, S2);
    assert_int_equal(out_flags(nat, 0, PUNCH_IP_UDP, A, with_port(S2, 1), 0, &r), PUNCH_NAT_DROP);
    assert_int_equal(punch_nat_counters_get(nat)->refused_table_full, 1);
    punch_nat_free(nat);
}

/* Issue 12, finding 10: an ICMP error quoting a live mapping reaches the
 * inside host only when the quoted packet went where the error comes from:
 * under apdf to that very endpoint, under adf to that IP; under eif from
 * anyone, as any packet would. */
static void icmp_error_only_from_the_flows_remote(void **state)
{
    (void)state;
    const punch_addr X = V4(192, 0, 2, 99, 0); /* a third host */
    struct { const char *spec; bool s1, s1_other_port, s2, third; } cases[] = {
        {"port-restricted-cone", true, false, false, false},
        {"restricted-cone", true, true, false, false},
        {"full-cone", true, true, true, true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        punch_nat *nat = make(cases[i].spec);
        punch_addr pub = udp_out(nat, 0, A, S1), inside;
        punch_addr s1_ip = with_port(S1, 0), s2_ip = with_port(S2, 0);
        /* The flow's remote complains about it. */
        assert_int_equal(punch_nat_icmp_error_in(nat, 1, PUNCH_IP_UDP, &pub, &S1, &s1_ip, &inside),
                         cases[i].s1 ? 0 : PUNCH_ERR_NOTFOUND);
        assert_true(punch_addr_equal(&inside, &A));
        punch_addr s1_other = with_port(S1, 9999);
        assert_int_equal(punch_nat_icmp_error_in(nat, 1, PUNCH_IP_UDP, &pub, &s1_other, &s1_ip,
                                                 &inside),
                         cases[i].s1_other_port ? 0 : PUNCH_ERR_NOTFOUND);
        /* A packet that never went to S2, quoted by S2. */
        assert_int_equal(punch_nat_icmp_error_in(nat, 1, PUNCH_IP_UDP, &pub, &S2, &s2_ip, &inside),
                         cases[i].s2 ? 0 : PUNCH_ERR_NOTFOUND);
        /* A third host quoting the real flow. */
        assert_int_equal(punch_nat_icmp_error_in(nat, 1, PUNCH_IP_UDP, &pub, &S1, &X, &inside),
                         cases[i].third ? 0 : PUNCH_ERR_NOTFOUND);
        /* Nothing for a public endpoint with no mapping, or a dead one. */
        punch_addr none = with_port(PUB, 1);
        assert_int_equal(punch_nat_icmp_error_in(nat, 1, PUNCH_IP_UDP, &none, &S1, &s1_ip, &inside),
                         PUNCH_ERR_NOTFOUND);
        assert_int_equal(punch_nat_icmp_error_in(nat, 6 * MIN_MS, PUNCH_IP_UDP, &pub, &S1, &s1_ip,
                                                 &inside),
                         PUNCH_ERR_NOTFOUND);
        punch_nat_free(nat);
    }
}

/* Issue 12, finding 10: one inside host cannot take every mapping. With
 * 4096 mappings (the default) and an apdm NAT, host A asking for 3000
 * gets 2048, host B still gets one; the cgnat preset gives each 4096. */
static void mappings_per_inside_host(void **state)
{
    (void)state;
    punch_nat *nat = make("p2p,mapping=apdm,mappings=4096");
    punch_nat_tuple r;
    size_t forwarded = 0;
    for (uint16_t p = 1; p <= 3000; p++)
        forwarded += out_flags(nat, 0, PUNCH_IP_UDP, A, with_port(S1, p), 0, &r) ==
                     PUNCH_NAT_FORWARD;
    assert_int_equal(forwarded, 2048);
    assert_int_equal(punch_nat_counters_get(nat)->refused_host_quota, 3000 - 2048);
    assert_int_equal(punch_nat_mapping_count(nat), 2048);
    udp_out(nat, 0, B, S1);
    /* A's mappings expire: A has its share again. */
    punch_nat_expire(nat, 6 * MIN_MS);
    udp_out(nat, 6 * MIN_MS, A, S2);
    punch_nat_free(nat);
    nat = make("cgnat");
    assert_int_equal(punch_nat_cfg_get(nat)->max_mappings_per_host, 4096);
    punch_nat_free(nat);
}

/* Basic NAT: each inside IP gets a public IP of its own; ports are kept. */
static void basic_nat_one_to_one(void **state)
{
    (void)state;
    punch_nat *nat = make("basic-nat,public=203.0.113.10+203.0.113.11");
    punch_addr pa = udp_out(nat, 0, A, S1);
    punch_addr pa2 = udp_out(nat, 0, with_port(A, 7), S1);
    punch_addr pb = udp_out(nat, 0, B, S1);
    assert_int_equal(pa.port, A.port);
    assert_int_equal(pb.port, B.port);
    assert_true(punch_addr_same_ip(&pa, &pa2));
    assert_false(punch_addr_same_ip(&pa, &pb));
    punch_nat_tuple r;
    /* a third inside host finds no free address */
    assert_int_equal(out_flags(nat, 0, PUNCH_IP_UDP, v4(10, 0, 0, 4, 1), S1, 0, &r),
                     PUNCH_NAT_DROP);
    assert_int_equal(punch_nat_counters_get(nat)->refused_no_port, 1);
    punch_nat_free(nat);
}

/* Firewall: addresses untouched, apdf filtering. */
static void firewall_filters_without_translating(void **state)
{
    (void)state;
    punch_nat *nat = make("firewall");
    punch_addr p = udp_out(nat, 0, A, S1);
    assert_true(punch_addr_equal(&p, &A));
    assert_int_equal(udp_in(nat, 1, S1, A, A), PUNCH_NAT_FORWARD);
    assert_int_equal(udp_in(nat, 1, with_port(S1, 1), A, A), PUNCH_NAT_DROP);
    assert_int_equal(udp_in(nat, 1, S1, B, B), PUNCH_NAT_DROP);
    punch_nat_free(nat);
}

/* Mapping events for punch-nat --events: created, then expired at the
 * deadline; a full queue counts what it loses. */
static void events_queue(void **state)
{
    (void)state;
    punch_nat *nat = make("symmetric-sequential,udp-timeout=10s");
    punch_addr p = udp_out(nat, 5, A, S1);
    punch_nat_event ev;
    assert_int_equal(punch_nat_poll_event(nat, &ev), 1);
    assert_int_equal(ev.kind, PUNCH_NAT_EV_MAPPING_CREATED);
    assert_int_equal(ev.t_ms, 5);
    assert_int_equal(ev.proto, PUNCH_IP_UDP);
    assert_true(punch_addr_equal(&ev.inside, &A));
    assert_true(punch_addr_equal(&ev.public_, &p));
    assert_true(punch_addr_equal(&ev.remote, &S1));
    assert_int_equal(punch_nat_poll_event(nat, &ev), 0);
    punch_nat_expire(nat, 20000);
    assert_int_equal(punch_nat_poll_event(nat, &ev), 1);
    assert_int_equal(ev.kind, PUNCH_NAT_EV_MAPPING_EXPIRED);
    assert_int_equal(ev.t_ms, 10005);
    for (uint16_t i = 0; i < 20; i++)
        udp_out(nat, 30000, A, with_port(S1, i));
    assert_int_equal(punch_nat_counters_get(nat)->events_lost, 4);
    punch_nat_free(nat);
}

/* ICMP echo: the identifier is translated like a port. */
static void icmp_echo_translated(void **state)
{
    (void)state;
    punch_nat *nat = make("port-restricted-cone");
    punch_addr b_echo = v4(10, 0, 0, 3, 77), a_echo = v4(10, 0, 0, 2, 77);
    punch_nat_tuple r;
    assert_int_equal(out_flags(nat, 0, PUNCH_IP_ICMP, a_echo, with_port(S1, 77), 0, &r),
                     PUNCH_NAT_FORWARD);
    assert_int_equal(r.src.port, r.dst.port);
    assert_int_equal(out_flags(nat, 0, PUNCH_IP_ICMP, b_echo, with_port(S1, 77), 0, &r),
                     PUNCH_NAT_FORWARD);
    punch_addr pb = r.src;
    assert_int_not_equal(pb.port, 77);
    assert_int_equal(r.dst.port, pb.port);
    assert_int_equal(in_flags(nat, 1, PUNCH_IP_ICMP, with_port(S1, pb.port), pb, 0, &r),
                     PUNCH_NAT_FORWARD);
    assert_true(punch_addr_equal(&r.dst, &b_echo));
    assert_int_equal(r.src.port, 77);
    assert_int_equal(punch_nat_next_expiry(nat), 60000); /* RFC 5508 REQ-1 */
    punch_addr inside;
    assert_int_equal(punch_nat_lookup_public(nat, 1, PUNCH_IP_ICMP, &pb, &inside), 0);
    assert_true(punch_addr_equal(&inside, &b_echo));
    punch_nat_free(nat);
}

/* Many mappings come and go: the tables and the heap stay consistent. */
static void churn_keeps_tables_consistent(void **state)
{
    (void)state;
    punch_nat *nat = make("restricted-cone,mappings=64,udp-timeout=1s");
    uint64_t rng = 7;
    uint64_t now = 0;
    for (int i = 0; i < 20000; i++) {
        now += splitmix(&rng) % 50;
        punch_addr src = v4(10, 0, 0, (uint8_t)(2 + splitmix(&rng) % 8),
                            (uint16_t)(1000 + splitmix(&rng) % 16));
        punch_addr dst = v4(198, 51, 100, (uint8_t)(1 + splitmix(&rng) % 4), 3478);
        punch_nat_tuple r;
        punch_nat_verdict v = out_flags(nat, now, PUNCH_IP_UDP, src, dst, 0, &r);
        if (v == PUNCH_NAT_FORWARD)
            assert_int_equal(udp_in(nat, now, dst, r.src, src), PUNCH_NAT_FORWARD);
        if (i % 7 == 0)
            punch_nat_expire(nat, now);
        assert_true(punch_nat_next_expiry(nat) == UINT64_MAX ||
                    punch_nat_next_expiry(nat) + 2000 > now);
    }
    punch_nat_expire(nat, now + 1000);
    assert_int_equal(punch_nat_mapping_count(nat), 0);
    assert_int_equal(punch_nat_session_count(nat), 0);
    const punch_nat_counters *c = punch_nat_counters_get(nat);
    assert_int_equal(c->mappings_created, c->mappings_expired);
    assert_int_equal(c->sessions_created, c->sessions_expired);
    punch_nat_free(nat);
}

static void presets_and_parser(void **state)
{
    (void)state;
    static const char *const presets[] = {"p2p", "full-cone", "restricted-cone",
                                          "port-restricted-cone", "symmetric-sequential",
                                          "symmetric-random", "firewall", "basic-nat", "cgnat"};
    for (size_t i = 0; i < sizeof(presets) / sizeof(presets[0]); i++) {
        punch_nat *nat = make(presets[i]);
        punch_nat_free(nat);
    }
    punch_nat_cfg cfg;
    punch_nat_cfg_default(&cfg);
    assert_int_equal(punch_nat_cfg_preset(&cfg, "cgnat"), 0);
    assert_int_equal(cfg.mapping, PUNCH_NAT_EIM);
    assert_int_equal(cfg.filtering, PUNCH_NAT_APDF);
    assert_true(cfg.hairpin);
    assert_int_equal(punch_nat_cfg_preset(&cfg, "nope"), PUNCH_ERR_NOTFOUND);

    char err[128];
    assert_int_equal(punch_nat_cfg_parse(&cfg,
                                         "mapping=apdm,filtering=adf,ports=sequential,step=2,"
                                         "hairpin=on,udp-timeout=30s,tcp-timeout=2h,"
                                         "tcp-transitory-timeout=1500ms,syn=rst,refresh=both,"
                                         "mappings=10,port-range=100-200",
                                         err, sizeof(err)),
                     0);
    assert_int_equal(cfg.mapping, PUNCH_NAT_APDM);
    assert_int_equal(cfg.filtering, PUNCH_NAT_ADF);
    assert_int_equal(cfg.ports, PUNCH_NAT_SEQUENTIAL);
    assert_int_equal(cfg.port_step, 2);
    assert_true(cfg.hairpin && cfg.syn_rst && cfg.refresh_inbound);
    assert_false(cfg.rst_closes);
    assert_int_equal(punch_nat_cfg_parse(&cfg, "rst-close=on", NULL, 0), 0);
    assert_true(cfg.rst_closes);
    assert_int_equal(punch_nat_cfg_parse(&cfg, "rst-close=maybe", NULL, 0), PUNCH_ERR_INVAL);
    assert_int_equal(cfg.udp_timeout_ms, 30000);
    assert_int_equal(cfg.tcp_established_ms, 2 * 60 * MIN_MS);
    assert_int_equal(cfg.tcp_transitory_ms, 1500);
    assert_int_equal(cfg.max_mappings, 10);
    assert_int_equal(cfg.port_min, 100);
    assert_int_equal(cfg.port_max, 200);
    /* preset then override, and preset= */
    assert_int_equal(punch_nat_cfg_parse(&cfg, "preset=full-cone,udp-timeout=5", NULL, 0), 0);
    assert_int_equal(cfg.udp_timeout_ms, 5000);
    assert_int_equal(cfg.filtering, PUNCH_NAT_EIF);

    static const struct {
        const char *spec, *msg;
    } bad[] = {
        {"mapping=eimx", "bad value in 'mapping=eimx'"},
        {"full-cone,colour=red", "unknown NAT key in 'colour=red'"},
        {"symetric", "unknown NAT preset 'symetric'"},
        {"udp-timeout=0", "bad value in 'udp-timeout=0'"},
        {"udp-timeout=5d", "bad value in 'udp-timeout=5d'"},
        {"step=0", "bad value in 'step=0'"},
        {"port-range=9-1", "bad value in 'port-range=9-1'"},
        {"public=203.0.113.256", "bad value in 'public=203.0.113.256'"},
        {"p2p,,hairpin=on", "empty item in NAT spec 'p2p,,hairpin=on'"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(punch_nat_cfg_parse(&cfg, bad[i].spec, err, sizeof(err)),
                         PUNCH_ERR_INVAL);
        assert_string_equal(err, bad[i].msg);
    }
}

static void rejects_bad_configs(void **state)
{
    (void)state;
    punch_nat_cfg cfg;
    punch_nat *nat = NULL;
    punch_nat_cfg_default(&cfg);
    assert_int_equal(punch_nat_new(&nat, &cfg), PUNCH_ERR_INVAL); /* no public IP */
    cfg.n_public = 1;
    cfg.public_ip[0] = PUB;
    assert_int_equal(punch_nat_new(&nat, &cfg), 0);
    punch_nat_free(nat);
    cfg.ports = PUNCH_NAT_RANDOM; /* random without randomness */
    assert_int_equal(punch_nat_new(&nat, &cfg), PUNCH_ERR_INVAL);
    cfg.ports = PUNCH_NAT_PRESERVE;
    cfg.max_mappings = 0;
    assert_int_equal(punch_nat_new(&nat, &cfg), PUNCH_ERR_INVAL);
    punch_nat_cfg_default(&cfg);
    assert_int_equal(punch_nat_cfg_parse(&cfg, "firewall", NULL, 0), 0);
    assert_int_equal(punch_nat_new(&nat, &cfg), 0); /* a firewall needs no public IP */
    punch_nat_free(nat);
    punch_nat_free(NULL);
}

/* Linux's conntrack trap (trap=on, as seen with conntrack -L on a kernel
 * NAT with no input firewall): a peer's packet that reaches our public
 * endpoint before we sent to the peer leaves an entry, and our own first
 * packet to the peer then leaves from another port, which the peer's
 * port-restricted NAT drops; the entry lives while the peer keeps sending,
 * and goes 30 s after its last packet. Other destinations keep the port. */
static void conntrack_trap(void **state)
{
    (void)state;
    punch_nat *nat = make("port-restricted-cone,trap=on");
    punch_addr p = udp_out(nat, 0, A, S1);  /* registered with the server */
    assert_int_equal(p.port, A.port);
    /* the peer's early probe: dropped, and it sets the trap */
    assert_int_equal(udp_in(nat, 5, S2, p, A), PUNCH_NAT_DROP);
    assert_int_equal(punch_nat_counters_get(nat)->traps_created, 1);
    punch_addr q = udp_out(nat, 10, A, S2);
    assert_true(punch_addr_same_ip(&q, &p));
    assert_int_not_equal(q.port, p.port);
    assert_int_equal(punch_nat_counters_get(nat)->trap_escapes, 1);
    /* the flow keeps its port; the peer, still at the old one, is dropped
     * (and keeps the trap alive) */
    punch_addr q2 = udp_out(nat, 20, A, S2);
    assert_true(punch_addr_equal(&q2, &q));
    assert_int_equal(udp_in(nat, 25, S2, p, A), PUNCH_NAT_DROP);
    assert_int_equal(udp_in(nat, 26, S2, q, A), PUNCH_NAT_FORWARD);
    /* the server's flow keeps the registered port */
    assert_int_equal(udp_out(nat, 27, A, S1).port, p.port);
    /* a new flow from the same socket leaves from the newest port Linux
     * gave it (find_appropriate_src): the escape's */
    assert_int_equal(udp_out(nat, 28, A, with_port(S2, 4000)).port, q.port);
    /* 30 s after the peer's last packet a new socket's flow keeps its port */
    punch_addr a2 = with_port(A, 6000);
    assert_int_equal(udp_out(nat, 30, a2, S1).port, 6000);
    assert_int_equal(udp_in(nat, 40, S2, with_port(p, 6000), a2), PUNCH_NAT_DROP);
    assert_int_not_equal(udp_out(nat, 40 + 29999, a2, S2).port, 6000);
    punch_nat_free(nat);
    nat = make("port-restricted-cone,trap=on");
    assert_int_equal(udp_out(nat, 0, a2, S1).port, 6000);
    assert_int_equal(udp_in(nat, 40, S2, with_port(p, 6000), a2), PUNCH_NAT_DROP);
    assert_int_equal(udp_out(nat, 40 + 30000, a2, S2).port, 6000);
    punch_nat_free(nat);
    /* without randomness the trapped port is passed over for the next */
    punch_nat_cfg cfg;
    punch_nat_cfg_default(&cfg);
    assert_int_equal(punch_nat_cfg_parse(&cfg, "port-restricted-cone,trap=on", NULL, 0), 0);
    cfg.n_public = 1;
    cfg.public_ip[0] = PUB;
    assert_int_equal(punch_nat_new(&nat, &cfg), 0);
    p = udp_out(nat, 0, A, S1);
    assert_int_equal(udp_in(nat, 5, S2, p, A), PUNCH_NAT_DROP);
    assert_int_equal(udp_out(nat, 10, A, S2).port, p.port + 1);
    punch_nat_free(nat);
    /* off (the default): the same packets keep the port */
    nat = make("port-restricted-cone");
    p = udp_out(nat, 0, A, S1);
    assert_int_equal(udp_in(nat, 5, S2, p, A), PUNCH_NAT_DROP);
    assert_int_equal(udp_out(nat, 10, A, S2).port, p.port);
    punch_nat_free(nat);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(req1_eim_same_mapping_every_destination),
        cmocka_unit_test(mapping_adm_and_apdm),
        cmocka_unit_test(req2_paired_pooling),
        cmocka_unit_test(req3_no_port_overloading_preserve_falls_back),
        cmocka_unit_test(req4_parity_not_preserved),
        cmocka_unit_test(req5_udp_timeout_exact),
        cmocka_unit_test(req6_refresh_direction),
        cmocka_unit_test(req8_filtering),
        cmocka_unit_test(filtering_forgets_expired_sessions),
        cmocka_unit_test(req9_hairpin),
        cmocka_unit_test(draft_5_3_1_binding_kept_when_port_frees),
        cmocka_unit_test(draft_5_4_tcp_consistent),
        cmocka_unit_test(sequential_step),
        cmocka_unit_test(random_ports_within_pool),
        cmocka_unit_test(tcp_simultaneous_open),
        cmocka_unit_test(unsolicited_syn),
        cmocka_unit_test(rst_closes_session),
        cmocka_unit_test(tcp_needs_syn),
        cmocka_unit_test(tcp_timeouts),
        cmocka_unit_test(table_full_refused_and_counted),
        cmocka_unit_test(icmp_error_only_from_the_flows_remote),
        cmocka_unit_test(mappings_per_inside_host),
        cmocka_unit_test(basic_nat_one_to_one),
        cmocka_unit_test(firewall_filters_without_translating),
        cmocka_unit_test(events_queue),
        cmocka_unit_test(icmp_echo_translated),
        cmocka_unit_test(churn_keeps_tables_consistent),
        cmocka_unit_test(conntrack_trap),
        cmocka_unit_test(presets_and_parser),
        cmocka_unit_test(rejects_bad_configs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
