/* SPDX-License-Identifier: MIT */
/*
 * RFC 6052 address synthesis and NAT64's translation step (nat64.h).
 */
#include <string.h>

#include "nat/nat64.h"

/* RFC 6052 §2.1: 64:ff9b::/96. */
static const uint8_t WELL_KNOWN_PREFIX[PUNCH_NAT64_PREFIX_LEN] = {0x00, 0x64, 0xff, 0x9b};

static const uint8_t *prefix_or_default(const uint8_t *prefix)
{
    static const uint8_t zero[PUNCH_NAT64_PREFIX_LEN];
    return prefix && memcmp(prefix, zero, sizeof(zero)) != 0 ? prefix : WELL_KNOWN_PREFIX;
}

int punch_nat64_synthesize(const uint8_t *prefix, const punch_addr *v4, punch_addr *out)
{
    if (!v4 || !out || v4->family != PUNCH_AF_INET)
        return PUNCH_ERR_INVAL;
    punch_addr six = {.family = PUNCH_AF_INET6, .port = v4->port};
    memcpy(six.ip, prefix_or_default(prefix), PUNCH_NAT64_PREFIX_LEN);
    memcpy(six.ip + PUNCH_NAT64_PREFIX_LEN, v4->ip, 4);
    *out = six;
    return 0;
}

bool punch_nat64_is_synthesized(const uint8_t *prefix, const punch_addr *addr)
{
    return addr && addr->family == PUNCH_AF_INET6 &&
           memcmp(addr->ip, prefix_or_default(prefix), PUNCH_NAT64_PREFIX_LEN) == 0;
}

int punch_nat64_extract(const uint8_t *prefix, const punch_addr *v6, punch_addr *out)
{
    if (!punch_nat64_is_synthesized(prefix, v6) || !out)
        return PUNCH_ERR_INVAL;
    punch_addr four = {.family = PUNCH_AF_INET, .port = v6->port};
    memcpy(four.ip, v6->ip + PUNCH_NAT64_PREFIX_LEN, 4);
    *out = four;
    return 0;
}

void punch_nat64_init(punch_nat64 *t, const uint8_t *prefix, const punch_addr *pool)
{
    memset(t, 0, sizeof(*t));
    memcpy(t->prefix, prefix_or_default(prefix), PUNCH_NAT64_PREFIX_LEN);
    t->pool = *pool;
    t->pool.port = 0;
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
    if (in->src.family != PUNCH_AF_INET6 || punch_nat64_extract(t->prefix, &in->dst, &dst) != 0)
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
        if (punch_nat64_synthesize(t->prefix, &in->src, &src) != 0)
            return false;
        *out = (punch_nat_tuple){.proto = in->proto, .src = src, .dst = dst};
        return true;
    }
    return false;
}
