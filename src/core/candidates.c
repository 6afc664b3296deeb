/* SPDX-License-Identifier: MIT */
/*
 * Candidates: the addresses a peer may be reached at (draft §3.3: private
 * §3.3.2, hairpin §3.3.3, public §3.3.1, predicted §3.4, relay §3.1, TCP
 * §3.5/§3.2, peer-reflexive ones learned from authenticated packets), how
 * each is proven, and which one carries the data.
 */
#include <string.h>

#include "core/agent_internal.h"

punch_socket extra_socket(uint16_t k)
{
    return (punch_socket){.kind = PUNCH_SOCKET_EXTRA, .index = k};
}

bool is_main_socket(punch_socket s)
{
    return s.kind == PUNCH_SOCKET_MAIN;
}

bool is_turn_socket(punch_socket s)
{
    return same_socket(s, TURN_SOCKET);
}

bool wrapped(const candidate *c)
{
    return c->technique == PUNCH_TECH_RELAY || is_turn_socket(c->sock);
}

punch_path_kind path_kind(punch_technique t)
{
    return t == PUNCH_TECH_RELAY || t == PUNCH_TECH_TURN ? PUNCH_PATH_RELAY : PUNCH_PATH_DIRECT;
}

bool same_socket(punch_socket a, punch_socket b)
{
    return a.kind == b.kind && (a.kind == PUNCH_SOCKET_MAIN || a.index == b.index);
}

/* Lower is better: the technique's rank (technique.c). */
int priority(const peer *p, punch_technique t)
{
    return technique_rank(p->prefer_tcp, t);
}

int find_candidate(const peer *p, const punch_addr *addr, punch_socket sock, bool relay)
{
    for (size_t i = 0; i < p->n_cand; i++)
        if ((p->cand[i].technique == PUNCH_TECH_RELAY) == relay && same_socket(p->cand[i].sock, sock) &&
            !p->cand[i].closed && punch_addr_equal(&p->cand[i].addr, addr))
            return (int)i;
    return -1;
}

int add_candidate_on(peer *p, punch_socket sock, const punch_addr *addr, punch_technique t,
                     uint64_t now)
{
    int i = find_candidate(p, addr, sock, t == PUNCH_TECH_RELAY);
    if (i >= 0)
        return i;
    if (p->n_cand == MAX_CANDIDATES || addr->family == PUNCH_AF_NONE || addr->port == 0)
        return -1;
    candidate *c = &p->cand[p->n_cand];
    memset(c, 0, sizeof(*c));
    c->addr = *addr;
    c->sock = sock;
    c->technique = t;
    c->first_probe_ms = c->next_probe_ms = now;
    return (int)p->n_cand++;
}

int add_candidate(peer *p, const punch_addr *addr, punch_technique t, uint64_t now)
{
    return add_candidate_on(p, MAIN_SOCKET, addr, t, now);
}

/* The candidates an introduction gives: predicted ports, the public
 * endpoint, the private ones, and the relay, in that order. */
void add_intro_candidates(punch_agent *a, uint64_t now, peer *p, const punch_msg *m)
{
    bool direct = !(a->cfg.flags & PUNCH_AGENT_RELAY_ONLY);
    bool relay = (m->flags & PUNCH_INTRO_RELAY) && !(a->cfg.flags & PUNCH_AGENT_NO_RELAY);
    if (direct) {
        bool hairpin = punch_addr_same_ip(&m->public_addr, &a->public_addr);
        punch_addr pub = m->public_addr;
        family_nat64(a, &pub);
        if (!hairpin)
            add_predicted_candidates(p, m, &pub, now);
        /* Behind the same public IP, the public endpoint is a loop through
         * our own NAT (§3.3.3). It goes first: a peer without a NAT lists
         * it among its private endpoints too, and is reached by hole-punch.
         * When our own NAT maps per destination, the way there works only
         * because the peer predicts our port: port prediction too. */
        if (family_usable(a, pub.family))
            add_candidate(p, &pub,
                          hairpin                 ? PUNCH_TECH_HAIRPIN
                          : our_port_predicted(a, pub.family) ? PUNCH_TECH_PORT_PREDICTION
                                                  : PUNCH_TECH_HOLE_PUNCH,
                          now);
        for (size_t i = 0; i < m->n_private; i++) { /* the last n_mapped: port mappings */
            const punch_addr *pa = &m->private_addr[i];
            bool mapped = i + m->n_mapped >= m->n_private;
            punch_addr at = *pa;
            family_nat64(a, &at);
            if (!family_usable(a, at.family))
                continue;
            int ci = add_candidate(p, &at, mapped ? PUNCH_TECH_PORTMAP : family_private_technique(pa),
                                   now);
            /* Only the peer says it is there, public-looking or not (a
             * global IPv6 or public IPv4 one is probed by hole punching):
             * §6.2's budget per claimed IP holds for it. */
            if (ci >= 0 && !mapped && !punch_addr_equal(pa, &m->public_addr))
                p->cand[ci].claimed = true;
        }
    }
    if (relay)
        add_candidate(p, &a->cfg.server, PUNCH_TECH_RELAY, now);
    for (size_t i = 0; i < p->n_cand; i++)
        family_mark_nat64(a, &p->cand[i]);
    if (!(a->cfg.flags & PUNCH_AGENT_NO_RELAY))
        turn_add_candidates(a, now, p, &m->public_addr);
}

/* What an address the peer's packets came from, not known before, is:
 * many-port probing's find (on an extra socket, or from the peer's
 * public address while we probe its ports), else peer-reflexive. */
static punch_technique learned_technique(const punch_agent *a, const peer *p, const punch_addr *src)
{
    if (is_turn_socket(a->rx_sock)) /* through our TURN allocation */
        return PUNCH_TECH_TURN;
    if (!is_main_socket(a->rx_sock) || birthday_probed(p, src))
        return PUNCH_TECH_BIRTHDAY;
    if (punch_portmap_held(&a->portmap)) /* the way in was our router's mapping */
        return PUNCH_TECH_PORTMAP;
    return PUNCH_TECH_PEER_REFLEXIVE;
}

/* The candidate a handshake message from src belongs to, learning src as
 * a peer-reflexive one when it is new (the message is authenticated). */
int candidate_for(const punch_agent *a, peer *p, const punch_addr *src, bool via_relay,
                  uint64_t now)
{
    int ci = find_candidate(p, src, a->rx_sock, via_relay);
    /* A TCP connection is a candidate from the moment it is up
     * (punch_agent_tcp_path), never learned. */
    if (ci < 0 && !via_relay && a->rx_sock.kind != PUNCH_SOCKET_TCP)
        ci = add_candidate_on(p, a->rx_sock, src, learned_technique(a, p, src), now);
    if (ci >= 0) {
        p->cand[ci].spoke = true;
        family_mark_nat64(a, &p->cand[ci]);
    }
    return ci;
}

/* The path in use as an event of this kind: PATH, or RTT (its first
 * round trip timed, after a PATH that had none). */
static void emit_path_as(punch_agent *a, int id, punch_event_kind kind)
{
    peer *p = &a->peers[id];
    ev *e = push_event(a, kind, id);
    const candidate *c = &p->cand[p->path];
    e->e.path.kind = path_kind(c->technique);
    e->e.path.technique = c->technique;
    e->e.path.remote = c->addr;
    e->e.path.socket = is_turn_socket(c->sock) ? MAIN_SOCKET : c->sock;
    /* Only a PING's PONG times a path: a handshake's answer may be the
     * answer to an earlier copy of message 1 (0.0 ms was told), and a
     * path taken on a message heard has no round trip at all yet. */
    e->e.path.timed = c->rtt_pinged;
    e->e.path.rtt_us = c->rtt_pinged ? c->rtt_us : 0;
    e->e.path.cipher = p->t.cipher;
    p->rtt_owed = !c->rtt_pinged;
}

/* A path taken without a timed round trip is PINGed at once (again every
 * keepalive period until a PONG comes: keepalive.c); the PONG makes the
 * RTT event. A PING already on its way is waited for. */
void time_path(punch_agent *a, uint64_t now, int id)
{
    peer *p = &a->peers[id];
    if (p->path < 0 || !p->rtt_owed || !p->ready)
        return;
    candidate *c = &p->cand[p->path];
    if (!c->ping_sent_ms || now - c->ping_sent_ms >= PROBE_FAST_MS)
        send_ping(a, now, p, c);
}

/* May c take over from the path in use, gone quiet (a keepalive PING out,
 * unanswered yet)? When a PING went unanswered for a whole keepalive
 * period, or when c was proven since the first one went (a NAT moved the
 * peer: test_rebinding). Not on an older proof: an idle path is quiet at
 * every keepalive, and would flap between equals at each. */
static bool may_replace_quiet(const peer *p, const candidate *c)
{
    return p->keepalive.missed >= 2 || c->proven_ms >= p->keepalive.quiet_ms;
}

/* Take the best validated candidate when it beats the one in use. */
void choose_path(punch_agent *a, uint64_t now, int id)
{
    peer *p = &a->peers[id];
    /* The path in use, when it has gone quiet (a keepalive unanswered: the
     * peer's NAT may have moved), yields to an equal one that answers. */
    bool quiet = p->path >= 0 && p->keepalive.missed > 0;
    int best = -1;
    for (size_t i = 0; i < p->n_cand; i++) {
        const candidate *c = &p->cand[i];
        if (!c->validated || c->closed ||
            (quiet && ((int)i == p->path || !may_replace_quiet(p, c))))
            continue;
        if (best < 0 || priority(p, c->technique) < priority(p, p->cand[best].technique) ||
            (priority(p, c->technique) == priority(p, p->cand[best].technique) &&
             family_better(c, &p->cand[best])))
            best = (int)i;
    }
    if (best < 0 || best == p->path || (quiet && !family_quiet_enough(p, &p->cand[best])))
        return;
    /* Otherwise no flapping between equals (but IPv4 gives way to IPv6). */
    if (p->path >= 0 && p->cand[p->path].validated &&
        (priority(p, p->cand[best].technique) > priority(p, p->cand[p->path].technique) ||
         (priority(p, p->cand[best].technique) == priority(p, p->cand[p->path].technique) &&
          !quiet && !family_switch(&p->cand[best], &p->cand[p->path]))))
        return;
    p->path = best;
    p->keepalive.missed = 0;
    emit_path_as(a, id, PUNCH_EVENT_PATH);
    time_path(a, now, id);
}

/* Both ways proven: the answer to a message 1 sent there (its round
 * trip kept for the agent's own use, never told: maybe short), or a PONG
 * (validate_by_pong). */
void validate(punch_agent *a, uint64_t now, int id, int ci, uint64_t sent_ms)
{
    peer *p = &a->peers[id];
    candidate *c = &p->cand[ci];
    if (!c->rtt_pinged)
        c->rtt_us = (uint32_t)((now - sent_ms) * 1000u);
    c->validated = c->confirmed = true;
    c->proven_ms = now;
    if (ci == p->path)
        p->keepalive.missed = 0;
    choose_path(a, now, id);
    birthday_on_confirmed(a, id);
}

/* The PONG to our latest PING there (sent_ms): both ways proven, and the
 * round trip timed (the least of those timed kept). The path in use told
 * without one gets its RTT event. */
void validate_by_pong(punch_agent *a, uint64_t now, int id, int ci, uint64_t sent_ms)
{
    peer *p = &a->peers[id];
    candidate *c = &p->cand[ci];
    uint32_t rtt_us = (uint32_t)((now - sent_ms) * 1000u);
    c->rtt_us = c->rtt_pinged && c->rtt_us < rtt_us ? c->rtt_us : rtt_us;
    c->rtt_pinged = true;
    if (c->rtt_samples < UINT8_MAX)
        c->rtt_samples++;
    validate(a, now, id, ci, sent_ms);
    if (ci == p->path && p->rtt_owed)
        emit_path_as(a, id, PUNCH_EVENT_RTT);
}

/* One way proven (a fresh message 1 came in on an introduced candidate):
 * taken at once, and PINGed until a PONG confirms it (probe_timeout). */
void hear(punch_agent *a, uint64_t now, int id, int ci)
{
    peer *p = &a->peers[id];
    candidate *c = &p->cand[ci];
    /* Not again soon after it came to nothing (a way in, none out): no
     * flapping between it and the next best. */
    if (c->validated || (c->unheard_ms && now - c->unheard_ms < PROBE_GIVE_UP_MS))
        return;
    c->validated = true;
    c->confirmed = false;
    c->heard_ms = c->proven_ms = now;
    c->rtt_us = 0; /* unknown until the PONG */
    c->rtt_pinged = false;
    c->rtt_samples = 0;
    c->next_probe_ms = now;
    choose_path(a, now, id);
}

/* The peer started over elsewhere (handshake.c): what was proven, was
 * proven of its old instance. Every candidate is probed again; the caller
 * takes the one the new handshake came on. */
void forget_paths(punch_agent *a, int id)
{
    peer *p = &a->peers[id];
    for (size_t i = 0; i < p->n_cand; i++) {
        p->cand[i].validated = p->cand[i].confirmed = false;
        p->cand[i].rtt_pinged = false; /* timed to the old instance */
        p->cand[i].rtt_samples = 0;
        p->cand[i].unheard_ms = 0;
    }
    p->path = -1;
    p->keepalive.missed = 0;
}

/* A candidate heard from but silent to our PINGs for CONFIRM_MS: its way
 * out does not work after all. */
void unhear(punch_agent *a, uint64_t now, int id, int ci)
{
    peer *p = &a->peers[id];
    candidate *c = &p->cand[ci];
    tell_attempt(a, id, c, "heard from, but no answer to PINGs in %llu ms",
                 (unsigned long long)(now - c->heard_ms));
    c->validated = false;
    c->unheard_ms = now;
    if (p->path == ci)
        p->path = -1;
    choose_path(a, now, id);
}
