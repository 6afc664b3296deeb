/* SPDX-License-Identifier: MIT */
/*
 * Transport: datagrams under the session's keys (crypto/transport.h):
 * application data, PING/PONG, CLOSE, and the messages peers send each
 * other over the session (introductions, TCP offers).
 */
#include <string.h>

#include "core/agent_internal.h"

/* The largest application datagram sent or delivered (punch.h). */
size_t max_datagram(const punch_agent *a)
{
    return (a->cfg.flags & PUNCH_AGENT_LARGE_DATAGRAMS) ? PUNCH_MAX_DATAGRAM_LARGE
                                                        : PUNCH_MAX_DATAGRAM;
}

/* A DATA message on a direct candidate is the 2-byte message header, then
 * the transport datagram: sealed straight into its transmit slot, the
 * copy every datagram sent would otherwise cost. The queue must have room.
 * Returns the datagram (in the slot) or NULL with *rc set, and nothing
 * queued. */
#define DIRECT_HEADER 2
static const uint8_t *seal_direct(punch_agent *a, uint64_t now, peer *p, const candidate *c,
                                  const uint8_t *inner, size_t len, size_t *dlen, int *rc)
{
    uint8_t *slot = push_tx(a, c->sock, &c->addr, 0, DGRAM_MAX);
    if (!slot) {
        *rc = PUNCH_ERR_NOBUFS;
        return NULL;
    }
    slot[0] = PUNCH_MSG_MAGIC;
    slot[1] = PUNCH_MSG_DATA;
    *rc = punch_transport_encrypt(&p->t, now, inner, len, slot + DIRECT_HEADER,
                                  DGRAM_MAX - DIRECT_HEADER, dlen);
    tx *t = &a->txq[(a->tx_head + a->tx_count - 1) % TXQ_LEN];
    if (*rc != 0) {
        a->tx_count--; /* nothing goes */
        return NULL;
    }
    t->len = (uint16_t)(*dlen + DIRECT_HEADER);
    return slot + DIRECT_HEADER;
}

int send_transport(punch_agent *a, uint64_t now, peer *p, const candidate *c, const uint8_t *inner,
                   size_t len)
{
    uint8_t buf[DGRAM_MAX];
    const uint8_t *dgram = buf;
    size_t dlen;
    int rc;
    /* Not with a full queue: push_tx would drop the oldest before the
     * sealing could still fail. */
    if (!wrapped(c) && a->tx_count < TXQ_LEN) {
        if (!(dgram = seal_direct(a, now, p, c, inner, len, &dlen, &rc)))
            return rc;
    } else {
        if ((rc = punch_transport_encrypt(&p->t, now, inner, len, buf, sizeof(buf), &dlen)) != 0)
            return rc;
        send_on(a, p, c, PUNCH_MSG_DATA, dgram, dlen);
    }
    if (p->unconfirmed && len && inner[0] == INNER_DATA && p->n_early < EARLY_MAX &&
        dlen <= sizeof(p->early[0])) {
        memcpy(p->early[p->n_early], dgram, dlen);
        p->early_len[p->n_early++] = (uint16_t)dlen;
    }
    return 0;
}

/* The initiator holds the keys now: what it may have missed, once more. */
static void confirm_keys(punch_agent *a, peer *p)
{
    if (p->path >= 0)
        for (unsigned i = 0; i < p->n_early; i++)
            send_on(a, p, &p->cand[p->path], PUNCH_MSG_DATA, p->early[i], p->early_len[i]);
    p->unconfirmed = false;
    p->n_early = 0;
}

void send_ping(punch_agent *a, uint64_t now, peer *p, candidate *c)
{
    uint8_t ping[PING_LEN] = {INNER_PING};
    /* The one before stays answerable: two PINGs often go in one
     * millisecond (a probe's beside a handshake's), and the first may be
     * the one that gets through. */
    memcpy(c->prev_ping_nonce, c->ping_nonce, sizeof(c->ping_nonce));
    c->prev_ping_sent_ms = c->ping_sent_ms;
    random_bytes(a, c->ping_nonce, sizeof(c->ping_nonce));
    memcpy(ping + 1, c->ping_nonce, 8);
    c->ping_sent_ms = now;
    send_transport(a, now, p, c, ping, sizeof(ping));
}

/* When the PING a PONG's nonce answers went (0: none of ours, or
 * answered already): one answer each, so the round trip is that PING's. */
static uint64_t pong_matches(candidate *c, const uint8_t *nonce)
{
    uint64_t sent = 0;
    if (c->ping_sent_ms && memcmp(nonce, c->ping_nonce, sizeof(c->ping_nonce)) == 0) {
        sent = c->ping_sent_ms;
        c->ping_sent_ms = c->prev_ping_sent_ms = 0;
    } else if (c->prev_ping_sent_ms &&
               memcmp(nonce, c->prev_ping_nonce, sizeof(c->prev_ping_nonce)) == 0) {
        sent = c->prev_ping_sent_ms;
        c->prev_ping_sent_ms = 0;
    }
    return sent;
}

static void on_transport(punch_agent *a, uint64_t now, int id, int ci, const uint8_t *inner,
                         size_t len)
{
    peer *p = &a->peers[id];
    candidate *c = &p->cand[ci];
    if (ci == p->path) {
        p->keepalive.last_rx_ms = now;
        p->keepalive.missed = 0;
    }
    if (len == PING_LEN && inner[0] == INNER_PING) {
        family_follow(a, now, id, ci);
        uint8_t pong[PING_LEN];
        memcpy(pong, inner, PING_LEN);
        pong[0] = INNER_PONG;
        send_transport(a, now, p, c, pong, sizeof(pong));
        /* A PING (fresh and authenticated) proves the way in, and the
         * answer goes out through the NAT entry it came in by: take it at
         * once, as for a message 1 (hear). */
        if (c->technique != PUNCH_TECH_PEER_REFLEXIVE)
            hear(a, now, id, ci);
        /* Ask for the way back too. */
        if (!c->validated && now - c->ping_sent_ms >= PROBE_FAST_MS)
            send_ping(a, now, p, c);
    } else if (len == PING_LEN && inner[0] == INNER_PONG) {
        uint64_t sent = pong_matches(c, inner + 1);
        if (sent) {
            validate_by_pong(a, now, id, ci, sent);
            pong_heard(a, now, id, ci, sent);
        }
    } else if (len >= 1 && inner[0] == INNER_DATA) {
        ev *e = push_event(a, PUNCH_EVENT_DATA, id);
        size_t max = max_datagram(a);
        e->e.data.len = len - 1 < max ? len - 1 : max;
        if (e->room != inner) /* else decrypted in place (on_data) */
            memcpy(e->room + 1, inner + 1, e->e.data.len);
    } else if (len >= 1 && inner[0] == INNER_INTRODUCE) {
        on_peer_introduce(a, now, id, inner + 1, len - 1);
    } else if (len >= 1 && inner[0] == INNER_TCP) {
        on_tcp_offer(a, id, inner + 1, len - 1);
    } else if (len >= 1 && inner[0] == INNER_CLOSE) {
        ev *e = push_event(a, PUNCH_EVENT_CLOSED, id);
        strcpy(e->e.closed.why, "peer closed");
        forget_peer(a, id);
    }
}

/* Where a datagram of len bytes is decrypted: straight into the room of
 * the event the agent pushes next (push_event keeps that slot even when
 * the queue is full), where its DATA event wants the bytes, when they fit;
 * else into stack. */
static uint8_t *plaintext_room(punch_agent *a, size_t len, uint8_t *stack)
{
    if (len < PUNCH_TRANSPORT_OVERHEAD || len - PUNCH_TRANSPORT_OVERHEAD > EV_ROOM)
        return stack;
    return a->evq[(a->ev_head + a->ev_count) % EVQ_LEN].room;
}

void on_data(punch_agent *a, uint64_t now, const punch_addr *src, bool via_relay,
             const uint8_t *session, const uint8_t *dgram, size_t len)
{
    uint32_t index;
    int id;
    if (punch_transport_peek_index(dgram, len, &index) != 0 ||
        (id = find_peer_by_index(a, index)) < 0) {
        a->dropped++;
        return;
    }
    peer *p = &a->peers[id];
    if (via_relay && memcmp(session, p->session, PUNCH_MSG_SESSION_LEN) != 0) {
        a->dropped++;
        return;
    }
    uint8_t stack[DGRAM_MAX], *inner = plaintext_room(a, len, stack);
    size_t ilen;
    punch_transport *t = p->t.local_index == index ? &p->t : &p->prev;
    if (punch_transport_decrypt(t, now, dgram, len, inner, inner == stack ? sizeof(stack) : EV_ROOM,
                                &ilen) != 0) {
        a->dropped++;
        return;
    }
    if (inner != stack && (ilen == 0 || inner[0] != INNER_DATA)) {
        memcpy(stack, inner, ilen); /* not data: the room is for events */
        inner = stack;
    }
    if (t == &p->t && p->unconfirmed)
        confirm_keys(a, p);
    p->keepalive.heard_ms = now;
    /* Authenticated: an address we did not know is the peer's too (its
     * NAT may have given it a new port). */
    int ci = candidate_for(a, p, src, via_relay, now);
    if (ci < 0)
        return;
    on_transport(a, now, id, ci, inner, ilen);
}
