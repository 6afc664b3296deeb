/* SPDX-License-Identifier: MIT */
/*
 * A scratch folder for the tests that use a real file system (known_peers,
 * private files): made fresh under /tmp, removed whole at the end.
 * Include after <cmocka.h>; define _GNU_SOURCE first (mkdtemp).
 */
#ifndef PUNCH_TEST_TEMP_DIR_H
#define PUNCH_TEST_TEMP_DIR_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Make /tmp/punch-NAME-XXXXXX into dir (64 bytes). Returns 0 or -1. */
static inline int temp_dir_make(char dir[64], const char *name)
{
    snprintf(dir, 64, "/tmp/punch-%s-XXXXXX", name);
    return mkdtemp(dir) ? 0 : -1;
}

/* rm -rf dir. Returns 0 or -1. */
static inline int temp_dir_remove(const char *dir)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Write text to path, replacing it (a cmocka assertion fails if it cannot). */
static inline void temp_file_write(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

#endif
