/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the key file's parser (punch_key_decode, what
 * src/keyfile/keyfile.c does with the first 127 bytes of a key file, and
 * what known_peers and --peer do with a key). Whatever the text: a key
 * that decodes makes an identity, and writing it back decodes to the same
 * key (so a key file punch wrote always reads back). */
#include <stdint.h>
#include <string.h>

#include "crypto/identity.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char text[128]; /* as the key file loader reads it */
    size_t n = size < sizeof(text) - 1 ? size : sizeof(text) - 1;
    memcpy(text, data, n);
    text[n] = '\0';
    uint8_t key[PUNCH_KEY_LEN], again[PUNCH_KEY_LEN];
    if (punch_key_decode(text, key) != 0)
        return 0;
    punch_identity id;
    char b64[PUNCH_KEY_B64_LEN];
    if (punch_identity_from_secret(&id, key) != 0)
        __builtin_trap();
    punch_key_encode(key, b64);
    if (punch_key_decode(b64, again) != 0 || memcmp(key, again, PUNCH_KEY_LEN) != 0)
        __builtin_trap();
    return 0;
}
