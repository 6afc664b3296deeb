/* SPDX-License-Identifier: MIT */
/*
 * Peer slots and the probe budget (draft §6.2, issue 12): the agent's side
 * of peer_admission.h, which decides; this file fills its views from the
 * peer table and carries the decisions out. Strangers (peers introduced
 * without our asking) hold a slot until their handshake completes or
 * PUNCH_HANDSHAKE_DEADLINE_MS pass (a timer in agent.c's table); until
 * then, probes to addresses of theirs nobody verified are budgeted.
 */
#include <stdio.h>
#include <string.h>

#include "core/agent_internal.h"

/* The sum peer_admission.h gives for the deadline, from our constants. */
_Static_assert(PUNCH_HANDSHAKE_DEADLINE_MS ==
                   MAX_OPEN_GUARD_MS + PROBE_FAST_MS * PROBE_FAST_COUNT +
                       (BIRTHDAY_SOCKETS + BIRTHDAY_PROBES) / BIRTHDAY_BATCH * BIRTHDAY_TICK_MS +
                       PROBE_SLOW_MS,
               "the handshake deadline follows from the probing budget");
_Static_assert(PUNCH_MAX_HANDSHAKING < MAX_PEERS, "strangers leave room for sessions");

/* The handshake completed: the peer is authenticated (SPEC.md §4). */
static bool handshaken(const peer *p)
{
    return p->ready || p->has_prev;
}

static bool spoke(const peer *p)
{
    for (size_t i = 0; i < p->n_cand; i++)
        if (p->cand[i].spoke)
            return true;
    return false;
}

static punch_slot_view slot_view(const punch_agent *a, int id)
{
    const peer *p = &a->peers[id];
    return (punch_slot_view){.used = p->used, .asked = p->connect.asked,
                             .handshaken = handshaken(p), .spoke = p->used && spoke(p),
                             .admitted_ms = p->admission.admitted_ms,
                             .answer_by_ms = p->admission.admitted_ms +
                                             punch_admission_answer_ms(p->guard.my_rtt_ms,
                                                                       p->guard.peer_rtt_ms)};
}

/* A stranger is forgotten before its handshake completed: a CLOSED event
 * says why, and its key gets no second probe budget for a while. */
static void drop_stranger(punch_agent *a, uint64_t now, int id, const char *why)
{
    ev *e = push_event(a, PUNCH_EVENT_CLOSED, id);
    snprintf(e->e.closed.why, sizeof(e->e.closed.why), "%s", why);
    punch_spent_add(&a->spent, a->peers[id].key, now);
    forget_peer(a, id);
}

int admit_peer(punch_agent *a, uint64_t now, bool stranger)
{
    punch_slot_view v[MAX_PEERS];
    for (int i = 0; i < MAX_PEERS; i++)
        v[i] = slot_view(a, i);
    bool evict;
    int id = punch_admission_pick(v, MAX_PEERS, stranger, now, &evict);
    if (id >= 0 && evict) {
        drop_stranger(a, now, id, "pushed out by a newer introduction before its handshake");
        a->evicted++;
    } else if (id < 0 && stranger) {
        a->turned_away++;
    }
    return id;
}

/* The waiting room's entry for key: its own, a free one, or the oldest. */
static int room_entry_for(const waiting_room *w, const uint8_t *key)
{
    int pick = 0;
    for (int i = 0; i < PUNCH_WAITING_ROOM; i++) {
        if (w->used[i] && memcmp(w->intro[i].key, key, PUNCH_KEY_BYTES) == 0)
            return i;
        uint64_t rank = w->used[i] ? w->at_ms[i] + 1 : 0;
        if (rank < (w->used[pick] ? w->at_ms[pick] + 1 : 0))
            pick = i;
    }
    return pick;
}

void wait_for_room(punch_agent *a, uint64_t now, const punch_msg *m)
{
    waiting_room *w = &a->waiting;
    int i = room_entry_for(w, m->key);
    w->intro[i] = *m;
    w->intro[i].payload = NULL;
    w->at_ms[i] = now;
    w->used[i] = true;
}

uint64_t waiting_deadline(const punch_agent *a, int id)
{
    (void)id;
    bool waiting = false;
    for (int i = 0; i < PUNCH_WAITING_ROOM; i++)
        waiting = waiting || a->waiting.used[i];
    if (!waiting)
        return UINT64_MAX;
    punch_slot_view v[MAX_PEERS];
    for (int i = 0; i < MAX_PEERS; i++)
        v[i] = slot_view(a, i);
    return punch_admission_room_at(v, MAX_PEERS);
}

/* Room for a stranger: the newest introduction still fresh takes it
 * (on_introduce admits it); the stale ones go. */
void waiting_timeout(punch_agent *a, uint64_t now, int id)
{
    (void)id;
    waiting_room *w = &a->waiting;
    int newest = -1;
    for (int i = 0; i < PUNCH_WAITING_ROOM; i++) {
        if (w->used[i] && now - w->at_ms[i] >= PUNCH_WAITING_MS)
            w->used[i] = false;
        else if (w->used[i] && (newest < 0 || w->at_ms[i] > w->at_ms[newest]))
            newest = i;
    }
    if (newest < 0)
        return;
    punch_msg m = w->intro[newest];
    w->used[newest] = false;
    a->readmitted++;
    on_introduce(a, now, &m);
}

void spend_if_handshaking(punch_agent *a, uint64_t now, int id)
{
    punch_slot_view v = slot_view(a, id);
    if (punch_admission_deadline(&v) != UINT64_MAX)
        punch_spent_add(&a->spent, a->peers[id].key, now);
}

uint64_t admission_deadline(const punch_agent *a, int id)
{
    punch_slot_view v = slot_view(a, id);
    return punch_admission_deadline(&v);
}

void admission_timeout(punch_agent *a, uint64_t now, int id)
{
    char why[96];
    snprintf(why, sizeof(why), "no handshake within %u ms of the introduction",
             (unsigned)PUNCH_HANDSHAKE_DEADLINE_MS);
    drop_stranger(a, now, id, why);
    a->expired++;
}

void spend_again(punch_agent *a, uint64_t now, peer *p)
{
    if (!p->connect.asked && punch_spent_recent(&a->spent, p->key, now))
        p->admission.unverified_sent = PUNCH_PROBES_PER_PEER + p->admission.probe_allowance;
}

/* Probes sent before the handshake to candidates of p on addr's IP. */
static unsigned sent_to_ip(const peer *p, const punch_addr *addr)
{
    unsigned n = 0;
    for (size_t i = 0; i < p->n_cand; i++)
        if (punch_addr_same_ip(&p->cand[i].addr, addr))
            n += p->cand[i].unverified_sent;
    return n;
}

static bool budget_allows(punch_agent *a, uint64_t now, const punch_probe_ask *q)
{
    if (punch_probe_allowed(&a->probe_bucket, now, q))
        return true;
    a->probes_withheld++;
    return false;
}

bool probe_allowed(punch_agent *a, uint64_t now, int id, int ci)
{
    peer *p = &a->peers[id];
    candidate *c = &p->cand[ci];
    if (handshaken(p))
        return true;
    punch_probe_ask q = {.verified = c->technique == PUNCH_TECH_RELAY || c->spoke,
                         .claimed = c->technique == PUNCH_TECH_PRIVATE || c->claimed,
                         .to_candidate = c->unverified_sent,
                         .to_ip = sent_to_ip(p, &c->addr),
                         .to_peer = p->admission.unverified_sent,
                         .allowance = p->admission.probe_allowance};
    if (!budget_allows(a, now, &q))
        return false;
    if (!q.verified) {
        c->unverified_sent++;
        p->admission.unverified_sent++;
    }
    return true;
}

bool many_port_allowed(punch_agent *a, uint64_t now, int id)
{
    peer *p = &a->peers[id];
    if (handshaken(p))
        return true;
    punch_probe_ask q = {.many_port = true, .to_peer = p->admission.unverified_sent,
                         .allowance = p->admission.probe_allowance};
    if (!budget_allows(a, now, &q))
        return false;
    p->admission.unverified_sent++;
    return true;
}
