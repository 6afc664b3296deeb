/* SPDX-License-Identifier: MIT */
/*
 * Identity key files (SPEC.md §3, §4): one line, the base64 of the 32-byte
 * X25519 secret, in a file only its owner may read (mode 0600, parent
 * folders 0700). Shared by `punch keygen`, punch's --key and punchd's --key.
 * A layer of its own above io and crypto, so io needs no crypto.
 */
#ifndef PUNCH_KEYFILE_KEYFILE_H
#define PUNCH_KEYFILE_KEYFILE_H

#include <stdbool.h>
#include <stddef.h>

#include "crypto/identity.h"
#include "io/file.h"
#include "punch/keyfile.h"

/* Room for any message below, path included. */
#define PUNCH_KEYFILE_ERRLEN PUNCH_FILE_ERRLEN

/* Make a new identity from the kernel's randomness and write it to path:
 * beside it first, then linked (or with replace, renamed) into place, so a
 * crash never leaves half a key and an existing key is never replaced by
 * accident. Returns 0, PUNCH_ERR_LIMIT (path holds a key and !replace) or
 * PUNCH_ERR_IO; on failure err holds a one-line reason. */
int punch_keyfile_create(const char *path, bool replace, punch_identity *id,
                         char err[PUNCH_KEYFILE_ERRLEN]);

/* Read the identity in path. Returns 0, PUNCH_ERR_NOTFOUND (no such file),
 * PUNCH_ERR_UNSUPPORTED (group or others may read or write it: as ssh, such
 * a key is refused, and err says to chmod 600 it), PUNCH_ERR_MALFORMED (not
 * a key) or PUNCH_ERR_IO; err as above. */
int punch_keyfile_load(const char *path, punch_identity *id, char err[PUNCH_KEYFILE_ERRLEN]);

/* Load path, or create it when it does not exist (*created says which).
 * Returns what punch_keyfile_load or punch_keyfile_create return. */
int punch_keyfile_load_or_create(const char *path, punch_identity *id, bool *created,
                                 char err[PUNCH_KEYFILE_ERRLEN]);

#endif
