/* SPDX-License-Identifier: MIT */
/* IPv4 parsing and rewriting: see ipv4.h. */
#include "wire/ipv4.h"

#include <string.h>

#include "wire/bytes.h"

#define IP_MIN_HEADER 20
#define UDP_HEADER 8
#define TCP_MIN_HEADER 20
#define ICMP_HEADER 8

uint16_t punch_inet_sum(const uint8_t *buf, size_t len, uint32_t start)
{
    uint32_t sum = start;
    for (size_t i = 0; i + 1 < len; i += 2)
        sum += punch_get16(buf + i);
    if (len & 1)
        sum += (uint32_t)buf[len - 1] << 8;
    while (sum >> 16)
        sum = (sum & 0xFFFF) + (sum >> 16);
    return (uint16_t)sum;
}

/* RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m') for one 16-bit word changing
 * from m to m'. */
static void csum_replace16(uint8_t *csum, uint16_t old_word, uint16_t new_word)
{
    uint32_t sum = (uint16_t)~punch_get16(csum);
    sum += (uint16_t)~old_word;
    sum += new_word;
    while (sum >> 16)
        sum = (sum & 0xFFFF) + (sum >> 16);
    punch_put16(csum, (uint16_t)~sum);
}

/* Overwrite the 16-bit word at p, keeping every listed checksum right. */
static void set_word(uint8_t *p, uint16_t v, uint8_t *csum_a, uint8_t *csum_b)
{
    uint16_t old = punch_get16(p);
    if (csum_a)
        csum_replace16(csum_a, old, v);
    if (csum_b)
        csum_replace16(csum_b, old, v);
    punch_put16(p, v);
}

static bool has_ports(const punch_ipv4 *p)
{
    return !p->fragment && (p->proto == PUNCH_IP_UDP || p->proto == PUNCH_IP_TCP);
}

static bool is_icmp_echo(const punch_ipv4 *p)
{
    return !p->fragment && p->proto == PUNCH_IP_ICMP &&
           (p->icmp_type == PUNCH_ICMP_ECHO || p->icmp_type == PUNCH_ICMP_ECHO_REPLY);
}

/* The transport checksum that covers the addresses (pseudo-header): UDP's
 * (unless 0 = none, RFC 768) and TCP's; ICMP's does not. */
static uint8_t *pseudo_csum(punch_ipv4 *p)
{
    if (p->fragment)
        return NULL;
    /* A packet quoted in an ICMP error may stop before TCP's checksum. */
    if (p->proto == PUNCH_IP_TCP)
        return p->l4 + 18 <= p->len ? p->buf + p->l4 + 16 : NULL;
    if (p->proto == PUNCH_IP_UDP && punch_get16(p->buf + p->l4 + 6) != 0)
        return p->buf + p->l4 + 6;
    return NULL;
}

/* Parse the header at buf with room bytes available; quoted is true for
 * the packet inside an ICMP error, of which only the first 8 transport
 * bytes are there and the total length may exceed what was quoted. */
static int parse_header(uint8_t *buf, size_t room, bool quoted, punch_ipv4 *p)
{
    memset(p, 0, sizeof(*p));
    if (room < IP_MIN_HEADER || (buf[0] >> 4) != 4)
        return PUNCH_ERR_MALFORMED;
    size_t ihl = (size_t)(buf[0] & 0x0F) * 4;
    size_t total = punch_get16(buf + 2);
    if (ihl < IP_MIN_HEADER || total < ihl || ihl > room || (!quoted && total > room))
        return PUNCH_ERR_MALFORMED;
    if (punch_inet_sum(buf, ihl, 0) != 0xFFFF)
        return PUNCH_ERR_INTEGRITY;
    p->buf = buf;
    p->len = quoted ? room : total;
    p->l4 = ihl;
    p->proto = buf[9];
    p->ttl = buf[8];
    p->fragment = (punch_get16(buf + 6) & 0x1FFF) != 0; /* fragment offset */
    p->src.family = p->dst.family = PUNCH_AF_INET;
    memcpy(p->src.ip, buf + 12, 4);
    memcpy(p->dst.ip, buf + 16, 4);
    if (p->fragment)
        return 0;
    size_t l4_len = p->len - ihl;
    switch (p->proto) {
    case PUNCH_IP_UDP:
    case PUNCH_IP_TCP:
        if (l4_len < (quoted ? 8u : p->proto == PUNCH_IP_UDP ? UDP_HEADER : TCP_MIN_HEADER))
            return PUNCH_ERR_MALFORMED;
        p->src.port = punch_get16(buf + ihl);
        p->dst.port = punch_get16(buf + ihl + 2);
        if (p->proto == PUNCH_IP_TCP && !quoted)
            p->tcp_flags = buf[ihl + 13];
        break;
    case PUNCH_IP_ICMP:
        if (l4_len < ICMP_HEADER)
            return PUNCH_ERR_MALFORMED;
        p->icmp_type = buf[ihl];
        p->icmp_code = buf[ihl + 1];
        if (is_icmp_echo(p))
            p->src.port = p->dst.port = punch_get16(buf + ihl + 4);
        break;
    default:
        break;
    }
    return 0;
}

int punch_ipv4_parse(uint8_t *buf, size_t len, punch_ipv4 *p)
{
    if (!buf || !p)
        return PUNCH_ERR_MALFORMED;
    return parse_header(buf, len, false, p);
}

/* Rewrite one side: the IP address at ip_off (IP header and pseudo-header
 * checksums), the UDP/TCP port at port_off of the transport header, and for
 * ICMP echo the identifier (its one "port", RFC 5508 §3.1). */
static void set_endpoint(punch_ipv4 *p, const punch_addr *a, size_t ip_off, size_t port_off)
{
    uint8_t *ip_csum = p->buf + 10, *l4_csum = pseudo_csum(p);
    set_word(p->buf + ip_off, punch_get16(a->ip), ip_csum, l4_csum);
    set_word(p->buf + ip_off + 2, punch_get16(a->ip + 2), ip_csum, l4_csum);
    if (has_ports(p))
        set_word(p->buf + p->l4 + port_off, a->port, l4_csum, NULL);
    else if (is_icmp_echo(p))
        set_word(p->buf + p->l4 + 4, a->port, p->buf + p->l4 + 2, NULL);
}

void punch_ipv4_set_src(punch_ipv4 *p, const punch_addr *a)
{
    set_endpoint(p, a, 12, 0);
    memcpy(p->src.ip, a->ip, 4);
    p->src.port = a->port;
    if (is_icmp_echo(p))
        p->dst.port = a->port;
}

void punch_ipv4_set_dst(punch_ipv4 *p, const punch_addr *a)
{
    set_endpoint(p, a, 16, 2);
    memcpy(p->dst.ip, a->ip, 4);
    p->dst.port = a->port;
    if (is_icmp_echo(p))
        p->src.port = a->port;
}

void punch_ipv4_add_ttl(punch_ipv4 *p, int delta)
{
    int ttl = p->buf[8] + delta;
    ttl = ttl < 0 ? 0 : ttl > 255 ? 255 : ttl;
    uint16_t old = punch_get16(p->buf + 8);
    p->buf[8] = (uint8_t)ttl;
    csum_replace16(p->buf + 10, old, punch_get16(p->buf + 8));
    p->ttl = (uint8_t)ttl;
}

int punch_ipv4_icmp_inner(const punch_ipv4 *p, punch_ipv4 *inner)
{
    if (p->proto != PUNCH_IP_ICMP || p->fragment ||
        (p->icmp_type != PUNCH_ICMP_UNREACHABLE && p->icmp_type != PUNCH_ICMP_TIME_EXCEEDED))
        return PUNCH_ERR_MALFORMED;
    size_t at = p->l4 + ICMP_HEADER;
    if (p->len < at)
        return PUNCH_ERR_MALFORMED;
    int rc = parse_header(p->buf + at, p->len - at, true, inner);
    return rc == PUNCH_ERR_INTEGRITY ? PUNCH_ERR_MALFORMED : rc;
}

/* After an inner rewrite, the outer ICMP checksum covers everything after
 * the ICMP header: recompute it whole (ICMP errors are small and rare). */
static void fix_icmp_csum(punch_ipv4 *p)
{
    uint8_t *icmp = p->buf + p->l4;
    punch_put16(icmp + 2, 0);
    punch_put16(icmp + 2, (uint16_t)~punch_inet_sum(icmp, p->len - p->l4, 0));
}

void punch_ipv4_set_inner_src(punch_ipv4 *p, punch_ipv4 *inner, const punch_addr *a)
{
    punch_ipv4_set_src(inner, a);
    fix_icmp_csum(p);
}

void punch_ipv4_set_inner_dst(punch_ipv4 *p, punch_ipv4 *inner, const punch_addr *a)
{
    punch_ipv4_set_dst(inner, a);
    fix_icmp_csum(p);
}

size_t punch_ipv4_tcp_rst(const punch_ipv4 *p, uint8_t *out, size_t cap)
{
    if (p->proto != PUNCH_IP_TCP || p->fragment || (p->tcp_flags & PUNCH_TCP_RST) ||
        cap < IP_MIN_HEADER + TCP_MIN_HEADER)
        return 0;
    const uint8_t *tcp = p->buf + p->l4;
    uint32_t seq = punch_get32(tcp + 4), ack = punch_get32(tcp + 8);
    size_t seg_len = p->len - p->l4 - (size_t)(tcp[12] >> 4) * 4;
    if (p->tcp_flags & PUNCH_TCP_SYN)
        seg_len++;
    if (p->tcp_flags & PUNCH_TCP_FIN)
        seg_len++;
    memset(out, 0, IP_MIN_HEADER + TCP_MIN_HEADER);
    uint8_t *ip = out, *t = out + IP_MIN_HEADER;
    ip[0] = 0x45;
    punch_put16(ip + 2, IP_MIN_HEADER + TCP_MIN_HEADER);
    ip[8] = 64;
    ip[9] = PUNCH_IP_TCP;
    memcpy(ip + 12, p->dst.ip, 4);
    memcpy(ip + 16, p->src.ip, 4);
    punch_put16(ip + 10, (uint16_t)~punch_inet_sum(ip, IP_MIN_HEADER, 0));
    punch_put16(t, p->dst.port);
    punch_put16(t + 2, p->src.port);
    /* RFC 9293 §3.10.7.1: answer an ACK with seq = its ack; otherwise
     * seq 0 and ACK the segment. */
    if (p->tcp_flags & PUNCH_TCP_ACK) {
        punch_put32(t + 4, ack);
        t[13] = PUNCH_TCP_RST;
    } else {
        punch_put32(t + 8, seq + (uint32_t)seg_len);
        t[13] = PUNCH_TCP_RST | PUNCH_TCP_ACK;
    }
    t[12] = 5 << 4;
    /* TCP checksum over the pseudo-header (RFC 9293 §3.1). */
    uint32_t pseudo = punch_get16(ip + 12) + punch_get16(ip + 14) + punch_get16(ip + 16) +
                      punch_get16(ip + 18) + PUNCH_IP_TCP + TCP_MIN_HEADER;
    punch_put16(t + 16, (uint16_t)~punch_inet_sum(t, TCP_MIN_HEADER, pseudo));
    return IP_MIN_HEADER + TCP_MIN_HEADER;
}
