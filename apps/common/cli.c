/* SPDX-License-Identifier: MIT */
/* Command-line helpers: see cli.h. */
#include "common/cli.h"

#include <stdarg.h>
#include <stdio.h>

int punch_cli_usage_error(const char *program, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", program);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry '%s --help'.\n", program);
    va_end(ap);
    return 2;
}
