/* SPDX-License-Identifier: MIT */
/* Event stream: see events.h. */
#include "common/events.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/log.h"
#include "io/loop.h"
#include "punch/punch.h"

/* A line longer than this is cut (no event comes near it). */
#define LINE_MAX_BYTES 4096

struct punch_events {
    FILE *out;
    bool owned;
    bool never_block; /* write(2) whole lines, drop them when the reader is behind */
    uint64_t start_ms;
    uint64_t lost;
};

int punch_events_open(punch_events **out, const char *path, uint64_t start_ms)
{
    *out = NULL;
    if (!path)
        return 0;
    punch_events *ev = calloc(1, sizeof(*ev));
    if (!ev)
        return PUNCH_ERR_NOMEM;
    ev->start_ms = start_ms;
    if (strcmp(path, "-") == 0) {
        ev->out = stdout;
    } else {
        ev->out = fopen(path, "ae");
        ev->owned = true;
        if (!ev->out) {
            free(ev);
            return PUNCH_ERR_IO;
        }
    }
    *out = ev;
    return 0;
}

void punch_events_close(punch_events *ev)
{
    if (!ev)
        return;
    if (ev->owned)
        fclose(ev->out);
    else
        fflush(ev->out);
    free(ev);
}

int punch_events_reopen(punch_events **ev, const char *path)
{
    uint64_t start_ms = *ev ? (*ev)->start_ms : punch_clock_ms();
    punch_events *now;
    int rc = punch_events_open(&now, path, start_ms);
    if (rc != 0)
        return rc;
    if (*ev && (*ev)->never_block) { /* the new stream waits for nobody either */
        punch_events_never_block(now);
        if (now)
            now->lost = (*ev)->lost;
    }
    punch_events_close(*ev);
    *ev = now;
    return 0;
}

void punch_events_never_block(punch_events *ev)
{
    if (!ev)
        return;
    fflush(ev->out);
    int fd = fileno(ev->out);
    struct stat st;
    /* Pipes and sockets only: a file never blocks for long, and a terminal
     * is shared with whoever else writes to it. */
    if (fstat(fd, &st) != 0 || !(S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)))
        return;
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0)
        ev->never_block = true;
}

uint64_t punch_events_lost(const punch_events *ev)
{
    return ev ? ev->lost : 0;
}

/* One whole line with one write (a pipe takes up to PIPE_BUF, 4096 bytes,
 * at once or not at all), or none: dropped and counted. */
__attribute__((format(printf, 3, 0))) static void write_line(punch_events *ev, const char *name,
                                                            const char *fields_fmt, va_list ap)
{
    char line[LINE_MAX_BYTES];
    int n = snprintf(line, sizeof(line), "{\"event\":\"%s\",\"t_ms\":%llu%s", name,
                     (unsigned long long)(punch_clock_ms() - ev->start_ms),
                     fields_fmt && fields_fmt[0] ? "," : "");
    if (n > 0 && (size_t)n < sizeof(line) && fields_fmt && fields_fmt[0])
        n += vsnprintf(line + n, sizeof(line) - (size_t)n, fields_fmt, ap);
    if (n < 0 || (size_t)n + 2 >= sizeof(line))
        n = (int)sizeof(line) - 3; /* cut: still one line, not valid JSON */
    memcpy(line + n, "}\n", 2);
    ssize_t w = write(fileno(ev->out), line, (size_t)n + 2);
    if (w == n + 2)
        return;
    if (++ev->lost == 1 || ev->lost % 1000 == 0)
        punch_log(PUNCH_LOG_WARN, "the reader of --events is behind (%s): %llu lines dropped",
                  w < 0 ? strerror(errno) : "a line cut", (unsigned long long)ev->lost);
}

void punch_events_emit(punch_events *ev, const char *name, const char *fields_fmt, ...)
{
    if (!ev)
        return;
    if (ev->never_block) {
        va_list ap;
        va_start(ap, fields_fmt);
        write_line(ev, name, fields_fmt, ap);
        va_end(ap);
        return;
    }
    fprintf(ev->out, "{\"event\":\"%s\",\"t_ms\":%llu", name,
            (unsigned long long)(punch_clock_ms() - ev->start_ms));
    if (fields_fmt && fields_fmt[0]) {
        va_list ap;
        va_start(ap, fields_fmt);
        fputc(',', ev->out);
        vfprintf(ev->out, fields_fmt, ap);
        va_end(ap);
    }
    fputs("}\n", ev->out);
    fflush(ev->out);
}
