/* SPDX-License-Identifier: MIT */
/* Error strings, version and address helpers shared by every layer. */
#include <string.h>

#include "punch/punch.h"

const char *punch_strerror(int err)
{
    switch (err) {
    case PUNCH_OK: return "success";
    case PUNCH_ERR_INVAL: return "invalid argument";
    case PUNCH_ERR_NOBUFS: return "buffer too small";
    case PUNCH_ERR_MALFORMED: return "malformed input";
    case PUNCH_ERR_INTEGRITY: return "integrity check failed";
    case PUNCH_ERR_NOMEM: return "out of memory";
    case PUNCH_ERR_NOTFOUND: return "not found";
    case PUNCH_ERR_UNSUPPORTED: return "not supported";
    case PUNCH_ERR_LIMIT: return "limit reached";
    case PUNCH_ERR_IO: return "system call failed";
    default: return "unknown error";
    }
}

const char *punch_version(void)
{
    return PUNCH_VERSION;
}

static size_t addr_ip_len(const punch_addr *a)
{
    return a->family == PUNCH_AF_INET ? 4 : a->family == PUNCH_AF_INET6 ? 16 : 0;
}

bool punch_addr_same_ip(const punch_addr *a, const punch_addr *b)
{
    return a->family == b->family && memcmp(a->ip, b->ip, addr_ip_len(a)) == 0;
}

bool punch_addr_equal(const punch_addr *a, const punch_addr *b)
{
    return punch_addr_same_ip(a, b) && a->port == b->port;
}

bool punch_addr_is_any(const punch_addr *a)
{
    static const uint8_t zero[16];
    return a->family != PUNCH_AF_NONE && memcmp(a->ip, zero, addr_ip_len(a)) == 0;
}
