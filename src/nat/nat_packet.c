/* SPDX-License-Identifier: MIT */
/* punch-nat's packet path: see nat_packet.h. */
#include "nat/nat_packet.h"

#include "wire/bytes.h"
#include "wire/ipv4.h"

/* Apply a FORWARD or HAIRPIN verdict: the packet leaves with out's
 * addresses. punch-nat's kernel already took one off the TTL on the way
 * into the TUN and will take another on the way out: give one back, so
 * the NAT counts as one hop, as a real one does. */
static void rewrite(punch_ipv4 *p, const punch_nat_tuple *out)
{
    if (!punch_addr_equal(&p->src, &out->src))
        punch_ipv4_set_src(p, &out->src);
    if (!punch_addr_equal(&p->dst, &out->dst))
        punch_ipv4_set_dst(p, &out->dst);
    punch_ipv4_add_ttl(p, 1);
}

static bool is_icmp_error(const punch_ipv4 *p)
{
    return p->proto == PUNCH_IP_ICMP && (p->icmp_type == PUNCH_ICMP_UNREACHABLE ||
                                         p->icmp_type == PUNCH_ICMP_TIME_EXCEEDED);
}

/* An ICMP error about a translated flow (RFC 5508 §4.2): the quoted packet
 * names the mapping. Inbound, it quotes one of our outbound packets
 * (source = public mapping): deliver it to the inside host, quoted packet
 * restored, when the mapping really sent it and it comes from where that
 * packet went (punch_nat_icmp_error_in). Outbound, an inside host
 * complains about an inbound packet (destination = itself): send it out
 * from the public mapping. */
static bool translate_icmp_error(punch_nat *nat, punch_ipv4 *p, bool inbound, uint64_t now)
{
    punch_ipv4 inner;
    punch_addr mapped;
    if (punch_ipv4_icmp_inner(p, &inner) != 0 || inner.fragment ||
        (inner.proto != PUNCH_IP_UDP && inner.proto != PUNCH_IP_TCP &&
         inner.proto != PUNCH_IP_ICMP))
        return false;
    if (inbound) {
        if (punch_nat_icmp_error_in(nat, now, inner.proto, &inner.src, &inner.dst, &p->src,
                                    &mapped) != 0)
            return false;
        punch_addr host = mapped;
        host.port = 0;
        punch_ipv4_set_dst(p, &host);
        punch_ipv4_set_inner_src(p, &inner, &mapped);
    } else {
        if (punch_nat_lookup(nat, now, inner.proto, &inner.dst, &inner.src, &mapped) != 0)
            return false;
        punch_addr host = mapped;
        host.port = 0;
        punch_ipv4_set_src(p, &host);
        punch_ipv4_set_inner_dst(p, &inner, &mapped);
    }
    punch_ipv4_add_ttl(p, 1); /* as rewrite() */
    return true;
}

punch_nat_action punch_nat_packet(punch_nat *nat, uint64_t now, uint8_t *buf, size_t len,
                                  bool inbound, uint8_t rst[PUNCH_NAT_RST_MAX], size_t *out_len)
{
    punch_ipv4 p;
    *out_len = 0;
    if (punch_ipv4_parse(buf, len, &p) != 0)
        return PUNCH_NAT_PKT_BAD_PARSE;
    if (is_icmp_error(&p)) {
        if (!translate_icmp_error(nat, &p, inbound, now))
            return PUNCH_NAT_PKT_BAD_ICMP;
        *out_len = p.len;
        return PUNCH_NAT_PKT_SEND;
    }
    bool query = p.proto == PUNCH_IP_ICMP &&
                 (p.icmp_type == PUNCH_ICMP_ECHO || p.icmp_type == PUNCH_ICMP_ECHO_REPLY);
    if (p.fragment || (p.proto != PUNCH_IP_UDP && p.proto != PUNCH_IP_TCP && !query))
        return PUNCH_NAT_PKT_BAD_PROTO;
    punch_nat_tuple in = {.proto = p.proto, .src = p.src, .dst = p.dst}, out;
    if (p.proto == PUNCH_IP_TCP) /* parse checked the header fits */
        in.seq = punch_get32(p.buf + p.l4 + 4);
    punch_nat_verdict v = inbound ? punch_nat_inbound(nat, now, &in, p.tcp_flags, &out)
                                  : punch_nat_outbound(nat, now, &in, p.tcp_flags, &out);
    switch (v) {
    case PUNCH_NAT_FORWARD:
    case PUNCH_NAT_HAIRPIN:
        rewrite(&p, &out);
        *out_len = p.len;
        return PUNCH_NAT_PKT_SEND;
    case PUNCH_NAT_RST:
        *out_len = punch_ipv4_tcp_rst(&p, rst, PUNCH_NAT_RST_MAX);
        return *out_len ? PUNCH_NAT_PKT_RST : PUNCH_NAT_PKT_DROP;
    default:
        return PUNCH_NAT_PKT_DROP;
    }
}
