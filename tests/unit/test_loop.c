/* The event loop (src/io/loop.c): as many watches as the process has
 * descriptors (a forward carries a thousand connections), and an event
 * fetched for an fd that was unwatched and watched again in the same turn
 * is not given to the new watch. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <cmocka.h>

#include "io/loop.h"
#include "punch/punch.h"

#define PIPES 600 /* 1200 descriptors: far past the old 64 watches */

typedef struct state {
    punch_loop *loop;
    int fds[PIPES][2];
    int calls[PIPES];
    int stale_calls;
} state;

static state *the;

static void on_readable(void *arg, int fd)
{
    int i = (int)(intptr_t)arg;
    char c;
    assert_int_equal(read(fd, &c, 1), 1);
    if (++the->calls[i] == 1 && i == PIPES - 1)
        punch_loop_stop(the->loop);
}

static void many_watches(void **unused)
{
    (void)unused;
    static state s;
    the = &s;
    assert_int_equal(punch_loop_new(&s.loop), 0);
    for (int i = 0; i < PIPES; i++) {
        assert_int_equal(pipe(s.fds[i]), 0);
        void *arg = (void *)(intptr_t)i;
        assert_int_equal(punch_loop_watch(s.loop, s.fds[i][0], on_readable, arg), 0);
    }
    /* The same fd twice is refused. */
    assert_int_equal(punch_loop_watch(s.loop, s.fds[0][0], on_readable, NULL), PUNCH_ERR_IO);
    for (int i = 0; i < PIPES; i++)
        assert_int_equal(write(s.fds[i][1], "x", 1), 1);
    /* The last one stops the loop when its turn comes; every one is served
     * by then or in the turns before (epoll hands out batches). */
    while (s.calls[PIPES - 1] == 0)
        assert_int_equal(punch_loop_run(s.loop), 0);
    for (int i = 0; i < PIPES; i++) {
        assert_int_equal(s.calls[i], 1);
        punch_loop_unwatch(s.loop, s.fds[i][0]);
        close(s.fds[i][0]);
        close(s.fds[i][1]);
    }
    punch_loop_free(s.loop);
}

/* A first watch on a pipe; its callback unwatches and closes the other
 * pipe, whose event is already fetched, and watches a new pipe that takes
 * the same fd number and is readable too: the stale event must not reach
 * the new watch (it would read a byte meant for its own event). */
static int pair_a[2], pair_b[2], pair_c[2];
static int b_calls, c_calls;
static bool in_a_turn; /* the turn that served a is not over */
static punch_loop *swap_loop;

static void on_b(void *arg, int fd)
{
    (void)arg;
    (void)fd;
    b_calls++;
    punch_loop_stop(swap_loop); /* came first: the test fails below, it does not hang */
}

static void on_c(void *arg, int fd)
{
    (void)arg;
    char buf[8];
    c_calls++;
    assert_false(in_a_turn); /* not b's stale event, fetched in a's turn */
    assert_int_equal(read(fd, buf, sizeof(buf)), 1);
    punch_loop_stop(swap_loop);
}

static void end_of_turn(void *arg)
{
    (void)arg;
    in_a_turn = false;
}

static void on_a(void *arg, int fd)
{
    (void)arg;
    char c;
    assert_int_equal(read(fd, &c, 1), 1);
    in_a_turn = true;
    assert_int_equal(punch_loop_defer(swap_loop, end_of_turn, NULL), 0);
    int old = pair_b[0];
    punch_loop_unwatch(swap_loop, old);
    close(old);
    assert_int_equal(pipe(pair_c), 0);
    assert_int_equal(pair_c[0], old); /* the lowest free number */
    assert_int_equal(write(pair_c[1], "y", 1), 1);
    assert_int_equal(punch_loop_watch(swap_loop, pair_c[0], on_c, NULL), 0);
}

static void stale_event_skipped(void **unused)
{
    (void)unused;
    assert_int_equal(punch_loop_new(&swap_loop), 0);
    assert_int_equal(pipe(pair_a), 0);
    assert_int_equal(pipe(pair_b), 0);
    assert_int_equal(punch_loop_watch(swap_loop, pair_a[0], on_a, NULL), 0);
    assert_int_equal(punch_loop_watch(swap_loop, pair_b[0], on_b, NULL), 0);
    assert_int_equal(write(pair_a[1], "a", 1), 1);
    assert_int_equal(write(pair_b[1], "b", 1), 1);
    assert_int_equal(punch_loop_run(swap_loop), 0);
    /* b's event, fetched with a's, went nowhere; c was served once, for its
     * own byte, in a later turn. */
    assert_int_equal(b_calls, 0);
    assert_int_equal(c_calls, 1);
    punch_loop_free(swap_loop);
    close(pair_a[0]);
    close(pair_a[1]);
    close(pair_b[1]);
    close(pair_c[0]);
    close(pair_c[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(many_watches),
        cmocka_unit_test(stale_event_skipped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
