/* SPDX-License-Identifier: MIT */
/*
 * The machine's own addresses as candidates (punch_local_addresses): IPv4
 * from getifaddrs, IPv6 from /proc/net/if_inet6, which also says what
 * getifaddrs does not — scope, and whether an address is temporary (RFC
 * 8981 privacy), deprecated or still tentative (duplicate detection).
 */
#ifndef PUNCH_DRIVER_ADDRESSES_H
#define PUNCH_DRIVER_ADDRESSES_H

#include <stdbool.h>

#include "punch/punch.h"

/* if_inet6 flags (linux/if_addr.h IFA_F_*) and scopes (RT_SCOPE_*). */
enum {
    PUNCH_IFA_TEMPORARY = 0x01,
    PUNCH_IFA_DADFAILED = 0x08,
    PUNCH_IFA_DEPRECATED = 0x20,
    PUNCH_IFA_TENTATIVE = 0x40,
    PUNCH_IFA_SCOPE_GLOBAL = 0x00,
};

typedef struct punch_if_inet6 {
    punch_addr addr;  /* port 0 */
    unsigned scope;   /* 0x00 global, 0x20 link, 0x10 host, ... */
    unsigned flags;   /* PUNCH_IFA_* and others */
} punch_if_inet6;

/* One line of /proc/net/if_inet6: 32 hex digits of address, then the
 * interface index, prefix length, scope and flags in hex, then the name.
 * Returns 0, or PUNCH_ERR_MALFORMED (with nothing written to *out). */
int punch_if_inet6_parse(const char *line, punch_if_inet6 *out);

/* Whether an address of that line may be a candidate: of global scope,
 * neither tentative, failed nor deprecated. */
bool punch_if_inet6_usable(const punch_if_inet6 *a);

#endif
