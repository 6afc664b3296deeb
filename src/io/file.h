/* SPDX-License-Identifier: MIT */
/*
 * Private files: the ones whose content decides who we trust or who we
 * are (a key, known_peers, a server's token). Read only when no one but
 * their owner may change them (or, for a secret, read them), as ssh's
 * StrictModes. The callers say why a file is refused in their own words.
 */
#ifndef PUNCH_IO_FILE_H
#define PUNCH_IO_FILE_H

#include <stddef.h>

/* Room for any message of the file helpers and their callers, path
 * included. */
#define PUNCH_FILE_ERRLEN 4352

/* Mode bits that make a file refused. */
#define PUNCH_FILE_OTHERS_WRITE 022u /* group or others may write it */
#define PUNCH_FILE_OTHERS_ANY   077u /* group or others may read or write it */

/* What punch_private_file_read found. */
typedef struct {
    unsigned mode; /* the file's permission bits (07777), once opened */
    size_t len;    /* the bytes read */
} punch_file_info;

/* Read path into buf: the whole file when it is shorter than cap bytes,
 * else its first cap bytes (give one byte more than a file may hold to
 * tell an over-long one). buf is not terminated. Returns 0;
 * PUNCH_ERR_UNSUPPORTED when the file's mode has a bit of refused
 * (info->mode says which; nothing is read and err is left alone: the
 * caller says why in its words); PUNCH_ERR_NOTFOUND (no such file) or
 * PUNCH_ERR_IO, err then "cannot read PATH: REASON". */
int punch_private_file_read(const char *path, unsigned refused, char *buf, size_t cap,
                            punch_file_info *info, char err[PUNCH_FILE_ERRLEN]);

/* Create the folders leading to path with mode 0700, like mkdir -p of its
 * folder (a key, known_peers). Returns 0, or -1 with errno set. */
int punch_make_parents(const char *path);

#endif
