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

static void mapping_from_three_answers(void **state)
{
    (void)state;
    punch_addr m1 = pub(40001), m2 = pub(40001), none = {0};
    assert_int_equal(punch_natcheck_mapping(&m1, &m2, &none), PUNCH_MAPPING_EIM);
    m2 = pub(40002);
    punch_addr m3 = pub(40002);
    assert_int_equal(punch_natcheck_mapping(&m1, &m2, &m3), PUNCH_MAPPING_ADM);
    m3 = pub(40003);
    assert_int_equal(punch_natcheck_mapping(&m1, &m2, &m3), PUNCH_MAPPING_APDM);
    /* A different public IP for the other destination is a new mapping too. */
    m2 = pub(40001);
    m2.ip[3] = 8;
    m3 = m2;
    assert_int_equal(punch_natcheck_mapping(&m1, &m2, &m3), PUNCH_MAPPING_ADM);
    /* Missing answers give no verdict. */
    assert_int_equal(punch_natcheck_mapping(&m1, &none, &none), PUNCH_MAPPING_UNKNOWN);
    m2 = pub(40002);
    assert_int_equal(punch_natcheck_mapping(&m1, &m2, &none), PUNCH_MAPPING_UNKNOWN);
}

static void filtering_from_change_requests(void **state)
{
    (void)state;
    assert_int_equal(punch_natcheck_filtering(true, false), PUNCH_FILTERING_EIF);
    assert_int_equal(punch_natcheck_filtering(true, true), PUNCH_FILTERING_EIF);
    assert_int_equal(punch_natcheck_filtering(false, true), PUNCH_FILTERING_ADF);
    assert_int_equal(punch_natcheck_filtering(false, false), PUNCH_FILTERING_APDF);
}

static void port_allocation_patterns(void **state)
{
    (void)state;
    uint16_t local[5] = {40000, 40100, 40200, 40300, 40400};
    int step = 99;
    assert_int_equal(punch_natcheck_ports(local, local, 5, &step), PUNCH_PORTS_PRESERVE);
    assert_int_equal(step, 0);

    uint16_t seq1[5] = {1024, 1025, 1026, 1027, 1028};
    assert_int_equal(punch_natcheck_ports(local, seq1, 5, &step), PUNCH_PORTS_SEQUENTIAL);
    assert_int_equal(step, 1);
    uint16_t seq2_wrap[5] = {65532, 65534, 0, 2, 4};
    assert_int_equal(punch_natcheck_ports(local, seq2_wrap, 5, &step), PUNCH_PORTS_SEQUENTIAL);
    assert_int_equal(step, 2);
    uint16_t down[5] = {5000, 4997, 4994, 4991, 4988};
    assert_int_equal(punch_natcheck_ports(local, down, 5, &step), PUNCH_PORTS_SEQUENTIAL);
    assert_int_equal(step, -3);

    uint16_t uneven[5] = {1024, 1025, 1027, 1028, 1029};
    assert_int_equal(punch_natcheck_ports(local, uneven, 5, &step), PUNCH_PORTS_RANDOM);
    assert_int_equal(step, 0);
    uint16_t far[5] = {1000, 2000, 3000, 4000, 5000}; /* even, but too far apart */
    assert_int_equal(punch_natcheck_ports(local, far, 5, &step), PUNCH_PORTS_RANDOM);
    uint16_t same[5] = {7, 7, 7, 7, 7};
    assert_int_equal(punch_natcheck_ports(local, same, 5, &step), PUNCH_PORTS_RANDOM);
    /* One preserved port among others is not preservation. */
    uint16_t mostly[5] = {40000, 51234, 1200, 33333, 9};
    assert_int_equal(punch_natcheck_ports(local, mostly, 5, &step), PUNCH_PORTS_RANDOM);
    assert_int_equal(punch_natcheck_ports(local, seq1, 2, &step), PUNCH_PORTS_UNKNOWN);
}

static void names(void **state)
{
    (void)state;
    assert_string_equal(punch_mapping_name(PUNCH_MAPPING_APDM), "apdm");
    assert_string_equal(punch_filtering_name(PUNCH_FILTERING_ADF), "adf");
    assert_string_equal(punch_port_allocation_name(PUNCH_PORTS_SEQUENTIAL), "sequential");
    assert_string_equal(punch_mapping_name(PUNCH_MAPPING_UNKNOWN), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(mapping_from_three_answers),
        cmocka_unit_test(filtering_from_change_requests),
        cmocka_unit_test(port_allocation_patterns),
        cmocka_unit_test(names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
