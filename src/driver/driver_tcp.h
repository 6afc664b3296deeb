/* SPDX-License-Identifier: MIT */
/*
 * The I/O driver's TCP paths to peers: real sockets for the sans-I/O
 * machine of src/core/tcp_path.h. It executes the machine's commands
 * (listen, connect with a TTL, send, close) on non-blocking sockets in an
 * epoll set of their own (which the loop watches), reports what became of
 * them (connected, accepted, refused, ICMP errors, frames, closed), and
 * carries the agent's datagrams on a TCP path's socket index as frames.
 * It decides nothing.
 */
#ifndef PUNCH_DRIVER_DRIVER_TCP_H
#define PUNCH_DRIVER_DRIVER_TCP_H

#include "core/tcp_path.h"
#include "driver/driver.h"
#include "io/loop.h"

typedef struct punch_driver_tcp punch_driver_tcp;

/* after(arg) runs after socket activity was handed to the machine (the
 * driver drains the agent's events and flushes). stats gets the tcp_path_*
 * counters. Returns 0, PUNCH_ERR_NOMEM, PUNCH_ERR_INVAL or PUNCH_ERR_IO. */
int punch_driver_tcp_new(punch_driver_tcp **dt, punch_loop *loop, const punch_tcp_paths_cfg *cfg,
                         punch_driver_stats *stats, void (*after)(void *arg), void *arg);
void punch_driver_tcp_free(punch_driver_tcp *dt);

/* One of the agent's events, before the caller's. */
void punch_driver_tcp_event(punch_driver_tcp *dt, const punch_event *ev, uint64_t now);
void punch_driver_tcp_timeout(punch_driver_tcp *dt, uint64_t now);
uint64_t punch_driver_tcp_deadline(const punch_driver_tcp *dt);
/* A datagram of the agent for its TCP socket agent_sock. */
void punch_driver_tcp_send(punch_driver_tcp *dt, punch_socket agent_sock, const uint8_t *buf,
                           size_t len, uint64_t now);
/* The fd of the TCP path on agent_sock, or -1. */
int punch_driver_tcp_fd(const punch_driver_tcp *dt, punch_socket agent_sock);

#endif
