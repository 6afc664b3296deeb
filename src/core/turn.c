/* SPDX-License-Identifier: MIT */
/*
 * A TURN client (RFC 8656), sans-I/O: see turn.h.
 *
 * Every request is a transaction of its own (punch_turn_txn): its bytes are
 * kept for the retransmissions, and made anew (a new transaction id) when
 * the server asks for credentials (401) or a fresh nonce (438).
 */
#include "core/turn.h"

#include <stdio.h>
#include <string.h>

#include "wire/stun.h"

/* RFC 8489 §6.2.1: RTO 500 ms, doubled, Rc = 7 tries, and after the last
 * one Rm = 16 times the first RTO (39.5 s in all). */
#define TURN_RTO_MS 500
#define TURN_TRIES  7
#define TURN_RM     16
/* RFC 8656 §7.2: 600 s unless asked; refreshed a minute before the end
 * (or halfway, for a short one). */
#define TURN_DEFAULT_LIFETIME_S 600
#define TURN_REFRESH_MARGIN_S   60
/* RFC 8656 §9: permissions last 300 s, §12: channels 600 s; both are
 * renewed a minute early. */
#define TURN_PERMISSION_MS       (300 * 1000)
#define TURN_CHANNEL_MS          (600 * 1000)
#define TURN_PERMISSION_RENEW_MS (240 * 1000)
#define TURN_CHANNEL_RENEW_MS    (540 * 1000)
/* RFC 8656 §12: once a channel binding expired, neither its number nor its
 * peer address may be bound to another for 5 minutes. */
#define TURN_QUARANTINE_MS (300 * 1000)
/* A request's copy reaches the server at most this long after it left:
 * the server's lifetime for it may start that much later than ours. */
#define TURN_TRIP_MS 5000
/* RFC 8656 §18: Allocation Mismatch (the server has no allocation of ours). */
#define TURN_ALLOCATION_MISMATCH 437
/* A peer's request that got no answer or an error: tried again later. */
#define TURN_PEER_RETRY_MS 5000
/* RFC 8656 §18.8: REQUESTED-TRANSPORT's protocol (UDP) in the top byte. */
#define TURN_TRANSPORT_UDP (17u << 24)

static bool copy_cred(char *dst, const char *src)
{
    if (!src || !src[0] || strlen(src) >= PUNCH_TURN_CRED_MAX)
        return false;
    memcpy(dst, src, strlen(src) + 1);
    return true;
}

static void queue(punch_turn *t, const uint8_t *buf, size_t len)
{
    if (t->tx_count == PUNCH_TURN_TXQ) { /* the oldest goes: it is retransmitted anyway */
        t->tx_head = (t->tx_head + 1) % PUNCH_TURN_TXQ;
        t->tx_count--;
    }
    unsigned slot = (t->tx_head + t->tx_count) % PUNCH_TURN_TXQ;
    memcpy(t->txq[slot], buf, len);
    t->txq_len[slot] = (uint16_t)len;
    t->tx_count++;
}

static void fail(punch_turn *t, const char *why)
{
    t->state = PUNCH_TURN_FAILED;
    snprintf(t->why, sizeof(t->why), "%s", why);
    t->alloc_txn.active = false;
    for (int i = 0; i < PUNCH_TURN_MAX_PEERS; i++)
        t->peers[i].permit_txn.active = t->peers[i].bind_txn.active = false;
}

/* What a request of txn's method carries, before its credentials. */
static void put_body(const punch_turn *t, const punch_turn_txn *txn, punch_stun_writer *w)
{
    const punch_turn_peer *p = txn->peer >= 0 ? &t->peers[txn->peer] : NULL;
    switch (txn->method) {
    case PUNCH_STUN_ALLOCATE:
        punch_stun_put_u32(w, PUNCH_STUN_ATTR_REQUESTED_TRANSPORT, TURN_TRANSPORT_UDP);
        if (t->cfg.lifetime_s)
            punch_stun_put_u32(w, PUNCH_STUN_ATTR_LIFETIME, t->cfg.lifetime_s);
        break;
    case PUNCH_STUN_REFRESH:
        punch_stun_put_u32(w, PUNCH_STUN_ATTR_LIFETIME,
                           t->cfg.lifetime_s ? t->cfg.lifetime_s : TURN_DEFAULT_LIFETIME_S);
        break;
    case PUNCH_STUN_CHANNEL_BIND:
        punch_stun_put_u16(w, PUNCH_STUN_ATTR_CHANNEL_NUMBER, p->channel);
        punch_stun_put_addr(w, PUNCH_STUN_ATTR_XOR_PEER_ADDRESS, &p->addr);
        break;
    case PUNCH_STUN_CREATE_PERMISSION:
        punch_stun_put_addr(w, PUNCH_STUN_ATTR_XOR_PEER_ADDRESS, &p->addr);
        break;
    default: break;
    }
}

/* A copy of txn's request leaves now. */
static void txn_queue(punch_turn *t, punch_turn_txn *txn, uint64_t now)
{
    punch_turn_peer *p = txn->peer >= 0 ? &t->peers[txn->peer] : NULL;
    if (p) {
        p->asked = true;
        p->asked_tx_ms = now;
    }
    if (p && txn->method == PUNCH_STUN_CHANNEL_BIND) {
        p->bind_tried = true;
        p->bind_tx_ms = now;
    }
    queue(t, txn->buf, txn->len);
}

/* txn's request made (anew: a new transaction id) and sent now. */
static void txn_send_new(punch_turn *t, punch_turn_txn *txn, uint64_t now)
{
    t->cfg.random(t->cfg.random_ctx, txn->txid, sizeof(txn->txid));
    punch_stun_writer w;
    punch_stun_writer_init(&w, txn->buf, sizeof(txn->buf), txn->method, PUNCH_STUN_REQUEST,
                           txn->txid);
    put_body(t, txn, &w);
    if (t->have_key) { /* RFC 8489 §9.2.4 */
        punch_stun_put(&w, PUNCH_STUN_ATTR_USERNAME, t->username, strlen(t->username));
        punch_stun_put(&w, PUNCH_STUN_ATTR_REALM, t->realm, strlen(t->realm));
        punch_stun_put(&w, PUNCH_STUN_ATTR_NONCE, t->nonce, strlen(t->nonce));
        punch_stun_put_integrity(&w, t->key, sizeof(t->key));
    }
    size_t len;
    if (punch_stun_finish(&w, &len) != 0) {
        fail(t, "cannot encode a TURN request");
        return;
    }
    txn->len = (uint16_t)len;
    txn->active = true;
    txn->authed = t->have_key;
    txn->auth_tries = 0;
    txn->tries = 1;
    txn->rto_ms = TURN_RTO_MS;
    txn->next_ms = now + txn->rto_ms;
    txn->sent_ms = now;
    txn_queue(t, txn, now);
}

static void txn_start(punch_turn *t, punch_turn_txn *txn, uint16_t method, int peer, uint64_t now)
{
    txn->method = method;
    txn->peer = peer;
    txn_send_new(t, txn, now);
}

/* The server has no allocation of ours any more (it expired, or the
 * server restarted): a new one, why saying so. Its bindings went with the
 * old one, so no quarantine holds: the live slots are permitted and bound
 * anew once allocated, the lingering ones are free. */
static void reallocate(punch_turn *t, uint64_t now, const char *why)
{
    snprintf(t->why, sizeof(t->why), "%s", why);
    t->reallocations++;
    t->state = PUNCH_TURN_ALLOCATING;
    for (int i = 0; i < PUNCH_TURN_MAX_PEERS; i++) {
        punch_turn_peer *p = &t->peers[i];
        if (!p->live) {
            memset(p, 0, sizeof(*p));
            continue;
        }
        p->permit_txn.active = p->bind_txn.active = false;
        p->permitted = p->bound = p->bind_tried = p->asked = false;
        p->permit_at_ms = p->bind_at_ms = 0; /* due once allocated */
    }
    txn_start(t, &t->alloc_txn, PUNCH_STUN_ALLOCATE, -1, now);
}

int punch_turn_init(punch_turn *t, const punch_turn_cfg *cfg, uint64_t now)
{
    if (!t || !cfg || !cfg->random ||
        (cfg->server.family != PUNCH_AF_INET && cfg->server.family != PUNCH_AF_INET6) ||
        cfg->server.port == 0)
        return PUNCH_ERR_INVAL;
    memset(t, 0, sizeof(*t));
    if (!copy_cred(t->username, cfg->username) || !copy_cred(t->password, cfg->password))
        return PUNCH_ERR_INVAL;
    t->cfg = *cfg;
    t->cfg.username = t->username;
    t->cfg.password = t->password;
    t->state = PUNCH_TURN_ALLOCATING;
    txn_start(t, &t->alloc_txn, PUNCH_STUN_ALLOCATE, -1, now);
    return 0;
}

void punch_turn_give_up(punch_turn *t, const char *why)
{
    if (t && t->state != PUNCH_TURN_FAILED)
        fail(t, why);
}

bool punch_turn_is_turn(const uint8_t *buf, size_t len)
{
    /* RFC 7983: ChannelData starts 0x40..0x4F; STUN with two zero bits. */
    return len >= 4 && (punch_stun_is_stun(buf, len) || (buf[0] & 0xF0) == 0x40);
}

/* A string attribute (REALM, NONCE) into dst, NUL-terminated. */
static bool read_text(const punch_stun_msg *m, uint16_t type, char *dst)
{
    const punch_stun_attr *a = punch_stun_find(m, type);
    if (!a || a->len == 0 || a->len >= PUNCH_TURN_CRED_MAX)
        return false;
    memcpy(dst, a->value, a->len);
    dst[a->len] = '\0';
    return memchr(dst, '\0', a->len) == NULL;
}

/* 401 or 438: the request again with the realm and nonce given (RFC
 * 8489 §9.2.5). False when that is no use: a 401 to a request that carried
 * the credentials refuses them; a third new nonce in a row is a loop. */
static bool authenticate(punch_turn *t, punch_turn_txn *txn, const punch_stun_msg *m, int code,
                         uint64_t now)
{
    if ((code == 401 && txn->authed) || txn->auth_tries >= 3 ||
        !read_text(m, PUNCH_STUN_ATTR_NONCE, t->nonce))
        return false;
    char realm[PUNCH_TURN_CRED_MAX];
    if (read_text(m, PUNCH_STUN_ATTR_REALM, realm))
        memcpy(t->realm, realm, sizeof(realm));
    else if (!t->have_key)
        return false;
    punch_stun_long_term_key_md5(t->username, t->realm, t->password, t->key);
    t->have_key = true;
    unsigned tries = txn->auth_tries + 1;
    txn_send_new(t, txn, now);
    txn->auth_tries = tries;
    return true;
}

/* The transaction a response answers, or NULL. */
static punch_turn_txn *find_txn(punch_turn *t, const uint8_t *txid)
{
    if (t->alloc_txn.active && memcmp(t->alloc_txn.txid, txid, 12) == 0)
        return &t->alloc_txn;
    for (int i = 0; i < PUNCH_TURN_MAX_PEERS; i++) {
        punch_turn_peer *p = &t->peers[i];
        if (p->permit_txn.active && memcmp(p->permit_txn.txid, txid, 12) == 0)
            return &p->permit_txn;
        if (p->bind_txn.active && memcmp(p->bind_txn.txid, txid, 12) == 0)
            return &p->bind_txn;
    }
    return NULL;
}

static uint64_t refresh_delay_ms(uint32_t lifetime_s)
{
    uint32_t s = lifetime_s > 2 * TURN_REFRESH_MARGIN_S ? lifetime_s - TURN_REFRESH_MARGIN_S
                                                        : lifetime_s / 2;
    return (uint64_t)(s ? s : 1) * 1000u;
}

/* A success response to the allocation's request (Allocate or Refresh). */
static void allocation_answered(punch_turn *t, const punch_stun_msg *m, uint64_t now)
{
    uint32_t lifetime = TURN_DEFAULT_LIFETIME_S;
    const punch_stun_attr *a = punch_stun_find(m, PUNCH_STUN_ATTR_LIFETIME);
    if (a && punch_stun_read_u32(a, &lifetime) != 0)
        lifetime = TURN_DEFAULT_LIFETIME_S;
    if (m->method == PUNCH_STUN_ALLOCATE) {
        const punch_stun_attr *r = punch_stun_find(m, PUNCH_STUN_ATTR_XOR_RELAYED_ADDRESS);
        if (!r || punch_stun_read_addr(m, r, &t->relayed) != 0) {
            fail(t, "the TURN server's Allocate answer has no relayed address");
            return;
        }
        const punch_stun_attr *x = punch_stun_find(m, PUNCH_STUN_ATTR_XOR_MAPPED_ADDRESS);
        if (x)
            punch_stun_read_addr(m, x, &t->mapped);
        t->state = PUNCH_TURN_ALLOCATED;
    } else {
        t->refreshes++;
    }
    t->refresh_at_ms = now + refresh_delay_ms(lifetime);
}

static void peer_answered(punch_turn *t, punch_turn_txn *txn, bool ok, uint64_t now)
{
    punch_turn_peer *p = &t->peers[txn->peer];
    bool permit = txn->method == PUNCH_STUN_CREATE_PERMISSION;
    uint64_t next = now + (ok ? (permit ? TURN_PERMISSION_RENEW_MS : TURN_CHANNEL_RENEW_MS)
                              : TURN_PEER_RETRY_MS);
    if (ok) /* the server's lifetime started no earlier than the first copy */
        p->permit_ok_ms = txn->sent_ms; /* a channel installs a permission too (§12) */
    if (permit) {
        p->permitted = ok || p->permitted;
        p->permit_at_ms = next;
    } else {
        p->bound = ok || p->bound;
        p->permitted = ok || p->permitted;
        p->bind_ok_ms = ok ? txn->sent_ms : p->bind_ok_ms;
        p->bind_at_ms = next;
    }
}

/* An error response: credentials asked, or the request refused. */
static void error_answered(punch_turn *t, punch_turn_txn *txn, const punch_stun_msg *m,
                           uint64_t now)
{
    int code = 0;
    const char *reason = "";
    size_t reason_len = 0;
    const punch_stun_attr *e = punch_stun_find(m, PUNCH_STUN_ATTR_ERROR_CODE);
    if (!e || punch_stun_read_error(e, &code, &reason, &reason_len) != 0) {
        t->dropped++;
        return;
    }
    if ((code == 401 || code == 438) && authenticate(t, txn, m, code, now))
        return;
    txn->active = false;
    if (code == TURN_ALLOCATION_MISMATCH && t->state == PUNCH_TURN_ALLOCATED) {
        reallocate(t, now, "the TURN server forgot our allocation (437): allocating anew");
        return;
    }
    if (txn->peer >= 0) {
        peer_answered(t, txn, false, now);
        return;
    }
    char why[96];
    snprintf(why, sizeof(why), "the TURN server refused %s: %d %.*s",
             txn->method == PUNCH_STUN_ALLOCATE ? "the allocation" : "the refresh", code,
             (int)(reason_len < 40 ? reason_len : 40), reason);
    fail(t, why);
}

/* A response: to which request, and authentic. A success to a request
 * that carried the credentials must be signed with the key (RFC 8489
 * §9.2.4); an error need not be (a 401 refusing them cannot be, a 438
 * comes with the nonce it replaces), and can only ask again or refuse. */
static void on_response(punch_turn *t, const punch_stun_msg *m, uint64_t now)
{
    punch_turn_txn *txn = find_txn(t, m->txid);
    if (!txn || txn->method != m->method ||
        (m->cls == PUNCH_STUN_SUCCESS && txn->authed &&
         punch_stun_check_integrity(m, t->key, sizeof(t->key)) != 0)) {
        t->dropped++;
        return;
    }
    if (m->cls == PUNCH_STUN_ERROR) {
        error_answered(t, txn, m, now);
        return;
    }
    txn->active = false;
    if (txn->peer >= 0)
        peer_answered(t, txn, true, now);
    else
        allocation_answered(t, m, now);
}

/* Whether the server surely still holds p's permission (channel):
 * refreshed, or let go less than its lifetime after the first copy of its
 * latest answered request (what we may send on). */
static bool still_permitted(const punch_turn_peer *p, uint64_t now)
{
    return p->used && p->permitted && (p->live || now < p->permit_ok_ms + TURN_PERMISSION_MS);
}

static bool still_bound(const punch_turn_peer *p, uint64_t now)
{
    return p->used && p->bound && (p->live || now < p->bind_ok_ms + TURN_CHANNEL_MS);
}

/* Whether a peer's datagram relayed to us is p's: a Data indication from
 * its address, ChannelData (channel) on its channel. The server sends
 * them as soon as it installed what we asked for, so from our first
 * request on (our answer may come later, or be lost) until the server's
 * permission (channel) may have expired, counted from our latest copy. */
static bool relayed_from(const punch_turn_peer *p, uint64_t now, bool channel)
{
    if (!p->used || !(channel ? p->bind_tried : p->asked))
        return false;
    uint64_t last = channel ? p->bind_tx_ms : p->asked_tx_ms;
    return p->live || now < last + TURN_TRIP_MS + (channel ? TURN_CHANNEL_MS : TURN_PERMISSION_MS);
}

/* A Data indication (RFC 8656 §11.6): from a permitted peer only. */
static int on_data_indication(punch_turn *t, uint64_t now, const punch_stun_msg *m,
                              punch_addr *peer, const uint8_t **data, size_t *data_len)
{
    const punch_stun_attr *pa = punch_stun_find(m, PUNCH_STUN_ATTR_XOR_PEER_ADDRESS);
    const punch_stun_attr *d = punch_stun_find(m, PUNCH_STUN_ATTR_DATA);
    if (!pa || !d || punch_stun_read_addr(m, pa, peer) != 0) {
        t->dropped++;
        return 0;
    }
    for (int i = 0; i < PUNCH_TURN_MAX_PEERS; i++) {
        const punch_turn_peer *p = &t->peers[i];
        if (relayed_from(p, now, false) && punch_addr_equal(&p->addr, peer)) {
            *data = d->value;
            *data_len = d->len;
            return 1;
        }
    }
    t->dropped++;
    return 0;
}

static int on_channel_data(punch_turn *t, uint64_t now, const uint8_t *buf, size_t len,
                           punch_addr *peer, const uint8_t **data, size_t *data_len)
{
    uint16_t channel;
    if (punch_stun_channel_decode(buf, len, &channel, data, data_len) == 0)
        for (int i = 0; i < PUNCH_TURN_MAX_PEERS; i++)
            if (relayed_from(&t->peers[i], now, true) && t->peers[i].channel == channel) {
                *peer = t->peers[i].addr;
                return 1;
            }
    t->dropped++;
    return 0;
}

int punch_turn_handle(punch_turn *t, uint64_t now, const uint8_t *buf, size_t len,
                      punch_addr *peer, const uint8_t **data, size_t *data_len)
{
    if (!t || !buf || !peer || !data || !data_len)
        return 0;
    if (t->state == PUNCH_TURN_FAILED || !punch_turn_is_turn(buf, len)) {
        t->dropped++;
        return 0;
    }
    if ((buf[0] & 0xF0) == 0x40)
        return on_channel_data(t, now, buf, len, peer, data, data_len);
    punch_stun_msg m;
    if (punch_stun_decode(&m, buf, len) != 0 || m.classic) {
        t->dropped++;
        return 0;
    }
    if (m.cls == PUNCH_STUN_INDICATION && m.method == PUNCH_STUN_DATA)
        return on_data_indication(t, now, &m, peer, data, data_len);
    if (m.cls == PUNCH_STUN_SUCCESS || m.cls == PUNCH_STUN_ERROR)
        on_response(t, &m, now);
    else
        t->dropped++;
    return 0;
}

/* ---- time ---- */

static uint64_t txn_deadline(const punch_turn_txn *txn)
{
    return txn->active ? txn->next_ms : UINT64_MAX;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

uint64_t punch_turn_next_timeout(const punch_turn *t)
{
    if (!t || t->state == PUNCH_TURN_FAILED)
        return UINT64_MAX;
    uint64_t at = txn_deadline(&t->alloc_txn);
    if (t->state != PUNCH_TURN_ALLOCATED)
        return at;
    if (!t->alloc_txn.active)
        at = min_u64(at, t->refresh_at_ms);
    for (int i = 0; i < PUNCH_TURN_MAX_PEERS; i++) {
        const punch_turn_peer *p = &t->peers[i];
        if (!p->live)
            continue;
        at = min_u64(at, p->permit_txn.active ? p->permit_txn.next_ms : p->permit_at_ms);
        at = min_u64(at, p->bind_txn.active ? p->bind_txn.next_ms : p->bind_at_ms);
    }
    return at;
}

/* Retransmit txn when due; false when it ran out of tries. */
static bool txn_retransmit(punch_turn *t, punch_turn_txn *txn, uint64_t now)
{
    if (!txn->active || now < txn->next_ms)
        return true;
    if (txn->tries == TURN_TRIES) {
        txn->active = false;
        return false;
    }
    txn->tries++;
    txn->rto_ms *= 2;
    txn->next_ms = now + (txn->tries == TURN_TRIES ? TURN_RM * TURN_RTO_MS : txn->rto_ms);
    if (!t->cfg.reliable) /* a stream loses nothing: the same 39.5 s, one copy */
        txn_queue(t, txn, now);
    return true;
}

static void peer_timeout(punch_turn *t, int i, uint64_t now)
{
    punch_turn_peer *p = &t->peers[i];
    if (!txn_retransmit(t, &p->permit_txn, now))
        peer_answered(t, &p->permit_txn, false, now);
    if (!txn_retransmit(t, &p->bind_txn, now))
        peer_answered(t, &p->bind_txn, false, now);
    if (!p->permit_txn.active && now >= p->permit_at_ms)
        txn_start(t, &p->permit_txn, PUNCH_STUN_CREATE_PERMISSION, i, now);
    if (!p->bind_txn.active && now >= p->bind_at_ms)
        txn_start(t, &p->bind_txn, PUNCH_STUN_CHANNEL_BIND, i, now);
}

void punch_turn_handle_timeout(punch_turn *t, uint64_t now)
{
    if (!t || t->state == PUNCH_TURN_FAILED)
        return;
    if (!txn_retransmit(t, &t->alloc_txn, now)) {
        if (t->state == PUNCH_TURN_ALLOCATED)
            reallocate(t, now, "no answer from the TURN server to Refresh: allocating anew");
        else
            fail(t, "no answer from the TURN server");
        return;
    }
    if (t->state != PUNCH_TURN_ALLOCATED)
        return;
    if (!t->alloc_txn.active && now >= t->refresh_at_ms)
        txn_start(t, &t->alloc_txn, PUNCH_STUN_REFRESH, -1, now);
    for (int i = 0; i < PUNCH_TURN_MAX_PEERS && t->state == PUNCH_TURN_ALLOCATED; i++)
        if (t->peers[i].live)
            peer_timeout(t, i, now);
}

void punch_turn_refresh_now(punch_turn *t, uint64_t now)
{
    if (t && t->state == PUNCH_TURN_ALLOCATED && !t->alloc_txn.active)
        txn_start(t, &t->alloc_txn, PUNCH_STUN_REFRESH, -1, now);
}

int punch_turn_poll_transmit(punch_turn *t, uint8_t *buf, size_t cap, size_t *len)
{
    if (!t || !buf || !len)
        return PUNCH_ERR_INVAL;
    if (t->tx_count == 0)
        return 0;
    if (cap < t->txq_len[t->tx_head])
        return PUNCH_ERR_NOBUFS;
    *len = t->txq_len[t->tx_head];
    memcpy(buf, t->txq[t->tx_head], *len);
    t->tx_head = (t->tx_head + 1) % PUNCH_TURN_TXQ;
    t->tx_count--;
    return 1;
}

/* ---- peers and their data ---- */

/* The slot holding peer (live or lingering), or -1. */
static int find_peer(const punch_turn *t, const punch_addr *peer)
{
    for (int i = 0; i < PUNCH_TURN_MAX_PEERS; i++)
        if (t->peers[i].used && punch_addr_equal(&t->peers[i].addr, peer))
            return i;
    return -1;
}

uint64_t punch_turn_reuse_at(const punch_turn *t, int i)
{
    if (!t || i < 0 || i >= PUNCH_TURN_MAX_PEERS)
        return UINT64_MAX;
    const punch_turn_peer *p = &t->peers[i];
    if (!p->used || !p->bind_tried)
        return p->live ? UINT64_MAX : 0; /* a permission alone has no quarantine */
    if (p->live)
        return UINT64_MAX;
    return p->bind_tx_ms + TURN_TRIP_MS + TURN_CHANNEL_MS + TURN_QUARANTINE_MS;
}

/* A slot for a new address: a free one, else the lingering one whose
 * quarantine ended first; -1 when none has. */
static int free_slot(const punch_turn *t, uint64_t now)
{
    int best = -1;
    uint64_t best_at = UINT64_MAX;
    for (int i = 0; i < PUNCH_TURN_MAX_PEERS; i++) {
        uint64_t at = punch_turn_reuse_at(t, i);
        if (at <= now && at < best_at) {
            best = i;
            best_at = at;
        }
    }
    return best;
}

int punch_turn_permit(punch_turn *t, uint64_t now, const punch_addr *peer)
{
    if (!t || !peer || t->state != PUNCH_TURN_ALLOCATED || peer->family != t->relayed.family)
        return PUNCH_ERR_INVAL;
    int i = find_peer(t, peer);
    if (i >= 0 && t->peers[i].live)
        return 0;
    punch_turn_peer *p;
    if (i >= 0) { /* lingering: the same channel and address again (§12 allows it) */
        p = &t->peers[i];
        p->permitted = still_permitted(p, now);
        p->bound = still_bound(p, now);
    } else {
        if ((i = free_slot(t, now)) < 0) {
            t->no_slot++;
            return PUNCH_ERR_LIMIT;
        }
        p = &t->peers[i];
        memset(p, 0, sizeof(*p));
        p->used = true;
        p->addr = *peer;
        p->channel = (uint16_t)(PUNCH_STUN_CHANNEL_MIN + i);
    }
    p->live = true;
    p->permit_at_ms = p->bind_at_ms = now;
    peer_timeout(t, i, now);
    return 0;
}

int punch_turn_release(punch_turn *t, const punch_addr *peer)
{
    int i = t && peer ? find_peer(t, peer) : -1;
    if (i < 0 || !t->peers[i].live)
        return PUNCH_ERR_NOTFOUND;
    punch_turn_peer *p = &t->peers[i];
    /* An answer still on its way is dropped as unknown: the lifetimes
     * counted from the copies sent (bind_tx_ms) cover what it started. */
    p->live = false;
    p->permit_txn.active = p->bind_txn.active = false;
    return 0;
}

int punch_turn_wrap(punch_turn *t, const punch_addr *peer, const uint8_t *data, size_t len,
                    uint8_t *out, size_t cap, size_t *out_len)
{
    if (!t || !peer || (!data && len) || !out || !out_len)
        return PUNCH_ERR_INVAL;
    int i = find_peer(t, peer);
    if (i < 0 || !t->peers[i].live || t->state != PUNCH_TURN_ALLOCATED)
        return PUNCH_ERR_NOTFOUND;
    const punch_turn_peer *p = &t->peers[i];
    if (p->bound)
        return punch_stun_channel_encode(out, cap, p->channel, data, len, false, out_len);
    uint8_t txid[12];
    t->cfg.random(t->cfg.random_ctx, txid, sizeof(txid));
    punch_stun_writer w;
    punch_stun_writer_init(&w, out, cap, PUNCH_STUN_SEND, PUNCH_STUN_INDICATION, txid);
    punch_stun_put_addr(&w, PUNCH_STUN_ATTR_XOR_PEER_ADDRESS, peer);
    punch_stun_put(&w, PUNCH_STUN_ATTR_DATA, data, len);
    return punch_stun_finish(&w, out_len);
}
