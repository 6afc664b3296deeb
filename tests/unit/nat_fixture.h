/* SPDX-License-Identifier: MIT */
/*
 * What the NAT model's tests share (test_nat, test_portfwd): an IPv4
 * address as a constant, the seeded randomness the model draws ports
 * from, and the small one-address NAT they build.
 */
#ifndef PUNCH_TEST_NAT_FIXTURE_H
#define PUNCH_TEST_NAT_FIXTURE_H

#include <stdint.h>

#include "nat/nat.h"

#define V4(a, b, c, d, p) {.family = PUNCH_AF_INET, .port = p, .ip = {a, b, c, d}}

/* splitmix64: the model's punch_nat_cfg.random, its state *ctx. */
static inline uint64_t splitmix(void *ctx)
{
    uint64_t *s = ctx;
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* a at another port. */
static inline punch_addr with_port(punch_addr a, uint16_t port)
{
    a.port = port;
    return a;
}

/* Small tables (64 mappings), one public address, ports drawn from seed.
 * A preset resets the table size: apply it before, a spec parsed after
 * may. */
static inline void nat_fixture_cfg(punch_nat_cfg *cfg, punch_addr public_ip, uint64_t *seed)
{
    cfg->max_mappings = 64;
    cfg->n_public = 1;
    cfg->public_ip[0] = public_ip;
    cfg->random = splitmix;
    cfg->random_ctx = seed;
}

#endif
