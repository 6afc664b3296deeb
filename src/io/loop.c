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

typedef struct watch {
    int fd;
    bool paused; /* out of epoll: a hung-up fd would be reported even with no events */
    punch_loop_fd_fn fn;
    void *arg;
} watch;

struct punch_loop {
    int epfd;
    int sigfd;
    punch_loop_signal_fn sig_fn;
    void *sig_arg;
    bool stop;
    uint64_t deadline_ms; /* UINT64_MAX: no timer */
    punch_loop_timer_fn timer_fn;
    void *timer_arg;
    size_t n_watches;
    watch watches[PUNCH_LOOP_MAX_WATCHES];
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
    loop->deadline_ms = UINT64_MAX;
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
    free(loop);
}

int punch_loop_watch(punch_loop *loop, int fd, punch_loop_fd_fn fn, void *arg)
{
    /* Slots freed by punch_loop_unwatch (fn NULL) are taken again first. */
    size_t i = 0;
    while (i < loop->n_watches && loop->watches[i].fn)
        i++;
    if (i == PUNCH_LOOP_MAX_WATCHES)
        return PUNCH_ERR_LIMIT;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = i};
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
        return PUNCH_ERR_IO;
    loop->watches[i] = (watch){.fd = fd, .fn = fn, .arg = arg};
    if (i == loop->n_watches)
        loop->n_watches++;
    return 0;
}

static watch *find_watch(punch_loop *loop, int fd, size_t *index)
{
    for (size_t i = 0; i < loop->n_watches; i++)
        if (loop->watches[i].fn && loop->watches[i].fd == fd) {
            *index = i;
            return &loop->watches[i];
        }
    return NULL;
}

int punch_loop_set_events(punch_loop *loop, int fd, unsigned events)
{
    size_t i;
    if (!find_watch(loop, fd, &i))
        return PUNCH_ERR_NOTFOUND;
    watch *w = &loop->watches[i];
    struct epoll_event ev = {.events = ((events & PUNCH_LOOP_IN) ? EPOLLIN : 0u) |
                                       ((events & PUNCH_LOOP_OUT) ? EPOLLOUT : 0u),
                             .data.u64 = i};
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
    size_t i;
    watch *w = find_watch(loop, fd, &i);
    if (!w)
        return;
    if (!w->paused)
        epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
    w->paused = false;
    w->fn = NULL; /* events already fetched for it are skipped */
    w->fd = -1;
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

void punch_loop_set_timeout(punch_loop *loop, uint64_t deadline_ms, punch_loop_timer_fn fn,
                            void *arg)
{
    loop->deadline_ms = deadline_ms;
    loop->timer_fn = fn;
    loop->timer_arg = arg;
}

/* epoll_wait's timeout for the timer: -1 (none), 0 (due) or the wait in ms. */
static int wait_ms(const punch_loop *loop)
{
    if (loop->deadline_ms == UINT64_MAX)
        return -1;
    uint64_t now = punch_clock_ms();
    if (loop->deadline_ms <= now)
        return 0;
    uint64_t d = loop->deadline_ms - now;
    return d > INT_MAX ? INT_MAX : (int)d;
}

static void run_timer(punch_loop *loop)
{
    if (loop->deadline_ms == UINT64_MAX)
        return;
    uint64_t now = punch_clock_ms();
    if (now < loop->deadline_ms)
        return;
    loop->deadline_ms = UINT64_MAX; /* fn may set it again */
    loop->timer_fn(loop->timer_arg, now);
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

int punch_loop_run(punch_loop *loop)
{
    struct epoll_event evs[16];
    loop->stop = false;
    while (!loop->stop) {
        int n = epoll_wait(loop->epfd, evs, 16, wait_ms(loop));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return PUNCH_ERR_IO;
        }
        for (int i = 0; i < n && !loop->stop; i++) {
            watch *w = &loop->watches[evs[i].data.u64];
            if (w->fn)
                w->fn(w->arg, w->fd);
        }
        if (!loop->stop)
            run_timer(loop);
        run_deferred(loop);
    }
    return 0;
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
