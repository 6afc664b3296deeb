/* SPDX-License-Identifier: MIT */
/* punchd's config file: see config.h. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cli.h"
#include "io/log.h"

/* "punchd: FILE:LINE: message" on stderr; returns 2. */
static int bad_line(const punchd_config *c, unsigned line, const char *what, const char *text)
{
    fprintf(c->errors ? c->errors : stderr, "punchd: %s:%u: %s '%s'\n", c->path, line, what,
            text);
    return 2;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

/* Split one line (NUL-terminated, in place) into *e. Returns 0, 1 for a
 * line with nothing on it, or 2 (printed). */
static int split_line(const punchd_config *c, unsigned line, char *text,
                      punchd_config_entry *e)
{
    char *hash = strchr(text, '#');
    if (hash)
        *hash = '\0';
    char *s = trim(text);
    if (!*s)
        return 1;
    char *eq = strchr(s, '=');
    e->line = line;
    e->value = NULL;
    if (eq) {
        *eq = '\0';
        e->value = trim(eq + 1);
        if (!*e->value)
            return bad_line(c, line, "no value after '=' for", trim(s));
    }
    e->key = trim(s);
    if (!*e->key)
        return bad_line(c, line, "no key before '=' in", e->value);
    for (const char *k = e->key; *k; k++)
        if (!((*k >= 'a' && *k <= 'z') || (*k >= '0' && *k <= '9') || *k == '-'))
            return bad_line(c, line, "not a key (KEY = VALUE, KEY a long option):", e->key);
    return 0;
}

/* Read the whole file into a NUL-terminated buffer. Returns 0, 1 (printed)
 * or -1 when it does not exist. */
static int read_text(const char *path, char **out)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        if (errno == ENOENT)
            return -1;
        fprintf(stderr, "punchd: cannot read config file %s: %s\n", path, strerror(errno));
        return 1;
    }
    char *text = malloc(PUNCHD_CONFIG_MAX_BYTES + 1);
    size_t n = text ? fread(text, 1, PUNCHD_CONFIG_MAX_BYTES + 1, f) : 0;
    int err = ferror(f);
    fclose(f);
    if (!text || err || n > PUNCHD_CONFIG_MAX_BYTES || memchr(text, '\0', n)) {
        fprintf(stderr, "punchd: config file %s: %s\n", path,
                !text ? "out of memory" : err ? "read error"
                : n > PUNCHD_CONFIG_MAX_BYTES ? "over 64 KiB" : "holds a NUL byte");
        free(text);
        return 1;
    }
    text[n] = '\0';
    *out = text;
    return 0;
}

int punchd_config_split(punchd_config *c)
{
    unsigned line = 0;
    for (char *s = c->text; *s;) {
        char *nl = strchr(s, '\n');
        line++;
        if (nl)
            *nl = '\0';
        if (strlen(s) > PUNCHD_CONFIG_MAX_LINE)
            return bad_line(c, line, "a line over 1024 bytes:", "...");
        if (c->n == PUNCHD_CONFIG_MAX_ENTRIES)
            return bad_line(c, line, "more than 256 settings: one too many is", trim(s));
        int rc = split_line(c, line, s, &c->entries[c->n]);
        if (rc == 2)
            return 2;
        if (rc == 0)
            c->n++;
        if (!nl)
            break;
        s = nl + 1;
    }
    return 0;
}

static int apply_all(const punchd_config *c, punchd_config_fn fn, void *arg)
{
    char where[PUNCHD_CONFIG_MAX_LINE];
    int rc = 0;
    for (size_t i = 0; i < c->n && rc == 0; i++) {
        snprintf(where, sizeof(where), "%s:%u", c->path, c->entries[i].line);
        punch_cli_set_where(where);
        rc = fn(arg, c->entries[i].key, c->entries[i].value);
    }
    punch_cli_set_where(NULL);
    return rc;
}

int punchd_config_load(const char *path, bool missing_ok, punchd_config_fn fn, void *arg,
                       punchd_config **out)
{
    *out = NULL;
    punchd_config *c = calloc(1, sizeof(*c));
    if (!c || !(c->path = strdup(path))) {
        free(c);
        fprintf(stderr, "punchd: out of memory\n");
        return 1;
    }
    int rc = read_text(path, &c->text);
    if (rc < 0 && !missing_ok)
        fprintf(stderr, "punchd: cannot read config file %s: %s\n", path, strerror(ENOENT));
    if (rc < 0) {
        punchd_config_free(c);
        return missing_ok ? 0 : 1;
    }
    if (rc == 0 && (rc = punchd_config_split(c)) == 0)
        rc = apply_all(c, fn, arg);
    if (rc != 0) {
        punchd_config_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void punchd_config_free(punchd_config *c)
{
    if (!c)
        return;
    free(c->text);
    free(c->path);
    free(c);
}

const char *punchd_config_path(int argc, char **argv, const struct option *longs, int config_val,
                               bool *given)
{
    const char *path = NULL;
    int c;
    opterr = 0;
    optind = 0; /* glibc: start afresh */
    while ((c = getopt_long(argc, argv, ":", longs, NULL)) != -1)
        if (c == config_val)
            path = optarg;
    optind = 0;
    *given = path != NULL;
    return path;
}

/* The values of key in c, one string ("a\nb"), for comparing. */
static void values_of(const punchd_config *c, const char *key, char *out, size_t cap)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; c && i < c->n; i++)
        if (strcmp(c->entries[i].key, key) == 0 && used < cap)
            used += (size_t)snprintf(out + used, cap - used, "%s\n",
                                     c->entries[i].value ? c->entries[i].value : "yes");
}

static bool is_live(const char *key, const char *const *live)
{
    for (; *live; live++)
        if (strcmp(key, *live) == 0)
            return true;
    return false;
}

/* Warn once for key when its values differ between old and now. */
static void report_key(const punchd_config *old, const punchd_config *now, const char *key,
                       const char *const *live)
{
    char before[PUNCHD_CONFIG_MAX_LINE * 2], after[PUNCHD_CONFIG_MAX_LINE * 2];
    if (is_live(key, live))
        return;
    values_of(old, key, before, sizeof(before));
    values_of(now, key, after, sizeof(after));
    if (strcmp(before, after) != 0)
        punch_log(PUNCH_LOG_WARN, "%s: '%s' changed; it takes effect when punchd restarts",
                  now ? now->path : old->path, key);
}

/* Whether key appears in c before entry i (so it was reported already). */
static bool seen_before(const punchd_config *c, size_t i)
{
    for (size_t j = 0; j < i; j++)
        if (strcmp(c->entries[j].key, c->entries[i].key) == 0)
            return true;
    return false;
}

void punchd_config_report_changes(const punchd_config *old, const punchd_config *now,
                                  const char *const *live)
{
    for (size_t i = 0; now && i < now->n; i++)
        if (!seen_before(now, i))
            report_key(old, now, now->entries[i].key, live);
    char tmp[4];
    for (size_t i = 0; old && i < old->n; i++) {
        values_of(now, old->entries[i].key, tmp, sizeof(tmp));
        if (!seen_before(old, i) && tmp[0] == '\0')
            report_key(old, now, old->entries[i].key, live);
    }
}
