/* SPDX-License-Identifier: MIT */
/* punchd's /metrics endpoint: see metrics.h. */
#include "metrics.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http_request.h"
#include "io/tcp.h"

/* Room for the status line and headers before the body. */
#define HEADER_ROOM 256

typedef struct conn {
    int fd;                  /* -1: a free slot */
    uint64_t deadline_ms;
    size_t in_len;
    char in[PUNCHD_METRICS_MAX_REQUEST];
    size_t out_len, out_sent; /* out_len > 0: answering */
    char out[PUNCHD_METRICS_MAX_RESPONSE];
} conn;

struct punchd_metrics {
    punch_loop *loop;
    int lfd;
    punch_loop_timer timer;
    punchd_metrics_render_fn render;
    void *arg;
    punchd_metrics_counters counters;
    conn conns[PUNCHD_METRICS_MAX_CONNS];
};

static void arm_timer(punchd_metrics *m)
{
    uint64_t t = PUNCH_LOOP_NEVER;
    for (size_t i = 0; i < PUNCHD_METRICS_MAX_CONNS; i++)
        if (m->conns[i].fd >= 0 && m->conns[i].deadline_ms < t)
            t = m->conns[i].deadline_ms;
    punch_loop_timer_set(m->loop, m->timer, t);
}

static void close_conn(punchd_metrics *m, conn *c)
{
    punch_loop_unwatch(m->loop, c->fd);
    close(c->fd);
    c->fd = -1;
}

static conn *conn_of(punchd_metrics *m, int fd)
{
    for (size_t i = 0; i < PUNCHD_METRICS_MAX_CONNS; i++)
        if (m->conns[i].fd == fd)
            return &m->conns[i];
    return NULL;
}

/* Write what the socket takes; close once all is sent or on an error. */
static void send_answer(punchd_metrics *m, conn *c)
{
    while (c->out_sent < c->out_len) {
        ssize_t n = write(c->fd, c->out + c->out_sent, c->out_len - c->out_sent);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            punch_loop_set_events(m->loop, c->fd, PUNCH_LOOP_OUT);
            return;
        }
        if (n <= 0)
            break;
        c->out_sent += (size_t)n;
    }
    close_conn(m, c);
}

/* Queue an answer: status, headers and body (body may already sit at
 * c->out + HEADER_ROOM: it is moved into place). */
static void answer(punchd_metrics *m, conn *c, const char *status, const char *body,
                   size_t len)
{
    char head[HEADER_ROOM];
    int h = snprintf(head, sizeof(head),
                     "HTTP/1.1 %s\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                     status, len);
    memmove(c->out + h, body, len);
    memcpy(c->out, head, (size_t)h);
    c->out_len = (size_t)h + len;
    c->out_sent = 0;
    send_answer(m, c);
}

static void answer_text(punchd_metrics *m, conn *c, const char *status, const char *text)
{
    answer(m, c, status, text, strlen(text));
}

/* What the request so far asks: the metrics, an error, or more bytes. */
static void handle_request(punchd_metrics *m, conn *c)
{
    switch (punchd_http_parse(c->in, c->in_len, sizeof(c->in))) {
    case PUNCHD_HTTP_INCOMPLETE:
        return;
    case PUNCHD_HTTP_METRICS: {
        m->counters.requests++;
        char *body = c->out + HEADER_ROOM;
        size_t len = m->render(m->arg, body, sizeof(c->out) - HEADER_ROOM);
        answer(m, c, "200 OK", body, len);
        return;
    }
    case PUNCHD_HTTP_NOT_FOUND:
        m->counters.not_found++;
        answer_text(m, c, "404 Not Found", "only GET /metrics is served\n");
        return;
    case PUNCHD_HTTP_BAD_METHOD:
        m->counters.bad_requests++;
        answer_text(m, c, "405 Method Not Allowed", "only GET /metrics is served\n");
        return;
    case PUNCHD_HTTP_BAD:
        m->counters.bad_requests++;
        answer_text(m, c, "400 Bad Request", "not an HTTP/1.x request for GET /metrics\n");
        return;
    }
}

static void read_request(punchd_metrics *m, conn *c)
{
    ssize_t n = read(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) { /* gone before a whole request (a port check, say) */
        close_conn(m, c);
        return;
    }
    c->in_len += (size_t)n;
    handle_request(m, c);
}

static void on_conn(void *arg, int fd)
{
    punchd_metrics *m = arg;
    conn *c = conn_of(m, fd);
    if (!c)
        return;
    if (c->out_len)
        send_answer(m, c);
    else
        read_request(m, c);
    arm_timer(m);
}

/* A slot for a new connection: a free one, or else the one of the oldest
 * connection still without a whole request (closed, counted); NULL when
 * every connection is being answered. Slots are few and a request comes
 * right after the connect, so idle connections (PUNCHD_METRICS_MAX_CONNS
 * of them, held open for PUNCHD_METRICS_REQUEST_MS) cannot keep a
 * scraper out. */
static conn *free_slot(punchd_metrics *m)
{
    conn *c = conn_of(m, -1), *oldest = NULL;
    for (size_t i = 0; !c && i < PUNCHD_METRICS_MAX_CONNS; i++) {
        conn *o = &m->conns[i];
        if (o->out_len == 0 && (!oldest || o->deadline_ms < oldest->deadline_ms))
            oldest = o;
    }
    if (c || !oldest)
        return c;
    m->counters.pushed_out++;
    close_conn(m, oldest);
    return oldest;
}

static void on_listen(void *arg, int lfd)
{
    punchd_metrics *m = arg;
    punch_addr remote, local;
    /* A bounded number per wakeup: the datagrams come first. */
    for (int round = 0; round < PUNCHD_METRICS_MAX_CONNS; round++) {
        int fd = punch_tcp_accept(lfd, &remote, &local);
        if (fd < 0)
            break;
        conn *c = free_slot(m);
        if (!c || punch_loop_watch(m->loop, fd, on_conn, m) != 0) {
            m->counters.refused_full++;
            close(fd);
            continue;
        }
        c->fd = fd;
        c->deadline_ms = punch_clock_ms() + PUNCHD_METRICS_REQUEST_MS;
        c->in_len = c->out_len = c->out_sent = 0;
    }
    arm_timer(m);
}

static void on_timer(void *arg, uint64_t now_ms)
{
    punchd_metrics *m = arg;
    for (size_t i = 0; i < PUNCHD_METRICS_MAX_CONNS; i++)
        if (m->conns[i].fd >= 0 && m->conns[i].deadline_ms <= now_ms) {
            m->counters.timeouts++;
            close_conn(m, &m->conns[i]);
        }
    arm_timer(m);
}

int punchd_metrics_new(punchd_metrics **out, punch_loop *loop, const punch_addr *at,
                       punch_addr *bound, punchd_metrics_render_fn render, void *arg)
{
    *out = NULL;
    punchd_metrics *m = calloc(1, sizeof(*m));
    if (!m)
        return PUNCH_ERR_NOMEM;
    m->loop = loop;
    m->render = render;
    m->arg = arg;
    for (size_t i = 0; i < PUNCHD_METRICS_MAX_CONNS; i++)
        m->conns[i].fd = -1;
    m->lfd = punch_tcp_listen(at, bound);
    if (m->lfd < 0) {
        free(m);
        return PUNCH_ERR_IO;
    }
    int rc = punch_loop_timer_add(loop, PUNCH_LOOP_NEVER, on_timer, m, &m->timer);
    if (rc == 0 && punch_loop_watch(loop, m->lfd, on_listen, m) != 0)
        rc = PUNCH_ERR_IO;
    if (rc != 0) {
        int err = errno;
        punch_loop_timer_del(loop, m->timer);
        close(m->lfd);
        free(m);
        errno = err;
        return rc;
    }
    *out = m;
    return 0;
}

void punchd_metrics_free(punchd_metrics *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < PUNCHD_METRICS_MAX_CONNS; i++)
        if (m->conns[i].fd >= 0)
            close_conn(m, &m->conns[i]);
    punch_loop_unwatch(m->loop, m->lfd);
    close(m->lfd);
    punch_loop_timer_del(m->loop, m->timer);
    free(m);
}

const punchd_metrics_counters *punchd_metrics_counters_get(const punchd_metrics *m)
{
    return &m->counters;
}
