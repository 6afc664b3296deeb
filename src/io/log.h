/* SPDX-License-Identifier: MIT */
/* Logging to stderr with a level, for the programs in apps/. */
#ifndef PUNCH_IO_LOG_H
#define PUNCH_IO_LOG_H

#include "punch/io.h" /* the levels, punch_log_set_handler */

/* Program name used as the prefix of every line ("punchd: ..."). */
void punch_log_init(const char *program, int level);
/* "error", "warn", "info" or "debug"; returns the level or -1. */
int punch_log_level_parse(const char *text);
void punch_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
