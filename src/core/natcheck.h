/* SPDX-License-Identifier: MIT */
/*
 * NAT behaviour discovery (RFC 5780 §4), the pure part: what the answers
 * observed by `punch natcheck` say about the NAT, in the vocabulary of the
 * NAT model (src/nat/nat.h, RFC 4787). The probing lives in
 * apps/punch/natcheck.c.
 */
#ifndef PUNCH_CORE_NATCHECK_H
#define PUNCH_CORE_NATCHECK_H

#include "nat/nat.h"

/* The largest step still called sequential: beyond it, consecutive
 * mappings are as good as unpredictable for port prediction (draft §3.4). */
#define PUNCH_NATCHECK_MAX_STEP 64

/* RFC 5780 §4.3: m1 = mapping seen by the primary address, m2 = by the
 * alternate IP with the primary port, m3 = by the alternate IP and port
 * (only needed when m1 != m2). Returns 0 with *out set, or
 * PUNCH_ERR_NOTFOUND when a needed answer is missing (family PUNCH_AF_NONE). */
int punch_natcheck_mapping(const punch_addr *m1, const punch_addr *m2, const punch_addr *m3,
                           punch_nat_mapping *out);

/* RFC 5780 §4.4: did an answer come back when the server was asked to
 * answer from its other IP and port (test II), or its other port only
 * (test III)? */
punch_nat_filtering punch_natcheck_filtering(bool answered_other_ip_and_port,
                                             bool answered_other_port);

/* From n fresh mappings made one after the other (local port, public port
 * pairs): preserve when every public port equals its local port; sequential
 * when each public port is the previous one plus the same non-zero step of at
 * most PUNCH_NATCHECK_MAX_STEP (either sign; *step gets it, else 0); else
 * random. Returns 0 with *out set, or PUNCH_ERR_NOTFOUND when n < 3. */
int punch_natcheck_ports(const uint16_t *local, const uint16_t *mapped, size_t n,
                         punch_nat_ports *out, int *step);

/* The step between public ports mapped one after the other, when it is
 * the same non-zero step of at most PUNCH_NATCHECK_MAX_STEP (either sign,
 * a port counter wrapping at 65536) every time; else 0 (also when n < 2).
 * Shared by punch_natcheck_ports and the agent's NAT discovery. */
int punch_natcheck_steady_step(const uint16_t *mapped, size_t n);

#endif
