/* Rendezvous and relay service: see rendezvous.h. */
#include "server/rendezvous.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#define NONE UINT32_MAX
#define MAX_CAPACITY (1u << 30)
/* Work per handle_timeout call: a million peers falling silent at once are
 * removed a thousand at a time, between datagrams. */
#define EXPIRE_BATCH 1024
#define TX_QUEUE 64         /* one datagram makes at most two answers */
#define EVENT_QUEUE 64
#define MAX_LOCALS 32       /* distinct server addresses remembered per peer */
/* Expiry slack past three keepalives: a peer may lose two and be late. */
#define EXPIRY_SLACK_MS 15000u

/* A doubly linked list threaded through an array by index, oldest first:
 * every peer (session) has the same lifetime, so the one heard from least
 * recently is always at the head, and expiry looks at the head only. */
typedef struct link {
    uint32_t prev, next;
} link;

typedef struct lru {
    uint32_t head, tail;
} lru;

/* Open addressing with linear probing over a keyed hash; deletion shifts
 * entries back (no tombstones). tag is the hash's low 32 bits, so a probe
 * rarely has to look at the entry itself, and tag & mask is the home slot. */
typedef struct slot {
    uint32_t idx1; /* entry index + 1; 0: empty */
    uint32_t tag;
} slot;

typedef struct htable {
    slot *slots;
    uint32_t mask;
} htable;

typedef struct bucket {
    uint64_t milli; /* tokens x 1000 */
    uint64_t last_ms;
} bucket;

typedef struct peer {
    uint8_t key[PUNCH_KEY_LEN];
    uint8_t mac_key[PUNCH_AUTH_KEY_LEN]; /* derived once per key */
    punch_addr pub;                      /* family NONE: free slot */
    uint8_t n_priv;
    uint8_t n_mapped;                    /* the last n_mapped of priv: port mappings */
    uint8_t local;                       /* rv->locals index + 1; 0 unknown */
    uint16_t n_started;                  /* relay sessions it started, held now */
    uint16_t rtt_ms;                     /* its round trip to us, as it measured; 0 unknown */
    uint8_t nat_mapping;                 /* its NAT, as it found it (punch_msg_nat) */
    uint16_t nat_step, nat_port;
    uint32_t gen;                        /* bumped when the slot is freed */
    uint32_t cookie_period;              /* of cookie, made for pub */
    uint32_t last_session;               /* the latest relay session it is in */
    uint8_t cookie[PUNCH_AUTH_COOKIE_LEN];
    uint64_t last_ms;
    char name[PUNCH_MSG_NAME_MAX + 1];
    punch_addr priv[PUNCH_MSG_MAX_PRIVATE];
} peer;

typedef struct session {
    uint8_t id[PUNCH_MSG_SESSION_LEN];
    bool used, opened;
    uint32_t peer[2]; /* [0] started it */
    uint32_t gen[2];
    uint64_t last_ms;
    bucket bytes_q, packets_q;
    uint64_t bytes[2], packets[2], dropped;
} session;

typedef struct txslot {
    punch_rendezvous_out out;
    uint8_t data[PUNCH_RV_MAX_DATAGRAM];
} txslot;

struct punch_rendezvous {
    punch_rendezvous_cfg cfg;
    punch_ratelimit *rate;
    bucket unproven;
    punch_rendezvous_counters counters;

    peer *peers;
    link *peer_links;
    uint32_t n_peers, peers_hwm, peer_free;
    lru peer_lru;
    htable by_key, by_name;

    session *sessions;
    link *session_links;
    uint32_t n_sessions, sessions_hwm, session_free;
    lru session_lru;
    htable by_id;

    punch_addr locals[MAX_LOCALS];
    uint8_t n_locals;

    txslot tx[TX_QUEUE];
    uint32_t tx_head, tx_count;
    punch_rendezvous_event events[EVENT_QUEUE];
    uint32_t ev_head, ev_count;
};

/* ---- lists ---- */

static void lru_append(lru *l, link *links, uint32_t i)
{
    links[i].prev = l->tail;
    links[i].next = NONE;
    if (l->tail != NONE)
        links[l->tail].next = i;
    else
        l->head = i;
    l->tail = i;
}

static void lru_remove(lru *l, link *links, uint32_t i)
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

static void lru_touch(lru *l, link *links, uint32_t i)
{
    if (l->tail == i)
        return;
    lru_remove(l, links, i);
    lru_append(l, links, i);
}

/* ---- hash tables ---- */

static uint64_t keyed_hash(const punch_rendezvous *rv, const void *p, size_t n)
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

typedef bool (*match_fn)(const punch_rendezvous *rv, uint32_t idx, const void *what);

static uint32_t htable_find(const punch_rendezvous *rv, const htable *t, uint64_t h,
                            match_fn match, const void *what)
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

static void htable_insert(htable *t, uint64_t h, uint32_t idx)
{
    uint32_t tag = (uint32_t)h, i = tag & t->mask;
    while (t->slots[i].idx1 != 0)
        i = (i + 1) & t->mask;
    t->slots[i] = (slot){.idx1 = idx + 1, .tag = tag};
}

static void htable_remove(htable *t, uint64_t h, uint32_t idx)
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

static bool match_key(const punch_rendezvous *rv, uint32_t idx, const void *key)
{
    return memcmp(rv->peers[idx].key, key, PUNCH_KEY_LEN) == 0;
}

static bool match_name(const punch_rendezvous *rv, uint32_t idx, const void *name)
{
    return strcmp(rv->peers[idx].name, name) == 0;
}

static bool match_session(const punch_rendezvous *rv, uint32_t idx, const void *id)
{
    return memcmp(rv->sessions[idx].id, id, PUNCH_MSG_SESSION_LEN) == 0;
}

static uint64_t key_hash(const punch_rendezvous *rv, const uint8_t *key)
{
    return keyed_hash(rv, key, PUNCH_KEY_LEN);
}

/* Names and keys share a hash key; a prefix byte keeps their spaces apart. */
static uint64_t name_hash(const punch_rendezvous *rv, const char *name)
{
    uint8_t in[1 + PUNCH_MSG_NAME_MAX];
    size_t n = strlen(name);
    in[0] = 'n';
    memcpy(in + 1, name, n);
    return keyed_hash(rv, in, 1 + n);
}

static uint64_t session_hash(const punch_rendezvous *rv, const uint8_t *id)
{
    return keyed_hash(rv, id, PUNCH_MSG_SESSION_LEN);
}

/* ---- token buckets ---- */

/* Refill to at most cap tokens at rate per second; spend `cost` if there. */
static bool bucket_take(bucket *b, uint64_t rate, uint64_t cap, uint64_t cost, uint64_t now)
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

static txslot *tx_reserve(punch_rendezvous *rv)
{
    if (rv->tx_count == TX_QUEUE) {
        rv->counters.no_room++;
        return NULL;
    }
    return &rv->tx[(rv->tx_head + rv->tx_count) % TX_QUEUE];
}

static void tx_commit(punch_rendezvous *rv)
{
    rv->tx_count++;
}

static punch_rendezvous_event *event_reserve(punch_rendezvous *rv,
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

static void peer_info(const peer *p, punch_rendezvous_peer_info *info)
{
    memcpy(info->name, p->name, sizeof(info->name));
    memcpy(info->key, p->key, PUNCH_KEY_LEN);
    info->public_addr = p->pub;
    info->n_private = p->n_priv;
    memcpy(info->private_addr, p->priv, p->n_priv * sizeof(punch_addr));
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

/* Encode m for dst, MAC it with mac_key when it carries one, and queue it. */
static void send_msg(punch_rendezvous *rv, const punch_addr *dst, uint8_t local,
                     const punch_msg *m, const uint8_t *mac_key)
{
    txslot *t = tx_reserve(rv);
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
    tx_commit(rv);
}

static void refuse(punch_rendezvous *rv, const punch_addr *src, uint8_t local,
                   const punch_msg *req, punch_refusal code, const uint8_t *mac_key)
{
    punch_msg m = {.type = PUNCH_MSG_REFUSED, .code = (uint16_t)code};
    memcpy(m.txid, req->txid, PUNCH_MSG_TXID_LEN);
    rv->counters.refused[code]++;
    send_msg(rv, src, local, &m, mac_key);
}

/* ---- peers and sessions ---- */

static uint64_t peer_deadline(const punch_rendezvous *rv, const peer *p)
{
    return p->last_ms + rv->cfg.peer_expiry_ms;
}

static uint64_t session_deadline(const punch_rendezvous *rv, const session *s)
{
    return s->last_ms + rv->cfg.session_idle_ms;
}

static void remove_peer(punch_rendezvous *rv, uint32_t i)
{
    peer *p = &rv->peers[i];
    htable_remove(&rv->by_key, key_hash(rv, p->key), i);
    htable_remove(&rv->by_name, name_hash(rv, p->name), i);
    lru_remove(&rv->peer_lru, rv->peer_links, i);
    p->pub.family = PUNCH_AF_NONE;
    p->gen++; /* sessions holding the old generation see it gone */
    sodium_memzero(p->mac_key, sizeof(p->mac_key));
    rv->peer_links[i].next = rv->peer_free;
    rv->peer_free = i;
    rv->n_peers--;
    rv->counters.peers = rv->n_peers;
}

/* A peer past its deadline is removed here as if it had expired. */
static uint32_t live_peer(punch_rendezvous *rv, uint32_t i, uint64_t now)
{
    if (i == NONE || now < peer_deadline(rv, &rv->peers[i]))
        return i;
    remove_peer(rv, i);
    rv->counters.peers_expired++;
    return NONE;
}

static uint32_t find_key(punch_rendezvous *rv, const uint8_t *key, uint64_t now)
{
    return live_peer(rv, htable_find(rv, &rv->by_key, key_hash(rv, key), match_key, key), now);
}

static uint32_t find_name(punch_rendezvous *rv, const char *name, uint64_t now)
{
    return live_peer(rv, htable_find(rv, &rv->by_name, name_hash(rv, name), match_name, name),
                     now);
}

static bool session_peer_ok(const punch_rendezvous *rv, const session *s, int k)
{
    const peer *p = &rv->peers[s->peer[k]];
    return p->pub.family != PUNCH_AF_NONE && p->gen == s->gen[k];
}

static void close_session(punch_rendezvous *rv, uint32_t i, const char *reason)
{
    session *s = &rv->sessions[i];
    if (s->opened) {
        punch_rendezvous_event *ev = event_reserve(rv, PUNCH_RV_EVENT_RELAY_CLOSED);
        if (ev) {
            for (int k = 0; k < 2; k++) {
                peer_info(&rv->peers[s->peer[k]], &ev->peer[k]);
                ev->bytes[k] = s->bytes[k];
                ev->packets[k] = s->packets[k];
            }
            memcpy(ev->session, s->id, PUNCH_MSG_SESSION_LEN);
            ev->reason = reason;
            ev->dropped = s->dropped;
            ev->relay = true;
        }
    }
    if (session_peer_ok(rv, s, 0))
        rv->peers[s->peer[0]].n_started--;
    htable_remove(&rv->by_id, session_hash(rv, s->id), i);
    lru_remove(&rv->session_lru, rv->session_links, i);
    s->used = false;
    rv->session_links[i].next = rv->session_free;
    rv->session_free = i;
    rv->n_sessions--;
    rv->counters.sessions = rv->n_sessions;
    rv->counters.sessions_closed++;
}

static unsigned expire_peers(punch_rendezvous *rv, uint64_t now, unsigned budget)
{
    unsigned n = 0;
    while (n < budget && rv->peer_lru.head != NONE &&
           peer_deadline(rv, &rv->peers[rv->peer_lru.head]) <= now) {
        remove_peer(rv, rv->peer_lru.head);
        rv->counters.peers_expired++;
        n++;
    }
    return n;
}

static unsigned expire_sessions(punch_rendezvous *rv, uint64_t now, unsigned budget)
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

static uint32_t alloc_index(uint32_t *free_head, link *links, uint32_t *hwm)
{
    if (*free_head != NONE) {
        uint32_t i = *free_head;
        *free_head = links[i].next;
        return i;
    }
    return (*hwm)++;
}

/* ---- the service ---- */

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
        punch_ratelimit_new(&rv->rate, &c->rate) != 0) {
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
    sodium_memzero(&rv->cfg, sizeof(rv->cfg));
    free(rv);
}

static void handle_hello(punch_rendezvous *rv, uint64_t now, const punch_addr *src,
                         uint8_t local, const punch_msg *req)
{
    if (!punch_ratelimit_allow(rv->rate, src, now)) {
        rv->counters.rate_limited++;
        return;
    }
    /* draft §6.2, SPEC.md §4: no state; COOKIE (58 bytes) < HELLO (96). */
    punch_msg m = {.type = PUNCH_MSG_COOKIE};
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
        (!proven && !bucket_take(&rv->unproven, rate, rate, 1, now))) {
        rv->counters.rate_limited++;
        return -1;
    }
    if (punch_auth_derive(&rv->cfg.identity, key, mac_key) != 0) {
        rv->counters.bad_mac++;
        return -1;
    }
    return 0;
}

static bool mac_ok(punch_rendezvous *rv, const uint8_t *mac_key, const uint8_t *data,
                   const punch_msg *m)
{
    if (punch_auth_verify(mac_key, data, m->mac_offset, m->mac) == 0)
        return true;
    rv->counters.bad_mac++;
    return false;
}

static bool private_changed(const peer *p, const punch_msg *m)
{
    if (p->n_priv != m->n_private || p->n_mapped != m->n_mapped)
        return true;
    for (size_t i = 0; i < m->n_private; i++)
        if (!punch_addr_equal(&p->priv[i], &m->private_addr[i]))
            return true;
    return false;
}

static void reintroduce(punch_rendezvous *rv, uint32_t i);

static void handle_register(punch_rendezvous *rv, uint64_t now, const punch_addr *src,
                            uint8_t local, const uint8_t *data, const punch_msg *req)
{
    uint32_t period = (uint32_t)(now / PUNCH_RV_COOKIE_PERIOD_MS);
    uint32_t i = find_key(rv, req->key, now);
    peer *p = i == NONE ? NULL : &rv->peers[i];

    /* The cookie proves src can receive. A keepalive carries the cookie of
     * the last REGISTERED, cached in the peer, which saves two BLAKE2b. */
    bool cookie_ok;
    if (p && punch_addr_equal(&p->pub, src) &&
        (p->cookie_period == period || p->cookie_period + 1 == period) &&
        sodium_memcmp(p->cookie, req->cookie, PUNCH_AUTH_COOKIE_LEN) == 0)
        cookie_ok = true;
    else
        cookie_ok = punch_auth_cookie_check(rv->cfg.cookie_secret, src, period, req->cookie) == 0;

    uint8_t fresh_key[PUNCH_AUTH_KEY_LEN];
    const uint8_t *mac_key = p ? p->mac_key : fresh_key;
    if (!p && derive_new(rv, now, src, cookie_ok, req->key, fresh_key) != 0)
        return;
    if (!mac_ok(rv, mac_key, data, req))
        goto cleanup;
    if (!cookie_ok) {
        rv->counters.bad_cookie++;
        refuse(rv, src, local, req, PUNCH_REFUSED_COOKIE, mac_key);
        goto cleanup;
    }

    uint32_t owner = find_name(rv, req->name, now);
    if (owner != NONE && owner != i) {
        refuse(rv, src, local, req, PUNCH_REFUSED_NAME_TAKEN, mac_key);
        goto cleanup;
    }
    bool changed = true;
    if (!p) {
        if (rv->n_peers == rv->cfg.max_peers)
            expire_peers(rv, now, EXPIRE_BATCH);
        if (rv->n_peers == rv->cfg.max_peers) {
            refuse(rv, src, local, req, PUNCH_REFUSED_FULL, mac_key);
            goto cleanup;
        }
        i = alloc_index(&rv->peer_free, rv->peer_links, &rv->peers_hwm);
        p = &rv->peers[i];
        uint32_t gen = p->gen;
        memset(p, 0, sizeof(*p));
        p->gen = gen;
        memcpy(p->key, req->key, PUNCH_KEY_LEN);
        memcpy(p->mac_key, fresh_key, PUNCH_AUTH_KEY_LEN);
        memcpy(p->name, req->name, sizeof(p->name));
        p->cookie_period = UINT32_MAX; /* none made yet */
        p->last_session = NONE;
        htable_insert(&rv->by_key, key_hash(rv, p->key), i);
        htable_insert(&rv->by_name, name_hash(rv, p->name), i);
        lru_append(&rv->peer_lru, rv->peer_links, i);
        rv->n_peers++;
        rv->counters.peers = rv->n_peers;
        rv->counters.peers_added++;
    } else {
        bool renamed = strcmp(p->name, req->name) != 0;
        changed = renamed || !punch_addr_equal(&p->pub, src) || private_changed(p, req);
        if (renamed) {
            htable_remove(&rv->by_name, name_hash(rv, p->name), i);
            memcpy(p->name, req->name, sizeof(p->name));
            htable_insert(&rv->by_name, name_hash(rv, p->name), i);
        }
        lru_touch(&rv->peer_lru, rv->peer_links, i);
    }
    /* A new source address for a known key is a NAT rebinding: the cookie
     * and the MAC prove both the address and the key. */
    bool moved = !punch_addr_equal(&p->pub, src);
    bool remapped = req->n_mapped && private_changed(p, req); /* portmap hook: a new mapping */
    p->pub = *src;
    p->n_priv = (uint8_t)req->n_private;
    p->n_mapped = req->n_mapped;
    memcpy(p->priv, req->private_addr, req->n_private * sizeof(punch_addr));
    p->local = local;
    p->last_ms = now;
    p->rtt_ms = req->rtt_ms;
    p->nat_mapping = req->nat_mapping;
    p->nat_step = req->nat_step;
    p->nat_port = req->nat_port;

    punch_msg m = {.type = PUNCH_MSG_REGISTERED, .public_addr = *src,
                   .keepalive_s = rv->cfg.keepalive_s};
    memcpy(m.txid, req->txid, PUNCH_MSG_TXID_LEN);
    if (p->cookie_period != period || moved) {
        punch_auth_cookie(rv->cfg.cookie_secret, src, period, p->cookie);
        p->cookie_period = period;
    }
    memcpy(m.cookie, p->cookie, PUNCH_AUTH_COOKIE_LEN);
    rv->counters.registrations++;
    send_msg(rv, src, local, &m, p->mac_key);
    if (changed) {
        punch_rendezvous_event *ev = event_reserve(rv, PUNCH_RV_EVENT_REGISTERED);
        if (ev)
            peer_info(p, &ev->peer[0]);
    }
    if (moved || remapped) /* portmap hook: its peer learns the mapping too */
        reintroduce(rv, i);
cleanup:
    sodium_memzero(fresh_key, sizeof(fresh_key));
}

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
}

/* Peer i came back from a new public endpoint (its NAT rebound or was
 * reset): the peer it was last introduced to must learn where it is now,
 * and both probe again. The session keeps its id, so the peers take this
 * as news about a session they have, not as a new one. */
static void reintroduce(punch_rendezvous *rv, uint32_t i)
{
    uint32_t si = rv->peers[i].last_session;
    if (si == NONE || si >= rv->sessions_hwm)
        return;
    const session *s = &rv->sessions[si];
    if (!s->used || !session_peer_ok(rv, s, 0) || !session_peer_ok(rv, s, 1))
        return;
    const peer *asker = &rv->peers[s->peer[0]], *other = &rv->peers[s->peer[1]];
    uint8_t txid[PUNCH_MSG_TXID_LEN];
    rv->cfg.random(rv->cfg.random_arg, txid, sizeof(txid));
    introduce(rv, asker, other, txid, s->id, PUNCH_INTRO_INITIATOR | PUNCH_INTRO_RELAY);
    introduce(rv, other, asker, txid, s->id, PUNCH_INTRO_RELAY);
    rv->counters.reintroductions++;
}

/* The live session between a and b that peer `of` was last put in, or NONE. */
static uint32_t pair_session(const punch_rendezvous *rv, uint32_t of, uint32_t a, uint32_t b)
{
    uint32_t i = rv->peers[of].last_session;
    if (i == NONE || i >= rv->sessions_hwm)
        return NONE;
    const session *s = &rv->sessions[i];
    if (!s->used || !session_peer_ok(rv, s, 0) || !session_peer_ok(rv, s, 1))
        return NONE;
    if ((s->peer[0] == a && s->peer[1] == b) || (s->peer[0] == b && s->peer[1] == a))
        return i;
    return NONE;
}

/* A relay session between peers a (who asked) and b. Returns whether one
 * is held for them; id is filled either way. A CONNECT sent again (its
 * answer was lost) or crossing one from the other side gets the session
 * already made, so both peers end up naming the same one. */
/* The id of the session that a CONNECT (transaction txid) from a to b
 * makes: the same for every copy of that CONNECT, so peers that hear of it
 * through different copies (one INTRODUCE lost, the CONNECT repeated) agree
 * on it, with or without a relay session behind it. Keyed with the cookie
 * secret, so nobody else can predict it. */
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

static bool open_session(punch_rendezvous *rv, uint64_t now, uint32_t a, uint32_t b,
                         const uint8_t txid[PUNCH_MSG_TXID_LEN],
                         uint8_t id[PUNCH_MSG_SESSION_LEN])
{
    uint32_t old = pair_session(rv, a, a, b);
    if (old == NONE)
        old = pair_session(rv, b, a, b);
    if (old != NONE) {
        session *s = &rv->sessions[old];
        memcpy(id, s->id, PUNCH_MSG_SESSION_LEN);
        s->last_ms = now > s->last_ms ? now : s->last_ms;
        lru_touch(&rv->session_lru, rv->session_links, old);
        return true;
    }
    session_id_for(rv, a, b, txid, id);
    /* A collision of 64-bit ids is all but impossible; still, an id must
     * name one session: such an introduction goes without relay. */
    if (htable_find(rv, &rv->by_id, session_hash(rv, id), match_session, id) != NONE)
        return false;
    if (rv->cfg.no_relay || rv->peers[a].n_started >= rv->cfg.max_sessions_per_peer)
        return false;
    if (rv->n_sessions == rv->cfg.max_sessions)
        expire_sessions(rv, now, EXPIRE_BATCH);
    if (rv->n_sessions == rv->cfg.max_sessions) {
        rv->counters.sessions_full++;
        return false;
    }
    uint32_t i = alloc_index(&rv->session_free, rv->session_links, &rv->sessions_hwm);
    session *s = &rv->sessions[i];
    const punch_rendezvous_cfg *c = &rv->cfg;
    *s = (session){.used = true, .peer = {a, b}, .gen = {rv->peers[a].gen, rv->peers[b].gen},
                   .last_ms = now,
                   .bytes_q = {.milli = (uint64_t)c->relay_bytes_per_s * 1000, .last_ms = now},
                   .packets_q = {.milli = (uint64_t)c->relay_packets_per_s * 1000,
                                 .last_ms = now}};
    memcpy(s->id, id, PUNCH_MSG_SESSION_LEN);
    htable_insert(&rv->by_id, session_hash(rv, id), i);
    lru_append(&rv->session_lru, rv->session_links, i);
    rv->peers[a].n_started++;
    rv->peers[a].last_session = rv->peers[b].last_session = i;
    rv->n_sessions++;
    rv->counters.sessions = rv->n_sessions;
    rv->counters.sessions_opened++;
    return true;
}

static bool nonzero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc != 0;
}

static void handle_connect(punch_rendezvous *rv, uint64_t now, const punch_addr *src,
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
            mac_ok(rv, mac_key, data, req))
            refuse(rv, src, local, req, PUNCH_REFUSED_NOT_REGISTERED, mac_key);
        sodium_memzero(mac_key, sizeof(mac_key));
        return;
    }
    peer *pa = &rv->peers[a];
    if (!mac_ok(rv, pa->mac_key, data, req))
        return;
    /* From elsewhere than registered: its NAT rebound, and the answer must
     * go where the peer now is; it re-registers first. */
    if (!punch_addr_equal(&pa->pub, src)) {
        refuse(rv, src, local, req, PUNCH_REFUSED_NOT_REGISTERED, pa->mac_key);
        return;
    }
    uint32_t b = find_name(rv, req->name, now);
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
    uint8_t id[PUNCH_MSG_SESSION_LEN], txid[PUNCH_MSG_TXID_LEN];
    bool relay = open_session(rv, now, a, b, req->txid, id);
    rv->cfg.random(rv->cfg.random_arg, txid, sizeof(txid));
    uint8_t flag = relay ? PUNCH_INTRO_RELAY : 0;
    /* draft §3.3.1: both learn of each other at once and start sending. */
    introduce(rv, pa, pb, req->txid, id, (uint8_t)(PUNCH_INTRO_INITIATOR | flag));
    introduce(rv, pb, pa, txid, id, flag);
    rv->counters.introductions++;
    punch_rendezvous_event *ev = event_reserve(rv, PUNCH_RV_EVENT_INTRODUCED);
    if (ev) {
        peer_info(pa, &ev->peer[0]);
        peer_info(pb, &ev->peer[1]);
        memcpy(ev->session, id, PUNCH_MSG_SESSION_LEN);
        ev->relay = relay;
    }
}

static void handle_relay(punch_rendezvous *rv, uint64_t now, const punch_addr *src,
                         const uint8_t *data, size_t len, const punch_msg *req)
{
    uint32_t i = htable_find(rv, &rv->by_id, session_hash(rv, req->session), match_session,
                             req->session);
    if (i == NONE) {
        rv->counters.relay_unknown++;
        return;
    }
    session *s = &rv->sessions[i];
    /* SPEC.md §4: only between the two registered peers, from and to the
     * endpoints they registered; never to any other address. */
    if (!session_peer_ok(rv, s, 0) || !session_peer_ok(rv, s, 1) ||
        live_peer(rv, s->peer[0], now) == NONE || live_peer(rv, s->peer[1], now) == NONE) {
        close_session(rv, i, "peer gone");
        rv->counters.relay_unknown++;
        return;
    }
    int from;
    if (punch_addr_equal(src, &rv->peers[s->peer[0]].pub))
        from = 0;
    else if (punch_addr_equal(src, &rv->peers[s->peer[1]].pub))
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
    if (!bucket_take(&s->packets_q, c->relay_packets_per_s, c->relay_packets_per_s, 1, now) ||
        !bucket_take(&s->bytes_q, c->relay_bytes_per_s, c->relay_bytes_per_s, len, now)) {
        rv->counters.relay_over_quota++;
        s->dropped++;
        return;
    }
    const peer *to = &rv->peers[s->peer[1 - from]];
    txslot *t = tx_reserve(rv);
    if (!t)
        return;
    memcpy(t->data, data, len);
    t->out.dst = to->pub;
    t->out.local = to->local ? rv->locals[to->local - 1] : (punch_addr){0};
    t->out.len = len;
    tx_commit(rv);
    s->bytes[from] += len;
    s->packets[from]++;
    s->last_ms = now;
    lru_touch(&rv->session_lru, rv->session_links, i);
    rv->counters.relayed++;
    rv->counters.relayed_bytes += len;
    if (!s->opened) {
        s->opened = true;
        punch_rendezvous_event *ev = event_reserve(rv, PUNCH_RV_EVENT_RELAY_OPENED);
        if (ev) {
            peer_info(&rv->peers[s->peer[0]], &ev->peer[0]);
            peer_info(&rv->peers[s->peer[1]], &ev->peer[1]);
            memcpy(ev->session, s->id, PUNCH_MSG_SESSION_LEN);
            ev->relay = true;
        }
    }
}

int punch_rendezvous_handle(punch_rendezvous *rv, uint64_t now_ms, const punch_addr *src,
                            const punch_addr *local, const uint8_t *data, size_t len)
{
    if (!rv || !src || (!data && len))
        return PUNCH_ERR_INVAL;
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
        handle_hello(rv, now_ms, src, li, &m);
        break;
    case PUNCH_MSG_REGISTER:
        handle_register(rv, now_ms, src, li, data, &m);
        break;
    case PUNCH_MSG_CONNECT:
        handle_connect(rv, now_ms, src, li, data, &m);
        break;
    case PUNCH_MSG_RELAY:
        if (rv->cfg.no_relay)
            rv->counters.relay_unknown++;
        else
            handle_relay(rv, now_ms, src, data, len, &m);
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
    memcpy(buf, t->data, t->out.len);
    *out = t->out;
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
    uint64_t t = UINT64_MAX;
    if (!rv)
        return t;
    if (rv->peer_lru.head != NONE)
        t = peer_deadline(rv, &rv->peers[rv->peer_lru.head]);
    if (rv->session_lru.head != NONE) {
        uint64_t s = session_deadline(rv, &rv->sessions[rv->session_lru.head]);
        t = s < t ? s : t;
    }
    return t;
}

void punch_rendezvous_handle_timeout(punch_rendezvous *rv, uint64_t now_ms)
{
    if (!rv)
        return;
    unsigned used = expire_sessions(rv, now_ms, EXPIRE_BATCH);
    expire_peers(rv, now_ms, EXPIRE_BATCH - used);
}

const punch_rendezvous_counters *punch_rendezvous_counters_get(const punch_rendezvous *rv)
{
    return rv ? &rv->counters : NULL;
}

const uint8_t *punch_rendezvous_public_key(const punch_rendezvous *rv)
{
    return rv ? rv->cfg.identity.public_key : NULL;
}
