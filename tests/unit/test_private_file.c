/* SPDX-License-Identifier: MIT */
/* Private files on a real file system (src/io/file.c): a file is read
 * only when no bit of the refused mode is set, every byte up to the cap,
 * and a missing file or a folder is named in one line. Then its callers'
 * own refusals: a server's token others may write is not used (the key
 * file's and known_peers' refusals are in test_public_io and
 * test_known_peers). */
#define _GNU_SOURCE /* mkdtemp */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/server_tokens.h"
#include "io/file.h"
#include "temp_dir.h"

static char dir[64], path[128];

static int make_dir(void **state)
{
    (void)state;
    if (temp_dir_make(dir, "private") != 0)
        return -1;
    snprintf(path, sizeof(path), "%s/file", dir);
    return 0;
}

static int remove_dir(void **state)
{
    (void)state;
    return temp_dir_remove(dir);
}

static void write_file(const char *text, mode_t mode)
{
    temp_file_write(path, text);
    assert_int_equal(chmod(path, mode), 0);
}

static void reads_a_private_file_whole(void **state)
{
    (void)state;
    write_file("a private line\n", 0600);
    char buf[64], err[PUNCH_FILE_ERRLEN] = "";
    punch_file_info f;
    assert_int_equal(punch_private_file_read(path, PUNCH_FILE_OTHERS_ANY, buf, sizeof(buf), &f, err),
                     0);
    assert_int_equal(f.len, strlen("a private line\n"));
    assert_memory_equal(buf, "a private line\n", f.len);
    assert_int_equal(f.mode, 0600);
    /* Others may read it: fine when only their writing is refused. */
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(punch_private_file_read(path, PUNCH_FILE_OTHERS_WRITE, buf, sizeof(buf), &f,
                                             err), 0);
    assert_int_equal(f.len, strlen("a private line\n"));
    /* A cap shorter than the file: its first cap bytes. */
    assert_int_equal(punch_private_file_read(path, PUNCH_FILE_OTHERS_WRITE, buf, 4, &f, err), 0);
    assert_int_equal(f.len, 4);
    assert_memory_equal(buf, "a pr", 4);
    assert_string_equal(err, "");
}

static void refuses_by_mode_bits(void **state)
{
    (void)state;
    static const struct {
        mode_t mode;
        unsigned refused;
        bool read;
    } cases[] = {
        {0600, PUNCH_FILE_OTHERS_ANY, true},    {0400, PUNCH_FILE_OTHERS_ANY, true},
        {0640, PUNCH_FILE_OTHERS_ANY, false},   {0604, PUNCH_FILE_OTHERS_ANY, false},
        {0610, PUNCH_FILE_OTHERS_ANY, false},   {0644, PUNCH_FILE_OTHERS_WRITE, true},
        {0755, PUNCH_FILE_OTHERS_WRITE, true},  {0620, PUNCH_FILE_OTHERS_WRITE, false},
        {0602, PUNCH_FILE_OTHERS_WRITE, false}, {0666, PUNCH_FILE_OTHERS_WRITE, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        write_file("secret", cases[i].mode);
        char buf[16], err[PUNCH_FILE_ERRLEN] = "untouched";
        punch_file_info f;
        int rc = punch_private_file_read(path, cases[i].refused, buf, sizeof(buf), &f, err);
        assert_int_equal(f.mode, cases[i].mode);
        if (cases[i].read) {
            assert_int_equal(rc, 0);
            assert_int_equal(f.len, 6);
        } else {
            /* Refused before a byte is read; the caller words the refusal. */
            assert_int_equal(rc, PUNCH_ERR_UNSUPPORTED);
            assert_int_equal(f.len, 0);
            assert_string_equal(err, "untouched");
        }
    }
}

static void names_a_missing_file_and_a_folder(void **state)
{
    (void)state;
    char buf[16], err[PUNCH_FILE_ERRLEN], want[PUNCH_FILE_ERRLEN];
    punch_file_info f;
    unlink(path);
    assert_int_equal(punch_private_file_read(path, PUNCH_FILE_OTHERS_ANY, buf, sizeof(buf), &f, err),
                     PUNCH_ERR_NOTFOUND);
    snprintf(want, sizeof(want), "cannot read %s: No such file or directory", path);
    assert_string_equal(err, want);
    /* A folder opens, and its read fails. */
    assert_int_equal(chmod(dir, 0700), 0);
    assert_int_equal(punch_private_file_read(dir, PUNCH_FILE_OTHERS_ANY, buf, sizeof(buf), &f, err),
                     PUNCH_ERR_IO);
    snprintf(want, sizeof(want), "cannot read %s: Is a directory", dir);
    assert_string_equal(err, want);
}

static void server_token_others_may_write_is_not_used(void **state)
{
    (void)state;
    punch_server_token t = {.nat = 1, .rtt_ms = 20}, got;
    for (int i = 0; i < PUNCH_KEY_BYTES; i++)
        t.server_key[i] = (uint8_t)(i * 3);
    for (int i = 0; i < PUNCH_TOKEN_BYTES; i++)
        t.token[i] = (uint8_t)(200 - i);
    char err[PUNCH_FILE_ERRLEN], want[PUNCH_FILE_ERRLEN];
    unlink(path);
    assert_int_equal(punch_server_token_save(path, &t, err), 0);
    assert_int_equal(punch_server_token_load(path, &got, err), 0);
    assert_memory_equal(got.token, t.token, PUNCH_TOKEN_BYTES);
    assert_int_equal(got.rtt_ms, 20);
    assert_int_equal(chmod(path, 0660), 0);
    assert_int_equal(punch_server_token_load(path, &got, err), PUNCH_ERR_UNSUPPORTED);
    snprintf(want, sizeof(want), "%s may be written by others (mode 0660): not used", path);
    assert_string_equal(err, want);
    /* Readable by others is fine: a token is no secret of ours. */
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(punch_server_token_load(path, &got, err), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reads_a_private_file_whole),
        cmocka_unit_test(refuses_by_mode_bits),
        cmocka_unit_test(names_a_missing_file_and_a_folder),
        cmocka_unit_test(server_token_others_may_write_is_not_used),
    };
    return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
