/* SPDX-License-Identifier: MIT */
/*
 * known_peers (SPEC.md §4, like ssh's known_hosts): the key each peer name
 * had when we first met it, one "NAME KEY" line a name (the format of
 * crypto/peer_list.h: no comments, so every name is pinned). A later
 * mismatch is refused loudly by the caller. The file holds at most
 * PUNCH_PEER_LIST_MAX names; it is rewritten whole (beside it, then renamed
 * into place) under a lock, so two punch processes never lose or double a
 * line and a crash never leaves half of one. Also the reader of
 * --allowed-peers files.
 */
#ifndef PUNCH_COMMON_KNOWN_PEERS_H
#define PUNCH_COMMON_KNOWN_PEERS_H

#include "crypto/peer_list.h"
#include "io/file.h"

/* Read the list of peers in the file at path (at most
 * PUNCH_PEER_LIST_MAX_BYTES; flags as punch_peer_list_parse's). Returns 0,
 * PUNCH_ERR_NOTFOUND (no such file; *l is empty), PUNCH_ERR_IO,
 * PUNCH_ERR_UNSUPPORTED (group or others may write it: refused, as ssh
 * refuses such an authorized_keys), PUNCH_ERR_MALFORMED or PUNCH_ERR_LIMIT,
 * with a one-line reason in err ("PATH:LINE: what is wrong" for bad
 * content). */
int punch_peer_file_load(const char *path, unsigned flags, punch_peer_list *l,
                         char err[PUNCH_FILE_ERRLEN]);

/* Look NAME up in known_peers at path. Returns 0 with key filled,
 * PUNCH_ERR_NOTFOUND (no such name, or no file), or an error of
 * punch_peer_file_load (a bad file is never half-believed) with err set. */
int punch_known_peers_find(const char *path, const char *name, uint8_t key[PUNCH_KEY_LEN],
                           char err[PUNCH_FILE_ERRLEN]);

/* Remember NAME KEY (creating the file, mode 0600, and its folder, 0700).
 * Returns 0 (remembered, or there already with this key),
 * PUNCH_ERR_INTEGRITY (NAME is there with another key, written meanwhile by
 * another process), PUNCH_ERR_LIMIT (PUNCH_PEER_LIST_MAX names already),
 * or an error of punch_peer_file_load or PUNCH_ERR_IO; err says which. */
int punch_known_peers_add(const char *path, const char *name, const uint8_t key[PUNCH_KEY_LEN],
                          char err[PUNCH_FILE_ERRLEN]);

#endif
