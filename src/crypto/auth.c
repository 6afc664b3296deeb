/* SPDX-License-Identifier: MIT */
/* Signalling authentication on libsodium: see auth.h. */
#include "crypto/auth.h"

#include <string.h>

#include <sodium.h>

/* Domain separation: these keys are for nothing but punch signalling. */
static const char SIGNALLING_LABEL[] = "punch signalling v0";

int punch_auth_derive(const punch_identity *self, const uint8_t peer_public[PUNCH_KEY_LEN],
                      uint8_t key[PUNCH_AUTH_KEY_LEN])
{
    uint8_t shared[crypto_scalarmult_BYTES];
    if (sodium_init() < 0 || crypto_scalarmult(shared, self->secret_key, peer_public) != 0)
        return PUNCH_ERR_INTEGRITY;
    /* key = BLAKE2b(label, shared || both public keys in a fixed order),
     * binding the key to the pair and not only to the DH result. */
    const uint8_t *lo = self->public_key, *hi = peer_public;
    if (memcmp(lo, hi, PUNCH_KEY_LEN) > 0) {
        lo = peer_public;
        hi = self->public_key;
    }
    crypto_generichash_state st;
    crypto_generichash_init(&st, (const uint8_t *)SIGNALLING_LABEL, sizeof(SIGNALLING_LABEL) - 1,
                            PUNCH_AUTH_KEY_LEN);
    crypto_generichash_update(&st, shared, sizeof(shared));
    crypto_generichash_update(&st, lo, PUNCH_KEY_LEN);
    crypto_generichash_update(&st, hi, PUNCH_KEY_LEN);
    crypto_generichash_final(&st, key, PUNCH_AUTH_KEY_LEN);
    sodium_memzero(shared, sizeof(shared));
    sodium_memzero(&st, sizeof(st));
    return 0;
}

void punch_auth_mac(const uint8_t key[PUNCH_AUTH_KEY_LEN], const uint8_t *msg, size_t len,
                    uint8_t mac[PUNCH_AUTH_MAC_LEN])
{
    crypto_generichash(mac, PUNCH_AUTH_MAC_LEN, msg, len, key, PUNCH_AUTH_KEY_LEN);
}

int punch_auth_verify(const uint8_t key[PUNCH_AUTH_KEY_LEN], const uint8_t *msg, size_t len,
                      const uint8_t mac[PUNCH_AUTH_MAC_LEN])
{
    uint8_t want[PUNCH_AUTH_MAC_LEN];
    punch_auth_mac(key, msg, len, want);
    return sodium_memcmp(want, mac, PUNCH_AUTH_MAC_LEN) == 0 ? 0 : PUNCH_ERR_INTEGRITY;
}

/* The server secret's MAC, shared by cookies and tokens (each gives its
 * input a layout of its own, so one can never pass for the other). */
static void secret_mac(const uint8_t secret[PUNCH_AUTH_SECRET_LEN], const uint8_t *in, size_t len,
                       uint8_t mac[PUNCH_AUTH_MAC_LEN])
{
    crypto_generichash(mac, PUNCH_AUTH_MAC_LEN, in, len, secret, PUNCH_AUTH_SECRET_LEN);
}

static void put_be(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
}

void punch_auth_cookie(const uint8_t secret[PUNCH_AUTH_SECRET_LEN], const punch_addr *src,
                       uint64_t period, uint8_t cookie[PUNCH_AUTH_COOKIE_LEN])
{
    uint8_t in[1 + 2 + 16 + 8] = {0};
    in[0] = src->family;
    put_be(in + 1, src->port, 2);
    memcpy(in + 3, src->ip, 16);
    put_be(in + 19, period, 8);
    secret_mac(secret, in, sizeof(in), cookie);
}

/* Token MAC input: 't', family, IP (no port), key, expiry, serial. */
static void token_mac(const uint8_t secret[PUNCH_AUTH_SECRET_LEN], const punch_addr *src,
                      const uint8_t key[PUNCH_KEY_LEN], const uint8_t head[8],
                      uint8_t mac[PUNCH_AUTH_MAC_LEN])
{
    uint8_t in[1 + 1 + 16 + PUNCH_KEY_LEN + 8] = {'t', src->family};
    memcpy(in + 2, src->ip, src->family == PUNCH_AF_INET ? 4 : 16);
    memcpy(in + 18, key, PUNCH_KEY_LEN);
    memcpy(in + 18 + PUNCH_KEY_LEN, head, 8);
    secret_mac(secret, in, sizeof(in), mac);
}

void punch_auth_token(const uint8_t secret[PUNCH_AUTH_SECRET_LEN], const punch_addr *src,
                      const uint8_t key[PUNCH_KEY_LEN], uint32_t expiry_s, uint32_t serial,
                      uint8_t token[PUNCH_AUTH_TOKEN_LEN])
{
    put_be(token, expiry_s, 4);
    put_be(token + 4, serial, 4);
    token_mac(secret, src, key, token, token + 8);
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int punch_auth_token_check(const uint8_t secret[PUNCH_AUTH_SECRET_LEN], const punch_addr *src,
                           const uint8_t key[PUNCH_KEY_LEN], uint32_t now_s,
                           const uint8_t token[PUNCH_AUTH_TOKEN_LEN], uint32_t *serial)
{
    uint8_t want[PUNCH_AUTH_MAC_LEN];
    token_mac(secret, src, key, token, want);
    if (sodium_memcmp(want, token + 8, PUNCH_AUTH_MAC_LEN) != 0)
        return PUNCH_ERR_INTEGRITY;
    *serial = get_be32(token + 4);
    return now_s < get_be32(token) ? 0 : PUNCH_ERR_LIMIT;
}

int punch_auth_cookie_check(const uint8_t secret[PUNCH_AUTH_SECRET_LEN], const punch_addr *src,
                            uint64_t period, const uint8_t cookie[PUNCH_AUTH_COOKIE_LEN])
{
    uint8_t want[PUNCH_AUTH_COOKIE_LEN];
    punch_auth_cookie(secret, src, period, want);
    if (sodium_memcmp(want, cookie, PUNCH_AUTH_COOKIE_LEN) == 0)
        return 0;
    if (period == 0)
        return PUNCH_ERR_INTEGRITY;
    punch_auth_cookie(secret, src, period - 1, want);
    return sodium_memcmp(want, cookie, PUNCH_AUTH_COOKIE_LEN) == 0 ? 0 : PUNCH_ERR_INTEGRITY;
}
