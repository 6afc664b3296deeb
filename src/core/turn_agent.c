/* SPDX-License-Identifier: MIT */
/*
 * The agent's side of a standard TURN server (technique turn, punch --turn,
 * issue 15): turn.c speaks TURN; this file starts it when cfg.turn_server
 * is set, sends its control messages from the main socket, hands it the
 * TURN server's datagrams, runs its timer, and tells the relayed address
 * (PUNCH_EVENT_TURN) or why there is none (an ATTEMPT of technique turn).
 *
 * The relayed address reaches peers through the rendezvous server: a
 * TURN_ADDR to it after every registration (until its receipt), which it
 * passes on beside its INTRODUCEs (src/server/turn_addr.c). Each side then
 * has TURN candidates: with an allocation of its own, through it (wrapped
 * as a Send indication, ChannelData once the channel is bound; TURN_SOCKET)
 * to the peer's relayed address and to its public endpoint, each IP given
 * a permission and a channel; without one, straight to the peer's relayed
 * address. They rank below every direct path and punchd's relay
 * (technique.c), so hole punching goes on beside them and the session
 * moves to a direct path the moment one is proven.
 */
#include "core/agent_internal.h"

#include <stdlib.h>
#include <string.h>

static void turn_flush(punch_agent *a)
{
    uint8_t buf[PUNCH_TURN_MSG_MAX];
    size_t len;
    while (punch_turn_poll_transmit(a->turn, buf, sizeof(buf), &len) == 1) {
        uint8_t *out = push_tx(a, MAIN_SOCKET, &a->turn->cfg.server, 0, len);
        if (out)
            memcpy(out, buf, len);
    }
}

/* Tell what changed: the allocation made anew (an ATTEMPT saying why), a
 * (new) relayed address, or the allocation failing. */
static void turn_tell(punch_agent *a)
{
    const punch_turn *t = a->turn;
    if (t->reallocations != a->turn_reallocs_told) {
        a->turn_reallocs_told = t->reallocations;
        candidate tried = {.addr = t->cfg.server, .technique = PUNCH_TECH_TURN};
        tell_attempt(a, -1, &tried, "%s", t->why);
    }
    if (t->state == PUNCH_TURN_ALLOCATED && !punch_addr_equal(&t->relayed, &a->turn_told)) {
        a->turn_told = t->relayed;
        ev *e = push_event(a, PUNCH_EVENT_TURN, -1);
        e->e.turn = (punch_event_turn){.relayed = t->relayed, .mapped = t->mapped,
                                       .server = t->cfg.server};
    } else if (t->state == PUNCH_TURN_FAILED && !a->turn_failed_told) {
        a->turn_failed_told = true;
        candidate tried = {.addr = t->cfg.server, .technique = PUNCH_TECH_TURN};
        tell_attempt(a, -1, &tried, "%s", t->why);
    }
}

int turn_agent_start(punch_agent *a, uint64_t now)
{
    if (a->cfg.turn_server.family == PUNCH_AF_NONE)
        return 0;
    punch_turn_cfg tc = {.server = a->cfg.turn_server, .username = a->cfg.turn_username,
                         .password = a->cfg.turn_password, .random = a->cfg.random,
                         .random_ctx = a->cfg.random_ctx, .reliable = a->cfg.turn_stream};
    a->cfg.turn_username = a->cfg.turn_password = NULL; /* the caller's: copied */
    if (!(a->turn = calloc(1, sizeof(*a->turn))))
        return PUNCH_ERR_NOMEM;
    int rc = punch_turn_init(a->turn, &tc, now);
    if (rc == 0)
        turn_flush(a);
    return rc;
}

void turn_agent_free(punch_agent *a)
{
    if (!a->turn)
        return;
    volatile uint8_t *p = (volatile uint8_t *)a->turn; /* the password and its key */
    for (size_t i = 0; i < sizeof(*a->turn); i++)
        p[i] = 0;
    free(a->turn);
    a->turn = NULL;
}

/* A peer's datagram through our allocation, from `from` as the TURN
 * server saw it: a handshake or transport message, on TURN_SOCKET. */
static void on_relayed(punch_agent *a, uint64_t now, const punch_addr *from,
                       const uint8_t *data, size_t len)
{
    punch_msg m;
    if (punch_msg_decode(data, len, &m) != 0) {
        a->dropped++;
        return;
    }
    a->rx_sock = TURN_SOCKET;
    on_peer_msg(a, now, from, &m);
    a->rx_sock = MAIN_SOCKET;
    /* A peer's authenticated datagram from an address learned so (its NAT
     * mapped it anew for the TURN server): ours go back there, on a
     * channel of its own. */
    for (int i = 0; i < MAX_PEERS; i++) {
        int ci = a->peers[i].used ? find_candidate(&a->peers[i], from, TURN_SOCKET, false) : -1;
        if (ci >= 0 && a->peers[i].cand[ci].spoke)
            punch_turn_permit(a->turn, now, from);
    }
}

bool turn_agent_on_datagram(punch_agent *a, uint64_t now, const punch_addr *src,
                            const uint8_t *data, size_t len)
{
    if (!a->turn || !punch_addr_equal(src, &a->turn->cfg.server) ||
        !punch_turn_is_turn(data, len))
        return false;
    punch_addr from;
    const uint8_t *payload;
    size_t payload_len;
    uint64_t dropped = a->turn->dropped;
    if (punch_turn_handle(a->turn, now, data, len, &from, &payload, &payload_len) == 1)
        on_relayed(a, now, &from, payload, payload_len);
    a->dropped += a->turn->dropped - dropped;
    turn_flush(a);
    turn_tell(a);
    return true;
}

void punch_agent_turn_down(punch_agent *a, uint64_t now, const char *why)
{
    (void)now;
    if (!a || !a->turn)
        return;
    punch_turn_give_up(a->turn, why);
    turn_tell(a);
}

uint64_t turn_deadline(const punch_agent *a, int id)
{
    (void)id;
    return a->turn ? punch_turn_next_timeout(a->turn) : UINT64_MAX;
}

void turn_timeout(punch_agent *a, uint64_t now, int id)
{
    (void)id;
    punch_turn_handle_timeout(a->turn, now);
    turn_flush(a);
    turn_tell(a);
}

void turn_send(punch_agent *a, const candidate *c, const punch_msg *inner)
{
    uint8_t buf[DGRAM_MAX], out[DGRAM_MAX];
    size_t len, out_len;
    if (!a->turn || punch_msg_encode(inner, buf, sizeof(buf), &len) != 0)
        return;
    int rc = punch_turn_wrap(a->turn, &c->addr, buf, len, out, sizeof(out), &out_len);
    uint8_t *slot = rc == 0 ? push_tx(a, MAIN_SOCKET, &a->turn->cfg.server, 0, out_len) : NULL;
    if (slot)
        memcpy(slot, out, out_len);
}

void turn_path_quiet(punch_agent *a, uint64_t now, const candidate *c)
{
    if (!a->turn || !is_turn_socket(c->sock))
        return;
    punch_turn_refresh_now(a->turn, now);
    turn_flush(a);
}

/* A TURN candidate through our allocation to addr, its IP permitted. */
static bool add_through(punch_agent *a, uint64_t now, peer *p, const punch_addr *addr)
{
    size_t before = p->n_cand;
    if (addr->family != a->turn->relayed.family)
        return false;
    int rc = punch_turn_permit(a->turn, now, addr);
    if (rc == PUNCH_ERR_LIMIT) {
        candidate tried = {.addr = *addr, .technique = PUNCH_TECH_TURN};
        tell_attempt(a, (int)(p - a->peers), &tried,
                     "no TURN slot free: all %d in use or in their 5 min quarantine",
                     PUNCH_TURN_MAX_PEERS);
    }
    if (rc != 0)
        return false;
    add_candidate_on(p, TURN_SOCKET, addr, PUNCH_TECH_TURN, now);
    return p->n_cand > before;
}

size_t turn_add_candidates(punch_agent *a, uint64_t now, peer *p, const punch_addr *public_addr)
{
    size_t n = 0;
    if (a->turn && a->turn->state == PUNCH_TURN_ALLOCATED) {
        if (public_addr && public_addr->family != PUNCH_AF_NONE)
            n += add_through(a, now, p, public_addr);
        if (p->turn_relayed.family != PUNCH_AF_NONE)
            n += add_through(a, now, p, &p->turn_relayed);
        turn_flush(a);
    } else if (p->turn_relayed.family != PUNCH_AF_NONE && family_usable(a, p->turn_relayed.family)) {
        size_t before = p->n_cand;
        add_candidate(p, &p->turn_relayed, PUNCH_TECH_TURN, now);
        n += p->n_cand > before;
    }
    return n;
}

/* Whether a peer other than id still goes through our allocation to addr. */
static bool through_for_another(const punch_agent *a, int id, const punch_addr *addr)
{
    for (int i = 0; i < MAX_PEERS; i++)
        if (i != id && a->peers[i].used && find_candidate(&a->peers[i], addr, TURN_SOCKET, false) >= 0)
            return true;
    return false;
}

void turn_forget_peer(punch_agent *a, int id)
{
    const peer *p = &a->peers[id];
    if (!a->turn || !p->used)
        return;
    for (size_t ci = 0; ci < p->n_cand; ci++) {
        const candidate *c = &p->cand[ci];
        if (is_turn_socket(c->sock) && !through_for_another(a, id, &c->addr))
            punch_turn_release(a->turn, &c->addr);
    }
}

/* ---- our relayed address to the server (TURN_ADDR) ---- */

/* Whether the relayed address is to be told: allocated, registered, not
 * yet settled (taken, or unanswered) with this registration, and not to a
 * server that never took it (asked once, not at every keepalive). */
static bool offer_due(const punch_agent *a)
{
    const turn_offer *o = &a->offer;
    if (!a->turn || a->turn->state != PUNCH_TURN_ALLOCATED || a->reg.state != REG_DONE)
        return false;
    bool same = punch_addr_equal(&o->sent, &a->turn->relayed);
    return !(same && punch_addr_equal(&o->gave_up_at, &a->cfg.server)) &&
           (o->settled_in != a->reg.done || !same);
}

uint64_t turn_offer_deadline(const punch_agent *a, int id)
{
    (void)id;
    return offer_due(a) ? a->offer.next_ms : UINT64_MAX;
}

void turn_offer_timeout(punch_agent *a, uint64_t now, int id)
{
    (void)id;
    turn_offer *o = &a->offer;
    if (o->txn_in != a->reg.done || !punch_addr_equal(&o->sent, &a->turn->relayed)) {
        /* A new transaction: registered since, or another relayed address. */
        new_txid(a, o->txid);
        o->sent = a->turn->relayed;
        o->txn_in = a->reg.done;
        o->tries = 0;
    }
    if (o->tries == SERVER_TRIES) {
        /* An older punchd drops TURN_ADDR (an unknown type): peers reach
         * us as before, without the TURN server. */
        o->settled_in = a->reg.done;
        o->gave_up_at = a->cfg.server;
        candidate tried = {.addr = a->cfg.server, .technique = PUNCH_TECH_TURN};
        tell_attempt(a, -1, &tried, "the server took no TURN_ADDR in %u tries: peers will not "
                     "learn our relayed address (an older punchd?)", SERVER_TRIES);
        return;
    }
    punch_msg m = {.type = PUNCH_MSG_TURN_ADDR, .relayed = o->sent};
    memcpy(m.txid, o->txid, PUNCH_MSG_TXID_LEN);
    memcpy(m.key, a->id.public_key, PUNCH_KEY_BYTES);
    send_msg(a, &a->cfg.server, &m);
    o->next_ms = now + server_rto(a, o->tries);
    o->tries++;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

/* The server's receipt of our TURN_ADDR: told as an offered TURN event. */
static void offer_taken(punch_agent *a, const punch_msg *m)
{
    turn_offer *o = &a->offer;
    if (memcmp(m->txid, o->txid, PUNCH_MSG_TXID_LEN) != 0 || !punch_addr_equal(&m->relayed, &o->sent)) {
        a->dropped++; /* a stale receipt */
        return;
    }
    if (o->settled_in == o->txn_in)
        return; /* a copy */
    o->settled_in = o->txn_in;
    if (punch_addr_equal(&o->told, &o->sent))
        return; /* taken again after a registration: told before */
    o->told = o->sent;
    ev *e = push_event(a, PUNCH_EVENT_TURN, -1);
    e->e.turn = (punch_event_turn){.relayed = a->turn->relayed, .mapped = a->turn->mapped,
                                   .server = a->turn->cfg.server, .offered = true};
}

void turn_on_addr(punch_agent *a, uint64_t now, const punch_msg *m)
{
    if (all_zero(m->session, PUNCH_MSG_SESSION_LEN)) {
        if (a->turn && memcmp(m->key, a->id.public_key, PUNCH_KEY_BYTES) == 0)
            offer_taken(a, m);
        else
            a->dropped++;
        return;
    }
    int id = find_peer_by_session(a, m->session);
    if (id < 0 || memcmp(a->peers[id].key, m->key, PUNCH_KEY_BYTES) != 0 ||
        (a->cfg.flags & PUNCH_AGENT_NO_RELAY)) {
        a->dropped++; /* its INTRODUCE lost (it comes again with the next), or not ours */
        return;
    }
    peer *p = &a->peers[id];
    p->turn_relayed = m->relayed;
    if (turn_add_candidates(a, now, p, NULL) > 0)
        start_probing(a, now, id);
}
