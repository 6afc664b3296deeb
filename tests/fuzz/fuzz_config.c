/* SPDX-License-Identifier: MIT */
/* libFuzzer target: punchd's config file parser (apps/punchd/config.c).
 * Whatever the text: every setting it finds has a key of [a-z0-9-] only,
 * a value (when there is one) that is not empty and has no '#' or line
 * break, both inside the text, on a line that exists, in order; at most
 * PUNCHD_CONFIG_MAX_ENTRIES of them. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_entry(const punchd_config *c, size_t size, size_t i, unsigned lines)
{
    const punchd_config_entry *e = &c->entries[i];
    if (!e->key || e->key < c->text || e->key >= c->text + size || !*e->key)
        abort();
    if (strspn(e->key, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(e->key))
        abort();
    if (e->value && (e->value < c->text || e->value >= c->text + size || !*e->value ||
                     strpbrk(e->value, "#\n")))
        abort();
    if (e->line == 0 || e->line > lines || (i > 0 && e->line <= c->entries[i - 1].line))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *quiet; /* bad lines are told there, not on stderr */
    if (!quiet && !(quiet = fopen("/dev/null", "w")))
        abort();
    if (size > PUNCHD_CONFIG_MAX_BYTES || memchr(data, '\0', size))
        return 0; /* punchd_config_load refuses these before splitting */
    static punchd_config c;
    memset(&c, 0, sizeof(c));
    c.path = "fuzz.conf";
    c.errors = quiet;
    c.text = malloc(size + 1);
    if (!c.text)
        return 0;
    memcpy(c.text, data, size);
    c.text[size] = '\0';
    unsigned lines = 1;
    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';
    int rc = punchd_config_split(&c);
    if ((rc != 0 && rc != 2) || c.n > PUNCHD_CONFIG_MAX_ENTRIES)
        abort();
    for (size_t i = 0; rc == 0 && i < c.n; i++)
        check_entry(&c, size, i, lines);
    free(c.text);
    return 0;
}
