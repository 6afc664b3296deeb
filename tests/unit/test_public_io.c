/* SPDX-License-Identifier: MIT */
/* What punch/io.h and punch.h give a program besides the agent: the log
 * handler (levels kept to max_level, lines formatted, stderr again after
 * NULL), and identity keys (the public key of a secret, base64 both ways,
 * the key file saved and loaded, refused when others may read it, never
 * overwritten without replace). Key files live in a fresh temporary folder. */
#define _GNU_SOURCE /* mkdtemp under -std=c11 */
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

#include "io/log.h"
#include "punch/io.h"
#include "punch/keyfile.h"

static int heard_level, heard_count;
static char heard[128];

static void handler(void *arg, int level, const char *message)
{
    assert_ptr_equal(arg, &heard_count);
    heard_level = level;
    heard_count++;
    snprintf(heard, sizeof(heard), "%s", message);
}

static void log_handler_gets_the_lines(void **unused)
{
    (void)unused;
    punch_log_set_handler(handler, &heard_count, PUNCH_LOG_INFO);
    punch_log(PUNCH_LOG_WARN, "socket %d: %s", 7, "gone");
    assert_int_equal(heard_count, 1);
    assert_int_equal(heard_level, PUNCH_LOG_WARN);
    assert_string_equal(heard, "socket 7: gone");
    punch_log(PUNCH_LOG_DEBUG, "not this one");
    assert_int_equal(heard_count, 1);
    punch_log_set_handler(NULL, NULL, 0);
    punch_log(PUNCH_LOG_DEBUG, "to stderr, below its level: nowhere");
    assert_int_equal(heard_count, 1);
}

static void keys_as_text(void **unused)
{
    (void)unused;
    uint8_t secret[PUNCH_KEY_BYTES], pub[PUNCH_KEY_BYTES], back[PUNCH_KEY_BYTES];
    for (int i = 0; i < PUNCH_KEY_BYTES; i++)
        secret[i] = (uint8_t)(i * 7 + 1);
    assert_int_equal(punch_key_public(secret, pub), 0);
    assert_memory_not_equal(pub, secret, PUNCH_KEY_BYTES);
    char text[PUNCH_KEY_B64_LEN];
    punch_key_encode(pub, text);
    assert_int_equal(strlen(text), 44);
    assert_int_equal(punch_key_decode(text, back), 0);
    assert_memory_equal(back, pub, PUNCH_KEY_BYTES);
    assert_int_equal(punch_key_decode("not a key", back), PUNCH_ERR_MALFORMED);
    assert_int_equal(punch_key_public(NULL, pub), PUNCH_ERR_INVAL);
}

static void key_file_round_trip(void **unused)
{
    (void)unused;
    char dir[] = "/tmp/punch_keys_XXXXXX", path[128], err[256];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/sub/key", dir);
    uint8_t secret[PUNCH_KEY_BYTES], other[PUNCH_KEY_BYTES], loaded[PUNCH_KEY_BYTES];
    assert_int_equal(punch_random_bytes(secret, sizeof(secret)), 0);
    memcpy(other, secret, sizeof(other));
    other[0] ^= 1;
    assert_int_equal(punch_key_file_load(path, loaded, err, sizeof(err)), PUNCH_ERR_NOTFOUND);
    assert_int_equal(punch_key_file_save(path, secret, false, err, sizeof(err)), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(punch_key_file_load(path, loaded, err, sizeof(err)), 0);
    assert_memory_equal(loaded, secret, PUNCH_KEY_BYTES);
    /* Never overwritten by accident; on purpose, yes. */
    assert_int_equal(punch_key_file_save(path, other, false, err, sizeof(err)), PUNCH_ERR_LIMIT);
    assert_non_null(strstr(err, path));
    assert_int_equal(punch_key_file_save(path, other, true, err, sizeof(err)), 0);
    assert_int_equal(punch_key_file_load(path, loaded, err, sizeof(err)), 0);
    assert_memory_equal(loaded, other, PUNCH_KEY_BYTES);
    /* Readable by others: refused, and err says what to do. */
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(punch_key_file_load(path, loaded, err, sizeof(err)), PUNCH_ERR_UNSUPPORTED);
    assert_non_null(strstr(err, "chmod 600"));
    /* Not a key. */
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("hello\n", f);
    fclose(f);
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(punch_key_file_load(path, loaded, err, 0), PUNCH_ERR_MALFORMED);
    unlink(path);
    snprintf(path, sizeof(path), "%s/sub", dir);
    rmdir(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(log_handler_gets_the_lines),
        cmocka_unit_test(keys_as_text),
        cmocka_unit_test(key_file_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
