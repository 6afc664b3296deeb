/* SPDX-License-Identifier: MIT */
/* Rendezvous and relay service: see rendezvous.h. This file holds the
 * service's entry points and what the registry (registry.c) and the relay
 * (relay.c) share: the tables, the token buckets and the queues. */
#include "server/rendezvous_internal.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#define MAX_CAPACITY (1u << 30)
/* Expiry slack past three keepalives: a peer may lose two and be late. */
#define EXPIRY_SLACK_MS 15000u

/* ---- lists ---- */

void rv_lru_append(lru *l, link *links, uint32_t i)
{
    links[i].prev = l->tail;
    links[i].next = NONE;
    if (l->tail != NONE)
        links[l->tail].next = i;
    else
        l->head = i;
    l->tail = i;
}

void rv_lru_remove(lru *l, link *links, uint32_t i)
{
    if (links[i].prev != NONE)
        links[links[i].prev].next = links[i].next;
    else
        l->head = links[i].next;
    if (links[i].next != NONE)
        links[links[i].next].prev = links[i].prev;
    else
        l->tail = links[i].prev;
}

void rv_lru_touch(lru *l, link *links, uint32_t i)
{
    if (l->tail == i)
        return;
    rv_lru_remove(l, links, i);
    rv_lru_append(l, links, i);
}

/* ---- hash tables ---- */

uint64_t rv_keyed_hash(const punch_rendezvous *rv, const void *p, size_t n)
{
    uint8_t h[crypto_shorthash_BYTES];
    crypto_shorthash(h, p, n, rv->cfg.hash_key);
    uint64_t v;
    memcpy(&v, h, sizeof(v));
    return v;
}

static int htable_init(htable *t, uint32_t capacity)
{
    uint32_t size = 16;
    while (size < 2 * capacity) /* load factor at most 1/2 */
        size *= 2;
    t->slots = calloc(size, sizeof(slot));
    t->mask = size - 1;
    return t->slots ? 0 : PUNCH_ERR_NOMEM;
}

uint32_t rv_htable_find(const punch_rendezvous *rv, const htable *t, uint64_t h, match_fn match,
                        const void *what)
{
    uint32_t tag = (uint32_t)h;
    for (uint32_t i = tag & t->mask;; i = (i + 1) & t->mask) {
        const slot *s = &t->slots[i];
        if (s->idx1 == 0)
            return NONE;
        if (s->tag == tag && match(rv, s->idx1 - 1, what))
            return s->idx1 - 1;
    }
}

void rv_htable_insert(htable *t, uint64_t h, uint32_t idx)
{
    uint32_t tag = (uint32_t)h, i = tag & t->mask;
    while (t->slots[i].idx1 != 0)
        i = (i + 1) & t->mask;
    t->slots[i] = (slot){.idx1 = idx + 1, .tag = tag};
}

void rv_htable_remove(htable *t, uint64_t h, uint32_t idx)
{
    uint32_t i = (uint32_t)h & t->mask;
    while (t->slots[i].idx1 != idx + 1) {
        if (t->slots[i].idx1 == 0)
            return; /* not there: nothing to do */
        i = (i + 1) & t->mask;
    }
    /* Backward shift: pull later entries of the run into the hole unless
     * their home lies cyclically in (hole, their slot]. */
    for (uint32_t j = i;;) {
        t->slots[i].idx1 = 0;
        for (;;) {
            j = (j + 1) & t->mask;
            if (t->slots[j].idx1 == 0)
                return;
            uint32_t home = t->slots[j].tag & t->mask;
            bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
            if (!stays)
                break;
        }
        t->slots[i] = t->slots[j];
        i = j;
    }
}

/* ---- token buckets ---- */

/* Refill to at most cap tokens at rate per second; spend `cost` if there. */
bool rv_bucket_take(bucket *b, uint64_t rate, uint64_t cap, uint64_t cost, uint64_t now)
{
    if (now > b->last_ms) {
        uint64_t milli = b->milli + (now - b->last_ms) * rate;
        b->milli = milli > cap * 1000 ? cap * 1000 : milli;
        b->last_ms = now;
    }
    if (b->milli < cost * 1000)
        return false;
    b->milli -= cost * 1000;
    return true;
}

/* ---- queues ---- */

txslot *rv_tx_reserve(punch_rendezvous *rv)
{
    if (rv->tx_count == TX_QUEUE) {
        rv->counters.no_room++;
        return NULL;
    }
    txslot *t = &rv->tx[(rv->tx_head + rv->tx_count) % TX_QUEUE];
    t->ref = NULL;
    return t;
}

/* Relayed datagrams still queued are copied out of the caller's buffer,
 * which may change once the caller calls in again. */
static void tx_settle(punch_rendezvous *rv)
{
    for (uint32_t k = 0; k < rv->tx_count; k++) {
        txslot *t = &rv->tx[(rv->tx_head + k) % TX_QUEUE];
        if (t->ref) {
            memcpy(t->data, t->ref, t->out.len);
            t->ref = NULL;
        }
    }
}

void rv_tx_commit(punch_rendezvous *rv)
{
    rv->tx_count++;
}

punch_rendezvous_event *rv_event_reserve(punch_rendezvous *rv,
                                         punch_rendezvous_event_type type)
{
    if (rv->ev_count == EVENT_QUEUE) {
        rv->counters.events_dropped++;
        return NULL;
    }
    punch_rendezvous_event *ev = &rv->events[(rv->ev_head + rv->ev_count++) % EVENT_QUEUE];
    memset(ev, 0, sizeof(*ev));
    ev->type = type;
    return ev;
}

void rv_peer_info(const peer *p, punch_rendezvous_peer_info *info)
{
    memcpy(info->name, p->name, sizeof(info->name));
    memcpy(info->key, p->key, PUNCH_KEY_LEN);
    info->public_addr = p->pub;
    info->n_private = p->n_priv;
    memcpy(info->private_addr, p->priv, p->n_priv * sizeof(punch_addr));
    info->n_mapped = p->n_mapped;
    info->rtt_ms = p->rtt_ms;
    info->nat_mapping = p->nat_mapping;
    info->nat_step = p->nat_step;
    info->nat_port = p->nat_port;
}

static uint8_t local_index(punch_rendezvous *rv, const punch_addr *local)
{
    if (!local || local->family == PUNCH_AF_NONE)
        return 0;
    for (uint8_t i = 0; i < rv->n_locals; i++)
        if (punch_addr_equal(&rv->locals[i], local))
            return (uint8_t)(i + 1);
    if (rv->n_locals == MAX_LOCALS)
        return 0;
    rv->locals[rv->n_locals++] = *local;
    return rv->n_locals;
}

uint32_t rv_alloc_index(uint32_t *free_head, link *links, uint32_t *hwm)
{
    if (*free_head != NONE) {
        uint32_t i = *free_head;
        *free_head = links[i].next;
        return i;
    }
    return (*hwm)++;
}

/* ---- the service ---- */

/* The per-source limit on unauthenticated work, counting the sources it
 * begins to refuse. */
static int new_rate(punch_rendezvous *rv, const punch_rendezvous_cfg *c)
{
    punch_ratelimit_cfg rate = c->rate;
    rate.sources_limited = &rv->counters.rate_limited_sources;
    return punch_ratelimit_new(&rv->rate, &rate);
}

int punch_rendezvous_new(punch_rendezvous **out, const punch_rendezvous_cfg *cfg)
{
    if (!out || !cfg || !cfg->random || cfg->max_peers > MAX_CAPACITY ||
        cfg->max_sessions > MAX_CAPACITY)
        return PUNCH_ERR_INVAL;
    if (sodium_init() < 0)
        return PUNCH_ERR_NOMEM;
    punch_rendezvous *rv = calloc(1, sizeof(*rv));
    if (!rv)
        return PUNCH_ERR_NOMEM;
    rv->cfg = *cfg;
    punch_rendezvous_cfg *c = &rv->cfg;
    if (!c->max_peers)
        c->max_peers = PUNCH_RV_DEFAULT_MAX_PEERS;
    if (!c->max_sessions)
        c->max_sessions = PUNCH_RV_DEFAULT_MAX_SESSIONS;
    if (!c->max_sessions_per_peer)
        c->max_sessions_per_peer = PUNCH_RV_DEFAULT_SESSIONS_PER_PEER;
    if (c->max_sessions_per_peer > UINT16_MAX)
        c->max_sessions_per_peer = UINT16_MAX;
    if (!c->keepalive_s)
        c->keepalive_s = PUNCH_RV_DEFAULT_KEEPALIVE_S;
    if (!c->peer_expiry_ms)
        c->peer_expiry_ms = 3u * c->keepalive_s * 1000u + EXPIRY_SLACK_MS;
    if (!c->session_idle_ms)
        c->session_idle_ms = PUNCH_RV_DEFAULT_SESSION_IDLE_MS;
    if (!c->relay_bytes_per_s)
        c->relay_bytes_per_s = PUNCH_RV_DEFAULT_RELAY_BYTES_PER_S;
    if (!c->relay_packets_per_s)
        c->relay_packets_per_s = PUNCH_RV_DEFAULT_RELAY_PACKETS_PER_S;
    if (!c->relay_max_bytes)
        c->relay_max_bytes = PUNCH_RV_DEFAULT_RELAY_MAX_BYTES;
    if (!c->unproven_derive_per_s)
        c->unproven_derive_per_s = PUNCH_RV_DEFAULT_UNPROVEN_DERIVE_PER_S;
    rv->unproven.milli = (uint64_t)c->unproven_derive_per_s * 1000;
    if (!c->token_lifetime_s)
        c->token_lifetime_s = PUNCH_RV_DEFAULT_TOKEN_LIFETIME_S;

    rv->peer_lru = (lru){NONE, NONE};
    rv->session_lru = (lru){NONE, NONE};
    rv->peer_free = rv->session_free = NONE;
    /* calloc of large blocks maps zero pages lazily: RSS grows with use. */
    rv->peers = calloc(c->max_peers, sizeof(peer));
    rv->peer_links = calloc(c->max_peers, sizeof(link));
    rv->sessions = calloc(c->max_sessions, sizeof(session));
    rv->session_links = calloc(c->max_sessions, sizeof(link));
    if (!rv->peers || !rv->peer_links || !rv->sessions || !rv->session_links ||
        htable_init(&rv->by_key, (uint32_t)c->max_peers) != 0 ||
        htable_init(&rv->by_name, (uint32_t)c->max_peers) != 0 ||
        htable_init(&rv->by_id, (uint32_t)c->max_sessions) != 0 ||
        new_rate(rv, c) != 0 || rv_limits_init(rv) != 0) {
        punch_rendezvous_free(rv);
        return PUNCH_ERR_NOMEM;
    }
    *out = rv;
    return 0;
}

void punch_rendezvous_free(punch_rendezvous *rv)
{
    if (!rv)
        return;
    if (rv->peers)
        sodium_memzero(rv->peers, rv->peers_hwm * sizeof(peer));
    free(rv->peers);
    free(rv->peer_links);
    free(rv->sessions);
    free(rv->session_links);
    free(rv->by_key.slots);
    free(rv->by_name.slots);
    free(rv->by_id.slots);
    punch_ratelimit_free(rv->rate);
    rv_limits_free(rv);
    sodium_memzero(&rv->cfg, sizeof(rv->cfg));
    free(rv);
}

int punch_rendezvous_handle(punch_rendezvous *rv, uint64_t now_ms, const punch_addr *src,
                            const punch_addr *local, const uint8_t *data, size_t len)
{
    if (!rv || !src || (!data && len))
        return PUNCH_ERR_INVAL;
    tx_settle(rv);
    rv->counters.received++;
    punch_msg m;
    /* A relayed datagram must fit the transmit queue's buffers. */
    if (len > PUNCH_RV_MAX_DATAGRAM || punch_msg_decode(data, len, &m) != 0 ||
        (src->family != PUNCH_AF_INET && src->family != PUNCH_AF_INET6)) {
        rv->counters.malformed++;
        return 0;
    }
    uint8_t li = local_index(rv, local);
    switch (m.type) {
    case PUNCH_MSG_HELLO:
        rv_handle_hello(rv, now_ms, src, li, &m);
        break;
    case PUNCH_MSG_REGISTER:
        rv_handle_register(rv, now_ms, src, li, data, &m);
        break;
    case PUNCH_MSG_CONNECT:
        rv_handle_connect(rv, now_ms, src, li, data, &m);
        break;
    case PUNCH_MSG_TURN_ADDR:
        rv_handle_turn_addr(rv, now_ms, src, data, &m);
        break;
    case PUNCH_MSG_RELAY:
        if (rv->cfg.no_relay)
            rv->counters.relay_unknown++;
        else
            rv_handle_relay(rv, now_ms, src, data, len, &m);
        break;
    default:
        rv->counters.unexpected++;
    }
    return 0;
}

int punch_rendezvous_poll_transmit(punch_rendezvous *rv, punch_rendezvous_out *out,
                                   uint8_t *buf, size_t cap)
{
    if (!rv || !out || !buf)
        return PUNCH_ERR_INVAL;
    if (rv->tx_count == 0)
        return 0;
    const txslot *t = &rv->tx[rv->tx_head];
    if (cap < t->out.len)
        return PUNCH_ERR_NOBUFS;
    const uint8_t *data;
    punch_rendezvous_poll_transmit_view(rv, out, &data);
    memcpy(buf, data, out->len);
    return 1;
}

int punch_rendezvous_poll_transmit_view(punch_rendezvous *rv, punch_rendezvous_out *out,
                                        const uint8_t **data)
{
    if (!rv || !out || !data)
        return PUNCH_ERR_INVAL;
    if (rv->tx_count == 0)
        return 0;
    const txslot *t = &rv->tx[rv->tx_head];
    *data = t->ref ? t->ref : t->data;
    *out = t->out;
    out->in_place = t->ref != NULL;
    rv->tx_head = (rv->tx_head + 1) % TX_QUEUE;
    rv->tx_count--;
    return 1;
}

int punch_rendezvous_poll_event(punch_rendezvous *rv, punch_rendezvous_event *ev)
{
    if (!rv || !ev)
        return PUNCH_ERR_INVAL;
    if (rv->ev_count == 0)
        return 0;
    *ev = rv->events[rv->ev_head];
    rv->ev_head = (rv->ev_head + 1) % EVENT_QUEUE;
    rv->ev_count--;
    return 1;
}

uint64_t punch_rendezvous_next_timeout(const punch_rendezvous *rv)
{
    if (!rv)
        return UINT64_MAX;
    uint64_t peers = rv_registry_deadline(rv), sessions = rv_relay_deadline(rv);
    return sessions < peers ? sessions : peers;
}

void punch_rendezvous_handle_timeout(punch_rendezvous *rv, uint64_t now_ms)
{
    if (!rv)
        return;
    tx_settle(rv);
    unsigned used = rv_expire_sessions(rv, now_ms, EXPIRE_BATCH);
    rv_expire_peers(rv, now_ms, EXPIRE_BATCH - used);
}

const punch_rendezvous_counters *punch_rendezvous_counters_get(const punch_rendezvous *rv)
{
    return rv ? &rv->counters : NULL;
}

const uint8_t *punch_rendezvous_public_key(const punch_rendezvous *rv)
{
    return rv ? rv->cfg.identity.public_key : NULL;
}
