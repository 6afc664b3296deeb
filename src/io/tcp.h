/* SPDX-License-Identifier: MIT */
/*
 * TCP to punchd, the last resort when a network drops UDP: sockets, and
 * datagrams carried as frames (src/wire/frame.h, RFC 4571 style) with a
 * bounded output buffer. Used by punchd (listen, accept) and by the I/O
 * driver (connect); everything non-blocking.
 */
#ifndef PUNCH_IO_TCP_H
#define PUNCH_IO_TCP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "punch/punch.h"
#include "wire/frame.h"

/* A non-blocking listening TCP socket on a (IPv6: v6-only, SO_REUSEADDR).
 * *bound gets the address bound. Returns the fd or PUNCH_ERR_IO (errno set). */
int punch_tcp_listen(const punch_addr *a, punch_addr *bound);
/* Accept one connection: a non-blocking fd with TCP_NODELAY, its remote
 * and local addresses. Returns the fd or PUNCH_ERR_IO (errno set; EAGAIN
 * when none is waiting). */
int punch_tcp_accept(int lfd, punch_addr *remote, punch_addr *local);
/* Start a non-blocking connection to dst. Returns the fd (the connection is
 * in progress: wait until it is writable, then punch_tcp_connect_result) or
 * PUNCH_ERR_IO (errno set). */
int punch_tcp_connect(const punch_addr *dst);
/* After a connecting fd became writable: 0 when connected, else
 * PUNCH_ERR_IO with errno set to why. */
int punch_tcp_connect_result(int fd);

/* TCP paths between peers (draft §4.4): many sockets on one local port,
 * one listening and others connecting, each with SO_REUSEADDR and
 * SO_REUSEPORT, non-blocking, TCP_NODELAY. local's port 0 lets the kernel
 * pick (*bound says which; NULL: not wanted). Return the fd or
 * PUNCH_ERR_IO (errno set). */
int punch_tcp_listen_shared(const punch_addr *local, punch_addr *bound);
int punch_tcp_connect_from(const punch_addr *local, const punch_addr *dst);
/* The same, its SYN with this TTL / hop limit (0: the system's); later
 * packets with the system's. */
int punch_tcp_connect_from_ttl(const punch_addr *local, const punch_addr *dst, uint8_t ttl);

/* Frames waiting to be written. Whole frames only go in, so a full buffer
 * drops a datagram, never part of one (the stream stays in step). */
typedef struct punch_tcp_out {
    uint8_t *buf;
    size_t cap, start, end;   /* bytes [start, end) are waiting */
} punch_tcp_out;

/* Returns 0 or PUNCH_ERR_NOMEM. */
int punch_tcp_out_init(punch_tcp_out *o, size_t cap);
void punch_tcp_out_free(punch_tcp_out *o);
void punch_tcp_out_clear(punch_tcp_out *o);
/* Queue one datagram as a frame. Returns 0, PUNCH_ERR_NOBUFS (no room:
 * nothing queued) or PUNCH_ERR_INVAL (len 0 or over PUNCH_FRAME_MAX). */
int punch_tcp_out_frame(punch_tcp_out *o, const uint8_t *data, size_t len);
/* Queue len bytes as they are (a stream of its own framing: TLS records,
 * TURN messages). Returns 0 or PUNCH_ERR_NOBUFS (no room: nothing queued). */
int punch_tcp_out_bytes(punch_tcp_out *o, const uint8_t *data, size_t len);
/* Bytes that can still be queued. */
size_t punch_tcp_out_room(const punch_tcp_out *o);
/* Write what the kernel takes now. Returns 0 (the rest, if any, waits for
 * the socket to be writable) or PUNCH_ERR_IO (the connection is dead). */
int punch_tcp_out_flush(int fd, punch_tcp_out *o);
bool punch_tcp_out_pending(const punch_tcp_out *o);

/* Called for each complete frame; return false to stop reading (the caller
 * is about to close the connection). */
typedef bool (*punch_tcp_frame_fn)(void *arg, const uint8_t *frame, size_t len);

#define PUNCH_TCP_OPEN 0
#define PUNCH_TCP_CLOSED 1
/* Read at most max_bytes from fd (so one busy connection cannot starve the
 * others: the rest waits for the next turn of the loop) and hand every
 * complete frame to fn. Returns PUNCH_TCP_OPEN, PUNCH_TCP_CLOSED (the peer
 * ended the stream: punch_frame_reader_partial tells whether it cut a
 * frame short), PUNCH_ERR_MALFORMED (a bad frame length) or PUNCH_ERR_IO
 * (errno set). */
int punch_tcp_read_frames(int fd, punch_frame_reader *r, size_t max_bytes,
                          punch_tcp_frame_fn fn, void *arg);

#endif
