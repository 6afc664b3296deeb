/* SPDX-License-Identifier: MIT */
/* The I/O driver's TCP paths to peers: see driver_tcp.h. */
#include "driver/driver_tcp.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "io/tcp.h"

/* Bytes read from one connection per wakeup. */
#define READ_BUDGET (64u * 1024)
/* Frames waiting for a slow TCP path to a peer. */
#define OUT_BYTES (32u * 1024)
/* Sockets at once: a listener, one to the server, one connecting and one
 * up per slot, and room for the ones a command is about to close. */
#define MAX_SOCKS (PUNCH_TCP_PATH_SLOTS * 6)

typedef enum sock_state { S_FREE = 0, S_LISTEN, S_CONNECTING, S_OPEN, S_DONE } sock_state;

typedef struct tsock {
    uint32_t id;
    int fd;
    sock_state st;
    uint32_t events;           /* what epoll waits for; 0: not watched */
    punch_frame_reader rd;
    punch_tcp_out out;         /* buf NULL until the first datagram */
    punch_addr local, remote;  /* connecting: from where, to where (RESYN) */
} tsock;

struct punch_driver_tcp {
    punch_tcp_paths *tp;
    int ep;
    tsock socks[MAX_SOCKS];
    punch_driver_stats *stats;
    uint64_t errors, dropped;  /* ours, beside the machine's counters */
    void (*after)(void *arg);
    void *arg;
};

static tsock *find(punch_driver_tcp *dt, uint32_t id)
{
    for (unsigned i = 0; id && i < MAX_SOCKS; i++)
        if (dt->socks[i].st != S_FREE && dt->socks[i].id == id)
            return &dt->socks[i];
    return NULL;
}

static void sync_stats(punch_driver_tcp *dt)
{
    const punch_tcp_paths_counters *c = punch_tcp_paths_counters_get(dt->tp);
    dt->stats->tcp_paths = c->paths;
    dt->stats->tcp_path_failures = c->failures;
    dt->stats->tcp_path_errors = c->errors + dt->errors;
    dt->stats->tcp_path_refused = c->refused;
    dt->stats->tcp_path_stale = c->stale;
    dt->stats->tcp_path_dropped = c->dropped + dt->dropped;
}

static void watch(punch_driver_tcp *dt, tsock *s, uint32_t events)
{
    if (events == s->events)
        return;
    struct epoll_event ev = {.events = events, .data.u32 = s->id};
    int op = !s->events ? EPOLL_CTL_ADD : events ? EPOLL_CTL_MOD : EPOLL_CTL_DEL;
    if (epoll_ctl(dt->ep, op, s->fd, &ev) != 0)
        dt->errors++;
    s->events = events;
}

/* A socket taken into the table (fd < 0: none could be opened). */
static tsock *adopt(punch_driver_tcp *dt, uint32_t id, int fd, sock_state st)
{
    for (unsigned i = 0; i < MAX_SOCKS; i++) {
        tsock *s = &dt->socks[i];
        if (s->st != S_FREE)
            continue;
        s->id = id;
        s->fd = fd;
        s->st = st;
        s->events = 0;
        punch_frame_reader_init(&s->rd);
        return s;
    }
    dt->errors++;
    close(fd);
    return NULL;
}

static void sock_close(punch_driver_tcp *dt, tsock *s)
{
    watch(dt, s, 0);
    close(s->fd);
    punch_tcp_out_free(&s->out);
    memset(s, 0, sizeof(*s));
}

static void report(punch_driver_tcp *dt, uint32_t id, punch_tcp_result_kind kind,
                   const punch_addr *local, const char *why, uint64_t now)
{
    punch_tcp_result r = {.kind = kind, .sock = id, .why = why};
    if (local)
        r.local = *local;
    punch_tcp_paths_handle_result(dt->tp, now, &r);
}

/* A socket ended: no more events from it until the machine closes it. */
static void ended(punch_driver_tcp *dt, tsock *s, punch_tcp_result_kind kind, const char *why,
                  uint64_t now)
{
    watch(dt, s, 0);
    s->st = S_DONE;
    report(dt, s->id, kind, NULL, why, now);
}

static void do_listen(punch_driver_tcp *dt, const punch_tcp_cmd *c, uint64_t now)
{
    punch_addr bound;
    int fd = punch_tcp_listen_shared(&c->local, &bound);
    if (fd < 0) {
        report(dt, c->sock, PUNCH_TCP_FAILED, NULL, strerror(errno), now);
        return;
    }
    tsock *s = adopt(dt, c->sock, fd, S_LISTEN);
    if (!s) {
        report(dt, c->sock, PUNCH_TCP_FAILED, NULL, "too many sockets", now);
        return;
    }
    watch(dt, s, EPOLLIN);
    report(dt, c->sock, PUNCH_TCP_LISTENING, &bound, NULL, now);
}

static void do_connect(punch_driver_tcp *dt, const punch_tcp_cmd *c, uint64_t now)
{
    int fd = punch_tcp_connect_from_ttl(&c->local, &c->remote, c->ttl);
    tsock *s = fd >= 0 ? adopt(dt, c->sock, fd, S_CONNECTING) : NULL;
    if (!s) {
        report(dt, c->sock, PUNCH_TCP_FAILED, NULL, fd < 0 ? strerror(errno) : "too many sockets",
               now);
        return;
    }
    s->local = c->local;
    s->remote = c->remote;
    watch(dt, s, EPOLLOUT);
}

/* A SYN again, full TTL: a socket cannot be told to send one, so one still
 * in SYN-SENT is replaced by a new one on the same 4-tuple (its ISN is
 * later: RFC 6528). One in SYN-RECV has the peer's SYN: kept. */
static void do_resyn(punch_driver_tcp *dt, const punch_tcp_cmd *c, uint64_t now)
{
    tsock *s = find(dt, c->sock);
    struct tcp_info ti;
    socklen_t len = sizeof(ti);
    if (!s || s->st != S_CONNECTING ||
        getsockopt(s->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 || ti.tcpi_state != TCP_SYN_SENT)
        return;
    punch_tcp_cmd again = {.kind = PUNCH_TCP_CONNECT, .sock = s->id, .local = s->local,
                           .remote = s->remote};
    sock_close(dt, s);
    do_connect(dt, &again, now);
}

static void do_send(punch_driver_tcp *dt, const punch_tcp_cmd *c, uint64_t now)
{
    tsock *s = find(dt, c->sock);
    /* A few bytes into a fresh connection's empty buffer: one send. */
    if (!s || s->st != S_OPEN ||
        send(s->fd, c->data, c->len, MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)c->len) {
        if (s && s->st == S_OPEN)
            ended(dt, s, PUNCH_TCP_FAILED, "cannot write", now);
        else
            dt->dropped++;
    }
}

/* Do what the machine asks; a command's result may bring more. */
static void run_commands(punch_driver_tcp *dt, uint64_t now)
{
    punch_tcp_cmd c;
    while (punch_tcp_paths_poll_command(dt->tp, &c) == 1) {
        tsock *s;
        switch (c.kind) {
        case PUNCH_TCP_LISTEN: do_listen(dt, &c, now); break;
        case PUNCH_TCP_CONNECT: do_connect(dt, &c, now); break;
        case PUNCH_TCP_RESYN: do_resyn(dt, &c, now); break;
        case PUNCH_TCP_SEND: do_send(dt, &c, now); break;
        case PUNCH_TCP_CLOSE:
            if ((s = find(dt, c.sock)))
                sock_close(dt, s);
            break;
        }
    }
    sync_stats(dt);
}

static punch_tcp_result_kind connect_error(int err)
{
    switch (err) {
    case ECONNREFUSED: return PUNCH_TCP_REFUSED;
    case ETIMEDOUT: return PUNCH_TCP_TIMED_OUT;
    case EHOSTUNREACH:
    case ENETUNREACH:
    case EHOSTDOWN:
    case ENETDOWN: return PUNCH_TCP_UNREACHABLE;
    default: return PUNCH_TCP_FAILED;
    }
}

static void on_connecting(punch_driver_tcp *dt, tsock *s, uint64_t now)
{
    if (punch_tcp_connect_result(s->fd) != 0) {
        int err = errno;
        ended(dt, s, connect_error(err), strerror(err), now);
        return;
    }
    s->st = S_OPEN;
    watch(dt, s, EPOLLIN);
    report(dt, s->id, PUNCH_TCP_CONNECTED, NULL, NULL, now);
}

static void on_listener(punch_driver_tcp *dt, tsock *s, uint64_t now)
{
    punch_addr remote, local;
    int fd;
    while ((fd = punch_tcp_accept(s->fd, &remote, &local)) >= 0) {
        uint32_t id = punch_tcp_paths_handle_accept(dt->tp, now, s->id, &remote);
        if (!id) {
            close(fd); /* the machine said no (not the peer's, §6.1) */
            continue;
        }
        tsock *up = adopt(dt, id, fd, S_OPEN);
        if (up)
            watch(dt, up, EPOLLIN);
        else
            report(dt, id, PUNCH_TCP_FAILED, NULL, "too many sockets", now);
        return; /* the listener's job is done: the machine closes it */
    }
}

typedef struct read_ctx {
    punch_driver_tcp *dt;
    uint32_t id;
    uint64_t now;
} read_ctx;

static bool on_frame(void *arg, const uint8_t *frame, size_t len)
{
    read_ctx *c = arg;
    punch_tcp_paths_handle_frame(c->dt->tp, c->now, c->id, frame, len);
    return true;
}

static void flush_out(punch_driver_tcp *dt, tsock *s, uint64_t now)
{
    if (s->out.buf && punch_tcp_out_flush(s->fd, &s->out) != 0) {
        ended(dt, s, PUNCH_TCP_CLOSED, "TCP connection failed", now);
        return;
    }
    watch(dt, s, EPOLLIN | (s->out.buf && punch_tcp_out_pending(&s->out) ? EPOLLOUT : 0));
}

static void on_open(punch_driver_tcp *dt, tsock *s, uint32_t e, uint64_t now)
{
    if (e & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        read_ctx c = {.dt = dt, .id = s->id, .now = now};
        int rc = punch_tcp_read_frames(s->fd, &s->rd, READ_BUDGET, on_frame, &c);
        if (rc == PUNCH_ERR_MALFORMED)
            dt->stats->tcp_path_bad_frames++;
        if (rc != PUNCH_TCP_OPEN) {
            ended(dt, s, PUNCH_TCP_CLOSED,
                  rc == PUNCH_ERR_MALFORMED ? "TCP connection closed: a bad frame"
                                            : "TCP connection closed",
                  now);
            return;
        }
    }
    if (e & EPOLLOUT)
        flush_out(dt, s, now);
}

static void on_sockets(void *arg, int ep)
{
    punch_driver_tcp *dt = arg;
    struct epoll_event evs[16];
    int n = epoll_wait(ep, evs, 16, 0);
    uint64_t now = punch_clock_ms();
    for (int i = 0; i < n; i++) {
        tsock *s = find(dt, evs[i].data.u32);
        if (!s)
            continue; /* closed earlier in this round */
        switch (s->st) {
        case S_LISTEN: on_listener(dt, s, now); break;
        case S_CONNECTING: on_connecting(dt, s, now); break;
        case S_OPEN: on_open(dt, s, evs[i].events, now); break;
        default: break;
        }
        run_commands(dt, now);
    }
    dt->after(dt->arg);
}

void punch_driver_tcp_send(punch_driver_tcp *dt, punch_socket agent_sock, const uint8_t *buf,
                           size_t len, uint64_t now)
{
    tsock *s = find(dt, punch_tcp_paths_sock_for(dt->tp, agent_sock));
    if (!s || s->st != S_OPEN || (!s->out.buf && punch_tcp_out_init(&s->out, OUT_BYTES) != 0) ||
        punch_tcp_out_frame(&s->out, buf, len) != 0) {
        dt->dropped++;
        sync_stats(dt);
        return;
    }
    flush_out(dt, s, now);
    run_commands(dt, now);
}

int punch_driver_tcp_fd(const punch_driver_tcp *dt, punch_socket agent_sock)
{
    uint32_t id = punch_tcp_paths_sock_for(dt->tp, agent_sock);
    for (unsigned i = 0; id && i < MAX_SOCKS; i++)
        if (dt->socks[i].st == S_OPEN && dt->socks[i].id == id)
            return dt->socks[i].fd;
    return -1;
}

void punch_driver_tcp_event(punch_driver_tcp *dt, const punch_event *ev, uint64_t now)
{
    punch_tcp_paths_handle_event(dt->tp, now, ev);
    run_commands(dt, now);
}

void punch_driver_tcp_timeout(punch_driver_tcp *dt, uint64_t now)
{
    punch_tcp_paths_handle_timeout(dt->tp, now);
    run_commands(dt, now);
}

uint64_t punch_driver_tcp_deadline(const punch_driver_tcp *dt)
{
    if (!dt)
        return UINT64_MAX; /* not made yet: the driver's first flight */
    return punch_tcp_paths_next_timeout(dt->tp);
}

int punch_driver_tcp_new(punch_driver_tcp **out, punch_loop *loop, const punch_tcp_paths_cfg *cfg,
                         punch_driver_stats *stats, void (*after)(void *arg), void *arg)
{
    punch_driver_tcp *dt = calloc(1, sizeof(*dt));
    if (!dt)
        return PUNCH_ERR_NOMEM;
    dt->stats = stats;
    dt->after = after;
    dt->arg = arg;
    dt->ep = -1;
    int rc = punch_tcp_paths_new(&dt->tp, cfg);
    if (rc == 0 && ((dt->ep = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
                    punch_loop_watch(loop, dt->ep, on_sockets, dt) != 0))
        rc = PUNCH_ERR_IO;
    if (rc != 0) {
        punch_driver_tcp_free(dt);
        return rc;
    }
    *out = dt;
    return 0;
}

void punch_driver_tcp_free(punch_driver_tcp *dt)
{
    if (!dt)
        return;
    for (unsigned i = 0; dt->ep >= 0 && i < MAX_SOCKS; i++)
        if (dt->socks[i].st != S_FREE)
            sock_close(dt, &dt->socks[i]);
    if (dt->ep >= 0)
        close(dt->ep);
    punch_tcp_paths_free(dt->tp);
    free(dt);
}
