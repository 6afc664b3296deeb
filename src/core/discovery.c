/* SPDX-License-Identifier: MIT */
/*
 * NAT behaviour discovery (draft §3.4, RFC 5780 §4.3): STUN Binding
 * requests to the server's addresses, and what the answers say about our
 * NAT's mapping and port allocation (core/natcheck.c does the judging, the
 * same as for `punch natcheck`).
 *
 * Two runs (issue 16): one over the server's family (a->disc, its result
 * a->nat: REGISTER and INTRODUCE carry it), and one over the other family
 * when the agent knows a server address of it (a->disc_other, started
 * with second_family.c's request, its result a->nat_other): a home
 * router's IPv4 NAT and its IPv6 firewall (or NPTv6, or an ISP's NAT64)
 * behave differently, and the REGISTERED event and our own candidates go
 * by each family's. Each run is a bounded handful of requests to the
 * server (DISC_TRIES), once per start.
 */
#include <string.h>

#include "core/agent_internal.h"
#include "core/natcheck.h"

/* STUN Binding retransmissions (server_rto): about 0.9 s at a 30 ms
 * round trip (four at the first RTO, then two doubling), while the
 * REGISTERED event waits for what they find. */
#define DISC_TRIES 6

void stun_ask(punch_agent *a, const punch_addr *dst, const uint8_t txid[PUNCH_STUN_TXID_LEN])
{
    uint8_t req[64], *out;
    punch_stun_writer w;
    size_t len = 0;
    punch_stun_writer_init(&w, req, sizeof(req), PUNCH_STUN_BINDING, PUNCH_STUN_REQUEST, txid);
    punch_stun_put_fingerprint(&w);
    if (punch_stun_finish(&w, &len) == 0 && (out = push_tx(a, MAIN_SOCKET, dst, 0, len)))
        memcpy(out, req, len);
}

/* Which run and where its result goes. */
static bool is_other(const punch_agent *a, const discovery *d)
{
    return d == &a->disc_other;
}

static nat_behaviour *result_of(punch_agent *a, const discovery *d)
{
    return is_other(a, d) ? &a->nat_other : &a->nat;
}

/* Ask every destination not answered yet. */
static void disc_ask(punch_agent *a, discovery *d, uint64_t now)
{
    for (unsigned i = 0; i < d->n; i++)
        for (unsigned k = 0; k < server_copies(d->tries); k++)
            if (d->seen[i].family == PUNCH_AF_NONE)
                stun_ask(a, &d->dst[i], d->txid[i]);
    d->next_ms = now + server_rto(a, d->tries);
    d->asked_ms = now;
    d->tries++;
}

static void disc_begin(punch_agent *a, discovery *d, const punch_addr *dst, uint64_t now)
{
    memset(d, 0, sizeof(*d));
    d->state = DISC_MAIN;
    d->n = 1;
    d->dst[0] = *dst;
    random_bytes(a, d->txid, sizeof(d->txid));
    disc_ask(a, d, now);
}

void disc_start(punch_agent *a, uint64_t now)
{
    disc_begin(a, &a->disc, &a->cfg.server, now);
}

void disc_other_start(punch_agent *a, uint64_t now, const punch_addr *dst)
{
    if (dst && a->disc_other.state != DISC_IDLE && punch_addr_equal(dst, &a->disc_other.dst[0]))
        return; /* the same run (disc_swap): what it found, or finds, holds */
    a->nat_other = (nat_behaviour){0};
    if (dst)
        disc_begin(a, &a->disc_other, dst, now);
    else
        a->disc_other = (discovery){.state = DISC_IDLE};
}

void disc_swap(punch_agent *a)
{
    discovery d = a->disc;
    nat_behaviour nat = a->nat;
    a->disc = a->disc_other;
    a->nat = a->nat_other;
    a->disc_other = d;
    a->nat_other = nat;
    if (a->disc.state == DISC_IDLE) /* none over the new family yet: REGISTER says unknown */
        a->disc.state = DISC_DONE;
}

/* ---- NAT discovery with one server address (punchd --second-port) ----
 * Two mappings, towards the server's port and its second port on the same
 * IP: a different public port (or IP) means a new mapping per destination
 * port (apdm), and the difference is the allocation step when it is small.
 * The same one means eim; with one IP an adm NAT looks the same, and is
 * reported as eim (docs/protocol.md). No OTHER-ADDRESS is involved. */

static void disc_two_ports_start(punch_agent *a, discovery *d, uint64_t now)
{
    d->dst[1] = d->dst[0];
    d->dst[1].port = a->second_port;
    d->n = 2;
    d->state = DISC_OTHERS;
    d->tries = 0;
    disc_ask(a, d, now);
}

/* The main answer named no other address: ask the second port when the
 * COOKIE named one (the other family's server address on the same port
 * is the same punchd's, with the same second port), wait for the COOKIE
 * when it is not in yet. Returns false when there is nothing more to ask. */
static bool disc_try_second_port(punch_agent *a, discovery *d, uint64_t now)
{
    if (a->second_port && a->second_port != d->dst[0].port &&
        (!is_other(a, d) || d->dst[0].port == a->cfg.server.port)) {
        disc_two_ports_start(a, d, now);
        return true;
    }
    if (a->reg.state == REG_HELLO) {
        d->state = DISC_AWAIT_COOKIE;
        d->next_ms = UINT64_MAX;
        return true;
    }
    return false;
}

/* Sets what the two answers say and returns true; false when the second
 * one is missing (the behaviour stays unknown). */
static bool disc_two_ports_finish(punch_agent *a, discovery *d, uint64_t now)
{
    nat_behaviour *nat = result_of(a, d);
    if (d->seen[0].family == PUNCH_AF_NONE || d->seen[1].family == PUNCH_AF_NONE)
        return false;
    if (punch_addr_equal(&d->seen[0], &d->seen[1])) {
        nat->mapping = PUNCH_MSG_NAT_EIM;
        nat->step = 0;
    } else {
        const uint16_t ports[2] = {d->seen[0].port, d->seen[1].port};
        int step = punch_natcheck_steady_step(ports, 2);
        nat->mapping = PUNCH_MSG_NAT_APDM;
        nat->step = punch_addr_same_ip(&d->seen[0], &d->seen[1]) ? (uint16_t)step : 0;
    }
    nat->port = d->seen[1].port;
    reregister(a, now);
    return true;
}

/* Nothing found (no second server address, or no answers): unknown, which
 * every REGISTER says unless told otherwise. The REGISTERED event waited
 * for this run. */
static void disc_found_nothing(punch_agent *a, const discovery *d, uint64_t now)
{
    if (is_other(a, d)) {
        if (!a->reg.announced)
            reregister(a, now);
    } else if (a->reg.state == REG_DONE && !a->reg.announced) {
        announce(a);
    }
}

/* What the answers say; then REGISTER again, so the server knows. */
static void disc_finish(punch_agent *a, discovery *d, uint64_t now)
{
    d->state = DISC_DONE;
    d->next_ms = UINT64_MAX;
    punch_nat_mapping mapping;
    if (d->n == 2 && disc_two_ports_finish(a, d, now))
        return;
    if (d->n < 4 || punch_natcheck_mapping(&d->seen[0], &d->seen[1], &d->seen[2], &mapping) != 0) {
        disc_found_nothing(a, d, now);
        return;
    }
    const uint16_t *p =
        (const uint16_t[]){d->seen[0].port, d->seen[1].port, d->seen[2].port, d->seen[3].port};
    int step = 0;
    uint16_t last = p[0];
    if (mapping == PUNCH_NAT_APDM) {
        /* Four new mappings in a row: the same step each time. */
        step = punch_natcheck_steady_step(p, 4);
        last = p[3];
    } else if (mapping == PUNCH_NAT_ADM) {
        /* One new mapping (the other IP); the other port kept it. */
        int s1 = punch_natcheck_steady_step(p, 2);
        if (s1 && p[2] == p[1] && p[3] == p[0])
            step = s1;
        last = p[1];
    }
    nat_behaviour *nat = result_of(a, d);
    nat->mapping = mapping == PUNCH_NAT_EIM   ? PUNCH_MSG_NAT_EIM
                   : mapping == PUNCH_NAT_ADM ? PUNCH_MSG_NAT_ADM
                                              : PUNCH_MSG_NAT_APDM;
    nat->step = (uint16_t)step;
    nat->port = last;
    reregister(a, now);
}

bool disc_running(const discovery *d)
{
    return d->state == DISC_MAIN || d->state == DISC_OTHERS;
}

static uint64_t disc_due(const discovery *d)
{
    return disc_running(d) ? d->next_ms : UINT64_MAX;
}

/* The next retransmission, or the end of waiting for answers, of either run. */
uint64_t disc_deadline(const punch_agent *a, int id)
{
    (void)id;
    uint64_t main = disc_due(&a->disc), other = disc_due(&a->disc_other);
    return main < other ? main : other;
}

static void disc_step(punch_agent *a, discovery *d, uint64_t now)
{
    if (disc_due(d) > now)
        return;
    if (d->tries == DISC_TRIES)
        disc_finish(a, d, now);
    else
        disc_ask(a, d, now);
}

void disc_timeout(punch_agent *a, uint64_t now, int id)
{
    (void)id;
    disc_step(a, &a->disc, now);
    disc_step(a, &a->disc_other, now);
}

/* The main answer: its OTHER-ADDRESS (an IPv4 one through our NAT64 as
 * its synthesized address) gives the three others, RFC 5780 §4.3's order. */
static void disc_on_main(punch_agent *a, discovery *d, uint64_t now, const punch_stun_msg *m)
{
    const punch_stun_attr *o = punch_stun_find(m, PUNCH_STUN_ATTR_OTHER_ADDRESS);
    punch_addr other = {0};
    if (o && punch_stun_read_addr(m, o, &other) == 0)
        family_nat64(a, &other);
    if (!o || other.family != d->dst[0].family || punch_addr_same_ip(&other, &d->dst[0]) ||
        other.port == d->dst[0].port) {
        if (!disc_try_second_port(a, d, now))
            disc_finish(a, d, now);
        return;
    }
    d->dst[1] = other;
    d->dst[1].port = d->dst[0].port;
    d->dst[2] = other;
    d->dst[3] = d->dst[0];
    d->dst[3].port = other.port;
    d->n = 4;
    d->state = DISC_OTHERS;
    d->tries = 0;
    disc_ask(a, d, now);
}

/* A Binding answer for run d? False when its transaction is none of d's. */
static bool disc_on_answer(punch_agent *a, discovery *d, uint64_t now, const punch_stun_msg *m)
{
    unsigned i = 0;
    while (i < d->n && memcmp(d->txid[i], m->txid, PUNCH_STUN_TXID_LEN) != 0)
        i++;
    if (!disc_running(d) || i == d->n)
        return false;
    const punch_stun_attr *x = punch_stun_find(m, PUNCH_STUN_ATTR_XOR_MAPPED_ADDRESS);
    punch_addr seen;
    if (!x || punch_stun_read_addr(m, x, &seen) != 0) {
        a->dropped++;
        return true;
    }
    if (d->seen[i].family != PUNCH_AF_NONE)
        return true; /* a copy's answer (server_copies): no news, and no round trip */
    d->seen[i] = seen;
    if (d->tries == 1 && !is_other(a, d))
        rtt_sample(a, d->asked_ms, now); /* unrepeated: a round trip to the server */
    if (d->state == DISC_MAIN) {
        disc_on_main(a, d, now, m);
        return true;
    }
    for (i = 0; i < d->n; i++)
        if (d->seen[i].family == PUNCH_AF_NONE)
            return true;
    disc_finish(a, d, now);
    return true;
}

/* A STUN answer from the server: one of ours? */
void on_stun(punch_agent *a, uint64_t now, const uint8_t *buf, size_t len)
{
    punch_stun_msg m;
    if (punch_stun_decode(&m, buf, len) != 0 || m.classic || m.cls != PUNCH_STUN_SUCCESS ||
        m.method != PUNCH_STUN_BINDING) {
        a->dropped++;
        return;
    }
    if (!second_on_answer(a, now, &m) && !disc_on_answer(a, &a->disc, now, &m) &&
        !disc_on_answer(a, &a->disc_other, now, &m))
        a->dropped++;
}

/* The COOKIE is in (a->second_port set): discovery waiting for it asks the
 * second port now, or ends. */
void disc_on_cookie(punch_agent *a, uint64_t now)
{
    discovery *runs[2] = {&a->disc, &a->disc_other};
    for (int i = 0; i < 2; i++)
        if (runs[i]->state == DISC_AWAIT_COOKIE && !disc_try_second_port(a, runs[i], now))
            disc_finish(a, runs[i], now);
}
