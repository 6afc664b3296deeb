/* SPDX-License-Identifier: MIT */
/*
 * NAT64 (RFC 6146) as a translation in front of the IPv4 NAT model:
 * what Debian's tayga does beside the kernel's NAT44 (lab/ipv6.sh), and
 * what src/sim runs for an IPv6-only site. IPv6 packets from the inside to
 * an address under the prefix (RFC 6052 §2.2, any length) leave with the embedded
 * IPv4 destination and an IPv4 source of a small pool, one pool address
 * per inside IPv6 address for as long as the model lives (tayga's dynamic
 * pool, ports kept); the NAT44 behind it then maps that source as it
 * would any inside host's, with its own mapping and filtering. Packets
 * the NAT44 lets back in to a pool address come out as IPv6: to the inside
 * address that has it, from the sender's synthesized address.
 * Pure: no I/O, fixed tables.
 */
#ifndef PUNCH_NAT_NAT64_H
#define PUNCH_NAT_NAT64_H

#include <stdbool.h>
#include <stddef.h>

#include "nat/nat.h"

#define PUNCH_NAT64_POOL 16

typedef struct punch_nat64 {
    punch_nat64_prefix prefix;           /* bits 0: 64:ff9b::/96 */
    punch_addr pool;                     /* the pool's first IPv4 address */
    size_t n;                            /* pool addresses given out */
    punch_addr inside[PUNCH_NAT64_POOL]; /* ...to these IPv6 addresses (port 0) */
} punch_nat64;

/* prefix NULL or bits 0: 64:ff9b::/96. pool: an IPv4 address (the
 * first of PUNCH_NAT64_POOL in a row). Returns 0, or PUNCH_ERR_INVAL
 * for a prefix RFC 6052 does not allow (punch_nat64_prefix_check). */
int punch_nat64_init(punch_nat64 *t, const punch_nat64_prefix *prefix, const punch_addr *pool);
/* An inside IPv6 tuple to the prefix, as the IPv4 tuple the NAT44 gets.
 * False: not for the NAT64 (not IPv6, or not to the prefix), or the pool
 * is spent. */
bool punch_nat64_out(punch_nat64 *t, const punch_nat_tuple *in, punch_nat_tuple *out);
/* An IPv4 tuple the NAT44 let in to a pool address, as the IPv6 tuple
 * for the inside. False: not to a pool address given out. */
bool punch_nat64_in(const punch_nat64 *t, const punch_nat_tuple *in, punch_nat_tuple *out);

#endif
