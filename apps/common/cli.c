/* SPDX-License-Identifier: MIT */
/* Command-line helpers: see cli.h. */
#include "common/cli.h"

#include <stdarg.h>
#include <stdio.h>

static const char *cli_where;

void punch_cli_set_where(const char *where)
{
    cli_where = where;
}

int punch_cli_usage_error(const char *program, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", program);
    if (cli_where)
        fprintf(stderr, "%s: ", cli_where);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry '%s --help'.\n", program);
    va_end(ap);
    return 2;
}
