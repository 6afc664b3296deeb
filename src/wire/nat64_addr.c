/* SPDX-License-Identifier: MIT */
/*
 * IPv4-embedded IPv6 addresses (RFC 6052 §2.2): where a NAT64 prefix of
 * each allowed length puts the IPv4 address, both ways. The address
 * format, so every layer that meets one (the agent, the NAT64 model,
 * punch's option parser) uses this one copy.
 *
 *   PL  | bits 0..PL | then, up to bit 63 | 64..71 | then         | rest
 *   32  | prefix     | v4 (4 bytes)       | u = 0  | suffix = 0
 *   40  | prefix     | v4 bytes 0-2       | u = 0  | v4 byte 3    | 0
 *   48  | prefix     | v4 bytes 0-1       | u = 0  | v4 bytes 2-3 | 0
 *   56  | prefix     | v4 byte 0          | u = 0  | v4 bytes 1-3 | 0
 *   64  | prefix     |                    | u = 0  | v4 (4 bytes) | 0
 *   96  | prefix (with u = 0)                      | v4 in bytes 12-15
 *
 * So the IPv4 bytes follow the prefix in order, stepping over byte 8
 * (the u-octet, which stays zero for compatibility with RFC 4291's
 * interface identifiers).
 */
#include <string.h>

#include "punch/punch.h"

/* RFC 6052 §2.1: 64:ff9b::/96. */
static const punch_nat64_prefix WELL_KNOWN = {.ip = {0x00, 0x64, 0xff, 0x9b}, .bits = 96};

/* RFC 6052 §2.2: bits 64 to 71. */
#define U_OCTET 8

static const punch_nat64_prefix *or_default(const punch_nat64_prefix *prefix)
{
    return prefix && prefix->bits ? prefix : &WELL_KNOWN;
}

const char *punch_nat64_prefix_check(const punch_nat64_prefix *prefix)
{
    const punch_nat64_prefix *p = or_default(prefix);
    if (p->bits != 32 && p->bits != 40 && p->bits != 48 && p->bits != 56 && p->bits != 64 &&
        p->bits != 96)
        return "the length is not 32, 40, 48, 56, 64 or 96 (RFC 6052 section 2.2)";
    if (p->bits == 96 && p->ip[U_OCTET] != 0)
        return "bits 64-71 (the u-octet) are not zero (RFC 6052 section 2.2)";
    for (size_t i = p->bits / 8u; i < PUNCH_NAT64_PREFIX_LEN; i++)
        if (p->ip[i] != 0)
            return "bits are set beyond the prefix length";
    return NULL;
}

/* The byte of the IPv6 address that holds IPv4 byte i under p. */
static size_t v4_byte_at(const punch_nat64_prefix *p, size_t i)
{
    size_t at = p->bits / 8u + i;
    return p->bits < 96 && at >= U_OCTET ? at + 1 : at;
}

int punch_nat64_synthesize(const punch_nat64_prefix *prefix, const punch_addr *v4, punch_addr *out)
{
    const punch_nat64_prefix *p = or_default(prefix);
    if (!v4 || !out || v4->family != PUNCH_AF_INET || punch_nat64_prefix_check(p))
        return PUNCH_ERR_INVAL;
    punch_addr six = {.family = PUNCH_AF_INET6, .port = v4->port};
    memcpy(six.ip, p->ip, p->bits / 8u);
    for (size_t i = 0; i < 4; i++)
        six.ip[v4_byte_at(p, i)] = v4->ip[i];
    *out = six;
    return 0;
}

bool punch_nat64_is_synthesized(const punch_nat64_prefix *prefix, const punch_addr *addr)
{
    const punch_nat64_prefix *p = or_default(prefix);
    return addr && addr->family == PUNCH_AF_INET6 && !punch_nat64_prefix_check(p) &&
           memcmp(addr->ip, p->ip, p->bits / 8u) == 0 && addr->ip[U_OCTET] == 0;
}

int punch_nat64_extract(const punch_nat64_prefix *prefix, const punch_addr *v6, punch_addr *out)
{
    const punch_nat64_prefix *p = or_default(prefix);
    if (!punch_nat64_is_synthesized(p, v6) || !out)
        return PUNCH_ERR_INVAL;
    punch_addr four = {.family = PUNCH_AF_INET, .port = v6->port};
    for (size_t i = 0; i < 4; i++)
        four.ip[i] = v6->ip[v4_byte_at(p, i)];
    *out = four;
    return 0;
}
