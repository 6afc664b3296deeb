/* SPDX-License-Identifier: MIT */
/* IPv4 parsing and rewriting (src/wire/ipv4.c): every rewrite must leave
 * checksums that a full recomputation accepts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "wire/bytes.h"
#include "wire/ipv4.h"

static punch_addr ep(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint16_t port)
{
    return (punch_addr){.family = PUNCH_AF_INET, .port = port, .ip = {a, b, c, d}};
}

static void ip_header(uint8_t *buf, size_t total, uint8_t proto, punch_addr src, punch_addr dst)
{
    memset(buf, 0, 20);
    buf[0] = 0x45;
    punch_put16(buf + 2, (uint16_t)total);
    punch_put16(buf + 4, 0x1234);
    buf[8] = 64;
    buf[9] = proto;
    memcpy(buf + 12, src.ip, 4);
    memcpy(buf + 16, dst.ip, 4);
    punch_put16(buf + 10, (uint16_t)~punch_inet_sum(buf, 20, 0));
}

static uint32_t pseudo(const uint8_t *ip, uint8_t proto, size_t l4_len)
{
    return (uint32_t)punch_get16(ip + 12) + punch_get16(ip + 14) + punch_get16(ip + 16) +
           punch_get16(ip + 18) + proto + (uint32_t)l4_len;
}

/* UDP packet with a payload, all checksums right. */
static size_t udp_packet(uint8_t *buf, punch_addr src, punch_addr dst, const char *payload)
{
    size_t plen = strlen(payload), total = 20 + 8 + plen;
    ip_header(buf, total, PUNCH_IP_UDP, src, dst);
    uint8_t *u = buf + 20;
    punch_put16(u, src.port);
    punch_put16(u + 2, dst.port);
    punch_put16(u + 4, (uint16_t)(8 + plen));
    punch_put16(u + 6, 0);
    memcpy(u + 8, payload, plen);
    uint16_t c = (uint16_t)~punch_inet_sum(u, 8 + plen, pseudo(buf, PUNCH_IP_UDP, 8 + plen));
    punch_put16(u + 6, c ? c : 0xFFFF);
    return total;
}

static size_t tcp_packet(uint8_t *buf, punch_addr src, punch_addr dst, uint8_t flags,
                         uint32_t seq, uint32_t ack, size_t payload)
{
    size_t total = 20 + 20 + payload;
    ip_header(buf, total, PUNCH_IP_TCP, src, dst);
    uint8_t *t = buf + 20;
    memset(t, 0, 20 + payload);
    punch_put16(t, src.port);
    punch_put16(t + 2, dst.port);
    punch_put32(t + 4, seq);
    punch_put32(t + 8, ack);
    t[12] = 5 << 4;
    t[13] = flags;
    punch_put16(t + 14, 65535);
    for (size_t i = 0; i < payload; i++)
        t[20 + i] = (uint8_t)i;
    punch_put16(t + 16, (uint16_t)~punch_inet_sum(t, 20 + payload, pseudo(buf, PUNCH_IP_TCP, 20 + payload)));
    return total;
}

static size_t echo_packet(uint8_t *buf, punch_addr src, punch_addr dst, uint8_t type, uint16_t id)
{
    size_t total = 20 + 8 + 16;
    ip_header(buf, total, PUNCH_IP_ICMP, src, dst);
    uint8_t *i = buf + 20;
    memset(i, 0, 24);
    i[0] = type;
    punch_put16(i + 4, id);
    punch_put16(i + 6, 7);
    memcpy(i + 8, "0123456789abcdef", 16);
    punch_put16(i + 2, (uint16_t)~punch_inet_sum(i, 24, 0));
    return total;
}

static void assert_checksums_ok(const uint8_t *buf, size_t len)
{
    assert_int_equal(punch_inet_sum(buf, 20, 0), 0xFFFF);
    size_t l4 = len - 20;
    switch (buf[9]) {
    case PUNCH_IP_UDP:
        if (punch_get16(buf + 26) != 0)
            assert_int_equal(punch_inet_sum(buf + 20, l4, pseudo(buf, PUNCH_IP_UDP, l4)), 0xFFFF);
        break;
    case PUNCH_IP_TCP:
        assert_int_equal(punch_inet_sum(buf + 20, l4, pseudo(buf, PUNCH_IP_TCP, l4)), 0xFFFF);
        break;
    case PUNCH_IP_ICMP:
        assert_int_equal(punch_inet_sum(buf + 20, l4, 0), 0xFFFF);
        break;
    }
}

static void udp_rewrite_keeps_checksums(void **state)
{
    (void)state;
    uint8_t buf[128];
    size_t len = udp_packet(buf, ep(10, 0, 1, 2, 5000), ep(198, 51, 100, 1, 3478), "hello, odd!");
    punch_ipv4 p;
    assert_int_equal(punch_ipv4_parse(buf, len, &p), 0);
    assert_int_equal(p.proto, PUNCH_IP_UDP);
    assert_int_equal(p.src.port, 5000);
    assert_int_equal(p.dst.port, 3478);
    assert_int_equal(p.ttl, 64);
    punch_addr pub = ep(203, 0, 113, 7, 40001);
    punch_ipv4_set_src(&p, &pub);
    assert_checksums_ok(buf, len);
    assert_true(punch_addr_equal(&p.src, &pub));
    punch_addr inside = ep(10, 0, 9, 9, 65535);
    punch_ipv4_set_dst(&p, &inside);
    assert_checksums_ok(buf, len);
    punch_ipv4_add_ttl(&p, 1);
    assert_int_equal(buf[8], 65);
    assert_checksums_ok(buf, len);
    /* Re-parse sees what was written. */
    punch_ipv4 q;
    assert_int_equal(punch_ipv4_parse(buf, len, &q), 0);
    assert_true(punch_addr_equal(&q.src, &pub));
    assert_true(punch_addr_equal(&q.dst, &inside));
    assert_memory_equal(buf + 28, "hello, odd!", 11);
}

static void udp_without_checksum_stays_without(void **state)
{
    (void)state;
    uint8_t buf[128];
    size_t len = udp_packet(buf, ep(10, 0, 1, 2, 5000), ep(198, 51, 100, 1, 3478), "x");
    punch_put16(buf + 26, 0); /* RFC 768: no checksum */
    punch_ipv4 p;
    assert_int_equal(punch_ipv4_parse(buf, len, &p), 0);
    punch_ipv4_set_src(&p, &(punch_addr){.family = PUNCH_AF_INET, .port = 9, .ip = {1, 2, 3, 4}});
    assert_int_equal(punch_get16(buf + 26), 0);
    assert_checksums_ok(buf, len);
}

static void tcp_rewrite_keeps_checksums(void **state)
{
    (void)state;
    uint8_t buf[256];
    size_t len = tcp_packet(buf, ep(10, 0, 1, 2, 40000), ep(203, 0, 113, 9, 443),
                            PUNCH_TCP_SYN, 1000, 0, 33);
    punch_ipv4 p;
    assert_int_equal(punch_ipv4_parse(buf, len, &p), 0);
    assert_int_equal(p.tcp_flags, PUNCH_TCP_SYN);
    punch_ipv4_set_src(&p, &(punch_addr){.family = PUNCH_AF_INET, .port = 1, .ip = {255, 255, 0, 1}});
    assert_checksums_ok(buf, len);
    punch_ipv4_set_dst(&p, &(punch_addr){.family = PUNCH_AF_INET, .port = 65000, .ip = {0, 0, 0, 1}});
    assert_checksums_ok(buf, len);
}

static void icmp_echo_id_is_the_port(void **state)
{
    (void)state;
    uint8_t buf[128];
    size_t len = echo_packet(buf, ep(10, 0, 1, 2, 0), ep(198, 51, 100, 1, 0), PUNCH_ICMP_ECHO, 0x4242);
    punch_ipv4 p;
    assert_int_equal(punch_ipv4_parse(buf, len, &p), 0);
    assert_int_equal(p.src.port, 0x4242);
    assert_int_equal(p.dst.port, 0x4242);
    punch_ipv4_set_src(&p, &(punch_addr){.family = PUNCH_AF_INET, .port = 777, .ip = {203, 0, 113, 7}});
    assert_int_equal(punch_get16(buf + 24), 777);
    assert_int_equal(p.dst.port, 777);
    assert_checksums_ok(buf, len);
    /* The reply comes back to the public id; translating its destination
     * restores the inside id. */
    len = echo_packet(buf, ep(198, 51, 100, 1, 0), ep(203, 0, 113, 7, 0), PUNCH_ICMP_ECHO_REPLY, 777);
    assert_int_equal(punch_ipv4_parse(buf, len, &p), 0);
    punch_ipv4_set_dst(&p, &(punch_addr){.family = PUNCH_AF_INET, .port = 0x4242, .ip = {10, 0, 1, 2}});
    assert_int_equal(punch_get16(buf + 24), 0x4242);
    assert_checksums_ok(buf, len);
}

static void icmp_error_inner_packet(void **state)
{
    (void)state;
    /* A port-unreachable from 198.51.100.1 about our translated UDP packet
     * from 203.0.113.7:40001. */
    uint8_t orig[64], buf[128];
    size_t olen = udp_packet(orig, ep(203, 0, 113, 7, 40001), ep(198, 51, 100, 1, 3478), "payload!");
    size_t quoted = 20 + 8, total = 20 + 8 + quoted;
    ip_header(buf, total, PUNCH_IP_ICMP, ep(198, 51, 100, 1, 0), ep(203, 0, 113, 7, 0));
    uint8_t *i = buf + 20;
    memset(i, 0, 8);
    i[0] = PUNCH_ICMP_UNREACHABLE;
    i[1] = 3;
    memcpy(i + 8, orig, quoted);
    punch_put16(i + 2, (uint16_t)~punch_inet_sum(i, 8 + quoted, 0));
    (void)olen;

    punch_ipv4 p, inner;
    assert_int_equal(punch_ipv4_parse(buf, total, &p), 0);
    assert_int_equal(p.icmp_type, PUNCH_ICMP_UNREACHABLE);
    assert_int_equal(punch_ipv4_icmp_inner(&p, &inner), 0);
    assert_int_equal(inner.proto, PUNCH_IP_UDP);
    assert_true(punch_addr_equal(&inner.src, &(punch_addr){.family = PUNCH_AF_INET, .port = 40001,
                                                           .ip = {203, 0, 113, 7}}));
    punch_addr inside = ep(10, 0, 1, 2, 5000);
    punch_ipv4_set_dst(&p, &(punch_addr){.family = PUNCH_AF_INET, .ip = {10, 0, 1, 2}});
    punch_ipv4_set_inner_src(&p, &inner, &inside);
    assert_checksums_ok(buf, total);
    assert_int_equal(punch_inet_sum(buf + 28, 20, 0), 0xFFFF); /* inner IP header */
    assert_memory_equal(buf + 28 + 12, inside.ip, 4);
    assert_int_equal(punch_get16(buf + 48), 5000);
    /* Echo or a non-error ICMP has no inner packet. */
    size_t len = echo_packet(buf, ep(1, 1, 1, 1, 0), ep(2, 2, 2, 2, 0), PUNCH_ICMP_ECHO, 1);
    assert_int_equal(punch_ipv4_parse(buf, len, &p), 0);
    assert_int_equal(punch_ipv4_icmp_inner(&p, &inner), PUNCH_ERR_MALFORMED);
}

static void tcp_rst_answers_a_syn(void **state)
{
    (void)state;
    uint8_t buf[128], rst[64];
    size_t len = tcp_packet(buf, ep(198, 51, 100, 1, 5555), ep(203, 0, 113, 7, 40001),
                            PUNCH_TCP_SYN, 0xFFFFFFFFu, 0, 0);
    punch_ipv4 p, r;
    assert_int_equal(punch_ipv4_parse(buf, len, &p), 0);
    size_t rlen = punch_ipv4_tcp_rst(&p, rst, sizeof(rst));
    assert_int_equal(rlen, 40);
    assert_int_equal(punch_ipv4_parse(rst, rlen, &r), 0);
    assert_checksums_ok(rst, rlen);
    assert_true(punch_addr_equal(&r.src, &p.dst));
    assert_true(punch_addr_equal(&r.dst, &p.src));
    assert_int_equal(r.tcp_flags, PUNCH_TCP_RST | PUNCH_TCP_ACK);
    assert_int_equal(punch_get32(rst + 28), 0); /* SYN's seq + 1, wrapped */
    /* An ACK is answered with seq = its ack, no ACK flag. */
    len = tcp_packet(buf, ep(198, 51, 100, 1, 5555), ep(203, 0, 113, 7, 40001),
                     PUNCH_TCP_ACK, 5, 12345, 10);
    punch_ipv4_parse(buf, len, &p);
    rlen = punch_ipv4_tcp_rst(&p, rst, sizeof(rst));
    punch_ipv4_parse(rst, rlen, &r);
    assert_int_equal(r.tcp_flags, PUNCH_TCP_RST);
    assert_int_equal(punch_get32(rst + 24), 12345);
    /* Never a RST for a RST. */
    len = tcp_packet(buf, ep(198, 51, 100, 1, 5555), ep(203, 0, 113, 7, 40001), PUNCH_TCP_RST, 1, 0, 0);
    punch_ipv4_parse(buf, len, &p);
    assert_int_equal(punch_ipv4_tcp_rst(&p, rst, sizeof(rst)), 0);
    assert_int_equal(punch_ipv4_tcp_rst(&p, rst, 39), 0);
}

static void malformed_packets(void **state)
{
    (void)state;
    uint8_t buf[128];
    punch_ipv4 p;
    size_t len = udp_packet(buf, ep(10, 0, 1, 2, 5000), ep(198, 51, 100, 1, 3478), "abc");
    for (size_t cut = 0; cut < len; cut++)
        assert_int_not_equal(punch_ipv4_parse(buf, cut, &p), 0);
    assert_int_equal(punch_ipv4_parse(buf, len + 4, &p), 0); /* trailing padding is fine */
    assert_int_equal(p.len, len);
    buf[10] ^= 1;
    assert_int_equal(punch_ipv4_parse(buf, len, &p), PUNCH_ERR_INTEGRITY);
    buf[10] ^= 1;
    buf[0] = 0x65; /* version 6 */
    assert_int_equal(punch_ipv4_parse(buf, len, &p), PUNCH_ERR_MALFORMED);
    buf[0] = 0x44; /* header length 16 */
    assert_int_equal(punch_ipv4_parse(buf, len, &p), PUNCH_ERR_MALFORMED);
    buf[0] = 0x45;
    /* A total length that leaves no room for the UDP header. */
    len = udp_packet(buf, ep(10, 0, 1, 2, 5000), ep(198, 51, 100, 1, 3478), "");
    punch_put16(buf + 2, 24);
    punch_put16(buf + 10, 0);
    punch_put16(buf + 10, (uint16_t)~punch_inet_sum(buf, 20, 0));
    assert_int_equal(punch_ipv4_parse(buf, len, &p), PUNCH_ERR_MALFORMED);
    /* A later fragment has no ports and is still parsed. */
    len = udp_packet(buf, ep(10, 0, 1, 2, 5000), ep(198, 51, 100, 1, 3478), "abcdefgh");
    punch_put16(buf + 6, 0x0001);
    punch_put16(buf + 10, 0);
    punch_put16(buf + 10, (uint16_t)~punch_inet_sum(buf, 20, 0));
    assert_int_equal(punch_ipv4_parse(buf, len, &p), 0);
    assert_true(p.fragment);
    assert_int_equal(p.src.port, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(udp_rewrite_keeps_checksums),
        cmocka_unit_test(udp_without_checksum_stays_without),
        cmocka_unit_test(tcp_rewrite_keeps_checksums),
        cmocka_unit_test(icmp_echo_id_is_the_port),
        cmocka_unit_test(icmp_error_inner_packet),
        cmocka_unit_test(tcp_rst_answers_a_syn),
        cmocka_unit_test(malformed_packets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
