/* SPDX-License-Identifier: MIT */
/*
 * Our public endpoint of the other family (issue 16): registered over one
 * family, a STUN Binding request to a server address of the other one,
 * beside the registration.
 *
 * A dual-stack host registers over one family: its server's, or the one
 * whose server address answered first (servers.c). Its endpoints of the
 * other family reach peers inside REGISTER as interface addresses. Over
 * IPv6 behind a stateful firewall that is all a peer needs (no
 * translation); but a router doing NPTv6 (RFC 6296) gives the host's
 * packets another prefix, and an IPv4 NAT another address and port, and
 * only a server on the far side sees which. punchd answers STUN on every
 * address it listens on, both families by default, so one Binding request
 * over the other family tells it, without a second registration.
 *
 * The server's address of the other family is one the agent was given
 * among its servers (punch_agent_cfg.more_servers: `--server` twice, or a
 * name with A and AAAA records). Any server of the list will do: a
 * Binding answer is the same from every member. The endpoint seen, when
 * it is none of our interface addresses, goes into REGISTER before them
 * (second_endpoints; punchd passes on the first four), so a peer probes
 * it like any public address: by hole punching (family_private_technique).
 * The REGISTERED event waits for the answer, as it waits for NAT
 * discovery, so a peer that connects at once has it, and for the other
 * family's NAT discovery (discovery.c's a->disc_other, started here).
 *
 * Asked again every keepalive period: it holds an IPv4 NAT's mapping, and
 * a renumbered prefix (a new one delegated to the router) or a new
 * mapping is learned within one.
 */
#include <string.h>

#include "core/agent_internal.h"

/* Tries before giving up until the next keepalive (as discovery's). */
#define SECOND_TRIES 6

static uint8_t other_family(const punch_agent *a)
{
    return a->cfg.server.family == PUNCH_AF_INET ? PUNCH_AF_INET6 : PUNCH_AF_INET;
}

/* A server address of this family to ask, when we have an endpoint of our
 * own of it to be seen from; NULL otherwise. */
static const punch_addr *server_of(const punch_agent *a, uint8_t family)
{
    bool have = false;
    for (size_t i = 0; i < a->cfg.n_local; i++)
        have = have || a->cfg.local[i].family == family;
    for (size_t i = 0; have && i < a->servers.n; i++)
        if (a->servers.s[i].addr.family == family)
            return &a->servers.s[i].addr;
    return NULL;
}

static const punch_addr *second_server(const punch_agent *a)
{
    return server_of(a, other_family(a));
}

void second_start(punch_agent *a, uint64_t now)
{
    second_family *s = &a->second;
    s->asking = second_server(a) != NULL;
    s->tries = 0;
    /* Nothing to ask: never, unless there are servers of both families
     * (the server in use may change family, servers.c). */
    bool both = server_of(a, PUNCH_AF_INET) && server_of(a, PUNCH_AF_INET6);
    s->next_ms = s->asking ? now : both ? now + a->keepalive_ms : UINT64_MAX;
    random_bytes(a, s->txid, sizeof(s->txid));
}

uint64_t second_deadline(const punch_agent *a, int id)
{
    (void)id;
    return a->second.next_ms;
}

void second_timeout(punch_agent *a, uint64_t now, int id)
{
    (void)id;
    second_family *s = &a->second;
    const punch_addr *dst = second_server(a);
    if (!s->asking || !dst) {
        second_start(a, now); /* the keepalive's turn (or no server to ask yet) */
        if (!s->asking)
            return;
    }
    if (s->tries == SECOND_TRIES) {
        /* No answer over the other family: registered without it (the REGISTERED
         * event waited for this; a REGISTER now lets it be told). */
        s->asking = false;
        s->next_ms = now + a->keepalive_ms;
        if (!a->reg.announced)
            reregister(a, now);
        return;
    }
    for (unsigned k = 0; k < server_copies(s->tries); k++)
        stun_ask(a, dst, s->txid);
    s->next_ms = now + server_rto(a, s->tries);
    s->tries++;
}

void second_ask_now(punch_agent *a, uint64_t now)
{
    second_start(a, now);
    /* NAT discovery over the other family too (discovery.c), once per
     * start, not every keepalive. */
    disc_other_start(a, now, second_server(a));
    if (a->second.asking)
        second_timeout(a, now, -1);
}

bool second_on_answer(punch_agent *a, uint64_t now, const punch_stun_msg *m)
{
    second_family *s = &a->second;
    if (!s->asking || memcmp(s->txid, m->txid, PUNCH_STUN_TXID_LEN) != 0)
        return false;
    const punch_stun_attr *x = punch_stun_find(m, PUNCH_STUN_ATTR_XOR_MAPPED_ADDRESS);
    punch_addr seen;
    if (!x || punch_stun_read_addr(m, x, &seen) != 0 || seen.family != other_family(a)) {
        a->dropped++;
        return true;
    }
    s->asking = false;
    s->next_ms = now + a->keepalive_ms;
    bool changed = !punch_addr_equal(&seen, &s->seen);
    s->seen = seen;
    if (changed || !a->reg.announced)
        reregister(a, now);
    return true;
}

bool second_asking(const punch_agent *a)
{
    return (a->second.asking && a->second.seen.family != other_family(a)) ||
           disc_running(&a->disc_other);
}

size_t second_endpoints(const punch_agent *a, punch_addr *out, size_t cap)
{
    const punch_addr *seen = &a->second.seen;
    size_t n = 0;
    bool told = seen->family != other_family(a); /* none, or the server's family's */
    for (size_t i = 0; !told && i < a->cfg.n_local; i++)
        told = punch_addr_equal(&a->cfg.local[i], seen); /* no translation */
    if (!told && cap)
        out[n++] = *seen;
    for (size_t i = 0; i < a->cfg.n_local && n < cap; i++)
        out[n++] = a->cfg.local[i];
    return n;
}
