/* SPDX-License-Identifier: MIT */
/* A TURN server model for the simulator: see turn_server.h. */
#include "sim/turn_server.h"

#include <stdio.h>
#include <string.h>

#include "wire/stun.h"

/* RFC 8656 §7.2: 600 s unless asked, at most what the server allows (3600 s
 * by default, as coturn's max-allocate-lifetime). */
#define DEFAULT_LIFETIME_S 600
#define MAX_LIFETIME_S     3600
/* RFC 8656 §9: permissions 300 s; §12: channels 600 s, then 5 minutes
 * before the number or the address is bound to another. */
#define PERMISSION_MS (300 * 1000)
#define CHANNEL_MS    (600 * 1000)
#define QUARANTINE_MS (300 * 1000)
#define FIRST_RELAYED_PORT 49152 /* RFC 8656 §7.2: the dynamic range */

static bool copy_text(char *dst, const char *src)
{
    if (!src || !src[0] || strlen(src) >= PUNCH_SIM_TURN_CRED)
        return false;
    memcpy(dst, src, strlen(src) + 1);
    return true;
}

int punch_sim_turn_init(punch_sim_turn *s, const punch_sim_turn_cfg *cfg)
{
    if (!s || !cfg || cfg->addr.family == PUNCH_AF_NONE || !cfg->addr.port)
        return PUNCH_ERR_INVAL;
    memset(s, 0, sizeof(*s));
    char password[PUNCH_SIM_TURN_CRED];
    if (!copy_text(s->realm, cfg->realm) || !copy_text(s->username, cfg->username) ||
        !copy_text(password, cfg->password))
        return PUNCH_ERR_INVAL;
    s->cfg = *cfg;
    s->cfg.realm = s->realm;
    s->cfg.username = s->username;
    s->cfg.password = NULL; /* only its key is kept */
    punch_stun_long_term_key_md5(s->username, s->realm, password, s->key);
    s->next_port = FIRST_RELAYED_PORT;
    return 0;
}

void punch_sim_turn_forget(punch_sim_turn *s)
{
    memset(s->allocs, 0, sizeof(s->allocs));
}

/* ---- allocations, permissions, channels ---- */

/* Allocation i, unless its lifetime ended (then it is freed). */
static punch_sim_turn_alloc *live(punch_sim_turn *s, uint64_t now, int i)
{
    punch_sim_turn_alloc *a = &s->allocs[i];
    if (a->used && now >= a->until_ms) {
        memset(a, 0, sizeof(*a));
        s->stats.expired++;
    }
    return a->used ? a : NULL;
}

static punch_sim_turn_alloc *by_client(punch_sim_turn *s, uint64_t now, const punch_addr *c)
{
    for (int i = 0; i < PUNCH_SIM_TURN_ALLOCS; i++) {
        punch_sim_turn_alloc *a = live(s, now, i);
        if (a && punch_addr_equal(&a->client, c))
            return a;
    }
    return NULL;
}

static punch_sim_turn_alloc *by_relayed(punch_sim_turn *s, uint64_t now, const punch_addr *r)
{
    for (int i = 0; i < PUNCH_SIM_TURN_ALLOCS; i++) {
        punch_sim_turn_alloc *a = live(s, now, i);
        if (a && punch_addr_equal(&a->relayed, r))
            return a;
    }
    return NULL;
}

const punch_sim_turn_alloc *punch_sim_turn_find(const punch_sim_turn *s, uint64_t now_ms,
                                                const punch_addr *client)
{
    for (int i = 0; i < PUNCH_SIM_TURN_ALLOCS; i++) {
        const punch_sim_turn_alloc *a = &s->allocs[i];
        if (a->used && now_ms < a->until_ms && punch_addr_equal(&a->client, client))
            return a;
    }
    return NULL;
}

static punch_addr ip_of(const punch_addr *a)
{
    punch_addr ip = *a;
    ip.port = 0;
    return ip;
}

static bool permitted(const punch_sim_turn_alloc *a, uint64_t now, const punch_addr *peer)
{
    punch_addr ip = ip_of(peer);
    for (int i = 0; i < PUNCH_SIM_TURN_PERMS; i++)
        if (now < a->perms[i].until_ms && punch_addr_equal(&a->perms[i].ip, &ip))
            return true;
    return false;
}

/* Install or refresh the permission for peer's IP; false when full. */
static bool permit(punch_sim_turn_alloc *a, uint64_t now, const punch_addr *peer)
{
    punch_addr ip = ip_of(peer);
    punch_sim_turn_perm *room = NULL;
    for (int i = 0; i < PUNCH_SIM_TURN_PERMS; i++) {
        punch_sim_turn_perm *p = &a->perms[i];
        if (now < p->until_ms && punch_addr_equal(&p->ip, &ip)) {
            room = p;
            break;
        }
        if (!room && now >= p->until_ms)
            room = p;
    }
    if (!room)
        return false;
    *room = (punch_sim_turn_perm){.ip = ip, .until_ms = now + PERMISSION_MS};
    return true;
}

unsigned punch_sim_turn_perms(const punch_sim_turn_alloc *a, uint64_t now_ms)
{
    unsigned n = 0;
    for (int i = 0; i < PUNCH_SIM_TURN_PERMS; i++)
        n += now_ms < a->perms[i].until_ms;
    return n;
}

static bool held(const punch_sim_turn_channel *c, uint64_t now)
{
    return c->used && now < c->until_ms + QUARANTINE_MS;
}

unsigned punch_sim_turn_channels(const punch_sim_turn_alloc *a, uint64_t now_ms)
{
    unsigned n = 0;
    for (int i = 0; i < PUNCH_SIM_TURN_CHANNELS; i++)
        n += a->channels[i].used && now_ms < a->channels[i].until_ms;
    return n;
}

/* The channel bound to peer now, or NULL. */
static const punch_sim_turn_channel *channel_to(const punch_sim_turn_alloc *a, uint64_t now,
                                                const punch_addr *peer)
{
    for (int i = 0; i < PUNCH_SIM_TURN_CHANNELS; i++) {
        const punch_sim_turn_channel *c = &a->channels[i];
        if (c->used && now < c->until_ms && punch_addr_equal(&c->peer, peer))
            return c;
    }
    return NULL;
}

static const punch_sim_turn_channel *channel_numbered(const punch_sim_turn_alloc *a,
                                                      uint64_t now, uint16_t number)
{
    for (int i = 0; i < PUNCH_SIM_TURN_CHANNELS; i++) {
        const punch_sim_turn_channel *c = &a->channels[i];
        if (c->used && now < c->until_ms && c->number == number)
            return c;
    }
    return NULL;
}

/* Bind (or refresh) number to peer. Returns 0, 400 (the number or the
 * address bound, or held, to another) or 508 (no room). */
static int bind(punch_sim_turn_alloc *a, uint64_t now, uint16_t number, const punch_addr *peer)
{
    punch_sim_turn_channel *same = NULL, *room = NULL;
    for (int i = 0; i < PUNCH_SIM_TURN_CHANNELS; i++) {
        punch_sim_turn_channel *c = &a->channels[i];
        bool n_eq = c->number == number, p_eq = punch_addr_equal(&c->peer, peer);
        if (held(c, now) && n_eq && p_eq)
            same = c;
        else if (held(c, now) && (n_eq || p_eq))
            return 400;
        else if (!held(c, now) && !room)
            room = c;
    }
    punch_sim_turn_channel *c = same ? same : room;
    if (!c)
        return 508;
    *c = (punch_sim_turn_channel){.used = true, .number = number, .peer = *peer,
                                  .until_ms = now + CHANNEL_MS};
    return 0;
}

/* ---- answers ---- */

static void nonce_now(const punch_sim_turn *s, uint64_t now, char *buf, size_t cap)
{
    uint64_t period = (s->cfg.nonce_s ? s->cfg.nonce_s : 3600) * 1000ull;
    snprintf(buf, cap, "simnonce%llu", (unsigned long long)(now / period));
}

static void answer_start(punch_stun_writer *w, punch_sim_turn_out *out, const punch_stun_msg *m,
                         uint8_t cls)
{
    punch_stun_writer_init(w, out->buf, sizeof(out->buf), m->method, cls, m->txid);
}

static int answer_end(punch_stun_writer *w, punch_sim_turn_out *out)
{
    return punch_stun_finish(w, &out->len) == 0 ? 1 : 0;
}

/* An error; with realm and nonce for 401 and 438 (RFC 8489 §9.2.4). */
static int error(const punch_sim_turn *s, uint64_t now, const punch_stun_msg *m, int code,
                 const char *reason, punch_sim_turn_out *out)
{
    punch_stun_writer w;
    answer_start(&w, out, m, PUNCH_STUN_ERROR);
    punch_stun_put_error(&w, code, reason);
    if (code == 401 || code == 438) {
        char nonce[32];
        nonce_now(s, now, nonce, sizeof(nonce));
        punch_stun_put(&w, PUNCH_STUN_ATTR_REALM, s->realm, strlen(s->realm));
        punch_stun_put(&w, PUNCH_STUN_ATTR_NONCE, nonce, strlen(nonce));
    }
    return answer_end(&w, out);
}

/* A success, signed with the key. */
static int success(const punch_sim_turn *s, punch_stun_writer *w, punch_sim_turn_out *out)
{
    punch_stun_put_integrity(w, s->key, sizeof(s->key));
    return answer_end(w, out);
}

/* Whether m carries our user, the nonce of now and the key's integrity
 * (RFC 8489 §9.2.4); else *code: 401 or 438. */
static bool authentic(punch_sim_turn *s, uint64_t now, const punch_stun_msg *m, int *code)
{
    const punch_stun_attr *u = punch_stun_find(m, PUNCH_STUN_ATTR_USERNAME);
    const punch_stun_attr *n = punch_stun_find(m, PUNCH_STUN_ATTR_NONCE);
    if (!u || !n || !m->integrity.value) {
        s->stats.challenges++;
        *code = 401;
        return false;
    }
    char nonce[32];
    nonce_now(s, now, nonce, sizeof(nonce));
    if (u->len != strlen(s->username) || memcmp(u->value, s->username, u->len) != 0 ||
        punch_stun_check_integrity(m, s->key, sizeof(s->key)) != 0) {
        s->stats.bad_auth++;
        *code = 401;
        return false;
    }
    if (n->len != strlen(nonce) || memcmp(n->value, nonce, n->len) != 0) {
        s->stats.stale_nonces++;
        *code = 438;
        return false;
    }
    return true;
}

/* ---- requests ---- */

static uint32_t lifetime_asked(const punch_sim_turn *s, const punch_stun_msg *m)
{
    uint32_t v = DEFAULT_LIFETIME_S, max = s->cfg.max_lifetime_s ? s->cfg.max_lifetime_s
                                                                  : MAX_LIFETIME_S;
    const punch_stun_attr *a = punch_stun_find(m, PUNCH_STUN_ATTR_LIFETIME);
    if (a && punch_stun_read_u32(a, &v) != 0)
        v = DEFAULT_LIFETIME_S;
    return v > max ? max : v;
}

static int on_allocate(punch_sim_turn *s, uint64_t now, const punch_addr *client,
                       const punch_stun_msg *m, punch_sim_turn_out *out)
{
    punch_sim_turn_alloc *a = by_client(s, now, client);
    if (a && memcmp(a->txid, m->txid, 12) != 0) {
        s->stats.mismatches++;
        return error(s, now, m, 437, "Allocation Mismatch", out);
    }
    if (!a) {
        for (int i = 0; i < PUNCH_SIM_TURN_ALLOCS && !a; i++)
            if (!live(s, now, i))
                a = &s->allocs[i];
        if (!a) {
            s->stats.no_room++;
            return error(s, now, m, 508, "Insufficient Capacity", out);
        }
        uint32_t lifetime = lifetime_asked(s, m);
        *a = (punch_sim_turn_alloc){.used = true, .client = *client, .relayed = s->cfg.addr,
                                    .until_ms = now + lifetime * 1000ull};
        a->relayed.port = s->next_port++;
        memcpy(a->txid, m->txid, 12);
        s->stats.allocations++;
    }
    punch_stun_writer w;
    answer_start(&w, out, m, PUNCH_STUN_SUCCESS);
    punch_stun_put_addr(&w, PUNCH_STUN_ATTR_XOR_RELAYED_ADDRESS, &a->relayed);
    punch_stun_put_addr(&w, PUNCH_STUN_ATTR_XOR_MAPPED_ADDRESS, client);
    punch_stun_put_u32(&w, PUNCH_STUN_ATTR_LIFETIME, (uint32_t)((a->until_ms - now) / 1000));
    return success(s, &w, out);
}

static int on_refresh(punch_sim_turn *s, uint64_t now, punch_sim_turn_alloc *a,
                      const punch_stun_msg *m, punch_sim_turn_out *out)
{
    uint32_t lifetime = lifetime_asked(s, m);
    if (lifetime == 0) {
        memset(a, 0, sizeof(*a));
        s->stats.deleted++;
    } else {
        a->until_ms = now + lifetime * 1000ull;
        s->stats.refreshes++;
    }
    punch_stun_writer w;
    answer_start(&w, out, m, PUNCH_STUN_SUCCESS);
    punch_stun_put_u32(&w, PUNCH_STUN_ATTR_LIFETIME, lifetime);
    return success(s, &w, out);
}

/* CreatePermission or ChannelBind (RFC 8656 §10.2, §12.2). */
static int on_peer_request(punch_sim_turn *s, uint64_t now, punch_sim_turn_alloc *a,
                           const punch_stun_msg *m, punch_sim_turn_out *out)
{
    punch_addr peer;
    const punch_stun_attr *pa = punch_stun_find(m, PUNCH_STUN_ATTR_XOR_PEER_ADDRESS);
    if (!pa || punch_stun_read_addr(m, pa, &peer) != 0 || peer.family != a->relayed.family)
        return error(s, now, m, 400, "Bad Request", out);
    int code = 0;
    if (m->method == PUNCH_STUN_CHANNEL_BIND) {
        uint16_t number;
        const punch_stun_attr *cn = punch_stun_find(m, PUNCH_STUN_ATTR_CHANNEL_NUMBER);
        if (!cn || punch_stun_read_channel(cn, &number) != 0 || number < PUNCH_STUN_CHANNEL_MIN ||
            number > PUNCH_STUN_CHANNEL_MAX)
            return error(s, now, m, 400, "Bad Request", out);
        code = bind(a, now, number, &peer);
        s->stats.rebinds_refused += code == 400;
        s->stats.binds += code == 0;
    } else {
        s->stats.permissions++;
    }
    if (code == 0 && !permit(a, now, &peer)) /* a channel installs a permission (§12) */
        code = 508;
    s->stats.no_room += code == 508;
    if (code)
        return error(s, now, m, code, code == 400 ? "Bad Request" : "Insufficient Capacity", out);
    punch_stun_writer w;
    answer_start(&w, out, m, PUNCH_STUN_SUCCESS);
    return success(s, &w, out);
}

static int on_request(punch_sim_turn *s, uint64_t now, const punch_addr *client,
                      const punch_stun_msg *m, punch_sim_turn_out *out)
{
    int code;
    if (!authentic(s, now, m, &code))
        return error(s, now, m, code, code == 401 ? "Unauthorized" : "Stale Nonce", out);
    if (m->method == PUNCH_STUN_ALLOCATE)
        return on_allocate(s, now, client, m, out);
    punch_sim_turn_alloc *a = by_client(s, now, client);
    if (!a) {
        s->stats.mismatches++;
        return error(s, now, m, 437, "Allocation Mismatch", out);
    }
    if (m->method == PUNCH_STUN_REFRESH)
        return on_refresh(s, now, a, m, out);
    if (m->method == PUNCH_STUN_CREATE_PERMISSION || m->method == PUNCH_STUN_CHANNEL_BIND)
        return on_peer_request(s, now, a, m, out);
    return error(s, now, m, 400, "Bad Request", out);
}

/* ---- data ---- */

static int relay_out(punch_sim_turn *s, uint64_t now, const punch_sim_turn_alloc *a,
                     const punch_addr *peer, const uint8_t *data, size_t len,
                     punch_sim_turn_out *out)
{
    if (!permitted(a, now, peer) || len > sizeof(out->buf)) {
        s->stats.unsent++;
        return 0;
    }
    out->local = a->relayed;
    out->remote = *peer;
    memcpy(out->buf, data, len);
    out->len = len;
    s->stats.to_peers++;
    return 1;
}

/* A Send indication (RFC 8656 §11.4). */
static int on_send(punch_sim_turn *s, uint64_t now, const punch_addr *client,
                   const punch_stun_msg *m, punch_sim_turn_out *out)
{
    const punch_sim_turn_alloc *a = by_client(s, now, client);
    const punch_stun_attr *pa = punch_stun_find(m, PUNCH_STUN_ATTR_XOR_PEER_ADDRESS);
    const punch_stun_attr *d = punch_stun_find(m, PUNCH_STUN_ATTR_DATA);
    punch_addr peer;
    if (!a || !pa || !d || punch_stun_read_addr(m, pa, &peer) != 0) {
        s->stats.dropped++;
        return 0;
    }
    return relay_out(s, now, a, &peer, d->value, d->len, out);
}

/* ChannelData from a client (RFC 8656 §12.6). */
static int on_channel_data(punch_sim_turn *s, uint64_t now, const punch_addr *client,
                           const uint8_t *buf, size_t len, punch_sim_turn_out *out)
{
    const punch_sim_turn_alloc *a = by_client(s, now, client);
    uint16_t number;
    const uint8_t *data;
    size_t data_len;
    if (!a || punch_stun_channel_decode(buf, len, &number, &data, &data_len) != 0) {
        s->stats.dropped++;
        return 0;
    }
    const punch_sim_turn_channel *c = channel_numbered(a, now, number);
    if (!c) {
        s->stats.unsent++;
        return 0;
    }
    return relay_out(s, now, a, &c->peer, data, data_len, out);
}

/* A peer's datagram at relayed address a: to the client as ChannelData on
 * its channel, else as a Data indication; only with a permission (§9). */
static int from_peer(punch_sim_turn *s, uint64_t now, punch_sim_turn_alloc *a,
                     const punch_addr *peer, const uint8_t *data, size_t len,
                     punch_sim_turn_out *out)
{
    if (!permitted(a, now, peer)) {
        s->stats.filtered++;
        return 0;
    }
    out->local = s->cfg.addr;
    out->remote = a->client;
    const punch_sim_turn_channel *c = channel_to(a, now, peer);
    int rc;
    if (c) {
        rc = punch_stun_channel_encode(out->buf, sizeof(out->buf), c->number, data, len, false,
                                       &out->len);
    } else {
        uint8_t txid[12] = {0};
        memcpy(txid, &s->stats.to_clients, sizeof(s->stats.to_clients));
        punch_stun_writer w;
        punch_stun_writer_init(&w, out->buf, sizeof(out->buf), PUNCH_STUN_DATA,
                               PUNCH_STUN_INDICATION, txid);
        punch_stun_put_addr(&w, PUNCH_STUN_ATTR_XOR_PEER_ADDRESS, peer);
        punch_stun_put(&w, PUNCH_STUN_ATTR_DATA, data, len);
        rc = punch_stun_finish(&w, &out->len);
    }
    if (rc != 0) {
        s->stats.dropped++;
        return 0;
    }
    s->stats.to_clients++;
    return 1;
}

int punch_sim_turn_handle(punch_sim_turn *s, uint64_t now_ms, const punch_addr *local,
                          const punch_addr *remote, const uint8_t *data, size_t len,
                          punch_sim_turn_out *out)
{
    if (!punch_addr_equal(local, &s->cfg.addr)) {
        punch_sim_turn_alloc *a = by_relayed(s, now_ms, local);
        if (a)
            return from_peer(s, now_ms, a, remote, data, len, out);
        s->stats.dropped++;
        return 0;
    }
    out->local = s->cfg.addr;
    out->remote = *remote;
    if (len >= 4 && (data[0] & 0xF0) == 0x40)
        return on_channel_data(s, now_ms, remote, data, len, out);
    punch_stun_msg m;
    if (punch_stun_decode(&m, data, len) != 0 || m.classic) {
        s->stats.dropped++;
        return 0;
    }
    if (m.cls == PUNCH_STUN_REQUEST)
        return on_request(s, now_ms, remote, &m, out);
    if (m.cls == PUNCH_STUN_INDICATION && m.method == PUNCH_STUN_SEND)
        return on_send(s, now_ms, remote, &m, out);
    s->stats.dropped++;
    return 0;
}

/* ---- on a simulated host ---- */

static void turn_rx(void *ctx, punch_sim *sim, int host, uint64_t now_us,
                    const punch_sim_datagram *d)
{
    punch_sim_turn *s = ctx;
    punch_sim_turn_out *out = &s->out;
    if (d->proto && d->proto != PUNCH_IP_UDP)
        return;
    if (punch_sim_turn_handle(s, now_us / 1000, &d->local, &d->remote, d->data, d->len, out) == 1)
        punch_sim_send(sim, host,
                       &(punch_sim_datagram){.local = out->local, .remote = out->remote,
                                             .data = out->buf, .len = out->len});
}

int punch_sim_turn_attach(punch_sim_turn *s, punch_sim *sim, int host)
{
    s->sim = sim;
    s->host = host;
    return punch_sim_attach(sim, host, &(punch_sim_endpoint){.on_datagram = turn_rx, .ctx = s});
}
