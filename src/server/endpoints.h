/* SPDX-License-Identifier: MIT */
/*
 * The private endpoints a registration may list (draft §3.3.2, §6.2).
 * Anyone may claim any address as a private endpoint, and every peer that
 * connects sends probes there: the server passes on at most
 * PUNCH_RV_MAX_PRIVATE, each a unicast endpoint listed once, never one of
 * the server's own, so a registration cannot aim introductions at
 * multicast, broadcast or the server itself, nor multiply one victim.
 */
#ifndef PUNCH_SERVER_ENDPOINTS_H
#define PUNCH_SERVER_ENDPOINTS_H

#include <stddef.h>

#include "punch/punch.h"

/* A host with more addresses (containers, VPNs) is reached through its
 * public endpoint, the hairpin or the relay instead. */
#define PUNCH_RV_MAX_PRIVATE 4

/* Copy to out (room for PUNCH_RV_MAX_PRIVATE) the endpoints of in[0..n)
 * that may be passed on, in order; server (NULL: none) is where the
 * registration arrived. Returns how many were kept; *dropped how many not. */
size_t punch_rv_private_endpoints(const punch_addr *in, size_t n, const punch_addr *server,
                                  punch_addr *out, size_t *dropped);

#endif
