/* SPDX-License-Identifier: MIT */
/*
 * Lists of peers by name and key, as text: known_peers (SPEC.md §4, trust
 * on first use) and the allowed peers of `punch listen` (--allowed-peers).
 * Sans-I/O: text in, entries out; the files are src/io's business.
 *
 * One peer a line: NAME and KEY separated by spaces or tabs, or NAME@KEY
 * (KEY: the 44-character base64 that `punch keygen` prints). Spaces, tabs
 * and a CR around it are ignored, a line of nothing but them too. There is
 * no comment syntax: a name may start with any printable character ('#'
 * too), so every line that is not blank is a peer, and one that is not a
 * well-formed peer is an error, never skipped.
 */
#ifndef PUNCH_CRYPTO_PEER_LIST_H
#define PUNCH_CRYPTO_PEER_LIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/identity.h"

/* At most this many peers in a list, each line at most this long (a name of
 * 63 and a key of 44 fit with room for spacing), so a file is at most
 * PUNCH_PEER_LIST_MAX_BYTES. */
#define PUNCH_PEER_LIST_MAX 1024
#define PUNCH_PEER_LIST_LINE_MAX 256
#define PUNCH_PEER_LIST_MAX_BYTES ((size_t)PUNCH_PEER_LIST_MAX * PUNCH_PEER_LIST_LINE_MAX)

/* punch_peer_list_parse: a name may stand once only (known_peers: one pin
 * a name); without it the same name may come with several keys. */
#define PUNCH_PEER_LIST_UNIQUE 1u

typedef struct punch_peer_entry {
    char name[PUNCH_NAME_MAX + 1];
    uint8_t key[PUNCH_KEY_LEN];
} punch_peer_entry;

typedef struct punch_peer_list {
    size_t n;
    punch_peer_entry e[PUNCH_PEER_LIST_MAX];
} punch_peer_list;

/* One peer, "NAME KEY" or "NAME@KEY", len bytes without the newline; the
 * bytes of *e past the name's NUL are zero, so entries compare whole.
 * Returns 0, or PUNCH_ERR_MALFORMED with *why saying what is wrong. */
int punch_peer_entry_parse(const char *text, size_t len, punch_peer_entry *e, const char **why);

/* A whole list, replacing *l. Returns 0; PUNCH_ERR_MALFORMED (a line is
 * not a peer, a NUL byte, a name twice with PUNCH_PEER_LIST_UNIQUE) or
 * PUNCH_ERR_LIMIT (a line over PUNCH_PEER_LIST_LINE_MAX, more than
 * PUNCH_PEER_LIST_MAX peers, text over PUNCH_PEER_LIST_MAX_BYTES), with
 * *line the 1-based line and *why the reason. */
int punch_peer_list_parse(const char *text, size_t len, unsigned flags, punch_peer_list *l,
                          size_t *line, const char **why);

/* The index of the entry with this name (and, when key is not NULL, this
 * key), or -1. */
int punch_peer_list_find(const punch_peer_list *l, const char *name, const uint8_t *key);

/* Trust on first use: remember name's key. Returns 0 (added, or already
 * there with this key), PUNCH_ERR_INTEGRITY (name is there with another
 * key: nothing changes), PUNCH_ERR_LIMIT (the list is full) or
 * PUNCH_ERR_INVAL (not a valid name). */
int punch_peer_list_learn(punch_peer_list *l, const char *name, const uint8_t key[PUNCH_KEY_LEN]);

/* The list as text, "NAME KEY\n" a peer, into out (cap bytes, NUL-terminated).
 * Returns the length, or 0 when cap is too small (never for
 * PUNCH_PEER_LIST_MAX_BYTES + 1). */
size_t punch_peer_list_format(const punch_peer_list *l, char *out, size_t cap);

#endif
