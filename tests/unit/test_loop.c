/* SPDX-License-Identifier: MIT */
/* The event loop (src/io/loop.c): as many watches as the process has
 * descriptors (a forward carries a thousand connections), an event fetched
 * for an fd that was unwatched and watched again in the same turn is not
 * given to the new watch, and timers by id (any number of them, earliest
 * deadline first, at most once per turn each, deleted ids never valid again),
 * and the loop run from another one (fd, timeout, dispatch). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <poll.h>
#include <string.h>
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

/* ---- timers -------------------------------------------------------------- */

#define MAX_FIRED 256

typedef struct timers {
    punch_loop *loop;
    int fired[MAX_FIRED]; /* which timer fired, in order */
    size_t n_fired;
    size_t stop_after;    /* stop the loop at this many fires (0: never) */
    punch_loop_timer ids[MAX_FIRED];
    int rearm_left[MAX_FIRED]; /* fires that set the timer again, to a past deadline */
} timers;

static timers tm;

static void on_timer(void *arg, uint64_t now_ms)
{
    int which = (int)(intptr_t)arg;
    assert_true(tm.n_fired < MAX_FIRED);
    tm.fired[tm.n_fired++] = which;
    /* A fired timer is disarmed until it is set again. */
    assert_true(punch_loop_timer_deadline(tm.loop, tm.ids[which]) == PUNCH_LOOP_NEVER);
    if (tm.rearm_left[which] > 0) {
        tm.rearm_left[which]--;
        assert_int_equal(punch_loop_timer_set(tm.loop, tm.ids[which], now_ms - 1), 0);
    }
    if (tm.n_fired == tm.stop_after)
        punch_loop_stop(tm.loop);
}

static void add_timer(int which, uint64_t deadline_ms)
{
    assert_int_equal(punch_loop_timer_add(tm.loop, deadline_ms, on_timer, (void *)(intptr_t)which,
                                          &tm.ids[which]),
                     0);
    assert_true(tm.ids[which] != 0);
}

static void timers_reset(size_t stop_after)
{
    memset(&tm, 0, sizeof(tm));
    tm.stop_after = stop_after;
    assert_int_equal(punch_loop_new(&tm.loop), 0);
}

/* Deadlines in the past, added out of order, fire earliest first, the
 * first added of two equal deadlines first; a disarmed one never fires. */
static void timers_fire_earliest_first(void **unused)
{
    (void)unused;
    timers_reset(5);
    uint64_t now = punch_clock_ms();
    add_timer(0, now - 10);
    add_timer(1, now - 30);
    add_timer(2, PUNCH_LOOP_NEVER);
    add_timer(3, now - 20);
    add_timer(4, now - 20);
    add_timer(5, now - 5);
    assert_int_equal(punch_loop_run(tm.loop), 0);
    int want[] = {1, 3, 4, 0, 5};
    assert_int_equal(tm.n_fired, 5);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(tm.fired[i], want[i]);
    punch_loop_free(tm.loop);
}

/* set moves or disarms a timer, del forgets it: its id is refused from
 * then on, also once a new timer took its slot. */
static void timers_set_and_delete(void **unused)
{
    (void)unused;
    timers_reset(2);
    uint64_t now = punch_clock_ms();
    add_timer(0, now - 10);
    add_timer(1, now - 10);
    add_timer(2, PUNCH_LOOP_NEVER);
    add_timer(3, now + 3600 * 1000);
    assert_int_equal(punch_loop_timer_set(tm.loop, tm.ids[0], PUNCH_LOOP_NEVER), 0);
    punch_loop_timer_del(tm.loop, tm.ids[1]);
    punch_loop_timer_del(tm.loop, tm.ids[1]); /* twice: ignored */
    punch_loop_timer_del(tm.loop, 0);         /* never an id: ignored */
    assert_int_equal(punch_loop_timer_set(tm.loop, tm.ids[1], now), PUNCH_ERR_NOTFOUND);
    assert_true(punch_loop_timer_deadline(tm.loop, tm.ids[1]) == PUNCH_LOOP_NEVER);
    punch_loop_timer old = tm.ids[1];
    add_timer(4, now - 3); /* takes the deleted timer's slot */
    assert_true(tm.ids[4] != old);
    assert_int_equal(punch_loop_timer_set(tm.loop, old, now), PUNCH_ERR_NOTFOUND);
    assert_int_equal(punch_loop_timer_set(tm.loop, tm.ids[2], now - 2), 0);
    /* An hour away: it waits. */
    assert_true(punch_loop_timer_deadline(tm.loop, tm.ids[3]) == now + 3600 * 1000);
    assert_int_equal(punch_loop_run(tm.loop), 0);
    assert_int_equal(tm.n_fired, 2);
    assert_int_equal(tm.fired[0], 4);
    assert_int_equal(tm.fired[1], 2);
    /* Disarmed is not deleted: set again, it fires. */
    assert_int_equal(punch_loop_timer_set(tm.loop, tm.ids[0], now - 1), 0);
    tm.stop_after = 3;
    assert_int_equal(punch_loop_run(tm.loop), 0);
    assert_int_equal(tm.fired[2], 0);
    punch_loop_free(tm.loop);
}

/* Two timers that set themselves again to a past deadline each time they
 * fire take turns: each fires at most once per turn of the loop, so
 * neither can starve the other or the descriptors. */
static void timers_once_per_turn(void **unused)
{
    (void)unused;
    timers_reset(10);
    uint64_t now = punch_clock_ms();
    add_timer(0, now - 2);
    add_timer(1, now - 1);
    tm.rearm_left[0] = tm.rearm_left[1] = 100;
    assert_int_equal(punch_loop_run(tm.loop), 0);
    assert_int_equal(tm.n_fired, 10);
    for (size_t i = 0; i < 10; i++)
        assert_int_equal(tm.fired[i], (int)(i % 2));
    punch_loop_free(tm.loop);
}

/* A timer in the future: the loop waits for it (in epoll_wait, the thing
 * under test) and fires it no earlier than its deadline. */
static void timers_wait_for_the_deadline(void **unused)
{
    (void)unused;
    timers_reset(1);
    uint64_t due = punch_clock_ms() + 20;
    add_timer(0, due);
    add_timer(1, due + 3600 * 1000);
    assert_int_equal(punch_loop_run(tm.loop), 0);
    assert_true(punch_clock_ms() >= due);
    assert_int_equal(tm.fired[0], 0);
    punch_loop_free(tm.loop);
}

/* Far more timers than the first table holds, deadlines in a shuffled
 * order: every one fires once, in deadline order. */
static void timers_many(void **unused)
{
    (void)unused;
    enum { N = 200 };
    timers_reset(N);
    uint64_t now = punch_clock_ms();
    for (int i = 0; i < N; i++)
        add_timer(i, now - 1000 + (uint64_t)((i * 7919) % N)); /* 7919 is prime: a permutation */
    for (int i = 0; i < N; i++)
        for (int j = 0; j < i; j++)
            assert_true(tm.ids[i] != tm.ids[j]);
    assert_int_equal(punch_loop_run(tm.loop), 0);
    assert_int_equal(tm.n_fired, N);
    for (size_t k = 1; k < N; k++)
        assert_true((tm.fired[k - 1] * 7919) % N < (tm.fired[k] * 7919) % N);
    punch_loop_free(tm.loop);
}

/* The loop inside another one (punch/io.h, docs/tutorial.md): the
 * caller polls punch_loop_fd with punch_loop_timeout_ms and calls
 * punch_loop_dispatch, which never blocks. A timer 30 ms out: the timeout
 * says at most 30 ms, poll sleeps, dispatch fires it. A pipe written to:
 * the loop's fd becomes readable, dispatch calls the watch, and a
 * punch_loop_stop there makes dispatch return 1. With nothing due,
 * dispatch returns 0 at once and calls nothing. */
static int embedded_reads;

static void on_embedded(void *arg, int fd)
{
    char c;
    assert_int_equal(read(fd, &c, 1), 1);
    embedded_reads++;
    punch_loop_stop(arg);
}

static void loop_inside_another(void **unused)
{
    (void)unused;
    timers_reset(0);
    uint64_t due = punch_clock_ms() + 30;
    add_timer(0, due);
    int t = punch_loop_timeout_ms(tm.loop);
    assert_true(t > 0 && t <= 30);
    struct pollfd pfd = {.fd = punch_loop_fd(tm.loop), .events = POLLIN};
    while (tm.n_fired == 0) {
        assert_true(poll(&pfd, 1, punch_loop_timeout_ms(tm.loop)) >= 0);
        assert_int_equal(punch_loop_dispatch(tm.loop), 0);
    }
    assert_true(punch_clock_ms() >= due);
    assert_int_equal(punch_loop_timeout_ms(tm.loop), -1); /* nothing armed */

    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(punch_loop_watch(tm.loop, p[0], on_embedded, tm.loop), 0);
    assert_int_equal(poll(&pfd, 1, 0), 0);
    assert_int_equal(punch_loop_dispatch(tm.loop), 0);
    assert_int_equal(embedded_reads, 0);
    assert_int_equal(write(p[1], "x", 1), 1);
    assert_int_equal(poll(&pfd, 1, 1000), 1);
    assert_int_equal(punch_loop_dispatch(tm.loop), 1);
    assert_int_equal(embedded_reads, 1);
    punch_loop_unwatch(tm.loop, p[0]);
    close(p[0]);
    close(p[1]);
    punch_loop_free(tm.loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(many_watches),
        cmocka_unit_test(stale_event_skipped),
        cmocka_unit_test(timers_fire_earliest_first),
        cmocka_unit_test(timers_set_and_delete),
        cmocka_unit_test(timers_once_per_turn),
        cmocka_unit_test(timers_wait_for_the_deadline),
        cmocka_unit_test(timers_many),
        cmocka_unit_test(loop_inside_another),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
