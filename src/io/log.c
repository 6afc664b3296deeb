/* SPDX-License-Identifier: MIT */
/* Logging: see log.h. */
#include "io/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *log_program = "punch";
static int log_level = PUNCH_LOG_INFO;
static const char *const level_names[] = {"error", "warn", "info", "debug"};
static punch_log_fn log_handler;
static void *log_handler_arg;
static int log_handler_level;

void punch_log_set_handler(punch_log_fn fn, void *arg, int max_level)
{
    log_handler = fn;
    log_handler_arg = arg;
    log_handler_level = max_level;
}

__attribute__((format(printf, 2, 0)))
static void log_to_handler(int level, const char *fmt, va_list ap)
{
    if (level > log_handler_level)
        return;
    char line[512];
    vsnprintf(line, sizeof(line), fmt, ap);
    log_handler(log_handler_arg, level, line);
}

void punch_log_init(const char *program, int level)
{
    log_program = program;
    log_level = level;
}

int punch_log_level_parse(const char *text)
{
    for (int i = 0; i < (int)(sizeof(level_names) / sizeof(level_names[0])); i++)
        if (strcmp(text, level_names[i]) == 0)
            return i;
    return -1;
}

void punch_log(int level, const char *fmt, ...)
{
    if (level > log_level && !log_handler)
        return;
    va_list ap;
    va_start(ap, fmt);
    if (log_handler) {
        log_to_handler(level, fmt, ap);
        va_end(ap);
        return;
    }
    fprintf(stderr, "%s: ", log_program);
    if (level != PUNCH_LOG_ERROR)
        fprintf(stderr, "%s: ", level_names[level]);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}
