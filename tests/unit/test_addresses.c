/* SPDX-License-Identifier: MIT */
/*
 * The driver's own IPv6 addresses (src/driver/addresses.c, issue 16):
 * /proc/net/if_inet6 lines as Linux writes them, which ones become
 * candidates (global scope, not tentative, failed or deprecated), and
 * lines that are not such lines.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "driver/addresses.h"

static void parses_kernel_lines(void **state)
{
    (void)state;
    punch_if_inet6 a;
    assert_int_equal(
        punch_if_inet6_parse("20010db8000100010000000000000002 04 40 00 80     eth0\n", &a), 0);
    static const uint8_t ip[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 1, [15] = 2};
    assert_int_equal(a.addr.family, PUNCH_AF_INET6);
    assert_memory_equal(a.addr.ip, ip, 16);
    assert_int_equal(a.scope, 0);
    assert_int_equal(a.flags, 0x80);
    assert_true(punch_if_inet6_usable(&a));
    /* link-local, loopback: not candidates */
    assert_int_equal(
        punch_if_inet6_parse("fe8000000000000000fc00fffe000001 04 40 20 80     eth0", &a), 0);
    assert_false(punch_if_inet6_usable(&a));
    assert_int_equal(
        punch_if_inet6_parse("00000000000000000000000000000001 01 80 10 80       lo", &a), 0);
    assert_false(punch_if_inet6_usable(&a));
    /* temporary is usable (the caller prefers stable); deprecated, tentative, failed not */
    assert_int_equal(
        punch_if_inet6_parse("20010db8000100010123456789abcdef 04 40 00 01     eth0", &a), 0);
    assert_true(punch_if_inet6_usable(&a) && (a.flags & PUNCH_IFA_TEMPORARY));
    const char *bad_flags[] = {"20", "40", "08"};
    for (size_t i = 0; i < 3; i++) {
        char line[80];
        snprintf(line, sizeof(line), "20010db8000100010000000000000003 04 40 00 %s eth0",
                 bad_flags[i]);
        assert_int_equal(punch_if_inet6_parse(line, &a), 0);
        assert_false(punch_if_inet6_usable(&a));
    }
}

static void refuses_other_lines(void **state)
{
    (void)state;
    const char *bad[] = {
        "",
        "20010db8",                                                 /* short address */
        "20010db800010001000000000000000g 04 40 00 80 eth0",        /* not hex */
        "20010db8000100010000000000000002 04 40 00 80",             /* no name */
        "20010db8000100010000000000000002 04 81 00 80 eth0",        /* prefix over 128 */
        "20010db8000100010000000000000002 04 40 00",                /* a field missing */
        "20010db8000100010000000000000002x04 40 00 80 eth0",        /* no separator */
        "20010db8000100010000000000000002 123456789 40 00 80 eth0", /* field too long */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        punch_if_inet6 a = {.scope = 77};
        if (punch_if_inet6_parse(bad[i], &a) != PUNCH_ERR_MALFORMED || a.scope != 77)
            fail_msg("took '%s'", bad[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_kernel_lines),
        cmocka_unit_test(refuses_other_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
