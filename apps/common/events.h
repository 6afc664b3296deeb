/* SPDX-License-Identifier: MIT */
/*
 * The --events stream (SPEC.md §3): one JSON object per line, flushed per
 * line, each with "event" and "t_ms" (milliseconds since the program started).
 */
#ifndef PUNCH_COMMON_EVENTS_H
#define PUNCH_COMMON_EVENTS_H

#include <stdint.h>

typedef struct punch_events punch_events;

/* path: a file to append to, "-" for stdout, NULL for no events (every emit
 * is then a no-op). start_ms is the program's start on punch_clock_ms().
 * Returns 0, PUNCH_ERR_NOMEM or PUNCH_ERR_IO (errno set). */
int punch_events_open(punch_events **ev, const char *path, uint64_t start_ms);
void punch_events_close(punch_events *ev);
/* Open path again (after log rotation: the file now at that name, created
 * when it is not there) and close *ev, keeping its start. On failure *ev
 * stays as it was. Returns as punch_events_open. */
int punch_events_reopen(punch_events **ev, const char *path);
/* Emit {"event":NAME,"t_ms":N,FIELDS} where FIELDS is the printf-formatted
 * rest of the object (already JSON: keys quoted, strings escaped), or "" . */
void punch_events_emit(punch_events *ev, const char *name, const char *fields_fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* For a server: when events go to a pipe or a socket, never wait for its
 * reader. A line that does not fit is dropped whole (counted, warned
 * about), so a slow or stopped reader cannot stop the service (issue 12:
 * punchd stopped answering everyone once 64 KiB of events sat unread). */
void punch_events_never_block(punch_events *ev);
/* Lines dropped so far. */
uint64_t punch_events_lost(const punch_events *ev);

#endif
