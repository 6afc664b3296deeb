/* SPDX-License-Identifier: MIT */
/*
 * punch/io.h: the platform pieces of libpunch (Linux): an event loop,
 * the clock, the kernel's randomness and the library's log (key files:
 * punch/keyfile.h).
 * The ready I/O driver (punch/driver.h) and the streams (punch/stream.h)
 * run on this loop; a program with a loop of its own drives it through
 * punch_loop_fd, punch_loop_timeout_ms and punch_loop_dispatch.
 *
 * Threading rule (all of libpunch): an object (punch_loop, punch_agent,
 * punch_driver, punch_sctp and its streams) belongs to the thread that
 * calls it: call each one from one thread at a time, and call the objects
 * that share a loop from the thread that runs that loop. Callbacks
 * (on_event, on_open, on_done, timers, descriptors) run on that thread,
 * inside punch_loop_run or punch_loop_dispatch, and may call any function
 * of those objects except the free of the object calling them. Objects
 * on different loops may live on different threads, with two exceptions
 * that are per process: the log handler (punch_log_set_handler: set it
 * before any object exists) and the streams' SCTP stack (one punch_sctp
 * per process). Functions that take no object (punch_strerror,
 * punch_clock_ms, punch_random_bytes, the punch_key_* and punch_addr_*
 * functions) may be called from any thread.
 */
#ifndef PUNCH_IO_PUBLIC_H
#define PUNCH_IO_PUBLIC_H

#include "punch/punch.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- The loop -------------------------------------------------------------
 *
 * An event loop on epoll: descriptors that became readable (or writable),
 * signals and timers call back into the program. */
typedef struct punch_loop punch_loop;
typedef void (*punch_loop_fd_fn)(void *arg, int fd);
typedef void (*punch_loop_signal_fn)(void *arg, int signo);
typedef void (*punch_loop_timer_fn)(void *arg, uint64_t now_ms);

/* Make a loop. Returns 0, PUNCH_ERR_NOMEM or PUNCH_ERR_IO. */
int punch_loop_new(punch_loop **loop);
/* Free the loop (NULL-safe); free what runs on it first. */
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
 * deadline (a periodic tick) or leaves it. Made for the handful a program
 * has (one per core, tick or timeout), not for one per connection. */
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
/* Run until punch_loop_stop. Returns 0 or PUNCH_ERR_IO. */
int punch_loop_run(punch_loop *loop);
/* Make punch_loop_run return (or punch_loop_dispatch return 1) once the
 * callback that calls it returns. */
void punch_loop_stop(punch_loop *loop);

/* The loop inside another loop (poll, epoll, libuv, a game's frame loop):
 * watch punch_loop_fd for readability, wake up after punch_loop_timeout_ms
 * at the latest, and then call punch_loop_dispatch, which never blocks. */

/* The descriptor that becomes readable when one of the loop's descriptors
 * or signals is ready (an epoll instance: do not read it). */
int punch_loop_fd(const punch_loop *loop);
/* How long the caller may sleep before punch_loop_dispatch is due for a
 * timer: milliseconds, 0 (now) or -1 (no timer armed). Ask again after
 * every dispatch and every call into an object on this loop. */
int punch_loop_timeout_ms(const punch_loop *loop);
/* One turn of the loop without waiting: the ready descriptors, the due
 * timers, the deferred work. Returns 0, 1 (a callback called
 * punch_loop_stop) or PUNCH_ERR_IO. */
int punch_loop_dispatch(punch_loop *loop);

/* Monotonic milliseconds (CLOCK_MONOTONIC): the now_ms of punch.h's calls. */
uint64_t punch_clock_ms(void);
/* Fill buf with n bytes from the kernel's CSPRNG. Returns 0 or PUNCH_ERR_IO. */
int punch_random_bytes(void *buf, size_t n);

/* ---- The library's log ------------------------------------------------------
 *
 * libpunch logs little (a socket it could not open, a change of transport
 * to the server); by default to stderr, "PROGRAM: LEVEL: message". */
enum { PUNCH_LOG_ERROR, PUNCH_LOG_WARN, PUNCH_LOG_INFO, PUNCH_LOG_DEBUG };
/* message has no newline; it is valid during the call only. */
typedef void (*punch_log_fn)(void *arg, int level, const char *message);
/* Send the library's log lines of level <= max_level to fn instead of
 * stderr (fn NULL: back to stderr). Per process: set it before any object
 * exists (threading rule above). */
void punch_log_set_handler(punch_log_fn fn, void *arg, int max_level);

#ifdef __cplusplus
}
#endif
#endif
