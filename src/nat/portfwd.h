/* SPDX-License-Identifier: MIT */
/*
 * Port forwards in front of a NAT, sans-I/O: what a home router's UPnP
 * IGD, NAT-PMP or PCP service (draft §4.5) adds when a host asks it, as
 * miniupnpd does on Linux (a DNAT rule plus the kernel's conntrack). A
 * forward sends every packet to external (the NAT's public address, a
 * port the host asked for) to the inside endpoint, from any remote: no
 * filtering. The remote it came from becomes a flow, so the inside host's
 * answers to that remote leave from external too; a packet from the host
 * to a remote that never wrote to it is none of ours (the NAT maps it as
 * any other: a forward changes no mapping behaviour).
 *
 * The caller (src/sim for a NAT router) asks the table first and the NAT
 * (nat.h) when the table does not take the packet. Tables are fixed-size;
 * time is milliseconds passed in.
 */
#ifndef PUNCH_NAT_PORTFWD_H
#define PUNCH_NAT_PORTFWD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nat/nat.h"

typedef struct punch_nat_fwd punch_nat_fwd;

/* Room for max_forwards forwards and max_flows remotes across them.
 * Returns 0, PUNCH_ERR_INVAL (a capacity of 0 or above 2^16) or
 * PUNCH_ERR_NOMEM. */
int punch_nat_fwd_new(punch_nat_fwd **fwd, size_t max_forwards, size_t max_flows);
void punch_nat_fwd_free(punch_nat_fwd *fwd);

/* Forward proto to inside on nat's first public address, port want (or
 * the next one above it that no live mapping of nat and no forward
 * holds), for lifetime_ms. A live forward of the same inside endpoint is
 * renewed and keeps its port. Returns 0 with *external set,
 * PUNCH_ERR_INVAL (bad arguments, a lifetime of 0, a NAT with no public
 * address), PUNCH_ERR_LIMIT (table full) or PUNCH_ERR_NOTFOUND (no free
 * port). */
int punch_nat_fwd_add(punch_nat_fwd *fwd, const punch_nat *nat, uint64_t now_ms, uint8_t proto,
                      const punch_addr *inside, uint16_t want, uint64_t lifetime_ms,
                      punch_addr *external);

/* Delete the forward on external, with its flows. Returns 0 or
 * PUNCH_ERR_NOTFOUND. */
int punch_nat_fwd_remove(punch_nat_fwd *fwd, uint8_t proto, const punch_addr *external);

/* A packet arrived on the outside: true with out (destination: the inside
 * endpoint) when it is for a live forward; the remote becomes a flow
 * (when there is room) for flow_ms. */
bool punch_nat_fwd_inbound(punch_nat_fwd *fwd, uint64_t now_ms, const punch_nat_tuple *in,
                           uint64_t flow_ms, punch_nat_tuple *out);

/* A packet arrived on the inside: true with out (source: the forward's
 * external endpoint) when it belongs to a live flow, which it refreshes. */
bool punch_nat_fwd_outbound(punch_nat_fwd *fwd, uint64_t now_ms, const punch_nat_tuple *in,
                            uint64_t flow_ms, punch_nat_tuple *out);

/* Live forwards and flows. */
size_t punch_nat_fwd_count(const punch_nat_fwd *fwd, uint64_t now_ms);
size_t punch_nat_fwd_flow_count(const punch_nat_fwd *fwd, uint64_t now_ms);

#endif
