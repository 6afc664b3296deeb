/* SPDX-License-Identifier: MIT */
/*
 * UDP hole punching (draft §3.3): every candidate probed on a schedule
 * (§6.2, §4.3), handshake messages before the session exists and PINGs
 * after. To a public endpoint the first probes go with a low TTL for a
 * guard time worked out from both sides' round trips to the server: they
 * open our own NAT without reaching the peer's before its own first packet
 * left it (the conntrack trap).
 */
#include "core/agent_internal.h"

/* How long the first probes to a public endpoint go with a low TTL.
 * Our first full-TTL packet must reach the peer's NAT after the peer's own
 * first packet left it (the conntrack trap). The server introduces both at
 * T; the peer's first packet leaves its NAT by T + rtt_peer at the latest
 * (its NAT next to the server, all the delay behind it); ours, sent at
 * T + rtt_us/2 + g, cannot reach the peer's NAT before T + rtt_us + g
 * (the way out is as long as the way in). So g > rtt_peer - rtt_us, plus a
 * margin for jitter and error: 2 ms and a sixteenth of the two round
 * trips. Without both round trips, DEFAULT_OPEN_GUARD_MS. */
uint64_t probe_guard_ms(const punch_agent *a, const peer *p)
{
    if (!a->open.low_ttl)
        return 0;
    if (a->open.guard_ms)
        return a->open.guard_ms;
    uint64_t mine = p->guard.my_rtt_ms, theirs = p->guard.peer_rtt_ms;
    if (!mine || !theirs)
        return DEFAULT_OPEN_GUARD_MS;
    uint64_t g = (theirs > mine ? theirs - mine : 0) + 2 + (mine + theirs) / 16;
    return min_u64(g, MAX_OPEN_GUARD_MS);
}

/* (Re)start the schedule of every candidate not validated yet, from now. */
void start_probing(punch_agent *a, uint64_t now, int id)
{
    peer *p = &a->peers[id];
    for (size_t i = 0; i < p->n_cand; i++) {
        candidate *c = &p->cand[i];
        if (c->validated)
            continue;
        c->first_probe_ms = c->next_probe_ms = now;
        c->probes = 0;
        c->gave_up = false;
    }
}

/* Until the guard time after the introduction (probe_guard_ms), what goes
 * to a peer's public endpoint goes with the low TTL, or not at all. */
static uint64_t guard_end(const peer *p)
{
    return p->guard.from_ms + p->guard.ms;
}

static bool guarded(const peer *p, const candidate *c, uint64_t now)
{
    return technique_guarded(c->technique) && now < guard_end(p);
}

static uint64_t probe_interval(const candidate *c, uint64_t now)
{
    if (c->probes < PROBE_FAST_COUNT)
        return PROBE_FAST_MS;
    return now - c->first_probe_ms < PROBE_GIVE_UP_MS ? PROBE_SLOW_MS : PROBE_BACKGROUND_MS;
}

static void tell_attempt_failed(punch_agent *a, int id, candidate *c, uint64_t now)
{
    tell_attempt(a, id, c, "no answer in %llu ms", (unsigned long long)(now - c->first_probe_ms));
    c->gave_up = true;
}

/* Is c probed (on its schedule, next_probe_ms)? Not validated and
 * confirmed both ways, and not closed: a dead path's candidate (confirmed
 * once, no longer validated) too. The one condition probe_deadline and
 * probe_timeout both go by, so the agent wakes for every probe its handler
 * sends, and a dead path is probed again on its own schedule, not whenever
 * something else wakes the agent (bench/path_uptime, relay only at 30 %
 * loss: uptime 0.61 -> 0.72; unit.test_agent timeouts_only_at_the_deadline). */
static bool needs_probing(const candidate *c)
{
    return !(c->validated && c->confirmed) && !c->closed;
}

/* The next probe of a candidate that needs probing. */
uint64_t probe_deadline(const punch_agent *a, int id)
{
    const peer *p = &a->peers[id];
    uint64_t at = UINT64_MAX;
    for (size_t j = 0; j < p->n_cand; j++)
        if (needs_probing(&p->cand[j]))
            at = min_u64(at, p->cand[j].next_probe_ms);
    return at;
}

/* Probe every candidate that is not validated, on its schedule: handshake
 * messages before the session exists, PINGs after. */
void probe_timeout(punch_agent *a, uint64_t now, int id)
{
    peer *p = &a->peers[id];
    bool on_best = p->path >= 0 && priority(p, p->cand[p->path].technique) <= PRIORITY_BEST;
    for (size_t i = 0; i < p->n_cand; i++) {
        candidate *c = &p->cand[i];
        if (!needs_probing(c) || now < c->next_probe_ms)
            continue;
        if (c->validated && now - c->heard_ms >= CONFIRM_MS) {
            unhear(a, now, id, (int)i);
            if (!p->used)
                return;
        }
        /* The background retries stop once the best kind of path is in use. */
        if (now - c->first_probe_ms >= PROBE_GIVE_UP_MS) {
            if (!c->gave_up)
                tell_attempt_failed(a, id, c, now);
            if (on_best || (p->path >= 0 && c->technique == PUNCH_TECH_RELAY)) {
                c->next_probe_ms = UINT64_MAX; /* parked until probing starts again */
                continue;
            }
        }
        if (!p->ready) {
            /* Only the initiator's message 1 is worth repeating to the relay.
             * To a public endpoint, at first, only far enough to open our
             * own NAT (the conntrack trap, punch_agent_cfg.open_ttl). */
            bool low = guarded(p, c, now);
            /* The first probes go as copies (loss, issue 10), each one
             * counted by the probe budget like any probe. */
            for (unsigned k = 0; k < (c->probes < PROBE_COPY_COUNT ? 2u : 1u); k++)
                if ((c->technique != PUNCH_TECH_RELAY || p->initiator) &&
                    (low || probe_allowed(a, now, id, (int)i)))
                    send_on_ttl(a, p, c, low ? a->open.ttl : 0, PUNCH_MSG_HANDSHAKE1, p->hs.msg1,
                                p->hs.msg1_len);
            c->probes++;
            c->last_probe_ms = now;
            /* The first full-TTL probe goes the moment the guard ends. */
            c->next_probe_ms = low ? min_u64(now + probe_interval(c, now), guard_end(p))
                                   : now + probe_interval(c, now);
            continue;
        }
        if (guarded(p, c, now)) {
            /* A PING is a full-TTL packet: not before the guard ends. */
            c->next_probe_ms = guard_end(p);
            continue;
        }
        send_ping(a, now, p, c);
        c->probes++;
        c->last_probe_ms = now;
        c->next_probe_ms = now + probe_interval(c, now);
    }
}
