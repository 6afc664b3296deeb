/* SPDX-License-Identifier: MIT */
/* The Noise transport over UDP: see transport.h. */
#include "crypto/transport.h"

#include <string.h>

#include <sodium.h>

#define WORD_BITS 64

_Static_assert(sizeof(crypto_aead_aes256gcm_state) == PUNCH_AESGCM_STATE_LEN,
               "punch_transport holds libsodium's AES-256-GCM state");
_Static_assert(_Alignof(crypto_aead_aes256gcm_state) <= 16, "and its alignment");

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t get_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t *replay_word(punch_replay *r, uint64_t counter)
{
    return &r->bits[(counter / WORD_BITS) % PUNCH_REPLAY_WORDS];
}

bool punch_replay_check(const punch_replay *r, uint64_t counter)
{
    if (counter >= r->next)
        return true; /* newer than anything seen */
    if (r->next - counter > PUNCH_REPLAY_WINDOW)
        return false; /* fell out of the window */
    uint64_t word = r->bits[(counter / WORD_BITS) % PUNCH_REPLAY_WORDS];
    return !((word >> (counter % WORD_BITS)) & 1);
}

void punch_replay_update(punch_replay *r, uint64_t counter)
{
    if (counter < r->next && r->next - counter > PUNCH_REPLAY_WINDOW)
        return; /* too old: its word now holds newer counters */
    if (counter >= r->next) {
        /* Slide: the words between the old newest and this one hold counters
         * that were never seen, or stale ones from a lap ago: clear them. */
        if (r->next > 0) {
            uint64_t from = (r->next - 1) / WORD_BITS, to = counter / WORD_BITS;
            if (to - from >= PUNCH_REPLAY_WORDS) {
                memset(r->bits, 0, sizeof r->bits);
            } else {
                for (uint64_t w = from + 1; w <= to; w++)
                    r->bits[w % PUNCH_REPLAY_WORDS] = 0;
            }
        }
        r->next = counter + 1;
    }
    *replay_word(r, counter) |= UINT64_C(1) << (counter % WORD_BITS);
}

int punch_transport_init(punch_transport *t, punch_noise_handshake *hs, uint64_t now_ms,
                         uint32_t local_index, uint32_t remote_index)
{
    if (!t || !hs)
        return PUNCH_ERR_INVAL;
    bool initiator = hs->role == PUNCH_NOISE_INITIATOR;
    punch_noise_cipher send, recv;
    if (punch_noise_split(hs, &send, &recv) != 0)
        return PUNCH_ERR_INVAL;
    memset(t, 0, sizeof *t);
    t->send = send;
    t->recv = recv;
    punch_noise_cipher_wipe(&send);
    punch_noise_cipher_wipe(&recv);
    t->established_ms = now_ms;
    t->local_index = local_index;
    t->remote_index = remote_index;
    t->initiator = initiator;
    return 0;
}

bool punch_transport_aes_available(void)
{
    return sodium_init() >= 0 && crypto_aead_aes256gcm_is_available();
}

int punch_transport_use_cipher(punch_transport *t, punch_cipher cipher)
{
    if (!t || !t->send.has_key || !t->recv.has_key)
        return PUNCH_ERR_INVAL;
    if (cipher == PUNCH_CIPHER_CHACHA20_POLY1305) {
        t->cipher = cipher;
        return 0;
    }
    if (cipher != PUNCH_CIPHER_AES256_GCM || !punch_transport_aes_available())
        return PUNCH_ERR_INVAL;
    crypto_aead_aes256gcm_beforenm((crypto_aead_aes256gcm_state *)t->aes_send, t->send.k);
    crypto_aead_aes256gcm_beforenm((crypto_aead_aes256gcm_state *)t->aes_recv, t->recv.k);
    t->cipher = cipher;
    return 0;
}

/* Noise §12.4: the AESGCM nonce is 32 bits of zeros, then n big-endian. */
static void aesgcm_nonce(uint8_t nonce[crypto_aead_aes256gcm_NPUBBYTES], uint64_t n)
{
    memset(nonce, 0, 4);
    for (int i = 0; i < 8; i++)
        nonce[4 + i] = (uint8_t)(n >> (56 - 8 * i));
}

/* Seal payload[0..len) under the session's cipher with counter n. */
static void seal(const punch_transport *t, uint64_t n, const uint8_t *ad, const uint8_t *in,
                 size_t len, uint8_t *out)
{
    static const uint8_t empty[1];
    uint8_t nonce[crypto_aead_aes256gcm_NPUBBYTES];
    unsigned long long clen;

    if (t->cipher != PUNCH_CIPHER_AES256_GCM) {
        punch_noise_seal(t->send.k, n, ad, PUNCH_TRANSPORT_HEADER_LEN, in, len, out);
        return;
    }
    aesgcm_nonce(nonce, n);
    crypto_aead_aes256gcm_encrypt_afternm(out, &clen, len ? in : empty, len, ad,
                                          PUNCH_TRANSPORT_HEADER_LEN, NULL, nonce,
                                          (const crypto_aead_aes256gcm_state *)t->aes_send);
}

/* Open ct[0..len) (tag included) into out; 0 or PUNCH_ERR_INTEGRITY, and
 * then out holds no plaintext. */
static int open_sealed(const punch_transport *t, uint64_t n, const uint8_t *ad, const uint8_t *ct,
                       size_t len, uint8_t *out)
{
    uint8_t nonce[crypto_aead_aes256gcm_NPUBBYTES];
    unsigned long long mlen;

    if (t->cipher != PUNCH_CIPHER_AES256_GCM)
        return punch_noise_open(t->recv.k, n, ad, PUNCH_TRANSPORT_HEADER_LEN, ct, len, out);
    aesgcm_nonce(nonce, n);
    if (crypto_aead_aes256gcm_decrypt_afternm(out, &mlen, NULL, ct, len, ad,
                                              PUNCH_TRANSPORT_HEADER_LEN, nonce,
                                              (const crypto_aead_aes256gcm_state *)t->aes_recv) !=
        0) {
        sodium_memzero(out, len - PUNCH_NOISE_TAG_LEN);
        return PUNCH_ERR_INTEGRITY;
    }
    return 0;
}

static uint64_t age_ms(const punch_transport *t, uint64_t now_ms)
{
    return now_ms > t->established_ms ? now_ms - t->established_ms : 0;
}

bool punch_transport_expired(const punch_transport *t, uint64_t now_ms)
{
    return !t || age_ms(t, now_ms) >= PUNCH_REJECT_AFTER_TIME_MS;
}

bool punch_transport_needs_rekey(const punch_transport *t, uint64_t now_ms)
{
    return !t || t->send.n >= PUNCH_REKEY_AFTER_MESSAGES ||
           t->replay.next > PUNCH_REKEY_AFTER_MESSAGES ||
           age_ms(t, now_ms) >= PUNCH_REKEY_AFTER_TIME_MS;
}

int punch_transport_encrypt(punch_transport *t, uint64_t now_ms, const uint8_t *payload, size_t len,
                            uint8_t *out, size_t cap, size_t *out_len)
{
    if (!t || !out_len || !t->send.has_key || (!payload && len) ||
        len > PUNCH_TRANSPORT_MAX_PAYLOAD)
        return PUNCH_ERR_INVAL;
    if (t->send.n >= PUNCH_REJECT_AFTER_MESSAGES || punch_transport_expired(t, now_ms))
        return PUNCH_ERR_LIMIT;
    if (!out || cap < len + PUNCH_TRANSPORT_OVERHEAD)
        return PUNCH_ERR_NOBUFS;

    out[0] = PUNCH_TRANSPORT_TYPE;
    out[1] = out[2] = out[3] = 0;
    put_le32(out + 4, t->remote_index);
    put_le64(out + 8, t->send.n);
    seal(t, t->send.n, out, payload, len, out + PUNCH_TRANSPORT_HEADER_LEN);
    t->send.n++;
    *out_len = len + PUNCH_TRANSPORT_OVERHEAD;
    return 0;
}

/* The framing checks shared by decrypt and peek. */
static bool is_data_datagram(const uint8_t *dgram, size_t len)
{
    return dgram && len >= PUNCH_TRANSPORT_OVERHEAD && len <= PUNCH_TRANSPORT_MAX_DATAGRAM &&
           dgram[0] == PUNCH_TRANSPORT_TYPE && dgram[1] == 0 && dgram[2] == 0 && dgram[3] == 0;
}

int punch_transport_peek_index(const uint8_t *dgram, size_t len, uint32_t *receiver_index)
{
    if (!receiver_index)
        return PUNCH_ERR_INVAL;
    if (!is_data_datagram(dgram, len))
        return PUNCH_ERR_MALFORMED;
    *receiver_index = get_le32(dgram + 4);
    return 0;
}

int punch_transport_decrypt(punch_transport *t, uint64_t now_ms, const uint8_t *dgram, size_t len,
                            uint8_t *out, size_t cap, size_t *out_len)
{
    static uint8_t nothing[1];

    if (!t || !out_len || !t->recv.has_key || (!dgram && len))
        return PUNCH_ERR_INVAL;
    if (!is_data_datagram(dgram, len)) {
        t->counters.malformed++;
        return PUNCH_ERR_MALFORMED;
    }
    if (get_le32(dgram + 4) != t->local_index)
        return PUNCH_ERR_NOTFOUND;
    if (punch_transport_expired(t, now_ms)) {
        t->counters.expired++;
        return PUNCH_ERR_LIMIT;
    }
    size_t plen = len - PUNCH_TRANSPORT_OVERHEAD;
    if (cap < plen || (!out && plen))
        return PUNCH_ERR_NOBUFS;
    uint64_t counter = get_le64(dgram + 8);
    if (counter >= PUNCH_REJECT_AFTER_MESSAGES) {
        t->counters.malformed++;
        return PUNCH_ERR_MALFORMED;
    }
    /* Cheap check first, so replays cost no Poly1305. */
    if (!punch_replay_check(&t->replay, counter)) {
        t->counters.replayed++;
        return PUNCH_ERR_INTEGRITY;
    }
    if (open_sealed(t, counter, dgram, dgram + PUNCH_TRANSPORT_HEADER_LEN,
                    plen + PUNCH_NOISE_TAG_LEN, plen ? out : nothing) != 0) {
        t->counters.forged++;
        return PUNCH_ERR_INTEGRITY;
    }
    /* Only an authentic datagram moves the window (RFC 6479). */
    punch_replay_update(&t->replay, counter);
    t->counters.delivered++;
    *out_len = plen;
    return 0;
}

void punch_transport_wipe(punch_transport *t)
{
    if (t)
        sodium_memzero(t, sizeof *t);
}
