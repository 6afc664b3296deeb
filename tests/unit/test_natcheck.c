/* SPDX-License-Identifier: MIT */
/* NAT behaviour classification (src/core/natcheck.c), RFC 5780 §4. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/natcheck.h"

static punch_addr pub(uint16_t port)
{
    punch_addr a = {.family = PUNCH_AF_INET, .port = port, .ip = {203, 0, 113, 7}};
    return a;
}

static punch_nat_mapping mapping_of(const punch_addr *m1, const punch_addr *m2,
                                    const punch_addr *m3)
{
    punch_nat_mapping m = (punch_nat_mapping)-1;
    assert_int_equal(punch_natcheck_mapping(m1, m2, m3, &m), 0);
    return m;
}

static punch_nat_ports ports_of(const uint16_t *local, const uint16_t *mapped, int *step)
{
    punch_nat_ports p = (punch_nat_ports)-1;
    assert_int_equal(punch_natcheck_ports(local, mapped, 5, &p, step), 0);
    return p;
}

static void mapping_from_three_answers(void **state)
{
    (void)state;
    punch_addr m1 = pub(40001), m2 = pub(40001), none = {0};
    assert_int_equal(mapping_of(&m1, &m2, &none), PUNCH_NAT_EIM);
    m2 = pub(40002);
    punch_addr m3 = pub(40002);
    assert_int_equal(mapping_of(&m1, &m2, &m3), PUNCH_NAT_ADM);
    m3 = pub(40003);
    assert_int_equal(mapping_of(&m1, &m2, &m3), PUNCH_NAT_APDM);
    /* A different public IP for the other destination is a new mapping too. */
    m2 = pub(40001);
    m2.ip[3] = 8;
    m3 = m2;
    assert_int_equal(mapping_of(&m1, &m2, &m3), PUNCH_NAT_ADM);
    /* Missing answers give no verdict. */
    punch_nat_mapping unused;
    assert_int_equal(punch_natcheck_mapping(&m1, &none, &none, &unused), PUNCH_ERR_NOTFOUND);
    m2 = pub(40002);
    assert_int_equal(punch_natcheck_mapping(&m1, &m2, &none, &unused), PUNCH_ERR_NOTFOUND);
}

static void filtering_from_change_requests(void **state)
{
    (void)state;
    assert_int_equal(punch_natcheck_filtering(true, false), PUNCH_NAT_EIF);
    assert_int_equal(punch_natcheck_filtering(true, true), PUNCH_NAT_EIF);
    assert_int_equal(punch_natcheck_filtering(false, true), PUNCH_NAT_ADF);
    assert_int_equal(punch_natcheck_filtering(false, false), PUNCH_NAT_APDF);
}

static void port_allocation_patterns(void **state)
{
    (void)state;
    uint16_t local[5] = {40000, 40100, 40200, 40300, 40400};
    int step = 99;
    assert_int_equal(ports_of(local, local, &step), PUNCH_NAT_PRESERVE);
    assert_int_equal(step, 0);

    uint16_t seq1[5] = {1024, 1025, 1026, 1027, 1028};
    assert_int_equal(ports_of(local, seq1, &step), PUNCH_NAT_SEQUENTIAL);
    assert_int_equal(step, 1);
    uint16_t seq2_wrap[5] = {65532, 65534, 0, 2, 4};
    assert_int_equal(ports_of(local, seq2_wrap, &step), PUNCH_NAT_SEQUENTIAL);
    assert_int_equal(step, 2);
    uint16_t down[5] = {5000, 4997, 4994, 4991, 4988};
    assert_int_equal(ports_of(local, down, &step), PUNCH_NAT_SEQUENTIAL);
    assert_int_equal(step, -3);

    uint16_t uneven[5] = {1024, 1025, 1027, 1028, 1029};
    assert_int_equal(ports_of(local, uneven, &step), PUNCH_NAT_RANDOM);
    assert_int_equal(step, 0);
    uint16_t far[5] = {1000, 2000, 3000, 4000, 5000}; /* even, but too far apart */
    assert_int_equal(ports_of(local, far, &step), PUNCH_NAT_RANDOM);
    uint16_t same[5] = {7, 7, 7, 7, 7};
    assert_int_equal(ports_of(local, same, &step), PUNCH_NAT_RANDOM);
    /* One preserved port among others is not preservation. */
    uint16_t mostly[5] = {40000, 51234, 1200, 33333, 9};
    assert_int_equal(ports_of(local, mostly, &step), PUNCH_NAT_RANDOM);
    punch_nat_ports unused_ports;
    assert_int_equal(punch_natcheck_ports(local, seq1, 2, &unused_ports, &step),
                     PUNCH_ERR_NOTFOUND);
}

/* The one port-step test, used by punch_natcheck_ports and the agent's NAT
 * discovery (src/core/discovery.c): the same small step every time, across
 * the 65535 -> 0 wrap and downwards; else 0. */
static void steady_step_shared_with_discovery(void **state)
{
    (void)state;
    assert_int_equal(punch_natcheck_steady_step((const uint16_t[]){40000, 40002, 40004, 40006}, 4),
                     2);
    assert_int_equal(punch_natcheck_steady_step((const uint16_t[]){65534, 65535, 0, 1}, 4), 1);
    assert_int_equal(punch_natcheck_steady_step((const uint16_t[]){500, 497, 494}, 3), -3);
    assert_int_equal(punch_natcheck_steady_step((const uint16_t[]){1000, 1064}, 2),
                     PUNCH_NATCHECK_MAX_STEP);
    assert_int_equal(punch_natcheck_steady_step((const uint16_t[]){1000, 1065}, 2), 0);
    assert_int_equal(punch_natcheck_steady_step((const uint16_t[]){1000, 1000}, 2), 0);
    assert_int_equal(punch_natcheck_steady_step((const uint16_t[]){10, 12, 15}, 3), 0);
    assert_int_equal(punch_natcheck_steady_step((const uint16_t[]){10}, 1), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(mapping_from_three_answers),
        cmocka_unit_test(filtering_from_change_requests),
        cmocka_unit_test(port_allocation_patterns),
        cmocka_unit_test(steady_step_shared_with_discovery),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
