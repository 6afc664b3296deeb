/* SPDX-License-Identifier: MIT */
/*
 * NAT64's translation step (nat64.h); the address format is
 * src/wire/nat64_addr.c's.
 */
#include <string.h>

#include "nat/nat64.h"

int punch_nat64_init(punch_nat64 *t, const punch_nat64_prefix *prefix, const punch_addr *pool)
{
    if (punch_nat64_prefix_check(prefix))
        return PUNCH_ERR_INVAL;
    memset(t, 0, sizeof(*t));
    if (prefix)
        t->prefix = *prefix;
    t->pool = *pool;
    t->pool.port = 0;
    return 0;
}

static punch_addr pool_addr(const punch_nat64 *t, size_t i, uint16_t port)
{
    punch_addr a = t->pool;
    a.ip[3] = (uint8_t)(a.ip[3] + i);
    a.port = port;
    return a;
}

bool punch_nat64_out(punch_nat64 *t, const punch_nat_tuple *in, punch_nat_tuple *out)
{
    punch_addr dst, host = in->src;
    if (in->src.family != PUNCH_AF_INET6 || punch_nat64_extract(&t->prefix, &in->dst, &dst) != 0)
        return false;
    host.port = 0;
    size_t i = 0;
    while (i < t->n && !punch_addr_equal(&t->inside[i], &host))
        i++;
    if (i == t->n) {
        if (t->n == PUNCH_NAT64_POOL)
            return false;
        t->inside[t->n++] = host;
    }
    *out = (punch_nat_tuple){.proto = in->proto, .src = pool_addr(t, i, in->src.port), .dst = dst,
                             .seq = in->seq};
    return true;
}

bool punch_nat64_in(const punch_nat64 *t, const punch_nat_tuple *in, punch_nat_tuple *out)
{
    for (size_t i = 0; i < t->n; i++) {
        punch_addr mine = pool_addr(t, i, in->dst.port);
        if (!punch_addr_equal(&mine, &in->dst))
            continue;
        punch_addr src, dst = t->inside[i];
        dst.port = in->dst.port;
        if (punch_nat64_synthesize(&t->prefix, &in->src, &src) != 0)
            return false;
        *out = (punch_nat_tuple){.proto = in->proto, .src = src, .dst = dst};
        return true;
    }
    return false;
}
