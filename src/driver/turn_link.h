/* SPDX-License-Identifier: MIT */
/*
 * The TURN server over TCP or TLS (punch --turn turn://...?transport=tcp,
 * turns://..., RFC 7065; issue 15): one connection from the driver, which
 * carries every datagram the agent addresses to the TURN server (STUN
 * requests, Send indications, ChannelData padded to 4 bytes as RFC 8656
 * §12.5 asks on a stream) and hands back the messages the server sends,
 * cut by src/wire/turn_stream.h. Only this leg is TCP: the relayed address
 * stays UDP.
 *
 * TLS is OpenSSL's, run over memory buffers (the socket's bytes go through
 * our own non-blocking send and recv, so nothing blocks the loop and no
 * write raises SIGPIPE). The server's certificate must chain to the
 * system's CA store, or to ca_file when given, and name host (an address
 * is checked as one; a name is also sent as SNI). Nothing turns that off.
 *
 * When the connection fails, cannot be verified or drops, on_down says why
 * (one line naming the server) and the link connects again, 1 s later,
 * then 2, 4, ... up to 30 s apart (punch_turn_link_retry_ms), with a new
 * TLS session; a failure of the kind last told is not told again until
 * a connection is up. After PUNCH_TURN_LINK_TRIES failed tries in a row
 * it is told once more, saying so, and the link stays down. The
 * allocation lived on the dropped connection (RFC 8656 §3.1): on_up,
 * called on each connection, lets the agent allocate anew.
 */
#ifndef PUNCH_DRIVER_TURN_LINK_H
#define PUNCH_DRIVER_TURN_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "punch/io.h"
#include "punch/punch.h"

/* Bytes waiting for a slow connection; past this messages are dropped. */
#define PUNCH_TURN_LINK_OUT_BYTES (64u * 1024)
/* A connection (and its TLS handshake) not up by then is given up. */
#define PUNCH_TURN_LINK_CONNECT_MS 10000u
/* Connecting again: the first try after a failure 1 s on, each next one
 * twice as late, at most 30 s; after this many, none. */
#define PUNCH_TURN_LINK_RETRY_MS 1000u
#define PUNCH_TURN_LINK_RETRY_MAX_MS 30000u
#define PUNCH_TURN_LINK_TRIES 20u

typedef struct punch_turn_link punch_turn_link;

typedef struct punch_turn_link_cfg {
    punch_addr server;
    bool tls;
    const char *host;    /* the URL's host: what the certificate must name */
    const char *ca_file; /* NULL: the system's CA store */
    /* A message from the server (valid during the call). */
    void (*on_message)(void *arg, const uint8_t *msg, size_t len);
    /* The link went down for good: line says why naming the server (for
     * a log), reason without it ("TLS: certificate verification failed:
     * ..."). */
    void (*on_down)(void *arg, const char *line, const char *reason);
    /* A connection (and TLS) is up; tries: the tries to connect again it
     * took (this one included; 0: the first connection). May be NULL. */
    void (*on_up)(void *arg, unsigned tries);
    void *arg;
} punch_turn_link_cfg;

/* Start connecting (non-blocking). Returns 0, PUNCH_ERR_NOMEM,
 * PUNCH_ERR_IO (the socket, or TLS could not be set up: why says which,
 * e.g. an unreadable ca_file) or PUNCH_ERR_INVAL. */
int punch_turn_link_new(punch_turn_link **out, punch_loop *loop, const punch_turn_link_cfg *cfg,
                        char *why, size_t cap);
void punch_turn_link_free(punch_turn_link *l);

/* How long after a failure try number tries (1, 2, ...) starts: 1 s,
 * doubled each try, at most PUNCH_TURN_LINK_RETRY_MAX_MS. */
uint64_t punch_turn_link_retry_ms(unsigned tries);

/* Whether the agent's datagram to dst is this link's to carry: dst is the
 * server, and the bytes are TURN's (STUN or ChannelData). */
bool punch_turn_link_takes(const punch_turn_link *l, const punch_addr *dst, const uint8_t *buf,
                           size_t len);
/* Queue one message (sent once the connection, and TLS, are up). Dropped
 * when the link is down or PUNCH_TURN_LINK_OUT_BYTES wait already: the
 * TURN client times such a request out as a lost datagram. */
void punch_turn_link_send(punch_turn_link *l, const uint8_t *msg, size_t len);

#endif
