/* SPDX-License-Identifier: MIT */
/* Event stream: see events.h. */
#include "common/events.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/loop.h"
#include "punch/punch.h"

struct punch_events {
    FILE *out;
    bool owned;
    uint64_t start_ms;
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
    punch_events_close(*ev);
    *ev = now;
    return 0;
}

void punch_events_emit(punch_events *ev, const char *name, const char *fields_fmt, ...)
{
    if (!ev)
        return;
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
