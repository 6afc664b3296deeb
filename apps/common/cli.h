/* SPDX-License-Identifier: MIT */
/* Shared by the programs in apps/: the usage-error convention of SPEC.md §3. */
#ifndef PUNCH_COMMON_CLI_H
#define PUNCH_COMMON_CLI_H

/* Print "PROGRAM: MESSAGE" and "Try 'PROGRAM --help'." on stderr; returns 2,
 * the exit code of a usage error. */
int punch_cli_usage_error(const char *program, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
