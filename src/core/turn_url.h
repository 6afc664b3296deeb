/* SPDX-License-Identifier: MIT */
/*
 * The TURN server a user names (punch --turn, issue 15):
 *   turn://USER:PASS@HOST[:PORT][?transport=udp]
 * HOST is a name, an IPv4 address or [an IPv6 address]; PORT defaults to
 * 3478 (RFC 8656 §3.1). USER and PASS may carry %XX escapes (RFC 3986
 * §2.1), for a password with ':' or '@' in it. Only UDP is spoken:
 * turns:// (TLS) and any other transport are refused with a reason.
 * Pure text: the caller resolves host.
 */
#ifndef PUNCH_CORE_TURN_URL_H
#define PUNCH_CORE_TURN_URL_H

#include <stdint.h>

#include "core/turn.h"

#define PUNCH_TURN_URL_HOST_MAX 256 /* bytes + NUL */
#define PUNCH_TURN_DEFAULT_PORT 3478 /* RFC 8656 §3.1 */

typedef struct punch_turn_url {
    char username[PUNCH_TURN_CRED_MAX];
    char password[PUNCH_TURN_CRED_MAX];
    char host[PUNCH_TURN_URL_HOST_MAX]; /* without the brackets of an IPv6 address */
    uint16_t port;
} punch_turn_url;

/* Parse text into *url. Returns 0, or PUNCH_ERR_INVAL with why (cap
 * bytes, NUL-terminated) naming the bad part; why never repeats the
 * password. */
int punch_turn_url_parse(const char *text, punch_turn_url *url, char *why, size_t cap);

#endif
