/* SPDX-License-Identifier: MIT */
/*
 * The Noise IK handshake, Noise_IK_25519_ChaChaPoly_BLAKE2b (Noise Protocol
 * Framework, revision 34), on libsodium (SPEC.md §4):
 *
 *     <- s
 *     ...
 *     -> e, es, s, ss      message 1: 32 + (32 + 16) + (payload + 16) bytes
 *     <- e, ee, se         message 2: 32 + (payload + 16) bytes
 *
 * Sans-I/O and pure: the caller passes in the ephemeral secret (32 random
 * bytes it drew) and takes the messages out of its own buffers. Nothing here
 * allocates; the structs are the caller's, and *_wipe() clears their secrets.
 *
 * A message that fails to read (bad MAC, wrong length, low-order key) leaves
 * the handshake exactly as it was, so a forged or stray datagram cannot
 * break a handshake in progress: the caller drops it and waits for the real
 * one. The responder learns the initiator's static key from message 1 and
 * must check it (punch_noise_remote_static) before it writes message 2.
 *
 * The transport keys that punch_noise_split() gives are used by
 * crypto/transport.h, which frames them for UDP.
 */
#ifndef PUNCH_CRYPTO_NOISE_H
#define PUNCH_CRYPTO_NOISE_H

#include "crypto/identity.h"
#include "punch/punch.h"

#define PUNCH_NOISE_PROTOCOL_NAME "Noise_IK_25519_ChaChaPoly_BLAKE2b"

#define PUNCH_NOISE_DH_LEN   32 /* Noise §12.1: X25519 DHLEN */
#define PUNCH_NOISE_HASH_LEN 64 /* Noise §12.8: BLAKE2b HASHLEN */
#define PUNCH_NOISE_KEY_LEN  32 /* Noise §4.2: cipher keys are 32 bytes */
#define PUNCH_NOISE_TAG_LEN  16 /* Noise §4.2: ENCRYPT adds a 16-byte tag */
/* Noise §3: a Noise message is at most 65535 bytes. */
#define PUNCH_NOISE_MAX_MSG_LEN 65535u

/* Bytes a handshake message adds to its payload. */
#define PUNCH_NOISE_MSG1_OVERHEAD                                                                  \
    (PUNCH_NOISE_DH_LEN + PUNCH_NOISE_DH_LEN + PUNCH_NOISE_TAG_LEN + PUNCH_NOISE_TAG_LEN) /* 96 */
#define PUNCH_NOISE_MSG2_OVERHEAD (PUNCH_NOISE_DH_LEN + PUNCH_NOISE_TAG_LEN)              /* 48 */
#define PUNCH_NOISE_MAX_PAYLOAD1  (PUNCH_NOISE_MAX_MSG_LEN - PUNCH_NOISE_MSG1_OVERHEAD)
#define PUNCH_NOISE_MAX_PAYLOAD2  (PUNCH_NOISE_MAX_MSG_LEN - PUNCH_NOISE_MSG2_OVERHEAD)

/* Noise §5.1: nonce 2^64-1 is reserved and never used to encrypt. */
#define PUNCH_NOISE_NONCE_MAX UINT64_MAX

/* A CipherState (Noise §5.1): a key and the next nonce. */
typedef struct punch_noise_cipher {
    uint8_t k[PUNCH_NOISE_KEY_LEN];
    uint64_t n;
    bool has_key;
} punch_noise_cipher;

typedef enum punch_noise_role {
    PUNCH_NOISE_INITIATOR = 1,
    PUNCH_NOISE_RESPONDER = 2,
} punch_noise_role;

/* What the handshake expects next. */
typedef enum punch_noise_step {
    PUNCH_NOISE_STEP_NONE = 0, /* not initialised, or wiped */
    PUNCH_NOISE_STEP_WRITE_1,  /* initiator: write message 1 */
    PUNCH_NOISE_STEP_READ_1,   /* responder: read message 1 */
    PUNCH_NOISE_STEP_WRITE_2,  /* responder: check the initiator's key, write message 2 */
    PUNCH_NOISE_STEP_READ_2,   /* initiator: read message 2 */
    PUNCH_NOISE_STEP_DONE,     /* both messages done: split */
    PUNCH_NOISE_STEP_SPLIT,    /* keys handed out; only the hash and remote key remain */
} punch_noise_step;

/* A HandshakeState (Noise §5.3). The fields are visible so the caller can
 * own the struct; change them only through the functions below. */
typedef struct punch_noise_handshake {
    uint8_t ck[PUNCH_NOISE_HASH_LEN]; /* chaining key */
    uint8_t h[PUNCH_NOISE_HASH_LEN];  /* handshake hash */
    punch_noise_cipher cs;
    punch_identity s; /* our static key pair */
    uint8_t e_secret[PUNCH_NOISE_DH_LEN];
    uint8_t e_public[PUNCH_NOISE_DH_LEN];
    uint8_t rs[PUNCH_NOISE_DH_LEN]; /* their static key */
    uint8_t re[PUNCH_NOISE_DH_LEN]; /* their ephemeral key */
    bool has_rs;
    uint8_t role; /* punch_noise_role */
    uint8_t step; /* punch_noise_step */
} punch_noise_handshake;

/* Start a handshake as initiator towards the responder whose static public
 * key is remote_static (IK: known in advance, e.g. pinned or from the server).
 * prologue (may be NULL when prologue_len is 0) must be the same bytes on
 * both sides or message 1 will not decrypt; ephemeral_secret is 32 fresh
 * random bytes, used for this handshake only and never again.
 * Returns 0 or PUNCH_ERR_INVAL (a NULL argument, a degenerate key, or
 * libsodium failed to initialise). */
int punch_noise_initiator_init(punch_noise_handshake *hs, const punch_identity *static_identity,
                               const uint8_t remote_static[PUNCH_NOISE_DH_LEN],
                               const uint8_t *prologue, size_t prologue_len,
                               const uint8_t ephemeral_secret[PUNCH_NOISE_DH_LEN]);

/* Start a handshake as responder: the initiator's key comes with message 1.
 * Arguments and returns as punch_noise_initiator_init. */
int punch_noise_responder_init(punch_noise_handshake *hs, const punch_identity *static_identity,
                               const uint8_t *prologue, size_t prologue_len,
                               const uint8_t ephemeral_secret[PUNCH_NOISE_DH_LEN]);

/* Write the next handshake message (message 1 as initiator, message 2 as
 * responder) carrying payload (encrypted; NULL when len is 0) into
 * out[0..cap); *out_len is its length: payload_len + PUNCH_NOISE_MSG1_OVERHEAD
 * or + PUNCH_NOISE_MSG2_OVERHEAD. out must not overlap payload.
 * Returns 0;
 *   PUNCH_ERR_NOBUFS   out is too small (nothing changed);
 *   PUNCH_ERR_INVAL    not this side's turn to write, a NULL argument, a
 *                      payload over PUNCH_NOISE_MAX_PAYLOAD1/2, or a DH with
 *                      the remote key gave zero (the key is degenerate).
 * On any error the handshake is unchanged. */
int punch_noise_write_message(punch_noise_handshake *hs, const uint8_t *payload, size_t payload_len,
                              uint8_t *out, size_t cap, size_t *out_len);

/* Read the next handshake message (message 1 as responder, message 2 as
 * initiator) from msg[0..len); its decrypted payload goes to
 * payload_out[0..cap) and its length to *payload_len. payload_out may be NULL
 * when cap is 0. The two buffers must not overlap.
 * Returns 0;
 *   PUNCH_ERR_INTEGRITY a MAC did not verify: forged, corrupted, encrypted to
 *                       another static key, or a different prologue;
 *   PUNCH_ERR_MALFORMED too short or too long for this message, or a public
 *                       key that gives an all-zero DH (low order);
 *   PUNCH_ERR_NOBUFS    payload_out is too small for the payload;
 *   PUNCH_ERR_INVAL     not this side's turn to read, or a NULL argument.
 * On any error the handshake is unchanged and payload_out holds no data:
 * drop the datagram and keep waiting. */
int punch_noise_read_message(punch_noise_handshake *hs, const uint8_t *msg, size_t len,
                             uint8_t *payload_out, size_t cap, size_t *payload_len);

/* The step the handshake is at (what it expects next). */
punch_noise_step punch_noise_get_step(const punch_noise_handshake *hs);

/* The peer's static public key: the responder knows it once message 1 was
 * read, and must compare it with the pinned or known key before writing
 * message 2 (SPEC.md §4); the initiator knows it from the start.
 * Returns 0 or PUNCH_ERR_NOTFOUND (not known yet), PUNCH_ERR_INVAL (NULL). */
int punch_noise_remote_static(const punch_noise_handshake *hs, uint8_t out[PUNCH_NOISE_DH_LEN]);

/* The handshake hash h (Noise §11.2, channel binding), the same on both
 * sides, once both messages are done (and after the split).
 * Returns 0 or PUNCH_ERR_INVAL (handshake not finished, or a NULL). */
int punch_noise_handshake_hash(const punch_noise_handshake *hs, uint8_t out[PUNCH_NOISE_HASH_LEN]);

/* Noise §5.2 Split(): the two transport cipher states, already oriented for
 * this side (send is what this side encrypts with, recv what it decrypts
 * with). Then wipes the handshake's secrets (chaining key, key, ephemeral
 * and static secrets); the hash and the remote static key stay readable.
 * Returns 0 or PUNCH_ERR_INVAL (handshake not finished, already split, NULL). */
int punch_noise_split(punch_noise_handshake *hs, punch_noise_cipher *send,
                      punch_noise_cipher *recv);

/* Clear every secret of a handshake (NULL-safe); the struct is then unusable
 * until initialised again. */
void punch_noise_handshake_wipe(punch_noise_handshake *hs);

/* Noise §5.1 EncryptWithAd / DecryptWithAd on a cipher state, using and then
 * incrementing cs->n: out[0..len + 16) for encrypt, out[0..len - 16) for
 * decrypt. These are the in-order Noise transport; crypto/transport.h is the
 * UDP one with explicit counters.
 * Return 0; PUNCH_ERR_NOBUFS (out too small), PUNCH_ERR_INVAL (no key, NULL,
 * or len over PUNCH_NOISE_MAX_MSG_LEN), PUNCH_ERR_LIMIT (the nonce reached
 * 2^64-1, Noise §5.1), and for decrypt PUNCH_ERR_MALFORMED (shorter than a
 * tag or over PUNCH_NOISE_MAX_MSG_LEN) and PUNCH_ERR_INTEGRITY (bad MAC, in
 * which case n does not move). */
int punch_noise_cipher_encrypt(punch_noise_cipher *cs, const uint8_t *ad, size_t ad_len,
                               const uint8_t *plaintext, size_t len, uint8_t *out, size_t cap,
                               size_t *out_len);
int punch_noise_cipher_decrypt(punch_noise_cipher *cs, const uint8_t *ad, size_t ad_len,
                               const uint8_t *ciphertext, size_t len, uint8_t *out, size_t cap,
                               size_t *out_len);

/* The AEAD itself with an explicit nonce (Noise §12.3 ChaChaPoly: 32 zero
 * bits, then n as 64-bit little-endian): out receives len + 16 bytes for
 * seal, len - 16 for open (len >= 16, checked by the caller). out must not
 * overlap in. open returns 0 or PUNCH_ERR_INTEGRITY, and zeroes out[] on
 * failure; seal always returns 0. */
int punch_noise_seal(const uint8_t key[PUNCH_NOISE_KEY_LEN], uint64_t n, const uint8_t *ad,
                     size_t ad_len, const uint8_t *in, size_t len, uint8_t *out);
int punch_noise_open(const uint8_t key[PUNCH_NOISE_KEY_LEN], uint64_t n, const uint8_t *ad,
                     size_t ad_len, const uint8_t *in, size_t len, uint8_t *out);

/* Clear a cipher state (NULL-safe). */
void punch_noise_cipher_wipe(punch_noise_cipher *cs);

#endif
