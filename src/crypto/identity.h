/* SPDX-License-Identifier: MIT */
/*
 * Long-term identity keys (SPEC.md §4): X25519 key pairs, the form Noise IK
 * uses. Sans-I/O: the secret comes from the caller's randomness.
 */
#ifndef PUNCH_CRYPTO_IDENTITY_H
#define PUNCH_CRYPTO_IDENTITY_H

#include "punch/punch.h"

#define PUNCH_KEY_LEN 32

typedef struct punch_identity {
    uint8_t secret_key[PUNCH_KEY_LEN];
    uint8_t public_key[PUNCH_KEY_LEN];
} punch_identity;

/* Make the key pair whose secret is these 32 random bytes (X25519 clamps
 * them when used). Returns 0 or PUNCH_ERR_INVAL (a degenerate secret). */
int punch_identity_from_secret(punch_identity *id, const uint8_t secret[PUNCH_KEY_LEN]);

/* Keys as text (punch_key_encode, punch_key_decode) and the public key of
 * a secret (punch_key_public) are public: punch/punch.h. */

/* Overwrite secret material so it does not linger in memory. */
void punch_identity_wipe(punch_identity *id);

#endif
