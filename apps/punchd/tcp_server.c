/* SPDX-License-Identifier: MIT */
/* punchd's TCP side: see tcp_server.h. */
#include "tcp_server.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "io/tcp.h"
#include "wire/msg.h"

#define MAX_CONNS_LIMIT (1u << 20)
#define NONE UINT32_MAX
/* Work per wakeup, so one source cannot hold the loop. */
#define ACCEPTS_PER_RUN 64
#define READ_BUDGET (64u * 1024)
#define SWEEP_MS 1000u

enum { TAG_LISTEN = 1, TAG_CONN = 2 };

typedef struct conn {
    int fd;
    uint32_t idx;              /* its slot */
    uint32_t next;             /* hash chain */
    bool dead;                 /* closed at the end of this turn */
    uint32_t events;
    uint64_t deadline_ms;      /* closed then, unless a registration moves it */
    punch_addr remote, local;
    punch_frame_reader rd;
    punch_tcp_out out;
} conn;

struct punch_tcp_server {
    punch_tcp_server_cfg cfg;
    int ep;
    size_t n_listen;
    int listen_fd[PUNCH_TCP_SERVER_MAX_LISTENERS];
    punch_ratelimit *rate;
    uint8_t hash_key[crypto_shorthash_KEYBYTES];
    conn **slots;              /* max_conns; NULL: free */
    uint32_t *free_list;       /* a stack of free slot indices */
    size_t n_free;
    uint32_t *buckets;         /* n_buckets, a power of two */
    size_t n_buckets;
    size_t n_dead;
    uint64_t next_sweep_ms;
    uint64_t now_ms;           /* of the current run or timeout */
    punch_tcp_server_counters c;
};

int punch_tcp_server_new(punch_tcp_server **out, const punch_tcp_server_cfg *cfg)
{
    if (!cfg->on_frame || cfg->max_conns > MAX_CONNS_LIMIT)
        return PUNCH_ERR_INVAL;
    punch_tcp_server *s = calloc(1, sizeof(*s));
    if (!s)
        return PUNCH_ERR_NOMEM;
    s->cfg = *cfg;
    if (!s->cfg.max_conns)
        s->cfg.max_conns = PUNCH_TCP_SERVER_DEFAULT_MAX_CONNS;
    if (!s->cfg.per_ip_max)
        s->cfg.per_ip_max = PUNCH_TCP_SERVER_DEFAULT_PER_IP;
    if (!s->cfg.unregistered_ms)
        s->cfg.unregistered_ms = PUNCH_TCP_SERVER_DEFAULT_UNREGISTERED_MS;
    if (!s->cfg.idle_ms)
        s->cfg.idle_ms = PUNCH_TCP_SERVER_DEFAULT_IDLE_MS;
    if (!s->cfg.out_bytes)
        s->cfg.out_bytes = PUNCH_TCP_SERVER_DEFAULT_OUT_BYTES;
    s->ep = -1;
    s->next_sweep_ms = UINT64_MAX;
    s->n_buckets = 16;
    while (s->n_buckets < s->cfg.max_conns)
        s->n_buckets *= 2;
    s->slots = calloc(s->cfg.max_conns, sizeof(*s->slots));
    s->free_list = malloc(s->cfg.max_conns * sizeof(*s->free_list));
    s->buckets = malloc(s->n_buckets * sizeof(*s->buckets));
    int rc = PUNCH_ERR_NOMEM;
    s->cfg.rate.sources_limited = &s->c.rate_limited_sources;
    if (!s->slots || !s->free_list || !s->buckets ||
        punch_ratelimit_new(&s->rate, &s->cfg.rate) != 0)
        goto fail;
    for (size_t i = 0; i < s->n_buckets; i++)
        s->buckets[i] = NONE;
    for (size_t i = 0; i < s->cfg.max_conns; i++)
        s->free_list[i] = (uint32_t)(s->cfg.max_conns - 1 - i);
    s->n_free = s->cfg.max_conns;
    randombytes_buf(s->hash_key, sizeof(s->hash_key));
    if ((s->ep = epoll_create1(EPOLL_CLOEXEC)) < 0) {
        rc = PUNCH_ERR_IO;
        goto fail;
    }
    *out = s;
    return 0;
fail:
    punch_tcp_server_free(s);
    return rc;
}

static void conn_free(conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    punch_tcp_out_free(&c->out);
    free(c);
}

void punch_tcp_server_free(punch_tcp_server *s)
{
    if (!s)
        return;
    for (size_t i = 0; s->slots && i < s->cfg.max_conns; i++)
        if (s->slots[i])
            conn_free(s->slots[i]);
    for (size_t i = 0; i < s->n_listen; i++)
        close(s->listen_fd[i]);
    if (s->ep >= 0)
        close(s->ep);
    punch_ratelimit_free(s->rate);
    free(s->slots);
    free(s->free_list);
    free(s->buckets);
    free(s);
}

int punch_tcp_server_listen(punch_tcp_server *s, const punch_addr *a, punch_addr *bound)
{
    if (s->n_listen == PUNCH_TCP_SERVER_MAX_LISTENERS)
        return PUNCH_ERR_LIMIT;
    int fd = punch_tcp_listen(a, bound);
    if (fd < 0)
        return PUNCH_ERR_IO;
    struct epoll_event ev = {.events = EPOLLIN,
                             .data.u64 = ((uint64_t)TAG_LISTEN << 32) | s->n_listen};
    if (epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return PUNCH_ERR_IO;
    }
    s->listen_fd[s->n_listen++] = fd;
    return 0;
}

int punch_tcp_server_fd(const punch_tcp_server *s)
{
    return s->ep;
}

/* ---- the address table (keyed SipHash, so no sender can aim at a bucket) ---- */

/* By the remote's source (its IPv4 address or IPv6 /64, not its port): one
 * source's connections share a chain, so counting them (per_ip_max) costs
 * no more than a lookup. */
static size_t bucket_of(const punch_tcp_server *s, const punch_addr *a)
{
    uint8_t in[9], h[crypto_shorthash_BYTES];
    uint64_t prefix = punch_source_prefix(a);
    in[0] = a->family;
    memcpy(in + 1, &prefix, sizeof(prefix));
    crypto_shorthash(h, in, sizeof(in), s->hash_key);
    uint64_t v;
    memcpy(&v, h, sizeof(v));
    return (size_t)(v & (s->n_buckets - 1));
}

static conn *find(const punch_tcp_server *s, const punch_addr *a)
{
    if (s->c.connections == 0)
        return NULL; /* the common case: every peer on UDP */
    for (uint32_t i = s->buckets[bucket_of(s, a)]; i != NONE; i = s->slots[i]->next)
        if (punch_addr_equal(&s->slots[i]->remote, a))
            return s->slots[i];
    return NULL;
}

static size_t conns_from_source(const punch_tcp_server *s, const punch_addr *a)
{
    size_t n = 0;
    uint64_t prefix = punch_source_prefix(a);
    for (uint32_t i = s->buckets[bucket_of(s, a)]; i != NONE; i = s->slots[i]->next) {
        const punch_addr *r = &s->slots[i]->remote;
        n += r->family == a->family && punch_source_prefix(r) == prefix;
    }
    return n;
}

static void unlink_conn(punch_tcp_server *s, uint32_t idx)
{
    uint32_t *p = &s->buckets[bucket_of(s, &s->slots[idx]->remote)];
    while (*p != NONE && *p != idx)
        p = &s->slots[*p]->next;
    if (*p == idx)
        *p = s->slots[idx]->next;
}

static void conn_close(punch_tcp_server *s, uint32_t idx)
{
    conn *c = s->slots[idx];
    unlink_conn(s, idx);
    epoll_ctl(s->ep, EPOLL_CTL_DEL, c->fd, NULL);
    conn_free(c);
    s->slots[idx] = NULL;
    s->free_list[s->n_free++] = idx;
    s->c.closed++;
    s->c.connections--;
    if (s->c.connections == 0)
        s->next_sweep_ms = UINT64_MAX;
}

/* Closed at the end of this turn: the connection may be in use up the stack. */
static void doom(punch_tcp_server *s, conn *c)
{
    if (!c->dead) {
        c->dead = true;
        s->n_dead++;
    }
}

static void reap(punch_tcp_server *s)
{
    for (uint32_t i = 0; s->n_dead > 0 && i < s->cfg.max_conns; i++)
        if (s->slots[i] && s->slots[i]->dead) {
            s->n_dead--;
            conn_close(s, i);
        }
}

static void want(punch_tcp_server *s, conn *c)
{
    uint32_t idx = c->idx;
    uint32_t events = EPOLLIN | (punch_tcp_out_pending(&c->out) ? EPOLLOUT : 0);
    if (events == c->events)
        return;
    struct epoll_event ev = {.events = events, .data.u64 = ((uint64_t)TAG_CONN << 32) | idx};
    epoll_ctl(s->ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->events = events;
}

static void accept_some(punch_tcp_server *s, int lfd, uint64_t now)
{
    for (int k = 0; k < ACCEPTS_PER_RUN; k++) {
        punch_addr remote, local;
        int fd = punch_tcp_accept(lfd, &remote, &local);
        if (fd < 0)
            return; /* EAGAIN, or an error of that one connection */
        if (s->n_free == 0) {
            s->c.refused_full++;
            close(fd);
            continue;
        }
        if (!punch_ratelimit_allow(s->rate, &remote, now)) {
            s->c.rate_limited++;
            close(fd);
            continue;
        }
        if (conns_from_source(s, &remote) >= s->cfg.per_ip_max) {
            s->c.refused_per_ip++;
            close(fd);
            continue;
        }
        conn *c = calloc(1, sizeof(*c));
        if (!c || punch_tcp_out_init(&c->out, s->cfg.out_bytes) != 0) {
            free(c);
            close(fd);
            s->c.refused_full++;
            continue;
        }
        uint32_t idx = s->free_list[--s->n_free];
        c->fd = fd;
        c->idx = idx;
        c->remote = remote;
        c->local = local;
        c->deadline_ms = now + s->cfg.unregistered_ms;
        c->events = EPOLLIN;
        punch_frame_reader_init(&c->rd);
        struct epoll_event ev = {.events = EPOLLIN,
                                 .data.u64 = ((uint64_t)TAG_CONN << 32) | idx};
        if (epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
            conn_free(c);
            s->free_list[s->n_free++] = idx;
            s->c.errors++;
            continue;
        }
        size_t b = bucket_of(s, &remote);
        c->next = s->buckets[b];
        s->buckets[b] = idx;
        s->slots[idx] = c;
        s->c.accepted++;
        if (s->c.connections++ == 0)
            s->next_sweep_ms = now + SWEEP_MS;
    }
}

typedef struct frame_ctx {
    punch_tcp_server *s;
    conn *c;
    uint64_t now;
} frame_ctx;

static bool on_frame(void *arg, const uint8_t *data, size_t len)
{
    frame_ctx *x = arg;
    x->s->c.frames_in++;
    x->s->cfg.on_frame(x->s->cfg.arg, x->now, &x->c->remote, &x->c->local, data, len);
    return !x->c->dead;
}

static void conn_ready(punch_tcp_server *s, uint32_t idx, uint32_t events, uint64_t now)
{
    conn *c = s->slots[idx];
    if (!c || c->dead)
        return;
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        frame_ctx x = {s, c, now};
        int rc = punch_tcp_read_frames(c->fd, &c->rd, READ_BUDGET, on_frame, &x);
        if (rc == PUNCH_TCP_CLOSED) {
            if (punch_frame_reader_partial(&c->rd))
                s->c.truncated++;
            doom(s, c);
        } else if (rc == PUNCH_ERR_MALFORMED) {
            s->c.bad_frames++;
            doom(s, c);
        } else if (rc < 0) {
            s->c.errors++;
            doom(s, c);
        }
    }
    if (!c->dead && (events & EPOLLOUT)) {
        if (punch_tcp_out_flush(c->fd, &c->out) != 0) {
            s->c.errors++;
            doom(s, c);
        } else {
            want(s, c);
        }
    }
}

void punch_tcp_server_run(punch_tcp_server *s, uint64_t now)
{
    s->now_ms = now;
    struct epoll_event evs[64];
    int n = epoll_wait(s->ep, evs, 64, 0);
    for (int i = 0; i < n; i++) {
        uint32_t tag = (uint32_t)(evs[i].data.u64 >> 32), idx = (uint32_t)evs[i].data.u64;
        if (tag == TAG_LISTEN)
            accept_some(s, s->listen_fd[idx], now);
        else
            conn_ready(s, idx, evs[i].events, now);
    }
    reap(s);
}

bool punch_tcp_server_holds(const punch_tcp_server *s, const punch_addr *addr)
{
    return find(s, addr) != NULL;
}

int punch_tcp_server_send(punch_tcp_server *s, const punch_addr *dst, const uint8_t *data,
                          size_t len)
{
    conn *c = find(s, dst);
    if (!c)
        return 0;
    if (c->dead || punch_tcp_out_frame(&c->out, data, len) != 0) {
        s->c.out_dropped++;
        return PUNCH_ERR_NOBUFS;
    }
    s->c.frames_out++;
    /* Only the rendezvous' REGISTERED, its answer to a REGISTER whose
     * cookie and MAC verified, keeps a connection: any other frame, HELLO
     * or garbage, costs nothing to send (issue 12, finding 6). */
    if (len >= 2 && data[0] == PUNCH_MSG_MAGIC && data[1] == PUNCH_MSG_REGISTERED)
        c->deadline_ms = s->now_ms + s->cfg.idle_ms;
    if (punch_tcp_out_flush(c->fd, &c->out) != 0) {
        s->c.errors++;
        doom(s, c);
        return 1;
    }
    want(s, c);
    return 1;
}

uint64_t punch_tcp_server_next_timeout(const punch_tcp_server *s)
{
    return s->n_dead ? 0 : s->next_sweep_ms;
}

void punch_tcp_server_handle_timeout(punch_tcp_server *s, uint64_t now)
{
    s->now_ms = now;
    if (now >= s->next_sweep_ms) {
        for (uint32_t i = 0; i < s->cfg.max_conns; i++) {
            conn *c = s->slots[i];
            if (c && !c->dead && now >= c->deadline_ms) {
                s->c.idle_closed++;
                doom(s, c);
            }
        }
        s->next_sweep_ms = now + SWEEP_MS;
    }
    reap(s);
}

const punch_tcp_server_counters *punch_tcp_server_counters_get(const punch_tcp_server *s)
{
    return &s->c;
}
