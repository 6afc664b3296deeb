/* SPDX-License-Identifier: MIT */
/* Lists of peers by name and key: see peer_list.h. */
#include "crypto/peer_list.h"

#include <stdio.h>
#include <string.h>

#include "wire/msg.h"

#define KEY_TEXT_LEN (PUNCH_KEY_B64_LEN - 1) /* 44 characters */

static bool blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* Skips the blanks at text[*at..len); returns where the next token starts
 * and, in *n, its length up to a blank or the end (0: none). */
static const char *token(const char *text, size_t len, size_t *at, size_t *n)
{
    while (*at < len && blank(text[*at]))
        (*at)++;
    const char *start = text + *at;
    for (*n = 0; *at < len && !blank(text[*at]); (*at)++)
        (*n)++;
    return start;
}

static int bad(const char **why, const char *reason)
{
    *why = reason;
    return PUNCH_ERR_MALFORMED;
}

static int take_name(const char *p, size_t n, punch_peer_entry *e, const char **why)
{
    if (n == 0)
        return bad(why, "no name before the key");
    if (n > PUNCH_NAME_MAX)
        return bad(why, "the name is longer than 63 characters");
    memcpy(e->name, p, n);
    e->name[n] = '\0';
    if (!punch_msg_valid_name(e->name))
        return bad(why, "the name has a character names may not have (quote, backslash, "
                        "control)");
    return 0;
}

static int take_key(const char *p, size_t n, punch_peer_entry *e, const char **why)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                   "0123456789+/=";
    char key[KEY_TEXT_LEN + 1];
    if (n != KEY_TEXT_LEN)
        return bad(why, "the key is not 44 characters of base64 (as punch keygen prints it)");
    for (size_t i = 0; i < n; i++) /* libsodium alone would take some other bytes too */
        if (!memchr(alphabet, p[i], sizeof(alphabet) - 1))
            return bad(why, "the key is not base64 of 32 bytes (as punch keygen prints it)");
    memcpy(key, p, n);
    key[n] = '\0';
    if (punch_key_decode(key, e->key) != 0)
        return bad(why, "the key is not base64 of 32 bytes (as punch keygen prints it)");
    return 0;
}

/* Two tokens are NAME KEY, whatever '@' the name holds (what
 * punch_peer_list_format writes); one token is NAME@KEY, cut at its last
 * '@' (a key has none). */
int punch_peer_entry_parse(const char *text, size_t len, punch_peer_entry *e, const char **why)
{
    size_t at = 0, n1, n2, n3;
    memset(e, 0, sizeof(*e)); /* entries compare whole */
    const char *t1 = token(text, len, &at, &n1), *t2 = token(text, len, &at, &n2);
    token(text, len, &at, &n3);
    if (n3 != 0)
        return bad(why, "more than a name and a key on the line");
    if (n1 == 0)
        return bad(why, "no peer on the line");
    if (n2 == 0) {
        const char *sign = NULL;
        for (size_t i = 0; i < n1; i++)
            sign = t1[i] == '@' ? t1 + i : sign;
        if (!sign)
            return bad(why, "no key after the name (NAME KEY or NAME@KEY)");
        t2 = sign + 1;
        n2 = n1 - (size_t)(t2 - t1);
        n1 = (size_t)(sign - t1);
    }
    int rc = take_name(t1, n1, e, why);
    return rc ? rc : take_key(t2, n2, e, why);
}

static bool blank_line(const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!blank(text[i]))
            return false;
    return true;
}

static int stop(int rc, const char **why, const char *reason)
{
    *why = reason;
    return rc;
}

int punch_peer_list_parse(const char *text, size_t len, unsigned flags, punch_peer_list *l,
                          size_t *line, const char **why)
{
    l->n = 0;
    *line = 0;
    if (len > PUNCH_PEER_LIST_MAX_BYTES)
        return stop(PUNCH_ERR_LIMIT, why, "longer than 256 KiB");
    if (memchr(text, '\0', len))
        return stop(PUNCH_ERR_MALFORMED, why, "a NUL byte: not a text file");
    for (size_t off = 0; off < len;) {
        const char *nl = memchr(text + off, '\n', len - off);
        size_t n = nl ? (size_t)(nl - (text + off)) : len - off;
        ++*line;
        if (n > PUNCH_PEER_LIST_LINE_MAX)
            return stop(PUNCH_ERR_LIMIT, why, "a line longer than 256 characters");
        if (!blank_line(text + off, n)) {
            if (l->n == PUNCH_PEER_LIST_MAX)
                return stop(PUNCH_ERR_LIMIT, why, "more than 1024 peers");
            punch_peer_entry *e = &l->e[l->n];
            int rc = punch_peer_entry_parse(text + off, n, e, why);
            if (rc != 0)
                return rc;
            if ((flags & PUNCH_PEER_LIST_UNIQUE) && punch_peer_list_find(l, e->name, NULL) >= 0)
                return stop(PUNCH_ERR_MALFORMED, why, "a name that an earlier line has already");
            l->n++;
        }
        off += n + 1;
    }
    return 0;
}

int punch_peer_list_find(const punch_peer_list *l, const char *name, const uint8_t *key)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->e[i].name, name) == 0 &&
            (!key || memcmp(l->e[i].key, key, PUNCH_KEY_LEN) == 0))
            return (int)i;
    return -1;
}

int punch_peer_list_learn(punch_peer_list *l, const char *name, const uint8_t key[PUNCH_KEY_LEN])
{
    if (!punch_msg_valid_name(name))
        return PUNCH_ERR_INVAL;
    int i = punch_peer_list_find(l, name, NULL);
    if (i >= 0)
        return memcmp(l->e[i].key, key, PUNCH_KEY_LEN) == 0 ? 0 : PUNCH_ERR_INTEGRITY;
    if (l->n == PUNCH_PEER_LIST_MAX)
        return PUNCH_ERR_LIMIT;
    punch_peer_entry *e = &l->e[l->n++];
    memset(e, 0, sizeof(*e));
    snprintf(e->name, sizeof(e->name), "%s", name);
    memcpy(e->key, key, PUNCH_KEY_LEN);
    return 0;
}

size_t punch_peer_list_format(const punch_peer_list *l, char *out, size_t cap)
{
    size_t off = 0;
    char key[PUNCH_KEY_B64_LEN];
    if (cap == 0)
        return 0;
    out[0] = '\0';
    for (size_t i = 0; i < l->n; i++) {
        punch_key_encode(l->e[i].key, key);
        int n = snprintf(out + off, cap - off, "%s %s\n", l->e[i].name, key);
        if (n < 0 || (size_t)n >= cap - off)
            return 0;
        off += (size_t)n;
    }
    return off;
}
