/* SPDX-License-Identifier: MIT */
/*
 * punchd's config file (/etc/punch/punchd.conf, or --config FILE): one
 * setting a line, its key the long option without "--":
 *
 *     # comments and blank lines are skipped
 *     listen = 0.0.0.0:3478
 *     listen = [::]:3478
 *     key = /var/lib/punchd/server.key
 *     no-relay
 *
 * A flag (no-relay, no-tcp) stands alone or takes yes or no. The options
 * on the command line override the file: each is applied after it, and a
 * --listen given there replaces the file's listen lines. This file only
 * splits lines; what a key means is the caller's (its apply function).
 */
#ifndef PUNCH_PUNCHD_CONFIG_H
#define PUNCH_PUNCHD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define PUNCHD_DEFAULT_CONFIG "/etc/punch/punchd.conf"
#define PUNCHD_CONFIG_MAX_BYTES (64 * 1024)
#define PUNCHD_CONFIG_MAX_LINE 1024
#define PUNCHD_CONFIG_MAX_ENTRIES 256

/* Apply one setting: value is NULL for a key alone on its line. Returns 0
 * or a usage error's 2 (already printed; the file and line are named in
 * it: punch_cli_usage_error prints the place punchd_config_load set). */
typedef int (*punchd_config_fn)(void *arg, const char *key, const char *value);

typedef struct punchd_config_entry {
    const char *key, *value; /* value NULL: the key alone */
    unsigned line;
} punchd_config_entry;

/* A file read: its text (keys and values point into it) and its lines. */
typedef struct punchd_config {
    char *path;
    FILE *errors;            /* where bad lines are told; NULL: stderr */
    char *text;
    size_t n;
    punchd_config_entry entries[PUNCHD_CONFIG_MAX_ENTRIES];
} punchd_config;

/* Read path and apply each setting in order. missing_ok: a file that does
 * not exist is an empty one (the default path). Returns 0 with *out set
 * (free it with punchd_config_free; NULL when there was no file), 1 when
 * the file cannot be read or is too big, 2 for a bad line; either printed
 * on stderr as "punchd: FILE:LINE: what is wrong". */
int punchd_config_load(const char *path, bool missing_ok, punchd_config_fn fn, void *arg,
                       punchd_config **out);
void punchd_config_free(punchd_config *c);

/* Split c->text (NUL-terminated, changed in place) into c->entries, c->path
 * naming it in errors: the parser of punchd_config_load, on its own for
 * tests/fuzz/fuzz_config.c. Returns 0 or 2 (printed as FILE:LINE). */
int punchd_config_split(punchd_config *c);

/* The --config FILE of argv (the last one given), or NULL: a first pass
 * of getopt_long over longs that only looks for the option whose val is
 * config_val (so "--config=FILE" and abbreviations count too). *given
 * says whether one was. Leaves getopt ready to start afresh. */
struct option;
const char *punchd_config_path(int argc, char **argv, const struct option *longs, int config_val,
                               bool *given);

/* After a reload: log (warn) each key whose values differ between old and
 * now, except those in live (NULL-terminated), which a reload applies. */
void punchd_config_report_changes(const punchd_config *old, const punchd_config *now,
                                  const char *const *live);

#endif
