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

void punch_auth_cookie(const uint8_t secret[PUNCH_AUTH_SECRET_LEN], const punch_addr *src,
                       uint64_t period, uint8_t cookie[PUNCH_AUTH_COOKIE_LEN])
{
    uint8_t in[1 + 2 + 16 + 8] = {0};
    in[0] = src->family;
    in[1] = (uint8_t)(src->port >> 8);
    in[2] = (uint8_t)src->port;
    memcpy(in + 3, src->ip, 16);
    for (int i = 0; i < 8; i++)
        in[19 + i] = (uint8_t)(period >> (56 - 8 * i));
    crypto_generichash(cookie, PUNCH_AUTH_COOKIE_LEN, in, sizeof(in), secret,
                       PUNCH_AUTH_SECRET_LEN);
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
