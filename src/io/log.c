/* SPDX-License-Identifier: MIT */
/* Logging: see log.h. */
#include "io/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *log_program = "punch";
static int log_level = PUNCH_LOG_INFO;
static const char *const level_names[] = {"error", "warn", "info", "debug"};

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
    if (level > log_level)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", log_program);
    if (level != PUNCH_LOG_ERROR)
        fprintf(stderr, "%s: ", level_names[level]);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}
