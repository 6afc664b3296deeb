/* SPDX-License-Identifier: MIT */
/* The rendezvous' relay of last resort (draft §3.1, SPEC.md §4): sessions
 * between two registered peers that asked for each other, their quotas and
 * expiry, and the RELAY datagrams between them. See rendezvous.h. */
#include "server/rendezvous_internal.h"

#include <string.h>

#include <sodium.h>

static bool match_session(const punch_rendezvous *rv, uint32_t idx, const void *id)
{
    return memcmp(rv->sessions[idx].id, id, PUNCH_MSG_SESSION_LEN) == 0;
}

static uint64_t session_hash(const punch_rendezvous *rv, const uint8_t *id)
{
    return rv_keyed_hash(rv, id, PUNCH_MSG_SESSION_LEN);
}

static uint64_t session_deadline(const punch_rendezvous *rv, const session *s)
{
    return s->last_ms + rv->cfg.session_idle_ms;
}

bool rv_session_peer_ok(const punch_rendezvous *rv, const session *s, int k)
{
    const peer *p = &rv->peers[s->peer[k]];
    return p->pub.family != PUNCH_AF_NONE && p->gen == s->gen[k];
}

static void close_session(punch_rendezvous *rv, uint32_t i, const char *reason)
{
    session *s = &rv->sessions[i];
    if (s->opened) {
        punch_rendezvous_event *ev = rv_event_reserve(rv, PUNCH_RV_EVENT_RELAY_CLOSED);
        if (ev) {
            for (int k = 0; k < 2; k++) {
                rv_peer_info(&rv->peers[s->peer[k]], &ev->peer[k]);
                ev->bytes[k] = s->bytes[k];
                ev->packets[k] = s->packets[k];
            }
            memcpy(ev->session, s->id, PUNCH_MSG_SESSION_LEN);
            ev->reason = reason;
            ev->dropped = s->dropped;
            ev->relay = true;
        }
    }
    if (rv_session_peer_ok(rv, s, 0))
        rv->peers[s->peer[0]].n_started--;
    rv_htable_remove(&rv->by_id, session_hash(rv, s->id), i);
    rv_lru_remove(&rv->session_lru, rv->session_links, i);
    s->used = false;
    rv->session_links[i].next = rv->session_free;
    rv->session_free = i;
    rv->n_sessions--;
    rv->counters.sessions = rv->n_sessions;
    rv->counters.sessions_closed++;
}

unsigned rv_expire_sessions(punch_rendezvous *rv, uint64_t now, unsigned budget)
{
    unsigned n = 0;
    /* Stop while the event queue has no room for what closing reports. */
    while (n < budget && rv->session_lru.head != NONE && rv->ev_count < EVENT_QUEUE &&
           session_deadline(rv, &rv->sessions[rv->session_lru.head]) <= now) {
        close_session(rv, rv->session_lru.head, "idle");
        n++;
    }
    return n;
}

uint64_t rv_relay_deadline(const punch_rendezvous *rv)
{
    return rv->session_lru.head == NONE
               ? UINT64_MAX
               : session_deadline(rv, &rv->sessions[rv->session_lru.head]);
}

/* The live session between a and b that peer `of` was last put in, or NONE. */
static uint32_t pair_session(const punch_rendezvous *rv, uint32_t of, uint32_t a, uint32_t b)
{
    uint32_t i = rv->peers[of].last_session;
    if (i == NONE || i >= rv->sessions_hwm)
        return NONE;
    const session *s = &rv->sessions[i];
    if (!s->used || !rv_session_peer_ok(rv, s, 0) || !rv_session_peer_ok(rv, s, 1))
        return NONE;
    if ((s->peer[0] == a && s->peer[1] == b) || (s->peer[0] == b && s->peer[1] == a))
        return i;
    return NONE;
}

/* The id of the session that a CONNECT (transaction txid) from a to b
 * makes: the same for every copy of that CONNECT, so peers that hear of it
 * through different copies (one INTRODUCE lost, the CONNECT repeated) agree
 * on it, with or without a relay session behind it. Keyed with the cookie
 * secret, so nobody else can predict it. */
/* The session a and b hold, whichever of them opened it last, or NONE. */
static uint32_t pair_of(const punch_rendezvous *rv, uint32_t a, uint32_t b)
{
    uint32_t i = pair_session(rv, a, a, b);
    return i != NONE ? i : pair_session(rv, b, a, b);
}

static void session_id_for(const punch_rendezvous *rv, uint32_t a, uint32_t b,
                           const uint8_t txid[PUNCH_MSG_TXID_LEN],
                           uint8_t id[PUNCH_MSG_SESSION_LEN])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, rv->cfg.cookie_secret, sizeof(rv->cfg.cookie_secret),
                            PUNCH_MSG_SESSION_LEN);
    crypto_generichash_update(&st, rv->peers[a].key, PUNCH_KEY_LEN);
    crypto_generichash_update(&st, rv->peers[b].key, PUNCH_KEY_LEN);
    crypto_generichash_update(&st, txid, PUNCH_MSG_TXID_LEN);
    crypto_generichash_final(&st, id, PUNCH_MSG_SESSION_LEN);
}

/* CONNECTs from both sides that cross (both asked at once) share one
 * session when the second comes within this long of the first. */
#define CROSSING_MS 1000

/* Whether a CONNECT from a, whose transaction makes the session id `id`,
 * belongs to the pair's session s: a copy of the CONNECT that made it, any
 * CONNECT of the peer that made it (after its restart it takes the
 * reintroduction that came with its REGISTERED as the answer), or one
 * crossing it from the other side. A later CONNECT from the side that was
 * asked (it restarted, perhaps after a crash that left the asker holding
 * the dead session) needs a new id, or the asker would take its INTRODUCE
 * as news of the session it holds and keep the dead handshake (issue 10). */
static bool same_connect(const session *s, uint32_t a, const uint8_t *id, uint64_t now)
{
    if (memcmp(s->id, id, PUNCH_MSG_SESSION_LEN) == 0 || s->peer[0] == a)
        return true;
    return now < s->opened_ms + CROSSING_MS;
}

/* A new session id between peers a (who asked) and b, with the relay's
 * limits checked. Returns its index or NONE. */
static uint32_t add_session(punch_rendezvous *rv, uint64_t now, uint32_t a, uint32_t b,
                            const uint8_t id[PUNCH_MSG_SESSION_LEN])
{
    if (rv->cfg.no_relay || rv->peers[a].n_started >= rv->cfg.max_sessions_per_peer)
        return NONE;
    if (rv->n_sessions == rv->cfg.max_sessions)
        rv_expire_sessions(rv, now, EXPIRE_BATCH);
    if (rv->n_sessions == rv->cfg.max_sessions) {
        rv->counters.sessions_full++;
        return NONE;
    }
    uint32_t i = rv_alloc_index(&rv->session_free, rv->session_links, &rv->sessions_hwm);
    session *s = &rv->sessions[i];
    const punch_rendezvous_cfg *c = &rv->cfg;
    *s = (session){.used = true, .peer = {a, b}, .gen = {rv->peers[a].gen, rv->peers[b].gen},
                   .opened_ms = now, .last_ms = now,
                   .bytes_q = {.milli = (uint64_t)c->relay_bytes_per_s * 1000, .last_ms = now},
                   .packets_q = {.milli = (uint64_t)c->relay_packets_per_s * 1000,
                                 .last_ms = now}};
    memcpy(s->id, id, PUNCH_MSG_SESSION_LEN);
    rv_htable_insert(&rv->by_id, session_hash(rv, id), i);
    rv_lru_append(&rv->session_lru, rv->session_links, i);
    rv->peers[a].n_started++;
    rv->n_sessions++;
    rv->counters.sessions = rv->n_sessions;
    rv->counters.sessions_opened++;
    return i;
}

/* Whether a CONNECT from a to b (transaction txid) is a copy or a retry
 * of the one that opened the pair's session. */
bool rv_is_connect_copy(const punch_rendezvous *rv, uint32_t a, uint32_t b,
                        const uint8_t txid[PUNCH_MSG_TXID_LEN])
{
    uint8_t id[PUNCH_MSG_SESSION_LEN];
    session_id_for(rv, a, b, txid, id);
    uint32_t old = pair_of(rv, a, b);
    return old != NONE && memcmp(rv->sessions[old].id, id, PUNCH_MSG_SESSION_LEN) == 0;
}

/* A relay session between peers a (who asked) and b. Returns whether one
 * is held for them; id is filled either way. A CONNECT sent again (its
 * answer was lost) or crossing one from the other side gets the session
 * already made, so both peers end up naming the same one; a new start
 * replaces it. */
bool rv_open_session(punch_rendezvous *rv, uint64_t now, uint32_t a, uint32_t b,
                     const uint8_t txid[PUNCH_MSG_TXID_LEN],
                     uint8_t id[PUNCH_MSG_SESSION_LEN])
{
    session_id_for(rv, a, b, txid, id);
    uint32_t old = pair_of(rv, a, b);
    if (old != NONE && same_connect(&rv->sessions[old], a, id, now)) {
        session *s = &rv->sessions[old];
        memcpy(id, s->id, PUNCH_MSG_SESSION_LEN);
        s->last_ms = now > s->last_ms ? now : s->last_ms;
        rv_lru_touch(&rv->session_lru, rv->session_links, old);
        return true;
    }
    if (old != NONE)
        close_session(rv, old, "replaced");
    /* A collision of 64-bit ids is all but impossible; still, an id must
     * name one session: such an introduction goes without relay. */
    if (rv_htable_find(rv, &rv->by_id, session_hash(rv, id), match_session, id) != NONE)
        return false;
    uint32_t i = add_session(rv, now, a, b, id);
    if (i == NONE)
        return false;
    rv->peers[a].last_session = rv->peers[b].last_session = i;
    return true;
}

bool rv_open_remote_session(punch_rendezvous *rv, uint64_t now, uint32_t a,
                            const uint8_t id[PUNCH_MSG_SESSION_LEN],
                            const punch_rendezvous_far *far)
{
    uint32_t i = rv_htable_find(rv, &rv->by_id, session_hash(rv, id), match_session, id);
    if (i != NONE) { /* a copy of the CONNECT, or an INTRO's */
        session *s = &rv->sessions[i];
        if (!s->remote || s->peer[0] != a || !rv_session_peer_ok(rv, s, 0) ||
            memcmp(s->far.key, far->key, PUNCH_KEY_LEN) != 0)
            return false;
        /* From another member: the far peer moved there (its member
         * stopped, it failed over), and the half follows it. */
        s->far = *far;
        s->last_ms = now > s->last_ms ? now : s->last_ms;
        rv_lru_touch(&rv->session_lru, rv->session_links, i);
        rv->peers[a].last_session = i;
        return true;
    }
    i = add_session(rv, now, a, a, id);
    if (i == NONE)
        return false;
    rv->sessions[i].remote = true;
    rv->sessions[i].far = *far;
    rv->peers[a].last_session = i; /* a rebinding of a's is news for far (registry.c) */
    return true;
}

bool rv_half_current(const punch_rendezvous *rv, uint32_t i)
{
    const peer *p = &rv->peers[rv->sessions[i].peer[0]];
    return p->last_session == i &&
           (p->met_kind == MET_NONE ||
            memcmp(p->met_session, rv->sessions[i].id, PUNCH_MSG_SESSION_LEN) == 0);
}

bool rv_session_superseded(const punch_rendezvous *rv, uint32_t a,
                           const uint8_t id[PUNCH_MSG_SESSION_LEN])
{
    uint32_t i = rv_htable_find(rv, &rv->by_id, session_hash(rv, id), match_session, id);
    return i != NONE && rv->sessions[i].remote && rv->sessions[i].peer[0] == a &&
           !rv_half_current(rv, i);
}

/* The session a RELAY names. A relayed flow is a run of datagrams of one
 * session: the one found last is tried first, without the keyed hash
 * (SipHash and the bucket search were 11 % of punchd relaying). */
static uint32_t relay_session(punch_rendezvous *rv, const uint8_t *id)
{
    uint32_t i = rv->last_relayed;
    if (i < rv->sessions_hwm && rv->sessions[i].used && match_session(rv, i, id))
        return i;
    i = rv_htable_find(rv, &rv->by_id, session_hash(rv, id), match_session, id);
    if (i != NONE)
        rv->last_relayed = i;
    return i;
}

/* Session s relayed its first datagram: its peers here learn the rates
 * they may send at (RELAY_RATE, limits.c), once the relay is in use and
 * not with every introduction, so a session that goes direct costs no
 * datagram more. A half across members tells its own peer only. */
static void tell_relay_rates(punch_rendezvous *rv, const session *s)
{
    const peer *a = &rv->peers[s->peer[0]];
    if (s->remote) {
        rv_tell_relay_rate(rv, a, s->far.key, s->id);
        return;
    }
    const peer *b = &rv->peers[s->peer[1]];
    rv_tell_relay_rate(rv, a, b->key, s->id);
    rv_tell_relay_rate(rv, b, a->key, s->id);
}

void rv_handle_relay(punch_rendezvous *rv, uint64_t now, const punch_addr *src,
                     const uint8_t *data, size_t len, const punch_msg *req)
{
    uint32_t i = relay_session(rv, req->session);
    if (i == NONE) {
        rv->counters.relay_unknown++;
        return;
    }
    session *s = &rv->sessions[i];
    /* SPEC.md §4: only between the two registered peers, from and to the
     * endpoints they registered; never to any other address. */
    if (!rv_session_peer_ok(rv, s, 0) || !rv_session_peer_ok(rv, s, 1) ||
        rv_live_peer(rv, s->peer[0], now) == NONE || rv_live_peer(rv, s->peer[1], now) == NONE) {
        close_session(rv, i, "peer gone");
        rv->counters.relay_unknown++;
        return;
    }
    int from;
    if (punch_addr_equal(src, &rv->peers[s->peer[0]].pub))
        from = 0;
    else if (punch_addr_equal(src, s->remote ? &s->far.hop : &rv->peers[s->peer[1]].pub))
        from = 1;
    else {
        rv->counters.relay_wrong_source++;
        return;
    }
    const punch_rendezvous_cfg *c = &rv->cfg;
    uint64_t total = s->bytes[0] + s->bytes[1];
    if (total + len > c->relay_max_bytes) {
        rv->counters.relay_over_quota++;
        s->dropped++;
        close_session(rv, i, "byte cap");
        return;
    }
    /* Packets first, so a datagram refused for its bytes still costs a packet token. */
    if (!rv_bucket_take(&s->packets_q, c->relay_packets_per_s, c->relay_packets_per_s, 1, now) ||
        !rv_bucket_take(&s->bytes_q, c->relay_bytes_per_s, c->relay_bytes_per_s, len, now)) {
        rv->counters.relay_over_quota++;
        s->dropped++;
        return;
    }
    /* Across members: to the other member (limited there, at its peer), or
     * from it (its peer's source was charged there). */
    bool to_hop = s->remote && from == 0;
    peer *to = to_hop ? NULL : &rv->peers[s->peer[1 - from]];
    if (!rv_relay_allowed(rv, now, s->remote && from == 1 ? NULL : src, to, len)) {
        s->dropped++;
        return;
    }
    txslot *t = rv_tx_reserve(rv);
    if (!t)
        return;
    const peer *via = to_hop ? &rv->peers[s->peer[0]] : to; /* its socket */
    t->ref = data; /* relayed as it came, with no copy (rendezvous.h) */
    t->out.dst = to_hop ? s->far.hop : to->pub;
    t->out.local = via->local ? rv->locals[via->local - 1] : (punch_addr){0};
    if (to_hop && s->far.via.family != PUNCH_AF_NONE)
        t->out.local = s->far.via; /* the source the other member takes */
    t->out.len = len;
    rv_tx_commit(rv);
    s->bytes[from] += len;
    s->packets[from]++;
    s->last_ms = now;
    rv_lru_touch(&rv->session_lru, rv->session_links, i);
    rv->counters.relayed++;
    rv->counters.relayed_bytes += len;
    if (!s->opened) {
        s->opened = true;
        tell_relay_rates(rv, s);
        punch_rendezvous_event *ev = rv_event_reserve(rv, PUNCH_RV_EVENT_RELAY_OPENED);
        if (ev) {
            rv_peer_info(&rv->peers[s->peer[0]], &ev->peer[0]);
            rv_peer_info(&rv->peers[s->peer[1]], &ev->peer[1]);
            memcpy(ev->session, s->id, PUNCH_MSG_SESSION_LEN);
            ev->relay = true;
        }
    }
}
