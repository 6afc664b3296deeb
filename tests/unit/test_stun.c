/* SPDX-License-Identifier: MIT */
/*
 * STUN codec tests: RFC 5769 vectors in both directions, malformed input,
 * the attribute-placement rules of RFC 8489 §14, the encoder's NOBUFS
 * behaviour, every RFC 8656 / RFC 5780 attribute and ChannelData framing.
 *
 * MACs and CRCs are re-computed here with nettle and zlib directly, so a test
 * does not only check that the codec agrees with itself.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <nettle/hmac.h>
#include <zlib.h>

#include "wire/bytes.h"
#include "wire/stun.h"

/* ---- RFC 5769 §2 test vectors ---------------------------------------- */
/* Each vector was checked against the RFC text and by re-computing its
 * MESSAGE-INTEGRITY and FINGERPRINT independently. */

static const char short_term_pw[] = "VOkJxbRl1RmTxUk/WvJxBt";

static const uint8_t rfc5769_txid[12] = {
    0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
};

/* §2.1 Sample Request (short-term credentials, 0x20 padding). */
static const uint8_t rfc5769_request[] = {
    0x00, 0x01, 0x00, 0x58, /* Binding request, length 88 */
    0x21, 0x12, 0xa4, 0x42, /* magic cookie */
    0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
    0x80, 0x22, 0x00, 0x10, /* SOFTWARE "STUN test client" */
    0x53, 0x54, 0x55, 0x4e, 0x20, 0x74, 0x65, 0x73,
    0x74, 0x20, 0x63, 0x6c, 0x69, 0x65, 0x6e, 0x74,
    0x00, 0x24, 0x00, 0x04, /* PRIORITY */
    0x6e, 0x00, 0x01, 0xff,
    0x80, 0x29, 0x00, 0x08, /* ICE-CONTROLLED */
    0x93, 0x2f, 0xf9, 0xb1, 0x51, 0x26, 0x3b, 0x36,
    0x00, 0x06, 0x00, 0x09, /* USERNAME "evtj:h6vY" + 3 bytes 0x20 */
    0x65, 0x76, 0x74, 0x6a, 0x3a, 0x68, 0x36, 0x76, 0x59, 0x20, 0x20, 0x20,
    0x00, 0x08, 0x00, 0x14, /* MESSAGE-INTEGRITY */
    0x9a, 0xea, 0xa7, 0x0c, 0xbf, 0xd8, 0xcb, 0x56, 0x78, 0x1e,
    0xf2, 0xb5, 0xb2, 0xd3, 0xf2, 0x49, 0xc1, 0xb5, 0x71, 0xa2,
    0x80, 0x28, 0x00, 0x04, /* FINGERPRINT */
    0xe5, 0x7a, 0x3b, 0xcf,
};

/* §2.2 Sample IPv4 Response. */
static const uint8_t rfc5769_response_v4[] = {
    0x01, 0x01, 0x00, 0x3c, /* Binding success, length 60 */
    0x21, 0x12, 0xa4, 0x42,
    0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
    0x80, 0x22, 0x00, 0x0b, /* SOFTWARE "test vector" + 0x20 */
    0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63, 0x74, 0x6f, 0x72, 0x20,
    0x00, 0x20, 0x00, 0x08, /* XOR-MAPPED-ADDRESS 192.0.2.1:32853 */
    0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43,
    0x00, 0x08, 0x00, 0x14, /* MESSAGE-INTEGRITY */
    0x2b, 0x91, 0xf5, 0x99, 0xfd, 0x9e, 0x90, 0xc3, 0x8c, 0x74,
    0x89, 0xf9, 0x2a, 0xf9, 0xba, 0x53, 0xf0, 0x6b, 0xe7, 0xd7,
    0x80, 0x28, 0x00, 0x04, /* FINGERPRINT */
    0xc0, 0x7d, 0x4c, 0x96,
};

/* §2.3 Sample IPv6 Response. */
static const uint8_t rfc5769_response_v6[] = {
    0x01, 0x01, 0x00, 0x48, /* Binding success, length 72 */
    0x21, 0x12, 0xa4, 0x42,
    0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
    0x80, 0x22, 0x00, 0x0b, /* SOFTWARE "test vector" + 0x20 */
    0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63, 0x74, 0x6f, 0x72, 0x20,
    0x00, 0x20, 0x00, 0x14, /* XOR-MAPPED-ADDRESS [2001:db8:1234:5678:11:2233:4455:6677]:32853 */
    0x00, 0x02, 0xa1, 0x47,
    0x01, 0x13, 0xa9, 0xfa, 0xa5, 0xd3, 0xf1, 0x79,
    0xbc, 0x25, 0xf4, 0xb5, 0xbe, 0xd2, 0xb9, 0xd9,
    0x00, 0x08, 0x00, 0x14, /* MESSAGE-INTEGRITY */
    0xa3, 0x82, 0x95, 0x4e, 0x4b, 0xe6, 0x7b, 0xf1, 0x17, 0x84,
    0xc9, 0x7c, 0x82, 0x92, 0xc2, 0x75, 0xbf, 0xe3, 0xed, 0x41,
    0x80, 0x28, 0x00, 0x04, /* FINGERPRINT */
    0xc8, 0xfb, 0x0b, 0x4c,
};

/* §2.4 Sample Request with Long-Term Authentication (0x00 padding, no
 * FINGERPRINT). */
static const uint8_t rfc5769_txid_lt[12] = {
    0x78, 0xad, 0x34, 0x33, 0xc6, 0xad, 0x72, 0xc0, 0x29, 0xda, 0x41, 0x2e,
};
static const uint8_t rfc5769_request_lt[] = {
    0x00, 0x01, 0x00, 0x60, /* Binding request, length 96 */
    0x21, 0x12, 0xa4, 0x42,
    0x78, 0xad, 0x34, 0x33, 0xc6, 0xad, 0x72, 0xc0, 0x29, 0xda, 0x41, 0x2e,
    0x00, 0x06, 0x00, 0x12, /* USERNAME, 18 bytes of UTF-8 + 2 bytes 0x00 */
    0xe3, 0x83, 0x9e, 0xe3, 0x83, 0x88, 0xe3, 0x83, 0xaa, 0xe3,
    0x83, 0x83, 0xe3, 0x82, 0xaf, 0xe3, 0x82, 0xb9, 0x00, 0x00,
    0x00, 0x15, 0x00, 0x1c, /* NONCE "f//499k954d6OL34oL9FSTvy64sA" */
    0x66, 0x2f, 0x2f, 0x34, 0x39, 0x39, 0x6b, 0x39, 0x35, 0x34, 0x64, 0x36,
    0x4f, 0x4c, 0x33, 0x34, 0x6f, 0x4c, 0x39, 0x46, 0x53, 0x54, 0x76, 0x79,
    0x36, 0x34, 0x73, 0x41,
    0x00, 0x14, 0x00, 0x0b, /* REALM "example.org" + 0x00 */
    0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x2e, 0x6f, 0x72, 0x67, 0x00,
    0x00, 0x08, 0x00, 0x14, /* MESSAGE-INTEGRITY */
    0xf6, 0x70, 0x24, 0x65, 0x6d, 0xd6, 0x4a, 0x3e, 0x02, 0xb8,
    0xe0, 0x71, 0x2e, 0x85, 0xc9, 0xa2, 0x8c, 0xa8, 0x96, 0x66,
};

/* U+30DE U+30C8 U+30EA U+30C3 U+30AF U+30B9 in UTF-8. */
static const char lt_username[] =
    "\xe3\x83\x9e" "\xe3\x83\x88" "\xe3\x83\xaa" "\xe3\x83\x83" "\xe3\x82\xaf" "\xe3\x82\xb9";
static const char lt_nonce[] = "f//499k954d6OL34oL9FSTvy64sA";
static const char lt_realm[] = "example.org";
/* RFC 5769 §2.4's password "The<U+00AD>M<U+00AA>tr<U+2168>" after SASLprep. */
static const char lt_password[] = "TheMatrIX";
/* MD5("<username>:example.org:TheMatrIX"), computed outside the codec. */
static const uint8_t lt_key_expected[16] = {
    0xe8, 0xca, 0x7a, 0xd5, 0x9d, 0x5e, 0xb0, 0x51,
    0x8e, 0x31, 0x29, 0x11, 0xd2, 0xda, 0xb2, 0xa9,
};

struct vector {
    const char *name;
    const uint8_t *bytes;
    size_t len;
};

static const struct vector vectors[] = {
    {"rfc5769 2.1", rfc5769_request, sizeof rfc5769_request},
    {"rfc5769 2.2", rfc5769_response_v4, sizeof rfc5769_response_v4},
    {"rfc5769 2.3", rfc5769_response_v6, sizeof rfc5769_response_v6},
    {"rfc5769 2.4", rfc5769_request_lt, sizeof rfc5769_request_lt},
};
#define N_VECTORS (sizeof vectors / sizeof vectors[0])

/* ---- helpers ----------------------------------------------------------- */

/* A fixed-seed xorshift32: deterministic inputs, seed printed on failure. */
static uint32_t prng_state;

static void prng_seed(uint32_t seed)
{
    prng_state = seed ? seed : 0x9e3779b9u;
}

static uint32_t prng_next(void)
{
    uint32_t x = prng_state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    prng_state = x;
    return x;
}

static uint32_t prng_below(uint32_t n)
{
    return n ? prng_next() % n : 0;
}

static void set_addr4(punch_addr *a, uint8_t b0, uint8_t b1, uint8_t b2, uint8_t b3,
                      uint16_t port)
{
    memset(a, 0, sizeof *a);
    a->family = PUNCH_AF_INET;
    a->port = port;
    a->ip[0] = b0;
    a->ip[1] = b1;
    a->ip[2] = b2;
    a->ip[3] = b3;
}

static void set_addr6(punch_addr *a, const uint8_t ip[16], uint16_t port)
{
    memset(a, 0, sizeof *a);
    a->family = PUNCH_AF_INET6;
    a->port = port;
    memcpy(a->ip, ip, 16);
}

static const uint8_t ip6_rfc5769[16] = {
    0x20, 0x01, 0x0d, 0xb8, 0x12, 0x34, 0x56, 0x78,
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
};

/* Decode from an exact-size heap copy, so AddressSanitizer sees any read
 * past the end. */
static int decode_copy(const uint8_t *bytes, size_t len, punch_stun_msg *msg,
                       uint8_t **copy)
{
    *copy = malloc(len ? len : 1);
    assert_non_null(*copy);
    if (len)
        memcpy(*copy, bytes, len);
    return punch_stun_decode(msg, *copy, len);
}

static void assert_attr_bytes(const punch_stun_attr *a, const void *value, size_t len)
{
    assert_non_null(a);
    assert_int_equal(a->len, len);
    if (len)
        assert_memory_equal(a->value, value, len);
}

static void assert_attr_str(const punch_stun_msg *msg, uint16_t type, const char *s)
{
    assert_attr_bytes(punch_stun_find(msg, type), s, strlen(s));
}

/* A message built by hand, without the codec's writer. */
struct raw {
    uint8_t b[4096];
    size_t len;
};

static void raw_header(struct raw *r, uint16_t type, const uint8_t txid[12])
{
    memset(r, 0, sizeof *r);
    punch_put16(r->b, type);
    punch_put32(r->b + 4, PUNCH_STUN_MAGIC_COOKIE);
    memcpy(r->b + 8, txid, 12);
    r->len = PUNCH_STUN_HEADER_LEN;
}

static void raw_set_len(struct raw *r)
{
    punch_put16(r->b + 2, (uint16_t)(r->len - PUNCH_STUN_HEADER_LEN));
}

/* Append an attribute: header with len_field, then value_len bytes of value,
 * then pad bytes of zero; the header's length field is kept up to date. */
static size_t raw_attr_ex(struct raw *r, uint16_t type, uint16_t len_field,
                          const void *value, size_t value_len, size_t pad)
{
    size_t off = r->len;
    assert_true(off + 4 + value_len + pad <= sizeof r->b);
    punch_put16(r->b + off, type);
    punch_put16(r->b + off + 2, len_field);
    if (value_len)
        memcpy(r->b + off + 4, value, value_len);
    memset(r->b + off + 4 + value_len, 0, pad);
    r->len = off + 4 + value_len + pad;
    raw_set_len(r);
    return off;
}

static size_t raw_attr(struct raw *r, uint16_t type, const void *value, size_t len)
{
    return raw_attr_ex(r, type, (uint16_t)len, value, len, (4 - len % 4) % 4);
}

static uint32_t stun_crc(const uint8_t *b, size_t len)
{
    return (uint32_t)crc32(0L, b, (uInt)len) ^ PUNCH_STUN_FINGERPRINT_XOR;
}

/* Append a correct FINGERPRINT (RFC 8489 §14.7). */
static void raw_fingerprint(struct raw *r)
{
    size_t off = r->len;
    uint8_t v[4] = {0};
    raw_attr(r, PUNCH_STUN_ATTR_FINGERPRINT, v, 4);
    punch_put32(r->b + off + 4, stun_crc(r->b, off));
}

/* HMAC over msg[0..off) with the length field set as if the message ended
 * after an attribute of attr_total bytes at off (RFC 8489 §14.5, §14.6). */
static void ref_hmac_sha1(const uint8_t *msg, size_t off, size_t attr_total,
                          const uint8_t *key, size_t key_len, uint8_t out[20])
{
    uint8_t *tmp = malloc(off);
    struct hmac_sha1_ctx ctx;
    assert_non_null(tmp);
    memcpy(tmp, msg, off);
    punch_put16(tmp + 2, (uint16_t)(off + attr_total - PUNCH_STUN_HEADER_LEN));
    hmac_sha1_set_key(&ctx, key_len, key);
    hmac_sha1_update(&ctx, off, tmp);
    hmac_sha1_digest(&ctx, 20, out);
    free(tmp);
}

static void ref_hmac_sha256(const uint8_t *msg, size_t off, size_t attr_total,
                            const uint8_t *key, size_t key_len, uint8_t out[32])
{
    uint8_t *tmp = malloc(off);
    struct hmac_sha256_ctx ctx;
    assert_non_null(tmp);
    memcpy(tmp, msg, off);
    punch_put16(tmp + 2, (uint16_t)(off + attr_total - PUNCH_STUN_HEADER_LEN));
    hmac_sha256_set_key(&ctx, key_len, key);
    hmac_sha256_update(&ctx, off, tmp);
    hmac_sha256_digest(&ctx, 32, out);
    free(tmp);
}

/* Append a correct MESSAGE-INTEGRITY computed by the reference HMAC. */
static void raw_integrity(struct raw *r, const char *key)
{
    uint8_t mac[20];
    size_t off = r->len;
    ref_hmac_sha1(r->b, off, 24, (const uint8_t *)key, strlen(key), mac);
    raw_attr(r, PUNCH_STUN_ATTR_MESSAGE_INTEGRITY, mac, 20);
}

static void expect_malformed(const uint8_t *bytes, size_t len)
{
    punch_stun_msg msg;
    uint8_t *copy;
    int rc = decode_copy(bytes, len, &msg, &copy);
    free(copy);
    assert_int_equal(rc, PUNCH_ERR_MALFORMED);
}

static void expect_decodes(const uint8_t *bytes, size_t len, punch_stun_msg *msg)
{
    assert_int_equal(punch_stun_decode(msg, bytes, len), 0);
}

static const uint8_t txid_a[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};

/* ---- RFC 5769: decode --------------------------------------------------- */

static void test_rfc5769_request_decode(void **state)
{
    (void)state;
    punch_stun_msg msg;
    uint32_t prio;
    uint64_t tie;
    static const uint16_t order[] = {
        PUNCH_STUN_ATTR_SOFTWARE, PUNCH_STUN_ATTR_PRIORITY,
        PUNCH_STUN_ATTR_ICE_CONTROLLED, PUNCH_STUN_ATTR_USERNAME,
        PUNCH_STUN_ATTR_MESSAGE_INTEGRITY, PUNCH_STUN_ATTR_FINGERPRINT,
    };
    static const size_t offsets[] = {20, 40, 48, 60, 76, 100};

    expect_decodes(rfc5769_request, sizeof rfc5769_request, &msg);
    assert_ptr_equal(msg.buf, rfc5769_request);
    assert_int_equal(msg.len, sizeof rfc5769_request);
    assert_int_equal(msg.method, PUNCH_STUN_BINDING);
    assert_int_equal(msg.cls, PUNCH_STUN_REQUEST);
    assert_false(msg.classic);
    assert_memory_equal(msg.txid, rfc5769_txid, 12);
    assert_int_equal(msg.n_unknown, 0);

    assert_int_equal(msg.n_attrs, 6);
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(msg.attrs[i].type, order[i]);
        assert_int_equal(msg.attrs[i].offset, offsets[i]);
        assert_ptr_equal(msg.attrs[i].value, rfc5769_request + offsets[i] + 4);
    }

    assert_attr_str(&msg, PUNCH_STUN_ATTR_SOFTWARE, "STUN test client");
    assert_attr_str(&msg, PUNCH_STUN_ATTR_USERNAME, "evtj:h6vY");
    assert_int_equal(punch_stun_read_u32(punch_stun_find(&msg, PUNCH_STUN_ATTR_PRIORITY),
                                         &prio), 0);
    assert_int_equal(prio, 0x6e0001ffu);
    assert_int_equal(punch_stun_read_u64(
                         punch_stun_find(&msg, PUNCH_STUN_ATTR_ICE_CONTROLLED), &tie), 0);
    assert_true(tie == 0x932ff9b151263b36ull);

    assert_non_null(msg.integrity.value);
    assert_int_equal(msg.integrity.len, 20);
    assert_int_equal(msg.integrity.offset, 76);
    assert_memory_equal(msg.integrity.value, rfc5769_request + 80, 20);
    assert_null(msg.integrity_sha256.value);
    assert_non_null(msg.fingerprint.value);
    assert_int_equal(msg.fingerprint.len, 4);
    assert_int_equal(msg.fingerprint.offset, 100);

    assert_int_equal(punch_stun_check_integrity(&msg, (const uint8_t *)short_term_pw,
                                                strlen(short_term_pw)), 0);
    assert_int_equal(punch_stun_check_integrity(&msg, (const uint8_t *)"VOkJxbRl1RmTxUk/WvJxBT",
                                                22), PUNCH_ERR_INTEGRITY);
    assert_int_equal(punch_stun_check_integrity(&msg, (const uint8_t *)"", 0),
                     PUNCH_ERR_INTEGRITY);
    assert_true(punch_stun_is_stun(rfc5769_request, sizeof rfc5769_request));
}

static void check_response(const uint8_t *bytes, size_t len, const punch_addr *want)
{
    punch_stun_msg msg;
    punch_addr got;

    expect_decodes(bytes, len, &msg);
    assert_int_equal(msg.method, PUNCH_STUN_BINDING);
    assert_int_equal(msg.cls, PUNCH_STUN_SUCCESS);
    assert_false(msg.classic);
    assert_memory_equal(msg.txid, rfc5769_txid, 12);
    assert_int_equal(msg.n_attrs, 4);
    assert_int_equal(msg.attrs[0].type, PUNCH_STUN_ATTR_SOFTWARE);
    assert_int_equal(msg.attrs[1].type, PUNCH_STUN_ATTR_XOR_MAPPED_ADDRESS);
    assert_int_equal(msg.attrs[2].type, PUNCH_STUN_ATTR_MESSAGE_INTEGRITY);
    assert_int_equal(msg.attrs[3].type, PUNCH_STUN_ATTR_FINGERPRINT);
    assert_attr_str(&msg, PUNCH_STUN_ATTR_SOFTWARE, "test vector");

    memset(&got, 0xee, sizeof got);
    assert_int_equal(punch_stun_read_addr(
                         &msg, punch_stun_find(&msg, PUNCH_STUN_ATTR_XOR_MAPPED_ADDRESS), &got), 0);
    assert_int_equal(got.family, want->family);
    assert_int_equal(got.port, 32853);
    assert_true(punch_addr_equal(&got, want));
    assert_null(punch_stun_find(&msg, PUNCH_STUN_ATTR_MAPPED_ADDRESS));

    assert_non_null(msg.integrity.value);
    assert_int_equal(msg.integrity.len, 20);
    assert_non_null(msg.fingerprint.value);
    assert_int_equal(punch_stun_check_integrity(&msg, (const uint8_t *)short_term_pw,
                                                strlen(short_term_pw)), 0);
    assert_int_equal(punch_stun_check_integrity(&msg, (const uint8_t *)"wrong", 5),
                     PUNCH_ERR_INTEGRITY);
}

static void test_rfc5769_response_v4_decode(void **state)
{
    (void)state;
    punch_addr want;
    set_addr4(&want, 192, 0, 2, 1, 32853);
    check_response(rfc5769_response_v4, sizeof rfc5769_response_v4, &want);
}

static void test_rfc5769_response_v6_decode(void **state)
{
    (void)state;
    punch_addr want;
    set_addr6(&want, ip6_rfc5769, 32853);
    check_response(rfc5769_response_v6, sizeof rfc5769_response_v6, &want);
}

static void test_long_term_key_md5(void **state)
{
    (void)state;
    uint8_t key[16];
    punch_stun_long_term_key_md5(lt_username, lt_realm, lt_password, key);
    assert_memory_equal(key, lt_key_expected, 16);
}

static void test_rfc5769_long_term_decode(void **state)
{
    (void)state;
    punch_stun_msg msg;
    uint8_t key[16], bad[16];

    expect_decodes(rfc5769_request_lt, sizeof rfc5769_request_lt, &msg);
    assert_int_equal(msg.method, PUNCH_STUN_BINDING);
    assert_int_equal(msg.cls, PUNCH_STUN_REQUEST);
    assert_false(msg.classic);
    assert_memory_equal(msg.txid, rfc5769_txid_lt, 12);
    assert_int_equal(msg.n_attrs, 4);
    assert_int_equal(msg.attrs[0].type, PUNCH_STUN_ATTR_USERNAME);
    assert_int_equal(msg.attrs[1].type, PUNCH_STUN_ATTR_NONCE);
    assert_int_equal(msg.attrs[2].type, PUNCH_STUN_ATTR_REALM);
    assert_int_equal(msg.attrs[3].type, PUNCH_STUN_ATTR_MESSAGE_INTEGRITY);
    assert_attr_str(&msg, PUNCH_STUN_ATTR_USERNAME, lt_username);
    assert_int_equal(punch_stun_find(&msg, PUNCH_STUN_ATTR_USERNAME)->len, 18);
    assert_attr_str(&msg, PUNCH_STUN_ATTR_NONCE, lt_nonce);
    assert_attr_str(&msg, PUNCH_STUN_ATTR_REALM, lt_realm);
    assert_non_null(msg.integrity.value);
    assert_null(msg.fingerprint.value);
    assert_null(msg.integrity_sha256.value);

    punch_stun_long_term_key_md5(lt_username, lt_realm, lt_password, key);
    assert_int_equal(punch_stun_check_integrity(&msg, key, sizeof key), 0);
    /* Case matters after SASLprep: "TheMatrIx" is another password. */
    punch_stun_long_term_key_md5(lt_username, lt_realm, "TheMatrIx", bad);
    assert_int_equal(punch_stun_check_integrity(&msg, bad, sizeof bad), PUNCH_ERR_INTEGRITY);
    /* The short-term form of the same password is not the key either. */
    assert_int_equal(punch_stun_check_integrity(&msg, (const uint8_t *)lt_password,
                                                strlen(lt_password)), PUNCH_ERR_INTEGRITY);
}

static void test_rfc5769_tampered(void **state)
{
    (void)state;
    punch_stun_msg msg;
    uint8_t buf[sizeof rfc5769_request_lt];
    uint8_t key[16];

    /* No FINGERPRINT: decodes, but the MAC no longer verifies. */
    memcpy(buf, rfc5769_request_lt, sizeof buf);
    buf[60] ^= 0x01; /* inside NONCE */
    expect_decodes(buf, sizeof buf, &msg);
    punch_stun_long_term_key_md5(lt_username, lt_realm, lt_password, key);
    assert_int_equal(punch_stun_check_integrity(&msg, key, sizeof key), PUNCH_ERR_INTEGRITY);

    /* A flipped MAC byte. */
    memcpy(buf, rfc5769_request_lt, sizeof buf);
    buf[sizeof buf - 1] ^= 0x80;
    expect_decodes(buf, sizeof buf, &msg);
    assert_int_equal(punch_stun_check_integrity(&msg, key, sizeof key), PUNCH_ERR_INTEGRITY);

    /* With FINGERPRINT: any change to the bytes its CRC covers is
     * malformed (header included: a cleared cookie bit makes the message
     * classic, and the CRC still fails). The FINGERPRINT's own type is left
     * out: changed, it is an unknown attribute after MESSAGE-INTEGRITY. */
    for (size_t i = 0; i < sizeof rfc5769_request - 8; i++) {
        uint8_t b2[sizeof rfc5769_request];
        memcpy(b2, rfc5769_request, sizeof b2);
        b2[i] ^= 0x10;
        expect_malformed(b2, sizeof b2);
    }
}

/* ---- RFC 5769: encode --------------------------------------------------- */

static void test_rfc5769_request_encode(void **state)
{
    (void)state;
    punch_stun_writer w;
    uint8_t buf[256];
    size_t len = 0;

    assert_int_equal(punch_stun_writer_init(&w, buf, sizeof buf, PUNCH_STUN_BINDING,
                                            PUNCH_STUN_REQUEST, rfc5769_txid), 0);
    w.pad_byte = ' ';
    assert_int_equal(punch_stun_put(&w, PUNCH_STUN_ATTR_SOFTWARE, "STUN test client", 16), 0);
    assert_int_equal(punch_stun_put_u32(&w, PUNCH_STUN_ATTR_PRIORITY, 0x6e0001ffu), 0);
    assert_int_equal(punch_stun_put_u64(&w, PUNCH_STUN_ATTR_ICE_CONTROLLED,
                                        0x932ff9b151263b36ull), 0);
    assert_int_equal(punch_stun_put(&w, PUNCH_STUN_ATTR_USERNAME, "evtj:h6vY", 9), 0);
    assert_int_equal(punch_stun_put_integrity(&w, (const uint8_t *)short_term_pw,
                                              strlen(short_term_pw)), 0);
    assert_int_equal(punch_stun_put_fingerprint(&w), 0);
    assert_int_equal(punch_stun_finish(&w, &len), 0);
    assert_int_equal(len, sizeof rfc5769_request);
    assert_memory_equal(buf, rfc5769_request, sizeof rfc5769_request);
}

static void encode_response(const punch_addr *a, const uint8_t *want, size_t want_len)
{
    punch_stun_writer w;
    uint8_t buf[256];
    size_t len = 0;

    assert_int_equal(punch_stun_writer_init(&w, buf, sizeof buf, PUNCH_STUN_BINDING,
                                            PUNCH_STUN_SUCCESS, rfc5769_txid), 0);
    w.pad_byte = ' ';
    assert_int_equal(punch_stun_put(&w, PUNCH_STUN_ATTR_SOFTWARE, "test vector", 11), 0);
    assert_int_equal(punch_stun_put_addr(&w, PUNCH_STUN_ATTR_XOR_MAPPED_ADDRESS, a), 0);
    assert_int_equal(punch_stun_put_integrity(&w, (const uint8_t *)short_term_pw,
                                              strlen(short_term_pw)), 0);
    assert_int_equal(punch_stun_put_fingerprint(&w), 0);
    assert_int_equal(punch_stun_finish(&w, &len), 0);
    assert_int_equal(len, want_len);
    assert_memory_equal(buf, want, want_len);
}

static void test_rfc5769_response_v4_encode(void **state)
{
    (void)state;
    punch_addr a;
    set_addr4(&a, 192, 0, 2, 1, 32853);
    encode_response(&a, rfc5769_response_v4, sizeof rfc5769_response_v4);
}

static void test_rfc5769_response_v6_encode(void **state)
{
    (void)state;
    punch_addr a;
    set_addr6(&a, ip6_rfc5769, 32853);
    encode_response(&a, rfc5769_response_v6, sizeof rfc5769_response_v6);
}

static void test_rfc5769_long_term_encode(void **state)
{
    (void)state;
    punch_stun_writer w;
    uint8_t buf[256], key[16];
    size_t len = 0;

    punch_stun_long_term_key_md5(lt_username, lt_realm, lt_password, key);
    assert_int_equal(punch_stun_writer_init(&w, buf, sizeof buf, PUNCH_STUN_BINDING,
                                            PUNCH_STUN_REQUEST, rfc5769_txid_lt), 0);
    assert_int_equal(w.pad_byte, 0);
    assert_int_equal(punch_stun_put(&w, PUNCH_STUN_ATTR_USERNAME, lt_username,
                                    strlen(lt_username)), 0);
    assert_int_equal(punch_stun_put(&w, PUNCH_STUN_ATTR_NONCE, lt_nonce, strlen(lt_nonce)), 0);
    assert_int_equal(punch_stun_put(&w, PUNCH_STUN_ATTR_REALM, lt_realm, strlen(lt_realm)), 0);
    assert_int_equal(punch_stun_put_integrity(&w, key, sizeof key), 0);
    assert_int_equal(punch_stun_finish(&w, &len), 0);
    assert_int_equal(len, sizeof rfc5769_request_lt);
    assert_memory_equal(buf, rfc5769_request_lt, sizeof rfc5769_request_lt);
}

static void test_is_stun(void **state)
{
    (void)state;
    uint8_t b[sizeof rfc5769_response_v4];

    for (size_t i = 0; i < N_VECTORS; i++)
        assert_true(punch_stun_is_stun(vectors[i].bytes, vectors[i].len));
    assert_false(punch_stun_is_stun(rfc5769_request, 19));
    assert_false(punch_stun_is_stun(rfc5769_request, 0));
    assert_false(punch_stun_is_stun(rfc5769_request, sizeof rfc5769_request - 4));

    memcpy(b, rfc5769_response_v4, sizeof b);
    b[0] |= 0x40; /* ChannelData range (RFC 7983) */
    assert_false(punch_stun_is_stun(b, sizeof b));
    memcpy(b, rfc5769_response_v4, sizeof b);
    b[3] = 0x3d; /* not a multiple of 4, and not the datagram's length */
    assert_false(punch_stun_is_stun(b, sizeof b));
    /* Lengths that match the datagram but are not multiples of 4. */
    for (size_t l = 1; l < 4; l++) {
        punch_put16(b + 2, (uint16_t)(sizeof b - 20 - 4 + l));
        assert_false(punch_stun_is_stun(b, sizeof b - 4 + l));
    }
    /* No magic cookie check: a classic message is STUN too. */
    memcpy(b, rfc5769_response_v4, sizeof b);
    b[4] = 0;
    assert_true(punch_stun_is_stun(b, sizeof b));
}

/* ---- malformed input ---------------------------------------------------- */

static void test_decode_null(void **state)
{
    (void)state;
    punch_stun_msg msg;
    assert_int_equal(punch_stun_decode(NULL, rfc5769_request, sizeof rfc5769_request),
                     PUNCH_ERR_INVAL);
    assert_int_equal(punch_stun_decode(&msg, NULL, 20), PUNCH_ERR_INVAL);
}

static void test_truncated_header(void **state)
{
    (void)state;
    struct raw r;
    raw_header(&r, 0x0001, txid_a);
    for (size_t k = 0; k < PUNCH_STUN_HEADER_LEN; k++)
        expect_malformed(r.b, k);
    /* The header alone is a valid Binding request. */
    punch_stun_msg msg;
    expect_decodes(r.b, PUNCH_STUN_HEADER_LEN, &msg);
    assert_int_equal(msg.n_attrs, 0);
    assert_int_equal(msg.method, PUNCH_STUN_BINDING);
    assert_int_equal(msg.cls, PUNCH_STUN_REQUEST);
}

static void test_truncated_every_byte(void **state)
{
    (void)state;
    for (size_t v = 0; v < N_VECTORS; v++) {
        const struct vector *vec = &vectors[v];
        punch_stun_msg full;
        expect_decodes(vec->bytes, vec->len, &full);

        for (size_t k = 0; k < vec->len; k++) {
            /* As received: the length field no longer matches. */
            expect_malformed(vec->bytes, k);

            /* With the length field patched to the cut: only a cut on an
             * attribute boundary leaves a well-formed message (a cut just
             * before the FINGERPRINT included). */
            if (k < PUNCH_STUN_HEADER_LEN || (k - PUNCH_STUN_HEADER_LEN) % 4)
                continue;
            uint8_t *b = malloc(k);
            assert_non_null(b);
            memcpy(b, vec->bytes, k);
            punch_put16(b + 2, (uint16_t)(k - PUNCH_STUN_HEADER_LEN));
            bool boundary = k == PUNCH_STUN_HEADER_LEN;
            for (size_t i = 0; i < full.n_attrs; i++)
                if (full.attrs[i].offset == k)
                    boundary = true;
            punch_stun_msg msg;
            int rc = punch_stun_decode(&msg, b, k);
            if (rc != (boundary ? 0 : PUNCH_ERR_MALFORMED))
                print_message("%s cut at %zu: rc %d\n", vec->name, k, rc);
            assert_int_equal(rc, boundary ? 0 : PUNCH_ERR_MALFORMED);
            free(b);
        }
    }
}

static void test_length_not_multiple_of_4(void **state)
{
    (void)state;
    struct raw r;
    raw_header(&r, 0x0001, txid_a);
    raw_attr_ex(&r, PUNCH_STUN_ATTR_SOFTWARE, 5, "abcde", 5, 0); /* no padding */
    assert_int_equal(r.len, 29);
    expect_malformed(r.b, r.len);
    /* The length field 9 with the 3 padding bytes present as well. */
    memset(r.b + r.len, 0, 3);
    expect_malformed(r.b, r.len + 3);

    for (uint16_t l = 1; l < 4; l++) {
        raw_header(&r, 0x0001, txid_a);
        raw_attr(&r, PUNCH_STUN_ATTR_SOFTWARE, "abcd", 4);
        punch_put16(r.b + 2, (uint16_t)(8 + l));
        memset(r.b + r.len, 0, 4);
        expect_malformed(r.b, r.len + l);
    }
}

static void test_length_field_mismatch(void **state)
{
    (void)state;
    for (size_t v = 0; v < N_VECTORS; v++) {
        const struct vector *vec = &vectors[v];
        uint8_t b[256];
        uint16_t l = punch_get16(vec->bytes + 2);
        memset(b, 0, sizeof b);
        memcpy(b, vec->bytes, vec->len);

        /* Larger than the buffer. */
        punch_put16(b + 2, (uint16_t)(l + 4));
        expect_malformed(b, vec->len);
        punch_put16(b + 2, 0xfffc);
        expect_malformed(b, vec->len);
        /* Smaller than the buffer. */
        punch_put16(b + 2, (uint16_t)(l - 4));
        expect_malformed(b, vec->len);
        punch_put16(b + 2, 0);
        expect_malformed(b, vec->len);
        /* The buffer has 4 more bytes than the length field says. */
        punch_put16(b + 2, l);
        expect_malformed(b, vec->len + 4);
    }
}

static void test_attr_past_end(void **state)
{
    (void)state;
    struct raw r;

    /* Last attribute claims 8 bytes, has 4. */
    raw_header(&r, 0x0001, txid_a);
    raw_attr(&r, PUNCH_STUN_ATTR_SOFTWARE, "abcd", 4);
    raw_attr_ex(&r, PUNCH_STUN_ATTR_USERNAME, 8, "wxyz", 4, 0);
    expect_malformed(r.b, r.len);

    /* Claims 0xffff. */
    raw_header(&r, 0x0001, txid_a);
    raw_attr_ex(&r, PUNCH_STUN_ATTR_USERNAME, 0xffff, "wxyz", 4, 0);
    expect_malformed(r.b, r.len);

    /* An attribute header with none of its 4 bytes of value. */
    raw_header(&r, 0x0001, txid_a);
    raw_attr(&r, PUNCH_STUN_ATTR_SOFTWARE, "abcd", 4);
    raw_attr_ex(&r, PUNCH_STUN_ATTR_USERNAME, 4, NULL, 0, 0);
    expect_malformed(r.b, r.len);

    /* First attribute runs past the end into nothing. */
    raw_header(&r, 0x0001, txid_a);
    raw_attr_ex(&r, PUNCH_STUN_ATTR_SOFTWARE, 12, "abcdefgh", 8, 0);
    expect_malformed(r.b, r.len);
}

static void test_missing_padding_last_attr(void **state)
{
    (void)state;
    struct raw r;

    /* 5-byte value, padding absent: buffer and length field both 9. */
    raw_header(&r, 0x0001, txid_a);
    raw_attr(&r, PUNCH_STUN_ATTR_SOFTWARE, "abcd", 4);
    raw_attr_ex(&r, PUNCH_STUN_ATTR_USERNAME, 5, "abcde", 5, 0);
    expect_malformed(r.b, r.len);

    /* Length field counts the padding (16) but the datagram stops at the
     * value's end. */
    punch_put16(r.b + 2, 20);
    expect_malformed(r.b, r.len);

    /* Padding cut to 1 of 3 bytes, length field patched to the buffer. */
    raw_header(&r, 0x0001, txid_a);
    raw_attr_ex(&r, PUNCH_STUN_ATTR_USERNAME, 5, "abcde", 5, 1);
    punch_put16(r.b + 2, 10);
    expect_malformed(r.b, r.len);

    /* Two unpadded attributes whose total is a multiple of 4: a decoder
     * that skipped only the value length would read USERNAME then SOFTWARE
     * and accept it; at the padded offset there is a header whose length
     * runs past the end. */
    raw_header(&r, 0x0001, txid_a);
    raw_attr_ex(&r, PUNCH_STUN_ATTR_USERNAME, 5, "abcde", 5, 0);
    raw_attr_ex(&r, PUNCH_STUN_ATTR_SOFTWARE, 3, "xyz", 3, 0);
    assert_int_equal(r.len, 36);
    expect_malformed(r.b, r.len);

    /* Sanity: the same with its 3 padding bytes is fine. */
    raw_header(&r, 0x0001, txid_a);
    raw_attr(&r, PUNCH_STUN_ATTR_USERNAME, "abcde", 5);
    punch_stun_msg msg;
    expect_decodes(r.b, r.len, &msg);
    assert_attr_str(&msg, PUNCH_STUN_ATTR_USERNAME, "abcde");
}

static void test_top_bits_set(void **state)
{
    (void)state;
    uint8_t b[sizeof rfc5769_request_lt];
    for (uint8_t bits = 1; bits < 4; bits++) {
        memcpy(b, rfc5769_request_lt, sizeof b);
        b[0] |= (uint8_t)(bits << 6);
        expect_malformed(b, sizeof b);
    }
}

static void test_integrity_wrong_size(void **state)
{
    (void)state;
    static const uint8_t zeros[64];
    static const size_t mi_bad[] = {0, 4, 16, 19, 21, 24, 32};
    static const size_t sha_bad[] = {0, 4, 12, 15, 17, 36, 40, 64};
    static const size_t fp_bad[] = {0, 2, 3, 5, 8};
    struct raw r;

    for (size_t i = 0; i < sizeof mi_bad / sizeof mi_bad[0]; i++) {
        raw_header(&r, 0x0001, txid_a);
        raw_attr(&r, PUNCH_STUN_ATTR_USERNAME, "user", 4);
        raw_attr(&r, PUNCH_STUN_ATTR_MESSAGE_INTEGRITY, zeros, mi_bad[i]);
        expect_malformed(r.b, r.len);
    }
    for (size_t i = 0; i < sizeof sha_bad / sizeof sha_bad[0]; i++) {
        raw_header(&r, 0x0001, txid_a);
        raw_attr(&r, PUNCH_STUN_ATTR_USERNAME, "user", 4);
        raw_attr(&r, PUNCH_STUN_ATTR_MESSAGE_INTEGRITY_SHA256, zeros, sha_bad[i]);
        expect_malformed(r.b, r.len);
    }
    for (size_t i = 0; i < sizeof fp_bad / sizeof fp_bad[0]; i++) {
        raw_header(&r, 0x0001, txid_a);
        raw_attr(&r, PUNCH_STUN_ATTR_USERNAME, "user", 4);
        raw_attr(&r, PUNCH_STUN_ATTR_FINGERPRINT, zeros, fp_bad[i]);
        expect_malformed(r.b, r.len);
    }

    /* The right sizes decode. */
    punch_stun_msg msg;
    raw_header(&r, 0x0001, txid_a);
    raw_attr(&r, PUNCH_STUN_ATTR_USERNAME, "user", 4);
    raw_attr(&r, PUNCH_STUN_ATTR_MESSAGE_INTEGRITY, zeros, 20);
    expect_decodes(r.b, r.len, &msg);
    raw_header(&r, 0x0001, txid_a);
    raw_attr(&r, PUNCH_STUN_ATTR_USERNAME, "user", 4);
    raw_attr(&r, PUNCH_STUN_ATTR_MESSAGE_INTEGRITY_SHA256, zeros, 32);
    expect_decodes(r.b, r.len, &msg);
}

static void test_attr_after_fingerprint(void **state)
{
    (void)state;
    struct raw r;

    raw_header(&r, 0x0001, txid_a);
    raw_attr(&r, PUNCH_STUN_ATTR_SOFTWARE, "abcd", 4);
    raw_fingerprint(&r);
    raw_attr(&r, PUNCH_STUN_ATTR_USERNAME, "user", 4);
    expect_malformed(r.b, r.len);

    /* Even with the CRC computed over everything before it, with the final
     * length in the header. */
    raw_header(&r, 0x0001, txid_a);
    raw_attr(&r, PUNCH_STUN_ATTR_SOFTWARE, "abcd", 4);
    size_t fp = raw_attr(&r, PUNCH_STUN_ATTR_FINGERPRINT, "\0\0\0\0", 4);
    raw_attr(&r, PUNCH_STUN_ATTR_USERNAME, "user", 4);
    punch_put32(r.b + fp + 4, stun_crc(r.b, fp));
    expect_malformed(r.b, r.len);

    /* Two FINGERPRINTs. */
    raw_header(&r, 0x0001, txid_a);
    raw_fingerprint(&r);
    raw_fingerprint(&r);
    expect_malformed(r.b, r.len);

    /* An unknown optional attribute after FINGERPRINT is no exception. */
    raw_header(&r, 0x0001, txid_a);
    raw_fingerprint(&r);
    raw_attr(&r, 0x8031, "abcd", 4);
    expect_malformed(r.b, r.len);
}

static void test_integrity_after_fingerprint(void **state)
{
    (void)state;
    static const uint8_t zeros[32];
    struct raw r;

    raw_header(&r, 0x0001, txid_a);
    raw_attr(&r, PUNCH_STUN_ATTR_USERNAME, "user", 4);
    raw_fingerprint(&r);
    raw_integrity(&r, "key");
    expect_malformed(r.b, r.len);

    raw_header(&r, 0x0001, txid_a);
    raw_attr(&r, PUNCH_STUN_ATTR_USERNAME, "user", 4);
    raw_fingerprint(&r);
    raw_attr(&r, PUNCH_STUN_ATTR_MESSAGE_INTEGRITY_SHA256, zeros, 32);
    expect_malformed(r.b, r.len);
}

static void test_bad_fingerprint_crc(void **state)
{
    (void)state;
    for (size_t v = 0; v < 3; v++) {
        uint8_t b[256];
        const struct vector *vec = &vectors[v];
        for (size_t i = 0; i < 4; i++) {
            memcpy(b, vec->bytes, vec->len);
            b[vec->len - 4 + i] ^= 0x01;
            expect_malformed(b, vec->len);
        }
        /* The plain CRC-32 without the XOR of RFC 8489 §14.7. */
        memcpy(b, vec->bytes, vec->len);
        punch_put32(b + vec->len - 4, punch_get32(b + vec->len - 4) ^ PUNCH_STUN_FINGERPRINT_XOR);
        expect_malformed(b, vec->len);
    }

    /* CRC computed over the wrong span (the fingerprint's own header too). */
    struct raw r;
    raw_header(&r, 0x0001, txid_a);
    raw_attr(&r, PUNCH_STUN_ATTR_SOFTWARE, "abcd", 4);
    size_t fp = raw_attr(&r, PUNCH_STUN_ATTR_FINGERPRINT, "\0\0\0\0", 4);
    punch_put32(r.b + fp + 4, stun_crc(r.b, fp + 4));
    expect_malformed(r.b, r.len);
    /* And over the right span: fine. */
    punch_put32(r.b + fp + 4, stun_crc(r.b, fp));
    punch_stun_msg msg;
    expect_decodes(r.b, r.len, &msg);
    assert_non_null(msg.fingerprint.value);
}

static void test_too_many_attrs(void **state)
{
    (void)state;
    struct raw r;
    punch_stun_msg msg;

    raw_header(&r, 0x0001, txid_a);
    for (int i = 0; i < PUNCH_STUN_MAX_ATTRS; i++)
        raw_attr(&r, PUNCH_STUN_ATTR_SOFTWARE, "abcd", 4);
    expect_decodes(r.b, r.len, &msg);
    assert_int_equal(msg.n_attrs, PUNCH_STUN_MAX_ATTRS);

    raw_attr(&r, PUNCH_STUN_ATTR_SOFTWARE, "abcd", 4);
    expect_malformed(r.b, r.len);

    /* Many zero-length attributes: 200 of them. */
    raw_header(&r, 0x0001, txid_a);
    for (int i = 0; i < 200; i++)
        raw_attr(&r, PUNCH_STUN_ATTR_DONT_FRAGMENT, NULL, 0);
    expect_malformed(r.b, r.len);
}

static void test_many_unknown(void **state)
{
    (void)state;
    struct raw r;
    punch_stun_msg msg;

    /* More unknown comprehension-required types than msg.unknown holds:
     * whatever the verdict, no overflow. */
    raw_header(&r, 0x0001, txid_a);
    for (uint16_t t = 0; t < PUNCH_STUN_MAX_UNKNOWN + 4; t++)
        raw_attr(&r, (uint16_t)(0x0040 + t), "abcd", 4);
    int rc = punch_stun_decode(&msg, r.b, r.len);
    assert_true(rc == 0 || rc == PUNCH_ERR_MALFORMED);
    if (rc == 0) {
        assert_true(msg.n_unknown >= 1 && msg.n_unknown <= PUNCH_STUN_MAX_UNKNOWN);
        assert_int_equal(msg.unknown[0], 0x0040);
    }
}

/* Every reader on every attribute: results must be 0 or MALFORMED. */
static void walk_readers(const punch_stun_msg *msg)
{
    assert_true(msg->n_attrs <= PUNCH_STUN_MAX_ATTRS);
    assert_true(msg->n_unknown <= PUNCH_STUN_MAX_UNKNOWN);
    for (size_t i = 0; i < msg->n_attrs; i++) {
        const punch_stun_attr *a = &msg->attrs[i];
        punch_addr addr;
        uint32_t u32;
        uint64_t u64;
        int code;
        const char *reason;
        size_t rl, n;
        uint16_t types[800], u16;
        int rc;

        assert_true(a->value >= msg->buf + PUNCH_STUN_HEADER_LEN);
        assert_true(a->value + a->len <= msg->buf + msg->len);
        assert_ptr_equal(a->value, msg->buf + a->offset + 4);

        rc = punch_stun_read_addr(msg, a, &addr);
        assert_true(rc == 0 || rc == PUNCH_ERR_MALFORMED);
        if (rc == 0)
            assert_true(addr.family == PUNCH_AF_INET || addr.family == PUNCH_AF_INET6);
        rc = punch_stun_read_u32(a, &u32);
        assert_int_equal(rc, a->len == 4 ? 0 : PUNCH_ERR_MALFORMED);
        rc = punch_stun_read_u64(a, &u64);
        assert_int_equal(rc, a->len == 8 ? 0 : PUNCH_ERR_MALFORMED);
        rc = punch_stun_read_error(a, &code, &reason, &rl);
        assert_true(rc == 0 || rc == PUNCH_ERR_MALFORMED);
        if (rc == 0) {
            assert_true(code >= 300 && code <= 699);
            assert_true(rl + 4 == a->len);
        }
        rc = punch_stun_read_unknown(a, types, sizeof types / sizeof types[0], &n);
        assert_int_equal(rc, a->len % 2 ? PUNCH_ERR_MALFORMED : 0);
        if (rc == 0)
            assert_int_equal(n, a->len / 2);
        rc = punch_stun_read_port(a, &u16);
        assert_true(rc == 0 || rc == PUNCH_ERR_MALFORMED);
        rc = punch_stun_read_channel(a, &u16);
        assert_true(rc == 0 || rc == PUNCH_ERR_MALFORMED);
        if (rc == 0)
            assert_true(u16 >= PUNCH_STUN_CHANNEL_MIN && u16 <= PUNCH_STUN_CHANNEL_MAX);
    }
    int rc = punch_stun_check_integrity(msg, (const uint8_t *)short_term_pw,
                                        strlen(short_term_pw));
    assert_true(rc == 0 || rc == PUNCH_ERR_INTEGRITY || rc == PUNCH_ERR_NOTFOUND);
}

static void test_random_mutations(void **state)
{
    (void)state;
    const uint32_t seed = 0x5705u;
    size_t ok = 0;
    prng_seed(seed);
    for (int it = 0; it < 20000; it++) {
        const struct vector *vec = &vectors[prng_below(N_VECTORS)];
        uint8_t tmp[300];
        size_t len = vec->len;
        memcpy(tmp, vec->bytes, len);
        memset(tmp + len, (int)prng_below(256), sizeof tmp - len);

        unsigned n = 1 + prng_below(4);
        for (unsigned j = 0; j < n; j++) {
            switch (prng_below(5)) {
            case 0: /* a random byte */
                tmp[prng_below((uint32_t)len)] = (uint8_t)prng_next();
                break;
            case 1: /* one bit */
                tmp[prng_below((uint32_t)len)] ^= (uint8_t)(1u << prng_below(8));
                break;
            case 2: /* truncate, keeping the length field honest */
                len = PUNCH_STUN_HEADER_LEN + 4 * prng_below((uint32_t)(len - 20) / 4 + 1);
                punch_put16(tmp + 2, (uint16_t)(len - 20));
                break;
            case 3: /* an attribute length byte (offsets 22.. are candidates) */
                tmp[22 + 4 * prng_below((uint32_t)(len - 20) / 4)] = (uint8_t)prng_next();
                break;
            default: /* grow, keeping the length field honest */
                if (len + 8 <= sizeof tmp)
                    len += 4 * (1 + prng_below(2));
                punch_put16(tmp + 2, (uint16_t)(len - 20));
                break;
            }
        }
        punch_stun_msg msg;
        uint8_t *copy;
        int rc = decode_copy(tmp, len, &msg, &copy);
        if (rc != 0 && rc != PUNCH_ERR_MALFORMED) {
            print_message("seed %#x iteration %d: rc %d\n", seed, it, rc);
            fail();
        }
        if (rc == 0) {
            ok++;
            walk_readers(&msg);
        }
        free(copy);
    }
    /* The mutations must not all be rejected, or the walk tested nothing. */
    assert_true(ok > 100);
}

/* ---- attribute rules ---------------------------------------------------- */

static void test_ignored_after_integrity(void **state)
{
    (void)state;
    struct raw r;
    punch_stun_msg msg;

    raw_header(&r, 0x0001, txid_a);
    raw_attr(&r, PUNCH_STUN_ATTR_SOFTWARE, "soft", 4);
    raw_integrity(&r, "key");
    raw_attr(&r, PUNCH_STUN_ATTR_USERNAME, "user", 4);
    raw_attr(&r, PUNCH_STUN_ATTR_PRIORITY, "\0\0\0\1", 4);
    raw_attr(&r, 0x0031, "abcd", 4); /* ignored: does not even count as unknown */
    raw_fingerprint(&r);
    expect_decodes(r.b, r.len, &msg);

    assert_non_null(punch_stun_find(&msg, PUNCH_STUN_ATTR_SOFTWARE));
    assert_null(punch_stun_find(&msg, PUNCH_STUN_ATTR_USERNAME));
    assert_null(punch_stun_find(&msg, PUNCH_STUN_ATTR_PRIORITY));
    assert_null(punch_stun_find(&msg, 0x0031));
    assert_int_equal(msg.n_unknown, 0);
    assert_non_null(msg.fingerprint.value);
    assert_non_null(msg.integrity.value);
    for (size_t i = 0; i < msg.n_attrs; i++) {
        assert_int_not_equal(msg.attrs[i].type, PUNCH_STUN_ATTR_USERNAME);
        assert_int_not_equal(msg.attrs[i].type, PUNCH_STUN_ATTR_PRIORITY);
    }
    /* The MAC covers only what precedes it, so it still verifies. */
    assert_int_equal(punch_stun_check_integrity(&msg, (const uint8_t *)"key", 3), 0);

    /* MESSAGE-INTEGRITY-SHA256 and FINGERPRINT after it count. */
    uint8_t mac[32];
    raw_header(&r, 0x0001, txid_a);
    raw_attr(&r, PUNCH_STUN_ATTR_USERNAME, "user", 4);
    raw_integrity(&r, "k1");
    ref_hmac_sha256(r.b, r.len, 36, (const uint8_t *)"k2", 2, mac);
    raw_attr(&r, PUNCH_STUN_ATTR_MESSAGE_INTEGRITY_SHA256, mac, 32);
    raw_fingerprint(&r);
    expect_decodes(r.b, r.len, &msg);
    assert_non_null(punch_stun_find(&msg, PUNCH_STUN_ATTR_MESSAGE_INTEGRITY_SHA256));
    assert_non_null(punch_stun_find(&msg, PUNCH_STUN_ATTR_FINGERPRINT));
    assert_non_null(msg.integrity.value);
    assert_non_null(msg.integrity_sha256.value);
    assert_int_equal(msg.integrity_sha256.len, 32);
    assert_non_null(msg.fingerprint.value);
    /* SHA256 wins when both are present. */
    assert_int_equal(punch_stun_check_integrity(&msg, (const uint8_t *)"k2", 2), 0);
    assert_int_equal(punch_stun_check_integrity(&msg, (const uint8_t *)"k1", 2),
                     PUNCH_ERR_INTEGRITY);
}

static void test_duplicates_first(void **state)
{
    (void)state;
    struct raw r;
    punch_stun_msg msg;

    raw_header(&r, 0x0001, txid_a);
    raw_attr(&r, PUNCH_STUN_ATTR_SOFTWARE, "first", 5);
    raw_attr(&r, PUNCH_STUN_ATTR_USERNAME, "u", 1);
    raw_attr(&r, PUNCH_STUN_ATTR_SOFTWARE, "second", 6);
    expect_decodes(r.b, r.len, &msg);
    assert_int_equal(msg.n_attrs, 3);
    assert_attr_str(&msg, PUNCH_STUN_ATTR_SOFTWARE, "first");
    assert_int_equal(punch_stun_find(&msg, PUNCH_STUN_ATTR_SOFTWARE)->offset, 20);
    assert_int_equal(msg.attrs[2].type, PUNCH_STUN_ATTR_SOFTWARE);
    assert_int_equal(msg.attrs[2].len, 6);
    assert_null(punch_stun_find(&msg, PUNCH_STUN_ATTR_REALM));
}

static void test_unknown_required(void **state)
{
    (void)state;
    struct raw r;
    punch_stun_msg msg;

    raw_header(&r, 0x0001, txid_a);
    raw_attr(&r, PUNCH_STUN_ATTR_SOFTWARE, "s", 1);
    raw_attr(&r, 0x0031, "abcde", 5);
    raw_attr(&r, 0x8031, "xyz", 3);
    raw_attr(&r, 0x0032, NULL, 0);
    expect_decodes(r.b, r.len, &msg);
    assert_int_equal(msg.n_unknown, 2);
    assert_int_equal(msg.unknown[0], 0x0031);
    assert_int_equal(msg.unknown[1], 0x0032);
    assert_attr_str(&msg, PUNCH_STUN_ATTR_SOFTWARE, "s");
}

static void test_unknown_optional(void **state)
{
    (void)state;
    struct raw r;
    punch_stun_msg msg;

    raw_header(&r, 0x0001, txid_a);
    raw_attr(&r, 0x8031, "xyz", 3);
    raw_attr(&r, 0xFFFF, "xyzw", 4);
    raw_attr(&r, PUNCH_STUN_ATTR_SOFTWARE, "s", 1);
    expect_decodes(r.b, r.len, &msg);
    assert_int_equal(msg.n_unknown, 0);
    assert_attr_str(&msg, PUNCH_STUN_ATTR_SOFTWARE, "s");

    /* Every attribute type the codec knows is not "unknown". */
    static const uint16_t known[] = {
        0x0001, 0x0002, 0x0003, 0x0004, 0x0005, 0x0006, 0x0009, 0x000A, 0x000C, 0x000D, 0x0012,
        0x0013, 0x0014, 0x0015, 0x0016, 0x0017, 0x0018, 0x0019, 0x001A, 0x001D,
        0x001E, 0x0020, 0x0022, 0x0024, 0x0025, 0x0026, 0x0027,
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        raw_header(&r, 0x0001, txid_a);
        raw_attr(&r, known[i], "\0\1\0\0\0\0\0\0", 8);
        int rc = punch_stun_decode(&msg, r.b, r.len);
        assert_int_equal(rc, 0);
        if (msg.n_unknown)
            print_message("type %#06x reported unknown\n", known[i]);
        assert_int_equal(msg.n_unknown, 0);
    }
}

static const uint8_t classic_txid[16] = {
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
    0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10,
};

/* RFC 3489 Binding success: MAPPED-ADDRESS 192.0.2.1:32853, then an
 * XOR-MAPPED-ADDRESS that cannot be undone without a cookie. */
static const uint8_t classic_response[] = {
    0x01, 0x01, 0x00, 0x18,
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
    0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10,
    0x00, 0x01, 0x00, 0x08, 0x00, 0x01, 0x80, 0x55, 0xc0, 0x00, 0x02, 0x01,
    0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43,
};

static void test_classic_decode(void **state)
{
    (void)state;
    punch_stun_msg msg;
    punch_addr a, want;

    expect_decodes(classic_response, sizeof classic_response, &msg);
    assert_true(msg.classic);
    assert_int_equal(msg.method, PUNCH_STUN_BINDING);
    assert_int_equal(msg.cls, PUNCH_STUN_SUCCESS);
    assert_memory_equal(msg.txid, classic_txid, 16);
    assert_int_equal(msg.n_attrs, 2);

    set_addr4(&want, 192, 0, 2, 1, 32853);
    assert_int_equal(punch_stun_read_addr(
                         &msg, punch_stun_find(&msg, PUNCH_STUN_ATTR_MAPPED_ADDRESS), &a), 0);
    assert_true(punch_addr_equal(&a, &want));
    assert_int_equal(punch_stun_read_addr(
                         &msg, punch_stun_find(&msg, PUNCH_STUN_ATTR_XOR_MAPPED_ADDRESS), &a),
                     PUNCH_ERR_MALFORMED);
    assert_true(punch_stun_is_stun(classic_response, sizeof classic_response));

    /* The same XOR-MAPPED-ADDRESS in an RFC 8489 message reads fine. */
    struct raw r;
    raw_header(&r, 0x0101, rfc5769_txid);
    raw_attr(&r, PUNCH_STUN_ATTR_XOR_MAPPED_ADDRESS, classic_response + 36, 8);
    expect_decodes(r.b, r.len, &msg);
    assert_false(msg.classic);
    assert_int_equal(punch_stun_read_addr(&msg, &msg.attrs[0], &a), 0);
    assert_true(punch_addr_equal(&a, &want));

    /* XOR-PEER and XOR-RELAYED are XOR types too. */
    static const uint16_t xtypes[] = {
        PUNCH_STUN_ATTR_XOR_PEER_ADDRESS, PUNCH_STUN_ATTR_XOR_RELAYED_ADDRESS,
    };
    for (size_t i = 0; i < 2; i++) {
        uint8_t b[sizeof classic_response];
        memcpy(b, classic_response, sizeof b);
        punch_put16(b + 32, xtypes[i]);
        expect_decodes(b, sizeof b, &msg);
        assert_int_equal(punch_stun_read_addr(&msg, &msg.attrs[1], &a), PUNCH_ERR_MALFORMED);
    }
}

static void test_classic_encode(void **state)
{
    (void)state;
    punch_stun_writer w;
    uint8_t buf[64];
    size_t len = 0;
    punch_addr a;
    punch_stun_msg msg;

    set_addr4(&a, 192, 0, 2, 1, 32853);
    assert_int_equal(punch_stun_writer_init_classic(&w, buf, sizeof buf, PUNCH_STUN_BINDING,
                                                    PUNCH_STUN_SUCCESS, classic_txid), 0);
    assert_int_equal(punch_stun_put_addr(&w, PUNCH_STUN_ATTR_MAPPED_ADDRESS, &a), 0);
    assert_int_equal(punch_stun_finish(&w, &len), 0);
    assert_int_equal(len, 32);
    assert_memory_equal(buf, classic_response, 2);
    assert_int_equal(punch_get16(buf + 2), 12);
    assert_memory_equal(buf + 4, classic_response + 4, 28);
    expect_decodes(buf, len, &msg);
    assert_true(msg.classic);
    assert_memory_equal(msg.txid, classic_txid, 16);

    /* Too small for the 20-byte header. */
    assert_int_equal(punch_stun_writer_init_classic(&w, buf, 19, PUNCH_STUN_BINDING,
                                                    PUNCH_STUN_REQUEST, classic_txid),
                     PUNCH_ERR_NOBUFS);
    assert_int_equal(punch_stun_finish(&w, &len), PUNCH_ERR_NOBUFS);
}

/* ---- encoder ------------------------------------------------------------ */

static void test_writer_header_only(void **state)
{
    (void)state;
    punch_stun_writer w;
    uint8_t buf[32];
    size_t len = 0;
    static const uint8_t want[20] = {
        0x00, 0x11, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42,
        1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
    };

    /* init must not depend on the writer's previous contents. */
    memset(&w, 0xab, sizeof w);
    memset(buf, 0xcc, sizeof buf);
    assert_int_equal(punch_stun_writer_init(&w, buf, 20, PUNCH_STUN_BINDING,
                                            PUNCH_STUN_INDICATION, txid_a), 0);
    assert_int_equal(w.err, 0);
    assert_int_equal(w.pad_byte, 0);
    assert_false(w.classic);
    assert_int_equal(punch_stun_finish(&w, &len), 0);
    assert_int_equal(len, 20);
    assert_memory_equal(buf, want, 20);
    assert_int_equal(buf[20], 0xcc);

    /* Padding defaults to zero after init. */
    memset(&w, 0xab, sizeof w);
    assert_int_equal(punch_stun_writer_init(&w, buf, sizeof buf, PUNCH_STUN_BINDING,
                                            PUNCH_STUN_REQUEST, txid_a), 0);
    assert_int_equal(punch_stun_put(&w, PUNCH_STUN_ATTR_USERNAME, "a", 1), 0);
    assert_int_equal(punch_stun_finish(&w, &len), 0);
    assert_int_equal(len, 28);
    static const uint8_t attr[8] = {0x00, 0x06, 0x00, 0x01, 'a', 0, 0, 0};
    assert_memory_equal(buf + 20, attr, 8);
    assert_int_equal(punch_get16(buf + 2), 8);

    assert_int_equal(punch_stun_writer_init(NULL, buf, sizeof buf, PUNCH_STUN_BINDING,
                                            PUNCH_STUN_REQUEST, txid_a), PUNCH_ERR_INVAL);
}

static void test_writer_init_too_small(void **state)
{
    (void)state;
    uint8_t buf[32];
    for (size_t cap = 0; cap < 20; cap++) {
        punch_stun_writer w;
        size_t len = 0;
        memset(buf, 0xcc, sizeof buf);
        assert_int_equal(punch_stun_writer_init(&w, buf, cap, PUNCH_STUN_BINDING,
                                                PUNCH_STUN_REQUEST, txid_a), PUNCH_ERR_NOBUFS);
        assert_int_equal(punch_stun_put(&w, PUNCH_STUN_ATTR_USERNAME, "a", 1),
                         PUNCH_ERR_NOBUFS);
        assert_int_equal(punch_stun_put_fingerprint(&w), PUNCH_ERR_NOBUFS);
        assert_int_equal(punch_stun_finish(&w, &len), PUNCH_ERR_NOBUFS);
        for (size_t i = cap; i < sizeof buf; i++)
            assert_int_equal(buf[i], 0xcc);
    }
}

static void test_writer_sticky(void **state)
{
    (void)state;
    punch_stun_writer w;
    uint8_t buf[64];
    size_t len = 0;
    punch_addr bad = {.family = 5};

    /* NOBUFS first: a later caller mistake does not replace it. */
    assert_int_equal(punch_stun_writer_init(&w, buf, 24, PUNCH_STUN_BINDING,
                                            PUNCH_STUN_REQUEST, txid_a), 0);
    assert_int_equal(punch_stun_put(&w, PUNCH_STUN_ATTR_USERNAME, "user", 4),
                     PUNCH_ERR_NOBUFS);
    assert_int_not_equal(punch_stun_put_error(&w, 200, "x"), 0);
    assert_int_not_equal(punch_stun_put_addr(&w, PUNCH_STUN_ATTR_MAPPED_ADDRESS, &bad), 0);
    assert_int_not_equal(punch_stun_put(&w, PUNCH_STUN_ATTR_USERNAME, NULL, 4), 0);
    assert_int_not_equal(punch_stun_put(&w, PUNCH_STUN_ATTR_USERNAME, "", 0), 0);
    assert_int_equal(w.len, 20);
    assert_int_equal(punch_stun_finish(&w, &len), PUNCH_ERR_NOBUFS);

    /* INVAL first: a later NOBUFS does not replace it either, and nothing
     * more is written even where it would fit. */
    assert_int_equal(punch_stun_writer_init(&w, buf, 24, PUNCH_STUN_BINDING,
                                            PUNCH_STUN_REQUEST, txid_a), 0);
    assert_int_equal(punch_stun_put_error(&w, 700, "x"), PUNCH_ERR_INVAL);
    assert_int_not_equal(punch_stun_put(&w, PUNCH_STUN_ATTR_USERNAME, "user", 4), 0);
    assert_int_not_equal(punch_stun_put(&w, PUNCH_STUN_ATTR_DONT_FRAGMENT, "", 0), 0);
    assert_int_equal(w.len, 20);
    assert_int_equal(punch_stun_finish(&w, &len), PUNCH_ERR_INVAL);
}

/* Build the §2.1 request into buf[0..cap): returns the first failing step
 * (or -1) and checks stickiness on the way. */
static int build_request(uint8_t *buf, size_t cap, size_t *len)
{
    punch_stun_writer w;
    int first_fail = -1;
    int rcs[7];

    rcs[0] = punch_stun_writer_init(&w, buf, cap, PUNCH_STUN_BINDING, PUNCH_STUN_REQUEST,
                                    rfc5769_txid);
    w.pad_byte = ' ';
    rcs[1] = punch_stun_put(&w, PUNCH_STUN_ATTR_SOFTWARE, "STUN test client", 16);
    rcs[2] = punch_stun_put_u32(&w, PUNCH_STUN_ATTR_PRIORITY, 0x6e0001ffu);
    rcs[3] = punch_stun_put_u64(&w, PUNCH_STUN_ATTR_ICE_CONTROLLED, 0x932ff9b151263b36ull);
    rcs[4] = punch_stun_put(&w, PUNCH_STUN_ATTR_USERNAME, "evtj:h6vY", 9);
    rcs[5] = punch_stun_put_integrity(&w, (const uint8_t *)short_term_pw,
                                      strlen(short_term_pw));
    rcs[6] = punch_stun_put_fingerprint(&w);
    for (int i = 0; i < 7; i++) {
        if (first_fail < 0 && rcs[i] != 0)
            first_fail = i;
        if (first_fail >= 0)
            assert_int_equal(rcs[i], PUNCH_ERR_NOBUFS);
    }
    assert_true(w.len <= cap);
    int rc = punch_stun_finish(&w, len);
    assert_int_equal(rc, first_fail < 0 ? 0 : PUNCH_ERR_NOBUFS);
    return first_fail;
}

static void test_writer_nobufs_each_step(void **state)
{
    (void)state;
    /* Attribute ends in the §2.1 request: a cap below each fails that step. */
    static const size_t ends[7] = {20, 40, 48, 60, 76, 100, 108};
    uint8_t buf[160];
    size_t len;

    for (size_t cap = 0; cap <= sizeof rfc5769_request; cap++) {
        memset(buf, 0xa5, sizeof buf);
        len = 0;
        int fail_at = build_request(buf, cap, &len);
        int want = -1;
        for (int i = 0; i < 7; i++) {
            if (cap < ends[i]) {
                want = i;
                break;
            }
        }
        if (fail_at != want)
            print_message("cap %zu: failed at step %d, want %d\n", cap, fail_at, want);
        assert_int_equal(fail_at, want);
        for (size_t i = cap; i < sizeof buf; i++)
            assert_int_equal(buf[i], 0xa5);
        if (want < 0) {
            assert_int_equal(len, sizeof rfc5769_request);
            assert_memory_equal(buf, rfc5769_request, len);
        }
    }
}

static void test_integrity_sha256_roundtrip(void **state)
{
    (void)state;
    punch_stun_writer w;
    punch_stun_msg msg;
    uint8_t buf[256], mac[32];
    size_t len = 0;
    static const uint8_t key[] = "a sha256 key";

    assert_int_equal(punch_stun_writer_init(&w, buf, sizeof buf, PUNCH_STUN_ALLOCATE,
                                            PUNCH_STUN_REQUEST, txid_a), 0);
    assert_int_equal(punch_stun_put(&w, PUNCH_STUN_ATTR_USERNAME, "alice", 5), 0);
    assert_int_equal(punch_stun_put_integrity_sha256(&w, key, sizeof key - 1), 0);
    assert_int_equal(punch_stun_finish(&w, &len), 0);
    assert_int_equal(len, 20 + 12 + 36);
    assert_int_equal(punch_get16(buf + 32), PUNCH_STUN_ATTR_MESSAGE_INTEGRITY_SHA256);
    assert_int_equal(punch_get16(buf + 34), 32);
    ref_hmac_sha256(buf, 32, 36, key, sizeof key - 1, mac);
    assert_memory_equal(buf + 36, mac, 32);

    expect_decodes(buf, len, &msg);
    assert_int_equal(msg.method, PUNCH_STUN_ALLOCATE);
    assert_null(msg.integrity.value);
    assert_non_null(msg.integrity_sha256.value);
    assert_int_equal(msg.integrity_sha256.len, 32);
    assert_int_equal(punch_stun_check_integrity(&msg, key, sizeof key - 1), 0);
    assert_int_equal(punch_stun_check_integrity(&msg, key, sizeof key - 2),
                     PUNCH_ERR_INTEGRITY);

    /* With a FINGERPRINT after it: the MAC is computed the same way. */
    assert_int_equal(punch_stun_writer_init(&w, buf, sizeof buf, PUNCH_STUN_ALLOCATE,
                                            PUNCH_STUN_REQUEST, txid_a), 0);
    assert_int_equal(punch_stun_put(&w, PUNCH_STUN_ATTR_USERNAME, "alice", 5), 0);
    assert_int_equal(punch_stun_put_integrity_sha256(&w, key, sizeof key - 1), 0);
    assert_int_equal(punch_stun_put_fingerprint(&w), 0);
    assert_int_equal(punch_stun_finish(&w, &len), 0);
    assert_int_equal(len, 20 + 12 + 36 + 8);
    assert_memory_equal(buf + 36, mac, 32);
    expect_decodes(buf, len, &msg);
    assert_non_null(msg.fingerprint.value);
    assert_int_equal(punch_stun_check_integrity(&msg, key, sizeof key - 1), 0);
}

static void test_integrity_sha1_reference(void **state)
{
    (void)state;
    punch_stun_writer w;
    punch_stun_msg msg;
    uint8_t buf[256], mac[20];
    size_t len = 0;

    assert_int_equal(punch_stun_writer_init(&w, buf, sizeof buf, PUNCH_STUN_REFRESH,
                                            PUNCH_STUN_REQUEST, txid_a), 0);
    assert_int_equal(punch_stun_put_u32(&w, PUNCH_STUN_ATTR_LIFETIME, 0), 0);
    assert_int_equal(punch_stun_put_integrity(&w, (const uint8_t *)"k", 1), 0);
    assert_int_equal(punch_stun_finish(&w, &len), 0);
    assert_int_equal(len, 20 + 8 + 24);
    ref_hmac_sha1(buf, 28, 24, (const uint8_t *)"k", 1, mac);
    assert_memory_equal(buf + 32, mac, 20);
    expect_decodes(buf, len, &msg);
    assert_int_equal(punch_stun_check_integrity(&msg, (const uint8_t *)"k", 1), 0);

    /* Both MACs, different keys: SHA256 is the one checked. */
    assert_int_equal(punch_stun_writer_init(&w, buf, sizeof buf, PUNCH_STUN_REFRESH,
                                            PUNCH_STUN_REQUEST, txid_a), 0);
    assert_int_equal(punch_stun_put_integrity(&w, (const uint8_t *)"A", 1), 0);
    assert_int_equal(punch_stun_put_integrity_sha256(&w, (const uint8_t *)"B", 1), 0);
    assert_int_equal(punch_stun_put_fingerprint(&w), 0);
    assert_int_equal(punch_stun_finish(&w, &len), 0);
    expect_decodes(buf, len, &msg);
    assert_non_null(msg.integrity.value);
    assert_non_null(msg.integrity_sha256.value);
    assert_int_equal(punch_stun_check_integrity(&msg, (const uint8_t *)"B", 1), 0);
    assert_int_equal(punch_stun_check_integrity(&msg, (const uint8_t *)"A", 1),
                     PUNCH_ERR_INTEGRITY);
}

static void test_check_integrity_notfound(void **state)
{
    (void)state;
    punch_stun_msg msg;
    struct raw r;
    raw_header(&r, 0x0001, txid_a);
    raw_attr(&r, PUNCH_STUN_ATTR_USERNAME, "u", 1);
    raw_fingerprint(&r);
    expect_decodes(r.b, r.len, &msg);
    assert_int_equal(punch_stun_check_integrity(&msg, (const uint8_t *)"k", 1),
                     PUNCH_ERR_NOTFOUND);
}

static void test_fingerprint_roundtrip(void **state)
{
    (void)state;
    punch_stun_writer w;
    punch_stun_msg msg;
    uint8_t buf[128];
    size_t len = 0;

    assert_int_equal(punch_stun_writer_init(&w, buf, sizeof buf, PUNCH_STUN_BINDING,
                                            PUNCH_STUN_REQUEST, txid_a), 0);
    assert_int_equal(punch_stun_put(&w, PUNCH_STUN_ATTR_SOFTWARE, "punch", 5), 0);
    assert_int_equal(punch_stun_put_fingerprint(&w), 0);
    assert_int_equal(punch_stun_finish(&w, &len), 0);
    assert_int_equal(len, 20 + 12 + 8);
    assert_int_equal(punch_get16(buf + 2), 20);
    assert_int_equal(punch_get16(buf + 32), PUNCH_STUN_ATTR_FINGERPRINT);
    assert_int_equal(punch_get16(buf + 34), 4);
    assert_int_equal(punch_get32(buf + 36), stun_crc(buf, 32));

    expect_decodes(buf, len, &msg);
    assert_non_null(msg.fingerprint.value);
    assert_int_equal(msg.fingerprint.offset, 32);
    assert_null(msg.integrity.value);

    /* Header-only plus FINGERPRINT. */
    assert_int_equal(punch_stun_writer_init(&w, buf, sizeof buf, PUNCH_STUN_BINDING,
                                            PUNCH_STUN_INDICATION, txid_a), 0);
    assert_int_equal(punch_stun_put_fingerprint(&w), 0);
    assert_int_equal(punch_stun_finish(&w, &len), 0);
    assert_int_equal(len, 28);
    assert_int_equal(punch_get32(buf + 24), stun_crc(buf, 20));
    expect_decodes(buf, len, &msg);
    assert_int_equal(msg.n_attrs, 1);
    assert_int_equal(msg.cls, PUNCH_STUN_INDICATION);
}

static void test_error_code(void **state)
{
    (void)state;
    punch_stun_writer w;
    punch_stun_msg msg;
    uint8_t buf[128];
    size_t len = 0;
    int code = 0;
    const char *reason = NULL;
    size_t rl = 0;
    static const uint8_t want[] = {
        0x00, 0x09, 0x00, 0x15, 0x00, 0x00, 0x04, 0x14,
        'U', 'n', 'k', 'n', 'o', 'w', 'n', ' ', 'A', 't', 't', 'r',
        'i', 'b', 'u', 't', 'e', 0x00, 0x00, 0x00,
        0x00, 0x0a, 0x00, 0x06, 0x00, 0x31, 0x80, 0x00, 0x00, 0x32, 0x00, 0x00,
    };
    static const uint16_t unk[] = {0x0031, 0x8000, 0x0032};

    assert_int_equal(punch_stun_writer_init(&w, buf, sizeof buf, PUNCH_STUN_BINDING,
                                            PUNCH_STUN_ERROR, txid_a), 0);
    assert_int_equal(punch_stun_put_error(&w, 420, "Unknown Attribute"), 0);
    assert_int_equal(punch_stun_put_unknown(&w, unk, 3), 0);
    assert_int_equal(punch_stun_finish(&w, &len), 0);
    assert_int_equal(len, 20 + sizeof want);
    assert_int_equal(punch_get16(buf), 0x0111);
    /* UNKNOWN-ATTRIBUTES padding is not checked: RFC 3489 repeated a type. */
    assert_memory_equal(buf + 20, want, sizeof want - 2);

    expect_decodes(buf, len, &msg);
    assert_int_equal(msg.cls, PUNCH_STUN_ERROR);
    assert_int_equal(punch_stun_read_error(punch_stun_find(&msg, PUNCH_STUN_ATTR_ERROR_CODE),
                                           &code, &reason, &rl), 0);
    assert_int_equal(code, 420);
    assert_int_equal(rl, 17);
    assert_memory_equal(reason, "Unknown Attribute", 17);

    uint16_t types[8];
    size_t n = 0;
    assert_int_equal(punch_stun_read_unknown(
                         punch_stun_find(&msg, PUNCH_STUN_ATTR_UNKNOWN_ATTRIBUTES),
                         types, 8, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(types[0], 0x0031);
    assert_int_equal(types[1], 0x8000);
    assert_int_equal(types[2], 0x0032);

    /* Every class 3..6 and boundary number; an empty reason. */
    static const int codes[] = {300, 399, 400, 401, 438, 500, 599, 600, 699};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        assert_int_equal(punch_stun_writer_init(&w, buf, sizeof buf, PUNCH_STUN_BINDING,
                                                PUNCH_STUN_ERROR, txid_a), 0);
        assert_int_equal(punch_stun_put_error(&w, codes[i], i % 2 ? "" : "x"), 0);
        assert_int_equal(punch_stun_finish(&w, &len), 0);
        assert_int_equal(buf[26], codes[i] / 100);
        assert_int_equal(buf[27], codes[i] % 100);
        expect_decodes(buf, len, &msg);
        assert_int_equal(punch_stun_read_error(&msg.attrs[0], &code, &reason, &rl), 0);
        assert_int_equal(code, codes[i]);
        assert_int_equal(rl, i % 2 ? 0 : 1);
    }

    /* Codes out of range are the caller's mistake. */
    static const int bad[] = {0, 299, 700, 1000, -420};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(punch_stun_writer_init(&w, buf, sizeof buf, PUNCH_STUN_BINDING,
                                                PUNCH_STUN_ERROR, txid_a), 0);
        assert_int_equal(punch_stun_put_error(&w, bad[i], "x"), PUNCH_ERR_INVAL);
        assert_int_equal(punch_stun_finish(&w, &len), PUNCH_ERR_INVAL);
    }
}

static void test_error_code_malformed(void **state)
{
    (void)state;
    struct raw r;
    punch_stun_msg msg;
    int code;
    const char *reason;
    size_t rl;
    static const uint8_t bad[][4] = {
        {0, 0, 2, 99},  /* class 2 */
        {0, 0, 7, 0},   /* class 7 */
        {0, 0, 4, 100}, /* number above 99 */
        {0, 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        raw_header(&r, 0x0111, txid_a);
        raw_attr(&r, PUNCH_STUN_ATTR_ERROR_CODE, bad[i], 4);
        expect_decodes(r.b, r.len, &msg);
        assert_int_equal(punch_stun_read_error(&msg.attrs[0], &code, &reason, &rl),
                         PUNCH_ERR_MALFORMED);
    }
    for (size_t l = 0; l < 4; l++) {
        raw_header(&r, 0x0111, txid_a);
        raw_attr(&r, PUNCH_STUN_ATTR_ERROR_CODE, "\0\0\4\24", l);
        expect_decodes(r.b, r.len, &msg);
        assert_int_equal(punch_stun_read_error(&msg.attrs[0], &code, &reason, &rl),
                         PUNCH_ERR_MALFORMED);
    }
    /* UNKNOWN-ATTRIBUTES with an odd length. */
    raw_header(&r, 0x0111, txid_a);
    raw_attr(&r, PUNCH_STUN_ATTR_UNKNOWN_ATTRIBUTES, "\0\x31\0", 3);
    expect_decodes(r.b, r.len, &msg);
    uint16_t types[4];
    size_t n;
    assert_int_equal(punch_stun_read_unknown(&msg.attrs[0], types, 4, &n),
                     PUNCH_ERR_MALFORMED);
}

static void put_get_addr(uint16_t type, const punch_addr *a, const uint8_t *want_value,
                         size_t want_len)
{
    punch_stun_writer w;
    punch_stun_msg msg;
    uint8_t buf[128];
    size_t len = 0;
    punch_addr got;

    assert_int_equal(punch_stun_writer_init(&w, buf, sizeof buf, PUNCH_STUN_ALLOCATE,
                                            PUNCH_STUN_SUCCESS, rfc5769_txid), 0);
    assert_int_equal(punch_stun_put_addr(&w, type, a), 0);
    assert_int_equal(punch_stun_finish(&w, &len), 0);
    assert_int_equal(len, 24 + want_len);
    assert_int_equal(punch_get16(buf + 20), type);
    assert_int_equal(punch_get16(buf + 22), want_len);
    assert_memory_equal(buf + 24, want_value, want_len);

    expect_decodes(buf, len, &msg);
    memset(&got, 0x5a, sizeof got);
    assert_int_equal(punch_stun_read_addr(&msg, punch_stun_find(&msg, type), &got), 0);
    assert_true(punch_addr_equal(&got, a));
    assert_int_equal(got.port, a->port);
}

/* test_turn_attrs, 1: the XOR address attributes of TURN. */
static void turn_address_attrs(void)
{
    punch_addr a4, a6;
    uint8_t x6[20];

    /* XOR-PEER-ADDRESS 198.51.100.7:4000: port ^ 0x2112, IP ^ cookie. */
    set_addr4(&a4, 198, 51, 100, 7, 4000);
    static const uint8_t x4[8] = {0x00, 0x01, 0x2e, 0xb2, 0xe7, 0x21, 0xc0, 0x45};
    put_get_addr(PUNCH_STUN_ATTR_XOR_PEER_ADDRESS, &a4, x4, 8);
    put_get_addr(PUNCH_STUN_ATTR_XOR_RELAYED_ADDRESS, &a4, x4, 8);
    put_get_addr(PUNCH_STUN_ATTR_XOR_MAPPED_ADDRESS, &a4, x4, 8);

    /* The RFC 5769 IPv6 address as XOR-PEER and XOR-RELAYED: same bytes as
     * §2.3's XOR-MAPPED-ADDRESS (same transaction id). */
    set_addr6(&a6, ip6_rfc5769, 32853);
    memcpy(x6, rfc5769_response_v6 + 40, 20);
    put_get_addr(PUNCH_STUN_ATTR_XOR_PEER_ADDRESS, &a6, x6, 20);
    put_get_addr(PUNCH_STUN_ATTR_XOR_RELAYED_ADDRESS, &a6, x6, 20);
}

/* 2: the scalar and raw TURN attributes, written and read back. */
static void turn_allocate_attrs(void)
{
    /* The scalar and raw TURN attributes in one Allocate response. */
    punch_stun_writer w;
    punch_stun_msg msg;
    uint8_t buf[256];
    size_t len = 0;
    uint32_t u32;
    uint64_t u64;
    uint16_t ch;
    static const uint8_t data[7] = {'p', 'a', 'y', 'l', 'o', 'a', 'd'};

    assert_int_equal(punch_stun_writer_init(&w, buf, sizeof buf, PUNCH_STUN_ALLOCATE,
                                            PUNCH_STUN_REQUEST, txid_a), 0);
    assert_int_equal(punch_stun_put_u32(&w, PUNCH_STUN_ATTR_LIFETIME, 600), 0);
    assert_int_equal(punch_stun_put(&w, PUNCH_STUN_ATTR_DATA, data, sizeof data), 0);
    assert_int_equal(punch_stun_put_u16(&w, PUNCH_STUN_ATTR_CHANNEL_NUMBER, 0x4001), 0);
    /* RFC 8656 §18.8: protocol 17 (UDP) then three bytes RFFU. */
    assert_int_equal(punch_stun_put_u32(&w, PUNCH_STUN_ATTR_REQUESTED_TRANSPORT,
                                        17u << 24), 0);
    assert_int_equal(punch_stun_put(&w, PUNCH_STUN_ATTR_DONT_FRAGMENT, "", 0), 0);
    /* RFC 8656 §18.7: one byte, the R bit first. */
    assert_int_equal(punch_stun_put(&w, PUNCH_STUN_ATTR_EVEN_PORT, "\x80", 1), 0);
    assert_int_equal(punch_stun_put_u64(&w, PUNCH_STUN_ATTR_RESERVATION_TOKEN,
                                        0x0102030405060708ull), 0);
    /* RFC 8656 §18.6: family 0x02 (IPv6) then three bytes RFFU. */
    assert_int_equal(punch_stun_put_u32(&w, PUNCH_STUN_ATTR_REQUESTED_ADDRESS_FAMILY,
                                        0x02u << 24), 0);
    assert_int_equal(punch_stun_finish(&w, &len), 0);
    assert_int_equal(len, 88);

    static const uint8_t want[] = {
        0x00, 0x0d, 0x00, 0x04, 0x00, 0x00, 0x02, 0x58,
        0x00, 0x13, 0x00, 0x07, 'p', 'a', 'y', 'l', 'o', 'a', 'd', 0x00,
        0x00, 0x0c, 0x00, 0x04, 0x40, 0x01, 0x00, 0x00,
        0x00, 0x19, 0x00, 0x04, 0x11, 0x00, 0x00, 0x00,
        0x00, 0x1a, 0x00, 0x00,
        0x00, 0x18, 0x00, 0x01, 0x80, 0x00, 0x00, 0x00,
        0x00, 0x22, 0x00, 0x08, 1, 2, 3, 4, 5, 6, 7, 8,
        0x00, 0x17, 0x00, 0x04, 0x02, 0x00, 0x00, 0x00,
    };
    assert_int_equal(sizeof want, 68);
    assert_memory_equal(buf + 20, want, sizeof want);

    expect_decodes(buf, len, &msg);
    assert_int_equal(msg.method, PUNCH_STUN_ALLOCATE);
    assert_int_equal(msg.n_attrs, 8);
    assert_int_equal(msg.n_unknown, 0);
    assert_int_equal(punch_stun_read_u32(punch_stun_find(&msg, PUNCH_STUN_ATTR_LIFETIME), &u32), 0);
    assert_int_equal(u32, 600);
    assert_attr_bytes(punch_stun_find(&msg, PUNCH_STUN_ATTR_DATA), data, sizeof data);
    assert_int_equal(punch_stun_read_channel(
                         punch_stun_find(&msg, PUNCH_STUN_ATTR_CHANNEL_NUMBER), &ch), 0);
    assert_int_equal(ch, 0x4001);
    assert_int_equal(punch_stun_read_u32(
                         punch_stun_find(&msg, PUNCH_STUN_ATTR_REQUESTED_TRANSPORT), &u32), 0);
    assert_int_equal(u32, 0x11000000u);
    assert_attr_bytes(punch_stun_find(&msg, PUNCH_STUN_ATTR_DONT_FRAGMENT), "", 0);
    assert_attr_bytes(punch_stun_find(&msg, PUNCH_STUN_ATTR_EVEN_PORT), "\x80", 1);
    assert_int_equal(punch_stun_read_u64(
                         punch_stun_find(&msg, PUNCH_STUN_ATTR_RESERVATION_TOKEN), &u64), 0);
    assert_true(u64 == 0x0102030405060708ull);
    assert_int_equal(punch_stun_read_u32(
                         punch_stun_find(&msg, PUNCH_STUN_ATTR_REQUESTED_ADDRESS_FAMILY), &u32), 0);
    assert_int_equal(u32, 0x02000000u);
}

/* 3: every RFC 8656 method in every class. */
static void turn_methods(void)
{
    punch_stun_writer w;
    punch_stun_msg msg;
    uint8_t buf[256];
    size_t len = 0;

    /* Methods of RFC 8656 with their classes. */
    static const uint16_t methods[] = {
        PUNCH_STUN_ALLOCATE, PUNCH_STUN_REFRESH, PUNCH_STUN_SEND, PUNCH_STUN_DATA,
        PUNCH_STUN_CREATE_PERMISSION, PUNCH_STUN_CHANNEL_BIND,
    };
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        for (uint8_t cls = 0; cls < 4; cls++) {
            assert_int_equal(punch_stun_writer_init(&w, buf, sizeof buf, methods[i], cls,
                                                    txid_a), 0);
            assert_int_equal(punch_stun_finish(&w, &len), 0);
            expect_decodes(buf, len, &msg);
            assert_int_equal(msg.method, methods[i]);
            assert_int_equal(msg.cls, cls);
        }
    }
}

static void test_turn_attrs(void **state)
{
    (void)state;
    turn_address_attrs();
    turn_allocate_attrs();
    turn_methods();
}

static void test_channel_number_attr(void **state)
{
    (void)state;
    struct raw r;
    punch_stun_msg msg;
    uint16_t ch;
    static const uint8_t vals[][4] = {
        {0x3f, 0xff, 0, 0}, {0x50, 0x00, 0, 0}, {0x00, 0x00, 0, 0}, {0xff, 0xff, 0, 0},
    };
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        raw_header(&r, 0x0009, txid_a);
        raw_attr(&r, PUNCH_STUN_ATTR_CHANNEL_NUMBER, vals[i], 4);
        expect_decodes(r.b, r.len, &msg);
        assert_int_equal(punch_stun_read_channel(&msg.attrs[0], &ch), PUNCH_ERR_MALFORMED);
    }
    static const uint8_t okv[][4] = {{0x40, 0x00, 0, 0}, {0x4f, 0xff, 0, 0}};
    for (size_t i = 0; i < 2; i++) {
        raw_header(&r, 0x0009, txid_a);
        raw_attr(&r, PUNCH_STUN_ATTR_CHANNEL_NUMBER, okv[i], 4);
        expect_decodes(r.b, r.len, &msg);
        assert_int_equal(punch_stun_read_channel(&msg.attrs[0], &ch), 0);
        assert_int_equal(ch, punch_get16(okv[i]));
    }
    /* Wrong size. */
    raw_header(&r, 0x0009, txid_a);
    raw_attr(&r, PUNCH_STUN_ATTR_CHANNEL_NUMBER, "\x40\x01", 2);
    expect_decodes(r.b, r.len, &msg);
    assert_int_equal(punch_stun_read_channel(&msg.attrs[0], &ch), PUNCH_ERR_MALFORMED);
}

static void test_rfc5780_attrs(void **state)
{
    (void)state;
    punch_stun_writer w;
    punch_stun_msg msg;
    uint8_t buf[256], pad[13];
    size_t len = 0;
    punch_addr origin, other, got;
    uint32_t u32;
    uint16_t port;
    static const uint8_t ip6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
                                    0, 0, 0, 0, 0, 0, 0, 0x02};

    set_addr4(&origin, 198, 51, 100, 1, 3478);
    set_addr6(&other, ip6, 3479);
    for (size_t i = 0; i < sizeof pad; i++)
        pad[i] = (uint8_t)i;

    assert_int_equal(punch_stun_writer_init(&w, buf, sizeof buf, PUNCH_STUN_BINDING,
                                            PUNCH_STUN_REQUEST, txid_a), 0);
    assert_int_equal(punch_stun_put_u32(&w, PUNCH_STUN_ATTR_CHANGE_REQUEST,
                                        PUNCH_STUN_CHANGE_IP | PUNCH_STUN_CHANGE_PORT), 0);
    assert_int_equal(punch_stun_put_addr(&w, PUNCH_STUN_ATTR_RESPONSE_ORIGIN, &origin), 0);
    assert_int_equal(punch_stun_put_addr(&w, PUNCH_STUN_ATTR_OTHER_ADDRESS, &other), 0);
    assert_int_equal(punch_stun_put_u16(&w, PUNCH_STUN_ATTR_RESPONSE_PORT, 40000), 0);
    assert_int_equal(punch_stun_put(&w, PUNCH_STUN_ATTR_PADDING, pad, sizeof pad), 0);
    assert_int_equal(punch_stun_finish(&w, &len), 0);

    static const uint8_t want[] = {
        0x00, 0x03, 0x00, 0x04, 0x00, 0x00, 0x00, 0x06,
        /* RESPONSE-ORIGIN is a plain address (not XOR-ed). */
        0x80, 0x2b, 0x00, 0x08, 0x00, 0x01, 0x0d, 0x96, 198, 51, 100, 1,
        0x80, 0x2c, 0x00, 0x14, 0x00, 0x02, 0x0d, 0x97,
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02,
        0x00, 0x27, 0x00, 0x04, 0x9c, 0x40, 0x00, 0x00,
        0x00, 0x26, 0x00, 0x0d, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0, 0, 0,
    };
    assert_int_equal(len, 20 + sizeof want);
    assert_memory_equal(buf + 20, want, sizeof want);

    expect_decodes(buf, len, &msg);
    assert_int_equal(msg.n_unknown, 0);
    assert_int_equal(punch_stun_read_u32(punch_stun_find(&msg, PUNCH_STUN_ATTR_CHANGE_REQUEST),
                                         &u32), 0);
    assert_int_equal(u32, 6);
    assert_int_equal(punch_stun_read_addr(
                         &msg, punch_stun_find(&msg, PUNCH_STUN_ATTR_RESPONSE_ORIGIN), &got), 0);
    assert_true(punch_addr_equal(&got, &origin));
    assert_int_equal(punch_stun_read_addr(
                         &msg, punch_stun_find(&msg, PUNCH_STUN_ATTR_OTHER_ADDRESS), &got), 0);
    assert_true(punch_addr_equal(&got, &other));
    assert_int_equal(punch_stun_read_port(punch_stun_find(&msg, PUNCH_STUN_ATTR_RESPONSE_PORT),
                                          &port), 0);
    assert_int_equal(port, 40000);
    assert_attr_bytes(punch_stun_find(&msg, PUNCH_STUN_ATTR_PADDING), pad, sizeof pad);

    /* MAPPED-ADDRESS (plain) both families, and the RFC 3489 address types. */
    static const uint8_t m4[8] = {0x00, 0x01, 0x0d, 0x96, 198, 51, 100, 1};
    put_get_addr(PUNCH_STUN_ATTR_MAPPED_ADDRESS, &origin, m4, 8);
    put_get_addr(PUNCH_STUN_ATTR_CHANGED_ADDRESS, &origin, m4, 8);
    put_get_addr(PUNCH_STUN_ATTR_SOURCE_ADDRESS, &origin, m4, 8);
    put_get_addr(PUNCH_STUN_ATTR_RESPONSE_ORIGIN, &origin, m4, 8);
    static const uint8_t m6[20] = {0x00, 0x02, 0x0d, 0x97, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0,
                                   0, 0, 0, 0, 0, 0, 0, 0, 0x02};
    put_get_addr(PUNCH_STUN_ATTR_MAPPED_ADDRESS, &other, m6, 20);
    put_get_addr(PUNCH_STUN_ATTR_OTHER_ADDRESS, &other, m6, 20);

    /* RESPONSE-PORT of the wrong size. */
    struct raw r;
    raw_header(&r, 0x0001, txid_a);
    raw_attr(&r, PUNCH_STUN_ATTR_RESPONSE_PORT, "\x9c\x40", 2);
    expect_decodes(r.b, r.len, &msg);
    assert_int_equal(punch_stun_read_port(&msg.attrs[0], &port), PUNCH_ERR_MALFORMED);
}

static void test_addr_reader_malformed(void **state)
{
    (void)state;
    struct raw r;
    punch_stun_msg msg;
    punch_addr a;
    static const uint8_t v[24] = {0x00, 0x01, 0x12, 0x34, 1, 2, 3, 4};
    static const struct {
        uint8_t family;
        size_t len;
    } cases[] = {
        {0x01, 0}, {0x01, 4}, {0x01, 7}, {0x01, 12}, {0x01, 20},
        {0x02, 8}, {0x02, 16}, {0x02, 24}, {0x00, 8}, {0x03, 8}, {0x03, 20},
    };
    static const uint16_t types[] = {
        PUNCH_STUN_ATTR_MAPPED_ADDRESS, PUNCH_STUN_ATTR_XOR_MAPPED_ADDRESS,
        PUNCH_STUN_ATTR_XOR_PEER_ADDRESS, PUNCH_STUN_ATTR_XOR_RELAYED_ADDRESS,
        PUNCH_STUN_ATTR_OTHER_ADDRESS, PUNCH_STUN_ATTR_RESPONSE_ORIGIN,
    };
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            uint8_t val[24];
            memcpy(val, v, sizeof val);
            val[1] = cases[i].family;
            raw_header(&r, 0x0101, txid_a);
            raw_attr(&r, types[t], val, cases[i].len);
            expect_decodes(r.b, r.len, &msg);
            int rc = punch_stun_read_addr(&msg, &msg.attrs[0], &a);
            if (rc != PUNCH_ERR_MALFORMED)
                print_message("type %#06x family %u len %zu: rc %d\n", types[t],
                              cases[i].family, cases[i].len, rc);
            assert_int_equal(rc, PUNCH_ERR_MALFORMED);
        }
    }
    /* NULL arguments. */
    raw_header(&r, 0x0101, txid_a);
    raw_attr(&r, PUNCH_STUN_ATTR_MAPPED_ADDRESS, v, 8);
    expect_decodes(r.b, r.len, &msg);
    assert_int_equal(punch_stun_read_addr(&msg, &msg.attrs[0], NULL), PUNCH_ERR_INVAL);
    assert_int_equal(punch_stun_read_addr(&msg, NULL, &a), PUNCH_ERR_INVAL);
    assert_int_equal(punch_stun_read_addr(NULL, &msg.attrs[0], &a), PUNCH_ERR_INVAL);
}

static void test_scalar_readers_malformed(void **state)
{
    (void)state;
    struct raw r;
    punch_stun_msg msg;
    uint32_t u32;
    uint64_t u64;
    uint16_t u16;
    static const uint8_t v[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};

    for (size_t l = 0; l <= 12; l++) {
        raw_header(&r, 0x0001, txid_a);
        raw_attr(&r, PUNCH_STUN_ATTR_PRIORITY, v, l);
        expect_decodes(r.b, r.len, &msg);
        assert_int_equal(punch_stun_read_u32(&msg.attrs[0], &u32),
                         l == 4 ? 0 : PUNCH_ERR_MALFORMED);
        assert_int_equal(punch_stun_read_u64(&msg.attrs[0], &u64),
                         l == 8 ? 0 : PUNCH_ERR_MALFORMED);
        if (l == 4)
            assert_int_equal(u32, 0x01020304u);
        if (l == 8)
            assert_true(u64 == 0x0102030405060708ull);
        if (l != 4) {
            assert_int_equal(punch_stun_read_port(&msg.attrs[0], &u16), PUNCH_ERR_MALFORMED);
            assert_int_equal(punch_stun_read_channel(&msg.attrs[0], &u16),
                             PUNCH_ERR_MALFORMED);
        }
    }
    assert_int_equal(punch_stun_read_u32(NULL, &u32), PUNCH_ERR_INVAL);
    assert_int_equal(punch_stun_read_u64(NULL, &u64), PUNCH_ERR_INVAL);
}

static void test_stun_type(void **state)
{
    (void)state;
    /* RFC 8489 §5 / §18.2 and RFC 8656 §17 values. */
    assert_int_equal(punch_stun_type(PUNCH_STUN_BINDING, PUNCH_STUN_REQUEST), 0x0001);
    assert_int_equal(punch_stun_type(PUNCH_STUN_BINDING, PUNCH_STUN_INDICATION), 0x0011);
    assert_int_equal(punch_stun_type(PUNCH_STUN_BINDING, PUNCH_STUN_SUCCESS), 0x0101);
    assert_int_equal(punch_stun_type(PUNCH_STUN_BINDING, PUNCH_STUN_ERROR), 0x0111);
    assert_int_equal(punch_stun_type(PUNCH_STUN_ALLOCATE, PUNCH_STUN_REQUEST), 0x0003);
    assert_int_equal(punch_stun_type(PUNCH_STUN_ALLOCATE, PUNCH_STUN_SUCCESS), 0x0103);
    assert_int_equal(punch_stun_type(PUNCH_STUN_ALLOCATE, PUNCH_STUN_ERROR), 0x0113);
    assert_int_equal(punch_stun_type(PUNCH_STUN_SEND, PUNCH_STUN_INDICATION), 0x0016);
    assert_int_equal(punch_stun_type(PUNCH_STUN_DATA, PUNCH_STUN_INDICATION), 0x0017);
    assert_int_equal(punch_stun_type(PUNCH_STUN_CHANNEL_BIND, PUNCH_STUN_SUCCESS), 0x0109);
    assert_int_equal(punch_stun_type(0xfff, PUNCH_STUN_ERROR), 0x3fff);
    assert_int_equal(punch_stun_type(0x080, PUNCH_STUN_REQUEST), 0x0200);
    assert_int_equal(punch_stun_type(0x010, PUNCH_STUN_REQUEST), 0x0020);

    /* Every method and class survives an encode/decode. */
    for (uint16_t m = 0; m < 0x1000; m++) {
        uint8_t cls = (uint8_t)(m & 3);
        uint16_t t = punch_stun_type(m, cls);
        struct raw r;
        punch_stun_msg msg;
        assert_int_equal(t & 0xc000, 0);
        raw_header(&r, t, txid_a);
        expect_decodes(r.b, r.len, &msg);
        assert_int_equal(msg.method, m);
        assert_int_equal(msg.cls, cls);
    }
}

/* Random messages from the writer, decoded and compared field by field. */
static void test_random_roundtrip(void **state)
{
    (void)state;
    static const uint16_t pool[] = {
        PUNCH_STUN_ATTR_SOFTWARE, PUNCH_STUN_ATTR_USERNAME, PUNCH_STUN_ATTR_DATA,
        PUNCH_STUN_ATTR_PADDING, PUNCH_STUN_ATTR_REALM, PUNCH_STUN_ATTR_NONCE, 0x8031,
        PUNCH_STUN_ATTR_USERHASH,
    };
    const uint32_t seed = 20240611u;
    prng_seed(seed);
    for (int it = 0; it < 2000; it++) {
        uint8_t buf[1500], values[12][64], txid[12];
        uint16_t types[12];
        size_t lens[12];
        punch_stun_writer w;
        punch_stun_msg msg;
        size_t n = prng_below(12), len = 0;
        bool mi = prng_below(2), mi256 = prng_below(2), fp = prng_below(2);
        uint8_t key[16];

        for (size_t i = 0; i < 12; i++)
            txid[i] = (uint8_t)prng_next();
        for (size_t i = 0; i < sizeof key; i++)
            key[i] = (uint8_t)prng_next();
        uint8_t cls = (uint8_t)prng_below(4);
        uint16_t method = (uint16_t)prng_below(0x1000);
        assert_int_equal(punch_stun_writer_init(&w, buf, sizeof buf, method, cls, txid), 0);
        w.pad_byte = (uint8_t)prng_next();
        for (size_t i = 0; i < n; i++) {
            types[i] = pool[prng_below(sizeof pool / sizeof pool[0])];
            lens[i] = prng_below(64);
            for (size_t j = 0; j < lens[i]; j++)
                values[i][j] = (uint8_t)prng_next();
            assert_int_equal(punch_stun_put(&w, types[i], values[i], lens[i]), 0);
        }
        if (mi)
            assert_int_equal(punch_stun_put_integrity(&w, key, sizeof key), 0);
        if (mi256)
            assert_int_equal(punch_stun_put_integrity_sha256(&w, key, sizeof key), 0);
        if (fp)
            assert_int_equal(punch_stun_put_fingerprint(&w), 0);
        assert_int_equal(punch_stun_finish(&w, &len), 0);
        assert_true(punch_stun_is_stun(buf, len));

        int rc = punch_stun_decode(&msg, buf, len);
        if (rc != 0)
            print_message("seed %u iteration %d: rc %d\n", seed, it, rc);
        assert_int_equal(rc, 0);
        assert_int_equal(msg.method, method);
        assert_int_equal(msg.cls, cls);
        assert_memory_equal(msg.txid, txid, 12);
        assert_int_equal(msg.n_attrs, n + mi + mi256 + fp);
        assert_int_equal(msg.n_unknown, 0);
        size_t off = PUNCH_STUN_HEADER_LEN;
        for (size_t i = 0; i < n; i++) {
            const punch_stun_attr *a = &msg.attrs[i];
            assert_int_equal(a->type, types[i]);
            assert_int_equal(a->offset, off);
            assert_attr_bytes(a, values[i], lens[i]);
            for (size_t j = lens[i]; j % 4; j++)
                assert_int_equal(buf[off + 4 + j], w.pad_byte);
            off += 4 + (lens[i] + 3) / 4 * 4;
        }
        assert_true((msg.integrity.value != NULL) == mi);
        assert_true((msg.integrity_sha256.value != NULL) == mi256);
        assert_true((msg.fingerprint.value != NULL) == fp);
        rc = punch_stun_check_integrity(&msg, key, sizeof key);
        assert_int_equal(rc, (mi || mi256) ? 0 : PUNCH_ERR_NOTFOUND);
        if (mi || mi256) {
            key[0] ^= 1;
            assert_int_equal(punch_stun_check_integrity(&msg, key, sizeof key),
                             PUNCH_ERR_INTEGRITY);
        }
    }
}

/* ---- ChannelData (RFC 8656 §12.4) ---------------------------------------- */

static void test_channel_roundtrip(void **state)
{
    (void)state;
    uint8_t buf[32];
    size_t out = 0;
    uint16_t ch = 0;
    const uint8_t *data = NULL;
    size_t dl = 0;
    static const uint8_t payload[8] = {9, 8, 7, 6, 5, 4, 3, 2};
    static const uint8_t want_udp[9] = {0x40, 0x01, 0x00, 0x05, 9, 8, 7, 6, 5};
    static const uint8_t want_tcp[12] = {0x40, 0x01, 0x00, 0x05, 9, 8, 7, 6, 5, 0, 0, 0};

    memset(buf, 0xcc, sizeof buf);
    assert_int_equal(punch_stun_channel_encode(buf, sizeof buf, 0x4001, payload, 5, false,
                                               &out), 0);
    assert_int_equal(out, 9);
    assert_memory_equal(buf, want_udp, 9);
    assert_int_equal(buf[9], 0xcc);
    assert_int_equal(punch_stun_channel_decode(buf, out, &ch, &data, &dl), 0);
    assert_int_equal(ch, 0x4001);
    assert_int_equal(dl, 5);
    assert_ptr_equal(data, buf + 4);
    assert_false(punch_stun_is_stun(buf, out));

    memset(buf, 0xcc, sizeof buf);
    assert_int_equal(punch_stun_channel_encode(buf, sizeof buf, 0x4001, payload, 5, true,
                                               &out), 0);
    assert_int_equal(out, 12);
    assert_memory_equal(buf, want_tcp, 12);
    assert_int_equal(punch_stun_channel_decode(buf, out, &ch, &data, &dl), 0);
    assert_int_equal(ch, 0x4001);
    assert_int_equal(dl, 5);
    assert_memory_equal(data, payload, 5);

    /* Padding is all the way to a multiple of 4 or none (RFC 8656 §12.5). */
    assert_int_equal(punch_stun_channel_decode(buf, 9, &ch, &data, &dl), 0);
    assert_int_equal(dl, 5);
    for (size_t extra = 1; extra <= 2; extra++)
        assert_int_equal(punch_stun_channel_decode(buf, 9 + extra, &ch, &data, &dl),
                         PUNCH_ERR_MALFORMED);
    /* 4 bytes of data need no padding: 3 more bytes are not padding. */
    punch_stun_channel_encode(buf, sizeof buf, 0x4001, payload, 4, false, &out);
    assert_int_equal(punch_stun_channel_decode(buf, out + 3, &ch, &data, &dl),
                     PUNCH_ERR_MALFORMED);

    /* Boundaries of the channel range; empty and 4-aligned payloads (no
     * padding needed). */
    static const uint16_t chans[] = {PUNCH_STUN_CHANNEL_MIN, PUNCH_STUN_CHANNEL_MAX};
    for (size_t i = 0; i < 2; i++) {
        for (size_t l = 0; l <= 8; l++) {
            for (int pad = 0; pad < 2; pad++) {
                assert_int_equal(punch_stun_channel_encode(buf, sizeof buf, chans[i], payload,
                                                           l, pad, &out), 0);
                assert_int_equal(out, 4 + (pad ? (l + 3) / 4 * 4 : l));
                assert_int_equal(punch_get16(buf), chans[i]);
                assert_int_equal(punch_get16(buf + 2), l);
                assert_int_equal(punch_stun_channel_decode(buf, out, &ch, &data, &dl), 0);
                assert_int_equal(ch, chans[i]);
                assert_int_equal(dl, l);
                if (l)
                    assert_memory_equal(data, payload, l);
            }
        }
    }
}

static void test_channel_bad_number(void **state)
{
    (void)state;
    uint8_t buf[16];
    size_t out;
    uint16_t ch;
    const uint8_t *data;
    size_t dl;
    static const uint16_t bad[] = {0x0000, 0x0001, 0x3fff, 0x5000, 0x7fff, 0x8000, 0xffff};

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(punch_stun_channel_encode(buf, sizeof buf, bad[i],
                                                   (const uint8_t *)"abcd", 4, false, &out),
                         PUNCH_ERR_INVAL);
        uint8_t in[8] = {0, 0, 0x00, 0x04, 'a', 'b', 'c', 'd'};
        punch_put16(in, bad[i]);
        assert_int_equal(punch_stun_channel_decode(in, sizeof in, &ch, &data, &dl),
                         PUNCH_ERR_MALFORMED);
    }
    /* A STUN message is not ChannelData. */
    assert_int_equal(punch_stun_channel_decode(rfc5769_request, sizeof rfc5769_request, &ch,
                                               &data, &dl), PUNCH_ERR_MALFORMED);
}

static void test_channel_truncated(void **state)
{
    (void)state;
    static const uint8_t in[8] = {0x40, 0x00, 0x00, 0x04, 'a', 'b', 'c', 'd'};
    uint16_t ch;
    const uint8_t *data;
    size_t dl;
    for (size_t k = 0; k < sizeof in; k++) {
        uint8_t *b = malloc(k ? k : 1);
        assert_non_null(b);
        memcpy(b, in, k);
        assert_int_equal(punch_stun_channel_decode(b, k, &ch, &data, &dl),
                         PUNCH_ERR_MALFORMED);
        free(b);
    }
    assert_int_equal(punch_stun_channel_decode(in, sizeof in, &ch, &data, &dl), 0);
    assert_int_equal(dl, 4);
}

static void test_channel_len_past_end(void **state)
{
    (void)state;
    uint8_t in[16] = {0x40, 0x00, 0x00, 0x04, 'a', 'b', 'c', 'd'};
    uint16_t ch;
    const uint8_t *data;
    size_t dl;

    punch_put16(in + 2, 5);
    assert_int_equal(punch_stun_channel_decode(in, 8, &ch, &data, &dl), PUNCH_ERR_MALFORMED);
    punch_put16(in + 2, 0xffff);
    assert_int_equal(punch_stun_channel_decode(in, 8, &ch, &data, &dl), PUNCH_ERR_MALFORMED);
    /* More than 3 bytes beyond the data is not padding. */
    punch_put16(in + 2, 4);
    assert_int_equal(punch_stun_channel_decode(in, 12, &ch, &data, &dl), PUNCH_ERR_MALFORMED);
    punch_put16(in + 2, 1);
    assert_int_equal(punch_stun_channel_decode(in, 5, &ch, &data, &dl), 0);
    assert_int_equal(dl, 1);
    assert_int_equal(punch_stun_channel_decode(in, 8, &ch, &data, &dl), 0);
    assert_int_equal(dl, 1);
    assert_int_equal(punch_stun_channel_decode(in, 9, &ch, &data, &dl), PUNCH_ERR_MALFORMED);
}

static void test_channel_nobufs(void **state)
{
    (void)state;
    uint8_t buf[16];
    size_t out;
    static const uint8_t payload[5] = {1, 2, 3, 4, 5};
    for (size_t cap = 0; cap < 9; cap++) {
        memset(buf, 0xcc, sizeof buf);
        assert_int_equal(punch_stun_channel_encode(buf, cap, 0x4000, payload, 5, false, &out),
                         PUNCH_ERR_NOBUFS);
        for (size_t i = cap; i < sizeof buf; i++)
            assert_int_equal(buf[i], 0xcc);
    }
    for (size_t cap = 0; cap < 12; cap++) {
        memset(buf, 0xcc, sizeof buf);
        assert_int_equal(punch_stun_channel_encode(buf, cap, 0x4000, payload, 5, true, &out),
                         PUNCH_ERR_NOBUFS);
        for (size_t i = cap; i < sizeof buf; i++)
            assert_int_equal(buf[i], 0xcc);
    }
    assert_int_equal(punch_stun_channel_encode(buf, 12, 0x4000, payload, 5, true, &out), 0);
    assert_int_equal(out, 12);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc5769_request_decode),
        cmocka_unit_test(test_rfc5769_response_v4_decode),
        cmocka_unit_test(test_rfc5769_response_v6_decode),
        cmocka_unit_test(test_long_term_key_md5),
        cmocka_unit_test(test_rfc5769_long_term_decode),
        cmocka_unit_test(test_rfc5769_tampered),
        cmocka_unit_test(test_rfc5769_request_encode),
        cmocka_unit_test(test_rfc5769_response_v4_encode),
        cmocka_unit_test(test_rfc5769_response_v6_encode),
        cmocka_unit_test(test_rfc5769_long_term_encode),
        cmocka_unit_test(test_is_stun),
        cmocka_unit_test(test_decode_null),
        cmocka_unit_test(test_truncated_header),
        cmocka_unit_test(test_truncated_every_byte),
        cmocka_unit_test(test_length_not_multiple_of_4),
        cmocka_unit_test(test_length_field_mismatch),
        cmocka_unit_test(test_attr_past_end),
        cmocka_unit_test(test_missing_padding_last_attr),
        cmocka_unit_test(test_top_bits_set),
        cmocka_unit_test(test_integrity_wrong_size),
        cmocka_unit_test(test_attr_after_fingerprint),
        cmocka_unit_test(test_integrity_after_fingerprint),
        cmocka_unit_test(test_bad_fingerprint_crc),
        cmocka_unit_test(test_too_many_attrs),
        cmocka_unit_test(test_many_unknown),
        cmocka_unit_test(test_random_mutations),
        cmocka_unit_test(test_ignored_after_integrity),
        cmocka_unit_test(test_duplicates_first),
        cmocka_unit_test(test_unknown_required),
        cmocka_unit_test(test_unknown_optional),
        cmocka_unit_test(test_classic_decode),
        cmocka_unit_test(test_classic_encode),
        cmocka_unit_test(test_writer_header_only),
        cmocka_unit_test(test_writer_init_too_small),
        cmocka_unit_test(test_writer_sticky),
        cmocka_unit_test(test_writer_nobufs_each_step),
        cmocka_unit_test(test_integrity_sha256_roundtrip),
        cmocka_unit_test(test_integrity_sha1_reference),
        cmocka_unit_test(test_check_integrity_notfound),
        cmocka_unit_test(test_fingerprint_roundtrip),
        cmocka_unit_test(test_error_code),
        cmocka_unit_test(test_error_code_malformed),
        cmocka_unit_test(test_turn_attrs),
        cmocka_unit_test(test_channel_number_attr),
        cmocka_unit_test(test_rfc5780_attrs),
        cmocka_unit_test(test_addr_reader_malformed),
        cmocka_unit_test(test_scalar_readers_malformed),
        cmocka_unit_test(test_stun_type),
        cmocka_unit_test(test_random_roundtrip),
        cmocka_unit_test(test_channel_roundtrip),
        cmocka_unit_test(test_channel_bad_number),
        cmocka_unit_test(test_channel_truncated),
        cmocka_unit_test(test_channel_len_past_end),
        cmocka_unit_test(test_channel_nobufs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
