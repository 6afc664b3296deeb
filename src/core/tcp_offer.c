/* SPDX-License-Identifier: MIT */
/*
 * TCP paths (draft §3.5 simultaneous open, §3.2 connection reversal): the
 * agent only carries the offers over the encrypted session (so nobody but
 * the peer can make us connect anywhere, §6.1) and treats an established
 * TCP connection as one more candidate on its own socket index. Which way
 * to connect, when, with which TTL, and the tries are decided by the TCP
 * path machine (tcp_path.c, sans-I/O too); the driver only executes its
 * commands (src/driver/driver_tcp.c).
 */
#include <stdio.h>
#include <string.h>

#include "core/agent_internal.h"

/* A TCP_OFFER from the peer, over its session: told to the caller. */
void on_tcp_offer(punch_agent *a, int id, const uint8_t *msg, size_t len)
{
    punch_msg m;
    if (punch_msg_decode(msg, len, &m) != 0 || m.type != PUNCH_MSG_TCP_OFFER ||
        m.n_private > PUNCH_TCP_MAX_PRIVATE) {
        a->dropped++;
        return;
    }
    peer *p = &a->peers[id];
    if (m.flags & PUNCH_TCP_FLAG_PREFER)
        p->prefer_tcp = true;
    ev *e = push_event(a, PUNCH_EVENT_TCP_OFFER, id);
    punch_tcp_offer *o = &e->e.tcp_offer;
    o->answer = (m.flags & PUNCH_TCP_FLAG_ANSWER) != 0;
    o->reachable = (m.flags & PUNCH_TCP_FLAG_REACHABLE) != 0;
    o->prefer = (m.flags & PUNCH_TCP_FLAG_PREFER) != 0;
    o->attempt = m.attempt;
    o->delay_ms = m.delay_ms;
    o->public_addr = m.public_addr;
    o->n_private = m.n_private;
    memcpy(o->private_addr, m.private_addr, m.n_private * sizeof(punch_addr));
}

int punch_agent_tcp_offer(punch_agent *a, uint64_t now, int id, const punch_tcp_offer *o)
{
    peer *p = session_peer(a, id);
    if (!p)
        return PUNCH_ERR_NOTFOUND;
    if (!o || o->n_private > PUNCH_TCP_MAX_PRIVATE || o->attempt == 0)
        return PUNCH_ERR_INVAL;
    if (!p->ready || p->path < 0)
        return PUNCH_ERR_LIMIT;
    punch_msg m = {.type = PUNCH_MSG_TCP_OFFER,
                   .attempt = o->attempt,
                   .delay_ms = o->delay_ms,
                   .public_addr = o->public_addr,
                   .n_private = o->n_private};
    m.flags = (uint8_t)((o->answer ? PUNCH_TCP_FLAG_ANSWER : 0) |
                        (o->reachable ? PUNCH_TCP_FLAG_REACHABLE : 0) |
                        (o->prefer ? PUNCH_TCP_FLAG_PREFER : 0));
    memcpy(m.private_addr, o->private_addr, o->n_private * sizeof(punch_addr));
    uint8_t inner[DGRAM_MAX] = {INNER_TCP};
    size_t len;
    int rc = punch_msg_encode(&m, inner + 1, sizeof(inner) - 1, &len);
    if (rc != 0)
        return rc;
    if (o->prefer)
        p->prefer_tcp = true;
    return send_transport(a, now, p, &p->cand[p->path], inner, len + 1);
}

int punch_agent_tcp_path(punch_agent *a, uint64_t now, int id, punch_socket sock, punch_technique t,
                         const punch_addr *remote)
{
    peer *p = session_peer(a, id);
    if (!p)
        return PUNCH_ERR_NOTFOUND;
    if (sock.kind != PUNCH_SOCKET_TCP || sock.index >= PUNCH_TCP_MAX_SOCKETS || !is_tcp(t) ||
        !remote)
        return PUNCH_ERR_INVAL;
    if (!p->ready)
        return PUNCH_ERR_LIMIT;
    int ci = add_candidate_on(p, sock, remote, t, now);
    if (ci < 0)
        return PUNCH_ERR_LIMIT;
    candidate *c = &p->cand[ci];
    c->technique = t;
    c->next_probe_ms = now; /* PINGed at once (probe_timeout) */
    send_ping(a, now, p, c);
    c->probes = 1;
    c->last_probe_ms = now;
    c->next_probe_ms = now + PROBE_FAST_MS;
    return 0;
}

void punch_agent_tcp_failed(punch_agent *a, uint64_t now, int id, const punch_socket *sock,
                            punch_technique t, const punch_addr *remote, const char *why)
{
    peer *p = session_peer(a, id);
    if (!p)
        return;
    ev *e = push_event(a, PUNCH_EVENT_ATTEMPT, id);
    e->e.attempt.technique = t;
    e->e.attempt.kind = PUNCH_PATH_DIRECT;
    if (remote)
        e->e.attempt.remote = *remote;
    snprintf(e->e.attempt.why, sizeof(e->e.attempt.why), "%s", why ? why : "failed");
    if (!sock || sock->kind != PUNCH_SOCKET_TCP)
        return;
    for (size_t i = 0; i < p->n_cand; i++) {
        candidate *c = &p->cand[i];
        if (!same_socket(c->sock, *sock) || c->closed)
            continue;
        c->closed = true;
        c->validated = c->confirmed = false;
        c->next_probe_ms = UINT64_MAX;
        if (p->path == (int)i) {
            p->path = -1;
            p->keepalive.missed = 0;
            choose_path(a, now, id);
        }
    }
}
