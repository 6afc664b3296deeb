/* SPDX-License-Identifier: MIT */
/*
 * A small event loop on epoll: file descriptors that became readable,
 * signals (through signalfd) and timers call back into the program. Time is not hidden
 * in here: callers read punch_clock_ms() and pass it to the sans-I/O cores.
 */
#ifndef PUNCH_IO_LOOP_H
#define PUNCH_IO_LOOP_H

#include <stddef.h>
#include <stdint.h>

typedef struct punch_loop punch_loop;
typedef void (*punch_loop_fd_fn)(void *arg, int fd);
typedef void (*punch_loop_signal_fn)(void *arg, int signo);
typedef void (*punch_loop_timer_fn)(void *arg, uint64_t now_ms);

/* Returns 0, PUNCH_ERR_NOMEM or PUNCH_ERR_IO. */
int punch_loop_new(punch_loop **loop);
void punch_loop_free(punch_loop *loop);
/* Call fn(arg, fd) whenever fd is readable. There is no fixed number of
 * watches: as many as the process has descriptors. Returns 0,
 * PUNCH_ERR_NOMEM or PUNCH_ERR_IO (errno: EEXIST when fd is watched already,
 * EPERM for a regular file, which epoll does not take). */
int punch_loop_watch(punch_loop *loop, int fd, punch_loop_fd_fn fn, void *arg);
/* What a watched fd waits for: readable (the default of punch_loop_watch),
 * writable, both, or neither (paused: a producer with nowhere to put data).
 * Returns 0, PUNCH_ERR_NOTFOUND (not watched) or PUNCH_ERR_IO. */
enum { PUNCH_LOOP_IN = 1, PUNCH_LOOP_OUT = 2 };
int punch_loop_set_events(punch_loop *loop, int fd, unsigned events);
/* Stop watching fd; call before closing it. Its slot is free again. */
void punch_loop_unwatch(punch_loop *loop, int fd);
/* Block these signals and deliver them as fn(arg, signo). Returns 0 or PUNCH_ERR_IO. */
int punch_loop_signals(punch_loop *loop, const int *signals, size_t n,
                       punch_loop_signal_fn fn, void *arg);
/* Timers, any number, each known by its id (as Redis's ae does): a timer
 * calls fn(arg, now) once punch_clock_ms() >= its deadline, after the ready
 * descriptors of that turn of the loop (so a deadline in the past fires on
 * the next turn), earliest deadline first, each at most once per turn. A
 * timer that fired is disarmed, not deleted: fn sets it again for a next
 * deadline (a periodic tick) or leaves it. The sans-I/O cores'
 * next_timeout values go here: set the timer after every call into the
 * core. Finding the next deadline is a scan of the timers: made for the
 * handful a program has (one per core, tick or timeout), not for one per
 * connection. */
typedef uint64_t punch_loop_timer;  /* 0 is never an id */
#define PUNCH_LOOP_NEVER UINT64_MAX /* the deadline of a disarmed timer */
/* A new timer with its first deadline (PUNCH_LOOP_NEVER: disarmed). Returns
 * 0 with *id set, or PUNCH_ERR_NOMEM. */
int punch_loop_timer_add(punch_loop *loop, uint64_t deadline_ms, punch_loop_timer_fn fn,
                         void *arg, punch_loop_timer *id);
/* Move the timer's deadline (PUNCH_LOOP_NEVER disarms it). Returns 0 or
 * PUNCH_ERR_NOTFOUND (no such timer: deleted, or never added). */
int punch_loop_timer_set(punch_loop *loop, punch_loop_timer id, uint64_t deadline_ms);
/* The timer's deadline, PUNCH_LOOP_NEVER when disarmed or unknown. */
uint64_t punch_loop_timer_deadline(const punch_loop *loop, punch_loop_timer id);
/* Delete the timer (also from its own fn); its id is never valid again. An
 * unknown id (0 included) is ignored. */
void punch_loop_timer_del(punch_loop *loop, punch_loop_timer id);
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
/* Run until punch_loop_stop. Returns 0 or PUNCH_ERR_IO. */
int punch_loop_run(punch_loop *loop);
void punch_loop_stop(punch_loop *loop);

/* Monotonic milliseconds (CLOCK_MONOTONIC). */
uint64_t punch_clock_ms(void);
/* Fill buf with n bytes from the kernel's CSPRNG. Returns 0 or PUNCH_ERR_IO. */
int punch_random_bytes(void *buf, size_t n);

#endif
