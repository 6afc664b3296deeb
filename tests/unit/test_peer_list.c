/* SPDX-License-Identifier: MIT */
/* Lists of peers by name and key (src/crypto/peer_list.c): known_peers and
 * --allowed-peers. Both forms of a line, blank lines, no comments ('#bobz'
 * is a name like any), every malformed line refused with its number, the
 * bounds, trust on first use, and text that round-trips. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crypto/peer_list.h"

static void key_of(uint8_t seed, uint8_t key[PUNCH_KEY_LEN], char text[PUNCH_KEY_B64_LEN])
{
    for (int i = 0; i < PUNCH_KEY_LEN; i++)
        key[i] = (uint8_t)(seed + i);
    punch_key_encode(key, text);
}

static int parse(const char *text, unsigned flags, punch_peer_list *l, size_t *line,
                 const char **why)
{
    return punch_peer_list_parse(text, strlen(text), flags, l, line, why);
}

static void both_forms(void **state)
{
    (void)state;
    static punch_peer_list l;
    uint8_t k1[PUNCH_KEY_LEN], k2[PUNCH_KEY_LEN];
    char t1[PUNCH_KEY_B64_LEN], t2[PUNCH_KEY_B64_LEN], text[512];
    key_of(1, k1, t1);
    key_of(2, k2, t2);
    snprintf(text, sizeof(text), "alice %s\n\n  \t\r\nbob@%s\r\n\tcarol\t %s  ", t1, t2, t1);
    size_t line;
    const char *why;
    assert_int_equal(parse(text, 0, &l, &line, &why), 0);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.e[0].name, "alice");
    assert_memory_equal(l.e[0].key, k1, PUNCH_KEY_LEN);
    assert_string_equal(l.e[1].name, "bob");
    assert_memory_equal(l.e[1].key, k2, PUNCH_KEY_LEN);
    assert_string_equal(l.e[2].name, "carol");
    assert_int_equal(punch_peer_list_find(&l, "bob", k2), 1);
    assert_int_equal(punch_peer_list_find(&l, "bob", k1), -1);
    assert_int_equal(punch_peer_list_find(&l, "dave", NULL), -1);
}

/* '#' starts a name, never a comment: the finding of issue 12 (#4). */
static void hash_is_a_name(void **state)
{
    (void)state;
    static punch_peer_list l;
    uint8_t k1[PUNCH_KEY_LEN], k2[PUNCH_KEY_LEN];
    char t1[PUNCH_KEY_B64_LEN], t2[PUNCH_KEY_B64_LEN], text[256];
    key_of(1, k1, t1);
    key_of(2, k2, t2);
    snprintf(text, sizeof(text), "#bobz %s\n", t1);
    size_t line;
    const char *why;
    assert_int_equal(parse(text, PUNCH_PEER_LIST_UNIQUE, &l, &line, &why), 0);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.e[0].name, "#bobz");
    assert_int_equal(punch_peer_list_learn(&l, "#bobz", k2), PUNCH_ERR_INTEGRITY);
    assert_int_equal(punch_peer_list_learn(&l, "#bobz", k1), 0);
    assert_int_equal(l.n, 1);
    /* A comment-looking line is a bad peer, not something skipped. */
    assert_int_equal(parse("# a comment\n", 0, &l, &line, &why), PUNCH_ERR_MALFORMED);
    assert_int_equal(line, 1);
}

static void expect_bad(const char *text, unsigned flags, int rc, size_t want_line,
                       const char *want_why)
{
    static punch_peer_list l;
    size_t line;
    const char *why = NULL;
    assert_int_equal(parse(text, flags, &l, &line, &why), rc);
    assert_int_equal(line, want_line);
    assert_non_null(why);
    if (!strstr(why, want_why))
        fail_msg("'%s': why is '%s', want '%s'", text, why, want_why);
}

static void malformed_lines(void **state)
{
    (void)state;
    uint8_t k[PUNCH_KEY_LEN];
    char t[PUNCH_KEY_B64_LEN], text[512];
    key_of(7, k, t);
    snprintf(text, sizeof(text), "a %s\nb\n", t);
    expect_bad(text, 0, PUNCH_ERR_MALFORMED, 2, "no key after the name");
    snprintf(text, sizeof(text), "a %s\n\nb %s extra\n", t, t);
    expect_bad(text, 0, PUNCH_ERR_MALFORMED, 3, "more than a name and a key");
    expect_bad("a AAAA\n", 0, PUNCH_ERR_MALFORMED, 1, "not 44 characters");
    expect_bad("a ********************************************\n", 0, PUNCH_ERR_MALFORMED, 1,
               "not base64");
    /* A byte outside base64's alphabet, which libsodium alone takes. */
    snprintf(text, sizeof(text), "a \xc4%s\n", t + 1);
    expect_bad(text, 0, PUNCH_ERR_MALFORMED, 1, "not base64");
    snprintf(text, sizeof(text), "@%s\n", t);
    expect_bad(text, 0, PUNCH_ERR_MALFORMED, 1, "no name");
    snprintf(text, sizeof(text), "a\"b %s\n", t);
    expect_bad(text, 0, PUNCH_ERR_MALFORMED, 1, "a character names may not have");
    snprintf(text, sizeof(text), "%s %s\n",
             "n234567890123456789012345678901234567890123456789012345678901234", t);
    expect_bad(text, 0, PUNCH_ERR_MALFORMED, 1, "longer than 63");
    snprintf(text, sizeof(text), "a %s\na %s\n", t, t);
    expect_bad(text, PUNCH_PEER_LIST_UNIQUE, PUNCH_ERR_MALFORMED, 2, "an earlier line");
    static punch_peer_list l;
    size_t line;
    const char *why;
    assert_int_equal(parse(text, 0, &l, &line, &why), 0); /* allowed: a name, two keys */
    char nul[] = "a b\0c\n";
    assert_int_equal(punch_peer_list_parse(nul, sizeof(nul) - 1, 0, &l, &line, &why),
                     PUNCH_ERR_MALFORMED);
}

static void bounds(void **state)
{
    (void)state;
    uint8_t k[PUNCH_KEY_LEN];
    char t[PUNCH_KEY_B64_LEN], line_text[300];
    key_of(9, k, t);
    /* A line of 257 characters (a good peer, then blanks) is refused; 256 is not. */
    snprintf(line_text, sizeof(line_text), "a %s%*s\n", t, 257 - 46, "");
    expect_bad(line_text, 0, PUNCH_ERR_LIMIT, 1, "longer than 256");
    static punch_peer_list one;
    size_t one_line;
    const char *one_why;
    assert_int_equal(punch_peer_list_parse(line_text + 1, strlen(line_text) - 1, 0, &one,
                                           &one_line, &one_why), PUNCH_ERR_MALFORMED); /* " KEY" */
    line_text[strlen(line_text) - 2] = '\n';
    assert_int_equal(punch_peer_list_parse(line_text, strlen(line_text), 0, &one, &one_line,
                                           &one_why), 0);
    size_t cap = (PUNCH_PEER_LIST_MAX + 1) * 64;
    char *text = malloc(cap), *p = text;
    for (int i = 0; i <= PUNCH_PEER_LIST_MAX; i++)
        p += snprintf(p, cap - (size_t)(p - text), "p%d %s\n", i, t);
    expect_bad(text, 0, PUNCH_ERR_LIMIT, PUNCH_PEER_LIST_MAX + 1, "more than 1024");
    /* Up to the bound it parses, and a full list learns no more. */
    *strstr(text, "p1024 ") = '\0';
    static punch_peer_list l;
    size_t line;
    const char *why;
    assert_int_equal(punch_peer_list_parse(text, strlen(text), PUNCH_PEER_LIST_UNIQUE, &l,
                                           &line, &why), 0);
    assert_int_equal(l.n, PUNCH_PEER_LIST_MAX);
    assert_int_equal(punch_peer_list_learn(&l, "newcomer", k), PUNCH_ERR_LIMIT);
    assert_int_equal(punch_peer_list_learn(&l, "p5", k), 0);
    free(text);
}

/* What format writes parses back the same, '@' in a name included. */
static void round_trip(void **state)
{
    (void)state;
    static punch_peer_list l, back;
    uint8_t k[PUNCH_KEY_LEN];
    char t[PUNCH_KEY_B64_LEN];
    key_of(3, k, t);
    l.n = 0;
    assert_int_equal(punch_peer_list_learn(&l, "me@home", k), 0);
    assert_int_equal(punch_peer_list_learn(&l, "#x", k), 0);
    assert_int_equal(punch_peer_list_learn(&l, "bad name", k), PUNCH_ERR_INVAL);
    char *text = malloc(PUNCH_PEER_LIST_MAX_BYTES + 1);
    size_t len = punch_peer_list_format(&l, text, PUNCH_PEER_LIST_MAX_BYTES + 1);
    assert_true(len > 0);
    size_t line;
    const char *why;
    assert_int_equal(punch_peer_list_parse(text, len, PUNCH_PEER_LIST_UNIQUE, &back, &line, &why),
                     0);
    assert_int_equal(back.n, 2);
    assert_string_equal(back.e[0].name, "me@home");
    assert_memory_equal(back.e[0].key, k, PUNCH_KEY_LEN);
    assert_string_equal(back.e[1].name, "#x");
    assert_int_equal(punch_peer_list_format(&l, text, 10), 0);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(both_forms),      cmocka_unit_test(hash_is_a_name),
        cmocka_unit_test(malformed_lines), cmocka_unit_test(bounds),
        cmocka_unit_test(round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
