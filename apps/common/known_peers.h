/*
 * known_peers (SPEC.md §4, like ssh's known_hosts): the key each peer name
 * had when we first met it. One line per peer, "NAME BASE64KEY". A later
 * mismatch is refused loudly by the caller.
 */
#ifndef PUNCH_COMMON_KNOWN_PEERS_H
#define PUNCH_COMMON_KNOWN_PEERS_H

#include "crypto/identity.h"

/* Look NAME up in the file at path. Returns 0 with key filled,
 * PUNCH_ERR_NOTFOUND (no such name, or no file) or PUNCH_ERR_IO.
 * Malformed lines are skipped. */
int punch_known_peers_find(const char *path, const char *name, uint8_t key[PUNCH_KEY_LEN]);

/* Append NAME KEY (creating the file, mode 0600, and its folder, 0700).
 * Returns 0 or PUNCH_ERR_IO. */
int punch_known_peers_add(const char *path, const char *name, const uint8_t key[PUNCH_KEY_LEN]);

#endif
