/* Event loop, clock and randomness: see loop.h. */
#include "io/loop.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "punch/punch.h"

typedef struct watch {
    int fd;
    punch_loop_fd_fn fn;
    void *arg;
} watch;

struct punch_loop {
    int epfd;
    int sigfd;
    punch_loop_signal_fn sig_fn;
    void *sig_arg;
    bool stop;
    size_t n_watches;
    watch watches[PUNCH_LOOP_MAX_WATCHES];
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
    free(loop);
}

int punch_loop_watch(punch_loop *loop, int fd, punch_loop_fd_fn fn, void *arg)
{
    if (loop->n_watches == PUNCH_LOOP_MAX_WATCHES)
        return PUNCH_ERR_LIMIT;
    size_t i = loop->n_watches;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = i};
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
        return PUNCH_ERR_IO;
    loop->watches[i] = (watch){.fd = fd, .fn = fn, .arg = arg};
    loop->n_watches++;
    return 0;
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

int punch_loop_run(punch_loop *loop)
{
    struct epoll_event evs[16];
    loop->stop = false;
    while (!loop->stop) {
        int n = epoll_wait(loop->epfd, evs, 16, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return PUNCH_ERR_IO;
        }
        for (int i = 0; i < n && !loop->stop; i++) {
            watch *w = &loop->watches[evs[i].data.u64];
            w->fn(w->arg, w->fd);
        }
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
