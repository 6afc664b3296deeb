/* SPDX-License-Identifier: MIT */
/*
 * A small event loop on epoll: file descriptors that became readable,
 * signals (through signalfd) and timers call back into the program. Time is not hidden
 * in here: callers read punch_clock_ms() and pass it to the sans-I/O cores.
 */
#ifndef PUNCH_IO_LOOP_H
#define PUNCH_IO_LOOP_H

#include "punch/io.h"

/* The public part of the loop is punch/io.h; this is what only libpunch
 * and the programs use. */
/* Call fn(arg) once at the end of this turn of the loop, after the ready
 * descriptors and the timer: work that input brings is then done once per
 * batch of input rather than once per datagram. Deferring the same fn and
 * arg again before then changes nothing. Returns 0 or PUNCH_ERR_LIMIT
 * (PUNCH_LOOP_MAX_DEFERRED calls wait already). */
#define PUNCH_LOOP_MAX_DEFERRED 8
typedef void (*punch_loop_defer_fn)(void *arg);
int punch_loop_defer(punch_loop *loop, punch_loop_defer_fn fn, void *arg);
/* Forget a deferred call (its arg is going away). */
void punch_loop_undefer(punch_loop *loop, punch_loop_defer_fn fn, void *arg);

#endif
