/* SPDX-License-Identifier: MIT */
/*
 * The NAT model on whole IPv4 packets (punch-nat's packet path): parse,
 * translate UDP, TCP and ICMP queries through nat.h, and translate ICMP
 * errors about translated flows (RFC 5508 §4.2). Sans-I/O: the caller reads
 * a packet from one side and writes what this says to the other side (or,
 * for a RST, back to the side it came from). Kept out of apps/punch-nat so
 * a fuzzer and the tests can drive the very path punch-nat runs.
 */
#ifndef PUNCH_NAT_PACKET_H
#define PUNCH_NAT_PACKET_H

#include "nat/nat.h"

typedef enum punch_nat_action {
    PUNCH_NAT_PKT_DROP = 0,     /* the model dropped it (counted in its counters) */
    PUNCH_NAT_PKT_SEND,         /* buf[0..*out_len) rewritten in place: send it on */
    PUNCH_NAT_PKT_RST,          /* send rst[0..*out_len) back where the packet came from */
    PUNCH_NAT_PKT_BAD_PARSE,    /* not a well-formed IPv4 packet */
    PUNCH_NAT_PKT_BAD_PROTO,    /* a fragment, or not UDP, TCP or an ICMP echo or error */
    PUNCH_NAT_PKT_BAD_ICMP,     /* an ICMP error about no flow of ours, or not allowed */
} punch_nat_action;

/* rst must hold PUNCH_NAT_RST_MAX bytes. */
#define PUNCH_NAT_RST_MAX 64

/* One packet in buf (len bytes) from the inside (inbound false) or the
 * outside. buf is rewritten in place for SEND; *out_len is the packet's
 * own length (its IP header's total length: bytes past it are not sent). */
punch_nat_action punch_nat_packet(punch_nat *nat, uint64_t now_ms, uint8_t *buf, size_t len,
                                  bool inbound, uint8_t rst[PUNCH_NAT_RST_MAX],
                                  size_t *out_len);

#endif
