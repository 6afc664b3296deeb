/* SPDX-License-Identifier: MIT */
/* Private endpoints a registration may list: see endpoints.h. */
#include "server/endpoints.h"

#include <string.h>

/* Unicast, with a port: not unspecified, 0.0.0.0/8, multicast, or the
 * limited broadcast address. */
static bool unicast(const punch_addr *a)
{
    static const uint8_t zero[16];
    if (a->port == 0)
        return false;
    if (a->family == PUNCH_AF_INET)
        return a->ip[0] != 0 && (a->ip[0] & 0xf0) != 0xe0 &&
               !(a->ip[0] == 255 && a->ip[1] == 255 && a->ip[2] == 255 && a->ip[3] == 255);
    if (a->family == PUNCH_AF_INET6)
        return memcmp(a->ip, zero, 16) != 0 && a->ip[0] != 0xff;
    return false;
}

static bool listed(const punch_addr *list, size_t n, const punch_addr *a)
{
    for (size_t i = 0; i < n; i++)
        if (punch_addr_equal(&list[i], a))
            return true;
    return false;
}

size_t punch_rv_private_endpoints(const punch_addr *in, size_t n, const punch_addr *server,
                                  punch_addr *out, size_t *dropped)
{
    size_t kept = 0;
    for (size_t i = 0; i < n; i++)
        if (kept < PUNCH_RV_MAX_PRIVATE && unicast(&in[i]) && !listed(out, kept, &in[i]) &&
            !(server && punch_addr_equal(server, &in[i])))
            out[kept++] = in[i];
    *dropped = n - kept;
    return kept;
}
