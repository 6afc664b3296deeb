/* SPDX-License-Identifier: MIT */
/* The rendezvous' registry (draft §3.3.1, SPEC.md §4): HELLO and its
 * cookie, REGISTER binding a name to a key at an address, and CONNECT's
 * introductions (again when a peer's NAT rebinds). See rendezvous.h. */
#include "server/endpoints.h"
#include "server/rendezvous_internal.h"

#include <string.h>

#include <sodium.h>

/* ---- names and keys ---- */

static bool match_key(const punch_rendezvous *rv, uint32_t idx, const void *key)
{
    return memcmp(rv->peers[idx].key, key, PUNCH_KEY_LEN) == 0;
}

static bool match_name(const punch_rendezvous *rv, uint32_t idx, const void *name)
{
    return strcmp(rv->peers[idx].name, name) == 0;
}

static uint64_t key_hash(const punch_rendezvous *rv, const uint8_t *key)
{
    return rv_keyed_hash(rv, key, PUNCH_KEY_LEN);
}

/* Names and keys share a hash key; a prefix byte keeps their spaces apart. */
static uint64_t name_hash(const punch_rendezvous *rv, const char *name)
{
    uint8_t in[1 + PUNCH_MSG_NAME_MAX];
    size_t n = strlen(name);
    in[0] = 'n';
    memcpy(in + 1, name, n);
    return rv_keyed_hash(rv, in, 1 + n);
}

/* ---- registered peers ---- */

static uint64_t peer_deadline(const punch_rendezvous *rv, const peer *p)
{
    return p->last_ms + rv->cfg.peer_expiry_ms;
}

void rv_remove_peer(punch_rendezvous *rv, uint32_t i)
{
    peer *p = &rv->peers[i];
    rv_htable_remove(&rv->by_key, key_hash(rv, p->key), i);
    rv_htable_remove(&rv->by_name, name_hash(rv, p->name), i);
    rv_lru_remove(&rv->peer_lru, rv->peer_links, i);
    rv_names_moved(rv, &p->pub, NULL);
    p->pub.family = PUNCH_AF_NONE;
    p->gen++; /* sessions holding the old generation see it gone */
    sodium_memzero(p->mac_key, sizeof(p->mac_key));
    rv->peer_links[i].next = rv->peer_free;
    rv->peer_free = i;
    rv->n_peers--;
    rv->counters.peers = rv->n_peers;
}

/* A peer past its deadline is removed here as if it had expired. */
uint32_t rv_live_peer(punch_rendezvous *rv, uint32_t i, uint64_t now)
{
    if (i == NONE || now < peer_deadline(rv, &rv->peers[i]))
        return i;
    rv_remove_peer(rv, i);
    rv->counters.peers_expired++;
    return NONE;
}

static uint32_t find_key(punch_rendezvous *rv, const uint8_t *key, uint64_t now)
{
    uint32_t i = rv_htable_find(rv, &rv->by_key, key_hash(rv, key), match_key, key);
    return rv_live_peer(rv, i, now);
}

static uint32_t find_name(punch_rendezvous *rv, const char *name, uint64_t now)
{
    uint32_t i = rv_htable_find(rv, &rv->by_name, name_hash(rv, name), match_name, name);
    return rv_live_peer(rv, i, now);
}

unsigned rv_expire_peers(punch_rendezvous *rv, uint64_t now, unsigned budget)
{
    unsigned n = 0;
    while (n < budget && rv->peer_lru.head != NONE &&
           peer_deadline(rv, &rv->peers[rv->peer_lru.head]) <= now) {
        rv_remove_peer(rv, rv->peer_lru.head);
        rv->counters.peers_expired++;
        n++;
    }
    return n;
}

uint64_t rv_registry_deadline(const punch_rendezvous *rv)
{
    return rv->peer_lru.head == NONE ? UINT64_MAX
                                     : peer_deadline(rv, &rv->peers[rv->peer_lru.head]);
}

/* ---- answers ---- */

/* Encode m for dst, MAC it with mac_key when it carries one, and queue it. */
static void send_msg(punch_rendezvous *rv, const punch_addr *dst, uint8_t local,
                     const punch_msg *m, const uint8_t *mac_key)
{
    txslot *t = rv_tx_reserve(rv);
    if (!t)
        return;
    size_t len;
    if (punch_msg_encode(m, t->data, sizeof(t->data), &len) != 0)
        return; /* cannot happen with the server's own, checked fields */
    if (punch_msg_has_mac(m->type))
        punch_auth_mac(mac_key, t->data, len - PUNCH_MSG_MAC_LEN,
                       t->data + len - PUNCH_MSG_MAC_LEN);
    t->out.dst = *dst;
    t->out.local = local ? rv->locals[local - 1] : (punch_addr){0};
    t->out.len = len;
    rv_tx_commit(rv);
}

static void refuse(punch_rendezvous *rv, const punch_addr *src, uint8_t local,
                   const punch_msg *req, punch_refusal code, const uint8_t *mac_key)
{
    punch_msg m = {.type = PUNCH_MSG_REFUSED, .code = (uint16_t)code};
    memcpy(m.txid, req->txid, PUNCH_MSG_TXID_LEN);
    rv->counters.refused[code]++;
    send_msg(rv, src, local, &m, mac_key);
}

/* ---- HELLO and REGISTER ---- */

/* The second STUN port beside the server port a peer talks to (0: none). */
static uint16_t second_port_of(const punch_rendezvous *rv, uint8_t local)
{
    uint16_t port = local ? rv->locals[local - 1].port : 0;
    for (size_t i = 0; port && i < rv->cfg.n_second_port && i < PUNCH_RV_MAX_SECOND_PORTS; i++)
        if (rv->cfg.second_port[i].port == port)
            return rv->cfg.second_port[i].second;
    return 0;
}

void rv_handle_hello(punch_rendezvous *rv, uint64_t now, const punch_addr *src,
                     uint8_t local, const punch_msg *req)
{
    if (!punch_ratelimit_allow(rv->rate, src, now)) {
        rv->counters.rate_limited++;
        return;
    }
    /* draft §6.2, SPEC.md §4: no state; COOKIE (60 bytes) < HELLO (96). */
    punch_msg m = {.type = PUNCH_MSG_COOKIE, .second_port = second_port_of(rv, local)};
    memcpy(m.txid, req->txid, PUNCH_MSG_TXID_LEN);
    punch_auth_cookie(rv->cfg.cookie_secret, src, now / PUNCH_RV_COOKIE_PERIOD_MS, m.cookie);
    memcpy(m.key, rv->cfg.identity.public_key, PUNCH_KEY_LEN);
    rv->counters.cookies++;
    send_msg(rv, src, local, &m, NULL);
}

/* The MAC key of a key not in the table: an X25519, so limited per source
 * and, for sources that have not proved their address, all together.
 * Returns 0, or -1 when dropped (counted). */
static int derive_new(punch_rendezvous *rv, uint64_t now, const punch_addr *src, bool proven,
                      const uint8_t *key, uint8_t mac_key[PUNCH_AUTH_KEY_LEN])
{
    uint64_t rate = rv->cfg.unproven_derive_per_s;
    if (!punch_ratelimit_allow(rv->rate, src, now) ||
        (!proven && !rv_bucket_take(&rv->unproven, rate, rate, 1, now))) {
        rv->counters.rate_limited++;
        return -1;
    }
    if (punch_auth_derive(&rv->cfg.identity, key, mac_key) != 0) {
        rv->counters.bad_mac++;
        return -1;
    }
    return 0;
}

bool rv_mac_ok(punch_rendezvous *rv, const uint8_t *mac_key, const uint8_t *data,
               const punch_msg *m)
{
    if (punch_auth_verify(mac_key, data, m->mac_offset, m->mac) == 0)
        return true;
    rv->counters.bad_mac++;
    return false;
}

/* The private endpoints of a REGISTER that are passed on (endpoints.h):
 * its interface addresses, then the ports its gateway mapped. */
typedef struct endpoints {
    punch_addr priv[2 * PUNCH_RV_MAX_PRIVATE];
    uint8_t n, n_mapped; /* the last n_mapped of priv are mappings */
} endpoints;
_Static_assert(2 * PUNCH_RV_MAX_PRIVATE <= PUNCH_MSG_MAX_PRIVATE, "a peer holds them all");

/* The endpoints of req that may be passed on: at most PUNCH_RV_MAX_PRIVATE
 * claimed addresses and as many mappings, each filtered on its own so a
 * mapping keeps its place at the end. */
static endpoints private_endpoints(punch_rendezvous *rv, uint8_t local, const punch_msg *req)
{
    const punch_addr *server = local ? &rv->locals[local - 1] : NULL;
    size_t claimed = req->n_private - req->n_mapped, dropped_claimed, dropped_mapped;
    endpoints e = {0};
    size_t n = punch_rv_private_endpoints(req->private_addr, claimed, server, e.priv,
                                          &dropped_claimed);
    size_t m = punch_rv_private_endpoints(req->private_addr + claimed, req->n_mapped, server,
                                          e.priv + n, &dropped_mapped);
    e.n = (uint8_t)(n + m);
    e.n_mapped = (uint8_t)m;
    rv->counters.private_dropped += dropped_claimed + dropped_mapped;
    return e;
}

static bool private_changed(const peer *p, const endpoints *e)
{
    if (p->n_priv != e->n || p->n_mapped != e->n_mapped)
        return true;
    for (size_t i = 0; i < e->n; i++)
        if (!punch_addr_equal(&p->priv[i], &e->priv[i]))
            return true;
    return false;
}

static void reintroduce(punch_rendezvous *rv, uint32_t i, bool same_run);

static bool same_source(const punch_addr *a, const punch_addr *b)
{
    return a->family == b->family && punch_source_prefix(a) == punch_source_prefix(b);
}

/* The cookie proves src can receive. A keepalive carries the cookie of
 * the last REGISTERED, cached in the peer, which saves two BLAKE2b. */
static bool cookie_proves(const punch_rendezvous *rv, const peer *p, const punch_addr *src,
                          uint32_t period, const punch_msg *req)
{
    if (p && punch_addr_equal(&p->pub, src) &&
        (p->cookie_period == period || p->cookie_period + 1 == period) &&
        sodium_memcmp(p->cookie, req->cookie, PUNCH_AUTH_COOKIE_LEN) == 0)
        return true;
    return punch_auth_cookie_check(rv->cfg.cookie_secret, src, period, req->cookie) == 0;
}

/* A new peer: req's key (its MAC key already derived) and name. */
static uint32_t add_peer(punch_rendezvous *rv, uint64_t now, const punch_msg *req,
                         const uint8_t mac_key[PUNCH_AUTH_KEY_LEN])
{
    uint32_t i = rv_alloc_index(&rv->peer_free, rv->peer_links, &rv->peers_hwm);
    peer *p = &rv->peers[i];
    uint32_t gen = p->gen;
    memset(p, 0, sizeof(*p));
    p->gen = gen;
    memcpy(p->key, req->key, PUNCH_KEY_LEN);
    memcpy(p->mac_key, mac_key, PUNCH_AUTH_KEY_LEN);
    memcpy(p->name, req->name, sizeof(p->name));
    p->cookie_period = UINT32_MAX; /* none made yet */
    p->last_session = NONE;
    rv_limits_peer_init(rv, p, now);
    rv_htable_insert(&rv->by_key, key_hash(rv, p->key), i);
    rv_htable_insert(&rv->by_name, name_hash(rv, p->name), i);
    rv_lru_append(&rv->peer_lru, rv->peer_links, i);
    rv->n_peers++;
    rv->counters.peers = rv->n_peers;
    rv->counters.peers_added++;
    return i;
}

/* Peer i registers again, perhaps under a new name. Returns whether what
 * others learn of it (name, endpoints) changed. */
static bool refresh_peer(punch_rendezvous *rv, uint32_t i, const punch_addr *src,
                         const punch_msg *req, const endpoints *e)
{
    peer *p = &rv->peers[i];
    bool renamed = strcmp(p->name, req->name) != 0;
    bool changed = renamed || !punch_addr_equal(&p->pub, src) || private_changed(p, e);
    if (renamed) {
        rv_htable_remove(&rv->by_name, name_hash(rv, p->name), i);
        memcpy(p->name, req->name, sizeof(p->name));
        rv_htable_insert(&rv->by_name, name_hash(rv, p->name), i);
    }
    rv_lru_touch(&rv->peer_lru, rv->peer_links, i);
    return changed;
}

/* Peer i is registered as req says, from src: REGISTERED with a cookie for
 * its next keepalive, the event when it changed, and the news to the peer
 * it was introduced to when it moved. */
static void accept_registration(punch_rendezvous *rv, uint32_t i, uint64_t now,
                                const punch_addr *src, uint8_t local, const punch_msg *req,
                                const endpoints *e, bool changed)
{
    peer *p = &rv->peers[i];
    uint32_t period = (uint32_t)(now / PUNCH_RV_COOKIE_PERIOD_MS);
    /* A new source address for a known key is a NAT rebinding: the cookie
     * and the MAC prove both the address and the key. */
    bool moved = !punch_addr_equal(&p->pub, src);
    bool remapped = e->n_mapped && private_changed(p, e); /* its peer learns a new mapping */
    if (moved)
        rv_names_moved(rv, &p->pub, src);
    p->pub = *src;
    p->n_priv = e->n;
    p->n_mapped = e->n_mapped;
    memcpy(p->priv, e->priv, e->n * sizeof(punch_addr));
    p->local = local;
    p->last_ms = now;
    p->rtt_ms = req->rtt_ms;
    p->nat_mapping = req->nat_mapping;
    p->nat_step = req->nat_step;
    p->nat_port = req->nat_port;
    /* From now on, newer than this (lower only after a restart, from where
     * the peer is: every REGISTER it made since it came here is newer than
     * any it made at an earlier address). */
    p->sequence = req->sequence;
    memcpy(p->register_txid, req->txid, PUNCH_MSG_TXID_LEN);

    punch_msg m = {.type = PUNCH_MSG_REGISTERED, .public_addr = *src,
                   .keepalive_s = rv->cfg.keepalive_s};
    memcpy(m.txid, req->txid, PUNCH_MSG_TXID_LEN);
    if (p->cookie_period != period || moved) {
        punch_auth_cookie(rv->cfg.cookie_secret, src, period, p->cookie);
        p->cookie_period = period;
        rv_token_issue(rv, now, p);
    }
    memcpy(m.cookie, p->cookie, PUNCH_AUTH_COOKIE_LEN);
    m.token_len = PUNCH_AUTH_TOKEN_LEN;
    memcpy(m.token, p->token, PUNCH_AUTH_TOKEN_LEN);
    rv->counters.registrations++;
    send_msg(rv, src, local, &m, p->mac_key);
    if (changed || rv->cfg.cluster) { /* a cluster refreshes the name's record */
        punch_rendezvous_event *ev = rv_event_reserve(rv, PUNCH_RV_EVENT_REGISTERED);
        if (ev) {
            rv_peer_info(p, &ev->peer[0]);
            ev->refresh = !changed;
            memcpy(ev->txid, req->txid, PUNCH_MSG_TXID_LEN);
        }
    }
    if (moved || remapped)
        reintroduce(rv, i, req->token_len == 0); /* a run's later REGISTERs carry none */
}

void rv_handle_register(punch_rendezvous *rv, uint64_t now, const punch_addr *src,
                        uint8_t local, const uint8_t *data, const punch_msg *req)
{
    uint32_t period = (uint32_t)(now / PUNCH_RV_COOKIE_PERIOD_MS);
    uint32_t i = find_key(rv, req->key, now);
    peer *p = i == NONE ? NULL : &rv->peers[i];
    bool cookie_ok = cookie_proves(rv, p, src, period, req);
    uint32_t serial = 0;
    bool by_token = !cookie_ok && rv_token_proves(rv, now, p, src, req, &serial);
    if (!cookie_ok && !by_token && req->token_len)
        return; /* counted (tokens.c); the HELLO sent beside it gets a cookie */
    cookie_ok = cookie_ok || by_token;

    uint8_t fresh_key[PUNCH_AUTH_KEY_LEN];
    const uint8_t *mac_key = p ? p->mac_key : fresh_key;
    if (!p && derive_new(rv, now, src, cookie_ok, req->key, fresh_key) != 0)
        return;
    if (!rv_mac_ok(rv, mac_key, data, req))
        goto cleanup;
    if (!cookie_ok) {
        rv->counters.bad_cookie++;
        refuse(rv, src, local, req, PUNCH_REFUSED_COOKIE, mac_key);
        goto cleanup;
    }

    /* Finding 8: a REGISTER that would move a peer must be newer than the
     * latest one accepted, so a replay (from the address it came from,
     * within its cookie's minute or two) cannot move the peer back. From
     * the peer's own address anything goes: it moves nothing, and a
     * restarted peer may start lower. Dropped without an answer: the
     * source may be spoofed. */
    if (p && !punch_addr_equal(&p->pub, src) && req->sequence <= p->sequence) {
        rv->counters.stale_register++;
        goto cleanup;
    }
    uint32_t owner = find_name(rv, req->name, now);
    if (owner != NONE && owner != i) {
        refuse(rv, src, local, req, PUNCH_REFUSED_NAME_TAKEN, mac_key);
        goto cleanup;
    }
    /* Names per source (finding 7): a new name, or one moving to another
     * source, needs room there. */
    if ((!p || !same_source(&p->pub, src)) && !rv_names_room(rv, src)) {
        refuse(rv, src, local, req, PUNCH_REFUSED_FULL, mac_key);
        goto cleanup;
    }
    endpoints e = private_endpoints(rv, local, req);
    bool changed = true;
    if (!p) {
        if (rv->n_peers == rv->cfg.max_peers)
            rv_expire_peers(rv, now, EXPIRE_BATCH);
        if (rv->n_peers == rv->cfg.max_peers) {
            refuse(rv, src, local, req, PUNCH_REFUSED_FULL, mac_key);
            goto cleanup;
        }
        i = add_peer(rv, now, req, fresh_key);
    } else {
        changed = refresh_peer(rv, i, src, req, &e);
    }
    if (by_token)
        rv_token_taken(rv, &rv->peers[i], serial);
    accept_registration(rv, i, now, src, local, req, &e, changed);
cleanup:
    sodium_memzero(fresh_key, sizeof(fresh_key));
}

/* ---- introductions ---- */

/* An INTRODUCE to `to` about `other`. */
static void introduce(punch_rendezvous *rv, const peer *to, const peer *other,
                      const uint8_t *txid, const uint8_t *id, uint8_t flags)
{
    punch_msg m = {.type = PUNCH_MSG_INTRODUCE, .public_addr = other->pub,
                   .n_private = other->n_priv, .flags = flags, .rtt_ms = other->rtt_ms,
                   .nat_mapping = other->nat_mapping, .nat_step = other->nat_step,
                   .nat_port = other->nat_port, .n_mapped = other->n_mapped};
    memcpy(m.txid, txid, PUNCH_MSG_TXID_LEN);
    memcpy(m.session, id, PUNCH_MSG_SESSION_LEN);
    memcpy(m.key, other->key, PUNCH_KEY_LEN);
    memcpy(m.name, other->name, sizeof(m.name));
    memcpy(m.private_addr, other->priv, other->n_priv * sizeof(punch_addr));
    send_msg(rv, &to->pub, to->local, &m, to->mac_key);
    rv_tell_relayed(rv, to, other, txid, id);
}

/* Peer i came back from a new endpoint; it last met, in session id, a
 * peer at another member (far): the half here, if any, follows it
 * already (it forwards to the peer's registered endpoint); the member of
 * the other peer must tell it, as one server tells both (the cluster's
 * part: cluster_redis.c). */
static void moved_across(punch_rendezvous *rv, punch_rendezvous_event_type type, uint32_t i,
                         const uint8_t *id, const punch_rendezvous_far *far, bool relay)
{
    punch_rendezvous_event *ev = rv_event_reserve(rv, type);
    if (!ev)
        return;
    rv_peer_info(&rv->peers[i], &ev->peer[0]);
    memcpy(ev->session, id, PUNCH_MSG_SESSION_LEN);
    ev->far = *far;
    ev->relay = relay;
    if (type == PUNCH_RV_EVENT_MOVED)
        rv->counters.reintroductions++;
    else
        rv->counters.relayed_told++;
}

/* Both peers of a session here told again of each other, with a txid of
 * its own: the session keeps its id, so the peers take this as news about
 * a session they have, not as a new one. */
static void introduce_again(punch_rendezvous *rv, uint32_t asker, uint32_t other,
                            const uint8_t *id, uint8_t flags)
{
    const peer *pa = &rv->peers[asker], *pb = &rv->peers[other];
    uint8_t txid[PUNCH_MSG_TXID_LEN];
    rv->cfg.random(rv->cfg.random_arg, txid, sizeof(txid));
    introduce(rv, pa, pb, txid, id, (uint8_t)(PUNCH_INTRO_INITIATOR | flags));
    introduce(rv, pb, pa, txid, id, flags);
    rv->counters.reintroductions++;
}

/* The relay session peer i is in, while it is still the latest
 * introduction of i (NULL: none, or i met another since without one). */
static const session *news_session(const punch_rendezvous *rv, uint32_t i)
{
    const peer *p = &rv->peers[i];
    uint32_t si = p->last_session;
    if (si == NONE || si >= rv->sessions_hwm)
        return NULL;
    const session *s = &rv->sessions[si];
    if (!s->used || !rv_session_peer_ok(rv, s, 0) || !rv_session_peer_ok(rv, s, 1) ||
        (p->met_kind != MET_NONE && memcmp(p->met_session, s->id, PUNCH_MSG_SESSION_LEN) != 0))
        return NULL;
    return s;
}

/* Whether the peer i met here is still there and met i last too (one
 * server tells a peer of its latest session only). */
static bool met_each_other(const punch_rendezvous *rv, uint32_t i)
{
    const peer *p = &rv->peers[i];
    if (p->met_kind != MET_HERE || p->met_peer >= rv->peers_hwm)
        return false;
    const peer *o = &rv->peers[p->met_peer];
    return o->pub.family != PUNCH_AF_NONE && o->gen == p->met_gen && o->met_kind == MET_HERE &&
           o->met_peer == i &&
           memcmp(o->met_session, p->met_session, PUNCH_MSG_SESSION_LEN) == 0;
}

/* Whom a peer met last, while that still holds (last_met). */
typedef struct meeting {
    const uint8_t *id;          /* the session */
    bool relay;                 /* a relay session (here, or a half across members) */
    bool across;                /* the other peer is at another member: far */
    punch_rendezvous_far far;
    uint32_t asker, other;      /* here: the peer that asked, the other */
} meeting;

/* Peer i's latest introduction, while the other side still holds it (a
 * relay session, or the two met each other last); without a relay
 * session only when same_run (see reintroduce). Returns true with *m. */
static bool last_met(const punch_rendezvous *rv, uint32_t i, bool same_run, meeting *m)
{
    const session *s = news_session(rv, i);
    const peer *p = &rv->peers[i];
    if (s) {
        *m = (meeting){.id = s->id, .relay = true, .across = s->remote, .far = s->far,
                       .asker = s->peer[0], .other = s->peer[1]};
        return true;
    }
    if (!same_run)
        return false;
    if (p->met_kind == MET_FAR && rv->far_met) {
        *m = (meeting){.id = p->met_session, .across = true, .far = {.asked = !p->met_asked}};
        memcpy(m->far.member, rv->far_met[i].member, PUNCH_RV_MEMBER_LEN);
        memcpy(m->far.key, rv->far_met[i].key, PUNCH_KEY_LEN);
        return true;
    }
    if (!met_each_other(rv, i))
        return false;
    *m = (meeting){.id = p->met_session, .asker = p->met_asked ? i : p->met_peer,
                   .other = p->met_asked ? p->met_peer : i};
    return true;
}

/* Peer i came back from a new public endpoint (its NAT rebound or was
 * reset): the peer it was last introduced to must learn where it is now,
 * and both probe again; with a relay session or without (a direct path
 * through a NAT that did not keep its binding, draft §3.3.4, needs the
 * news as much). Without a relay session only within one run of the
 * peer (same_run: its REGISTER came with a cookie; a token's is a new
 * start): a program started again holds no session to be told of, its
 * CONNECT makes a new one, and an old one told meanwhile kept both sides
 * of lab.turn_tls from ever handshaking. */
static void reintroduce(punch_rendezvous *rv, uint32_t i, bool same_run)
{
    meeting m;
    if (!last_met(rv, i, same_run, &m))
        return;
    if (m.across)
        moved_across(rv, PUNCH_RV_EVENT_MOVED, i, m.id, &m.far, m.relay);
    else
        introduce_again(rv, m.asker, m.other, m.id, m.relay ? PUNCH_INTRO_RELAY : 0);
}

void rv_relayed_changed(punch_rendezvous *rv, uint32_t i)
{
    meeting m;
    uint8_t txid[PUNCH_MSG_TXID_LEN];
    if (!last_met(rv, i, true, &m))
        return;
    if (m.across) {
        moved_across(rv, PUNCH_RV_EVENT_RELAYED, i, m.id, &m.far, m.relay);
        return;
    }
    rv->cfg.random(rv->cfg.random_arg, txid, sizeof(txid));
    rv_tell_relayed(rv, &rv->peers[m.asker == i ? m.other : m.asker], &rv->peers[i], txid, m.id);
    rv->counters.relayed_told++;
}

/* Peer i met, in session id, another peer (kind MET_HERE or MET_FAR). */
static void met(punch_rendezvous *rv, uint32_t i, met_kind kind, const uint8_t *id, bool asked)
{
    peer *p = &rv->peers[i];
    p->met_kind = (uint8_t)kind;
    p->met_asked = asked;
    memcpy(p->met_session, id, PUNCH_MSG_SESSION_LEN);
}

/* Peer i was introduced, in session id, to peer `other` here. */
static void met_here(punch_rendezvous *rv, uint32_t i, uint32_t other, const uint8_t *id,
                     bool asked)
{
    met(rv, i, MET_HERE, id, asked);
    rv->peers[i].met_peer = other;
    rv->peers[i].met_gen = rv->peers[other].gen;
}

static bool nonzero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc != 0;
}

void rv_handle_connect(punch_rendezvous *rv, uint64_t now, const punch_addr *src,
                       uint8_t local, const uint8_t *data, const punch_msg *req)
{
    /* Every CONNECT costs its source a token: each makes the server send
     * two INTRODUCEs, one of them to a peer that did not ask. */
    if (!punch_ratelimit_allow(rv->rate, src, now)) {
        rv->counters.rate_limited++;
        return;
    }
    uint32_t a = find_key(rv, req->key, now);
    if (a == NONE) {
        uint8_t mac_key[PUNCH_AUTH_KEY_LEN];
        if (derive_new(rv, now, src, false, req->key, mac_key) == 0 &&
            rv_mac_ok(rv, mac_key, data, req))
            refuse(rv, src, local, req, PUNCH_REFUSED_NOT_REGISTERED, mac_key);
        sodium_memzero(mac_key, sizeof(mac_key));
        return;
    }
    peer *pa = &rv->peers[a];
    if (!rv_mac_ok(rv, pa->mac_key, data, req))
        return;
    /* From elsewhere than registered: its NAT rebound, and the answer must
     * go where the peer now is; it re-registers first. */
    if (!punch_addr_equal(&pa->pub, src)) {
        refuse(rv, src, local, req, PUNCH_REFUSED_NOT_REGISTERED, pa->mac_key);
        return;
    }
    uint32_t b = find_name(rv, req->name, now);
    if (b == NONE && rv->cfg.cluster) {
        rv_cluster_lookup(rv, now, pa, req); /* perhaps registered at another member */
        return;
    }
    if (b == NONE || b == a) {
        refuse(rv, src, local, req, PUNCH_REFUSED_NO_PEER, pa->mac_key);
        return;
    }
    peer *pb = &rv->peers[b];
    if (nonzero(req->peer_key, PUNCH_KEY_LEN) &&
        sodium_memcmp(req->peer_key, pb->key, PUNCH_KEY_LEN) != 0) {
        refuse(rv, src, local, req, PUNCH_REFUSED_KEY_MISMATCH, pa->mac_key);
        return;
    }
    /* A crowd of keys behind one source must not keep introducing itself
     * to one peer (finding 5): dropped, the asker's retries come later. A
     * copy of the CONNECT that opened the pair's session (same transaction)
     * opens nothing and is not charged: charging each copy (two per try)
     * held fresh peers behind one NAT to one introduction a second after
     * their fifth (lab.loss: from the seventh run on, 600 ms more each). */
    if (!rv_is_connect_copy(rv, a, b, req->txid) && !rv_connect_allowed(rv, now, src, pb->key))
        return;
    uint8_t id[PUNCH_MSG_SESSION_LEN], txid[PUNCH_MSG_TXID_LEN];
    bool relay = rv_open_session(rv, now, a, b, req->txid, id);
    rv->cfg.random(rv->cfg.random_arg, txid, sizeof(txid));
    uint8_t flag = relay ? PUNCH_INTRO_RELAY : 0;
    /* draft §3.3.1: both learn of each other at once and start sending. */
    introduce(rv, pa, pb, req->txid, id, (uint8_t)(PUNCH_INTRO_INITIATOR | flag));
    introduce(rv, pb, pa, txid, id, flag);
    met_here(rv, a, b, id, true);
    met_here(rv, b, a, id, false);
    rv->counters.introductions++;
    punch_rendezvous_event *ev = rv_event_reserve(rv, PUNCH_RV_EVENT_INTRODUCED);
    if (ev) {
        rv_peer_info(pa, &ev->peer[0]);
        rv_peer_info(pb, &ev->peer[1]);
        memcpy(ev->session, id, PUNCH_MSG_SESSION_LEN);
        ev->relay = relay;
    }
}

/* ---- a cluster's entry points (rendezvous_remote.c) ---- */

uint32_t rv_find_key(punch_rendezvous *rv, const uint8_t *key, uint64_t now)
{
    return find_key(rv, key, now);
}

void rv_introduce(punch_rendezvous *rv, const peer *to, const peer *other, const uint8_t *txid,
                  const uint8_t *id, uint8_t flags)
{
    introduce(rv, to, other, txid, id, flags);
}

void rv_met_far(punch_rendezvous *rv, uint32_t i, const uint8_t *id,
                const punch_rendezvous_far *far)
{
    if (!rv->far_met)
        return; /* not a cluster member */
    met(rv, i, MET_FAR, id, !far->asked);
    memcpy(rv->far_met[i].member, far->member, PUNCH_RV_MEMBER_LEN);
    memcpy(rv->far_met[i].key, far->key, PUNCH_KEY_LEN);
}

void rv_send_to_peer(punch_rendezvous *rv, const peer *p, const punch_msg *m)
{
    send_msg(rv, &p->pub, p->local, m, p->mac_key);
}

void rv_refuse_peer(punch_rendezvous *rv, const peer *p, const uint8_t *txid,
                    punch_refusal code)
{
    punch_msg req = {.type = PUNCH_MSG_CONNECT};
    memcpy(req.txid, txid, PUNCH_MSG_TXID_LEN);
    refuse(rv, &p->pub, p->local, &req, code, p->mac_key);
}
