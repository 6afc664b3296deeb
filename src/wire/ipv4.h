/* SPDX-License-Identifier: MIT */
/*
 * IPv4 packets with UDP, TCP or ICMP inside: parse in place, rewrite
 * addresses and ports with incremental checksum updates (RFC 1624). This is
 * what punch-nat does to every packet; pure code over byte buffers.
 */
#ifndef PUNCH_WIRE_IPV4_H
#define PUNCH_WIRE_IPV4_H

#include "punch/punch.h"

enum { PUNCH_IP_ICMP = 1, PUNCH_IP_TCP = 6, PUNCH_IP_UDP = 17 };

/* TCP flags (RFC 9293). */
enum {
    PUNCH_TCP_FIN = 0x01,
    PUNCH_TCP_SYN = 0x02,
    PUNCH_TCP_RST = 0x04,
    PUNCH_TCP_ACK = 0x10,
};

/* ICMP types we translate (RFC 792). */
enum {
    PUNCH_ICMP_ECHO_REPLY = 0,
    PUNCH_ICMP_UNREACHABLE = 3,
    PUNCH_ICMP_ECHO = 8,
    PUNCH_ICMP_TIME_EXCEEDED = 11,
};

typedef struct punch_ipv4 {
    uint8_t *buf;        /* the packet; rewritten in place */
    size_t len;          /* total length from the IP header */
    size_t l4;           /* offset of the transport header */
    uint8_t proto;
    uint8_t ttl;
    /* Endpoints: ports for UDP/TCP; for ICMP echo the identifier stands in
     * as both ports (the query id, RFC 5508 §3.1); 0 otherwise. */
    punch_addr src, dst;
    uint8_t tcp_flags;
    uint8_t icmp_type, icmp_code;
    bool fragment;       /* a non-first fragment: no transport header here */
} punch_ipv4;

/* Parse buf[0..len). Checks the version, header length, total length and
 * header checksum, and that a UDP/TCP/ICMP header fits. Trailing bytes after
 * the IP total length are ignored (Ethernet padding).
 * Returns 0, PUNCH_ERR_MALFORMED or PUNCH_ERR_INTEGRITY (bad header checksum). */
int punch_ipv4_parse(uint8_t *buf, size_t len, punch_ipv4 *p);

/* Rewrite the source or destination address and port (the ICMP echo id for
 * ICMP echo), fixing the IP header checksum and the UDP/TCP/ICMP checksum. */
void punch_ipv4_set_src(punch_ipv4 *p, const punch_addr *a);
void punch_ipv4_set_dst(punch_ipv4 *p, const punch_addr *a);
/* Add delta to the TTL (fixing the header checksum). */
void punch_ipv4_add_ttl(punch_ipv4 *p, int delta);

/* An ICMP error (unreachable, time exceeded) carries the start of the packet
 * that caused it. Parse that inner packet (its UDP/TCP ports or echo id, when
 * present in the 8 bytes quoted). Returns 0 or PUNCH_ERR_MALFORMED. */
int punch_ipv4_icmp_inner(const punch_ipv4 *p, punch_ipv4 *inner);
/* Rewrite the inner packet's source / destination and fix the inner IP
 * checksum and the outer ICMP checksum. */
void punch_ipv4_set_inner_src(punch_ipv4 *p, punch_ipv4 *inner, const punch_addr *a);
void punch_ipv4_set_inner_dst(punch_ipv4 *p, punch_ipv4 *inner, const punch_addr *a);

/* Build a TCP RST answering the segment p (RFC 9293 §3.10.7.1) into out
 * (at least 40 bytes). Returns the length, or 0 when p is itself a RST. */
size_t punch_ipv4_tcp_rst(const punch_ipv4 *p, uint8_t *out, size_t cap);

/* The Internet checksum (RFC 1071) of buf, folded, not inverted. */
uint16_t punch_inet_sum(const uint8_t *buf, size_t len, uint32_t start);

#endif
