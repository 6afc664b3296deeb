/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for Noise IK and its UDP transport (src/crypto/noise.h,
 * src/crypto/transport.h).
 *
 * Every input goes, unchanged, to the readers built once from fixed keys:
 * a responder waiting for message 1, an initiator that wrote message 1 and
 * waits for message 2, and the responder's transport after a completed
 * handshake, which decrypts it as a datagram, with ChaCha20-Poly1305 and
 * (where the CPU has it) AES-256-GCM. Besides not crashing, a read
 * that fails must leave its state byte for byte as it was, and one that
 * succeeds must give the length the message implies.
 *
 * make_noise_corpus.c includes this file to write the seed corpus with the
 * same keys, so the seeds are valid messages for these readers.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/noise.h"
#include "crypto/transport.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A check that survives NDEBUG: libFuzzer reports the abort as a crash. */
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

/* Fixed key material: any 32 bytes are an X25519 secret. */
static const uint8_t INITIATOR_SECRET[32] = "punch fuzz initiator static key";
static const uint8_t RESPONDER_SECRET[32] = "punch fuzz responder static key";
static const uint8_t INITIATOR_EPHEMERAL[32] = "punch fuzz initiator ephemeral";
static const uint8_t RESPONDER_EPHEMERAL[32] = "punch fuzz responder ephemeral";
static const uint8_t PROLOGUE[] = "punch fuzz prologue";
enum { INITIATOR_INDEX = 0x11, RESPONDER_INDEX = 0x22 };

typedef struct fixture {
    punch_noise_handshake responder; /* waiting for message 1 */
    punch_noise_handshake initiator; /* wrote message 1, waiting for message 2 */
    punch_transport transport;       /* the responder's, after the handshake */
    punch_transport peer;            /* the initiator's, to make seeds */
    punch_transport aes;             /* transport, switched to AES-256-GCM */
    bool has_aes;
    uint8_t msg1[128], msg2[128];
    size_t msg1_len, msg2_len;
} fixture;

static fixture fx;

static const fixture *get_fixture(void)
{
    static bool ready;
    punch_identity init_id, resp_id;
    punch_noise_handshake ini, resp;
    uint8_t payload[128];
    size_t n;

    if (ready)
        return &fx;
    FUZZ_CHECK(punch_identity_from_secret(&init_id, INITIATOR_SECRET) == 0);
    FUZZ_CHECK(punch_identity_from_secret(&resp_id, RESPONDER_SECRET) == 0);
    FUZZ_CHECK(punch_noise_initiator_init(&ini, &init_id, resp_id.public_key, PROLOGUE,
                                          sizeof PROLOGUE, INITIATOR_EPHEMERAL) == 0);
    FUZZ_CHECK(punch_noise_responder_init(&resp, &resp_id, PROLOGUE, sizeof PROLOGUE,
                                          RESPONDER_EPHEMERAL) == 0);
    fx.responder = resp;
    FUZZ_CHECK(punch_noise_write_message(&ini, (const uint8_t *)"hello", 5, fx.msg1, sizeof fx.msg1,
                                         &fx.msg1_len) == 0);
    fx.initiator = ini;
    FUZZ_CHECK(punch_noise_read_message(&resp, fx.msg1, fx.msg1_len, payload, sizeof payload, &n) ==
               0);
    FUZZ_CHECK(punch_noise_write_message(&resp, (const uint8_t *)"welcome", 7, fx.msg2,
                                         sizeof fx.msg2, &fx.msg2_len) == 0);
    FUZZ_CHECK(punch_noise_read_message(&ini, fx.msg2, fx.msg2_len, payload, sizeof payload, &n) ==
               0);
    FUZZ_CHECK(punch_transport_init(&fx.transport, &resp, 0, RESPONDER_INDEX, INITIATOR_INDEX) ==
               0);
    FUZZ_CHECK(punch_transport_init(&fx.peer, &ini, 0, INITIATOR_INDEX, RESPONDER_INDEX) == 0);
    fx.aes = fx.transport;
    fx.has_aes = punch_transport_use_cipher(&fx.aes, PUNCH_CIPHER_AES256_GCM) == 0;
    ready = true;
    return &fx;
}

static uint8_t out[PUNCH_TRANSPORT_MAX_DATAGRAM + 1];

static void as_message_1(const fixture *f, const uint8_t *data, size_t size)
{
    punch_noise_handshake hs = f->responder;
    size_t n = 0;
    int rc = punch_noise_read_message(&hs, data, size, out, sizeof out, &n);

    FUZZ_CHECK(rc == 0 || rc == PUNCH_ERR_INTEGRITY || rc == PUNCH_ERR_MALFORMED);
    if (rc != 0) {
        FUZZ_CHECK(memcmp(&hs, &f->responder, sizeof hs) == 0);
    } else {
        FUZZ_CHECK(n == size - PUNCH_NOISE_MSG1_OVERHEAD);
        FUZZ_CHECK(punch_noise_get_step(&hs) == PUNCH_NOISE_STEP_WRITE_2);
        uint8_t rs[PUNCH_NOISE_DH_LEN];
        FUZZ_CHECK(punch_noise_remote_static(&hs, rs) == 0);
        rc = punch_noise_write_message(&hs, NULL, 0, out, sizeof out, &n);
        FUZZ_CHECK(rc == 0 && n == PUNCH_NOISE_MSG2_OVERHEAD);
    }

    /* Again with a payload buffer that may be too small. */
    hs = f->responder;
    size_t cap = size > PUNCH_NOISE_MSG1_OVERHEAD ? (size - PUNCH_NOISE_MSG1_OVERHEAD) / 2 : 0;
    rc = punch_noise_read_message(&hs, data, size, out, cap, &n);
    FUZZ_CHECK(rc == 0 || rc == PUNCH_ERR_INTEGRITY || rc == PUNCH_ERR_MALFORMED ||
               rc == PUNCH_ERR_NOBUFS);
    if (rc != 0)
        FUZZ_CHECK(memcmp(&hs, &f->responder, sizeof hs) == 0);
    punch_noise_handshake_wipe(&hs);
}

static void as_message_2(const fixture *f, const uint8_t *data, size_t size)
{
    punch_noise_handshake hs = f->initiator;
    size_t n = 0;
    int rc = punch_noise_read_message(&hs, data, size, out, sizeof out, &n);

    FUZZ_CHECK(rc == 0 || rc == PUNCH_ERR_INTEGRITY || rc == PUNCH_ERR_MALFORMED);
    if (rc != 0) {
        FUZZ_CHECK(memcmp(&hs, &f->initiator, sizeof hs) == 0);
    } else {
        FUZZ_CHECK(n == size - PUNCH_NOISE_MSG2_OVERHEAD);
        punch_noise_cipher send, recv;
        FUZZ_CHECK(punch_noise_split(&hs, &send, &recv) == 0);
        punch_noise_cipher_wipe(&send);
        punch_noise_cipher_wipe(&recv);
    }
    punch_noise_handshake_wipe(&hs);
}

static void as_datagram(const punch_transport *orig, const uint8_t *data, size_t size)
{
    punch_transport t = *orig;
    uint32_t index = 0;
    size_t n = 0;
    int peek = punch_transport_peek_index(data, size, &index);
    int rc = punch_transport_decrypt(&t, 0, data, size, out, sizeof out, &n);

    FUZZ_CHECK(peek == 0 || peek == PUNCH_ERR_MALFORMED);
    FUZZ_CHECK(rc == 0 || rc == PUNCH_ERR_MALFORMED || rc == PUNCH_ERR_NOTFOUND ||
               rc == PUNCH_ERR_INTEGRITY);
    if (peek != 0)
        FUZZ_CHECK(rc == PUNCH_ERR_MALFORMED);
    if (rc == PUNCH_ERR_NOTFOUND)
        FUZZ_CHECK(index != RESPONDER_INDEX);
    if (rc != 0) {
        FUZZ_CHECK(memcmp(&t.replay, &orig->replay, sizeof t.replay) == 0);
        return;
    }
    FUZZ_CHECK(index == RESPONDER_INDEX && n == size - PUNCH_TRANSPORT_OVERHEAD);
    /* The same datagram again is a replay. */
    rc = punch_transport_decrypt(&t, 0, data, size, out, sizeof out, &n);
    FUZZ_CHECK(rc == PUNCH_ERR_INTEGRITY);
    punch_transport_wipe(&t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const fixture *f = get_fixture();

    as_message_1(f, data, size);
    as_message_2(f, data, size);
    as_datagram(&f->transport, data, size);
    if (f->has_aes)
        as_datagram(&f->aes, data, size);
    return 0;
}
