/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the STUN codec (src/wire/stun.h).
 *
 * Decodes the input; when that succeeds, runs every reader on every
 * attribute, checks integrity with a fixed key, then re-encodes the message
 * from its attributes into a stack buffer whose size comes from the input
 * (so the writer's NOBUFS paths run too). A re-encoded message that fits
 * must decode again to the same attributes: anything else is a finding.
 * Each input is also tried with its length field and FINGERPRINT fixed up,
 * and goes to the ChannelData decoder and punch_stun_is_stun.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "wire/stun.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t fuzz_key[] = "VOkJxbRl1RmTxUk/WvJxBt";

/* A check that survives NDEBUG: libFuzzer reports the abort as a crash. */
#define FUZZ_CHECK(cond)                                                                   \
    do {                                                                                   \
        if (!(cond))                                                                       \
            abort();                                                                       \
    } while (0)

static bool is_addr_type(uint16_t type)
{
    switch (type) {
    case PUNCH_STUN_ATTR_MAPPED_ADDRESS:
    case PUNCH_STUN_ATTR_RESPONSE_ADDRESS:
    case PUNCH_STUN_ATTR_SOURCE_ADDRESS:
    case PUNCH_STUN_ATTR_CHANGED_ADDRESS:
    case PUNCH_STUN_ATTR_XOR_PEER_ADDRESS:
    case PUNCH_STUN_ATTR_XOR_RELAYED_ADDRESS:
    case PUNCH_STUN_ATTR_XOR_MAPPED_ADDRESS:
    case PUNCH_STUN_ATTR_ALTERNATE_SERVER:
    case PUNCH_STUN_ATTR_RESPONSE_ORIGIN:
    case PUNCH_STUN_ATTR_OTHER_ADDRESS:
        return true;
    default:
        return false;
    }
}

static bool is_mac_or_crc(uint16_t type)
{
    return type == PUNCH_STUN_ATTR_MESSAGE_INTEGRITY ||
           type == PUNCH_STUN_ATTR_MESSAGE_INTEGRITY_SHA256 ||
           type == PUNCH_STUN_ATTR_FINGERPRINT;
}

static bool addr_same(const punch_addr *a, const punch_addr *b)
{
    return a->family == b->family && a->port == b->port &&
           memcmp(a->ip, b->ip, a->family == PUNCH_AF_INET ? 4 : 16) == 0;
}

/* Every reader that could apply; results are checked for consistency with
 * the contract, not for a particular verdict. */
static void walk(const punch_stun_msg *msg)
{
    FUZZ_CHECK(msg->n_attrs <= PUNCH_STUN_MAX_ATTRS);
    FUZZ_CHECK(msg->n_unknown <= PUNCH_STUN_MAX_UNKNOWN);
    for (size_t i = 0; i < msg->n_attrs; i++) {
        const punch_stun_attr *a = &msg->attrs[i];
        punch_addr addr;
        uint32_t u32;
        uint64_t u64;
        uint16_t u16, types[16];
        int code, rc;
        const char *reason;
        size_t rl, n;

        FUZZ_CHECK(a->offset + 4 + a->len <= msg->len);
        FUZZ_CHECK(a->value == msg->buf + a->offset + 4);
        FUZZ_CHECK(punch_stun_find(msg, a->type) != NULL);

        rc = punch_stun_read_addr(msg, a, &addr);
        FUZZ_CHECK(rc == 0 || rc == PUNCH_ERR_MALFORMED);
        if (rc == 0)
            FUZZ_CHECK(addr.family == PUNCH_AF_INET || addr.family == PUNCH_AF_INET6);
        rc = punch_stun_read_u32(a, &u32);
        FUZZ_CHECK(rc == (a->len == 4 ? 0 : PUNCH_ERR_MALFORMED));
        rc = punch_stun_read_u64(a, &u64);
        FUZZ_CHECK(rc == (a->len == 8 ? 0 : PUNCH_ERR_MALFORMED));
        rc = punch_stun_read_error(a, &code, &reason, &rl);
        FUZZ_CHECK(rc == 0 || rc == PUNCH_ERR_MALFORMED);
        if (rc == 0) {
            FUZZ_CHECK(code >= 300 && code <= 699);
            FUZZ_CHECK(rl + 4 == a->len && reason == (const char *)a->value + 4);
        }
        rc = punch_stun_read_unknown(a, types, sizeof types / sizeof types[0], &n);
        FUZZ_CHECK(rc == 0 || rc == PUNCH_ERR_MALFORMED);
        if (rc == 0)
            FUZZ_CHECK(n <= a->len / 2);
        rc = punch_stun_read_port(a, &u16);
        FUZZ_CHECK(rc == 0 || rc == PUNCH_ERR_MALFORMED);
        rc = punch_stun_read_channel(a, &u16);
        FUZZ_CHECK(rc == 0 || rc == PUNCH_ERR_MALFORMED);
        if (rc == 0)
            FUZZ_CHECK(u16 >= PUNCH_STUN_CHANNEL_MIN && u16 <= PUNCH_STUN_CHANNEL_MAX);
    }
    int rc = punch_stun_check_integrity(msg, fuzz_key, sizeof fuzz_key - 1);
    FUZZ_CHECK(rc == 0 || rc == PUNCH_ERR_INTEGRITY || rc == PUNCH_ERR_NOTFOUND);
    if (msg->integrity.value == NULL && msg->integrity_sha256.value == NULL)
        FUZZ_CHECK(rc == PUNCH_ERR_NOTFOUND);
}

/* How an attribute was written again, which decides how it is compared. */
enum how { HOW_RAW, HOW_ADDR, HOW_U16, HOW_U32, HOW_U64, HOW_ERROR, HOW_UNKNOWN };

/* Put attribute a through the most specific writer whose reader accepts its
 * value. */
static int put_again(punch_stun_writer *w, const punch_stun_msg *msg,
                     const punch_stun_attr *a, enum how *how)
{
    static uint16_t types[800];
    punch_addr addr;
    uint32_t u32;
    uint64_t u64;
    uint16_t u16;
    int code;
    const char *reason;
    size_t rl, n;

    if (is_addr_type(a->type) && punch_stun_read_addr(msg, a, &addr) == 0) {
        *how = HOW_ADDR;
        return punch_stun_put_addr(w, a->type, &addr);
    }
    if (a->type == PUNCH_STUN_ATTR_ERROR_CODE &&
        punch_stun_read_error(a, &code, &reason, &rl) == 0 && rl <= 763 &&
        memchr(reason, 0, rl) == NULL) {
        char text[764];
        memcpy(text, reason, rl);
        text[rl] = 0;
        *how = HOW_ERROR;
        return punch_stun_put_error(w, code, text);
    }
    if (a->type == PUNCH_STUN_ATTR_UNKNOWN_ATTRIBUTES &&
        punch_stun_read_unknown(a, types, sizeof types / sizeof types[0], &n) == 0 &&
        n == a->len / 2u) {
        *how = HOW_UNKNOWN;
        return punch_stun_put_unknown(w, types, n);
    }
    if ((a->type == PUNCH_STUN_ATTR_RESPONSE_PORT ||
         a->type == PUNCH_STUN_ATTR_CHANNEL_NUMBER) &&
        punch_stun_read_port(a, &u16) == 0) {
        *how = HOW_U16;
        return punch_stun_put_u16(w, a->type, u16);
    }
    if (punch_stun_read_u32(a, &u32) == 0) {
        *how = HOW_U32;
        return punch_stun_put_u32(w, a->type, u32);
    }
    if (punch_stun_read_u64(a, &u64) == 0) {
        *how = HOW_U64;
        return punch_stun_put_u64(w, a->type, u64);
    }
    *how = HOW_RAW;
    return punch_stun_put(w, a->type, a->value, a->len);
}

/* Does b (re-decoded) carry what a (original) did? */
static bool same_value(const punch_stun_msg *ma, const punch_stun_attr *a,
                       const punch_stun_msg *mb, const punch_stun_attr *b, enum how how)
{
    punch_addr x, y;
    uint16_t p, q;
    int c1, c2;
    const char *r1, *r2;
    size_t l1, l2;

    switch (how) {
    case HOW_ADDR:
        return punch_stun_read_addr(ma, a, &x) == 0 && punch_stun_read_addr(mb, b, &y) == 0 &&
               addr_same(&x, &y);
    case HOW_U16: /* the 16 RFFU bits are written as zero */
        return punch_stun_read_port(a, &p) == 0 && punch_stun_read_port(b, &q) == 0 && p == q;
    case HOW_ERROR: /* reserved bits are written as zero */
        return punch_stun_read_error(a, &c1, &r1, &l1) == 0 &&
               punch_stun_read_error(b, &c2, &r2, &l2) == 0 && c1 == c2 && l1 == l2 &&
               memcmp(r1, r2, l1) == 0;
    default:
        return b->len == a->len && memcmp(b->value, a->value, a->len) == 0;
    }
}

/* Write msg's attributes again through the typed writers and check that the
 * result decodes to the same values. */
static void reencode(const punch_stun_msg *msg, size_t cap)
{
    uint8_t buf[1600];
    uint16_t put_types[PUNCH_STUN_MAX_ATTRS];
    enum how hows[PUNCH_STUN_MAX_ATTRS];
    size_t n_put = 0, len = 0;
    punch_stun_writer w;
    int rc;

    if (cap > sizeof buf)
        cap = sizeof buf;
    if (msg->classic)
        rc = punch_stun_writer_init_classic(&w, buf, cap, msg->method, msg->cls, msg->txid);
    else
        rc = punch_stun_writer_init(&w, buf, cap, msg->method, msg->cls, msg->txid);
    FUZZ_CHECK(rc == 0 || rc == PUNCH_ERR_NOBUFS);
    FUZZ_CHECK(rc == PUNCH_ERR_NOBUFS ? cap < PUNCH_STUN_HEADER_LEN
                                      : cap >= PUNCH_STUN_HEADER_LEN);
    w.pad_byte = (uint8_t)msg->len;

    for (size_t i = 0; i < msg->n_attrs; i++) {
        const punch_stun_attr *a = &msg->attrs[i];
        enum how how;

        if (is_mac_or_crc(a->type))
            continue;
        size_t before = w.len;
        rc = put_again(&w, msg, a, &how);
        FUZZ_CHECK(rc == 0 || rc == PUNCH_ERR_NOBUFS);
        if (rc != 0) {
            FUZZ_CHECK(w.len == before && w.err == rc);
            break;
        }
        FUZZ_CHECK(w.len == before + 4 + (a->len + 3u) / 4 * 4);
        put_types[n_put] = a->type;
        hows[n_put++] = how;
    }
    bool macs = !msg->classic && w.err == 0 && n_put + 3 <= PUNCH_STUN_MAX_ATTRS;
    if (macs) {
        punch_stun_put_integrity(&w, fuzz_key, sizeof fuzz_key - 1);
        punch_stun_put_integrity_sha256(&w, fuzz_key, sizeof fuzz_key - 1);
        punch_stun_put_fingerprint(&w);
    }
    rc = punch_stun_finish(&w, &len);
    FUZZ_CHECK(rc == w.err);
    if (rc != 0) {
        FUZZ_CHECK(rc == PUNCH_ERR_NOBUFS);
        return;
    }
    FUZZ_CHECK(len <= cap);
    FUZZ_CHECK(punch_stun_is_stun(buf, len));

    punch_stun_msg again;
    FUZZ_CHECK(punch_stun_decode(&again, buf, len) == 0);
    FUZZ_CHECK(again.method == msg->method && again.cls == msg->cls);
    FUZZ_CHECK(again.classic == msg->classic);
    FUZZ_CHECK(memcmp(again.txid, msg->txid, msg->classic ? 16 : 12) == 0);
    FUZZ_CHECK(again.n_attrs == n_put + (macs ? 3 : 0));
    FUZZ_CHECK(again.n_unknown == msg->n_unknown);
    for (size_t i = 0, j = 0; i < msg->n_attrs && j < n_put; i++) {
        const punch_stun_attr *a = &msg->attrs[i];
        const punch_stun_attr *b = &again.attrs[j];

        if (is_mac_or_crc(a->type))
            continue;
        FUZZ_CHECK(b->type == put_types[j] && b->type == a->type);
        FUZZ_CHECK(same_value(msg, a, &again, b, hows[j]));
        j++;
    }
    if (macs) {
        FUZZ_CHECK(again.integrity.value && again.integrity_sha256.value &&
                   again.fingerprint.value);
        FUZZ_CHECK(punch_stun_check_integrity(&again, fuzz_key, sizeof fuzz_key - 1) == 0);
    }
}

/* Long-term credentials from the message's own USERNAME and REALM (when
 * they hold no NUL), as a server would derive them. */
static void long_term(const punch_stun_msg *msg)
{
    const punch_stun_attr *u = punch_stun_find(msg, PUNCH_STUN_ATTR_USERNAME);
    const punch_stun_attr *r = punch_stun_find(msg, PUNCH_STUN_ATTR_REALM);
    char user[514], realm[764];
    uint8_t key[16];

    if (!u || !r || u->len >= sizeof user || r->len >= sizeof realm ||
        memchr(u->value, 0, u->len) || memchr(r->value, 0, r->len))
        return;
    memcpy(user, u->value, u->len);
    user[u->len] = 0;
    memcpy(realm, r->value, r->len);
    realm[r->len] = 0;
    punch_stun_long_term_key_md5(user, realm, "TheMatrIX", key);
    int rc = punch_stun_check_integrity(msg, key, sizeof key);
    FUZZ_CHECK(rc == 0 || rc == PUNCH_ERR_INTEGRITY || rc == PUNCH_ERR_NOTFOUND);
}

static void stun_one(const uint8_t *data, size_t size)
{
    punch_stun_msg msg;
    bool stun = punch_stun_is_stun(data, size);
    int rc = punch_stun_decode(&msg, data, size);
    FUZZ_CHECK(rc == 0 || rc == PUNCH_ERR_MALFORMED);
    if (rc == 0) {
        /* A decodable message always passes the quick demultiplexing test. */
        FUZZ_CHECK(stun);
        FUZZ_CHECK(msg.buf == data && msg.len == size);
        walk(&msg);
        long_term(&msg);
        /* The buffer size for the re-encode: from the last input bytes, so
         * the fuzzer can steer it through every NOBUFS point. */
        reencode(&msg, (size_t)data[size - 1] * 8 + (data[size - 2] & 7));
    }
}

/* The input as a would-be STUN message with its length field set to the
 * datagram and, when the last 8 bytes are a FINGERPRINT, a correct CRC:
 * without this nearly every mutation dies at those two checks and the
 * attribute rules behind them are rarely reached. The CRC is computed here
 * with zlib, independently of the codec. */
static void stun_fixed_up(const uint8_t *data, size_t size)
{
    uint8_t *copy;

    if (size < PUNCH_STUN_HEADER_LEN || (size - PUNCH_STUN_HEADER_LEN) % 4 ||
        size - PUNCH_STUN_HEADER_LEN > 0xFFFF)
        return;
    copy = malloc(size); /* exact size, so ASan sees any overread */
    FUZZ_CHECK(copy != NULL);
    memcpy(copy, data, size);
    copy[0] &= 0x3F;
    copy[2] = (uint8_t)((size - PUNCH_STUN_HEADER_LEN) >> 8);
    copy[3] = (uint8_t)(size - PUNCH_STUN_HEADER_LEN);
    if (size >= PUNCH_STUN_HEADER_LEN + 8 && copy[size - 8] == 0x80 &&
        copy[size - 7] == 0x28 && copy[size - 6] == 0 && copy[size - 5] == 4) {
        uint32_t crc = (uint32_t)crc32(0L, copy, (uInt)(size - 8)) ^ PUNCH_STUN_FINGERPRINT_XOR;
        copy[size - 4] = (uint8_t)(crc >> 24);
        copy[size - 3] = (uint8_t)(crc >> 16);
        copy[size - 2] = (uint8_t)(crc >> 8);
        copy[size - 1] = (uint8_t)crc;
    }
    if (memcmp(copy, data, size) != 0)
        stun_one(copy, size);
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint16_t channel;
    const uint8_t *payload;
    size_t payload_len;

    stun_one(data, size);
    stun_fixed_up(data, size);
    bool stun = punch_stun_is_stun(data, size);

    int rc = punch_stun_channel_decode(data, size, &channel, &payload, &payload_len);
    FUZZ_CHECK(rc == 0 || rc == PUNCH_ERR_MALFORMED);
    if (rc == 0) {
        FUZZ_CHECK(channel >= PUNCH_STUN_CHANNEL_MIN && channel <= PUNCH_STUN_CHANNEL_MAX);
        FUZZ_CHECK(payload == data + PUNCH_STUN_CHANNEL_HEADER_LEN);
        FUZZ_CHECK(PUNCH_STUN_CHANNEL_HEADER_LEN + payload_len <= size);
        FUZZ_CHECK(size - PUNCH_STUN_CHANNEL_HEADER_LEN - payload_len <= 3);
        FUZZ_CHECK(!stun);

        uint8_t out[1600];
        size_t out_len = 0;
        size_t cap = size > 1 ? data[1] : 0;
        int erc = punch_stun_channel_encode(out, cap, channel, payload, payload_len,
                                            data[0] & 1, &out_len);
        FUZZ_CHECK(erc == 0 || erc == PUNCH_ERR_NOBUFS);
        if (erc == 0) {
            uint16_t ch2;
            const uint8_t *p2;
            size_t l2;
            FUZZ_CHECK(out_len <= cap);
            FUZZ_CHECK(punch_stun_channel_decode(out, out_len, &ch2, &p2, &l2) == 0);
            FUZZ_CHECK(ch2 == channel && l2 == payload_len);
            FUZZ_CHECK(memcmp(p2, payload, payload_len) == 0);
        }
    }
    return 0;
}
