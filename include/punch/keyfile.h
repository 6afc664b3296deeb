/* SPDX-License-Identifier: MIT */
/*
 * punch/keyfile.h: identity key files, the one piece of libpunch that is
 * both I/O (a file, the kernel's randomness) and crypto (a key); kept out
 * of punch/io.h so the platform layer needs no crypto (docs/architecture.md).
 * The functions take no object: call them from any thread (punch/io.h's
 * threading rule).
 */
#ifndef PUNCH_KEYFILE_PUBLIC_H
#define PUNCH_KEYFILE_PUBLIC_H

#include "punch/punch.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Key files --------------------------------------------------------------
 *
 * The identity key file `punch keygen` writes and `punch --key` reads:
 * one line, the base64 of the 32-byte X25519 secret (punch_key_encode),
 * in a file only its owner may read (mode 0600; folders made 0700). */

/* Write secret to path: beside it first, then linked (or with replace,
 * renamed) into place, so a crash never leaves half a key and, without
 * replace, an existing key is never overwritten. Returns 0,
 * PUNCH_ERR_LIMIT (path holds a key and !replace) or PUNCH_ERR_IO; on
 * failure err (errlen bytes, may be 0) holds a one-line reason. */
int punch_key_file_save(const char *path, const uint8_t secret[PUNCH_KEY_BYTES], bool replace,
                        char *err, size_t errlen);
/* Read the secret in path. Returns 0, PUNCH_ERR_NOTFOUND (no such file),
 * PUNCH_ERR_UNSUPPORTED (group or others may read or write it: as ssh,
 * such a key is refused, and err says to chmod 600 it),
 * PUNCH_ERR_MALFORMED (not a key) or PUNCH_ERR_IO; err as above. */
int punch_key_file_load(const char *path, uint8_t secret[PUNCH_KEY_BYTES], char *err,
                        size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
