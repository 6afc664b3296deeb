/* SPDX-License-Identifier: MIT */
/*
 * An address-validation token as text, the way `punch` keeps it between
 * runs (one file per server in its config folder, beside known_peers):
 * one line "SERVERKEY TOKEN NAT RTT": the server's public key (base64,
 * 44 characters), the token (hex, 48 characters), our NAT's mapping when
 * it was made (unknown, eim, adm or apdm), our round trip to the server
 * then (ms, 0 to 65535, decimal without leading zeros), and a newline. Nothing else is
 * taken: a bad file is never half-believed (the caller registers with a
 * cookie, as without a token).
 */
#ifndef PUNCH_CRYPTO_TOKEN_LINE_H
#define PUNCH_CRYPTO_TOKEN_LINE_H

#include <stddef.h>

#include "punch/punch.h"

/* 44 + 1 + 48 + 1 + 7 + 1 + 5 + 1, and a NUL. */
#define PUNCH_TOKEN_LINE_MAX 109

/* Writes the line (with its newline and a NUL) to out; returns its length. */
size_t punch_token_line_format(const punch_server_token *t, char out[PUNCH_TOKEN_LINE_MAX]);

/* Reads exactly one such line (the newline optional). Returns 0 or
 * PUNCH_ERR_MALFORMED. */
int punch_token_line_parse(const char *text, size_t len, punch_server_token *t);

#endif
