/* SPDX-License-Identifier: MIT */
/*
 * The Noise transport over UDP (SPEC.md §4): the two cipher states of a
 * finished IK handshake (crypto/noise.h), datagram framing with an explicit
 * counter so datagrams may be lost or reordered, a sliding replay window,
 * and WireGuard's rekey and expiry limits. Sans-I/O and pure: time comes in
 * as now_ms (any monotonic millisecond clock, the same one for a session).
 *
 * A data datagram (all integers little-endian, like the Noise nonce):
 *
 *     0      1          4                8                16
 *     +------+----------+----------------+----------------+--------------+---------+
 *     | 0x04 | 00 00 00 | receiver index | counter        | ciphertext   | tag     |
 *     +------+----------+----------------+----------------+--------------+---------+
 *       type   reserved   4 bytes          8 bytes          payload_len    16 bytes
 *
 * PUNCH_TRANSPORT_OVERHEAD = 32 bytes on top of the payload. The counter is
 * the ChaChaPoly nonce (Noise §5.1, §12.3) and the 16-byte header is the
 * AEAD's associated data, so every byte of the datagram is authenticated.
 * The type byte 0x04 is outside the RFC 7983 ranges of STUN (0-3), DTLS
 * (20-63) and TURN ChannelData (64-79), so the same socket can carry all.
 * The receiver index is the number the receiving side chose for this session
 * (exchanged by the caller, e.g. in the handshake payloads; 0 when unused):
 * it lets the receiver find the session without trial decryption, also
 * after the sender's address changed.
 *
 * The receiver never delivers a datagram it could not authenticate: the
 * replay window moves only after the tag verified.
 *
 * The AEAD is ChaCha20-Poly1305 (the handshake's) unless the caller
 * switches the session to AES-256-GCM (punch_transport_use_cipher) once
 * both sides agreed on it in the handshake. Its nonce is Noise's for
 * AESGCM (§12.4): 32 bits of zeros, then the counter big-endian. The key
 * schedule and GHASH powers are computed once per session, not per datagram.
 */
#ifndef PUNCH_CRYPTO_TRANSPORT_H
#define PUNCH_CRYPTO_TRANSPORT_H

#include "crypto/noise.h"
#include "punch/punch.h"

#define PUNCH_TRANSPORT_TYPE       0x04
#define PUNCH_TRANSPORT_HEADER_LEN 16
#define PUNCH_TRANSPORT_OVERHEAD   (PUNCH_TRANSPORT_HEADER_LEN + PUNCH_NOISE_TAG_LEN) /* 32 */
/* Noise §3: the encrypted part (ciphertext + tag) is a Noise message of at
 * most 65535 bytes. */
#define PUNCH_TRANSPORT_MAX_PAYLOAD (PUNCH_NOISE_MAX_MSG_LEN - PUNCH_NOISE_TAG_LEN) /* 65519 */
#define PUNCH_TRANSPORT_MAX_DATAGRAM                                                               \
    (PUNCH_TRANSPORT_MAX_PAYLOAD + PUNCH_TRANSPORT_OVERHEAD) /* 65551 */

/* WireGuard whitepaper (Donenfeld, "WireGuard: Next Generation Kernel
 * Network Tunnel", §6.1 protocol constants): start a new handshake after
 * 2^60 messages or 120 s; refuse to send (or accept) after 2^64 - 2^13 - 1
 * messages or 180 s. Both are far below the Noise nonce limit of 2^64 - 1. */
#define PUNCH_REKEY_AFTER_MESSAGES  (UINT64_C(1) << 60)
#define PUNCH_REJECT_AFTER_MESSAGES (UINT64_MAX - (UINT64_C(1) << 13))
#define PUNCH_REKEY_AFTER_TIME_MS   UINT64_C(120000)
#define PUNCH_REJECT_AFTER_TIME_MS  UINT64_C(180000)

/* RFC 6479 replay window: a ring of 64-bit words; one word is kept spare so
 * sliding forward only clears whole words. 32 words = 2048 bits, of which
 * the last PUNCH_REPLAY_WINDOW counters are tracked. */
#define PUNCH_REPLAY_WORDS  32
#define PUNCH_REPLAY_WINDOW ((PUNCH_REPLAY_WORDS - 1) * 64) /* 1984 */

typedef struct punch_replay {
    uint64_t next; /* 1 + the highest counter accepted; 0 before the first */
    uint64_t bits[PUNCH_REPLAY_WORDS];
} punch_replay;

/* Would counter be fresh: never accepted, and newer than next -
 * PUNCH_REPLAY_WINDOW? Changes nothing. */
bool punch_replay_check(const punch_replay *r, uint64_t counter);
/* Record counter as accepted (call only after it passed check and its
 * datagram authenticated); slides the window when it is the newest. */
void punch_replay_update(punch_replay *r, uint64_t counter);

/* Dropped datagrams by reason, for the caller's statistics. */
typedef struct punch_transport_counters {
    uint64_t delivered; /* authenticated and fresh */
    uint64_t malformed; /* not a data datagram, bad length, counter out of range */
    uint64_t replayed;  /* duplicate or older than the window */
    uint64_t forged;    /* tag did not verify */
    uint64_t expired;   /* arrived after PUNCH_REJECT_AFTER_TIME_MS */
} punch_transport_counters;

/* One direction pair of a session. Fields are visible so the caller can own
 * the struct; change them only through the functions below. */
/* libsodium's crypto_aead_aes256gcm_state: 512 bytes, 16-byte aligned
 * (checked where it is used, so this header needs no sodium.h). */
#define PUNCH_AESGCM_STATE_LEN 512

typedef struct punch_transport {
    punch_noise_cipher send; /* send.n is the next counter to send */
    punch_noise_cipher recv; /* its n is unused: counters come in the datagrams */
    punch_cipher cipher;     /* PUNCH_CIPHER_CHACHA20_POLY1305 until use_cipher */
    /* AES-256-GCM: the expanded keys of send.k and recv.k */
    _Alignas(16) uint8_t aes_send[PUNCH_AESGCM_STATE_LEN];
    _Alignas(16) uint8_t aes_recv[PUNCH_AESGCM_STATE_LEN];
    punch_replay replay;
    uint64_t established_ms;
    uint32_t local_index;  /* what the peer puts in datagrams to us */
    uint32_t remote_index; /* what we put in datagrams to the peer */
    bool initiator;        /* this side sent handshake message 1 */
    punch_transport_counters counters;
} punch_transport;

/* Take the keys of a finished handshake (punch_noise_split: the handshake's
 * secrets are wiped) and start the session's clocks at now_ms.
 * Returns 0 or PUNCH_ERR_INVAL (handshake not finished, or NULL). */
int punch_transport_init(punch_transport *t, punch_noise_handshake *hs, uint64_t now_ms,
                         uint32_t local_index, uint32_t remote_index);

/* Can this machine run AES-256-GCM fast and safely (AES-NI and PCLMUL, as
 * libsodium checks)? Only then is it offered. */
bool punch_transport_aes_available(void);

/* Seal and open this session's datagrams with cipher from now on (call
 * right after punch_transport_init, before any datagram). Returns 0, or
 * PUNCH_ERR_INVAL (no keys, an unknown cipher, or AES-256-GCM on a machine
 * without it). */
int punch_transport_use_cipher(punch_transport *t, punch_cipher cipher);

/* Encrypt payload[0..len) into one datagram in out[0..cap); *out_len is
 * len + PUNCH_TRANSPORT_OVERHEAD. out must not overlap payload.
 * Returns 0;
 *   PUNCH_ERR_LIMIT  the session may send no more (PUNCH_REJECT_AFTER_MESSAGES
 *                    sent or PUNCH_REJECT_AFTER_TIME_MS passed): handshake again;
 *   PUNCH_ERR_NOBUFS out is too small;
 *   PUNCH_ERR_INVAL  len over PUNCH_TRANSPORT_MAX_PAYLOAD, no keys, or NULL.
 * Only success uses up a counter. */
int punch_transport_encrypt(punch_transport *t, uint64_t now_ms, const uint8_t *payload, size_t len,
                            uint8_t *out, size_t cap, size_t *out_len);

/* Authenticate and decrypt one received datagram into out[0..cap); *out_len
 * is the payload length (len - PUNCH_TRANSPORT_OVERHEAD). out must not
 * overlap dgram. On any error nothing is delivered (out holds no plaintext)
 * and the replay window is unchanged; the drop is counted in t->counters.
 * Returns 0;
 *   PUNCH_ERR_MALFORMED not a data datagram (type, reserved bytes, length)
 *                       or a counter >= PUNCH_REJECT_AFTER_MESSAGES;
 *   PUNCH_ERR_NOTFOUND  its receiver index is not t->local_index;
 *   PUNCH_ERR_LIMIT     the session expired (PUNCH_REJECT_AFTER_TIME_MS);
 *   PUNCH_ERR_NOBUFS    out is too small;
 *   PUNCH_ERR_INTEGRITY a replay (duplicate or too old) or a bad tag;
 *   PUNCH_ERR_INVAL     no keys, or NULL. */
int punch_transport_decrypt(punch_transport *t, uint64_t now_ms, const uint8_t *dgram, size_t len,
                            uint8_t *out, size_t cap, size_t *out_len);

/* Should this session be replaced by a new handshake now? True from
 * PUNCH_REKEY_AFTER_TIME_MS after establishment (at exactly that time
 * included), or once PUNCH_REKEY_AFTER_MESSAGES were sent or a counter that
 * high was received. As in WireGuard, letting only the initiator act on the
 * time trigger keeps both sides from starting a handshake at once. */
bool punch_transport_needs_rekey(const punch_transport *t, uint64_t now_ms);

/* Has the session passed PUNCH_REJECT_AFTER_TIME_MS (at exactly that time
 * included)? It then neither sends nor receives. */
bool punch_transport_expired(const punch_transport *t, uint64_t now_ms);

/* The receiver index of a data datagram, to find its session.
 * Returns 0 or PUNCH_ERR_MALFORMED (not a data datagram), PUNCH_ERR_INVAL. */
int punch_transport_peek_index(const uint8_t *dgram, size_t len, uint32_t *receiver_index);

/* Clear the keys (NULL-safe). */
void punch_transport_wipe(punch_transport *t);

#endif
