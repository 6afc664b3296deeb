/* SPDX-License-Identifier: MIT */
/*
 * The driver (punch/driver.h is its public part): what only libpunch uses,
 * the consumers of tagged datagrams. The TCP path machine's decisions are
 * src/core/tcp_path.c's; the driver executes them (driver_tcp.c).
 */
#ifndef PUNCH_DRIVER_DRIVER_H
#define PUNCH_DRIVER_DRIVER_H

#include "io/loop.h"
#include "punch/driver.h"

/* A consumer of the peers' datagrams that start with one tag byte: a
 * protocol carried on the agent's datagrams (src/stream's SCTP) attaches
 * here instead of the program passing events on to it. fn gets the DATA
 * events whose datagram starts with tag (on_event does not), and every PATH,
 * RTT and CLOSED event before on_event does, so it follows each peer's path
 * and end by itself. */
#define PUNCH_DRIVER_MAX_CONSUMERS 4
typedef void (*punch_driver_consumer_fn)(void *arg, const punch_event *ev);
/* Returns 0 or PUNCH_ERR_LIMIT (the tag has a consumer already, or
 * PUNCH_DRIVER_MAX_CONSUMERS are attached). */
int punch_driver_add_consumer(punch_driver *d, uint8_t tag, punch_driver_consumer_fn fn,
                              void *arg);
/* Detach the tag's consumer: its datagrams go to on_event again. */
void punch_driver_remove_consumer(punch_driver *d, uint8_t tag);

#endif
