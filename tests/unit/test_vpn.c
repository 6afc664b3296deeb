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
    assert_true(punch_vpn_prefix_contains(&p, (const uint8_t[]){10, 99, 0, 255}));
    assert_false(punch_vpn_prefix_contains(&p, (const uint8_t[]){10, 99, 1, 1}));
    p = pfx("0.0.0.0/0");
    assert_true(punch_vpn_prefix_contains(&p, (const uint8_t[]){192, 0, 2, 1}));
    p = pfx("255.255.255.255/32");
    assert_false(punch_vpn_prefix_contains(&p, (const uint8_t[]){255, 255, 255, 254}));
    static const char *const bad[] = {"", "10.99.0.1", "10.99.0.1/", "10.99.0.256/24",
                                      "10.99.0.1/33", "010.99.0.1/8", "10.99.0/24",
                                      "10.99.0.1/24x", "10.99.0.1.2/24", "a.b.c.d/8",
                                      "10.99.0.1/024", " 10.99.0.1/24", "1000.0.0.1/8"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(punch_vpn_prefix_parse(bad[i], &p), PUNCH_ERR_INVAL);
}

static void init_checks(void **state)
{
    (void)state;
    punch_vpn v;
    punch_vpn_prefix self = pfx("10.99.0.1/24"), routes[PUNCH_VPN_MAX_ROUTES + 1] = {0};
    assert_int_equal(punch_vpn_init(&v, &self, NULL, 0, PUNCH_MAX_DATAGRAM), 0);
    assert_int_equal(punch_vpn_init(&v, &self, NULL, 0, PUNCH_MAX_DATAGRAM + 1), PUNCH_ERR_INVAL);
    assert_int_equal(punch_vpn_init(&v, &self, NULL, 0, 67), PUNCH_ERR_INVAL);
    assert_int_equal(punch_vpn_init(&v, &self, routes, PUNCH_VPN_MAX_ROUTES + 1, 1000),
                     PUNCH_ERR_INVAL);
}

/* alice 10.99.0.1/24; bob 10.99.0.2/24 with alice's LAN 10.50.0.0/24 behind her. */
static void pair(punch_vpn *alice, punch_vpn *bob)
{
    punch_vpn_prefix a = pfx("10.99.0.1/24"), b = pfx("10.99.0.2/24"), lan = pfx("10.50.0.0/24");
    assert_int_equal(punch_vpn_init(alice, &a, NULL, 0, 1152), 0);
    assert_int_equal(punch_vpn_init(bob, &b, &lan, 1, 1000), 0);
}

static punch_vpn_verdict deliver(punch_vpn *to, const uint8_t *msg, size_t len)
{
    uint8_t copy[PUNCH_MAX_DATAGRAM + 8];
    size_t ip_len = 0;
    memcpy(copy, msg, len);
    return punch_vpn_from_peer(to, copy, len, &ip_len);
}

static void hello_exchange(void **state)
{
    (void)state;
    punch_vpn alice, bob;
    uint8_t h[PUNCH_VPN_HELLO_LEN];
    pair(&alice, &bob);
    assert_true(punch_vpn_hello_needed(&alice));
    punch_vpn_hello_write(&alice, h);
    assert_int_equal(h[0], 0); /* never an IP version */
    assert_int_equal(deliver(&bob, h, sizeof(h)), PUNCH_VPN_HELLO);
    assert_true(bob.peer_known && bob.peer_changed && bob.answer_due);
    assert_memory_equal(bob.peer.ip, ((uint8_t[]){10, 99, 0, 1}), 4);
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
    uint8_t h[PUNCH_VPN_HELLO_LEN + 4] = {0};
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
    /* One behind it (its --route) is fine; longer HELLOs are taken. */
    memcpy(h + 4, (uint8_t[]){10, 50, 0, 1}, 4);
    assert_int_equal(deliver(&bob, h, sizeof(h)), PUNCH_VPN_HELLO);
    /* Short, unknown type, prefix over 32: control drops. */
    assert_int_equal(deliver(&bob, h, PUNCH_VPN_HELLO_LEN - 1), PUNCH_VPN_DROP);
    h[1] = 2;
    assert_int_equal(deliver(&bob, h, sizeof(h)), PUNCH_VPN_DROP);
    h[1] = 1;
    h[3] = 33;
    assert_int_equal(deliver(&bob, h, sizeof(h)), PUNCH_VPN_DROP);
    assert_int_equal(bob.c.peer_control, 3);
}

static void allowed_sources(void **state)
{
    (void)state;
    punch_vpn alice, bob;
    uint8_t pkt[PUNCH_MAX_DATAGRAM + 8], h[PUNCH_VPN_HELLO_LEN];
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
    uint8_t pkt[PUNCH_MAX_DATAGRAM + 8], h[PUNCH_VPN_HELLO_LEN];
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
    assert_int_equal(punch_vpn_from_peer(&bob, pkt, PUNCH_MAX_DATAGRAM + 1, &ip_len),
                     PUNCH_VPN_DROP);
    assert_int_equal(punch_vpn_from_peer(&bob, pkt, 19, &ip_len), PUNCH_VPN_DROP);
    assert_int_equal(bob.c.peer_malformed, 5);
    /* IPv6, and a first byte that is neither IP nor control. */
    pkt[0] = 0x60;
    assert_int_equal(punch_vpn_from_peer(&bob, pkt, len, &ip_len), PUNCH_VPN_DROP);
    pkt[0] = 0xFF;
    assert_int_equal(punch_vpn_from_peer(&bob, pkt, len, &ip_len), PUNCH_VPN_DROP);
    assert_int_equal(bob.c.peer_not_ipv4, 2);
    assert_int_equal(bob.c.peer_packets, 0);
}

static void packets_from_tun(void **state)
{
    (void)state;
    punch_vpn alice, bob;
    uint8_t pkt[PUNCH_MAX_DATAGRAM + 8], h[PUNCH_VPN_HELLO_LEN];
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
    len = udp(pkt, "10.99.0.2/32", "10.99.0.1/32", PUNCH_MAX_DATAGRAM);
    assert_true(punch_vpn_from_tun(&bob, pkt, len));
    assert_false(punch_vpn_from_tun(&bob, pkt, PUNCH_MAX_DATAGRAM + 1));
    assert_int_equal(bob.c.tun_oversize, 1);
    len = udp(pkt, "10.99.0.2/32", "10.99.0.1/32", 60);
    assert_false(punch_vpn_from_tun(&bob, pkt, len + 1));
    pkt[10]++;
    assert_false(punch_vpn_from_tun(&bob, pkt, len));
    assert_false(punch_vpn_from_tun(&bob, pkt, 0));
    assert_int_equal(bob.c.tun_malformed, 2);
    pkt[0] = 0x60;
    assert_false(punch_vpn_from_tun(&bob, pkt, len));
    assert_int_equal(bob.c.tun_not_ipv4, 2);
    assert_int_equal(bob.c.tun_packets, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(prefixes),
        cmocka_unit_test(init_checks),
        cmocka_unit_test(hello_exchange),
        cmocka_unit_test(hello_refused),
        cmocka_unit_test(allowed_sources),
        cmocka_unit_test(bad_packets_from_peer),
        cmocka_unit_test(packets_from_tun),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
