/* SPDX-License-Identifier: MIT */
/*
 * The TURN server a user names (punch --turn, issue 15):
 *   turn://USER:PASS@HOST[:PORT][?transport=udp|tcp]
 *   turns://USER:PASS@HOST[:PORT][?transport=tcp]
 * as RFC 7065 writes them: turn:// is UDP unless ?transport=tcp says TCP;
 * turns:// is TLS over TCP (DTLS, turns:// with ?transport=udp, is refused).
 * HOST is a name, an IPv4 address or [an IPv6 address]; PORT defaults to
 * 3478, or 5349 for turns:// (RFC 8656 §3.1). USER and PASS may carry %XX
 * escapes (RFC 3986 §2.1), for a password with ':' or '@' in it. Whatever
 * the transport to the server, the relayed address is UDP (RFC 8656
 * REQUESTED-TRANSPORT 17). Pure text: the caller resolves host.
 */
#ifndef PUNCH_CORE_TURN_URL_H
#define PUNCH_CORE_TURN_URL_H

#include <stdint.h>

#include "core/turn.h"

#define PUNCH_TURN_URL_HOST_MAX 256 /* bytes + NUL */
#define PUNCH_TURN_DEFAULT_PORT 3478 /* RFC 8656 §3.1 */
#define PUNCH_TURN_DEFAULT_TLS_PORT 5349 /* RFC 8656 §3.1: turns */

/* How the client reaches the TURN server. */
typedef enum punch_turn_transport {
    PUNCH_TURN_UDP = 0,
    PUNCH_TURN_TCP,
    PUNCH_TURN_TLS, /* TLS over TCP */
} punch_turn_transport;

typedef struct punch_turn_url {
    char username[PUNCH_TURN_CRED_MAX];
    char password[PUNCH_TURN_CRED_MAX];
    char host[PUNCH_TURN_URL_HOST_MAX]; /* without the brackets of an IPv6 address */
    uint16_t port;
    punch_turn_transport transport;
} punch_turn_url;

/* Parse text into *url. Returns 0, or PUNCH_ERR_INVAL with why (cap
 * bytes, NUL-terminated) naming the bad part; why never repeats the
 * password. */
int punch_turn_url_parse(const char *text, punch_turn_url *url, char *why, size_t cap);

/* "udp", "tcp" or "tls". */
const char *punch_turn_transport_name(punch_turn_transport t);

#endif
