/* SPDX-License-Identifier: MIT */
/* punch messages: see msg.h. */
#include "wire/msg.h"

#include <string.h>

#include "wire/bytes.h"

/* A bounded cursor: every read or write checks the room first and, once
 * out of room, fails every later call (so a decoder checks once, at the end). */
typedef struct cursor {
    uint8_t *w;          /* writing: the buffer; reading: NULL */
    const uint8_t *r;    /* reading: the buffer */
    size_t len, at;
    int err;             /* the first failure, 0 while all is well */
} cursor;

/* A value out of range: the caller's mistake when writing, the sender's
 * when reading. */
static void invalid(cursor *c)
{
    if (!c->err)
        c->err = c->w ? PUNCH_ERR_INVAL : PUNCH_ERR_MALFORMED;
}

static bool room(cursor *c, size_t n)
{
    if (!c->err && c->len - c->at < n)
        c->err = c->w ? PUNCH_ERR_NOBUFS : PUNCH_ERR_MALFORMED;
    return c->err == 0;
}

static void put_bytes(cursor *c, const void *p, size_t n)
{
    if (room(c, n)) {
        if (n)
            memcpy(c->w + c->at, p, n);
        c->at += n;
    }
}

static void put_u8(cursor *c, uint8_t v)
{
    put_bytes(c, &v, 1);
}

static void put_u16(cursor *c, uint16_t v)
{
    uint8_t b[2];
    punch_put16(b, v);
    put_bytes(c, b, 2);
}

static void put_zero(cursor *c, size_t n)
{
    if (room(c, n)) {
        memset(c->w + c->at, 0, n);
        c->at += n;
    }
}

int punch_msg_put_endpoint(uint8_t out[PUNCH_MSG_ENDPOINT_LEN], const punch_addr *a)
{
    memset(out, 0, PUNCH_MSG_ENDPOINT_LEN);
    if (a->family != PUNCH_AF_INET && a->family != PUNCH_AF_INET6)
        return PUNCH_ERR_INVAL;
    out[0] = a->family;
    punch_put16(out + 1, a->port);
    memcpy(out + 3, a->ip, a->family == PUNCH_AF_INET ? 4 : 16);
    return 0;
}

static void put_endpoint(cursor *c, const punch_addr *a)
{
    uint8_t b[PUNCH_MSG_ENDPOINT_LEN];
    if (punch_msg_put_endpoint(b, a) != 0) {
        invalid(c);
        return;
    }
    put_bytes(c, b, sizeof(b));
}

/* Names (punch_msg_valid_name) as n bytes, not NUL-terminated. */
static bool valid_name(const uint8_t *p, size_t n)
{
    if (n == 0 || n > PUNCH_MSG_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (p[i] <= 0x20 || p[i] >= 0x7F || p[i] == '"' || p[i] == '\\')
            return false;
    return true;
}

bool punch_msg_valid_name(const char *name)
{
    const char *end = name ? memchr(name, '\0', PUNCH_MSG_NAME_MAX + 1) : NULL;
    return end && valid_name((const uint8_t *)name, (size_t)(end - name));
}

static void put_name(cursor *c, const char *name)
{
    if (!punch_msg_valid_name(name)) {
        invalid(c);
        return;
    }
    size_t n = strlen(name);
    put_u8(c, (uint8_t)n);
    put_bytes(c, name, n);
}

static const uint8_t *get_bytes(cursor *c, size_t n)
{
    if (!room(c, n))
        return NULL;
    const uint8_t *p = c->r + c->at;
    c->at += n;
    return p;
}

static void get_copy(cursor *c, void *out, size_t n)
{
    const uint8_t *p = get_bytes(c, n);
    if (p)
        memcpy(out, p, n);
}

static uint8_t get_u8(cursor *c)
{
    const uint8_t *p = get_bytes(c, 1);
    return p ? p[0] : 0;
}

static uint16_t get_u16(cursor *c)
{
    const uint8_t *p = get_bytes(c, 2);
    return p ? punch_get16(p) : 0;
}

int punch_msg_get_endpoint(const uint8_t in[PUNCH_MSG_ENDPOINT_LEN], punch_addr *a)
{
    static const uint8_t zero[12];
    memset(a, 0, sizeof(*a));
    /* An IPv4 endpoint keeps the unused 12 bytes zero: one encoding only. */
    if ((in[0] != PUNCH_AF_INET && in[0] != PUNCH_AF_INET6) ||
        (in[0] == PUNCH_AF_INET && memcmp(in + 7, zero, sizeof(zero)) != 0))
        return PUNCH_ERR_MALFORMED;
    a->family = in[0];
    a->port = punch_get16(in + 1);
    memcpy(a->ip, in + 3, a->family == PUNCH_AF_INET ? 4 : 16);
    return 0;
}

static void get_endpoint(cursor *c, punch_addr *a)
{
    const uint8_t *p = get_bytes(c, PUNCH_MSG_ENDPOINT_LEN);
    memset(a, 0, sizeof(*a));
    if (p && punch_msg_get_endpoint(p, a) != 0)
        invalid(c);
}

static void get_name(cursor *c, char out[PUNCH_MSG_NAME_MAX + 1])
{
    size_t n = get_u8(c);
    const uint8_t *p = get_bytes(c, n);
    out[0] = '\0';
    if (!p)
        return;
    if (!valid_name(p, n)) {
        invalid(c);
        return;
    }
    memcpy(out, p, n);
    out[n] = '\0';
}

static void get_private(cursor *c, punch_msg *m)
{
    m->n_private = get_u8(c);
    if (m->n_private > PUNCH_MSG_MAX_PRIVATE) {
        invalid(c);
        return;
    }
    for (size_t i = 0; i < m->n_private; i++)
        get_endpoint(c, &m->private_addr[i]);
}

static void put_private(cursor *c, const punch_msg *m)
{
    if (m->n_private > PUNCH_MSG_MAX_PRIVATE) {
        invalid(c);
        return;
    }
    put_u8(c, (uint8_t)m->n_private);
    for (size_t i = 0; i < m->n_private; i++)
        put_endpoint(c, &m->private_addr[i]);
}

bool punch_msg_has_mac(punch_msg_type type)
{
    switch (type) {
    case PUNCH_MSG_REGISTER:
    case PUNCH_MSG_REGISTERED:
    case PUNCH_MSG_CONNECT:
    case PUNCH_MSG_INTRODUCE:
    case PUNCH_MSG_REFUSED:
    case PUNCH_MSG_TURN_ADDR:
    case PUNCH_MSG_RELAY_RATE:
        return true;
    default:
        return false;
    }
}

bool punch_msg_is_msg(const uint8_t *buf, size_t len)
{
    return buf && len >= 2 && buf[0] == PUNCH_MSG_MAGIC;
}

/* The body of each type, after magic and type; the same function reads
 * and writes, so the two can never disagree on a layout. */
typedef struct codec {
    cursor c;
    bool writing;
} codec;

static void field(codec *k, void *p, size_t n)
{
    if (k->writing)
        put_bytes(&k->c, p, n);
    else
        get_copy(&k->c, p, n);
}

static void field_u16(codec *k, uint16_t *v)
{
    if (k->writing)
        put_u16(&k->c, *v);
    else
        *v = get_u16(&k->c);
}

static void field_u8(codec *k, uint8_t *v)
{
    if (k->writing)
        put_u8(&k->c, *v);
    else
        *v = get_u8(&k->c);
}

static void field_endpoint(codec *k, punch_addr *a)
{
    if (k->writing)
        put_endpoint(&k->c, a);
    else
        get_endpoint(&k->c, a);
}

static void field_name(codec *k, char *name)
{
    if (k->writing)
        put_name(&k->c, name);
    else
        get_name(&k->c, name);
}

static void field_private(codec *k, punch_msg *m)
{
    if (k->writing)
        put_private(&k->c, m);
    else
        get_private(&k->c, m);
}

static void field_nat(codec *k, punch_msg *m)
{
    field_u8(k, &m->nat_mapping);
    if (m->nat_mapping > PUNCH_MSG_NAT_APDM)
        invalid(&k->c);
    field_u16(k, &m->nat_step);
    field_u16(k, &m->nat_port);
}

/* A rate: 1 or more (0 is malformed). */
static void field_rate(codec *k, uint32_t *v)
{
    uint8_t b[4];
    if (k->writing)
        punch_put32(b, *v);
    field(k, b, sizeof(b));
    if (!k->writing)
        *v = punch_get32(b);
    if (*v == 0)
        invalid(&k->c);
}

static void field_u64(codec *k, uint64_t *v)
{
    uint8_t b[8];
    for (int i = 0; k->writing && i < 8; i++)
        b[i] = (uint8_t)(*v >> (56 - 8 * i));
    field(k, b, sizeof(b));
    if (!k->writing) {
        *v = 0;
        for (int i = 0; i < 8; i++)
            *v = (*v << 8) | b[i];
    }
}

/* After field_private: how many of the private endpoints are mapped ones. */
static void field_mapped(codec *k, punch_msg *m)
{
    field_u8(k, &m->n_mapped);
    if (m->n_mapped > m->n_private)
        invalid(&k->c);
}

/* A token (REGISTER, REGISTERED): none, or exactly one. */
static void field_token(codec *k, punch_msg *m)
{
    field_u8(k, &m->token_len);
    if (m->token_len != 0 && m->token_len != PUNCH_MSG_TOKEN_LEN)
        invalid(&k->c);
    else
        field(k, m->token, m->token_len);
}

static void body_turn_addr(codec *k, punch_msg *m)
{
    field(k, m->txid, PUNCH_MSG_TXID_LEN);
    field(k, m->session, PUNCH_MSG_SESSION_LEN);
    field(k, m->key, PUNCH_MSG_KEY_LEN);
    field_endpoint(k, &m->relayed);
}

static void body_relay_rate(codec *k, punch_msg *m)
{
    field(k, m->session, PUNCH_MSG_SESSION_LEN);
    field(k, m->key, PUNCH_MSG_KEY_LEN);
    field_rate(k, &m->relay_bytes_per_s);
    field_rate(k, &m->relay_packets_per_s);
}

static void body_tcp_offer(codec *k, punch_msg *m)
{
    field_u8(k, &m->flags);
    if (m->flags & ~PUNCH_TCP_FLAGS_ALL)
        invalid(&k->c);
    field_u16(k, &m->attempt);
    if (m->attempt == 0)
        invalid(&k->c);
    field_u16(k, &m->delay_ms);
    field_endpoint(k, &m->public_addr);
    field_private(k, m);
}

static void body(codec *k, punch_msg *m)
{
    switch (m->type) {
    case PUNCH_MSG_HELLO:
        field(k, m->txid, PUNCH_MSG_TXID_LEN);
        /* Padding: zero when written, anything when read. */
        if (k->writing)
            put_zero(&k->c, PUNCH_MSG_HELLO_LEN - 2 - PUNCH_MSG_TXID_LEN);
        else
            get_bytes(&k->c, PUNCH_MSG_HELLO_LEN - 2 - PUNCH_MSG_TXID_LEN);
        break;
    case PUNCH_MSG_COOKIE:
        field(k, m->txid, PUNCH_MSG_TXID_LEN);
        field(k, m->cookie, PUNCH_MSG_COOKIE_LEN);
        field(k, m->key, PUNCH_MSG_KEY_LEN);
        field_u16(k, &m->second_port);
        break;
    case PUNCH_MSG_REGISTER:
        field(k, m->txid, PUNCH_MSG_TXID_LEN);
        field(k, m->cookie, PUNCH_MSG_COOKIE_LEN);
        field(k, m->key, PUNCH_MSG_KEY_LEN);
        field_name(k, m->name);
        field_private(k, m);
        field_u16(k, &m->rtt_ms);
        field_nat(k, m);
        field_mapped(k, m);
        field_u64(k, &m->sequence);
        field_token(k, m);
        break;
    case PUNCH_MSG_REGISTERED:
        field(k, m->txid, PUNCH_MSG_TXID_LEN);
        field_endpoint(k, &m->public_addr);
        field(k, m->cookie, PUNCH_MSG_COOKIE_LEN);
        field_u16(k, &m->keepalive_s);
        field_token(k, m);
        break;
    case PUNCH_MSG_CONNECT:
        field(k, m->txid, PUNCH_MSG_TXID_LEN);
        field(k, m->key, PUNCH_MSG_KEY_LEN);
        field(k, m->peer_key, PUNCH_MSG_KEY_LEN);
        field_name(k, m->name);
        break;
    case PUNCH_MSG_INTRODUCE:
        field(k, m->txid, PUNCH_MSG_TXID_LEN);
        field(k, m->session, PUNCH_MSG_SESSION_LEN);
        field(k, m->key, PUNCH_MSG_KEY_LEN);
        field_name(k, m->name);
        field_endpoint(k, &m->public_addr);
        field_private(k, m);
        field_u8(k, &m->flags);
        field_u16(k, &m->rtt_ms);
        field_nat(k, m);
        field_mapped(k, m);
        break;
    case PUNCH_MSG_REFUSED:
        field(k, m->txid, PUNCH_MSG_TXID_LEN);
        field_u16(k, &m->code);
        break;
    case PUNCH_MSG_RELAY:
        field(k, m->session, PUNCH_MSG_SESSION_LEN);
        break;
    case PUNCH_MSG_TURN_ADDR:
        body_turn_addr(k, m);
        break;
    case PUNCH_MSG_RELAY_RATE:
        body_relay_rate(k, m);
        break;
    case PUNCH_MSG_HANDSHAKE1:
    case PUNCH_MSG_HANDSHAKE2:
    case PUNCH_MSG_DATA:
        break;
    case PUNCH_MSG_TCP_OFFER:
        body_tcp_offer(k, m);
        break;
    default:
        invalid(&k->c);
    }
}

static bool carries_payload(punch_msg_type t)
{
    return t == PUNCH_MSG_RELAY || t == PUNCH_MSG_HANDSHAKE1 || t == PUNCH_MSG_HANDSHAKE2 ||
           t == PUNCH_MSG_DATA;
}

int punch_msg_decode(const uint8_t *buf, size_t len, punch_msg *m)
{
    if (!buf || !m)
        return PUNCH_ERR_INVAL;
    memset(m, 0, sizeof(*m));
    if (!punch_msg_is_msg(buf, len))
        return PUNCH_ERR_MALFORMED;
    m->type = (punch_msg_type)buf[1];
    codec k = {.c = {.r = buf, .len = len, .at = 2}};
    body(&k, m);
    if (k.c.err)
        return PUNCH_ERR_MALFORMED;
    if (carries_payload(m->type)) {
        m->payload = buf + k.c.at;
        m->payload_len = len - k.c.at;
        return 0;
    }
    if (punch_msg_has_mac(m->type)) {
        m->mac_offset = k.c.at;
        m->mac = get_bytes(&k.c, PUNCH_MSG_MAC_LEN);
    }
    return k.c.err || k.c.at != len ? PUNCH_ERR_MALFORMED : 0;
}

int punch_msg_encode(const punch_msg *m, uint8_t *buf, size_t cap, size_t *len)
{
    if (!m || !buf || !len || (!m->payload && m->payload_len))
        return PUNCH_ERR_INVAL;
    codec k = {.c = {.w = buf, .len = cap}, .writing = true};
    put_u8(&k.c, PUNCH_MSG_MAGIC);
    put_u8(&k.c, (uint8_t)m->type);
    /* body() takes a non-const message because the same code decodes. */
    punch_msg copy = *m;
    body(&k, &copy);
    if (carries_payload(m->type))
        put_bytes(&k.c, m->payload, m->payload_len);
    else if (punch_msg_has_mac(m->type))
        put_zero(&k.c, PUNCH_MSG_MAC_LEN);
    if (k.c.err)
        return k.c.err;
    *len = k.c.at;
    return 0;
}
