/* SPDX-License-Identifier: MIT */
/*
 * Address-validation tokens kept between runs (docs/protocol.md): one file
 * per server address, DIR/servers/IP:PORT, holding one line of
 * crypto/token_line.h (the server's key, the token, our NAT then). DIR is
 * the folder of the identity key (beside known_peers). Written beside and
 * renamed into place, mode 0600, without fsync: a token lost in a crash
 * only costs the next start a cookie round trip.
 */
#ifndef PUNCH_COMMON_SERVER_TOKENS_H
#define PUNCH_COMMON_SERVER_TOKENS_H

#include <limits.h>

#include "io/file.h"
#include "punch/punch.h"

/* The file for server in dir. Returns 0, or -1 when the path is too long. */
int punch_server_token_path(const char *dir, const punch_addr *server, char path[PATH_MAX]);

/* Read the token in path. Returns 0, PUNCH_ERR_NOTFOUND (no file),
 * PUNCH_ERR_UNSUPPORTED (others may write it: not used), PUNCH_ERR_MALFORMED
 * or PUNCH_ERR_IO, with err set on failure. */
int punch_server_token_load(const char *path, punch_server_token *t,
                            char err[PUNCH_FILE_ERRLEN]);

/* Keep t in path (and its folder, 0700). Returns 0 or PUNCH_ERR_IO. */
int punch_server_token_save(const char *path, const punch_server_token *t,
                            char err[PUNCH_FILE_ERRLEN]);

#endif
