/* SPDX-License-Identifier: MIT */
/* punch vpn's packet rules (src/core/vpn.c): prefixes, the HELLO exchange,
 * allowed sources, and every kind of bad packet from either side counted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/vpn.h"
#include "wire/bytes.h"
#include "wire/ipv4.h"

static punch_vpn_prefix pfx(const char *text)
{
    punch_vpn_prefix p;
    assert_int_equal(punch_vpn_prefix_parse(text, &p), 0);
    return p;
}

/* An IPv4 UDP packet src -> dst with len bytes in all, checksums right. */
static size_t udp(uint8_t *buf, const char *src, const char *dst, size_t len)
{
    punch_vpn_prefix s = pfx(src), d = pfx(dst);
    memset(buf, 0, len);
    buf[0] = 0x45;
    punch_put16(buf + 2, (uint16_t)len);
    buf[8] = 64;
    buf[9] = PUNCH_IP_UDP;
    memcpy(buf + 12, s.ip, 4);
    memcpy(buf + 16, d.ip, 4);
    punch_put16(buf + 10, (uint16_t)~punch_inet_sum(buf, 20, 0));
    punch_put16(buf + 20, 5000);
    punch_put16(buf + 22, 7000);
    punch_put16(buf + 24, (uint16_t)(len - 20));
    return len;
}

/* An IPv6 UDP packet src -> dst with len bytes in all (RFC 8200 §3). */
static size_t udp6(uint8_t *buf, const char *src, const char *dst, size_t len)
{
    punch_vpn_prefix s = pfx(src), d = pfx(dst);
    memset(buf, 0, len);
    buf[0] = 0x60;
    punch_put16(buf + 4, (uint16_t)(len - 40));
    buf[6] = PUNCH_IP_UDP;
    buf[7] = 64;
    memcpy(buf + 8, s.ip, 16);
    memcpy(buf + 24, d.ip, 16);
    punch_put16(buf + 40, 5000);
    punch_put16(buf + 42, 7000);
    punch_put16(buf + 44, (uint16_t)(len - 40));
    return len;
}

static void prefixes(void **state)
{
    (void)state;
    char buf[PUNCH_VPN_PREFIX_STRLEN];
    punch_vpn_prefix p = pfx("10.99.0.1/24");
    punch_vpn_prefix_format(&p, buf);
    assert_string_equal(buf, "10.99.0.1/24");
    punch_vpn_prefix n = punch_vpn_prefix_network(&p);
    punch_vpn_prefix_format(&n, buf);
    assert_string_equal(buf, "10.99.0.0/24");
    assert_true(punch_vpn_prefix_contains(&p, PUNCH_AF_INET, (const uint8_t[]){10, 99, 0, 255}));
    assert_false(punch_vpn_prefix_contains(&p, PUNCH_AF_INET, (const uint8_t[]){10, 99, 1, 1}));
    p = pfx("0.0.0.0/0");
    assert_true(punch_vpn_prefix_contains(&p, PUNCH_AF_INET, (const uint8_t[]){192, 0, 2, 1}));
    p = pfx("255.255.255.255/32");
    assert_false(punch_vpn_prefix_contains(&p, PUNCH_AF_INET,
                                           (const uint8_t[]){255, 255, 255, 254}));
    static const char *const bad[] = {"", "10.99.0.1", "10.99.0.1/", "10.99.0.256/24",
                                      "10.99.0.1/33", "010.99.0.1/8", "10.99.0/24",
                                      "10.99.0.1/24x", "10.99.0.1.2/24", "a.b.c.d/8",
                                      "10.99.0.1/024", " 10.99.0.1/24", "1000.0.0.1/8"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(punch_vpn_prefix_parse(bad[i], &p), PUNCH_ERR_INVAL);
}

static void assert_formats_as(const char *text, const char *want)
{
    char buf[PUNCH_VPN_PREFIX_STRLEN];
    punch_vpn_prefix p = pfx(text);
    assert_int_equal(p.family, PUNCH_AF_INET6);
    punch_vpn_prefix_format(&p, buf);
    assert_string_equal(buf, want);
}

static void prefixes6(void **state)
{
    (void)state;
    char buf[PUNCH_VPN_PREFIX_STRLEN];
    assert_formats_as("fd99::1/64", "fd99::1/64");
    assert_formats_as("FD99:0:0:0:0:0:0:1/64", "fd99::1/64");
    assert_formats_as("fd99:0000:0000::0001/64", "fd99::1/64");
    assert_formats_as("2001:db8:0:0:1:0:0:1/128", "2001:db8::1:0:0:1/128"); /* RFC 5952 §4.2.3 */
    assert_formats_as("2001:db8:0:1:1:1:1:1/64", "2001:db8:0:1:1:1:1:1/64"); /* §4.2.2 */
    assert_formats_as("::/0", "::/0");
    assert_formats_as("::1/128", "::1/128");
    assert_formats_as("1::/16", "1::/16");
    assert_formats_as("1:2:3:4:5:6:7::/112", "1:2:3:4:5:6:7:0/112");
    assert_formats_as("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128",
                      "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128");
    punch_vpn_prefix p = pfx("fd99::1/64");
    assert_true(punch_vpn_prefix_contains(&p, PUNCH_AF_INET6, pfx("fd99::abcd/128").ip));
    assert_false(punch_vpn_prefix_contains(&p, PUNCH_AF_INET6, pfx("fd99:0:0:1::1/128").ip));
    assert_false(punch_vpn_prefix_contains(&p, PUNCH_AF_INET, pfx("fd99::1/128").ip));
    assert_false(punch_vpn_prefix_contains(&(punch_vpn_prefix){.family = PUNCH_AF_INET},
                                           PUNCH_AF_INET6, p.ip)); /* /0 of the other family */
    p = pfx("fd99:1:2:3:4:5:6:7/52");
    punch_vpn_prefix n = punch_vpn_prefix_network(&p);
    punch_vpn_prefix_format(&n, buf);
    assert_string_equal(buf, "fd99:1:2::/52");
    static const char *const bad[] = {"fd99::1", "fd99::1/129", "fd99:::1/64", "fd99::1::2/64",
                                      "1:2:3:4:5:6:7:8:9/64", "1:2:3:4:5:6:7/64",
                                      "12345::/64", "g::/64", ":1::/64", "1:/64", "::1:/64",
                                      "::ffff:1.2.3.4/96", "1:2:3:4:5:6:7:8::/64",
                                      "fd99::1/064", "fd99::1/", "fd99::1 /64", "[fd99::1]/64"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (punch_vpn_prefix_parse(bad[i], &p) != PUNCH_ERR_INVAL)
            fail_msg("'%s' was taken", bad[i]);
}

static void host_addresses(void **state)
{
    (void)state;
    static const char *const hosts[] = {"10.99.0.1/24", "10.99.0.254/24", "10.99.0.0/31",
                                        "10.99.0.255/32", "fd99::1/64", "fd99::/127",
                                        "fd99::/128", "fd99::ffff:ffff:ffff:ffff/64"};
    static const char *const not_hosts[] = {"10.99.0.0/24", "10.99.0.255/24", "10.99.0.1/0",
                                            "fd99::/64", "fd99::1/0", "ff02::1/64",
                                            "ff02::1/128"};
    for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
        punch_vpn_prefix p = pfx(hosts[i]);
        if (!punch_vpn_prefix_is_host(&p))
            fail_msg("%s is a host address", hosts[i]);
    }
    for (size_t i = 0; i < sizeof(not_hosts) / sizeof(not_hosts[0]); i++) {
        punch_vpn_prefix p = pfx(not_hosts[i]);
        if (punch_vpn_prefix_is_host(&p))
            fail_msg("%s is not a host address", not_hosts[i]);
    }
}

static void init_checks(void **state)
{
    (void)state;
    punch_vpn v;
    punch_vpn_prefix self = pfx("10.99.0.1/24"), routes[PUNCH_VPN_MAX_ROUTES + 1] = {0};
    assert_int_equal(punch_vpn_init(&v, &self, NULL, NULL, 0, PUNCH_VPN_MAX_MTU), 0);
    assert_int_equal(punch_vpn_init(&v, &self, NULL, NULL, 0, PUNCH_VPN_MAX_MTU + 1),
                     PUNCH_ERR_INVAL);
    assert_int_equal(punch_vpn_init(&v, &self, NULL, NULL, 0, 67), PUNCH_ERR_INVAL);
    assert_int_equal(punch_vpn_init(&v, &self, NULL, routes, PUNCH_VPN_MAX_ROUTES + 1, 1000),
                     PUNCH_ERR_INVAL);
}

static void init_checks6(void **state)
{
    (void)state;
    punch_vpn v;
    punch_vpn_prefix a4 = pfx("10.99.0.1/24"), a6 = pfx("fd99::1/64");
    punch_vpn_prefix r4 = pfx("10.50.0.0/24"), r6 = pfx("fd50::/64");
    /* RFC 8200 §5: no IPv6 under 1280. */
    assert_int_equal(punch_vpn_init(&v, &a4, &a6, NULL, 0, 1280), 0);
    assert_int_equal(punch_vpn_init(&v, NULL, &a6, NULL, 0, 1280), 0);
    assert_int_equal(punch_vpn_init(&v, &a4, &a6, NULL, 0, 1279), PUNCH_ERR_INVAL);
    assert_int_equal(punch_vpn_init(&v, NULL, &a6, NULL, 0, 1152), PUNCH_ERR_INVAL);
    assert_int_equal(punch_vpn_init(&v, NULL, &a6, NULL, 0, 1281), PUNCH_ERR_INVAL);
    /* No address; one in the wrong place. */
    assert_int_equal(punch_vpn_init(&v, NULL, NULL, NULL, 0, 1280), PUNCH_ERR_INVAL);
    assert_int_equal(punch_vpn_init(&v, &a6, NULL, NULL, 0, 1280), PUNCH_ERR_INVAL);
    assert_int_equal(punch_vpn_init(&v, &a4, &a4, NULL, 0, 1280), PUNCH_ERR_INVAL);
    /* A route of a family we have no address of. */
    assert_int_equal(punch_vpn_init(&v, &a4, NULL, &r6, 1, 1152), PUNCH_ERR_INVAL);
    assert_int_equal(punch_vpn_init(&v, NULL, &a6, &r4, 1, 1280), PUNCH_ERR_INVAL);
    assert_int_equal(punch_vpn_init(&v, &a4, &a6, (punch_vpn_prefix[]){r4, r6}, 2, 1280), 0);
}

/* alice 10.99.0.1/24; bob 10.99.0.2/24 with alice's LAN 10.50.0.0/24 behind her. */
static void pair(punch_vpn *alice, punch_vpn *bob)
{
    punch_vpn_prefix a = pfx("10.99.0.1/24"), b = pfx("10.99.0.2/24"), lan = pfx("10.50.0.0/24");
    assert_int_equal(punch_vpn_init(alice, &a, NULL, NULL, 0, 1152), 0);
    assert_int_equal(punch_vpn_init(bob, &b, NULL, &lan, 1, 1000), 0);
}

static punch_vpn_verdict deliver(punch_vpn *to, const uint8_t *msg, size_t len)
{
    uint8_t copy[PUNCH_VPN_MAX_MTU + 8];
    size_t ip_len = 0;
    memcpy(copy, msg, len);
    return punch_vpn_from_peer(to, copy, len, &ip_len);
}

/* Dual stack: alice 10.99.0.1/24 and fd99::1/64; bob 10.99.0.2/24 and
 * fd99::2/64, with alice's LANs 10.50.0.0/24 and fd50::/64 behind her. */
static void pair6(punch_vpn *alice, punch_vpn *bob)
{
    punch_vpn_prefix a4 = pfx("10.99.0.1/24"), a6 = pfx("fd99::1/64");
    punch_vpn_prefix b4 = pfx("10.99.0.2/24"), b6 = pfx("fd99::2/64");
    punch_vpn_prefix lans[] = {pfx("10.50.0.0/24"), pfx("fd50::/64")};
    assert_int_equal(punch_vpn_init(alice, &a4, &a6, NULL, 0, 1280), 0);
    assert_int_equal(punch_vpn_init(bob, &b4, &b6, lans, 2, 1280), 0);
}

static void hello_exchange(void **state)
{
    (void)state;
    punch_vpn alice, bob;
    uint8_t h[PUNCH_VPN_HELLO_MAX];
    pair(&alice, &bob);
    assert_true(punch_vpn_hello_needed(&alice));
    /* Without IPv6, the HELLO of old: what every version takes. */
    assert_int_equal(punch_vpn_hello_write(&alice, h), PUNCH_VPN_HELLO_LEN);
    assert_int_equal(h[0], 0); /* never an IP version */
    assert_int_equal(deliver(&bob, h, sizeof(h)), PUNCH_VPN_HELLO);
    assert_true(bob.peer_known && bob.peer_changed && bob.answer_due);
    assert_memory_equal(bob.peer4.ip, ((uint8_t[]){10, 99, 0, 1}), 4);
    assert_int_equal(bob.peer6.family, PUNCH_AF_NONE);
    assert_int_equal(bob.peer_mtu, 1152);
    punch_vpn_hello_write(&bob, h);
    assert_int_equal(deliver(&alice, h, sizeof(h)), PUNCH_VPN_HELLO);
    /* alice learnt bob just now: her earlier HELLO said she had not, so she answers. */
    assert_true(alice.answer_due && alice.peer_has_ours);
    assert_false(punch_vpn_hello_needed(&alice));
    assert_true(punch_vpn_hello_needed(&bob));
    punch_vpn_hello_write(&alice, h);
    assert_int_equal(deliver(&bob, h, sizeof(h)), PUNCH_VPN_HELLO);
    assert_false(bob.answer_due || bob.peer_changed);
    assert_false(punch_vpn_hello_needed(&bob));
    /* A new session: bob must hear alice again. */
    punch_vpn_peer_reset(&bob);
    assert_true(punch_vpn_hello_needed(&bob));
    assert_int_equal(bob.c.hellos, 2);
}

static void hello_refused(void **state)
{
    (void)state;
    punch_vpn alice, bob;
    uint8_t h[PUNCH_VPN_HELLO_MAX + 4] = {0};
    pair(&alice, &bob);
    punch_vpn_hello_write(&alice, h);
    /* An address outside bob's network and routes. */
    memcpy(h + 4, (uint8_t[]){10, 98, 0, 1}, 4);
    assert_int_equal(deliver(&bob, h, PUNCH_VPN_HELLO_LEN), PUNCH_VPN_HELLO_REFUSED);
    assert_memory_equal(bob.refused.ip, ((uint8_t[]){10, 98, 0, 1}), 4);
    /* bob's own address. */
    memcpy(h + 4, (uint8_t[]){10, 99, 0, 2}, 4);
    assert_int_equal(deliver(&bob, h, PUNCH_VPN_HELLO_LEN), PUNCH_VPN_HELLO_REFUSED);
    assert_int_equal(bob.c.peer_hello_refused, 2);
    assert_false(bob.peer_known);
    /* One behind it (its --route) is fine; longer HELLOs are taken (an
     * IPv6 address in them left out: bob has none). */
    memcpy(h + 4, (uint8_t[]){10, 50, 0, 1}, 4);
    h[10] = 64;
    memcpy(h + 11, pfx("fd99::1/64").ip, 16);
    assert_int_equal(deliver(&bob, h, sizeof(h)), PUNCH_VPN_HELLO);
    assert_int_equal(bob.peer6.family, PUNCH_AF_NONE);
    /* Short, unknown type, prefix over 32: control drops. */
    assert_int_equal(deliver(&bob, h, PUNCH_VPN_HELLO_LEN - 1), PUNCH_VPN_DROP);
    h[1] = 2;
    assert_int_equal(deliver(&bob, h, sizeof(h)), PUNCH_VPN_DROP);
    h[1] = 1;
    h[3] = 33;
    assert_int_equal(deliver(&bob, h, sizeof(h)), PUNCH_VPN_DROP);
    assert_int_equal(bob.c.peer_control, 3);
}

static void hello6(void **state)
{
    (void)state;
    punch_vpn alice, bob, old;
    uint8_t h[PUNCH_VPN_HELLO_MAX + 4] = {0};
    pair6(&alice, &bob);
    assert_int_equal(punch_vpn_hello_write(&alice, h), PUNCH_VPN_HELLO6_LEN);
    assert_int_equal(deliver(&bob, h, PUNCH_VPN_HELLO6_LEN), PUNCH_VPN_HELLO);
    assert_true(bob.peer_changed);
    assert_int_equal(bob.peer6.family, PUNCH_AF_INET6);
    assert_int_equal(bob.peer6.len, 64);
    assert_memory_equal(bob.peer6.ip, pfx("fd99::1/128").ip, 16);
    assert_memory_equal(bob.peer4.ip, ((uint8_t[]){10, 99, 0, 1}), 4);
    /* The same again changes nothing; a new IPv6 address is a change. */
    assert_int_equal(deliver(&bob, h, PUNCH_VPN_HELLO6_LEN), PUNCH_VPN_HELLO);
    assert_false(bob.peer_changed);
    memcpy(h + 11, pfx("fd50::7/128").ip, 16); /* behind alice (bob's --route) */
    assert_int_equal(deliver(&bob, h, PUNCH_VPN_HELLO6_LEN), PUNCH_VPN_HELLO);
    assert_true(bob.peer_changed);
    /* A HELLO of old (no IPv6 in it): the peer has no IPv6 address. */
    assert_int_equal(deliver(&bob, h, PUNCH_VPN_HELLO_LEN), PUNCH_VPN_HELLO);
    assert_true(bob.peer_changed);
    assert_int_equal(bob.peer6.family, PUNCH_AF_NONE);
    /* Outside bob's IPv6 network and routes, or his own: refused, all of it. */
    memcpy(h + 11, pfx("fd98::1/128").ip, 16);
    assert_int_equal(deliver(&bob, h, PUNCH_VPN_HELLO6_LEN), PUNCH_VPN_HELLO_REFUSED);
    assert_memory_equal(bob.refused.ip, pfx("fd98::1/128").ip, 16);
    memcpy(h + 11, pfx("fd99::2/128").ip, 16);
    assert_int_equal(deliver(&bob, h, PUNCH_VPN_HELLO6_LEN), PUNCH_VPN_HELLO_REFUSED);
    assert_int_equal(bob.c.peer_hello_refused, 2);
    /* A prefix length over 128 is not a HELLO. */
    h[10] = 129;
    assert_int_equal(deliver(&bob, h, PUNCH_VPN_HELLO6_LEN), PUNCH_VPN_DROP);
    assert_int_equal(bob.c.peer_control, 1);
    /* An IPv6-only side sends no IPv4 address (prefix length 0); an
     * IPv4-only one takes its HELLO and leaves the IPv6 address out. */
    punch_vpn_prefix a6 = pfx("fd99::1/64"), o4 = pfx("10.99.0.2/24");
    assert_int_equal(punch_vpn_init(&alice, NULL, &a6, NULL, 0, 1280), 0);
    assert_int_equal(punch_vpn_hello_write(&alice, h), PUNCH_VPN_HELLO6_LEN);
    assert_int_equal(h[3], 0);
    assert_int_equal(deliver(&bob, h, PUNCH_VPN_HELLO6_LEN), PUNCH_VPN_HELLO);
    assert_int_equal(bob.peer4.family, PUNCH_AF_NONE);
    assert_int_equal(bob.peer6.family, PUNCH_AF_INET6);
    assert_int_equal(punch_vpn_init(&old, &o4, NULL, NULL, 0, 1152), 0);
    assert_int_equal(deliver(&old, h, PUNCH_VPN_HELLO6_LEN), PUNCH_VPN_HELLO);
    assert_int_equal(old.peer4.family, PUNCH_AF_NONE);
    assert_int_equal(old.peer6.family, PUNCH_AF_NONE);
}

/* The IPv6 allowed sources: a good packet, a spoofed source, one from a
 * --route network, malformed ones. */
static void allowed_sources6(void **state)
{
    (void)state;
    punch_vpn alice, bob;
    uint8_t pkt[PUNCH_VPN_MAX_MTU + 8], h[PUNCH_VPN_HELLO_MAX];
    size_t len, ip_len = 0;
    pair6(&alice, &bob);
    /* Before alice's HELLO even her address is not hers. */
    len = udp6(pkt, "fd99::1/128", "fd99::2/128", 100);
    assert_int_equal(punch_vpn_from_peer(&bob, pkt, len, &ip_len), PUNCH_VPN_DROP);
    assert_int_equal(bob.c.peer_ipv6_source, 1);
    assert_int_equal(deliver(&bob, h, punch_vpn_hello_write(&alice, h)), PUNCH_VPN_HELLO);
    assert_int_equal(punch_vpn_from_peer(&bob, pkt, len, &ip_len), PUNCH_VPN_DELIVER);
    assert_int_equal(ip_len, 100);
    /* A full-size one; bytes after the payload length are left out. */
    len = udp6(pkt, "fd99::1/128", "fd99::2/128", PUNCH_VPN_MAX_MTU);
    assert_int_equal(punch_vpn_from_peer(&bob, pkt, len, &ip_len), PUNCH_VPN_DELIVER);
    len = udp6(pkt, "fd99::1/128", "fd99::2/128", 100);
    assert_int_equal(punch_vpn_from_peer(&bob, pkt, len + 9, &ip_len), PUNCH_VPN_DELIVER);
    assert_int_equal(ip_len, 100);
    /* Spoofed: another host of the tunnel's network, one outside it, her
     * IPv4 address's neighbour in IPv6 clothes. */
    len = udp6(pkt, "fd99::77/128", "fd99::2/128", 100);
    assert_int_equal(punch_vpn_from_peer(&bob, pkt, len, &ip_len), PUNCH_VPN_DROP);
    len = udp6(pkt, "2001:db8::1/128", "fd99::2/128", 100);
    assert_int_equal(punch_vpn_from_peer(&bob, pkt, len, &ip_len), PUNCH_VPN_DROP);
    len = udp6(pkt, "fe80::1/128", "fd99::2/128", 100);
    assert_int_equal(punch_vpn_from_peer(&bob, pkt, len, &ip_len), PUNCH_VPN_DROP);
    assert_int_equal(bob.c.peer_ipv6_source, 4);
    /* From the network behind alice (bob's --route). */
    len = udp6(pkt, "fd50::5/128", "fd99::2/128", 100);
    assert_int_equal(punch_vpn_from_peer(&bob, pkt, len, &ip_len), PUNCH_VPN_DELIVER);
    /* Malformed: shorter than the header; the payload length says more
     * than arrived. */
    assert_int_equal(punch_vpn_from_peer(&bob, pkt, 39, &ip_len), PUNCH_VPN_DROP);
    assert_int_equal(punch_vpn_from_peer(&bob, pkt, len - 1, &ip_len), PUNCH_VPN_DROP);
    assert_int_equal(bob.c.peer_ipv6_malformed, 2);
    assert_int_equal(bob.c.peer_packets, 4);
    assert_int_equal(bob.c.peer_bytes, 100 + PUNCH_VPN_MAX_MTU + 100 + 100);
    /* IPv4 rules hold beside: alice's IPv4 address passes. */
    len = udp(pkt, "10.99.0.1/32", "10.99.0.2/32", 100);
    assert_int_equal(punch_vpn_from_peer(&bob, pkt, len, &ip_len), PUNCH_VPN_DELIVER);
    assert_int_equal(bob.c.peer_source + bob.c.peer_not_ip + bob.c.peer_malformed, 0);
}

/* IPv6 from the TUN: only to the peer's IPv6 address or an IPv6 route;
 * an IPv6-only tunnel drops IPv4. */
static void packets_from_tun6(void **state)
{
    (void)state;
    punch_vpn alice, bob;
    uint8_t pkt[PUNCH_VPN_MAX_MTU + 8], h[PUNCH_VPN_HELLO_MAX];
    size_t len;
    pair6(&alice, &bob);
    len = udp6(pkt, "fd99::2/128", "fd50::9/128", 60);
    assert_true(punch_vpn_from_tun(&bob, pkt, len));
    len = udp6(pkt, "fd99::2/128", "fd99::1/128", 60);
    assert_false(punch_vpn_from_tun(&bob, pkt, len));
    deliver(&bob, h, punch_vpn_hello_write(&alice, h));
    assert_true(punch_vpn_from_tun(&bob, pkt, len));
    /* Neighbour discovery, MLD, another host of the network. */
    len = udp6(pkt, "fd99::2/128", "ff02::2/128", 60);
    assert_false(punch_vpn_from_tun(&bob, pkt, len));
    len = udp6(pkt, "fd99::2/128", "fd99::3/128", 60);
    assert_false(punch_vpn_from_tun(&bob, pkt, len));
    assert_int_equal(bob.c.tun_ipv6_no_route, 3);
    /* Full size; one byte over; a length that is not the packet's; short. */
    len = udp6(pkt, "fd99::2/128", "fd99::1/128", PUNCH_VPN_MAX_MTU);
    assert_true(punch_vpn_from_tun(&bob, pkt, len));
    assert_false(punch_vpn_from_tun(&bob, pkt, PUNCH_VPN_MAX_MTU + 1));
    assert_int_equal(bob.c.tun_oversize, 1);
    len = udp6(pkt, "fd99::2/128", "fd99::1/128", 60);
    assert_false(punch_vpn_from_tun(&bob, pkt, len + 1));
    assert_false(punch_vpn_from_tun(&bob, pkt, len - 1));
    assert_false(punch_vpn_from_tun(&bob, pkt, 39));
    assert_int_equal(bob.c.tun_ipv6_malformed, 3);
    assert_int_equal(bob.c.tun_packets, 3);
    /* IPv6 only: IPv4 is not carried. */
    punch_vpn_prefix b6 = pfx("fd99::2/64");
    assert_int_equal(punch_vpn_init(&bob, NULL, &b6, NULL, 0, 1280), 0);
    len = udp(pkt, "10.99.0.2/32", "10.99.0.1/32", 60);
    assert_false(punch_vpn_from_tun(&bob, pkt, len));
    assert_int_equal(bob.c.tun_not_ip, 1);
    size_t ip_len;
    assert_int_equal(punch_vpn_from_peer(&bob, pkt, len, &ip_len), PUNCH_VPN_DROP);
    assert_int_equal(bob.c.peer_not_ip, 1);
}

static void allowed_sources(void **state)
{
    (void)state;
    punch_vpn alice, bob;
    uint8_t pkt[PUNCH_VPN_MAX_MTU + 8], h[PUNCH_VPN_HELLO_MAX];
    size_t len, ip_len = 0;
    pair(&alice, &bob);
    /* Before alice's HELLO even her address is not hers. */
    len = udp(pkt, "10.99.0.1/32", "10.99.0.2/32", 100);
    assert_int_equal(punch_vpn_from_peer(&bob, pkt, len, &ip_len), PUNCH_VPN_DROP);
    assert_int_equal(bob.c.peer_source, 1);
    punch_vpn_hello_write(&alice, h);
    assert_int_equal(deliver(&bob, h, sizeof(h)), PUNCH_VPN_HELLO);
    assert_int_equal(punch_vpn_from_peer(&bob, pkt, len, &ip_len), PUNCH_VPN_DELIVER);
    assert_int_equal(ip_len, 100);
    /* A spoofed source inside the tunnel's network. */
    len = udp(pkt, "10.99.0.77/32", "10.99.0.2/32", 100);
    assert_int_equal(punch_vpn_from_peer(&bob, pkt, len, &ip_len), PUNCH_VPN_DROP);
    /* ...and outside it. */
    len = udp(pkt, "192.0.2.1/32", "10.99.0.2/32", 100);
    assert_int_equal(punch_vpn_from_peer(&bob, pkt, len, &ip_len), PUNCH_VPN_DROP);
    assert_int_equal(bob.c.peer_source, 3);
    /* From the network behind alice (bob's --route). */
    len = udp(pkt, "10.50.0.5/32", "10.99.0.2/32", 100);
    assert_int_equal(punch_vpn_from_peer(&bob, pkt, len, &ip_len), PUNCH_VPN_DELIVER);
    /* Bytes after the IP total length are left out. */
    len = udp(pkt, "10.99.0.1/32", "10.99.0.2/32", 100);
    assert_int_equal(punch_vpn_from_peer(&bob, pkt, len + 7, &ip_len), PUNCH_VPN_DELIVER);
    assert_int_equal(ip_len, 100);
    assert_int_equal(bob.c.peer_packets, 3);
    assert_int_equal(bob.c.peer_bytes, 300);
}

static void bad_packets_from_peer(void **state)
{
    (void)state;
    punch_vpn alice, bob;
    uint8_t pkt[PUNCH_VPN_MAX_MTU + 8], h[PUNCH_VPN_HELLO_MAX];
    size_t len, ip_len;
    pair(&alice, &bob);
    punch_vpn_hello_write(&alice, h);
    deliver(&bob, h, sizeof(h));
    len = udp(pkt, "10.99.0.1/32", "10.99.0.2/32", 200);
    /* Truncated: the IP total length says more than arrived. */
    assert_int_equal(punch_vpn_from_peer(&bob, pkt, len - 1, &ip_len), PUNCH_VPN_DROP);
    /* A bad header checksum. */
    pkt[8]--;
    assert_int_equal(punch_vpn_from_peer(&bob, pkt, len, &ip_len), PUNCH_VPN_DROP);
    pkt[8]++;
    /* Empty; over the largest datagram; a header shorter than 20 bytes. */
    assert_int_equal(punch_vpn_from_peer(&bob, pkt, 0, &ip_len), PUNCH_VPN_DROP);
    assert_int_equal(punch_vpn_from_peer(&bob, pkt, PUNCH_VPN_MAX_MTU + 1, &ip_len),
                     PUNCH_VPN_DROP);
    assert_int_equal(punch_vpn_from_peer(&bob, pkt, 19, &ip_len), PUNCH_VPN_DROP);
    assert_int_equal(bob.c.peer_malformed, 5);
    /* IPv6 (bob has no IPv6 address), and a first byte that is neither IP
     * nor control. */
    pkt[0] = 0x60;
    assert_int_equal(punch_vpn_from_peer(&bob, pkt, len, &ip_len), PUNCH_VPN_DROP);
    pkt[0] = 0xFF;
    assert_int_equal(punch_vpn_from_peer(&bob, pkt, len, &ip_len), PUNCH_VPN_DROP);
    assert_int_equal(bob.c.peer_not_ip, 2);
    assert_int_equal(bob.c.peer_packets, 0);
}

static void packets_from_tun(void **state)
{
    (void)state;
    punch_vpn alice, bob;
    uint8_t pkt[PUNCH_VPN_MAX_MTU + 8], h[PUNCH_VPN_HELLO_MAX];
    size_t len;
    pair(&alice, &bob);
    /* To alice's LAN, behind her: bob sends it whether or not he knows her. */
    len = udp(pkt, "10.99.0.2/32", "10.50.0.9/32", 60);
    assert_true(punch_vpn_from_tun(&bob, pkt, len));
    /* To alice's tunnel address, before her HELLO: nowhere to go. */
    len = udp(pkt, "10.99.0.2/32", "10.99.0.1/32", 60);
    assert_false(punch_vpn_from_tun(&bob, pkt, len));
    punch_vpn_hello_write(&alice, h);
    deliver(&bob, h, sizeof(h));
    assert_true(punch_vpn_from_tun(&bob, pkt, len));
    /* Broadcast and other hosts of the network are not the peer. */
    len = udp(pkt, "10.99.0.2/32", "10.99.0.255/32", 60);
    assert_false(punch_vpn_from_tun(&bob, pkt, len));
    assert_int_equal(bob.c.tun_no_route, 2);
    /* Oversized, IPv6, malformed, a length that is not the packet's. */
    len = udp(pkt, "10.99.0.2/32", "10.99.0.1/32", PUNCH_VPN_MAX_MTU);
    assert_true(punch_vpn_from_tun(&bob, pkt, len));
    assert_false(punch_vpn_from_tun(&bob, pkt, PUNCH_VPN_MAX_MTU + 1));
    assert_int_equal(bob.c.tun_oversize, 1);
    len = udp(pkt, "10.99.0.2/32", "10.99.0.1/32", 60);
    assert_false(punch_vpn_from_tun(&bob, pkt, len + 1));
    pkt[10]++;
    assert_false(punch_vpn_from_tun(&bob, pkt, len));
    assert_false(punch_vpn_from_tun(&bob, pkt, 0));
    assert_int_equal(bob.c.tun_malformed, 2);
    pkt[0] = 0x60;
    assert_false(punch_vpn_from_tun(&bob, pkt, len));
    assert_int_equal(bob.c.tun_not_ip, 2);
    assert_int_equal(bob.c.tun_packets, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(prefixes),
        cmocka_unit_test(prefixes6),
        cmocka_unit_test(host_addresses),
        cmocka_unit_test(init_checks),
        cmocka_unit_test(init_checks6),
        cmocka_unit_test(hello_exchange),
        cmocka_unit_test(hello_refused),
        cmocka_unit_test(allowed_sources),
        cmocka_unit_test(bad_packets_from_peer),
        cmocka_unit_test(packets_from_tun),
        cmocka_unit_test(hello6),
        cmocka_unit_test(allowed_sources6),
        cmocka_unit_test(packets_from_tun6),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
