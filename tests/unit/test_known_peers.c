/* SPDX-License-Identifier: MIT */
/* known_peers on a real file system (src/io/known_peers.c): created 0600,
 * '#bobz' pinned like any name, a bad line named and never rewritten away,
 * the bound kept, and eight processes learning at once through the lock
 * without losing or doubling a line. */
#define _GNU_SOURCE /* mkdtemp */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/known_peers.h"
#include "temp_dir.h"

#define WRITERS 8
#define NAMES_EACH 40

static char dir[64], path[128];

static int make_dir(void **state)
{
    (void)state;
    if (temp_dir_make(dir, "known") != 0)
        return -1;
    snprintf(path, sizeof(path), "%s/sub/known_peers", dir);
    return 0;
}

static int remove_dir(void **state)
{
    (void)state;
    return temp_dir_remove(dir);
}

static void key_of(uint32_t seed, uint8_t key[PUNCH_KEY_LEN])
{
    for (int i = 0; i < PUNCH_KEY_LEN; i++)
        key[i] = (uint8_t)(seed * 7 + (uint32_t)i);
}

static void write_text(const char *text)
{
    temp_file_write(path, text);
}

static void learn_and_pin(void **state)
{
    (void)state;
    uint8_t k1[PUNCH_KEY_LEN], k2[PUNCH_KEY_LEN], got[PUNCH_KEY_LEN];
    char err[PUNCH_FILE_ERRLEN];
    key_of(1, k1);
    key_of(2, k2);
    unlink(path);
    assert_int_equal(punch_known_peers_find(path, "#bobz", got, err), PUNCH_ERR_NOTFOUND);
    assert_int_equal(punch_known_peers_add(path, "#bobz", k1, err), 0);
    assert_int_equal(punch_known_peers_add(path, "bobz", k2, err), 0);
    assert_int_equal(punch_known_peers_add(path, "#bobz", k1, err), 0); /* no second line */
    assert_int_equal(punch_known_peers_find(path, "#bobz", got, err), 0);
    assert_memory_equal(got, k1, PUNCH_KEY_LEN);
    assert_int_equal(punch_known_peers_add(path, "#bobz", k2, err), PUNCH_ERR_INTEGRITY);
    assert_non_null(strstr(err, "holds another key for #bobz"));
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, (5 + 1 + 44 + 1) + (4 + 1 + 44 + 1)); /* "#bobz K\nbobz K\n" */
}

static void bad_line_named(void **state)
{
    (void)state;
    uint8_t k[PUNCH_KEY_LEN], got[PUNCH_KEY_LEN];
    char err[PUNCH_FILE_ERRLEN], want[512];
    key_of(3, k);
    write_text("alice AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n# a comment\n");
    assert_int_equal(punch_known_peers_find(path, "alice", got, err), PUNCH_ERR_MALFORMED);
    snprintf(want, sizeof(want), "%s:2: more than a name and a key on the line", path);
    assert_string_equal(err, want);
    assert_int_equal(punch_known_peers_add(path, "carol", k, err), PUNCH_ERR_MALFORMED);
    FILE *f = fopen(path, "r");
    char text[256] = "";
    assert_int_equal(fread(text, 1, sizeof(text) - 1, f) > 0, 1);
    fclose(f);
    assert_non_null(strstr(text, "# a comment")); /* not rewritten away */
    assert_null(strstr(text, "carol"));
    /* A list others may write is not believed either. */
    write_text("alice AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n");
    chmod(path, 0620);
    assert_int_equal(punch_known_peers_find(path, "alice", got, err), PUNCH_ERR_UNSUPPORTED);
    snprintf(want, sizeof(want), "%s may be written by others (mode 0620): refusing to use it; "
             "run chmod go-w %s", path, path);
    assert_string_equal(err, want);
    chmod(path, 0600);
    assert_int_equal(punch_known_peers_find(path, "alice", got, err), 0);
}

static void bounded(void **state)
{
    (void)state;
    static char text[PUNCH_PEER_LIST_MAX * 64];
    char key[PUNCH_KEY_B64_LEN], err[PUNCH_FILE_ERRLEN];
    uint8_t k[PUNCH_KEY_LEN];
    size_t off = 0;
    for (uint32_t i = 0; i < PUNCH_PEER_LIST_MAX; i++) {
        key_of(i, k);
        punch_key_encode(k, key);
        off += (size_t)snprintf(text + off, sizeof(text) - off, "p%u %s\n", i, key);
    }
    write_text(text);
    key_of(5000, k);
    assert_int_equal(punch_known_peers_add(path, "newcomer", k, err), PUNCH_ERR_LIMIT);
    assert_non_null(strstr(err, "is full (1024 names)"));
    key_of(7, k);
    assert_int_equal(punch_known_peers_add(path, "p7", k, err), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal((size_t)st.st_size, off);
}

/* Each writer learns its own names and one shared name, all at once. */
static void writers_at_once(void **state)
{
    (void)state;
    uint8_t shared[PUNCH_KEY_LEN];
    key_of(9999, shared);
    unlink(path);
    pid_t pids[WRITERS];
    for (int w = 0; w < WRITERS; w++) {
        if ((pids[w] = fork()) == 0) {
            char err[PUNCH_FILE_ERRLEN], name[32];
            uint8_t k[PUNCH_KEY_LEN];
            int bad = 0;
            for (int i = 0; i < NAMES_EACH; i++) {
                snprintf(name, sizeof(name), "w%d-%d", w, i);
                key_of((uint32_t)(w * 1000 + i), k);
                bad += punch_known_peers_add(path, name, k, err) != 0;
                bad += punch_known_peers_add(path, "shared", shared, err) != 0;
            }
            _exit(bad ? 1 : 0);
        }
        assert_true(pids[w] > 0);
    }
    for (int w = 0; w < WRITERS; w++) {
        int status;
        assert_int_equal(waitpid(pids[w], &status, 0), pids[w]);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    static punch_peer_list l;
    char err[PUNCH_FILE_ERRLEN];
    assert_int_equal(punch_peer_file_load(path, PUNCH_PEER_LIST_UNIQUE, &l, err), 0);
    assert_int_equal(l.n, WRITERS * NAMES_EACH + 1);
    for (int w = 0; w < WRITERS; w++)
        for (int i = 0; i < NAMES_EACH; i++) {
            char name[32];
            uint8_t k[PUNCH_KEY_LEN];
            snprintf(name, sizeof(name), "w%d-%d", w, i);
            key_of((uint32_t)(w * 1000 + i), k);
            assert_true(punch_peer_list_find(&l, name, k) >= 0);
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(learn_and_pin),
        cmocka_unit_test(bad_line_named),
        cmocka_unit_test(bounded),
        cmocka_unit_test(writers_at_once),
    };
    return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
