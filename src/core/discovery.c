/* SPDX-License-Identifier: MIT */
/*
 * NAT behaviour discovery (draft §3.4, RFC 5780 §4.3): STUN Binding
 * requests to the server's addresses, and what the answers say about our
 * NAT's mapping and port allocation (core/natcheck.c does the judging, the
 * same as for `punch natcheck`).
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

static void disc_send(punch_agent *a, unsigned i)
{
    stun_ask(a, &a->disc.dst[i], a->disc.txid[i]);
}

/* Ask every destination not answered yet. */
static void disc_ask(punch_agent *a, uint64_t now)
{
    for (unsigned i = 0; i < a->disc.n; i++)
        for (unsigned k = 0; k < server_copies(a->disc.tries); k++)
            if (a->disc.seen[i].family == PUNCH_AF_NONE)
                disc_send(a, i);
    a->disc.next_ms = now + server_rto(a, a->disc.tries);
    a->disc.asked_ms = now;
    a->disc.tries++;
}

void disc_start(punch_agent *a, uint64_t now)
{
    discovery *d = &a->disc;
    memset(d, 0, sizeof(*d));
    d->state = DISC_MAIN;
    d->n = 1;
    d->dst[0] = a->cfg.server;
    random_bytes(a, d->txid, sizeof(d->txid));
    disc_ask(a, now);
}

/* ---- NAT discovery with one server address (punchd --second-port) ----
 * Two mappings, towards the server's port and its second port on the same
 * IP: a different public port (or IP) means a new mapping per destination
 * port (apdm), and the difference is the allocation step when it is small.
 * The same one means eim; with one IP an adm NAT looks the same, and is
 * reported as eim (docs/protocol.md). No OTHER-ADDRESS is involved. */

static void disc_two_ports_start(punch_agent *a, uint64_t now)
{
    discovery *d = &a->disc;
    d->dst[1] = d->dst[0];
    d->dst[1].port = a->second_port;
    d->n = 2;
    d->state = DISC_OTHERS;
    d->tries = 0;
    disc_ask(a, now);
}

/* The main answer named no other address: ask the second port when the
 * COOKIE named one, wait for the COOKIE when it is not in yet. Returns
 * false when there is nothing more to ask. */
static bool disc_try_second_port(punch_agent *a, uint64_t now)
{
    if (a->second_port && a->second_port != a->disc.dst[0].port) {
        disc_two_ports_start(a, now);
        return true;
    }
    if (a->reg.state == REG_HELLO) {
        a->disc.state = DISC_AWAIT_COOKIE;
        a->disc.next_ms = UINT64_MAX;
        return true;
    }
    return false;
}

/* Sets what the two answers say and returns true; false when the second
 * one is missing (the behaviour stays unknown). */
static bool disc_two_ports_finish(punch_agent *a, uint64_t now)
{
    const discovery *d = &a->disc;
    if (d->seen[0].family == PUNCH_AF_NONE || d->seen[1].family == PUNCH_AF_NONE)
        return false;
    if (punch_addr_equal(&d->seen[0], &d->seen[1])) {
        a->nat.mapping = PUNCH_MSG_NAT_EIM;
        a->nat.step = 0;
    } else {
        const uint16_t ports[2] = {d->seen[0].port, d->seen[1].port};
        int step = punch_natcheck_steady_step(ports, 2);
        a->nat.mapping = PUNCH_MSG_NAT_APDM;
        a->nat.step = punch_addr_same_ip(&d->seen[0], &d->seen[1]) ? (uint16_t)step : 0;
    }
    a->nat.port = d->seen[1].port;
    reregister(a, now);
    return true;
}

/* What the answers say; then REGISTER again, so the server knows. */
static void disc_finish(punch_agent *a, uint64_t now)
{
    discovery *d = &a->disc;
    d->state = DISC_DONE;
    d->next_ms = UINT64_MAX;
    punch_nat_mapping mapping;
    if (d->n == 2 && disc_two_ports_finish(a, now))
        return;
    if (d->n < 4 || punch_natcheck_mapping(&d->seen[0], &d->seen[1], &d->seen[2], &mapping) != 0) {
        /* No second server address, or no answers: unknown, which every
         * REGISTER says unless told otherwise. */
        if (a->reg.state == REG_DONE && !a->reg.announced)
            announce(a);
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
    a->nat.mapping = mapping == PUNCH_NAT_EIM   ? PUNCH_MSG_NAT_EIM
                     : mapping == PUNCH_NAT_ADM ? PUNCH_MSG_NAT_ADM
                                                : PUNCH_MSG_NAT_APDM;
    a->nat.step = (uint16_t)step;
    a->nat.port = last;
    reregister(a, now);
}

static bool disc_running(const discovery *d)
{
    return d->state == DISC_MAIN || d->state == DISC_OTHERS;
}

/* The next retransmission, or the end of waiting for answers. */
uint64_t disc_deadline(const punch_agent *a, int id)
{
    (void)id;
    return disc_running(&a->disc) ? a->disc.next_ms : UINT64_MAX;
}

void disc_timeout(punch_agent *a, uint64_t now, int id)
{
    (void)id;
    const discovery *d = &a->disc;
    if (d->tries == DISC_TRIES)
        disc_finish(a, now);
    else
        disc_ask(a, now);
}

/* A STUN answer from the server: one of ours? */
void on_stun(punch_agent *a, uint64_t now, const uint8_t *buf, size_t len)
{
    discovery *d = &a->disc;
    punch_stun_msg m;
    if (punch_stun_decode(&m, buf, len) != 0 || m.classic || m.cls != PUNCH_STUN_SUCCESS ||
        m.method != PUNCH_STUN_BINDING) {
        a->dropped++;
        return;
    }
    if (second_on_answer(a, now, &m))
        return;
    if (!disc_running(d)) {
        a->dropped++;
        return;
    }
    unsigned i = 0;
    while (i < d->n && memcmp(d->txid[i], m.txid, PUNCH_STUN_TXID_LEN) != 0)
        i++;
    const punch_stun_attr *x = punch_stun_find(&m, PUNCH_STUN_ATTR_XOR_MAPPED_ADDRESS);
    punch_addr seen;
    if (i == d->n || !x || punch_stun_read_addr(&m, x, &seen) != 0) {
        a->dropped++;
        return;
    }
    if (d->seen[i].family != PUNCH_AF_NONE)
        return; /* a copy's answer (server_copies): no news, and no round trip */
    d->seen[i] = seen;
    if (d->tries == 1)
        rtt_sample(a, d->asked_ms, now); /* unrepeated: a round trip to the server */
    if (d->state == DISC_MAIN) {
        const punch_stun_attr *o = punch_stun_find(&m, PUNCH_STUN_ATTR_OTHER_ADDRESS);
        punch_addr other = {0};
        if (o && punch_stun_read_addr(&m, o, &other) == 0)
            family_nat64(a, &other); /* an IPv4 server's, through our NAT64 */
        if (!o || other.family != d->dst[0].family ||
            punch_addr_same_ip(&other, &d->dst[0]) || other.port == d->dst[0].port) {
            if (!disc_try_second_port(a, now))
                disc_finish(a, now);
            return;
        }
        /* The three others, one after the other (RFC 5780 §4.3 order). */
        d->dst[1] = other;
        d->dst[1].port = d->dst[0].port;
        d->dst[2] = other;
        d->dst[3] = d->dst[0];
        d->dst[3].port = other.port;
        d->n = 4;
        d->state = DISC_OTHERS;
        d->tries = 0;
        disc_ask(a, now);
        return;
    }
    for (i = 0; i < d->n; i++)
        if (d->seen[i].family == PUNCH_AF_NONE)
            return;
    disc_finish(a, now);
}

/* The COOKIE is in (a->second_port set): discovery waiting for it asks the
 * second port now, or ends. */
void disc_on_cookie(punch_agent *a, uint64_t now)
{
    if (a->disc.state == DISC_AWAIT_COOKIE && !disc_try_second_port(a, now))
        disc_finish(a, now);
}
