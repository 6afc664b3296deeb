/* SPDX-License-Identifier: MIT */
/* TCP for a simulated host: see tcp.h. */
#include "sim/tcp.h"

#include <string.h>

#include "wire/frame.h"
#include "wire/ipv4.h"

/* RFC 6298 §2.1: the initial RTO is 1 s; Linux sends a SYN 1 + 6 times
 * (tcp_syn_retries), fewer here: tcp_path gives up after 5 s anyway. */
#define SYN_RTO_MS 1000u
#define SYN_TRIES 4
#define EPHEMERAL_FIRST 40000u

enum { T_FREE = 0, T_LISTEN, T_SYN_SENT, T_SYN_RCVD, T_ESTABLISHED, T_DONE };

void punch_sim_tcp_init(punch_sim_tcp *t, punch_sim *sim, int host, const punch_addr *addr,
                        const punch_sim_tcp_cb *cb)
{
    memset(t, 0, sizeof(*t));
    t->sim = sim;
    t->host = host;
    t->addr = *addr;
    t->cb = *cb;
    t->next_port = EPHEMERAL_FIRST;
    t->next_isn = 0x10000000u * (uint32_t)(host + 1);
}

void punch_sim_tcp_set_addr6(punch_sim_tcp *t, const punch_addr *addr6)
{
    t->addr6 = *addr6;
}

/* The host's address of this family. */
static punch_addr addr_of(const punch_sim_tcp *t, uint8_t family)
{
    return family == PUNCH_AF_INET6 && t->addr6.family ? t->addr6 : t->addr;
}

static uint32_t new_isn(punch_sim_tcp *t)
{
    t->next_isn += 100000u;
    return t->next_isn;
}

static punch_sim_tcp_sock *by_id(punch_sim_tcp *t, uint32_t id)
{
    for (unsigned i = 0; id && i < PUNCH_SIM_TCP_SOCKS; i++)
        if (t->socks[i].state != T_FREE && t->socks[i].id == id)
            return &t->socks[i];
    return NULL;
}

static punch_sim_tcp_sock *alloc_sock(punch_sim_tcp *t, uint32_t id, uint8_t state)
{
    for (unsigned i = 0; i < PUNCH_SIM_TCP_SOCKS; i++)
        if (t->socks[i].state == T_FREE) {
            memset(&t->socks[i], 0, sizeof(t->socks[i]));
            t->socks[i].id = id;
            t->socks[i].state = state;
            return &t->socks[i];
        }
    return NULL;
}

static void segment_seq(punch_sim_tcp *t, const punch_addr *from, const punch_addr *to,
                        uint8_t flags, uint32_t seq, uint8_t ttl, const uint8_t *data, size_t len)
{
    punch_sim_send(t->sim, t->host,
                   &(punch_sim_datagram){.proto = PUNCH_IP_TCP, .tcp_flags = flags,
                                         .tcp_seq = seq, .ttl = ttl, .local = *from,
                                         .remote = *to, .data = data, .len = len});
}

static void segment(punch_sim_tcp *t, const punch_addr *from, const punch_addr *to, uint8_t flags,
                    uint8_t ttl, const uint8_t *data, size_t len)
{
    segment_seq(t, from, to, flags, 0, ttl, data, len);
}

/* A SYN-ACK of s (its ISN) to where the peer's SYN came from. */
static void syn_ack(punch_sim_tcp *t, const punch_sim_tcp_sock *s)
{
    segment_seq(t, &s->local, &s->remote, PUNCH_TCP_SYN | PUNCH_TCP_ACK, s->isn, 0, NULL, 0);
}

static void send_syn(punch_sim_tcp *t, punch_sim_tcp_sock *s, uint64_t now, uint8_t ttl)
{
    segment_seq(t, &s->local, &s->remote, PUNCH_TCP_SYN, s->isn, ttl, NULL, 0);
    s->resend_ms = now + ((uint64_t)SYN_RTO_MS << s->syns);
    s->syns++;
}

static void report(punch_sim_tcp *t, uint64_t now, punch_tcp_result_kind kind, uint32_t id,
                   const punch_addr *local, const char *why)
{
    punch_tcp_result r = {.kind = kind, .sock = id, .why = why};
    if (local)
        r.local = *local;
    t->cb.result(t->cb.ctx, now, &r);
}

static void do_connect(punch_sim_tcp *t, uint64_t now, const punch_tcp_cmd *c)
{
    punch_sim_tcp_sock *s = alloc_sock(t, c->sock, T_SYN_SENT);
    if (!s) {
        report(t, now, PUNCH_TCP_FAILED, c->sock, NULL, "no socket free");
        return;
    }
    s->local = addr_of(t, c->remote.family);
    s->local.port = c->local.port;
    s->remote = c->remote;
    s->isn = new_isn(t);
    send_syn(t, s, now, c->ttl);
}

static void do_listen(punch_sim_tcp *t, uint64_t now, const punch_tcp_cmd *c)
{
    punch_sim_tcp_sock *s = alloc_sock(t, c->sock, T_LISTEN);
    if (!s) {
        report(t, now, PUNCH_TCP_FAILED, c->sock, NULL, "no socket free");
        return;
    }
    s->local = addr_of(t, c->local.family);
    s->local.port = c->local.port ? c->local.port : t->next_port++;
    report(t, now, PUNCH_TCP_LISTENING, c->sock, &s->local, NULL);
}

static void do_close(punch_sim_tcp *t, punch_sim_tcp_sock *s)
{
    if (s->state == T_ESTABLISHED)
        segment(t, &s->local, &s->remote, PUNCH_TCP_FIN | PUNCH_TCP_ACK, 0, NULL, 0);
    s->state = T_FREE;
}

void punch_sim_tcp_exec(punch_sim_tcp *t, uint64_t now, const punch_tcp_cmd *c)
{
    punch_sim_tcp_sock *s = by_id(t, c->sock);
    switch (c->kind) {
    case PUNCH_TCP_LISTEN: do_listen(t, now, c); break;
    case PUNCH_TCP_CONNECT: do_connect(t, now, c); break;
    case PUNCH_TCP_RESYN: /* the driver's: a new socket on the same 4-tuple */
        if (s && s->state == T_SYN_SENT) {
            s->isn = new_isn(t);
            s->syns = 0;
            send_syn(t, s, now, 0);
        }
        break;
    case PUNCH_TCP_SEND:
        /* one frame per segment: without its length header */
        if (c->len < PUNCH_FRAME_HEADER ||
            punch_sim_tcp_write(t, c->sock, c->data + PUNCH_FRAME_HEADER,
                                c->len - PUNCH_FRAME_HEADER) != 0)
            report(t, now, PUNCH_TCP_FAILED, c->sock, NULL, "not connected");
        break;
    case PUNCH_TCP_CLOSE:
        if (s)
            do_close(t, s);
        break;
    }
}

int punch_sim_tcp_write(punch_sim_tcp *t, uint32_t id, const uint8_t *data, size_t len)
{
    punch_sim_tcp_sock *s = by_id(t, id);
    if (!s || s->state != T_ESTABLISHED)
        return PUNCH_ERR_NOTFOUND;
    segment(t, &s->local, &s->remote, PUNCH_TCP_ACK, 0, data, len);
    return 0;
}

/* The connection of (local port, remote), or the listener of the port. */
static punch_sim_tcp_sock *lookup(punch_sim_tcp *t, const punch_sim_datagram *d, bool listener)
{
    for (unsigned i = 0; i < PUNCH_SIM_TCP_SOCKS; i++) {
        punch_sim_tcp_sock *s = &t->socks[i];
        if (s->state == T_FREE || s->state == T_DONE || s->local.port != d->local.port)
            continue;
        if (listener ? s->state == T_LISTEN
                     : s->state != T_LISTEN && punch_addr_equal(&s->remote, &d->remote))
            return s;
    }
    return NULL;
}

/* The handshake is done: a connect is CONNECTED, an accepted one offered
 * to its listener's owner. */
static void established(punch_sim_tcp *t, uint64_t now, punch_sim_tcp_sock *s)
{
    s->state = T_ESTABLISHED;
    if (!s->listener) {
        report(t, now, PUNCH_TCP_CONNECTED, s->id, NULL, NULL);
        return;
    }
    uint32_t id = t->cb.accept(t->cb.ctx, now, s->listener, &s->remote);
    if (!id) {
        segment(t, &s->local, &s->remote, PUNCH_TCP_RST, 0, NULL, 0);
        s->state = T_FREE;
        return;
    }
    s->id = id;
    s->listener = 0;
}

/* A SYN (no ACK) for local port from remote. */
static void on_syn(punch_sim_tcp *t, const punch_sim_datagram *d, punch_sim_tcp_sock *s)
{
    if (s) {
        /* RFC 9293 §3.5: simultaneous open (or our SYN-ACK was lost) */
        if (s->state == T_SYN_SENT)
            s->state = T_SYN_RCVD;
        syn_ack(t, s);
        return;
    }
    punch_sim_tcp_sock *l = lookup(t, d, true), *c;
    if (!l || !(c = alloc_sock(t, 0, T_SYN_RCVD))) {
        segment(t, &d->local, &d->remote, PUNCH_TCP_RST | PUNCH_TCP_ACK, 0, NULL, 0);
        return;
    }
    c->listener = l->id;
    c->local = d->local;
    c->remote = d->remote;
    c->isn = new_isn(t);
    syn_ack(t, c);
}

static void on_rst(punch_sim_tcp *t, uint64_t now, punch_sim_tcp_sock *s)
{
    uint8_t was = s->state;
    uint32_t id = s->id;
    bool accepting = s->listener != 0;
    s->state = T_DONE;
    if (accepting)
        s->state = T_FREE; /* nobody knows it yet */
    else if (was == T_ESTABLISHED)
        report(t, now, PUNCH_TCP_CLOSED, id, NULL, "TCP connection reset");
    else
        report(t, now, PUNCH_TCP_REFUSED, id, NULL, NULL);
}

void punch_sim_tcp_segment(punch_sim_tcp *t, uint64_t now, const punch_sim_datagram *d)
{
    uint8_t f = d->tcp_flags;
    punch_sim_tcp_sock *s = lookup(t, d, false);
    if (f & PUNCH_TCP_RST) {
        if (s)
            on_rst(t, now, s);
        return;
    }
    if ((f & PUNCH_TCP_SYN) && !(f & PUNCH_TCP_ACK)) {
        on_syn(t, d, s);
        return;
    }
    if (!s) {
        if (!(f & PUNCH_TCP_FIN))
            segment(t, &d->local, &d->remote, PUNCH_TCP_RST, 0, NULL, 0);
        return;
    }
    if (f & PUNCH_TCP_SYN) { /* SYN-ACK */
        if (s->state == T_SYN_SENT || s->state == T_SYN_RCVD) {
            segment(t, &d->local, &d->remote, PUNCH_TCP_ACK, 0, NULL, 0);
            established(t, now, s);
        }
        return;
    }
    if (s->state == T_SYN_RCVD)
        established(t, now, s);
    if (s->state != T_ESTABLISHED)
        return;
    uint32_t id = s->id;
    if (d->len)
        t->cb.frame(t->cb.ctx, now, id, &s->remote, d->data, d->len);
    if ((f & PUNCH_TCP_FIN) && (s = by_id(t, id)) && s->state == T_ESTABLISHED) {
        s->state = T_DONE;
        report(t, now, PUNCH_TCP_CLOSED, id, NULL, "TCP connection closed");
    }
}

void punch_sim_tcp_icmp(punch_sim_tcp *t, uint64_t now, const punch_sim_datagram *d)
{
    punch_sim_tcp_sock *s = lookup(t, d, false);
    if (!s || (s->state != T_SYN_SENT && s->state != T_SYN_RCVD) || s->isn != d->tcp_seq)
        return;
    if (s->listener) {
        s->state = T_FREE; /* nobody knows it yet */
        return;
    }
    s->state = T_DONE;
    report(t, now, PUNCH_TCP_UNREACHABLE, s->id, NULL, NULL);
}

void punch_sim_tcp_timeout(punch_sim_tcp *t, uint64_t now)
{
    for (unsigned i = 0; i < PUNCH_SIM_TCP_SOCKS; i++) {
        punch_sim_tcp_sock *s = &t->socks[i];
        if (s->state != T_SYN_SENT || now < s->resend_ms)
            continue;
        if (s->syns >= SYN_TRIES) {
            s->state = T_DONE;
            report(t, now, PUNCH_TCP_TIMED_OUT, s->id, NULL, NULL);
            continue;
        }
        send_syn(t, s, now, 0);
    }
}

uint64_t punch_sim_tcp_next_timeout(const punch_sim_tcp *t)
{
    uint64_t when = UINT64_MAX;
    for (unsigned i = 0; i < PUNCH_SIM_TCP_SOCKS; i++)
        if (t->socks[i].state == T_SYN_SENT && t->socks[i].resend_ms < when)
            when = t->socks[i].resend_ms;
    return when;
}
