/* SPDX-License-Identifier: MIT */
/* Messages between the members of a punchd cluster: made, signed, checked.
 * See cluster.h. */
#include "server/cluster.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "wire/bytes.h"

#define VERSION 2
_Static_assert(PUNCH_CLUSTER_MAC_LEN == crypto_auth_BYTES, "crypto_auth's MAC");
_Static_assert(PUNCH_CLUSTER_SECRET_LEN == crypto_auth_KEYBYTES, "crypto_auth's key");
_Static_assert(PUNCH_CLUSTER_OWNER_AT + PUNCH_KEY_LEN + PUNCH_MSG_ENDPOINT_LEN ==
                   PUNCH_CLUSTER_HEADER_LEN,
               "the owner's key, then the member's address, end the header");

void punch_cluster_init(punch_cluster *c, const uint8_t secret[PUNCH_CLUSTER_SECRET_LEN],
                        const uint8_t self[PUNCH_CLUSTER_MEMBER_LEN])
{
    memset(c, 0, sizeof(*c));
    memcpy(c->secret, secret, PUNCH_CLUSTER_SECRET_LEN);
    memcpy(c->self, self, PUNCH_CLUSTER_MEMBER_LEN);
}

int punch_cluster_remember_intros(punch_cluster *c)
{
    c->seen = calloc((size_t)PUNCH_CLUSTER_REPLAY_BUCKETS * PUNCH_CLUSTER_REPLAY_WAYS,
                     sizeof(*c->seen));
    return c->seen ? 0 : PUNCH_ERR_NOMEM;
}

void punch_cluster_clear(punch_cluster *c)
{
    sodium_memzero(c->secret, sizeof(c->secret));
    free(c->seen);
    c->seen = NULL;
}

static void put64(uint8_t *p, uint64_t v)
{
    punch_put32(p, (uint32_t)(v >> 32));
    punch_put32(p + 4, (uint32_t)v);
}

static uint64_t get64(const uint8_t *p)
{
    return ((uint64_t)punch_get32(p) << 32) | punch_get32(p + 4);
}

/* A TURN's peer as a TURN_ADDR message (its MAC bytes left zero). */
static int encode_relayed(const punch_cluster_msg *m, uint8_t *buf, size_t cap, size_t *len)
{
    if (m->peer.relayed.family == PUNCH_AF_NONE)
        return PUNCH_ERR_INVAL;
    punch_msg t = {.type = PUNCH_MSG_TURN_ADDR, .relayed = m->peer.relayed};
    memcpy(t.txid, m->txid, PUNCH_MSG_TXID_LEN);
    memcpy(t.session, m->session, PUNCH_MSG_SESSION_LEN);
    memcpy(t.key, m->peer.key, PUNCH_KEY_LEN);
    return punch_msg_encode(&t, buf, cap, len);
}

/* The peer as an INTRODUCE message (its own MAC bytes left zero: the
 * cluster's MAC covers them); a TURN's as a TURN_ADDR. */
static int encode_peer(const punch_cluster_msg *m, uint8_t *buf, size_t cap, size_t *len)
{
    const punch_rendezvous_peer_info *p = &m->peer;
    if (m->type == PUNCH_CLUSTER_TURN)
        return encode_relayed(m, buf, cap, len);
    if (p->n_private > PUNCH_MSG_MAX_PRIVATE)
        return PUNCH_ERR_INVAL;
    punch_msg in = {.type = PUNCH_MSG_INTRODUCE, .public_addr = p->public_addr,
                    .n_private = p->n_private, .n_mapped = p->n_mapped, .flags = m->flags,
                    .rtt_ms = p->rtt_ms, .nat_mapping = p->nat_mapping,
                    .nat_step = p->nat_step, .nat_port = p->nat_port};
    memcpy(in.txid, m->txid, PUNCH_MSG_TXID_LEN);
    memcpy(in.session, m->session, PUNCH_MSG_SESSION_LEN);
    memcpy(in.key, p->key, PUNCH_KEY_LEN);
    memcpy(in.name, p->name, sizeof(in.name));
    memcpy(in.private_addr, p->private_addr, p->n_private * sizeof(punch_addr));
    return punch_msg_encode(&in, buf, cap, len);
}

/* Header, peer, MAC. Returns 0, PUNCH_ERR_NOBUFS or PUNCH_ERR_INVAL. */
static int encode(punch_cluster *c, const punch_cluster_msg *m, uint8_t *buf, size_t cap,
                  size_t *len)
{
    size_t inner;
    if (cap < PUNCH_CLUSTER_HEADER_LEN + PUNCH_CLUSTER_MAC_LEN)
        return PUNCH_ERR_NOBUFS;
    int rc = encode_peer(m, buf + PUNCH_CLUSTER_HEADER_LEN,
                         cap - PUNCH_CLUSTER_HEADER_LEN - PUNCH_CLUSTER_MAC_LEN, &inner);
    if (rc != 0)
        return rc;
    uint8_t *p = buf;
    *p++ = 'P';
    *p++ = 'C';
    *p++ = VERSION;
    *p++ = (uint8_t)m->type;
    memcpy(p, m->from, PUNCH_CLUSTER_MEMBER_LEN);
    memcpy(p + PUNCH_CLUSTER_MEMBER_LEN, m->to, PUNCH_CLUSTER_MEMBER_LEN);
    p += 2 * PUNCH_CLUSTER_MEMBER_LEN;
    put64(p, m->stamp_ms);
    memcpy(p + 8, m->target_key, PUNCH_KEY_LEN);
    if (punch_msg_put_endpoint(p + 8 + PUNCH_KEY_LEN, &m->member_addr) != 0 &&
        m->member_addr.family != PUNCH_AF_NONE)
        return PUNCH_ERR_INVAL;
    size_t signed_len = PUNCH_CLUSTER_HEADER_LEN + inner;
    crypto_auth(buf + signed_len, buf, signed_len, c->secret);
    *len = signed_len + PUNCH_CLUSTER_MAC_LEN;
    c->counters.sent++;
    return 0;
}

int punch_cluster_record(punch_cluster *c, const punch_rendezvous_peer_info *peer,
                         uint64_t expiry_ms, uint8_t *buf, size_t cap, size_t *len)
{
    punch_cluster_msg m = {.type = PUNCH_CLUSTER_RECORD, .stamp_ms = expiry_ms, .peer = *peer,
                           .member_addr = c->self_addr};
    memcpy(m.from, c->self, PUNCH_CLUSTER_MEMBER_LEN);
    memcpy(m.target_key, peer->key, PUNCH_KEY_LEN);
    return encode(c, &m, buf, cap, len);
}

int punch_cluster_intro(punch_cluster *c, const uint8_t to[PUNCH_CLUSTER_MEMBER_LEN],
                        const uint8_t target_key[PUNCH_KEY_LEN],
                        const punch_rendezvous_peer_info *asker,
                        const uint8_t txid[PUNCH_MSG_TXID_LEN],
                        const uint8_t session[PUNCH_MSG_SESSION_LEN], uint8_t flags,
                        uint64_t now_ms, uint8_t *buf, size_t cap, size_t *len)
{
    punch_cluster_msg m = {.type = PUNCH_CLUSTER_INTRO, .stamp_ms = now_ms, .peer = *asker,
                           .flags = flags, .member_addr = c->self_addr};
    memcpy(m.from, c->self, PUNCH_CLUSTER_MEMBER_LEN);
    memcpy(m.to, to, PUNCH_CLUSTER_MEMBER_LEN);
    memcpy(m.target_key, target_key, PUNCH_KEY_LEN);
    memcpy(m.txid, txid, PUNCH_MSG_TXID_LEN);
    memcpy(m.session, session, PUNCH_MSG_SESSION_LEN);
    return encode(c, &m, buf, cap, len);
}

int punch_cluster_turn(punch_cluster *c, const uint8_t to[PUNCH_CLUSTER_MEMBER_LEN],
                       const uint8_t target_key[PUNCH_KEY_LEN],
                       const punch_rendezvous_peer_info *peer,
                       const uint8_t txid[PUNCH_MSG_TXID_LEN],
                       const uint8_t session[PUNCH_MSG_SESSION_LEN], uint64_t now_ms,
                       uint8_t *buf, size_t cap, size_t *len)
{
    punch_cluster_msg m = {.type = PUNCH_CLUSTER_TURN, .stamp_ms = now_ms,
                           .member_addr = c->self_addr};
    memcpy(m.from, c->self, PUNCH_CLUSTER_MEMBER_LEN);
    memcpy(m.to, to, PUNCH_CLUSTER_MEMBER_LEN);
    memcpy(m.target_key, target_key, PUNCH_KEY_LEN);
    memcpy(m.peer.key, peer->key, PUNCH_KEY_LEN);
    m.peer.relayed = peer->relayed;
    memcpy(m.txid, txid, PUNCH_MSG_TXID_LEN);
    memcpy(m.session, session, PUNCH_MSG_SESSION_LEN);
    return encode(c, &m, buf, cap, len);
}

void punch_cluster_session_id(const punch_cluster *c, const uint8_t asker_key[PUNCH_KEY_LEN],
                              const uint8_t txid[PUNCH_MSG_TXID_LEN],
                              uint8_t id[PUNCH_MSG_SESSION_LEN])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, c->secret, sizeof(c->secret), PUNCH_MSG_SESSION_LEN);
    crypto_generichash_update(&st, (const uint8_t *)"session", 7);
    crypto_generichash_update(&st, asker_key, PUNCH_KEY_LEN);
    crypto_generichash_update(&st, txid, PUNCH_MSG_TXID_LEN);
    crypto_generichash_final(&st, id, PUNCH_MSG_SESSION_LEN);
}

static void relayed_of(const punch_msg *in, punch_cluster_msg *m)
{
    memcpy(m->peer.key, in->key, PUNCH_KEY_LEN);
    m->peer.relayed = in->relayed;
    memcpy(m->txid, in->txid, PUNCH_MSG_TXID_LEN);
    memcpy(m->session, in->session, PUNCH_MSG_SESSION_LEN);
}

static void peer_of(const punch_msg *in, punch_cluster_msg *m)
{
    punch_rendezvous_peer_info *p = &m->peer;
    memcpy(p->name, in->name, sizeof(p->name));
    memcpy(p->key, in->key, PUNCH_KEY_LEN);
    p->public_addr = in->public_addr;
    p->n_private = in->n_private;
    memcpy(p->private_addr, in->private_addr, in->n_private * sizeof(punch_addr));
    p->n_mapped = in->n_mapped;
    p->rtt_ms = in->rtt_ms;
    p->nat_mapping = in->nat_mapping;
    p->nat_step = in->nat_step;
    p->nat_port = in->nat_port;
    memcpy(m->txid, in->txid, PUNCH_MSG_TXID_LEN);
    memcpy(m->session, in->session, PUNCH_MSG_SESSION_LEN);
    m->flags = in->flags;
}

/* MAC first, then the fields: nothing unsigned is even parsed. Returns 0,
 * PUNCH_ERR_MALFORMED or PUNCH_ERR_INTEGRITY (counted). */
static int decode(punch_cluster *c, const uint8_t *buf, size_t len, punch_cluster_msg *m)
{
    memset(m, 0, sizeof(*m));
    if (len < PUNCH_CLUSTER_HEADER_LEN + PUNCH_CLUSTER_MAC_LEN || buf[0] != 'P' ||
        buf[1] != 'C' || buf[2] != VERSION) {
        c->counters.malformed++;
        return PUNCH_ERR_MALFORMED;
    }
    size_t signed_len = len - PUNCH_CLUSTER_MAC_LEN;
    if (crypto_auth_verify(buf + signed_len, buf, signed_len, c->secret) != 0) {
        c->counters.bad_mac++;
        return PUNCH_ERR_INTEGRITY;
    }
    punch_msg in;
    bool turn = buf[3] == PUNCH_CLUSTER_TURN;
    if ((buf[3] != PUNCH_CLUSTER_RECORD && buf[3] != PUNCH_CLUSTER_INTRO && !turn) ||
        punch_msg_decode(buf + PUNCH_CLUSTER_HEADER_LEN, signed_len - PUNCH_CLUSTER_HEADER_LEN,
                         &in) != 0 ||
        in.type != (turn ? PUNCH_MSG_TURN_ADDR : PUNCH_MSG_INTRODUCE)) {
        c->counters.malformed++; /* signed by a member, but not of this version's making */
        return PUNCH_ERR_MALFORMED;
    }
    const uint8_t *p = buf + 4;
    m->type = (punch_cluster_type)buf[3];
    memcpy(m->from, p, PUNCH_CLUSTER_MEMBER_LEN);
    memcpy(m->to, p + PUNCH_CLUSTER_MEMBER_LEN, PUNCH_CLUSTER_MEMBER_LEN);
    p += 2 * PUNCH_CLUSTER_MEMBER_LEN;
    m->stamp_ms = get64(p);
    memcpy(m->target_key, p + 8, PUNCH_KEY_LEN);
    const uint8_t *addr = p + 8 + PUNCH_KEY_LEN;
    if (!sodium_is_zero(addr, PUNCH_MSG_ENDPOINT_LEN) &&
        punch_msg_get_endpoint(addr, &m->member_addr) != 0) {
        c->counters.malformed++;
        return PUNCH_ERR_MALFORMED;
    }
    if (turn)
        relayed_of(&in, m);
    else
        peer_of(&in, m);
    return 0;
}

/* A decoded RECORD: its owner's key said the same both ways, and not
 * expired. Returns 0 (counted accepted), PUNCH_ERR_MALFORMED or
 * PUNCH_ERR_LIMIT (counted). */
static int check_record(punch_cluster *c, const punch_cluster_msg *m, uint64_t now_ms)
{
    if (memcmp(m->target_key, m->peer.key, PUNCH_KEY_LEN) != 0) {
        c->counters.malformed++; /* its owner's key said twice, two ways */
        return PUNCH_ERR_MALFORMED;
    }
    if (now_ms >= m->stamp_ms) {
        c->counters.stale++;
        return PUNCH_ERR_LIMIT;
    }
    c->counters.accepted++;
    return 0;
}

int punch_cluster_read_record(punch_cluster *c, const char *name, const uint8_t *buf,
                              size_t len, uint64_t now_ms, punch_cluster_msg *m)
{
    int rc = decode(c, buf, len, m);
    if (rc != 0)
        return rc;
    if (m->type != PUNCH_CLUSTER_RECORD || strcmp(m->peer.name, name) != 0) {
        c->counters.misdirected++;
        return PUNCH_ERR_NOTFOUND;
    }
    return check_record(c, m, now_ms);
}

/* An INTRO's MAC (unforgeable, so a key for the cache) seen for the first
 * time: remember it. A bucket is 8 ways; the oldest way goes, and when it
 * was still inside the window, INTROs as old as it can no longer be told
 * apart from replays: the floor rises to its stamp. */
static bool first_time(punch_cluster *c, const uint8_t *mac, uint64_t stamp_ms, uint64_t now_ms)
{
    uint32_t b = punch_get32(mac) % PUNCH_CLUSTER_REPLAY_BUCKETS;
    punch_cluster_seen *way = c->seen + (size_t)b * PUNCH_CLUSTER_REPLAY_WAYS;
    punch_cluster_seen *oldest = way;
    for (int i = 0; i < PUNCH_CLUSTER_REPLAY_WAYS; i++) {
        if (way[i].stamp_ms && memcmp(way[i].mac, mac, sizeof(way[i].mac)) == 0)
            return false;
        if (way[i].stamp_ms < oldest->stamp_ms)
            oldest = &way[i];
    }
    if (oldest->stamp_ms && now_ms < oldest->stamp_ms + PUNCH_CLUSTER_INTRO_WINDOW_MS &&
        oldest->stamp_ms > c->seen_floor_ms)
        c->seen_floor_ms = oldest->stamp_ms;
    memcpy(oldest->mac, mac, sizeof(oldest->mac));
    oldest->stamp_ms = stamp_ms;
    return true;
}

int punch_cluster_read_intro(punch_cluster *c, const uint8_t *buf, size_t len, uint64_t now_ms,
                             punch_cluster_msg *m)
{
    int rc = decode(c, buf, len, m);
    if (rc != 0)
        return rc;
    if (m->type == PUNCH_CLUSTER_RECORD ||
        memcmp(m->to, c->self, PUNCH_CLUSTER_MEMBER_LEN) != 0) {
        c->counters.misdirected++;
        return PUNCH_ERR_NOTFOUND;
    }
    /* A little early is a clock a little ahead; late is a replay or a jam. */
    if (m->stamp_ms > now_ms + PUNCH_CLUSTER_INTRO_WINDOW_MS ||
        now_ms >= m->stamp_ms + PUNCH_CLUSTER_INTRO_WINDOW_MS ||
        (c->seen && m->stamp_ms <= c->seen_floor_ms)) {
        c->counters.stale++;
        return PUNCH_ERR_LIMIT;
    }
    if (c->seen && !first_time(c, buf + len - PUNCH_CLUSTER_MAC_LEN, m->stamp_ms, now_ms)) {
        c->counters.replayed++;
        return PUNCH_ERR_LIMIT;
    }
    c->counters.accepted++;
    return 0;
}

int punch_cluster_read_channel(punch_cluster *c, const uint8_t *buf, size_t len,
                               uint64_t now_ms, punch_cluster_msg *m)
{
    /* The type picks the reader; each checks the MAC before anything else. */
    if (len < 4 || buf[3] != PUNCH_CLUSTER_RECORD)
        return punch_cluster_read_intro(c, buf, len, now_ms, m);
    int rc = decode(c, buf, len, m);
    return rc != 0 ? rc : check_record(c, m, now_ms);
}
