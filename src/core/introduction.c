/* SPDX-License-Identifier: MIT */
/*
 * Introduction (draft §3.3.1 step 2): CONNECT(name) -> the server sends
 * INTRODUCE to both sides at once: the other's key, public and private
 * endpoints, and a relay session. The side that was asked is the Noise
 * initiator. A connected peer may introduce two of its peers too (any
 * party both can reach will do, §3.3.1), when the application allows it.
 */
#include <string.h>

#include "core/agent_internal.h"

/* The next CONNECT: while we asked and have no session (or asked again
 * after the path died), and only once the server knows what our NAT does
 * (step 1, discovery), or with a token's REGISTER (token.c). */
uint64_t connect_deadline(const punch_agent *a, int id)
{
    const peer *p = &a->peers[id];
    if (!p->connect.asked || (p->ready && !p->connect.reconnect) || !may_connect(a))
        return UINT64_MAX;
    return p->connect.next_ms;
}

void connect_timeout(punch_agent *a, uint64_t now, int id)
{
    peer *p = &a->peers[id];
    if (p->connect.tries == SERVER_TRIES) {
        if (p->introduced) {
            p->connect.next_ms = UINT64_MAX; /* probing and the relay go on */
            p->connect.reconnect = false;
            return;
        }
        ev *e = push_event(a, PUNCH_EVENT_CLOSED, id);
        strcpy(e->e.closed.why, "the server did not introduce us");
        forget_peer(a, id);
        return;
    }
    punch_msg m = {.type = PUNCH_MSG_CONNECT};
    memcpy(m.txid, p->connect.txid, PUNCH_MSG_TXID_LEN);
    memcpy(m.key, a->id.public_key, PUNCH_KEY_BYTES);
    if (p->pinned)
        memcpy(m.peer_key, p->key, PUNCH_KEY_BYTES);
    memcpy(m.name, p->name, sizeof(m.name));
    for (unsigned k = 0; k < server_copies(p->connect.tries); k++)
        send_msg(a, &a->cfg.server, &m);
    p->connect.sent_in = a->reg.done;
    p->connect.next_ms = now + server_rto(a, p->connect.tries);
    p->connect.tries++;
}

/* The server told us again of a session we have: a repeat (a CONNECT
 * copy), or news (the peer came back from a new endpoint). New endpoints
 * are probed at once; known ones keep their state. */
static void reintroduced(punch_agent *a, uint64_t now, int id, const punch_msg *m)
{
    peer *p = &a->peers[id];
    size_t before = p->n_cand;
    p->connect.reconnect = false;
    if (m->rtt_ms)
        p->guard.peer_rtt_ms = m->rtt_ms;
    add_intro_candidates(a, now, p, m);
    if (p->n_cand > before) {
        p->moved_ms = now;
        p->guard.ms = probe_guard_ms(a, p);
        p->guard.from_ms = now;
        start_probing(a, now, id);
    }
}

static void take_introduction(punch_agent *a, uint64_t now, int id, const punch_msg *m,
                              uint32_t my_rtt_ms)
{
    peer *p = &a->peers[id];
    p->introduced = true;
    p->initiator = (m->flags & PUNCH_INTRO_INITIATOR) == 0; /* the side asked (step 2) */
    p->guard.peer_rtt_ms = m->rtt_ms;
    p->guard.my_rtt_ms = my_rtt_ms;
    p->guard.ms = probe_guard_ms(a, p);
    p->guard.from_ms = now;
    memcpy(p->name, m->name, sizeof(p->name));
    memcpy(p->key, m->key, PUNCH_KEY_BYTES);
    memcpy(p->session, m->session, PUNCH_MSG_SESSION_LEN);
    add_intro_candidates(a, now, p, m);
    birthday_plan(a, now, id, m);
    spend_again(a, now, p);
    ev *e = push_event(a, PUNCH_EVENT_INTRODUCED, id);
    e->e.introduced.public_addr = m->public_addr;
    if (p->n_cand == 0 || make_msg1(a, p) != 0) {
        e = push_event(a, PUNCH_EVENT_CLOSED, id);
        strcpy(e->e.closed.why, p->n_cand ? "handshake failed to start" : "no way to reach the peer");
        forget_peer(a, id);
    }
}

/* Whether p held the session sid before its current one. The server
 * derives a session's id from the CONNECT that made it, so this catches
 * a replayed INTRODUCE and the INTRODUCE of a replayed CONNECT alike: an
 * on-path copy must not tear down the session in use (docs/security.md). */
static bool held_before(const peer *p, const uint8_t *sid)
{
    for (unsigned i = 0; i < p->retired.n; i++)
        if (memcmp(p->retired.id[i], sid, PUNCH_MSG_SESSION_LEN) == 0)
            return true;
    return false;
}

/* Slot id (or a new one when id < 0) for a new session, remembering the
 * session it held among the retired ones (newest first). */
static int renew_for_new_session(punch_agent *a, uint64_t now, int id)
{
    retired_sessions kept = {0};
    if (id >= 0) {
        kept = a->peers[id].retired;
        memmove(kept.id[1], kept.id[0], (RETIRED_SESSIONS - 1) * PUNCH_MSG_SESSION_LEN);
        memcpy(kept.id[0], a->peers[id].session, PUNCH_MSG_SESSION_LEN);
        kept.n += kept.n < RETIRED_SESSIONS;
    }
    id = renew_peer(a, now, id);
    if (id >= 0)
        a->peers[id].retired = kept;
    return id;
}

/* The peer an INTRODUCE that names us the asker is the answer for: the
 * one whose CONNECT has its txid or, failing that, the one we are asking
 * for by that name. The server introduces a peer that registers from a new
 * endpoint to the one it last asked for, in that session (a
 * reintroduction, with a txid of its own): after a restart with a token,
 * that comes with the REGISTERED, while our CONNECT, when it overtook the
 * REGISTER, was refused and must go again (a round trip more). -1: none. */
static int asked_for(const punch_agent *a, const punch_msg *m)
{
    int by_name = -1;
    for (int i = 0; i < MAX_PEERS; i++) {
        const peer *p = &a->peers[i];
        if (!p->used || p->introduced)
            continue;
        if (memcmp(p->connect.txid, m->txid, PUNCH_MSG_TXID_LEN) == 0)
            return i;
        if (by_name < 0 && p->connect.asked &&
            strncmp(p->name, m->name, sizeof(p->name)) == 0)
            by_name = i;
    }
    return by_name;
}

/* The peer, already in a session (a reintroduction of the old one came
 * first, e.g. after a restart), whose own CONNECT this INTRODUCE answers
 * with a new session: that one replaces it. -1: none. */
static int answered_anew(const punch_agent *a, const punch_msg *m)
{
    for (int i = 0; i < MAX_PEERS; i++) {
        const peer *p = &a->peers[i];
        if (p->used && p->introduced && p->connect.asked &&
            memcmp(p->connect.txid, m->txid, PUNCH_MSG_TXID_LEN) == 0 &&
            !held_before(p, m->session))
            return i;
    }
    return -1;
}

void on_introduce(punch_agent *a, uint64_t now, const punch_msg *m)
{
    int id = find_peer_by_session(a, m->session);
    if (id >= 0) {
        reintroduced(a, now, id, m);
        return;
    }
    if (m->flags & PUNCH_INTRO_INITIATOR) {
        if ((id = asked_for(a, m)) < 0 && (id = answered_anew(a, m)) < 0)
            return;
        if (a->peers[id].pinned && memcmp(a->peers[id].key, m->key, PUNCH_KEY_BYTES) != 0) {
            ev *e = push_event(a, PUNCH_EVENT_CLOSED, id);
            strcpy(e->e.closed.why, "the server introduced another key than the pinned one");
            forget_peer(a, id);
            return;
        }
        if (a->peers[id].introduced && (id = renew_for_new_session(a, now, id)) < 0)
            return;
    } else {
        /* One entry per peer key: a new introduction (the other side asked
         * again, e.g. its answer from the server was lost, or it restarted)
         * replaces the old session, in the same slot; one naming a session
         * the slot held before is a replay and changes nothing. */
        for (int i = 0; i < MAX_PEERS && id < 0; i++)
            if (a->peers[i].used && a->peers[i].introduced &&
                memcmp(a->peers[i].key, m->key, PUNCH_KEY_BYTES) == 0)
                id = i;
        if (id >= 0 && held_before(&a->peers[id], m->session)) {
            a->dropped++;
            return;
        }
        if ((id = renew_for_new_session(a, now, id)) < 0) {
            a->dropped++;
            wait_for_room(a, now, m);
            return;
        }
    }
    take_introduction(a, now, id, m, a->server_rtt_ms);
}

/* A peer introduces us to another (draft §3.3.1: any party both can reach
 * will do), over our encrypted session with it: taken only when the
 * application allows it (PUNCH_AGENT_PEER_INTRODUCTIONS), never with a
 * relay (the server knows nothing of this session), and never over a
 * working session with the same key. */
void on_peer_introduce(punch_agent *a, uint64_t now, int from, const uint8_t *msg, size_t len)
{
    punch_msg m;
    if (!(a->cfg.flags & PUNCH_AGENT_PEER_INTRODUCTIONS) || punch_msg_decode(msg, len, &m) != 0 ||
        m.type != PUNCH_MSG_INTRODUCE || memcmp(m.key, a->id.public_key, PUNCH_KEY_BYTES) == 0 ||
        memcmp(m.key, a->peers[from].key, PUNCH_KEY_BYTES) == 0) {
        a->dropped++;
        return;
    }
    m.flags &= (uint8_t)~PUNCH_INTRO_RELAY;
    int id = find_peer_by_session(a, m.session);
    if (id >= 0) {
        reintroduced(a, now, id, &m);
        return;
    }
    for (int i = 0; i < MAX_PEERS && id < 0; i++)
        if (a->peers[i].used && memcmp(a->peers[i].key, m.key, PUNCH_KEY_BYTES) == 0)
            id = i;
    if (id >= 0 && (a->peers[id].ready || !a->peers[id].introduced)) {
        a->dropped++; /* connected already, or being connected by the server */
        return;
    }
    if ((id = renew_peer(a, now, id)) < 0) {
        a->dropped++;
        return;
    }
    const peer *via = &a->peers[from];
    take_introduction(a, now, id, &m, via->path >= 0 ? via->cand[via->path].rtt_us / 1000 : 0);
}

/* The endpoint of p to give a third party: where p's packets come from
 * when the path is a public one, else the public endpoint we were told,
 * else any address of p's we know; NULL when there is none. */
static const punch_addr *endpoint_to_share(const peer *p)
{
    static const punch_technique order[] = {PUNCH_TECH_HOLE_PUNCH, PUNCH_TECH_HAIRPIN,
                                            PUNCH_TECH_PEER_REFLEXIVE, PUNCH_TECH_PRIVATE};
    if (p->path >= 0 && (p->cand[p->path].technique == PUNCH_TECH_HOLE_PUNCH ||
                         p->cand[p->path].technique == PUNCH_TECH_PEER_REFLEXIVE))
        return &p->cand[p->path].addr;
    for (size_t k = 0; k < sizeof(order) / sizeof(order[0]); k++)
        for (size_t i = 0; i < p->n_cand; i++)
            if (p->cand[i].technique == order[k])
                return &p->cand[i].addr;
    return NULL;
}

/* Tell `to` of `about` in the session sid, over to's path. */
int send_introduction(punch_agent *a, uint64_t now, int to, int about, const uint8_t *sid,
                      uint8_t flags)
{
    peer *pt = &a->peers[to];
    const peer *pa = &a->peers[about];
    const punch_addr *pub = endpoint_to_share(pa);
    if (!pub)
        return PUNCH_ERR_LIMIT;
    punch_msg m = {.type = PUNCH_MSG_INTRODUCE, .public_addr = *pub, .flags = flags};
    new_txid(a, m.txid);
    memcpy(m.session, sid, PUNCH_MSG_SESSION_LEN);
    memcpy(m.key, pa->key, PUNCH_KEY_BYTES);
    memcpy(m.name, pa->name, sizeof(m.name));
    for (size_t i = 0; i < pa->n_cand && m.n_private < PUNCH_MSG_MAX_PRIVATE; i++)
        if (pa->cand[i].technique == PUNCH_TECH_PRIVATE ||
            (family_private_technique(&pa->cand[i].addr) == PUNCH_TECH_HOLE_PUNCH &&
             !punch_addr_equal(&pa->cand[i].addr, pub))) /* the other family's (issue 16) */
            m.private_addr[m.n_private++] = pa->cand[i].addr;
    uint32_t rtt = pa->path >= 0 ? pa->cand[pa->path].rtt_us / 1000 : 0;
    m.rtt_ms = (uint16_t)(rtt < UINT16_MAX ? rtt : UINT16_MAX);
    uint8_t inner[DGRAM_MAX] = {INNER_INTRODUCE};
    size_t len;
    int rc = punch_msg_encode(&m, inner + 1, sizeof(inner) - 1, &len);
    if (rc == 0)
        rc = send_transport(a, now, pt, &pt->cand[pt->path], inner, len + 1);
    return rc;
}
