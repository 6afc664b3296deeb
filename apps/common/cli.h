/* SPDX-License-Identifier: MIT */
/* Shared by the programs in apps/: the usage-error convention of SPEC.md §3. */
#ifndef PUNCH_COMMON_CLI_H
#define PUNCH_COMMON_CLI_H

/* Print "PROGRAM: MESSAGE" and "Try 'PROGRAM --help'." on stderr; returns 2,
 * the exit code of a usage error. */
int punch_cli_usage_error(const char *program, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* While where is set ("FILE:LINE" of a config file), usage errors name it
 * after the program: "PROGRAM: FILE:LINE: MESSAGE". NULL clears it. The
 * string must live until cleared. */
void punch_cli_set_where(const char *where);

#endif
