/* SPDX-License-Identifier: MIT */
/* The machine's own addresses as candidates: see addresses.h. */
#include "driver/addresses.h"

#include <ifaddrs.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>

#include "io/net.h"
#include "punch/driver.h"
#include "wire/hex.h"

/* A hex field of 1..8 digits at *p, then at least one space. */
static bool hex_field(const char **p, unsigned *out)
{
    unsigned v = 0, n = 0;
    int d;
    while ((d = punch_hex_digit(**p)) >= 0 && n < 8) {
        v = v << 4 | (unsigned)d;
        (*p)++;
        n++;
    }
    if (n == 0 || **p != ' ')
        return false;
    while (**p == ' ')
        (*p)++;
    *out = v;
    return true;
}

int punch_if_inet6_parse(const char *line, punch_if_inet6 *out)
{
    punch_if_inet6 a = {.addr.family = PUNCH_AF_INET6};
    const char *p = line;
    for (int i = 0; i < 32; i++) {
        int d = punch_hex_digit(p[i]);
        if (d < 0)
            return PUNCH_ERR_MALFORMED;
        a.addr.ip[i / 2] = (uint8_t)(a.addr.ip[i / 2] << 4 | d);
    }
    p += 32;
    if (*p != ' ')
        return PUNCH_ERR_MALFORMED;
    while (*p == ' ')
        p++;
    unsigned index, prefix;
    if (!hex_field(&p, &index) || !hex_field(&p, &prefix) || prefix > 128 ||
        !hex_field(&p, &a.scope) || !hex_field(&p, &a.flags) || *p == '\0' || *p == '\n')
        return PUNCH_ERR_MALFORMED;
    *out = a;
    return 0;
}

bool punch_if_inet6_usable(const punch_if_inet6 *a)
{
    return a->scope == PUNCH_IFA_SCOPE_GLOBAL &&
           !(a->flags & (PUNCH_IFA_TENTATIVE | PUNCH_IFA_DADFAILED | PUNCH_IFA_DEPRECATED));
}

static bool listed(const punch_addr *out, size_t n, const punch_addr *a)
{
    for (size_t k = 0; k < n; k++)
        if (punch_addr_equal(&out[k], a))
            return true;
    return false;
}

/* IPv6 from /proc/net/if_inet6: stable addresses; a temporary one only
 * when there is no stable one (a host with privacy addresses alone).
 * Stable ones are what a peer can keep reaching for the session: a
 * temporary address is deprecated within a day (RFC 8981 §3.4) and the
 * path with it. Returns how many, or -1 when the file is not there. */
static long local_v6(uint16_t port, punch_addr *out, size_t cap)
{
    FILE *f = fopen("/proc/net/if_inet6", "re");
    if (!f)
        return -1;
    char line[256];
    size_t n = 0;
    punch_addr temporary = {0};
    while (n < cap && fgets(line, sizeof(line), f)) {
        punch_if_inet6 a;
        if (punch_if_inet6_parse(line, &a) != 0 || !punch_if_inet6_usable(&a))
            continue;
        a.addr.port = port;
        if (a.flags & PUNCH_IFA_TEMPORARY) {
            if (!temporary.family)
                temporary = a.addr;
        } else if (!listed(out, n, &a.addr)) {
            out[n++] = a.addr;
        }
    }
    fclose(f);
    if (n == 0 && temporary.family && cap > 0)
        out[n++] = temporary;
    return (long)n;
}

bool punch_local_ipv6_only(void)
{
    punch_addr one;
    return punch_local_addresses(PUNCH_AF_INET, 0, &one, 1) == 0 &&
           punch_local_addresses(PUNCH_AF_INET6, 0, &one, 1) > 0;
}

size_t punch_local_addresses(uint8_t family, uint16_t port, punch_addr *out, size_t cap)
{
    long v6;
    if (family == PUNCH_AF_INET6 && (v6 = local_v6(port, out, cap)) >= 0)
        return (size_t)v6;
    struct ifaddrs *ifs = NULL;
    size_t n = 0;
    if (getifaddrs(&ifs) != 0)
        return 0;
    for (struct ifaddrs *i = ifs; i && n < cap; i = i->ifa_next) {
        if (!i->ifa_addr || !(i->ifa_flags & IFF_UP) || (i->ifa_flags & IFF_LOOPBACK))
            continue;
        punch_addr a;
        punch_addr_from_sockaddr(i->ifa_addr, &a);
        /* IPv6 link-local addresses need a scope: not usable as candidates. */
        if (a.family != family || (family == PUNCH_AF_INET6 && a.ip[0] == 0xfe &&
                                   (a.ip[1] & 0xc0) == 0x80))
            continue;
        a.port = port;
        if (!listed(out, n, &a))
            out[n++] = a;
    }
    freeifaddrs(ifs);
    return n;
}
