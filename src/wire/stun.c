/* SPDX-License-Identifier: MIT */
/* STUN codec: see stun.h. */
#include "wire/stun.h"

#include <stdint.h>
#include <string.h>

#include <nettle/hmac.h>
#include <nettle/md5.h>
#include <nettle/memops.h>
#include <zlib.h>

#include "wire/bytes.h"

uint16_t punch_stun_type(uint16_t method, uint8_t cls)
{
    /* RFC 8489 §5: M11..M7 C1 M6..M4 C0 M3..M0 */
    return (uint16_t)((method & 0x000F) | ((method & 0x0070) << 1) |
                      ((method & 0x0F80) << 2) | ((cls & 1u) << 4) |
                      ((cls & 2u) << 7));
}

static void split_type(uint16_t t, uint16_t *method, uint8_t *cls)
{
    *method = (uint16_t)((t & 0x000F) | ((t & 0x00E0) >> 1) | ((t & 0x3E00) >> 2));
    *cls = (uint8_t)(((t >> 4) & 1u) | ((t >> 7) & 2u));
}

static bool is_xor_type(uint16_t type)
{
    return type == PUNCH_STUN_ATTR_XOR_MAPPED_ADDRESS ||
           type == PUNCH_STUN_ATTR_XOR_PEER_ADDRESS ||
           type == PUNCH_STUN_ATTR_XOR_RELAYED_ADDRESS;
}

static bool is_known_type(uint16_t type)
{
    switch (type) {
    case PUNCH_STUN_ATTR_MAPPED_ADDRESS:
    case PUNCH_STUN_ATTR_RESPONSE_ADDRESS:
    case PUNCH_STUN_ATTR_CHANGE_REQUEST:
    case PUNCH_STUN_ATTR_SOURCE_ADDRESS:
    case PUNCH_STUN_ATTR_CHANGED_ADDRESS:
    case PUNCH_STUN_ATTR_USERNAME:
    case PUNCH_STUN_ATTR_MESSAGE_INTEGRITY:
    case PUNCH_STUN_ATTR_ERROR_CODE:
    case PUNCH_STUN_ATTR_UNKNOWN_ATTRIBUTES:
    case PUNCH_STUN_ATTR_CHANNEL_NUMBER:
    case PUNCH_STUN_ATTR_LIFETIME:
    case PUNCH_STUN_ATTR_XOR_PEER_ADDRESS:
    case PUNCH_STUN_ATTR_DATA:
    case PUNCH_STUN_ATTR_REALM:
    case PUNCH_STUN_ATTR_NONCE:
    case PUNCH_STUN_ATTR_XOR_RELAYED_ADDRESS:
    case PUNCH_STUN_ATTR_REQUESTED_ADDRESS_FAMILY:
    case PUNCH_STUN_ATTR_EVEN_PORT:
    case PUNCH_STUN_ATTR_REQUESTED_TRANSPORT:
    case PUNCH_STUN_ATTR_DONT_FRAGMENT:
    case PUNCH_STUN_ATTR_MESSAGE_INTEGRITY_SHA256:
    case PUNCH_STUN_ATTR_PASSWORD_ALGORITHM:
    case PUNCH_STUN_ATTR_USERHASH:
    case PUNCH_STUN_ATTR_XOR_MAPPED_ADDRESS:
    case PUNCH_STUN_ATTR_RESERVATION_TOKEN:
    case PUNCH_STUN_ATTR_PRIORITY:
    case PUNCH_STUN_ATTR_USE_CANDIDATE:
    case PUNCH_STUN_ATTR_PADDING:
    case PUNCH_STUN_ATTR_RESPONSE_PORT:
        return true;
    default:
        /* Comprehension-optional types (>= 0x8000) never need to be known. */
        return type >= 0x8000;
    }
}

static size_t padded(size_t len)
{
    return (len + 3) & ~(size_t)3;
}

bool punch_stun_is_stun(const uint8_t *buf, size_t len)
{
    if (!buf || len < PUNCH_STUN_HEADER_LEN || (buf[0] & 0xC0) != 0)
        return false;
    size_t mlen = punch_get16(buf + 2);
    return mlen % 4 == 0 && PUNCH_STUN_HEADER_LEN + mlen == len;
}

static void note_unknown(punch_stun_msg *msg, uint16_t type)
{
    for (size_t i = 0; i < msg->n_unknown; i++)
        if (msg->unknown[i] == type)
            return;
    if (msg->n_unknown < PUNCH_STUN_MAX_UNKNOWN)
        msg->unknown[msg->n_unknown++] = type;
}

/* RFC 8489 §14.7: CRC-32 of the message up to the attribute, XOR 0x5354554e. */
static uint32_t fingerprint_of(const uint8_t *buf, size_t len)
{
    return (uint32_t)crc32(0L, buf, (uInt)len) ^ PUNCH_STUN_FINGERPRINT_XOR;
}

/* Where an attribute falls relative to MESSAGE-INTEGRITY(-SHA256): the rules
 * of RFC 8489 §14.5-14.7. Returns true when it counts. */
static bool attr_counts(const punch_stun_msg *msg, uint16_t type)
{
    if (msg->integrity_sha256.value)
        return type == PUNCH_STUN_ATTR_FINGERPRINT;
    if (msg->integrity.value)
        return type == PUNCH_STUN_ATTR_MESSAGE_INTEGRITY_SHA256 ||
               type == PUNCH_STUN_ATTR_FINGERPRINT;
    return true;
}

static int check_special_size(uint16_t type, uint16_t len)
{
    switch (type) {
    case PUNCH_STUN_ATTR_MESSAGE_INTEGRITY:
        return len == 20 ? 0 : PUNCH_ERR_MALFORMED; /* HMAC-SHA1 */
    case PUNCH_STUN_ATTR_MESSAGE_INTEGRITY_SHA256:
        /* RFC 8489 §14.6: 16 to 32 bytes, a multiple of 4 */
        return len >= 16 && len <= 32 && len % 4 == 0 ? 0 : PUNCH_ERR_MALFORMED;
    case PUNCH_STUN_ATTR_FINGERPRINT:
        return len == 4 ? 0 : PUNCH_ERR_MALFORMED;
    default:
        return 0;
    }
}

int punch_stun_decode(punch_stun_msg *msg, const uint8_t *buf, size_t len)
{
    if (!msg || !buf)
        return PUNCH_ERR_INVAL;
    memset(msg, 0, sizeof(*msg));
    if (!punch_stun_is_stun(buf, len))
        return PUNCH_ERR_MALFORMED;
    msg->buf = buf;
    msg->len = len;
    split_type(punch_get16(buf), &msg->method, &msg->cls);
    msg->classic = punch_get32(buf + 4) != PUNCH_STUN_MAGIC_COOKIE;
    if (msg->classic)
        memcpy(msg->txid, buf + 4, 16);
    else
        memcpy(msg->txid, buf + 8, PUNCH_STUN_TXID_LEN);

    size_t off = PUNCH_STUN_HEADER_LEN;
    while (off < len) {
        if (msg->fingerprint.value)
            return PUNCH_ERR_MALFORMED; /* §14.7: FINGERPRINT is last */
        if (len - off < 4)
            return PUNCH_ERR_MALFORMED;
        punch_stun_attr a = {
            .type = punch_get16(buf + off),
            .len = punch_get16(buf + off + 2),
            .value = buf + off + 4,
            .offset = off,
        };
        if (padded(a.len) > len - off - 4)
            return PUNCH_ERR_MALFORMED;
        off += 4 + padded(a.len);
        if (!attr_counts(msg, a.type))
            continue;
        if (check_special_size(a.type, a.len) != 0)
            return PUNCH_ERR_MALFORMED;
        if (msg->n_attrs == PUNCH_STUN_MAX_ATTRS)
            return PUNCH_ERR_MALFORMED;
        msg->attrs[msg->n_attrs++] = a;
        if (a.type == PUNCH_STUN_ATTR_MESSAGE_INTEGRITY && !msg->integrity.value)
            msg->integrity = a;
        else if (a.type == PUNCH_STUN_ATTR_MESSAGE_INTEGRITY_SHA256 &&
                 !msg->integrity_sha256.value)
            msg->integrity_sha256 = a;
        else if (a.type == PUNCH_STUN_ATTR_FINGERPRINT)
            msg->fingerprint = a;
        else if (!is_known_type(a.type))
            note_unknown(msg, a.type);
    }
    if (msg->fingerprint.value &&
        fingerprint_of(buf, msg->fingerprint.offset) != punch_get32(msg->fingerprint.value))
        return PUNCH_ERR_MALFORMED;
    return 0;
}

const punch_stun_attr *punch_stun_find(const punch_stun_msg *msg, uint16_t type)
{
    if (!msg)
        return NULL;
    for (size_t i = 0; i < msg->n_attrs; i++)
        if (msg->attrs[i].type == type)
            return &msg->attrs[i];
    return NULL;
}

/* The XOR pad of RFC 8489 §14.2: magic cookie then transaction id. */
static void xor_pad(const uint8_t header[PUNCH_STUN_HEADER_LEN], uint8_t pad[16])
{
    memcpy(pad, header + 4, 16);
}

int punch_stun_read_addr(const punch_stun_msg *msg, const punch_stun_attr *attr,
                         punch_addr *out)
{
    if (!msg || !attr || !out || !attr->value)
        return PUNCH_ERR_INVAL;
    const uint8_t *v = attr->value;
    memset(out, 0, sizeof(*out));
    if (attr->len == 8 && v[1] == 0x01) {
        out->family = PUNCH_AF_INET;
        memcpy(out->ip, v + 4, 4);
    } else if (attr->len == 20 && v[1] == 0x02) {
        out->family = PUNCH_AF_INET6;
        memcpy(out->ip, v + 4, 16);
    } else {
        return PUNCH_ERR_MALFORMED;
    }
    out->port = punch_get16(v + 2);
    if (is_xor_type(attr->type)) {
        if (msg->classic)
            return PUNCH_ERR_MALFORMED; /* XOR needs the magic cookie */
        uint8_t pad[16];
        xor_pad(msg->buf, pad);
        out->port ^= (uint16_t)(PUNCH_STUN_MAGIC_COOKIE >> 16);
        for (size_t i = 0; i < (out->family == PUNCH_AF_INET ? 4u : 16u); i++)
            out->ip[i] ^= pad[i];
    }
    return 0;
}

/* An attribute that is an unsigned integer of n bytes (4 or 8), big-endian. */
static int read_uint(const punch_stun_attr *attr, size_t n, uint64_t *out)
{
    if (!attr || !out || !attr->value)
        return PUNCH_ERR_INVAL;
    if (attr->len != n)
        return PUNCH_ERR_MALFORMED;
    *out = 0;
    for (size_t i = 0; i < n; i++)
        *out = *out << 8 | attr->value[i];
    return 0;
}

int punch_stun_read_u32(const punch_stun_attr *attr, uint32_t *out)
{
    uint64_t v;
    int rc = read_uint(attr, 4, out ? &v : NULL);
    if (rc == 0)
        *out = (uint32_t)v;
    return rc;
}

int punch_stun_read_u64(const punch_stun_attr *attr, uint64_t *out)
{
    return read_uint(attr, 8, out);
}

int punch_stun_read_error(const punch_stun_attr *attr, int *code,
                          const char **reason, size_t *reason_len)
{
    if (!attr || !code || !reason || !reason_len || !attr->value)
        return PUNCH_ERR_INVAL;
    if (attr->len < 4)
        return PUNCH_ERR_MALFORMED;
    /* RFC 8489 §14.8: class 3..6 in the low 3 bits, number 0..99. */
    int cls = attr->value[2] & 0x07, number = attr->value[3];
    if (cls < 3 || cls > 6 || number > 99)
        return PUNCH_ERR_MALFORMED;
    *code = cls * 100 + number;
    *reason = (const char *)attr->value + 4;
    *reason_len = attr->len - 4u;
    return 0;
}

int punch_stun_read_unknown(const punch_stun_attr *attr, uint16_t *types,
                            size_t cap, size_t *n)
{
    if (!attr || !n || (!types && cap) || !attr->value)
        return PUNCH_ERR_INVAL;
    if (attr->len % 2 != 0)
        return PUNCH_ERR_MALFORMED;
    size_t count = attr->len / 2u;
    *n = count < cap ? count : cap;
    for (size_t i = 0; i < *n; i++)
        types[i] = punch_get16(attr->value + 2 * i);
    return 0;
}

int punch_stun_read_port(const punch_stun_attr *attr, uint16_t *port)
{
    uint32_t word;
    if (!port)
        return PUNCH_ERR_INVAL;
    int rc = punch_stun_read_u32(attr, &word);
    if (rc == 0)
        *port = (uint16_t)(word >> 16); /* the port, then 16 bits of RFFU */
    return rc;
}

int punch_stun_read_channel(const punch_stun_attr *attr, uint16_t *channel)
{
    uint16_t c;
    int rc = punch_stun_read_port(attr, &c);
    if (rc != 0)
        return rc;
    if (c < PUNCH_STUN_CHANNEL_MIN || c > PUNCH_STUN_CHANNEL_MAX)
        return PUNCH_ERR_MALFORMED;
    *channel = c;
    return 0;
}

/* The header with its length field set as if the message ended at `end`:
 * what RFC 8489 §14.5/§14.6 hash in place of the real header. */
static void header_ending_at(const uint8_t *buf, size_t end,
                             uint8_t hdr[PUNCH_STUN_HEADER_LEN])
{
    memcpy(hdr, buf, PUNCH_STUN_HEADER_LEN);
    punch_put16(hdr + 2, (uint16_t)(end - PUNCH_STUN_HEADER_LEN));
}

static void hmac_sha1_over(const uint8_t *key, size_t key_len, const uint8_t *buf,
                           size_t upto, size_t end, uint8_t out[SHA1_DIGEST_SIZE])
{
    uint8_t hdr[PUNCH_STUN_HEADER_LEN];
    struct hmac_sha1_ctx ctx;
    header_ending_at(buf, end, hdr);
    hmac_sha1_set_key(&ctx, key_len, key);
    hmac_sha1_update(&ctx, sizeof(hdr), hdr);
    hmac_sha1_update(&ctx, upto - PUNCH_STUN_HEADER_LEN, buf + PUNCH_STUN_HEADER_LEN);
    hmac_sha1_digest(&ctx, SHA1_DIGEST_SIZE, out);
}

static void hmac_sha256_over(const uint8_t *key, size_t key_len, const uint8_t *buf,
                             size_t upto, size_t end, uint8_t out[SHA256_DIGEST_SIZE])
{
    uint8_t hdr[PUNCH_STUN_HEADER_LEN];
    struct hmac_sha256_ctx ctx;
    header_ending_at(buf, end, hdr);
    hmac_sha256_set_key(&ctx, key_len, key);
    hmac_sha256_update(&ctx, sizeof(hdr), hdr);
    hmac_sha256_update(&ctx, upto - PUNCH_STUN_HEADER_LEN, buf + PUNCH_STUN_HEADER_LEN);
    hmac_sha256_digest(&ctx, SHA256_DIGEST_SIZE, out);
}

int punch_stun_check_integrity(const punch_stun_msg *msg, const uint8_t *key,
                               size_t key_len)
{
    if (!msg || (!key && key_len))
        return PUNCH_ERR_INVAL;
    const punch_stun_attr *a;
    if ((a = &msg->integrity_sha256)->value) {
        uint8_t mac[SHA256_DIGEST_SIZE];
        hmac_sha256_over(key, key_len, msg->buf, a->offset, a->offset + 4 + a->len, mac);
        return memeql_sec(mac, a->value, a->len) ? 0 : PUNCH_ERR_INTEGRITY;
    }
    if ((a = &msg->integrity)->value) {
        uint8_t mac[SHA1_DIGEST_SIZE];
        hmac_sha1_over(key, key_len, msg->buf, a->offset, a->offset + 4 + a->len, mac);
        return memeql_sec(mac, a->value, a->len) ? 0 : PUNCH_ERR_INTEGRITY;
    }
    return PUNCH_ERR_NOTFOUND;
}

void punch_stun_long_term_key_md5(const char *username, const char *realm,
                                  const char *password, uint8_t key[16])
{
    struct md5_ctx ctx;
    md5_init(&ctx);
    md5_update(&ctx, strlen(username), (const uint8_t *)username);
    md5_update(&ctx, 1, (const uint8_t *)":");
    md5_update(&ctx, strlen(realm), (const uint8_t *)realm);
    md5_update(&ctx, 1, (const uint8_t *)":");
    md5_update(&ctx, strlen(password), (const uint8_t *)password);
    md5_digest(&ctx, MD5_DIGEST_SIZE, key);
}

/* ---- encoding ---- */

static int writer_fail(punch_stun_writer *w, int err)
{
    if (w->err == 0)
        w->err = err;
    return w->err;
}

static int writer_start(punch_stun_writer *w, uint8_t *buf, size_t cap,
                        uint16_t method, uint8_t cls)
{
    memset(w, 0, sizeof(*w));
    w->buf = buf;
    w->cap = cap;
    if (!buf || method > 0x0FFF || cls > 3)
        return writer_fail(w, PUNCH_ERR_INVAL);
    if (cap < PUNCH_STUN_HEADER_LEN)
        return writer_fail(w, PUNCH_ERR_NOBUFS);
    punch_put16(buf, punch_stun_type(method, cls));
    punch_put16(buf + 2, 0);
    w->len = PUNCH_STUN_HEADER_LEN;
    return 0;
}

int punch_stun_writer_init(punch_stun_writer *w, uint8_t *buf, size_t cap,
                           uint16_t method, uint8_t cls, const uint8_t txid[12])
{
    if (!w)
        return PUNCH_ERR_INVAL;
    int rc = writer_start(w, buf, cap, method, cls);
    if (rc != 0)
        return rc;
    if (!txid)
        return writer_fail(w, PUNCH_ERR_INVAL);
    punch_put32(buf + 4, PUNCH_STUN_MAGIC_COOKIE);
    memcpy(buf + 8, txid, PUNCH_STUN_TXID_LEN);
    return 0;
}

int punch_stun_writer_init_classic(punch_stun_writer *w, uint8_t *buf, size_t cap,
                                   uint16_t method, uint8_t cls,
                                   const uint8_t txid[16])
{
    if (!w)
        return PUNCH_ERR_INVAL;
    int rc = writer_start(w, buf, cap, method, cls);
    if (rc != 0)
        return rc;
    if (!txid)
        return writer_fail(w, PUNCH_ERR_INVAL);
    w->classic = true;
    memcpy(buf + 4, txid, 16);
    return 0;
}

/* Reserve an attribute of value length len: writes its header and padding,
 * fixes the message length, and returns where the value goes (or NULL). */
static uint8_t *writer_reserve(punch_stun_writer *w, uint16_t type, size_t len)
{
    if (w->err)
        return NULL;
    if (len > 0xFFFF) {
        writer_fail(w, PUNCH_ERR_INVAL);
        return NULL;
    }
    size_t need = 4 + padded(len);
    if (w->cap - w->len < need || w->len + need - PUNCH_STUN_HEADER_LEN > 0xFFFF) {
        writer_fail(w, PUNCH_ERR_NOBUFS);
        return NULL;
    }
    uint8_t *p = w->buf + w->len;
    punch_put16(p, type);
    punch_put16(p + 2, (uint16_t)len);
    memset(p + 4 + len, w->pad_byte, padded(len) - len);
    w->len += need;
    punch_put16(w->buf + 2, (uint16_t)(w->len - PUNCH_STUN_HEADER_LEN));
    return p + 4;
}

int punch_stun_put(punch_stun_writer *w, uint16_t type, const void *value, size_t len)
{
    if (!w)
        return PUNCH_ERR_INVAL;
    if (!value && len)
        return writer_fail(w, PUNCH_ERR_INVAL);
    uint8_t *p = writer_reserve(w, type, len);
    if (!p)
        return w->err;
    if (len)
        memcpy(p, value, len);
    return 0;
}

int punch_stun_put_u32(punch_stun_writer *w, uint16_t type, uint32_t v)
{
    uint8_t b[4];
    punch_put32(b, v);
    return punch_stun_put(w, type, b, sizeof(b));
}

int punch_stun_put_u64(punch_stun_writer *w, uint16_t type, uint64_t v)
{
    uint8_t b[8];
    punch_put32(b, (uint32_t)(v >> 32));
    punch_put32(b + 4, (uint32_t)v);
    return punch_stun_put(w, type, b, sizeof(b));
}

int punch_stun_put_u16(punch_stun_writer *w, uint16_t type, uint16_t v)
{
    uint8_t b[4] = {0};
    punch_put16(b, v);
    return punch_stun_put(w, type, b, sizeof(b));
}

int punch_stun_put_addr(punch_stun_writer *w, uint16_t type, const punch_addr *a)
{
    if (!w)
        return PUNCH_ERR_INVAL;
    if (!a || (a->family != PUNCH_AF_INET && a->family != PUNCH_AF_INET6) ||
        (is_xor_type(type) && w->classic))
        return writer_fail(w, PUNCH_ERR_INVAL);
    size_t ip_len = a->family == PUNCH_AF_INET ? 4 : 16;
    uint8_t v[20] = {0};
    v[1] = a->family == PUNCH_AF_INET ? 0x01 : 0x02;
    uint16_t port = a->port;
    memcpy(v + 4, a->ip, ip_len);
    if (is_xor_type(type) && !w->err) {
        uint8_t pad[16];
        xor_pad(w->buf, pad);
        port ^= (uint16_t)(PUNCH_STUN_MAGIC_COOKIE >> 16);
        for (size_t i = 0; i < ip_len; i++)
            v[4 + i] ^= pad[i];
    }
    punch_put16(v + 2, port);
    return punch_stun_put(w, type, v, 4 + ip_len);
}

int punch_stun_put_error(punch_stun_writer *w, int code, const char *reason)
{
    if (!w)
        return PUNCH_ERR_INVAL;
    size_t rlen = reason ? strlen(reason) : 0;
    /* RFC 8489 §14.8: reason < 128 characters, at most 763 bytes */
    if (code < 300 || code > 699 || rlen > 763)
        return writer_fail(w, PUNCH_ERR_INVAL);
    uint8_t *p = writer_reserve(w, PUNCH_STUN_ATTR_ERROR_CODE, 4 + rlen);
    if (!p)
        return w->err;
    p[0] = p[1] = 0;
    p[2] = (uint8_t)(code / 100);
    p[3] = (uint8_t)(code % 100);
    if (rlen)
        memcpy(p + 4, reason, rlen);
    return 0;
}

int punch_stun_put_unknown(punch_stun_writer *w, const uint16_t *types, size_t n)
{
    if (!w)
        return PUNCH_ERR_INVAL;
    if ((!types && n) || n > 0x7FFF)
        return writer_fail(w, PUNCH_ERR_INVAL);
    uint8_t *p = writer_reserve(w, PUNCH_STUN_ATTR_UNKNOWN_ATTRIBUTES, 2 * n);
    if (!p)
        return w->err;
    for (size_t i = 0; i < n; i++)
        punch_put16(p + 2 * i, types[i]);
    return 0;
}

/* Integrity over the message so far with the length covering the new
 * attribute (RFC 8489 §14.5, §14.6). */
int punch_stun_put_integrity(punch_stun_writer *w, const uint8_t *key, size_t key_len)
{
    if (!w)
        return PUNCH_ERR_INVAL;
    if (!key && key_len)
        return writer_fail(w, PUNCH_ERR_INVAL);
    size_t upto = w->len;
    uint8_t *p = writer_reserve(w, PUNCH_STUN_ATTR_MESSAGE_INTEGRITY, SHA1_DIGEST_SIZE);
    if (!p)
        return w->err;
    hmac_sha1_over(key, key_len, w->buf, upto, w->len, p);
    return 0;
}

int punch_stun_put_integrity_sha256(punch_stun_writer *w, const uint8_t *key,
                                    size_t key_len)
{
    if (!w)
        return PUNCH_ERR_INVAL;
    if (!key && key_len)
        return writer_fail(w, PUNCH_ERR_INVAL);
    size_t upto = w->len;
    uint8_t *p = writer_reserve(w, PUNCH_STUN_ATTR_MESSAGE_INTEGRITY_SHA256,
                                SHA256_DIGEST_SIZE);
    if (!p)
        return w->err;
    hmac_sha256_over(key, key_len, w->buf, upto, w->len, p);
    return 0;
}

int punch_stun_put_fingerprint(punch_stun_writer *w)
{
    if (!w)
        return PUNCH_ERR_INVAL;
    size_t upto = w->len;
    uint8_t *p = writer_reserve(w, PUNCH_STUN_ATTR_FINGERPRINT, 4);
    if (!p)
        return w->err;
    punch_put32(p, fingerprint_of(w->buf, upto));
    return 0;
}

int punch_stun_finish(const punch_stun_writer *w, size_t *len)
{
    if (!w || !len)
        return PUNCH_ERR_INVAL;
    if (w->err)
        return w->err;
    *len = w->len;
    return 0;
}

/* ---- ChannelData (RFC 8656 §12.4) ---- */

int punch_stun_channel_encode(uint8_t *buf, size_t cap, uint16_t channel,
                              const uint8_t *data, size_t data_len, bool pad,
                              size_t *out_len)
{
    if (!buf || !out_len || (!data && data_len) || data_len > 0xFFFF ||
        channel < PUNCH_STUN_CHANNEL_MIN || channel > PUNCH_STUN_CHANNEL_MAX)
        return PUNCH_ERR_INVAL;
    size_t total = PUNCH_STUN_CHANNEL_HEADER_LEN + (pad ? padded(data_len) : data_len);
    if (cap < total)
        return PUNCH_ERR_NOBUFS;
    punch_put16(buf, channel);
    punch_put16(buf + 2, (uint16_t)data_len);
    if (data_len)
        memcpy(buf + PUNCH_STUN_CHANNEL_HEADER_LEN, data, data_len);
    memset(buf + PUNCH_STUN_CHANNEL_HEADER_LEN + data_len, 0,
           total - PUNCH_STUN_CHANNEL_HEADER_LEN - data_len);
    *out_len = total;
    return 0;
}

int punch_stun_channel_decode(const uint8_t *buf, size_t len, uint16_t *channel,
                              const uint8_t **data, size_t *data_len)
{
    if (!buf || !channel || !data || !data_len)
        return PUNCH_ERR_INVAL;
    if (len < PUNCH_STUN_CHANNEL_HEADER_LEN)
        return PUNCH_ERR_MALFORMED;
    uint16_t c = punch_get16(buf);
    size_t dlen = punch_get16(buf + 2);
    if (c < PUNCH_STUN_CHANNEL_MIN || c > PUNCH_STUN_CHANNEL_MAX)
        return PUNCH_ERR_MALFORMED;
    /* RFC 8656 §12.5: either no padding, or exactly up to the next multiple of 4. */
    size_t extra = dlen <= len - PUNCH_STUN_CHANNEL_HEADER_LEN
                       ? len - PUNCH_STUN_CHANNEL_HEADER_LEN - dlen
                       : SIZE_MAX;
    if (extra != 0 && extra != padded(dlen) - dlen)
        return PUNCH_ERR_MALFORMED;
    *channel = c;
    *data = buf + PUNCH_STUN_CHANNEL_HEADER_LEN;
    *data_len = dlen;
    return 0;
}
