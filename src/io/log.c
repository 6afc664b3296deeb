/* SPDX-License-Identifier: MIT */
/* Logging: see log.h. */
#include "io/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *log_program = "punch";
static int log_level = PUNCH_LOG_INFO;
static bool log_stamped;
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

/* Whether stderr is the stream JOURNAL_STREAM ("DEV:INODE") names. */
static bool stderr_is_journal(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) != 0)
        return false;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

bool punch_log_timestamps(void)
{
    log_stamped = !stderr_is_journal();
    return log_stamped;
}

static void print_timestamp(void)
{
    struct timespec ts;
    struct tm tm;
    char text[32];
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0 || !gmtime_r(&ts.tv_sec, &tm) ||
        !strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", &tm))
        return;
    fprintf(stderr, "%s.%03ldZ ", text, ts.tv_nsec / 1000000);
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
    if (log_stamped)
        print_timestamp();
    fprintf(stderr, "%s: ", log_program);
    if (level != PUNCH_LOG_ERROR)
        fprintf(stderr, "%s: ", level_names[level]);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}
