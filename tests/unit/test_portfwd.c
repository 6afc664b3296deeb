/* SPDX-License-Identifier: MIT */
/* Port forwards in front of a NAT (src/nat/portfwd.c): what miniupnpd's
 * DNAT rule and the kernel's conntrack do for a mapping asked by UPnP,
 * NAT-PMP or PCP, in virtual time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "nat/portfwd.h"
#include "nat_fixture.h"

static const punch_addr A = V4(10, 0, 0, 2, 5000);
static const punch_addr B = V4(10, 0, 0, 3, 5000);
static const punch_addr R1 = V4(192, 0, 2, 7, 40000);
static const punch_addr R2 = V4(192, 0, 2, 8, 41000);
static const punch_addr PUB = V4(203, 0, 113, 1, 0);
#define UDP PUNCH_IP_UDP
#define FLOW_MS 30000u

static uint64_t seed = 7;

static punch_nat *symmetric_random(void)
{
    punch_nat_cfg cfg;
    punch_nat_cfg_default(&cfg);
    assert_int_equal(punch_nat_cfg_preset(&cfg, "symmetric-random"), 0);
    nat_fixture_cfg(&cfg, PUB, &seed);
    punch_nat *nat = NULL;
    assert_int_equal(punch_nat_new(&nat, &cfg), 0);
    return nat;
}

static bool in(punch_nat_fwd *f, uint64_t now, punch_addr src, punch_addr dst, punch_nat_tuple *o)
{
    punch_nat_tuple t = {.proto = UDP, .src = src, .dst = dst};
    return punch_nat_fwd_inbound(f, now, &t, FLOW_MS, o);
}

static bool out(punch_nat_fwd *f, uint64_t now, punch_addr src, punch_addr dst, punch_nat_tuple *o)
{
    punch_nat_tuple t = {.proto = UDP, .src = src, .dst = dst};
    return punch_nat_fwd_outbound(f, now, &t, FLOW_MS, o);
}

/* Anyone may write to the forward; the host's answers to a remote that
 * wrote leave from the forward's port; to any other remote the NAT maps. */
static void forwards_any_remote_and_answers_from_external(void **state)
{
    (void)state;
    punch_nat *nat = symmetric_random();
    punch_nat_fwd *f = NULL;
    assert_int_equal(punch_nat_fwd_new(&f, 4, 16), 0);
    punch_addr ext;
    assert_int_equal(punch_nat_fwd_add(f, nat, 0, UDP, &A, 5000, 60000, &ext), 0);
    assert_true(punch_addr_equal(&ext, &(punch_addr)V4(203, 0, 113, 1, 5000)));
    punch_nat_tuple o;
    assert_false(out(f, 1, A, R1, &o)); /* R1 never wrote: the NAT's to map */
    assert_true(in(f, 2, R1, ext, &o));
    assert_true(punch_addr_equal(&o.dst, &A));
    assert_true(punch_addr_equal(&o.src, &R1));
    assert_true(out(f, 3, A, R1, &o));
    assert_true(punch_addr_equal(&o.src, &ext));
    assert_true(punch_addr_equal(&o.dst, &R1));
    assert_false(out(f, 3, A, R2, &o));
    assert_false(out(f, 3, B, R1, &o));
    assert_false(in(f, 4, R2, with_port(PUB, 5001), &o)); /* not a forwarded port */
    assert_int_equal(punch_nat_fwd_flow_count(f, 4), 1);
    /* a flow lives FLOW_MS after its last packet */
    assert_true(out(f, 10000, A, R1, &o));
    assert_true(out(f, 10000 + FLOW_MS - 1, A, R1, &o));
    assert_false(out(f, 10000 + 2 * FLOW_MS, A, R1, &o));
    punch_nat_fwd_free(f);
    punch_nat_free(nat);
}

/* The port asked for when free; else the next one that no NAT mapping
 * and no forward holds. */
static void port_taken_moves_up(void **state)
{
    (void)state;
    punch_nat *nat = symmetric_random();
    punch_nat_fwd *f = NULL;
    assert_int_equal(punch_nat_fwd_new(&f, 4, 16), 0);
    /* a NAT mapping on some port P: a forward asked for P gets P + 1 */
    punch_nat_tuple t = {.proto = UDP, .src = B, .dst = R1}, o;
    assert_int_equal(punch_nat_outbound(nat, 0, &t, 0, &o), PUNCH_NAT_FORWARD);
    uint16_t p = o.src.port;
    punch_addr e1, e2;
    assert_int_equal(punch_nat_fwd_add(f, nat, 1, UDP, &A, p, 60000, &e1), 0);
    assert_int_equal(e1.port, (uint16_t)(p + 1));
    /* another host asking for the same port gets the one above */
    assert_int_equal(punch_nat_fwd_add(f, nat, 1, UDP, &B, p, 60000, &e2), 0);
    assert_int_equal(e2.port, (uint16_t)(p + 2));
    /* nothing free up to 65535 */
    punch_addr c = V4(10, 0, 0, 4, 65535), e3;
    assert_int_equal(punch_nat_fwd_add(f, nat, 1, UDP, &c, 65535, 60000, &e3), 0);
    punch_addr d = V4(10, 0, 0, 5, 65535);
    assert_int_equal(punch_nat_fwd_add(f, nat, 1, UDP, &d, 65535, 60000, &e3), PUNCH_ERR_NOTFOUND);
    punch_nat_fwd_free(f);
    punch_nat_free(nat);
}

/* A renewal keeps the port; past its lifetime a forward lets nothing in;
 * removal takes its flows with it. */
static void renew_expire_remove(void **state)
{
    (void)state;
    punch_nat *nat = symmetric_random();
    punch_nat_fwd *f = NULL;
    assert_int_equal(punch_nat_fwd_new(&f, 2, 4), 0);
    punch_addr ext, again;
    punch_nat_tuple o;
    assert_int_equal(punch_nat_fwd_add(f, nat, 0, UDP, &A, 6000, 1000, &ext), 0);
    assert_int_equal(punch_nat_fwd_add(f, nat, 900, UDP, &A, 6100, 1000, &again), 0);
    assert_true(punch_addr_equal(&ext, &again));
    assert_true(in(f, 1899, R1, ext, &o));
    assert_false(in(f, 1900, R1, ext, &o));
    assert_int_equal(punch_nat_fwd_count(f, 1900), 0);
    assert_false(out(f, 1900, A, R1, &o)); /* its flow went with it */
    /* a new forward in the expired one's slot inherits no flow */
    assert_int_equal(punch_nat_fwd_add(f, nat, 2000, UDP, &A, 6000, 1000, &ext), 0);
    assert_int_equal(punch_nat_fwd_flow_count(f, 2000), 0);
    assert_true(in(f, 2001, R2, ext, &o));
    assert_int_equal(punch_nat_fwd_remove(f, UDP, &ext), 0);
    assert_int_equal(punch_nat_fwd_remove(f, UDP, &ext), PUNCH_ERR_NOTFOUND);
    assert_false(in(f, 2002, R2, ext, &o));
    assert_false(out(f, 2002, A, R2, &o));
    assert_int_equal(punch_nat_fwd_flow_count(f, 2002), 0);
    punch_nat_fwd_free(f);
    punch_nat_free(nat);
}

static void limits_and_bad_arguments(void **state)
{
    (void)state;
    punch_nat *nat = symmetric_random();
    punch_nat_fwd *f = NULL;
    assert_int_equal(punch_nat_fwd_new(&f, 0, 4), PUNCH_ERR_INVAL);
    assert_int_equal(punch_nat_fwd_new(&f, 4, 70000), PUNCH_ERR_INVAL);
    assert_int_equal(punch_nat_fwd_new(&f, 1, 1), 0);
    punch_addr ext;
    assert_int_equal(punch_nat_fwd_add(f, nat, 0, UDP, &A, 5000, 0, &ext), PUNCH_ERR_INVAL);
    assert_int_equal(punch_nat_fwd_add(f, nat, 0, UDP, &A, 0, 1000, &ext), PUNCH_ERR_INVAL);
    assert_int_equal(punch_nat_fwd_add(f, NULL, 0, UDP, &A, 5000, 1000, &ext), PUNCH_ERR_INVAL);
    assert_int_equal(punch_nat_fwd_add(f, nat, 0, UDP, &A, 5000, 1000, &ext), 0);
    assert_int_equal(punch_nat_fwd_add(f, nat, 0, UDP, &B, 5000, 1000, &ext), PUNCH_ERR_LIMIT);
    /* one flow of room: a second remote still gets in, its answer is the NAT's */
    punch_nat_tuple o;
    assert_true(in(f, 1, R1, ext, &o));
    assert_true(in(f, 1, R2, ext, &o));
    assert_true(out(f, 2, A, R1, &o));
    assert_false(out(f, 2, A, R2, &o));
    assert_false(in(NULL, 0, R1, ext, &o));
    punch_nat_fwd_free(f);
    punch_nat_fwd_free(NULL);
    punch_nat_free(nat);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(forwards_any_remote_and_answers_from_external),
        cmocka_unit_test(port_taken_moves_up),
        cmocka_unit_test(renew_expire_remove),
        cmocka_unit_test(limits_and_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
