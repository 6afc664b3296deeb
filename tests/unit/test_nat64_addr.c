/* SPDX-License-Identifier: MIT */
/*
 * IPv4-embedded IPv6 addresses (src/wire/nat64_addr.c, RFC 6052 §2.2) and
 * punch --nat64-prefix's parser (src/io/nat64_prefix.c): every row of
 * RFC 6052 §2.4's table both ways, the u-octet, and prefixes refused.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "io/net.h"

static punch_addr ip6(const char *text, uint16_t port)
{
    punch_addr a = {.family = PUNCH_AF_INET6, .port = port};
    assert_int_equal(inet_pton(AF_INET6, text, a.ip), 1);
    return a;
}

static punch_nat64_prefix prefix_of(const char *text)
{
    punch_nat64_prefix p;
    char why[96] = "";
    if (punch_nat64_prefix_parse(text, &p, why, sizeof(why)) != 0)
        fail_msg("'%s' refused: %s", text, why);
    return p;
}

/* RFC 6052 §2.4, "Table 1: Text representation of IPv4-embedded IPv6
 * addresses using Network-Specific Prefixes", and the well-known prefix's
 * example beside it: 192.0.2.33 under each. */
static const struct {
    const char *prefix, *v6;
} TABLE[] = {
    {"2001:db8::/32", "2001:db8:c000:221::"},
    {"2001:db8:100::/40", "2001:db8:1c0:2:21::"},
    {"2001:db8:122::/48", "2001:db8:122:c000:2:2100::"},
    {"2001:db8:122:300::/56", "2001:db8:122:3c0:0:221::"},
    {"2001:db8:122:344::/64", "2001:db8:122:344:c0:2:2100:0"},
    {"2001:db8:122:344::/96", "2001:db8:122:344::192.0.2.33"},
    {"64:ff9b::/96", "64:ff9b::192.0.2.33"},
};

static void rfc6052_table(void **state)
{
    (void)state;
    const punch_addr four = {.family = PUNCH_AF_INET, .port = 3478, .ip = {192, 0, 2, 33}};
    for (size_t i = 0; i < sizeof(TABLE) / sizeof(TABLE[0]); i++) {
        punch_nat64_prefix p = prefix_of(TABLE[i].prefix);
        punch_addr want = ip6(TABLE[i].v6, 3478), six, back;
        assert_int_equal(punch_nat64_synthesize(&p, &four, &six), 0);
        if (!punch_addr_equal(&six, &want))
            fail_msg("%s: synthesized is not %s", TABLE[i].prefix, TABLE[i].v6);
        assert_true(punch_nat64_is_synthesized(&p, &want));
        assert_int_equal(punch_nat64_extract(&p, &want, &back), 0);
        if (!punch_addr_equal(&back, &four))
            fail_msg("%s: %s does not give back 192.0.2.33", TABLE[i].prefix, TABLE[i].v6);
    }
}

/* The default (NULL or bits 0) is the well-known prefix; one prefix's
 * addresses are not another's; bits 64-71 set: no synthesized address. */
static void recognises_only_its_own(void **state)
{
    (void)state;
    const punch_addr four = {.family = PUNCH_AF_INET, .ip = {192, 0, 2, 33}};
    punch_nat64_prefix p64 = prefix_of("2001:db8:122:344::/64");
    punch_nat64_prefix p32 = prefix_of("2001:db8::/32"), zero = {0};
    punch_addr six, back;
    assert_int_equal(punch_nat64_synthesize(NULL, &four, &six), 0);
    assert_true(punch_addr_equal(&six, &(punch_addr){.family = PUNCH_AF_INET6,
                                                     .ip = {0, 0x64, 0xff, 0x9b, [12] = 192, 0,
                                                            2, 33}}));
    assert_true(punch_nat64_is_synthesized(&zero, &six));
    assert_false(punch_nat64_is_synthesized(&p64, &six));
    /* under the /32 (a shorter prefix of the same bits) yes, but with
     * the u-octet set no */
    punch_addr in64 = ip6("2001:db8:122:344:c0:2:2100:0", 0);
    assert_true(punch_nat64_is_synthesized(&p32, &in64));
    in64.ip[8] = 1;
    assert_false(punch_nat64_is_synthesized(&p64, &in64));
    assert_int_equal(punch_nat64_extract(&p64, &in64, &back), PUNCH_ERR_INVAL);
    assert_int_equal(punch_nat64_synthesize(&p64, &six, &back), PUNCH_ERR_INVAL); /* not IPv4 */
    /* a prefix nobody checked: refused, not half used */
    punch_nat64_prefix bad = {.ip = {0x20, 0x01, 0x0d, 0xb8}, .bits = 33};
    assert_non_null(punch_nat64_prefix_check(&bad));
    assert_int_equal(punch_nat64_synthesize(&bad, &four, &six), PUNCH_ERR_INVAL);
    assert_false(punch_nat64_is_synthesized(&bad, &in64));
}

/* Every v4 byte lands once and comes back, at every length. */
static void round_trip_every_length(void **state)
{
    (void)state;
    static const uint8_t lengths[] = {32, 40, 48, 56, 64, 96};
    for (size_t i = 0; i < sizeof(lengths); i++) {
        punch_nat64_prefix p = {.ip = {0x20, 0x01, 0x0d, 0xb8}, .bits = lengths[i]};
        punch_addr four = {.family = PUNCH_AF_INET, .port = 1, .ip = {0xa1, 0xb2, 0xc3, 0xd4}};
        punch_addr six, back;
        assert_int_equal(punch_nat64_synthesize(&p, &four, &six), 0);
        assert_int_equal(six.ip[8], 0);
        assert_int_equal(punch_nat64_extract(&p, &six, &back), 0);
        assert_true(punch_addr_equal(&back, &four));
    }
}

static void refuses(const char *text, const char *reason_part)
{
    punch_nat64_prefix p = {.ip = {7}, .bits = 7};
    char why[96] = "";
    if (punch_nat64_prefix_parse(text, &p, why, sizeof(why)) == 0)
        fail_msg("'%s' taken", text);
    if (!strstr(why, reason_part))
        fail_msg("'%s': reason '%s' does not say '%s'", text, why, reason_part);
    assert_int_equal(p.bits, 7); /* untouched */
}

static void parser_refuses(void **state)
{
    (void)state;
    const char *length = "not 32, 40, 48, 56, 64 or 96";
    refuses("2001:db8::/33", length);
    refuses("2001:db8::/0", length);
    refuses("2001:db8::/97", length);
    refuses("2001:db8::/128", length);
    refuses("2001:db8::/1000", "not a number");
    refuses("2001:db8::/", "not a number");
    refuses("2001:db8::/32x", "not a number");
    refuses("2001:db8::/+32", "not a number");
    refuses("2001:db8::/ 32", "not a number");
    refuses("192.0.2.0/32", "not an IPv6 address");
    refuses("/96", "not an IPv6 address");
    refuses("", "not an IPv6 address");
    refuses("2001:db8:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0/32", "not an IPv6 address");
    refuses("2001:db8:1::/32", "beyond the prefix length");
    refuses("2001:db8::1", "beyond the prefix length"); /* bare: /96 */
    refuses("2001:db8:0:0:100::/96", "u-octet");
    refuses("2001:db8:0:0:100::/64", "beyond the prefix length");
    /* taken: bare is /96, and each length */
    assert_int_equal(prefix_of("64:ff9b::").bits, 96);
    assert_int_equal(prefix_of("2001:db8:122:300::/56").bits, 56);
    assert_int_equal(prefix_of("2001:db8:100::/040").bits, 40);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rfc6052_table),
        cmocka_unit_test(recognises_only_its_own),
        cmocka_unit_test(round_trip_every_length),
        cmocka_unit_test(parser_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
