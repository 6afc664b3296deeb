/* SPDX-License-Identifier: MIT */
/* Logging to stderr with a level, for the programs in apps/. */
#ifndef PUNCH_IO_LOG_H
#define PUNCH_IO_LOG_H

#include <stdbool.h>

#include "punch/io.h" /* the levels, punch_log_set_handler */

/* Program name used as the prefix of every line ("punchd: ..."). */
void punch_log_init(const char *program, int level);
/* Start each line with the UTC time ("2026-12-04T14:43:11.123Z "), for a
 * daemon's log, unless stderr is the systemd journal (JOURNAL_STREAM names
 * stderr's device:inode, systemd.exec(5)), which stamps lines itself.
 * Returns whether lines are stamped. */
bool punch_log_timestamps(void);
/* "error", "warn", "info" or "debug"; returns the level or -1. */
int punch_log_level_parse(const char *text);
void punch_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
