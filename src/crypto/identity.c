/* SPDX-License-Identifier: MIT */
/* Identity keys on libsodium: see identity.h. */
#include "crypto/identity.h"

#include <string.h>

#include <sodium.h>

int punch_identity_from_secret(punch_identity *id, const uint8_t secret[PUNCH_KEY_LEN])
{
    if (!id || !secret || sodium_init() < 0)
        return PUNCH_ERR_INVAL;
    memcpy(id->secret_key, secret, PUNCH_KEY_LEN);
    if (crypto_scalarmult_base(id->public_key, id->secret_key) != 0) {
        punch_identity_wipe(id);
        return PUNCH_ERR_INVAL;
    }
    return 0;
}

int punch_key_public(const uint8_t secret[PUNCH_KEY_BYTES], uint8_t public_key[PUNCH_KEY_BYTES])
{
    if (!public_key)
        return PUNCH_ERR_INVAL;
    punch_identity id;
    int rc = punch_identity_from_secret(&id, secret);
    if (rc == 0)
        memcpy(public_key, id.public_key, PUNCH_KEY_BYTES);
    punch_identity_wipe(&id);
    return rc;
}

void punch_key_encode(const uint8_t key[PUNCH_KEY_LEN], char out[PUNCH_KEY_B64_LEN])
{
    sodium_bin2base64(out, PUNCH_KEY_B64_LEN, key, PUNCH_KEY_LEN,
                      sodium_base64_VARIANT_ORIGINAL);
}

int punch_key_decode(const char *text, uint8_t key[PUNCH_KEY_LEN])
{
    size_t len = 0;
    const char *end = NULL;
    if (!text || !key)
        return PUNCH_ERR_MALFORMED;
    if (sodium_base642bin(key, PUNCH_KEY_LEN, text, strlen(text), " \t\r\n", &len, &end,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        len != PUNCH_KEY_LEN || *end != '\0')
        return PUNCH_ERR_MALFORMED;
    return 0;
}

void punch_identity_wipe(punch_identity *id)
{
    if (id)
        sodium_memzero(id, sizeof(*id));
}
