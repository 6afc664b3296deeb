/* SPDX-License-Identifier: MIT */
/* Event loop, clock and randomness: see loop.h. */
#include "io/loop.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "punch/punch.h"

/* A watched fd's slot is watches[fd]: the table grows with the highest fd
 * watched, so the loop takes as many descriptors as the process may open
 * (a forward with a thousand connections). epoll hands back the fd and the
 * generation of its watch: an event fetched for an fd that was unwatched,
 * closed and watched again in the same turn is not given to the new one. */
typedef struct watch {
    punch_loop_fd_fn fn; /* NULL: not watched */
    void *arg;
    uint32_t gen;
    bool paused; /* out of epoll: a hung-up fd would be reported even with no events */
} watch;

/* A timer's slot is timers[index]; its id carries the index (+1, so no id
 * is 0) and the slot's generation, which changes when the timer is
 * deleted: an old id never reaches the next timer of the slot. */
typedef struct timer {
    punch_loop_timer_fn fn; /* NULL: a free slot */
    void *arg;
    uint64_t deadline_ms;   /* PUNCH_LOOP_NEVER: disarmed */
    uint64_t fired_turn;    /* the turn it last fired (or was added) in */
    uint32_t gen;
} timer;

struct punch_loop {
    int epfd;
    int sigfd;
    punch_loop_signal_fn sig_fn;
    void *sig_arg;
    bool stop;
    uint64_t turn;       /* turns of the loop so far */
    size_t n_timers;     /* slots, free ones included: timers[0..n_timers) */
    timer *timers;
    uint32_t next_gen;
    size_t cap;          /* watches[0..cap) */
    watch *watches;
    size_t n_deferred;
    struct {
        punch_loop_defer_fn fn;
        void *arg;
    } deferred[PUNCH_LOOP_MAX_DEFERRED];
};

int punch_loop_new(punch_loop **out)
{
    punch_loop *loop = calloc(1, sizeof(*loop));
    if (!loop)
        return PUNCH_ERR_NOMEM;
    loop->sigfd = -1;
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd < 0) {
        free(loop);
        return PUNCH_ERR_IO;
    }
    *out = loop;
    return 0;
}

void punch_loop_free(punch_loop *loop)
{
    if (!loop)
        return;
    close(loop->epfd);
    if (loop->sigfd >= 0)
        close(loop->sigfd);
    free(loop->watches);
    free(loop->timers);
    free(loop);
}

/* Room for watches[fd]: the table doubles. Returns 0 or PUNCH_ERR_NOMEM. */
static int make_room(punch_loop *loop, int fd)
{
    if ((size_t)fd < loop->cap)
        return 0;
    size_t cap = loop->cap ? loop->cap : 64;
    while (cap <= (size_t)fd)
        cap *= 2;
    watch *w = realloc(loop->watches, cap * sizeof(*w));
    if (!w)
        return PUNCH_ERR_NOMEM;
    memset(w + loop->cap, 0, (cap - loop->cap) * sizeof(*w));
    loop->watches = w;
    loop->cap = cap;
    return 0;
}

static struct epoll_event watch_event(const watch *w, int fd, unsigned events)
{
    return (struct epoll_event){
        .events = ((events & PUNCH_LOOP_IN) ? EPOLLIN : 0u) |
                  ((events & PUNCH_LOOP_OUT) ? EPOLLOUT : 0u),
        .data.u64 = (uint64_t)w->gen << 32 | (uint32_t)fd};
}

int punch_loop_watch(punch_loop *loop, int fd, punch_loop_fd_fn fn, void *arg)
{
    if (fd < 0) {
        errno = EBADF;
        return PUNCH_ERR_IO;
    }
    if (make_room(loop, fd) != 0)
        return PUNCH_ERR_NOMEM;
    watch *w = &loop->watches[fd];
    if (w->fn) {
        errno = EEXIST; /* as epoll says of an fd it has */
        return PUNCH_ERR_IO;
    }
    uint32_t gen = ++loop->next_gen;
    struct epoll_event ev = watch_event(&(watch){.gen = gen}, fd, PUNCH_LOOP_IN);
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
        return PUNCH_ERR_IO;
    *w = (watch){.fn = fn, .arg = arg, .gen = gen};
    return 0;
}

static watch *find_watch(punch_loop *loop, int fd)
{
    if (fd < 0 || (size_t)fd >= loop->cap || !loop->watches[fd].fn)
        return NULL;
    return &loop->watches[fd];
}

int punch_loop_set_events(punch_loop *loop, int fd, unsigned events)
{
    watch *w = find_watch(loop, fd);
    if (!w)
        return PUNCH_ERR_NOTFOUND;
    struct epoll_event ev = watch_event(w, fd, events);
    int op = EPOLL_CTL_MOD;
    if (!events) {
        if (w->paused)
            return 0;
        op = EPOLL_CTL_DEL;
    } else if (w->paused) {
        op = EPOLL_CTL_ADD;
    }
    if (epoll_ctl(loop->epfd, op, fd, &ev) != 0)
        return PUNCH_ERR_IO;
    w->paused = !events;
    return 0;
}

void punch_loop_unwatch(punch_loop *loop, int fd)
{
    watch *w = find_watch(loop, fd);
    if (!w)
        return;
    if (!w->paused)
        epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
    w->paused = false;
    w->fn = NULL; /* events already fetched for it are skipped */
}

static void on_signalfd(void *arg, int fd)
{
    punch_loop *loop = arg;
    struct signalfd_siginfo si;
    while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
        loop->sig_fn(loop->sig_arg, (int)si.ssi_signo);
}

int punch_loop_signals(punch_loop *loop, const int *signals, size_t n,
                       punch_loop_signal_fn fn, void *arg)
{
    sigset_t set;
    sigemptyset(&set);
    for (size_t i = 0; i < n; i++)
        sigaddset(&set, signals[i]);
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0)
        return PUNCH_ERR_IO;
    loop->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (loop->sigfd < 0)
        return PUNCH_ERR_IO;
    loop->sig_fn = fn;
    loop->sig_arg = arg;
    return punch_loop_watch(loop, loop->sigfd, on_signalfd, loop);
}

/* A free slot, the table growing by doubling when there is none. */
static timer *free_timer(punch_loop *loop)
{
    for (size_t i = 0; i < loop->n_timers; i++)
        if (!loop->timers[i].fn)
            return &loop->timers[i];
    size_t first = loop->n_timers, n = first ? 2 * first : 8;
    timer *t = realloc(loop->timers, n * sizeof(*t));
    if (!t)
        return NULL;
    memset(t + first, 0, (n - first) * sizeof(*t));
    loop->timers = t;
    loop->n_timers = n;
    return &t[first];
}

int punch_loop_timer_add(punch_loop *loop, uint64_t deadline_ms, punch_loop_timer_fn fn,
                         void *arg, punch_loop_timer *id)
{
    timer *t = free_timer(loop);
    if (!t)
        return PUNCH_ERR_NOMEM;
    /* Added while timers fire: its first chance is the next turn. */
    *t = (timer){.fn = fn, .arg = arg, .deadline_ms = deadline_ms, .fired_turn = loop->turn,
                 .gen = t->gen};
    *id = (uint64_t)t->gen << 32 | (uint64_t)(t - loop->timers + 1);
    return 0;
}

static timer *find_timer(const punch_loop *loop, punch_loop_timer id)
{
    uint32_t index = (uint32_t)id;
    if (index == 0 || index > loop->n_timers)
        return NULL;
    timer *t = &loop->timers[index - 1];
    return t->fn && t->gen == (uint32_t)(id >> 32) ? t : NULL;
}

int punch_loop_timer_set(punch_loop *loop, punch_loop_timer id, uint64_t deadline_ms)
{
    timer *t = find_timer(loop, id);
    if (!t)
        return PUNCH_ERR_NOTFOUND;
    t->deadline_ms = deadline_ms;
    return 0;
}

uint64_t punch_loop_timer_deadline(const punch_loop *loop, punch_loop_timer id)
{
    const timer *t = find_timer(loop, id);
    return t ? t->deadline_ms : PUNCH_LOOP_NEVER;
}

void punch_loop_timer_del(punch_loop *loop, punch_loop_timer id)
{
    timer *t = find_timer(loop, id);
    if (t)
        *t = (timer){.gen = t->gen + 1};
}

/* The earliest deadline of all timers, PUNCH_LOOP_NEVER when none is armed. */
static uint64_t next_deadline(const punch_loop *loop)
{
    uint64_t next = PUNCH_LOOP_NEVER;
    for (size_t i = 0; i < loop->n_timers; i++)
        if (loop->timers[i].fn && loop->timers[i].deadline_ms < next)
            next = loop->timers[i].deadline_ms;
    return next;
}

/* epoll_wait's timeout for the timers: -1 (none), 0 (due) or the wait in ms. */
static int wait_ms(const punch_loop *loop)
{
    uint64_t next = next_deadline(loop);
    if (next == PUNCH_LOOP_NEVER)
        return -1;
    uint64_t now = punch_clock_ms();
    if (next <= now)
        return 0;
    uint64_t d = next - now;
    return d > INT_MAX ? INT_MAX : (int)d;
}

/* The due timer with the earliest deadline (the first added of equals)
 * that has not fired this turn. */
static timer *earliest_due(punch_loop *loop, uint64_t now)
{
    timer *best = NULL;
    for (size_t i = 0; i < loop->n_timers; i++) {
        timer *t = &loop->timers[i];
        if (t->fn && t->deadline_ms <= now && t->fired_turn != loop->turn &&
            (!best || t->deadline_ms < best->deadline_ms))
            best = t;
    }
    return best;
}

static void run_timers(punch_loop *loop)
{
    uint64_t now = punch_clock_ms();
    loop->turn++;
    timer *t;
    while (!loop->stop && (t = earliest_due(loop, now)) != NULL) {
        t->deadline_ms = PUNCH_LOOP_NEVER; /* fn may set it again */
        t->fired_turn = loop->turn;
        t->fn(t->arg, now); /* may add timers: t is not used after */
    }
}

int punch_loop_defer(punch_loop *loop, punch_loop_defer_fn fn, void *arg)
{
    for (size_t i = 0; i < loop->n_deferred; i++)
        if (loop->deferred[i].fn == fn && loop->deferred[i].arg == arg)
            return 0;
    if (loop->n_deferred == PUNCH_LOOP_MAX_DEFERRED)
        return PUNCH_ERR_LIMIT;
    loop->deferred[loop->n_deferred].fn = fn;
    loop->deferred[loop->n_deferred].arg = arg;
    loop->n_deferred++;
    return 0;
}

void punch_loop_undefer(punch_loop *loop, punch_loop_defer_fn fn, void *arg)
{
    for (size_t i = 0; i < loop->n_deferred; i++)
        if (loop->deferred[i].fn == fn && loop->deferred[i].arg == arg) {
            loop->n_deferred--;
            memmove(&loop->deferred[i], &loop->deferred[i + 1],
                    (loop->n_deferred - i) * sizeof(loop->deferred[0]));
            return;
        }
}

/* What was deferred this turn; what those calls defer runs too. */
static void run_deferred(punch_loop *loop)
{
    while (loop->n_deferred > 0 && !loop->stop) {
        punch_loop_defer_fn fn = loop->deferred[0].fn;
        void *arg = loop->deferred[0].arg;
        loop->n_deferred--;
        memmove(&loop->deferred[0], &loop->deferred[1],
                loop->n_deferred * sizeof(loop->deferred[0]));
        fn(arg);
    }
}

/* The watch an event was fetched for, if it is still the one on its fd. */
static void dispatch(punch_loop *loop, uint64_t data)
{
    int fd = (int)(uint32_t)data;
    watch *w = find_watch(loop, fd);
    if (w && w->gen == (uint32_t)(data >> 32))
        w->fn(w->arg, fd);
}

/* One turn: wait up to timeout_ms (-1: until something happens) for ready
 * descriptors, call them, then the due timers and the deferred calls. */
static int turn(punch_loop *loop, int timeout_ms)
{
    struct epoll_event evs[64];
    int n = epoll_wait(loop->epfd, evs, 64, timeout_ms);
    if (n < 0)
        return errno == EINTR ? 0 : PUNCH_ERR_IO;
    for (int i = 0; i < n && !loop->stop; i++)
        dispatch(loop, evs[i].data.u64);
    run_timers(loop);
    run_deferred(loop);
    return 0;
}

int punch_loop_run(punch_loop *loop)
{
    loop->stop = false;
    while (!loop->stop)
        if (turn(loop, wait_ms(loop)) != 0)
            return PUNCH_ERR_IO;
    return 0;
}

int punch_loop_fd(const punch_loop *loop)
{
    return loop->epfd;
}

int punch_loop_timeout_ms(const punch_loop *loop)
{
    return wait_ms(loop);
}

int punch_loop_dispatch(punch_loop *loop)
{
    loop->stop = false;
    int rc = turn(loop, 0);
    return rc != 0 ? rc : loop->stop ? 1 : 0;
}

void punch_loop_stop(punch_loop *loop)
{
    loop->stop = true;
}

uint64_t punch_clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int punch_random_bytes(void *buf, size_t n)
{
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t got = getrandom(p, n, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return PUNCH_ERR_IO;
        }
        p += got;
        n -= (size_t)got;
    }
    return 0;
}
