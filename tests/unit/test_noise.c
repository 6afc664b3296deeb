/* SPDX-License-Identifier: MIT */
/* Noise IK (src/crypto/noise.c) and its UDP transport (src/crypto/transport.c). */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crypto/noise.h"
#include "crypto/transport.h"
#include "sim/rng.h"

/*
 * Test vector: "Noise_IK_25519_ChaChaPoly_BLAKE2b" from noise-c's
 * tests/vector/noise-c-basic.txt (github.com/rweather/noise-c), the cacophony
 * format. Messages 0 and 1 are the handshake; 2..5 are transport messages,
 * alternating initiator -> responder and back, with empty associated data.
 */
static const char V_PROLOGUE[] = "50726f6c6f677565313233";
static const char V_INIT_STATIC[] =
    "e61ef9919cde45dd5f82166404bd08e38bceb5dfdfded0a34c8df7ed542214d1";
static const char V_INIT_EPHEMERAL[] =
    "893e28b9dc6ca8d611ab664754b8ceb7bac5117349a4439a6b0569da977c464a";
static const char V_INIT_REMOTE_STATIC[] =
    "31e0303fd6418d2f8c0e78b91f22e8caed0fbe48656dcf4767e4834f701b8f62";
static const char V_RESP_STATIC[] =
    "4a3acbfdb163dec651dfa3194dece676d437029c62a408b4c5ea9114246e4893";
static const char V_RESP_EPHEMERAL[] =
    "bbdb4cdbd309f1a1f2e1456967fe288cadd6f712d65dc7b7793d5e63da6b375b";
static const char V_HANDSHAKE_HASH[] =
    "00e51d2aac81a9b8ebe441d6af3e1c8efc0f030cc608332edcb42588ff6a0ce2"
    "6415ddc106e95277a5e6d54132f1e5245976b89caf96d262f1fe5a7f0c55c078";
static const struct {
    const char *payload, *ciphertext;
} V_MESSAGES[6] = {
    {"4c756477696720766f6e204d69736573",
     "ca35def5ae56cec33dc2036731ab14896bc4c75dbb07a61f879f8e3afa4c7944"
     "ba83a447b38c83e327ad936929812f624884847b7831e95e197b2f797088efdd"
     "232fe541af156ec6d0657602902a8c3ee64e470f4b6fcd9298ce0b56fe20f86e"
     "60d9d933ec6e103ffb09e6001d6abb64"},
    {"4d757272617920526f746862617264",
     "95ebc60d2b1fa672c1f46a8aa265ef51bfe38e7ccb39ec5be34069f144808843"
     "9f069b267a06b3de3ecb1043bcb09807c6cd101f3826192a65f11ef3fe4317"},
    {"462e20412e20486179656b", "cd54383060e7a28434cca27fb1cc524cfbabeb18181589df219d07"},
    {"4361726c204d656e676572", "a856d3bf0246bfc476c655009cd1ed677b8dcc5b349ae8ef2a05f2"},
    {"4a65616e2d426170746973746520536179",
     "49063084b2c51f098337cb8a13739ac848f907e67cfb2cc8a8b60586467aa02fc7"},
    {"457567656e2042f6686d20766f6e2042617765726b",
     "8b9709d23b47e4639df7678d7a21741eba4ef1e9c60383001c7435549c20f9d56f30e935d3"},
};

typedef struct bytes {
    uint8_t b[256];
    size_t len;
} bytes;

static bytes unhex(const char *s)
{
    bytes out = {.len = strlen(s) / 2};
    assert_true(strlen(s) % 2 == 0 && out.len <= sizeof out.b);
    for (size_t i = 0; i < out.len; i++) {
        unsigned v;
        assert_int_equal(sscanf(s + 2 * i, "%2x", &v), 1);
        out.b[i] = (uint8_t)v;
    }
    return out;
}

static punch_identity identity_hex(const char *secret_hex)
{
    punch_identity id;
    bytes s = unhex(secret_hex);
    assert_int_equal(s.len, PUNCH_KEY_LEN);
    assert_int_equal(punch_identity_from_secret(&id, s.b), 0);
    return id;
}

/* Keys and orderings come from the project's seeded PRNG. */
static punch_rng rng;

static uint64_t rng_next(void)
{
    return punch_rng_next(&rng);
}

static void rng_fill(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)rng_next();
}

static uint64_t seed_used;

static void seed(uint64_t s)
{
    seed_used = s;
    punch_rng_seed(&rng, s);
}

static bool all_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

/* A failed property check names the seed that produced it. */
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            print_error("seed %" PRIu64 ": %s\n", seed_used, #cond);                               \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

/* ---- the vector, in both roles ---- */

static void vector_as_initiator(void **state)
{
    (void)state;
    punch_identity s = identity_hex(V_INIT_STATIC);
    punch_identity resp = identity_hex(V_RESP_STATIC);
    bytes rs = unhex(V_INIT_REMOTE_STATIC), prologue = unhex(V_PROLOGUE);
    bytes e = unhex(V_INIT_EPHEMERAL), hash = unhex(V_HANDSHAKE_HASH);
    punch_noise_handshake hs;
    uint8_t out[256], h[PUNCH_NOISE_HASH_LEN];
    size_t n = 0;

    assert_memory_equal(resp.public_key, rs.b, 32); /* the vector is consistent */
    assert_int_equal(punch_noise_initiator_init(&hs, &s, rs.b, prologue.b, prologue.len, e.b), 0);

    bytes p0 = unhex(V_MESSAGES[0].payload), c0 = unhex(V_MESSAGES[0].ciphertext);
    assert_int_equal(punch_noise_write_message(&hs, p0.b, p0.len, out, sizeof out, &n), 0);
    assert_int_equal(n, c0.len);
    assert_int_equal(n, PUNCH_NOISE_MSG1_OVERHEAD + p0.len);
    assert_memory_equal(out, c0.b, n);

    bytes p1 = unhex(V_MESSAGES[1].payload), c1 = unhex(V_MESSAGES[1].ciphertext);
    assert_int_equal(punch_noise_read_message(&hs, c1.b, c1.len, out, sizeof out, &n), 0);
    assert_int_equal(n, p1.len);
    assert_memory_equal(out, p1.b, n);
    assert_int_equal(punch_noise_get_step(&hs), PUNCH_NOISE_STEP_DONE);
    assert_int_equal(punch_noise_handshake_hash(&hs, h), 0);
    assert_memory_equal(h, hash.b, sizeof h);

    punch_noise_cipher send, recv;
    assert_int_equal(punch_noise_split(&hs, &send, &recv), 0);
    for (int i = 2; i < 6; i++) {
        bytes p = unhex(V_MESSAGES[i].payload), c = unhex(V_MESSAGES[i].ciphertext);
        if (i % 2 == 0) {
            assert_int_equal(
                punch_noise_cipher_encrypt(&send, NULL, 0, p.b, p.len, out, sizeof out, &n), 0);
            assert_int_equal(n, c.len);
            assert_memory_equal(out, c.b, n);
        } else {
            assert_int_equal(
                punch_noise_cipher_decrypt(&recv, NULL, 0, c.b, c.len, out, sizeof out, &n), 0);
            assert_int_equal(n, p.len);
            assert_memory_equal(out, p.b, n);
        }
    }
    /* The hash outlives the split; the secrets do not. */
    assert_int_equal(punch_noise_handshake_hash(&hs, h), 0);
    assert_memory_equal(h, hash.b, sizeof h);
    assert_true(all_zero(hs.ck, sizeof hs.ck));
}

static void vector_as_responder(void **state)
{
    (void)state;
    punch_identity s = identity_hex(V_RESP_STATIC);
    punch_identity init = identity_hex(V_INIT_STATIC);
    bytes prologue = unhex(V_PROLOGUE), e = unhex(V_RESP_EPHEMERAL);
    bytes hash = unhex(V_HANDSHAKE_HASH);
    punch_noise_handshake hs;
    uint8_t out[256], h[PUNCH_NOISE_HASH_LEN], rs[32];
    size_t n = 0;

    assert_int_equal(punch_noise_responder_init(&hs, &s, prologue.b, prologue.len, e.b), 0);
    assert_int_equal(punch_noise_remote_static(&hs, rs), PUNCH_ERR_NOTFOUND);

    bytes p0 = unhex(V_MESSAGES[0].payload), c0 = unhex(V_MESSAGES[0].ciphertext);
    assert_int_equal(punch_noise_read_message(&hs, c0.b, c0.len, out, sizeof out, &n), 0);
    assert_int_equal(n, p0.len);
    assert_memory_equal(out, p0.b, n);
    /* The initiator's key is known before answering. */
    assert_int_equal(punch_noise_get_step(&hs), PUNCH_NOISE_STEP_WRITE_2);
    assert_int_equal(punch_noise_remote_static(&hs, rs), 0);
    assert_memory_equal(rs, init.public_key, 32);

    bytes p1 = unhex(V_MESSAGES[1].payload), c1 = unhex(V_MESSAGES[1].ciphertext);
    assert_int_equal(punch_noise_write_message(&hs, p1.b, p1.len, out, sizeof out, &n), 0);
    assert_int_equal(n, c1.len);
    assert_int_equal(n, PUNCH_NOISE_MSG2_OVERHEAD + p1.len);
    assert_memory_equal(out, c1.b, n);
    assert_int_equal(punch_noise_handshake_hash(&hs, h), 0);
    assert_memory_equal(h, hash.b, sizeof h);

    punch_noise_cipher send, recv;
    assert_int_equal(punch_noise_split(&hs, &send, &recv), 0);
    for (int i = 2; i < 6; i++) {
        bytes p = unhex(V_MESSAGES[i].payload), c = unhex(V_MESSAGES[i].ciphertext);
        if (i % 2 == 1) {
            assert_int_equal(
                punch_noise_cipher_encrypt(&send, NULL, 0, p.b, p.len, out, sizeof out, &n), 0);
            assert_int_equal(n, c.len);
            assert_memory_equal(out, c.b, n);
        } else {
            assert_int_equal(
                punch_noise_cipher_decrypt(&recv, NULL, 0, c.b, c.len, out, sizeof out, &n), 0);
            assert_int_equal(n, p.len);
            assert_memory_equal(out, p.b, n);
        }
    }
}

/* ---- two sides with keys from the seeded PRNG ---- */

static const uint8_t PROLOGUE[] = "punch test prologue";

typedef struct side {
    punch_identity id;
    uint8_t eph[32];
    punch_noise_handshake hs;
    punch_transport t;
} side;

static void make_side(side *x)
{
    uint8_t secret[32];
    rng_fill(secret, sizeof secret);
    assert_int_equal(punch_identity_from_secret(&x->id, secret), 0);
    rng_fill(x->eph, sizeof x->eph);
}

/* Alice (initiator) towards Bob (responder), both initialised. */
static void start_pair(side *a, side *b)
{
    make_side(a);
    make_side(b);
    assert_int_equal(punch_noise_initiator_init(&a->hs, &a->id, b->id.public_key, PROLOGUE,
                                                sizeof PROLOGUE, a->eph),
                     0);
    assert_int_equal(punch_noise_responder_init(&b->hs, &b->id, PROLOGUE, sizeof PROLOGUE, b->eph),
                     0);
}

typedef struct msg {
    uint8_t b[512];
    size_t len;
} msg;

static msg write_msg(punch_noise_handshake *hs, const char *payload)
{
    msg m;
    assert_int_equal(punch_noise_write_message(hs, (const uint8_t *)payload, strlen(payload), m.b,
                                               sizeof m.b, &m.len),
                     0);
    return m;
}

static void read_msg(punch_noise_handshake *hs, const msg *m, const char *payload)
{
    uint8_t out[512];
    size_t n = 99;
    assert_int_equal(punch_noise_read_message(hs, m->b, m->len, out, sizeof out, &n), 0);
    assert_int_equal(n, strlen(payload));
    assert_memory_equal(out, payload, n);
}

/* A full handshake and transports, Alice's index 7, Bob's 9. */
static void connect_pair(side *a, side *b, uint64_t now_ms)
{
    start_pair(a, b);
    msg m1 = write_msg(&a->hs, "hello bob");
    read_msg(&b->hs, &m1, "hello bob");
    msg m2 = write_msg(&b->hs, "hello alice");
    read_msg(&a->hs, &m2, "hello alice");
    assert_int_equal(punch_transport_init(&a->t, &a->hs, now_ms, 7, 9), 0);
    assert_int_equal(punch_transport_init(&b->t, &b->hs, now_ms, 9, 7), 0);
}

typedef struct dgram {
    uint8_t b[128];
    size_t len;
} dgram;

static dgram seal(side *x, uint64_t now_ms, const void *payload, size_t len)
{
    dgram d;
    assert_int_equal(punch_transport_encrypt(&x->t, now_ms, payload, len, d.b, sizeof d.b, &d.len),
                     0);
    assert_int_equal(d.len, len + PUNCH_TRANSPORT_OVERHEAD);
    return d;
}

static int open_dgram(side *x, uint64_t now_ms, const dgram *d)
{
    uint8_t out[128];
    size_t n = 0;
    return punch_transport_decrypt(&x->t, now_ms, d->b, d->len, out, sizeof out, &n);
}

static void handshake_and_transport_both_ways(void **state)
{
    (void)state;
    side a, b;
    uint8_t h1[64], h2[64], key[32], out[128];
    size_t n;

    seed(1);
    start_pair(&a, &b);
    assert_int_equal(punch_noise_remote_static(&a.hs, key), 0); /* IK: known from the start */
    assert_memory_equal(key, b.id.public_key, 32);

    msg m1 = write_msg(&a.hs, "");
    assert_int_equal(m1.len, PUNCH_NOISE_MSG1_OVERHEAD);
    read_msg(&b.hs, &m1, "");
    assert_int_equal(punch_noise_remote_static(&b.hs, key), 0);
    assert_memory_equal(key, a.id.public_key, 32);
    msg m2 = write_msg(&b.hs, "answer");
    assert_int_equal(m2.len, PUNCH_NOISE_MSG2_OVERHEAD + 6);
    read_msg(&a.hs, &m2, "answer");
    assert_int_equal(punch_noise_handshake_hash(&a.hs, h1), 0);
    assert_int_equal(punch_noise_handshake_hash(&b.hs, h2), 0);
    assert_memory_equal(h1, h2, 64);

    assert_int_equal(punch_transport_init(&a.t, &a.hs, 0, 7, 9), 0);
    assert_int_equal(punch_transport_init(&b.t, &b.hs, 0, 9, 7), 0);
    assert_true(a.t.initiator && !b.t.initiator);
    /* The split wiped the handshakes' secrets. */
    assert_true(all_zero(a.hs.ck, sizeof a.hs.ck) && all_zero(b.hs.e_secret, 32));
    assert_true(all_zero(a.hs.s.secret_key, 32) && all_zero(b.hs.cs.k, 32));
    assert_int_equal(punch_transport_init(&a.t, &a.hs, 0, 7, 9), PUNCH_ERR_INVAL);

    for (uint64_t i = 0; i < 50; i++) {
        char text[32];
        int len = snprintf(text, sizeof text, "message %" PRIu64, i);
        side *from = i % 3 ? &a : &b, *to = i % 3 ? &b : &a;
        dgram d = seal(from, i, text, (size_t)len);
        uint32_t index = 0;
        assert_int_equal(punch_transport_peek_index(d.b, d.len, &index), 0);
        assert_int_equal(index, to->t.local_index);
        assert_int_equal(d.b[0], PUNCH_TRANSPORT_TYPE);
        assert_int_equal(punch_transport_decrypt(&to->t, i, d.b, d.len, out, sizeof out, &n), 0);
        assert_int_equal(n, (size_t)len);
        assert_memory_equal(out, text, n);
    }
    /* An empty payload is a keepalive: 32 bytes. */
    dgram k = seal(&a, 60, NULL, 0);
    assert_int_equal(k.len, PUNCH_TRANSPORT_OVERHEAD);
    assert_int_equal(punch_transport_decrypt(&b.t, 60, k.b, k.len, NULL, 0, &n), 0);
    assert_int_equal(n, 0);
    /* Each direction has its own key: Alice cannot read her own datagram. */
    dgram own = seal(&a, 61, "x", 1);
    own.b[4] = 7; /* even with her own index in it */
    assert_int_equal(open_dgram(&a, 61, &own), PUNCH_ERR_INTEGRITY);
    assert_int_equal(a.t.counters.forged, 1);
    punch_transport_wipe(&a.t);
    punch_transport_wipe(&b.t);
    assert_true(all_zero(a.t.send.k, 32));
    punch_transport_wipe(NULL);
    punch_noise_handshake_wipe(NULL);
}

/* Every single-byte change and every truncation of a handshake message is
 * refused, leaves the reader as it was, and the real message still works. */
static void check_tampering(punch_noise_handshake *reader, const msg *good, const char *payload)
{
    punch_noise_handshake before = *reader;
    uint8_t out[512];
    size_t n = 12345;

    for (size_t i = 0; i < good->len; i++) {
        for (int bit = 0; bit < 8; bit += 7) {
            msg bad = *good;
            bad.b[i] ^= (uint8_t)(1u << bit);
            int rc = punch_noise_read_message(reader, bad.b, bad.len, out, sizeof out, &n);
            assert_true(rc == PUNCH_ERR_INTEGRITY || rc == PUNCH_ERR_MALFORMED);
            assert_memory_equal(reader, &before, sizeof before);
            assert_int_equal(n, 12345);
        }
    }
    for (size_t len = 0; len < good->len; len++) {
        int rc = punch_noise_read_message(reader, good->b, len, out, sizeof out, &n);
        assert_true(rc == PUNCH_ERR_INTEGRITY || rc == PUNCH_ERR_MALFORMED);
        assert_memory_equal(reader, &before, sizeof before);
    }
    msg longer = *good;
    longer.b[longer.len++] = 0;
    assert_int_equal(punch_noise_read_message(reader, longer.b, longer.len, out, sizeof out, &n),
                     PUNCH_ERR_INTEGRITY);
    assert_memory_equal(reader, &before, sizeof before);
    read_msg(reader, good, payload);
}

static void tampered_handshake_messages_are_refused(void **state)
{
    (void)state;
    side a, b;

    seed(2);
    start_pair(&a, &b);
    msg m1 = write_msg(&a.hs, "first payload");
    check_tampering(&b.hs, &m1, "first payload");
    msg m2 = write_msg(&b.hs, "second payload");
    check_tampering(&a.hs, &m2, "second payload");
    assert_int_equal(punch_noise_get_step(&a.hs), PUNCH_NOISE_STEP_DONE);
}

static void low_order_ephemeral_is_malformed(void **state)
{
    (void)state;
    side a, b;
    uint8_t out[64];
    size_t n;

    seed(3);
    start_pair(&a, &b);
    msg m1 = write_msg(&a.hs, "");
    msg bad = m1;
    memset(bad.b, 0, 32); /* the identity point: every DH with it is zero */
    punch_noise_handshake before = b.hs;
    assert_int_equal(punch_noise_read_message(&b.hs, bad.b, bad.len, out, sizeof out, &n),
                     PUNCH_ERR_MALFORMED);
    assert_memory_equal(&b.hs, &before, sizeof before);
    read_msg(&b.hs, &m1, "");

    /* An initiator given a degenerate responder key cannot write. */
    static const uint8_t zero[32];
    punch_noise_handshake hs;
    assert_int_equal(punch_noise_initiator_init(&hs, &a.id, zero, NULL, 0, a.eph), 0);
    before = hs;
    assert_int_equal(punch_noise_write_message(&hs, NULL, 0, bad.b, sizeof bad.b, &n),
                     PUNCH_ERR_INVAL);
    assert_memory_equal(&hs, &before, sizeof before);
}

static void wrong_responder_key_or_prologue_fails_message_1(void **state)
{
    (void)state;
    side a, b, c;
    uint8_t out[64];
    size_t n;

    seed(4);
    start_pair(&a, &b);
    make_side(&c);
    /* Alice believes Bob's key is C's: Bob cannot decrypt her message. */
    assert_int_equal(
        punch_noise_initiator_init(&a.hs, &a.id, c.id.public_key, PROLOGUE, sizeof PROLOGUE, a.eph),
        0);
    msg m1 = write_msg(&a.hs, "for bob");
    assert_int_equal(punch_noise_read_message(&b.hs, m1.b, m1.len, out, sizeof out, &n),
                     PUNCH_ERR_INTEGRITY);
    assert_int_equal(punch_noise_get_step(&b.hs), PUNCH_NOISE_STEP_READ_1);
    assert_int_equal(punch_noise_remote_static(&b.hs, out), PUNCH_ERR_NOTFOUND);

    /* Same keys, another prologue: refused too. */
    static const uint8_t other[] = "another prologue";
    assert_int_equal(
        punch_noise_initiator_init(&a.hs, &a.id, b.id.public_key, other, sizeof other, a.eph), 0);
    m1 = write_msg(&a.hs, "for bob");
    assert_int_equal(punch_noise_read_message(&b.hs, m1.b, m1.len, out, sizeof out, &n),
                     PUNCH_ERR_INTEGRITY);
}

static void calls_out_of_turn_are_inval(void **state)
{
    (void)state;
    side a, b;
    punch_noise_cipher s1, s2;
    uint8_t buf[256], h[64];
    size_t n;

    seed(5);
    start_pair(&a, &b);
    msg m = {.len = 100};
    assert_int_equal(punch_noise_read_message(&a.hs, m.b, m.len, buf, sizeof buf, &n),
                     PUNCH_ERR_INVAL); /* initiator must write first */
    assert_int_equal(punch_noise_write_message(&b.hs, NULL, 0, buf, sizeof buf, &n),
                     PUNCH_ERR_INVAL); /* responder must read first */
    assert_int_equal(punch_noise_split(&a.hs, &s1, &s2), PUNCH_ERR_INVAL);
    assert_int_equal(punch_noise_handshake_hash(&a.hs, h), PUNCH_ERR_INVAL);
    msg m1 = write_msg(&a.hs, "");
    assert_int_equal(punch_noise_write_message(&a.hs, NULL, 0, buf, sizeof buf, &n),
                     PUNCH_ERR_INVAL); /* only once */
    read_msg(&b.hs, &m1, "");
    assert_int_equal(punch_noise_read_message(&b.hs, m1.b, m1.len, buf, sizeof buf, &n),
                     PUNCH_ERR_INVAL); /* a second message 1 */
    msg m2 = write_msg(&b.hs, "");
    read_msg(&a.hs, &m2, "");
    assert_int_equal(punch_noise_split(&a.hs, &s1, &s1), PUNCH_ERR_INVAL);
    assert_int_equal(punch_noise_split(&a.hs, &s1, &s2), 0);
    assert_int_equal(punch_noise_split(&a.hs, &s1, &s2), PUNCH_ERR_INVAL);
    assert_int_equal(punch_noise_get_step(&a.hs), PUNCH_NOISE_STEP_SPLIT);

    /* Bad arguments. */
    punch_noise_handshake hs;
    assert_int_equal(punch_noise_initiator_init(&hs, &a.id, NULL, NULL, 0, a.eph), PUNCH_ERR_INVAL);
    assert_int_equal(punch_noise_responder_init(&hs, &a.id, NULL, 3, a.eph), PUNCH_ERR_INVAL);
    assert_int_equal(punch_noise_responder_init(&hs, NULL, NULL, 0, a.eph), PUNCH_ERR_INVAL);
    assert_int_equal(punch_noise_responder_init(NULL, &a.id, NULL, 0, a.eph), PUNCH_ERR_INVAL);
    assert_int_equal(punch_noise_responder_init(&hs, &a.id, NULL, 0, NULL), PUNCH_ERR_INVAL);
    punch_noise_handshake_wipe(&hs);
    assert_int_equal(punch_noise_get_step(&hs), PUNCH_NOISE_STEP_NONE);
    assert_int_equal(punch_noise_write_message(&hs, NULL, 0, buf, sizeof buf, &n), PUNCH_ERR_INVAL);

    /* A transport without keys does nothing. */
    punch_transport t;
    memset(&t, 0, sizeof t);
    assert_int_equal(punch_transport_encrypt(&t, 0, buf, 1, buf + 8, 100, &n), PUNCH_ERR_INVAL);
    assert_int_equal(punch_transport_decrypt(&t, 0, buf, 40, buf + 64, 100, &n), PUNCH_ERR_INVAL);
}

static void payload_limits(void **state)
{
    (void)state;
    static uint8_t big[PUNCH_TRANSPORT_MAX_DATAGRAM + 1], out[PUNCH_TRANSPORT_MAX_DATAGRAM + 1];
    side a, b;
    size_t n;

    seed(6);
    start_pair(&a, &b);
    assert_int_equal(
        punch_noise_write_message(&a.hs, big, PUNCH_NOISE_MAX_PAYLOAD1 + 1, out, sizeof out, &n),
        PUNCH_ERR_INVAL);
    assert_int_equal(
        punch_noise_write_message(&a.hs, big, PUNCH_NOISE_MAX_PAYLOAD1, out, sizeof out, &n), 0);
    assert_int_equal(n, PUNCH_NOISE_MAX_MSG_LEN);
    assert_int_equal(punch_noise_read_message(&b.hs, out, n + 1, big, sizeof big, &n),
                     PUNCH_ERR_MALFORMED); /* over 65535 bytes */
    assert_int_equal(punch_noise_read_message(&b.hs, out, n, big, sizeof big, &n), 0);
    assert_int_equal(n, PUNCH_NOISE_MAX_PAYLOAD1);
    assert_int_equal(
        punch_noise_write_message(&b.hs, big, PUNCH_NOISE_MAX_PAYLOAD2 + 1, out, sizeof out, &n),
        PUNCH_ERR_INVAL);
    assert_int_equal(
        punch_noise_write_message(&b.hs, big, PUNCH_NOISE_MAX_PAYLOAD2, out, sizeof out, &n), 0);
    assert_int_equal(punch_noise_read_message(&a.hs, out, n, big, sizeof big, &n), 0);
    assert_int_equal(punch_transport_init(&a.t, &a.hs, 0, 1, 2), 0);
    assert_int_equal(punch_transport_init(&b.t, &b.hs, 0, 2, 1), 0);

    assert_int_equal(
        punch_transport_encrypt(&a.t, 0, big, PUNCH_TRANSPORT_MAX_PAYLOAD + 1, out, sizeof out, &n),
        PUNCH_ERR_INVAL);
    assert_int_equal(
        punch_transport_encrypt(&a.t, 0, big, PUNCH_TRANSPORT_MAX_PAYLOAD, out, sizeof out, &n), 0);
    assert_int_equal(n, PUNCH_TRANSPORT_MAX_DATAGRAM);
    assert_int_equal(punch_transport_decrypt(&b.t, 0, out, n + 1, big, sizeof big, &n),
                     PUNCH_ERR_MALFORMED);
    assert_int_equal(punch_transport_decrypt(&b.t, 0, out, n, big, sizeof big, &n), 0);
    assert_int_equal(n, PUNCH_TRANSPORT_MAX_PAYLOAD);
}

static void short_buffers_are_nobufs(void **state)
{
    (void)state;
    side a, b;
    uint8_t buf[256], out[256];
    size_t n = 777;

    seed(7);
    start_pair(&a, &b);
    punch_noise_handshake before = a.hs;
    assert_int_equal(punch_noise_write_message(&a.hs, (const uint8_t *)"abcd", 4, buf,
                                               PUNCH_NOISE_MSG1_OVERHEAD + 3, &n),
                     PUNCH_ERR_NOBUFS);
    assert_int_equal(punch_noise_write_message(&a.hs, NULL, 0, NULL, 0, &n), PUNCH_ERR_NOBUFS);
    assert_memory_equal(&a.hs, &before, sizeof before);
    assert_int_equal(n, 777);
    msg m1 = write_msg(&a.hs, "abcd");

    before = b.hs;
    assert_int_equal(punch_noise_read_message(&b.hs, m1.b, m1.len, out, 3, &n), PUNCH_ERR_NOBUFS);
    assert_int_equal(punch_noise_read_message(&b.hs, m1.b, m1.len, NULL, 0, &n), PUNCH_ERR_NOBUFS);
    assert_memory_equal(&b.hs, &before, sizeof before);
    read_msg(&b.hs, &m1, "abcd");
    before = b.hs;
    assert_int_equal(punch_noise_write_message(&b.hs, (const uint8_t *)"xy", 2, buf,
                                               PUNCH_NOISE_MSG2_OVERHEAD + 1, &n),
                     PUNCH_ERR_NOBUFS);
    assert_memory_equal(&b.hs, &before, sizeof before);
    msg m2 = write_msg(&b.hs, "xy");
    before = a.hs;
    assert_int_equal(punch_noise_read_message(&a.hs, m2.b, m2.len, out, 1, &n), PUNCH_ERR_NOBUFS);
    assert_memory_equal(&a.hs, &before, sizeof before);
    read_msg(&a.hs, &m2, "xy");
    assert_int_equal(punch_transport_init(&a.t, &a.hs, 0, 1, 2), 0);
    assert_int_equal(punch_transport_init(&b.t, &b.hs, 0, 2, 1), 0);

    assert_int_equal(punch_transport_encrypt(&a.t, 0, buf, 10, out, 10 + 31, &n), PUNCH_ERR_NOBUFS);
    assert_int_equal(a.t.send.n, 0); /* no counter used */
    dgram d = seal(&a, 0, "0123456789", 10);
    punch_replay window = b.t.replay;
    assert_int_equal(punch_transport_decrypt(&b.t, 0, d.b, d.len, out, 9, &n), PUNCH_ERR_NOBUFS);
    assert_memory_equal(&b.t.replay, &window, sizeof window);
    assert_int_equal(punch_transport_decrypt(&b.t, 0, d.b, d.len, out, 10, &n), 0);

    /* The plain cipher states too. */
    punch_noise_cipher cs = {.has_key = true};
    assert_int_equal(punch_noise_cipher_encrypt(&cs, NULL, 0, buf, 8, out, 23, &n),
                     PUNCH_ERR_NOBUFS);
    assert_int_equal(punch_noise_cipher_encrypt(&cs, NULL, 0, buf, 8, out, 24, &n), 0);
    punch_noise_cipher rx = {.has_key = true};
    assert_int_equal(punch_noise_cipher_decrypt(&rx, NULL, 0, out, 24, buf, 7, &n),
                     PUNCH_ERR_NOBUFS);
    assert_int_equal(punch_noise_cipher_decrypt(&rx, NULL, 0, out, 15, buf, 7, &n),
                     PUNCH_ERR_MALFORMED);
    assert_int_equal(rx.n, 0);
    assert_int_equal(punch_noise_cipher_decrypt(&rx, NULL, 0, out, 24, buf, 8, &n), 0);
    assert_int_equal(rx.n, 1);
}

static void tampered_datagrams_are_refused(void **state)
{
    (void)state;
    side a, b;

    seed(8);
    connect_pair(&a, &b, 0);
    for (int round = 0; round < 3; round++) {
        dgram good = seal(&a, 1, "tamper with me", 14);
        punch_replay window = b.t.replay;
        for (size_t i = 0; i < good.len; i++) {
            for (int bit = 0; bit < 8; bit++) {
                dgram bad = good;
                bad.b[i] ^= (uint8_t)(1u << bit);
                int rc = open_dgram(&b, 1, &bad);
                if (i >= 4 && i < 8)
                    assert_int_equal(rc, PUNCH_ERR_NOTFOUND); /* receiver index */
                else if (i < 4)
                    assert_int_equal(rc, PUNCH_ERR_MALFORMED); /* type, reserved */
                else
                    assert_int_equal(rc, PUNCH_ERR_INTEGRITY);
                assert_memory_equal(&b.t.replay, &window, sizeof window);
            }
        }
        for (size_t len = 0; len < good.len; len++) {
            dgram cut = good;
            cut.len = len;
            int rc = open_dgram(&b, 1, &cut);
            assert_true(rc == PUNCH_ERR_MALFORMED || rc == PUNCH_ERR_INTEGRITY);
        }
        assert_memory_equal(&b.t.replay, &window, sizeof window);
        assert_int_equal(open_dgram(&b, 1, &good), 0);
        assert_int_equal(open_dgram(&b, 1, &good), PUNCH_ERR_INTEGRITY); /* now a replay */
    }
    assert_int_equal(b.t.counters.delivered, 3);
    /* The three replays above, plus flipped counters that named a counter
     * already received. */
    assert_true(b.t.counters.replayed >= 3);
    assert_true(b.t.counters.forged > 0 && b.t.counters.malformed > 0);
}

/* AES-256-GCM (issue 14): after both sides switch, datagrams cross both
 * ways and every flipped bit is refused as with ChaCha20-Poly1305; a side
 * still on ChaCha20-Poly1305 opens none of them (the cipher is part of what
 * both must agree on), and a machine without AES-NI refuses the switch. */
static void aes256gcm_transport(void **state)
{
    (void)state;
    side a, b;

    seed(9);
    connect_pair(&a, &b, 0);
    if (!punch_transport_aes_available()) {
        assert_int_equal(punch_transport_use_cipher(&a.t, PUNCH_CIPHER_AES256_GCM),
                         PUNCH_ERR_INVAL);
        skip();
    }
    assert_int_equal(punch_transport_use_cipher(&a.t, PUNCH_CIPHER_AES256_GCM), 0);
    dgram d = seal(&a, 1, "sealed by aes", 13);
    assert_int_equal(open_dgram(&b, 1, &d), PUNCH_ERR_INTEGRITY); /* b: ChaCha20-Poly1305 */
    assert_int_equal(punch_transport_use_cipher(&b.t, PUNCH_CIPHER_AES256_GCM), 0);
    assert_int_equal(open_dgram(&b, 1, &d), 0);
    dgram back = seal(&b, 1, "and back", 8);
    uint8_t out[128];
    size_t n = 0;
    assert_int_equal(punch_transport_decrypt(&a.t, 1, back.b, back.len, out, sizeof out, &n), 0);
    assert_int_equal(n, 8);
    assert_memory_equal(out, "and back", 8);
    dgram good = seal(&a, 1, "tamper with me", 14);
    for (size_t i = 8; i < good.len; i++) {
        dgram bad = good;
        bad.b[i] ^= 0x01;
        assert_int_equal(open_dgram(&b, 1, &bad), PUNCH_ERR_INTEGRITY);
    }
    assert_int_equal(open_dgram(&b, 1, &good), 0);
    dgram empty = seal(&a, 1, "", 0); /* a bare tag authenticates too */
    assert_int_equal(open_dgram(&b, 1, &empty), 0);
    assert_int_equal(b.t.counters.delivered, 3);
    assert_int_equal(punch_transport_use_cipher(&a.t, (punch_cipher)7), PUNCH_ERR_INVAL);
    punch_transport none = {0};
    assert_int_equal(punch_transport_use_cipher(&none, PUNCH_CIPHER_AES256_GCM), PUNCH_ERR_INVAL);
}

/* ---- replay window ---- */

static void replay_window_in_transport(void **state)
{
    (void)state;
    static dgram d[4100];
    side a, b;

    seed(9);
    connect_pair(&a, &b, 0);
    for (size_t i = 0; i < 4100; i++)
        d[i] = seal(&a, 0, &i, sizeof i);

    assert_int_equal(open_dgram(&b, 0, &d[0]), 0);
    assert_int_equal(open_dgram(&b, 0, &d[0]), PUNCH_ERR_INTEGRITY); /* duplicate */
    /* Out of order inside the window: each once. */
    static const int order[] = {5, 3, 4, 1, 2};
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(open_dgram(&b, 0, &d[order[i]]), 0);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(open_dgram(&b, 0, &d[order[i]]), PUNCH_ERR_INTEGRITY);

    /* Newest 2000: the window keeps 1984 counters, 17..2000. */
    assert_int_equal(open_dgram(&b, 0, &d[2000]), 0);
    assert_int_equal(open_dgram(&b, 0, &d[2000 - PUNCH_REPLAY_WINDOW]), PUNCH_ERR_INTEGRITY);
    assert_int_equal(open_dgram(&b, 0, &d[2000 - PUNCH_REPLAY_WINDOW + 1]), 0);
    assert_int_equal(open_dgram(&b, 0, &d[1999]), 0);
    assert_int_equal(open_dgram(&b, 0, &d[6]), PUNCH_ERR_INTEGRITY); /* never seen, too old */
    /* The window slides with the newest counter. */
    assert_int_equal(open_dgram(&b, 0, &d[4099]), 0);
    assert_int_equal(open_dgram(&b, 0, &d[4099 - PUNCH_REPLAY_WINDOW]), PUNCH_ERR_INTEGRITY);
    assert_int_equal(open_dgram(&b, 0, &d[4099 - PUNCH_REPLAY_WINDOW + 1]), 0);
    assert_int_equal(open_dgram(&b, 0, &d[4099 - PUNCH_REPLAY_WINDOW + 1]), PUNCH_ERR_INTEGRITY);
    assert_int_equal(open_dgram(&b, 0, &d[3000]), 0);
    assert_int_equal(open_dgram(&b, 0, &d[1999]), PUNCH_ERR_INTEGRITY);
    assert_int_equal(b.t.counters.replayed, 11);
    assert_int_equal(b.t.counters.delivered, 12);

    /* A big jump forgets everything before it. */
    a.t.send.n = 1000000;
    dgram far = seal(&a, 0, "far", 3);
    assert_int_equal(open_dgram(&b, 0, &far), 0);
    assert_int_equal(open_dgram(&b, 0, &d[4098]), PUNCH_ERR_INTEGRITY);
}

/* The window against a plain model: a set of accepted counters and the
 * newest one; fresh means unseen and newer than newest - WINDOW. */
static void replay_window_matches_model(void **state)
{
    (void)state;
    enum { SPAN = 1 << 16 };
    static uint8_t seen[SPAN];
    punch_replay r;

    for (uint64_t s = 100; s < 104; s++) {
        seed(s);
        memset(&r, 0, sizeof r);
        memset(seen, 0, sizeof seen);
        uint64_t newest = 0;
        bool any = false;
        for (int i = 0; i < 200000; i++) {
            uint64_t c;
            uint64_t pick = rng_next() % 100;
            if (!any || pick < 2)
                c = rng_next() % SPAN; /* anywhere, including far ahead or behind */
            else if (pick < 60)
                c = newest + rng_next() % 8; /* mostly forward */
            else {
                uint64_t back = rng_next() % (PUNCH_REPLAY_WINDOW + 64); /* around the edge */
                c = back <= newest ? newest - back : 0;
            }
            if (c >= SPAN)
                c = SPAN - 1;
            bool fresh = !any || c > newest || (newest - c < PUNCH_REPLAY_WINDOW && !seen[c]);
            CHECK(punch_replay_check(&r, c) == fresh);
            if (fresh) {
                punch_replay_update(&r, c);
                seen[c] = 1;
                if (!any || c > newest)
                    newest = c;
                any = true;
            }
        }
    }
}

/* Datagrams shuffled and duplicated by a seeded network: each is delivered
 * at most once, and every one that stays inside the window exactly once. */
static void reordered_and_duplicated_datagrams(void **state)
{
    (void)state;
    enum { N = 3000 };
    static dgram d[N];
    static size_t order[2 * N];
    static int delivered[N];
    side a, b;

    seed(10);
    connect_pair(&a, &b, 0);
    for (size_t i = 0; i < N; i++) {
        uint32_t tag = (uint32_t)i;
        d[i] = seal(&a, 0, &tag, sizeof tag);
        order[2 * i] = order[2 * i + 1] = i; /* each sent twice */
    }
    /* Shuffle within blocks of 400 sends, so no datagram is overtaken by
     * one 400 counters newer: well inside the window. */
    for (size_t start = 0; start < 2 * N; start += 400) {
        size_t len = 2 * N - start < 400 ? 2 * N - start : 400;
        for (size_t i = len - 1; i > 0; i--) {
            size_t j = (size_t)(rng_next() % (i + 1));
            size_t t = order[start + i];
            order[start + i] = order[start + j];
            order[start + j] = t;
        }
    }
    for (size_t k = 0; k < 2 * N; k++) {
        uint8_t out[16];
        size_t n = 0;
        size_t i = order[k];
        int rc = punch_transport_decrypt(&b.t, 0, d[i].b, d[i].len, out, sizeof out, &n);
        CHECK(rc == 0 || rc == PUNCH_ERR_INTEGRITY);
        if (rc == 0) {
            uint32_t tag;
            memcpy(&tag, out, sizeof tag);
            CHECK(n == sizeof tag && tag == i);
            delivered[i]++;
        }
    }
    for (size_t i = 0; i < N; i++)
        CHECK(delivered[i] == 1);
    CHECK(b.t.counters.delivered == N && b.t.counters.replayed == N);
}

/* ---- limits and rekeying ---- */

static void message_limits(void **state)
{
    (void)state;
    side a, b;
    uint8_t out[128];
    size_t n;

    seed(11);
    connect_pair(&a, &b, 0);
    assert_false(punch_transport_needs_rekey(&a.t, 0));
    a.t.send.n = PUNCH_REKEY_AFTER_MESSAGES - 1;
    assert_false(punch_transport_needs_rekey(&a.t, 0));
    dgram d = seal(&a, 0, "x", 1);
    assert_true(punch_transport_needs_rekey(&a.t, 0)); /* 2^60 sent */
    assert_false(punch_transport_needs_rekey(&b.t, 0));
    assert_int_equal(open_dgram(&b, 0, &d), 0);
    assert_false(punch_transport_needs_rekey(&b.t, 0)); /* received 2^60 - 1 */
    d = seal(&a, 0, "y", 1);
    assert_int_equal(open_dgram(&b, 0, &d), 0);
    assert_true(punch_transport_needs_rekey(&b.t, 0)); /* received counter 2^60 */

    /* The last counter that may be sent, then no more. */
    a.t.send.n = PUNCH_REJECT_AFTER_MESSAGES - 1;
    d = seal(&a, 0, "z", 1);
    assert_int_equal(open_dgram(&b, 0, &d), 0);
    assert_int_equal(punch_transport_encrypt(&a.t, 0, (const uint8_t *)"w", 1, out, sizeof out, &n),
                     PUNCH_ERR_LIMIT);
    assert_int_equal(a.t.send.n, PUNCH_REJECT_AFTER_MESSAGES);
    /* A counter past the limit is refused before any MAC work. */
    dgram past = d;
    for (int i = 0; i < 8; i++)
        past.b[8 + i] = (uint8_t)(PUNCH_REJECT_AFTER_MESSAGES >> (8 * i));
    uint64_t forged = b.t.counters.forged;
    assert_int_equal(open_dgram(&b, 0, &past), PUNCH_ERR_MALFORMED);
    past.b[8] = 0xff; /* 2^64 - 1 as well */
    for (int i = 1; i < 8; i++)
        past.b[8 + i] = 0xff;
    assert_int_equal(open_dgram(&b, 0, &past), PUNCH_ERR_MALFORMED);
    assert_int_equal(b.t.counters.forged, forged);

    /* Noise's own limit on a plain cipher state: nonce 2^64 - 1 is never used. */
    punch_noise_cipher cs = {.has_key = true, .n = UINT64_MAX - 1};
    assert_int_equal(punch_noise_cipher_encrypt(&cs, NULL, 0, out, 1, out + 32, 64, &n), 0);
    assert_int_equal(punch_noise_cipher_encrypt(&cs, NULL, 0, out, 1, out + 32, 64, &n),
                     PUNCH_ERR_LIMIT);
    assert_int_equal(punch_noise_cipher_decrypt(&cs, NULL, 0, out + 32, 17, out, 64, &n),
                     PUNCH_ERR_LIMIT);
}

static void rekey_and_expiry_at_their_deadlines(void **state)
{
    (void)state;
    const uint64_t t0 = 5000;
    const uint64_t rekey = t0 + PUNCH_REKEY_AFTER_TIME_MS, reject = t0 + PUNCH_REJECT_AFTER_TIME_MS;
    side a, b;
    uint8_t out[128];
    size_t n;

    seed(12);
    connect_pair(&a, &b, t0);
    assert_false(punch_transport_needs_rekey(&a.t, t0 - 1)); /* a clock before t0 is t0 */
    assert_false(punch_transport_needs_rekey(&a.t, rekey - 1));
    assert_true(punch_transport_needs_rekey(&a.t, rekey));
    assert_true(punch_transport_needs_rekey(&b.t, rekey));
    assert_false(punch_transport_expired(&a.t, reject - 1));
    assert_true(punch_transport_expired(&a.t, reject));

    dgram d1 = seal(&a, reject - 1, "last", 4);
    dgram d2 = seal(&b, reject - 1, "late", 4);
    assert_int_equal(
        punch_transport_encrypt(&a.t, reject, (const uint8_t *)"no", 2, out, sizeof out, &n),
        PUNCH_ERR_LIMIT);
    assert_int_equal(open_dgram(&b, reject - 1, &d1), 0);
    assert_int_equal(open_dgram(&a, reject, &d2), PUNCH_ERR_LIMIT); /* arrived too late */
    assert_int_equal(a.t.counters.expired, 1);
}

static void wrong_receiver_index_is_notfound(void **state)
{
    (void)state;
    side a, b;
    uint32_t index;

    seed(13);
    connect_pair(&a, &b, 0);
    a.t.remote_index = 0x01020304;
    dgram d = seal(&a, 0, "x", 1);
    assert_int_equal(punch_transport_peek_index(d.b, d.len, &index), 0);
    assert_int_equal(index, 0x01020304);
    assert_memory_equal(d.b + 4, "\x04\x03\x02\x01", 4); /* little-endian */
    assert_int_equal(open_dgram(&b, 0, &d), PUNCH_ERR_NOTFOUND);
    assert_int_equal(punch_transport_peek_index(d.b, PUNCH_TRANSPORT_OVERHEAD - 1, &index),
                     PUNCH_ERR_MALFORMED);
    d.b[0] = 0x01; /* a STUN message's first byte */
    assert_int_equal(punch_transport_peek_index(d.b, d.len, &index), PUNCH_ERR_MALFORMED);
    assert_int_equal(punch_transport_peek_index(d.b, d.len, NULL), PUNCH_ERR_INVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(vector_as_initiator),
        cmocka_unit_test(vector_as_responder),
        cmocka_unit_test(handshake_and_transport_both_ways),
        cmocka_unit_test(tampered_handshake_messages_are_refused),
        cmocka_unit_test(low_order_ephemeral_is_malformed),
        cmocka_unit_test(wrong_responder_key_or_prologue_fails_message_1),
        cmocka_unit_test(calls_out_of_turn_are_inval),
        cmocka_unit_test(payload_limits),
        cmocka_unit_test(short_buffers_are_nobufs),
        cmocka_unit_test(tampered_datagrams_are_refused),
        cmocka_unit_test(replay_window_in_transport),
        cmocka_unit_test(replay_window_matches_model),
        cmocka_unit_test(reordered_and_duplicated_datagrams),
        cmocka_unit_test(message_limits),
        cmocka_unit_test(rekey_and_expiry_at_their_deadlines),
        cmocka_unit_test(wrong_receiver_index_is_notfound),
        cmocka_unit_test(aes256gcm_transport),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
