/* SPDX-License-Identifier: MIT */
/*
 * Keepalive and dead-path detection (draft §5.5, §3.3.4): a PING on the
 * path in use when it has been quiet KEEPALIVE_PATH_MS; DEAD_AFTER_MISSED
 * unanswered mark it dead, and the next best takes over while probing
 * starts again. A peer heard from on no path for PEER_GONE_MS is gone:
 * it vanished without a goodbye (its CLOSE lost, or it died), and its
 * slot is freed. (The server's binding is held by registration.c.) A
 * caller's ping (punch_agent_ping, `punch ping`) is one more PING on the
 * path in use, its PONG told as an event.
 */
#include <stdio.h>

#include "core/agent_internal.h"

#define KEEPALIVE_PATH_MS 2000
#define DEAD_AFTER_MISSED 3
/* Far beyond a NAT's reset (a few seconds) or punchd's restart: only a
 * peer that is not there any more stays silent this long. */
#define PEER_GONE_MS 60000

/* The path in use is dead: probing starts again, the next best takes
 * over meanwhile. */
static void path_died(punch_agent *a, uint64_t now, int id)
{
    peer *p = &a->peers[id];
    candidate *c = &p->cand[p->path];
    tell_attempt(a, id, c, "path died: %u keepalives unanswered", p->keepalive.missed);
    c->validated = false;
    c->first_probe_ms = c->next_probe_ms = now;
    c->probes = 0;
    c->gave_up = false;
    p->path = -1;
    p->keepalive.missed = 0;
    start_probing(a, now, id);
    choose_path(a, now, id);
    /* If a NAT gave one of us a new public endpoint, the server tells
     * both again once that one re-registers (ours went at the first miss);
     * asking again covers a server without a relay session to go by. */
    if (p->connect.asked) {
        p->connect.reconnect = true;
        p->connect.tries = 0;
        p->connect.next_ms = now;
    }
}

/* The next look at the path in use, while there is one, and the moment a
 * silent peer is gone. */
uint64_t keepalive_deadline(const punch_agent *a, int id)
{
    const peer *p = &a->peers[id];
    if (!p->ready)
        return UINT64_MAX;
    uint64_t gone = p->keepalive.heard_ms + PEER_GONE_MS;
    return p->path >= 0 ? min_u64(p->keepalive.next_ms, gone) : gone;
}

static void peer_gone(punch_agent *a, uint64_t now, int id)
{
    ev *e = push_event(a, PUNCH_EVENT_CLOSED, id);
    snprintf(e->e.closed.why, sizeof(e->e.closed.why), "nothing heard from the peer in %llu ms",
             (unsigned long long)(now - a->peers[id].keepalive.heard_ms));
    forget_peer(a, id);
}

/* Keep the path in use alive; three unanswered PINGs and it is dead. */
void keepalive_timeout(punch_agent *a, uint64_t now, int id)
{
    peer *p = &a->peers[id];
    if (now - p->keepalive.heard_ms >= PEER_GONE_MS) {
        peer_gone(a, now, id);
        return;
    }
    if (p->path < 0)
        return;
    family_measure(a, now, id);
    if (now - p->keepalive.last_rx_ms >= KEEPALIVE_PATH_MS) {
        if (p->keepalive.missed >= DEAD_AFTER_MISSED) {
            path_died(a, now, id);
        } else {
            send_ping(a, now, p, &p->cand[p->path]);
            unsigned missed = p->keepalive.missed++;
            if (missed == 0) {
                p->keepalive.quiet_ms = now;
                reregister(a, now);
            } else if (missed == 1) /* a PING went unanswered: is our TURN allocation there? */
                turn_path_quiet(a, now, &p->cand[p->path]);
            int was = p->path;
            choose_path(a, now, id); /* an equal one that answers may take over */
            family_moved(a, now, id, was);
        }
    } else {
        time_path(a, now, id); /* told untimed, its PONG lost: PINGed again */
    }
    p->keepalive.next_ms = now + KEEPALIVE_PATH_MS;
}

int punch_agent_ping(punch_agent *a, uint64_t now, int id)
{
    peer *p = session_peer(a, id);
    if (!p)
        return PUNCH_ERR_NOTFOUND;
    if (!p->ready || p->path < 0)
        return PUNCH_ERR_LIMIT;
    send_ping(a, now, p, &p->cand[p->path]);
    p->keepalive.ping_asked = true;
    return 0;
}

void pong_heard(punch_agent *a, uint64_t now, int id, int ci, uint64_t sent_ms)
{
    peer *p = &a->peers[id];
    if (!p->used || !p->keepalive.ping_asked || ci != p->path)
        return;
    p->keepalive.ping_asked = false;
    const candidate *c = &p->cand[ci];
    ev *e = push_event(a, PUNCH_EVENT_PONG, id);
    e->e.pong.kind = path_kind(c->technique);
    e->e.pong.technique = c->technique;
    e->e.pong.remote = c->addr;
    e->e.pong.socket = c->sock;
    e->e.pong.timed = true;
    e->e.pong.rtt_us = (uint32_t)((now - sent_ms) * 1000u);
    e->e.pong.cipher = p->t.cipher;
}
