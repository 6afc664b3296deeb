/* SPDX-License-Identifier: MIT */
/* Noise_IK_25519_ChaChaPoly_BLAKE2b on libsodium: see noise.h. Section
 * numbers are those of the Noise Protocol Framework, revision 34. */
#include "crypto/noise.h"

#include <string.h>

#include <sodium.h>

/* RFC 7693 §2.1: BLAKE2b works on 128-byte blocks, which is HMAC's B
 * (RFC 2104 §2) and Noise's BLOCKLEN (§12.8). */
#define BLAKE2B_BLOCK_LEN 128

/* Pattern IK, message 1: e (32), s encrypted (32 + 16), payload tag (16). */
#define MSG1_S_OFFSET       PUNCH_NOISE_DH_LEN
#define MSG1_S_LEN          (PUNCH_NOISE_DH_LEN + PUNCH_NOISE_TAG_LEN)
#define MSG1_PAYLOAD_OFFSET (MSG1_S_OFFSET + MSG1_S_LEN)

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* HMAC-HASH(key, data1 || data2) of Noise §4.3 with HASH = BLAKE2b, built
 * per RFC 2104 (Noise requires HMAC here, not BLAKE2b's own keyed mode). The
 * key is always HASHLEN bytes: a chaining key or a previous HMAC output. */
static void hmac_blake2b(uint8_t out[PUNCH_NOISE_HASH_LEN], const uint8_t key[PUNCH_NOISE_HASH_LEN],
                         const uint8_t *d1, size_t l1, const uint8_t *d2, size_t l2)
{
    crypto_generichash_blake2b_state st;
    uint8_t pad[BLAKE2B_BLOCK_LEN];
    uint8_t inner[PUNCH_NOISE_HASH_LEN];

    memset(pad, 0x36, sizeof pad); /* RFC 2104 §2: ipad */
    for (size_t i = 0; i < PUNCH_NOISE_HASH_LEN; i++)
        pad[i] ^= key[i];
    crypto_generichash_blake2b_init(&st, NULL, 0, PUNCH_NOISE_HASH_LEN);
    crypto_generichash_blake2b_update(&st, pad, sizeof pad);
    if (l1)
        crypto_generichash_blake2b_update(&st, d1, l1);
    if (l2)
        crypto_generichash_blake2b_update(&st, d2, l2);
    crypto_generichash_blake2b_final(&st, inner, sizeof inner);

    memset(pad, 0x5c, sizeof pad); /* RFC 2104 §2: opad */
    for (size_t i = 0; i < PUNCH_NOISE_HASH_LEN; i++)
        pad[i] ^= key[i];
    crypto_generichash_blake2b_init(&st, NULL, 0, PUNCH_NOISE_HASH_LEN);
    crypto_generichash_blake2b_update(&st, pad, sizeof pad);
    crypto_generichash_blake2b_update(&st, inner, sizeof inner);
    crypto_generichash_blake2b_final(&st, out, PUNCH_NOISE_HASH_LEN);

    sodium_memzero(pad, sizeof pad);
    sodium_memzero(inner, sizeof inner);
    sodium_memzero(&st, sizeof st);
}

/* Noise §4.3 HKDF with two outputs (IK never needs the third). out1 may be
 * the chaining key itself. */
static void hkdf2(const uint8_t ck[PUNCH_NOISE_HASH_LEN], const uint8_t *ikm, size_t ikm_len,
                  uint8_t out1[PUNCH_NOISE_HASH_LEN], uint8_t out2[PUNCH_NOISE_HASH_LEN])
{
    static const uint8_t one = 0x01, two = 0x02;
    uint8_t temp_key[PUNCH_NOISE_HASH_LEN], o1[PUNCH_NOISE_HASH_LEN];

    hmac_blake2b(temp_key, ck, ikm, ikm_len, NULL, 0);
    hmac_blake2b(o1, temp_key, &one, 1, NULL, 0);
    hmac_blake2b(out2, temp_key, o1, sizeof o1, &two, 1);
    memcpy(out1, o1, sizeof o1);
    sodium_memzero(temp_key, sizeof temp_key);
    sodium_memzero(o1, sizeof o1);
}

int punch_noise_seal(const uint8_t key[PUNCH_NOISE_KEY_LEN], uint64_t n, const uint8_t *ad,
                     size_t ad_len, const uint8_t *in, size_t len, uint8_t *out)
{
    static const uint8_t empty[1];
    /* §12.3: 32 bits of zeros, then the 64-bit nonce little-endian. */
    uint8_t nonce[crypto_aead_chacha20poly1305_IETF_NPUBBYTES] = {0};
    unsigned long long clen = 0;

    put_le64(nonce + 4, n);
    crypto_aead_chacha20poly1305_ietf_encrypt(out, &clen, len ? in : empty, len,
                                              ad_len ? ad : empty, ad_len, NULL, nonce, key);
    return 0;
}

int punch_noise_open(const uint8_t key[PUNCH_NOISE_KEY_LEN], uint64_t n, const uint8_t *ad,
                     size_t ad_len, const uint8_t *in, size_t len, uint8_t *out)
{
    static const uint8_t empty[1];
    uint8_t nonce[crypto_aead_chacha20poly1305_IETF_NPUBBYTES] = {0};
    unsigned long long mlen = 0;
    uint8_t scratch[1];

    if (len < PUNCH_NOISE_TAG_LEN)
        return PUNCH_ERR_INTEGRITY;
    put_le64(nonce + 4, n);
    /* libsodium verifies the tag before it writes any plaintext. */
    if (crypto_aead_chacha20poly1305_ietf_decrypt(len > PUNCH_NOISE_TAG_LEN ? out : scratch, &mlen,
                                                  NULL, in, len, ad_len ? ad : empty, ad_len, nonce,
                                                  key) != 0) {
        if (len > PUNCH_NOISE_TAG_LEN)
            sodium_memzero(out, len - PUNCH_NOISE_TAG_LEN);
        return PUNCH_ERR_INTEGRITY;
    }
    return 0;
}

/* X25519, refusing an all-zero result (§12.1: a low-order public key). */
static int dh(uint8_t out[PUNCH_NOISE_DH_LEN], const uint8_t secret[PUNCH_NOISE_DH_LEN],
              const uint8_t public_key[PUNCH_NOISE_DH_LEN])
{
    if (crypto_scalarmult(out, secret, public_key) != 0 ||
        sodium_is_zero(out, PUNCH_NOISE_DH_LEN)) {
        sodium_memzero(out, PUNCH_NOISE_DH_LEN);
        return -1;
    }
    return 0;
}

/* §5.2 MixHash: h = HASH(h || data). */
static void mix_hash(punch_noise_handshake *hs, const uint8_t *data, size_t len)
{
    crypto_generichash_blake2b_state st;

    crypto_generichash_blake2b_init(&st, NULL, 0, PUNCH_NOISE_HASH_LEN);
    crypto_generichash_blake2b_update(&st, hs->h, sizeof hs->h);
    if (len)
        crypto_generichash_blake2b_update(&st, data, len);
    crypto_generichash_blake2b_final(&st, hs->h, sizeof hs->h);
    sodium_memzero(&st, sizeof st);
}

/* §5.2 MixKey with a DH output: ck, temp_k = HKDF(ck, ikm); the cipher key
 * is temp_k truncated to 32 bytes (HASHLEN is 64), nonce 0. */
static void mix_key(punch_noise_handshake *hs, const uint8_t ikm[PUNCH_NOISE_DH_LEN])
{
    uint8_t temp_k[PUNCH_NOISE_HASH_LEN];

    hkdf2(hs->ck, ikm, PUNCH_NOISE_DH_LEN, hs->ck, temp_k);
    memcpy(hs->cs.k, temp_k, PUNCH_NOISE_KEY_LEN);
    hs->cs.n = 0;
    hs->cs.has_key = true;
    sodium_memzero(temp_k, sizeof temp_k);
}

/* DH, then MixKey; -1 when the DH is all zeros. */
static int mix_dh(punch_noise_handshake *hs, const uint8_t secret[PUNCH_NOISE_DH_LEN],
                  const uint8_t public_key[PUNCH_NOISE_DH_LEN])
{
    uint8_t shared[PUNCH_NOISE_DH_LEN];

    if (dh(shared, secret, public_key) != 0)
        return -1;
    mix_key(hs, shared);
    sodium_memzero(shared, sizeof shared);
    return 0;
}

/* §5.2 EncryptAndHash: out gets len + 16 bytes (IK always has a key by the
 * time it encrypts; the no-key branch is the spec's, kept for clarity). */
static size_t encrypt_and_hash(punch_noise_handshake *hs, const uint8_t *pt, size_t len,
                               uint8_t *out)
{
    size_t out_len = len;

    if (hs->cs.has_key) {
        punch_noise_seal(hs->cs.k, hs->cs.n, hs->h, sizeof hs->h, pt, len, out);
        hs->cs.n++;
        out_len += PUNCH_NOISE_TAG_LEN;
    } else if (len) {
        memcpy(out, pt, len);
    }
    mix_hash(hs, out, out_len);
    return out_len;
}

/* §5.2 DecryptAndHash of ct[0..len) into out (len - 16 bytes). IK has a key
 * before anything it decrypts, so the spec's no-key branch (a plain copy of
 * len bytes, which would not fit out) is refused rather than written. */
static int decrypt_and_hash(punch_noise_handshake *hs, const uint8_t *ct, size_t len, uint8_t *out)
{
    if (!hs->cs.has_key)
        return PUNCH_ERR_INVAL;
    if (punch_noise_open(hs->cs.k, hs->cs.n, hs->h, sizeof hs->h, ct, len, out) != 0)
        return PUNCH_ERR_INTEGRITY;
    hs->cs.n++;
    mix_hash(hs, ct, len);
    return 0;
}

/* §5.3 Initialize(), common to both roles. */
static int init_common(punch_noise_handshake *hs, const punch_identity *static_identity,
                       const uint8_t *prologue, size_t prologue_len,
                       const uint8_t ephemeral_secret[PUNCH_NOISE_DH_LEN], punch_noise_role role)
{
    static const char name[] = PUNCH_NOISE_PROTOCOL_NAME;

    if (!hs || !static_identity || !ephemeral_secret || (!prologue && prologue_len) ||
        sodium_init() < 0)
        return PUNCH_ERR_INVAL;
    memset(hs, 0, sizeof *hs);
    /* The public half is derived again rather than trusted. */
    if (punch_identity_from_secret(&hs->s, static_identity->secret_key) != 0)
        goto fail;
    memcpy(hs->e_secret, ephemeral_secret, PUNCH_NOISE_DH_LEN);
    if (crypto_scalarmult_base(hs->e_public, hs->e_secret) != 0)
        goto fail;

    /* §5.2 InitializeSymmetric: a name of at most HASHLEN bytes is used as
     * h directly, zero-padded. */
    _Static_assert(sizeof name - 1 <= PUNCH_NOISE_HASH_LEN, "protocol name fits in h");
    memcpy(hs->h, name, sizeof name - 1);
    memcpy(hs->ck, hs->h, sizeof hs->ck);
    mix_hash(hs, prologue, prologue_len);
    hs->role = (uint8_t)role;
    return 0;

fail:
    punch_noise_handshake_wipe(hs);
    return PUNCH_ERR_INVAL;
}

int punch_noise_initiator_init(punch_noise_handshake *hs, const punch_identity *static_identity,
                               const uint8_t remote_static[PUNCH_NOISE_DH_LEN],
                               const uint8_t *prologue, size_t prologue_len,
                               const uint8_t ephemeral_secret[PUNCH_NOISE_DH_LEN])
{
    if (!remote_static)
        return PUNCH_ERR_INVAL;
    int rc = init_common(hs, static_identity, prologue, prologue_len, ephemeral_secret,
                         PUNCH_NOISE_INITIATOR);
    if (rc != 0)
        return rc;
    /* Pre-message "<- s": the responder's static key is hashed first. */
    memcpy(hs->rs, remote_static, PUNCH_NOISE_DH_LEN);
    hs->has_rs = true;
    mix_hash(hs, hs->rs, sizeof hs->rs);
    hs->step = PUNCH_NOISE_STEP_WRITE_1;
    return 0;
}

int punch_noise_responder_init(punch_noise_handshake *hs, const punch_identity *static_identity,
                               const uint8_t *prologue, size_t prologue_len,
                               const uint8_t ephemeral_secret[PUNCH_NOISE_DH_LEN])
{
    int rc = init_common(hs, static_identity, prologue, prologue_len, ephemeral_secret,
                         PUNCH_NOISE_RESPONDER);
    if (rc != 0)
        return rc;
    mix_hash(hs, hs->s.public_key, sizeof hs->s.public_key);
    hs->step = PUNCH_NOISE_STEP_READ_1;
    return 0;
}

/* The "e" token written (Noise §7.1): our ephemeral key, in the clear,
 * into the hash. */
static void write_e(punch_noise_handshake *hs, uint8_t *out)
{
    memcpy(out, hs->e_public, PUNCH_NOISE_DH_LEN);
    mix_hash(hs, hs->e_public, PUNCH_NOISE_DH_LEN);
}

/* ...and read: the peer's ephemeral key. */
static void read_e(punch_noise_handshake *hs, const uint8_t *msg)
{
    memcpy(hs->re, msg, PUNCH_NOISE_DH_LEN);
    mix_hash(hs, hs->re, PUNCH_NOISE_DH_LEN);
}

/* The last token of either message: the payload, and the step after. */
static int read_payload(punch_noise_handshake *hs, const uint8_t *in, size_t payload_len,
                        uint8_t *payload_out, int next_step)
{
    int rc = decrypt_and_hash(hs, in, payload_len + PUNCH_NOISE_TAG_LEN, payload_out);
    if (rc == 0)
        hs->step = next_step;
    return rc;
}

/* -> e, es, s, ss, payload */
static int write_1(punch_noise_handshake *hs, const uint8_t *payload, size_t payload_len,
                   uint8_t *out)
{
    write_e(hs, out);
    if (mix_dh(hs, hs->e_secret, hs->rs) != 0)
        return PUNCH_ERR_INVAL;
    encrypt_and_hash(hs, hs->s.public_key, PUNCH_NOISE_DH_LEN, out + MSG1_S_OFFSET);
    if (mix_dh(hs, hs->s.secret_key, hs->rs) != 0)
        return PUNCH_ERR_INVAL;
    encrypt_and_hash(hs, payload, payload_len, out + MSG1_PAYLOAD_OFFSET);
    hs->step = PUNCH_NOISE_STEP_READ_2;
    return 0;
}

/* <- e, ee, se, payload (responder side: se is DH(e, rs)) */
static int write_2(punch_noise_handshake *hs, const uint8_t *payload, size_t payload_len,
                   uint8_t *out)
{
    write_e(hs, out);
    if (mix_dh(hs, hs->e_secret, hs->re) != 0 || mix_dh(hs, hs->e_secret, hs->rs) != 0)
        return PUNCH_ERR_INVAL;
    encrypt_and_hash(hs, payload, payload_len, out + PUNCH_NOISE_DH_LEN);
    hs->step = PUNCH_NOISE_STEP_DONE;
    return 0;
}

int punch_noise_write_message(punch_noise_handshake *hs, const uint8_t *payload, size_t payload_len,
                              uint8_t *out, size_t cap, size_t *out_len)
{
    punch_noise_handshake tmp;
    size_t overhead, max_payload;
    int rc;

    if (!hs || !out_len || (!payload && payload_len))
        return PUNCH_ERR_INVAL;
    if (hs->step == PUNCH_NOISE_STEP_WRITE_1) {
        overhead = PUNCH_NOISE_MSG1_OVERHEAD;
        max_payload = PUNCH_NOISE_MAX_PAYLOAD1;
    } else if (hs->step == PUNCH_NOISE_STEP_WRITE_2) {
        overhead = PUNCH_NOISE_MSG2_OVERHEAD;
        max_payload = PUNCH_NOISE_MAX_PAYLOAD2;
    } else {
        return PUNCH_ERR_INVAL;
    }
    if (payload_len > max_payload)
        return PUNCH_ERR_INVAL;
    if (!out || cap < payload_len + overhead)
        return PUNCH_ERR_NOBUFS;

    /* Work on a copy so a failure leaves hs as it was. */
    tmp = *hs;
    if (hs->step == PUNCH_NOISE_STEP_WRITE_1)
        rc = write_1(&tmp, payload, payload_len, out);
    else
        rc = write_2(&tmp, payload, payload_len, out);
    if (rc == 0) {
        *hs = tmp;
        *out_len = payload_len + overhead;
    } else {
        sodium_memzero(out, payload_len + overhead);
    }
    sodium_memzero(&tmp, sizeof tmp);
    return rc;
}

/* <- e, es, s, ss, payload (as responder) */
static int read_1(punch_noise_handshake *hs, const uint8_t *msg, size_t payload_len,
                  uint8_t *payload_out)
{
    uint8_t rs[PUNCH_NOISE_DH_LEN];
    int rc;

    read_e(hs, msg);
    if (mix_dh(hs, hs->s.secret_key, hs->re) != 0)
        return PUNCH_ERR_MALFORMED;
    rc = decrypt_and_hash(hs, msg + MSG1_S_OFFSET, MSG1_S_LEN, rs);
    if (rc != 0)
        return rc;
    memcpy(hs->rs, rs, sizeof rs);
    hs->has_rs = true;
    if (mix_dh(hs, hs->s.secret_key, hs->rs) != 0)
        return PUNCH_ERR_MALFORMED;
    return read_payload(hs, msg + MSG1_PAYLOAD_OFFSET, payload_len, payload_out,
                        PUNCH_NOISE_STEP_WRITE_2);
}

/* <- e, ee, se, payload (as initiator: se is DH(s, re)) */
static int read_2(punch_noise_handshake *hs, const uint8_t *msg, size_t payload_len,
                  uint8_t *payload_out)
{
    read_e(hs, msg);
    if (mix_dh(hs, hs->e_secret, hs->re) != 0 || mix_dh(hs, hs->s.secret_key, hs->re) != 0)
        return PUNCH_ERR_MALFORMED;
    return read_payload(hs, msg + PUNCH_NOISE_DH_LEN, payload_len, payload_out,
                        PUNCH_NOISE_STEP_DONE);
}

int punch_noise_read_message(punch_noise_handshake *hs, const uint8_t *msg, size_t len,
                             uint8_t *payload_out, size_t cap, size_t *payload_len)
{
    static uint8_t nothing[1];
    punch_noise_handshake tmp;
    size_t overhead, plen;
    int rc;

    if (!hs || !payload_len || (!payload_out && cap) || (!msg && len))
        return PUNCH_ERR_INVAL;
    if (hs->step == PUNCH_NOISE_STEP_READ_1)
        overhead = PUNCH_NOISE_MSG1_OVERHEAD;
    else if (hs->step == PUNCH_NOISE_STEP_READ_2)
        overhead = PUNCH_NOISE_MSG2_OVERHEAD;
    else
        return PUNCH_ERR_INVAL;
    if (len < overhead || len > PUNCH_NOISE_MAX_MSG_LEN)
        return PUNCH_ERR_MALFORMED;
    plen = len - overhead;
    if (cap < plen)
        return PUNCH_ERR_NOBUFS;
    if (!payload_out)
        payload_out = nothing; /* plen is 0: libsodium still wants a pointer */

    tmp = *hs;
    if (hs->step == PUNCH_NOISE_STEP_READ_1)
        rc = read_1(&tmp, msg, plen, payload_out);
    else
        rc = read_2(&tmp, msg, plen, payload_out);
    if (rc == 0) {
        *hs = tmp;
        *payload_len = plen;
    } else if (plen) {
        sodium_memzero(payload_out, plen);
    }
    sodium_memzero(&tmp, sizeof tmp);
    return rc;
}

punch_noise_step punch_noise_get_step(const punch_noise_handshake *hs)
{
    return hs ? (punch_noise_step)hs->step : PUNCH_NOISE_STEP_NONE;
}

int punch_noise_remote_static(const punch_noise_handshake *hs, uint8_t out[PUNCH_NOISE_DH_LEN])
{
    if (!hs || !out)
        return PUNCH_ERR_INVAL;
    if (!hs->has_rs)
        return PUNCH_ERR_NOTFOUND;
    memcpy(out, hs->rs, PUNCH_NOISE_DH_LEN);
    return 0;
}

int punch_noise_handshake_hash(const punch_noise_handshake *hs, uint8_t out[PUNCH_NOISE_HASH_LEN])
{
    if (!hs || !out || (hs->step != PUNCH_NOISE_STEP_DONE && hs->step != PUNCH_NOISE_STEP_SPLIT))
        return PUNCH_ERR_INVAL;
    memcpy(out, hs->h, PUNCH_NOISE_HASH_LEN);
    return 0;
}

int punch_noise_split(punch_noise_handshake *hs, punch_noise_cipher *send, punch_noise_cipher *recv)
{
    uint8_t k1[PUNCH_NOISE_HASH_LEN], k2[PUNCH_NOISE_HASH_LEN];

    if (!hs || !send || !recv || send == recv || hs->step != PUNCH_NOISE_STEP_DONE)
        return PUNCH_ERR_INVAL;
    /* §5.2 Split: HKDF(ck, zero-length), each output truncated to 32 bytes;
     * the first encrypts initiator -> responder. */
    hkdf2(hs->ck, NULL, 0, k1, k2);
    bool initiator = hs->role == PUNCH_NOISE_INITIATOR;
    memset(send, 0, sizeof *send);
    memset(recv, 0, sizeof *recv);
    memcpy(send->k, initiator ? k1 : k2, PUNCH_NOISE_KEY_LEN);
    memcpy(recv->k, initiator ? k2 : k1, PUNCH_NOISE_KEY_LEN);
    send->has_key = recv->has_key = true;
    sodium_memzero(k1, sizeof k1);
    sodium_memzero(k2, sizeof k2);

    sodium_memzero(hs->ck, sizeof hs->ck);
    punch_noise_cipher_wipe(&hs->cs);
    punch_identity_wipe(&hs->s);
    sodium_memzero(hs->e_secret, sizeof hs->e_secret);
    sodium_memzero(hs->e_public, sizeof hs->e_public);
    sodium_memzero(hs->re, sizeof hs->re);
    hs->step = PUNCH_NOISE_STEP_SPLIT;
    return 0;
}

void punch_noise_handshake_wipe(punch_noise_handshake *hs)
{
    if (hs)
        sodium_memzero(hs, sizeof *hs);
}

int punch_noise_cipher_encrypt(punch_noise_cipher *cs, const uint8_t *ad, size_t ad_len,
                               const uint8_t *plaintext, size_t len, uint8_t *out, size_t cap,
                               size_t *out_len)
{
    if (!cs || !out_len || !cs->has_key || (!ad && ad_len) || (!plaintext && len) ||
        len > PUNCH_NOISE_MAX_MSG_LEN - PUNCH_NOISE_TAG_LEN)
        return PUNCH_ERR_INVAL;
    if (!out || cap < len + PUNCH_NOISE_TAG_LEN)
        return PUNCH_ERR_NOBUFS;
    if (cs->n == PUNCH_NOISE_NONCE_MAX)
        return PUNCH_ERR_LIMIT;
    punch_noise_seal(cs->k, cs->n, ad, ad_len, plaintext, len, out);
    cs->n++;
    *out_len = len + PUNCH_NOISE_TAG_LEN;
    return 0;
}

int punch_noise_cipher_decrypt(punch_noise_cipher *cs, const uint8_t *ad, size_t ad_len,
                               const uint8_t *ciphertext, size_t len, uint8_t *out, size_t cap,
                               size_t *out_len)
{
    if (!cs || !out_len || !cs->has_key || (!ad && ad_len) || (!ciphertext && len))
        return PUNCH_ERR_INVAL;
    if (len < PUNCH_NOISE_TAG_LEN || len > PUNCH_NOISE_MAX_MSG_LEN)
        return PUNCH_ERR_MALFORMED;
    if ((!out && len > PUNCH_NOISE_TAG_LEN) || cap < len - PUNCH_NOISE_TAG_LEN)
        return PUNCH_ERR_NOBUFS;
    if (cs->n == PUNCH_NOISE_NONCE_MAX)
        return PUNCH_ERR_LIMIT;
    if (punch_noise_open(cs->k, cs->n, ad, ad_len, ciphertext, len, out) != 0)
        return PUNCH_ERR_INTEGRITY;
    cs->n++;
    *out_len = len - PUNCH_NOISE_TAG_LEN;
    return 0;
}

void punch_noise_cipher_wipe(punch_noise_cipher *cs)
{
    if (cs)
        sodium_memzero(cs, sizeof *cs);
}
