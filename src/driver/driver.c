/* SPDX-License-Identifier: MIT */
/* The I/O driver: see driver.h. */
#include "driver/driver.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "driver/addresses.h"
#include "driver/driver_tcp.h"
#include "driver/turn_link.h"
#include "io/log.h"
#include "io/net.h"
#include "driver/portmap.h" /* portmap hook */
#include "io/tcp.h"
#include "wire/msg.h"
#include "wire/stun.h"

/* Reconnecting to the server over TCP: 500 ms, doubling to 30 s. */
/* A connection not up by then is given up (the kernel alone would try for
 * about two minutes where SYNs are dropped). */
#define TCP_CONNECT_MS 10000u
/* ...but a try with the server's address of the other family still to
 * come gives way after 2 s, RFC 8305 §8's longest Connection Attempt
 * Delay (the tries go one after the other here, not side by side). */
#define TCP_NEXT_FAMILY_MS 2000u
#define TCP_BACKOFF_MIN_MS 500u
#define TCP_BACKOFF_MAX_MS 30000u
/* While a HELLO or REGISTER waits over UDP for longer than the agent's
 * first retransmission (250 ms), the driver sends STUN Binding requests of
 * its own to the server at this interval: on a lossy path one of them (or
 * of the agent's tries) gets through, so only a path that drops every UDP
 * datagram for tcp_fallback_ms falls back (at 20% loss each way on both
 * access links, 12 round trips all fail one time in 500). */
#define WAIT_PROBE_MS 250u
/* While on TCP, how often UDP is tried again: 1 s, doubling to 60 s. */
#define UDP_PROBE_MIN_MS 1000u
#define UDP_PROBE_MAX_MS 60000u
/* Bytes read from the TCP connection per wakeup. */
#define TCP_READ_BUDGET (64u * 1024)

struct punch_driver {
    punch_loop *loop;
    punch_loop_timer timer;    /* the agent's deadline and ours */
    punch_agent *agent;
    punch_portmap_io *portmap; /* portmap hook: the gateway's side, NULL when off */
    int fd;
    punch_addr local;
    /* Dual stack (issue 16): a socket of the other family beside fd, -1 none. */
    int fd_other;
    punch_addr local_other;
    punch_addr server;
    punch_udp_batch *rx, *tx, *tx_other;
    punch_driver_event_fn on_event;
    void *arg;
    size_t n_consumers;
    struct {
        uint8_t tag;
        punch_driver_consumer_fn fn;
        void *arg;
    } consumers[PUNCH_DRIVER_MAX_CONSUMERS];
    /* The server over TCP. The connection's fd changes on every reconnect
     * and the loop cannot forget a watch, so it lives in an epoll set of
     * our own, which the loop watches (an epoll fd is pollable). */
    int ep;
    bool via_tcp;              /* datagrams to the server go over TCP */
    uint32_t fallback_ms;
    bool waiting;              /* a HELLO or REGISTER is unanswered... */
    uint64_t waiting_since;    /* ...since then */
    int tcp_fd;                /* -1: none (tcp_retry_ms says when to try again) */
    bool tcp_up;               /* connected (else connecting) */
    uint32_t tcp_events;       /* what ep waits for on tcp_fd */
    uint64_t tcp_retry_ms;
    uint64_t tcp_connect_deadline_ms; /* while connecting */
    uint32_t tcp_backoff_ms;
    bool tcp_heard;            /* the current connection brought a frame */
    /* Dual stack (issue 16): the server's address of the other family
     * (family NONE: none given), tried over TCP when the connection to
     * server's never brought a frame (RFC 8305's order: the family UDP
     * registers over first). */
    punch_addr server_other;
    bool tcp_other;            /* the current (or next) connection goes there */
    punch_frame_reader rd;
    punch_tcp_out out;
    uint8_t last_reg[PUNCH_UDP_MTU]; /* the latest HELLO or REGISTER to the server */
    size_t last_reg_len;
    uint8_t probe_txid[PUNCH_STUN_TXID_LEN]; /* one for all our STUN probes */
    uint64_t probe_next_ms;    /* on TCP: the next STUN probe over UDP */
    uint32_t probe_interval_ms;
    uint64_t wait_probe_ms;    /* on UDP, waiting: the next STUN probe */
    punch_driver_stats stats;
    /* Many-port probing's extra sockets (punch_agent_poll_transmit_from):
     * opened when the agent first sends from one, closed when a SOCKETS
     * event lets them go; in an epoll set of their own, which the loop
     * watches. extra[k] is socket k's fd, -1 none. */
    int extra_ep;
    int *extra;
    unsigned n_extra;          /* open now */
    punch_udp_batch *extra_tx;
    punch_driver_tcp *tcp_paths; /* TCP paths to peers (driver_tcp.h) */
    punch_turn_link *turn_link;  /* the TURN server over TCP or TLS, NULL: none or UDP */
    punch_addr turn_server;
};

static void kernel_random(void *ctx, uint8_t *buf, size_t len)
{
    (void)ctx;
    if (punch_random_bytes(buf, len) != 0)
        abort(); /* no randomness, no keys: nothing safe left to do */
}

static void extra_close(punch_driver *d, unsigned k)
{
    if (!d->extra || d->extra[k] < 0)
        return;
    epoll_ctl(d->extra_ep, EPOLL_CTL_DEL, d->extra[k], NULL);
    close(d->extra[k]);
    d->extra[k] = -1;
    d->n_extra--;
}

/* What the consumers take: a DATA event with a consumer's tag goes to that
 * one only (returns true: on_event does not see it); PATH and CLOSED go to
 * every consumer. A consumer may detach itself meanwhile. */
static bool to_consumers(punch_driver *d, const punch_event *ev)
{
    if (ev->kind == PUNCH_EVENT_DATA) {
        for (size_t i = 0; ev->data.len > 0 && i < d->n_consumers; i++)
            if (d->consumers[i].tag == ev->data.bytes[0]) {
                d->consumers[i].fn(d->consumers[i].arg, ev);
                return true;
            }
        return false;
    }
    if (ev->kind == PUNCH_EVENT_PATH || ev->kind == PUNCH_EVENT_RTT || ev->kind == PUNCH_EVENT_CLOSED)
        for (size_t i = 0; i < d->n_consumers; i++)
            d->consumers[i].fn(d->consumers[i].arg, ev);
    return false;
}

static void tcp_close(punch_driver *d);

/* The agent registered at another of its servers (failover,
 * punch_agent_cfg.more_servers): the UDP-to-TCP fallback watches that
 * one now. Its REGISTERED came over UDP (TCP goes to the old one only). */
static void server_moved(punch_driver *d, const punch_addr *server)
{
    if (server->family == PUNCH_AF_NONE || punch_addr_equal(server, &d->server))
        return;
    d->server = *server;
    tcp_close(d);
    d->via_tcp = d->tcp_other = false;
    d->waiting = false;
    d->tcp_retry_ms = d->probe_next_ms = UINT64_MAX;
}

static void drain(punch_driver *d)
{
    punch_event ev;
    while (punch_agent_poll_event(d->agent, &ev) == 1) {
        /* TCP paths take no DATA (nor need a clock reading for each: 1.5 %
         * of a receiver's profile). */
        if (ev.kind != PUNCH_EVENT_DATA)
            punch_driver_tcp_event(d->tcp_paths, &ev, punch_clock_ms());
        if (ev.kind == PUNCH_EVENT_REGISTERED)
            server_moved(d, &ev.registered.server);
        if (ev.kind == PUNCH_EVENT_SOCKETS)
            for (unsigned k = ev.sockets.first; k <= ev.sockets.last && k <= PUNCH_MAX_SOCKETS;
                 k++)
                if (k != ev.sockets.keep)
                    extra_close(d, k);
        if (!to_consumers(d, &ev) && d->on_event)
            d->on_event(d->arg, d, &ev);
    }
}

int punch_driver_add_consumer(punch_driver *d, uint8_t tag, punch_driver_consumer_fn fn,
                              void *arg)
{
    for (size_t i = 0; i < d->n_consumers; i++)
        if (d->consumers[i].tag == tag)
            return PUNCH_ERR_LIMIT;
    if (d->n_consumers == PUNCH_DRIVER_MAX_CONSUMERS)
        return PUNCH_ERR_LIMIT;
    d->consumers[d->n_consumers].tag = tag;
    d->consumers[d->n_consumers].fn = fn;
    d->consumers[d->n_consumers].arg = arg;
    d->n_consumers++;
    return 0;
}

void punch_driver_remove_consumer(punch_driver *d, uint8_t tag)
{
    for (size_t i = 0; i < d->n_consumers; i++)
        if (d->consumers[i].tag == tag) {
            d->n_consumers--;
            memmove(&d->consumers[i], &d->consumers[i + 1],
                    (d->n_consumers - i) * sizeof(d->consumers[0]));
            return;
        }
}

/* After datagrams were handed to the agent: take its events (a DATA event
 * each) and send what it queued (answers, SACKs) before its queues, which
 * drop the oldest when full, can fill. One receive can bring thousands of
 * datagrams (UDP GRO), so this runs every HANDLE_EVERY of them. */
#define HANDLE_EVERY 32
static void handled(punch_driver *d)
{
    drain(d);
    punch_driver_flush(d);
}

/* Socket k, opened on first use: same family as ours, any port. */
static int extra_fd(punch_driver *d, unsigned k)
{
    if (!d->extra) {
        if (!(d->extra = malloc((PUNCH_MAX_SOCKETS + 1) * sizeof(int))))
            return -1;
        for (unsigned i = 0; i <= PUNCH_MAX_SOCKETS; i++)
            d->extra[i] = -1;
    }
    if (d->extra[k] >= 0)
        return d->extra[k];
    punch_addr any = {.family = d->local.family}, bound;
    int fd = punch_udp_bind(&any, &bound);
    if (fd < 0)
        return -1;
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = k};
    if (epoll_ctl(d->extra_ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
        close(fd);
        return -1;
    }
    d->n_extra++;
    return d->extra[k] = fd;
}

static void extra_send(punch_driver *d, unsigned k, const punch_addr *dst, uint8_t ttl,
                       const uint8_t *buf, size_t len)
{
    int fd = extra_fd(d, k);
    uint8_t *slot;
    if (fd < 0 || !(slot = punch_udp_queue(d->extra_tx, dst, NULL, ttl))) {
        d->stats.extra_dropped++;
        return;
    }
    memcpy(slot, buf, len);
    punch_udp_queue_len(d->extra_tx, len);
    d->stats.udp_unsent += punch_udp_send(fd, d->extra_tx);
}

static void on_extra(void *arg, int ep)
{
    punch_driver *d = arg;
    struct epoll_event evs[16];
    int n = epoll_wait(ep, evs, 16, 0);
    uint64_t now = punch_clock_ms();
    for (int i = 0; i < n; i++) {
        unsigned k = evs[i].data.u32;
        int got;
        while (d->extra && k <= PUNCH_MAX_SOCKETS && d->extra[k] >= 0 &&
               (got = punch_udp_recv(d->extra[k], d->rx, &d->local)) > 0) {
            for (unsigned j = 0; j < (unsigned)got; j++) {
                const uint8_t *data;
                size_t len;
                punch_addr src, dst;
                punch_udp_received(d->rx, j, &data, &len, &src, &dst);
                punch_agent_handle_datagram_on(d->agent, now,
                                               (punch_socket){PUNCH_SOCKET_EXTRA, (uint16_t)k},
                                               &src, data, len);
                if ((j + 1) % HANDLE_EVERY == 0)
                    handled(d);
            }
            if (got < PUNCH_UDP_BATCH)
                break;
        }
    }
    handled(d);
}

static void on_timer(void *arg, uint64_t now_ms);

static bool is_reg(const uint8_t *buf, size_t len)
{
    return len >= 2 && buf[0] == PUNCH_MSG_MAGIC &&
           (buf[1] == PUNCH_MSG_HELLO || buf[1] == PUNCH_MSG_REGISTER);
}

/* ---- the server over TCP ---- */

static void tcp_want(punch_driver *d, uint32_t events)
{
    if (d->tcp_fd < 0 || events == d->tcp_events)
        return;
    struct epoll_event ev = {.events = events};
    epoll_ctl(d->ep, EPOLL_CTL_MOD, d->tcp_fd, &ev);
    d->tcp_events = events;
}

static void tcp_close(punch_driver *d)
{
    if (d->tcp_fd >= 0) {
        epoll_ctl(d->ep, EPOLL_CTL_DEL, d->tcp_fd, NULL);
        close(d->tcp_fd);
    }
    d->tcp_fd = -1;
    d->tcp_up = false;
    punch_tcp_out_clear(&d->out);
}

static bool tcp_other_next(const punch_driver *d)
{
    return !d->tcp_other && d->server_other.family != PUNCH_AF_NONE &&
           d->server_other.family != d->server.family;
}

/* The connection failed or dropped: one that never brought a frame is
 * tried at once at the other family's address, if that is still to come;
 * else again after the backoff, from the first family again. */
static void tcp_fail(punch_driver *d, uint64_t now)
{
    d->stats.tcp_failures++;
    tcp_close(d);
    if (!d->tcp_heard && tcp_other_next(d)) {
        d->tcp_other = true;
        d->tcp_retry_ms = now;
        return;
    }
    if (d->tcp_heard)
        d->tcp_backoff_ms = TCP_BACKOFF_MIN_MS; /* it worked: the next one may too */
    else
        d->tcp_other = false; /* the next round from the first family */
    d->tcp_retry_ms = now + d->tcp_backoff_ms;
    d->tcp_backoff_ms = d->tcp_backoff_ms * 2 < TCP_BACKOFF_MAX_MS ? d->tcp_backoff_ms * 2
                                                                  : TCP_BACKOFF_MAX_MS;
}

/* Queue a datagram for the server as a frame, and write what can go now. */
static void tcp_send(punch_driver *d, const uint8_t *buf, size_t len, uint64_t now)
{
    if (d->tcp_fd < 0 || punch_tcp_out_frame(&d->out, buf, len) != 0) {
        d->stats.tcp_dropped++;
        return;
    }
    d->stats.tcp_frames_out++;
    if (!d->tcp_up)
        return; /* written once connected */
    if (punch_tcp_out_flush(d->tcp_fd, &d->out) != 0) {
        tcp_fail(d, now);
        return;
    }
    tcp_want(d, EPOLLIN | (punch_tcp_out_pending(&d->out) ? EPOLLOUT : 0));
}

static void tcp_open(punch_driver *d, uint64_t now)
{
    d->tcp_retry_ms = UINT64_MAX;
    d->tcp_heard = false;
    const punch_addr *to = punch_driver_tcp_server(d);
    char text[PUNCH_ADDR_STRLEN];
    punch_log(PUNCH_LOG_DEBUG, "to the server over TCP at %s", punch_addr_format(to, text));
    d->tcp_fd = punch_tcp_connect(to);
    if (d->tcp_fd < 0) {
        d->tcp_fd = -1;
        tcp_fail(d, now);
        return;
    }
    struct epoll_event ev = {.events = EPOLLOUT};
    if (epoll_ctl(d->ep, EPOLL_CTL_ADD, d->tcp_fd, &ev) != 0) {
        tcp_fail(d, now);
        return;
    }
    d->tcp_events = EPOLLOUT;
    d->tcp_connect_deadline_ms = now + (tcp_other_next(d) ? TCP_NEXT_FAMILY_MS : TCP_CONNECT_MS);
    punch_frame_reader_init(&d->rd);
    /* A new connection is a new source address at the server: send the
     * latest registration step again at once instead of waiting for the
     * agent's next try (a HELLO is answered with a cookie for this
     * connection; a REGISTER with the old cookie is refused, which makes
     * the agent start over with a HELLO). */
    if (d->last_reg_len)
        tcp_send(d, d->last_reg, d->last_reg_len, now);
}

/* Give up UDP to the server. */
static void go_tcp(punch_driver *d, uint64_t now)
{
    d->via_tcp = true;
    d->waiting = false;
    d->stats.tcp_fallbacks++;
    punch_log(PUNCH_LOG_DEBUG, "the server does not answer over UDP: to it over TCP");
    d->tcp_backoff_ms = TCP_BACKOFF_MIN_MS;
    if (!d->probe_interval_ms)
        d->probe_interval_ms = UDP_PROBE_MIN_MS;
    d->probe_next_ms = now + d->probe_interval_ms;
    tcp_open(d, now);
}

static void udp_send_now(punch_driver *d, const punch_addr *dst, const uint8_t *buf, size_t len)
{
    uint8_t *slot = punch_udp_queue(d->tx, dst, NULL, 0);
    if (!slot) {
        d->stats.udp_unsent += punch_udp_send(d->fd, d->tx);
        slot = punch_udp_queue(d->tx, dst, NULL, 0);
    }
    memcpy(slot, buf, len);
    punch_udp_queue_len(d->tx, len);
}

/* A STUN Binding request to the server over UDP: answered, it says UDP
 * works after all. */
static void udp_probe(punch_driver *d, uint64_t now)
{
    uint8_t buf[64];
    size_t len;
    punch_stun_writer w;
    if (punch_stun_writer_init(&w, buf, sizeof(buf), PUNCH_STUN_BINDING, PUNCH_STUN_REQUEST,
                               d->probe_txid) == 0 &&
        punch_stun_finish(&w, &len) == 0)
        udp_send_now(d, &d->server, buf, len);
    if (!d->via_tcp)
        return;
    d->probe_next_ms = now + d->probe_interval_ms;
    d->probe_interval_ms = d->probe_interval_ms * 2 < UDP_PROBE_MAX_MS ? d->probe_interval_ms * 2
                                                                       : UDP_PROBE_MAX_MS;
}

static bool is_probe_answer(const punch_driver *d, const uint8_t *buf, size_t len)
{
    punch_stun_msg m;
    return punch_stun_is_stun(buf, len) && punch_stun_decode(&m, buf, len) == 0 &&
           !m.classic && m.method == PUNCH_STUN_BINDING && m.cls == PUNCH_STUN_SUCCESS &&
           memcmp(m.txid, d->probe_txid, PUNCH_STUN_TXID_LEN) == 0;
}

/* UDP answered: back to it. The latest registration step goes again over
 * UDP (a REGISTER with the TCP connection's cookie is refused, and the
 * agent registers anew from its UDP endpoint). */
static void go_udp(punch_driver *d, uint64_t now)
{
    tcp_close(d);
    d->via_tcp = false;
    d->stats.udp_returns++;
    punch_log(PUNCH_LOG_DEBUG, "the server answers over UDP again: back to UDP");
    d->tcp_retry_ms = UINT64_MAX;
    d->probe_next_ms = UINT64_MAX;
    d->waiting = false;
    if (d->last_reg_len) {
        udp_send_now(d, &d->server, d->last_reg, d->last_reg_len);
        d->waiting = true;
        d->waiting_since = now;
        d->wait_probe_ms = now + WAIT_PROBE_MS;
    }
}

/* The driver's own deadlines, run before the agent's. */
static void driver_timers(punch_driver *d, uint64_t now)
{
    if (!d->via_tcp && d->waiting && d->fallback_ms != UINT32_MAX) {
        if (now - d->waiting_since >= d->fallback_ms) {
            go_tcp(d, now);
        } else if (now >= d->wait_probe_ms) {
            udp_probe(d, now);
            d->wait_probe_ms = now + WAIT_PROBE_MS;
        }
    }
    if (d->via_tcp && d->tcp_fd >= 0 && !d->tcp_up && now >= d->tcp_connect_deadline_ms)
        tcp_fail(d, now);
    if (d->via_tcp && d->tcp_fd < 0 && now >= d->tcp_retry_ms)
        tcp_open(d, now);
    if (d->via_tcp && now >= d->probe_next_ms)
        udp_probe(d, now);
    punch_driver_tcp_timeout(d->tcp_paths, now);
}

static uint64_t driver_deadline(const punch_driver *d)
{
    uint64_t t = UINT64_MAX;
    if (!d->via_tcp && d->waiting && d->fallback_ms != UINT32_MAX)
        t = d->wait_probe_ms < d->waiting_since + d->fallback_ms ? d->wait_probe_ms
                                                                : d->waiting_since + d->fallback_ms;
    if (d->via_tcp) {
        if (d->tcp_fd < 0 && d->tcp_retry_ms < t)
            t = d->tcp_retry_ms;
        if (d->tcp_fd >= 0 && !d->tcp_up && d->tcp_connect_deadline_ms < t)
            t = d->tcp_connect_deadline_ms;
        if (d->probe_next_ms < t)
            t = d->probe_next_ms;
    }
    uint64_t tp = punch_driver_tcp_deadline(d->tcp_paths);
    return tp < t ? tp : t;
}

static void portmap_flush(void *d) /* portmap hook: after a gateway's answer */
{
    drain(d);
    punch_driver_flush(d);
}

/* Queue a datagram of the agent's queue (not copied: flush sends it before
 * the agent can queue more) on the socket of dst's family, sending what
 * waits there when the batch is full; without one, it is counted unsent. */
static void udp_queue(punch_driver *d, const punch_addr *dst, uint8_t ttl, const uint8_t *buf,
                      size_t len)
{
    bool other = dst->family != d->local.family;
    int fd = other ? d->fd_other : d->fd;
    punch_udp_batch *tx = other ? d->tx_other : d->tx;
    if (fd < 0) {
        d->stats.udp_unsent++;
        return;
    }
    if (!punch_udp_queue_ref(tx, dst, NULL, ttl, buf, len)) {
        d->stats.udp_unsent += punch_udp_send(fd, tx);
        punch_udp_queue_ref(tx, dst, NULL, ttl, buf, len);
    }
}

/* The loop's timer at the earliest deadline, the agent's or ours. */
static void arm_timer(punch_driver *d)
{
    uint64_t t = punch_agent_next_timeout(d->agent), mine = driver_deadline(d);
    punch_loop_timer_set(d->loop, d->timer, mine < t ? mine : t);
}

/* Send both sockets' batches: before anything that may call the agent
 * (a TCP path's or the TURN link's send may tell it the connection
 * failed), since what they hold may still be in the agent's queue. */
static void udp_send_queued(punch_driver *d)
{
    if (punch_udp_queued(d->tx))
        d->stats.udp_unsent += punch_udp_send(d->fd, d->tx);
    if (punch_udp_queued(d->tx_other))
        d->stats.udp_unsent += punch_udp_send(d->fd_other, d->tx_other);
}

void punch_driver_flush(punch_driver *d)
{
    const uint8_t *buf; /* in the agent's queue until it queues more */
    uint8_t ttl;
    punch_addr dst;
    size_t len;
    punch_socket sock;
    uint64_t now = punch_clock_ms();
    while (punch_agent_poll_transmit_view(d->agent, &sock, &dst, &ttl, &buf, &len) == 1) {
        if (sock.kind == PUNCH_SOCKET_TCP) {
            udp_send_queued(d);
            punch_driver_tcp_send(d->tcp_paths, sock, buf, len, now);
            continue;
        }
        if (sock.kind == PUNCH_SOCKET_EXTRA) {
            extra_send(d, sock.index, &dst, ttl, buf, len);
            continue;
        }
        if (punch_turn_link_takes(d->turn_link, &dst, buf, len)) {
            udp_send_queued(d); /* a link that goes down tells the agent */
            punch_turn_link_send(d->turn_link, buf, len);
            continue;
        }
        if (punch_addr_equal(&dst, &d->server)) {
            if (is_reg(buf, len)) {
                memcpy(d->last_reg, buf, len);
                d->last_reg_len = len;
                if (!d->waiting) {
                    d->waiting = true;
                    d->waiting_since = now;
                    d->wait_probe_ms = now + WAIT_PROBE_MS;
                }
            }
            if (d->via_tcp) {
                tcp_send(d, buf, len, now);
                continue;
            }
        }
        udp_queue(d, &dst, ttl, buf, len);
    }
    udp_send_queued(d);
    /* After the datagrams: its thread does not hold them up (cold start). */
    punch_portmap_io_kick(d->portmap); /* portmap hook */
    arm_timer(d);
}

static void on_timer(void *arg, uint64_t now_ms)
{
    punch_driver *d = arg;
    driver_timers(d, now_ms);
    punch_agent_handle_timeout(d->agent, now_ms);
    drain(d);
    punch_driver_flush(d);
}

/* Anything from the server answers what is waiting. */
static void heard_server(punch_driver *d)
{
    d->waiting = false;
}

static bool on_frame(void *arg, const uint8_t *frame, size_t len)
{
    punch_driver *d = arg;
    d->stats.tcp_frames_in++;
    d->tcp_heard = true;
    d->tcp_backoff_ms = TCP_BACKOFF_MIN_MS;
    heard_server(d);
    punch_agent_handle_datagram(d->agent, punch_clock_ms(), &d->server, frame, len);
    return true;
}

static void on_tcp(void *arg, int ep)
{
    punch_driver *d = arg;
    struct epoll_event evs[4];
    int n = epoll_wait(ep, evs, 4, 0);
    uint64_t now = punch_clock_ms();
    for (int i = 0; i < n && d->tcp_fd >= 0; i++) {
        uint32_t e = evs[i].events;
        if (!d->tcp_up) {
            if (punch_tcp_connect_result(d->tcp_fd) != 0) {
                tcp_fail(d, now);
                break;
            }
            d->tcp_up = true;
            d->stats.tcp_connects++;
            e = EPOLLOUT | (e & EPOLLIN);
        }
        if (e & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
            int rc = punch_tcp_read_frames(d->tcp_fd, &d->rd, TCP_READ_BUDGET, on_frame, d);
            if (rc != PUNCH_TCP_OPEN) {
                tcp_fail(d, now);
                break;
            }
        }
        if (e & EPOLLOUT) {
            if (punch_tcp_out_flush(d->tcp_fd, &d->out) != 0) {
                tcp_fail(d, now);
                break;
            }
            tcp_want(d, EPOLLIN | (punch_tcp_out_pending(&d->out) ? EPOLLOUT : 0));
        }
    }
    drain(d);
    punch_driver_flush(d);
}

static void on_readable(void *arg, int fd)
{
    punch_driver *d = arg;
    int n;
    const punch_addr *local = fd == d->fd_other ? &d->local_other : &d->local;
    while ((n = punch_udp_recv(fd, d->rx, local)) > 0) {
        uint64_t now = punch_clock_ms();
        for (unsigned i = 0; i < (unsigned)n; i++) {
            const uint8_t *data;
            size_t len;
            punch_addr src, dst;
            punch_udp_received(d->rx, i, &data, &len, &src, &dst);
            if (punch_addr_equal(&src, &d->server)) {
                bool probe = is_probe_answer(d, data, len);
                if (d->via_tcp && probe)
                    go_udp(d, now);
                else if (!d->via_tcp)
                    heard_server(d);
                if (probe)
                    continue; /* ours, not the agent's */
            }
            punch_agent_handle_datagram(d->agent, now, &src, data, len);
            if ((i + 1) % HANDLE_EVERY == 0)
                handled(d);
        }
        handled(d);
        if (n < PUNCH_UDP_BATCH)
            break;
    }
}

/* ---- the TURN server over TCP or TLS (turn_link.h) ---- */

static void on_turn_message(void *arg, const uint8_t *msg, size_t len)
{
    punch_driver *d = arg;
    punch_agent_handle_datagram(d->agent, punch_clock_ms(), &d->turn_server, msg, len);
    handled(d);
}

static void after_turn_change(void *arg)
{
    handled(arg);
}

static void on_turn_down(void *arg, const char *line, const char *reason)
{
    punch_driver *d = arg;
    punch_log(PUNCH_LOG_ERROR, "%s", line);
    punch_agent_turn_down(d->agent, punch_clock_ms(), reason);
    punch_loop_defer(d->loop, after_turn_change, d); /* maybe inside a flush now */
}

static void on_turn_up(void *arg, unsigned tries)
{
    punch_driver *d = arg;
    char addr[PUNCH_ADDR_STRLEN];
    if (tries > 0)
        punch_log(PUNCH_LOG_INFO, "the TURN server %s: connected again after %u tries",
                  punch_addr_format(&d->turn_server, addr), tries);
    punch_agent_turn_up(d->agent, punch_clock_ms());
    punch_loop_defer(d->loop, after_turn_change, d);
}

/* Before the agent (ac: its settings, told the server is on a stream): the
 * link only queues until the loop runs, by when the agent is there. */
static int turn_link_new(punch_driver *d, const punch_driver_cfg *cfg, punch_agent_cfg *ac)
{
    d->turn_server = cfg->agent.turn_server;
    if (cfg->turn_transport == PUNCH_DRIVER_TURN_UDP || d->turn_server.family == PUNCH_AF_NONE)
        return 0;
    ac->turn_stream = true;
    punch_turn_link_cfg lc = {.server = d->turn_server,
                              .tls = cfg->turn_transport == PUNCH_DRIVER_TURN_TLS,
                              .host = cfg->turn_host, .ca_file = cfg->turn_ca_file,
                              .on_message = on_turn_message, .on_down = on_turn_down,
                              .on_up = on_turn_up, .arg = d};
    char why[512] = "bad TURN settings";
    int rc = punch_turn_link_new(&d->turn_link, d->loop, &lc, why, sizeof(why));
    if (rc != 0)
        punch_log(PUNCH_LOG_ERROR, "%s", why);
    return rc;
}

const char *punch_driver_transport(const punch_driver *d)
{
    return d->via_tcp ? "tcp" : "udp";
}

const punch_addr *punch_driver_tcp_server(const punch_driver *d)
{
    return !d->via_tcp ? NULL : d->tcp_other ? &d->server_other : &d->server;
}

const punch_driver_stats *punch_driver_stats_get(const punch_driver *d)
{
    return &d->stats;
}

static void after_tcp(void *arg)
{
    handled(arg);
}

/* TCP paths to peers (driver_tcp.h): with PUNCH_AGENT_TCP asked of every
 * peer; offers from peers answered either way. Over the other family too
 * (issue 16) when the host has addresses of it. */
static int tcp_paths_new(punch_driver *d, const punch_agent_cfg *ac)
{
    punch_tcp_paths_cfg tc = {.agent = d->agent, .server = d->server, .udp_port = d->local.port,
                              .ask = (ac->flags & PUNCH_AGENT_TCP) != 0, .random = ac->random,
                              .random_ctx = ac->random_ctx};
    uint8_t other = d->server.family == PUNCH_AF_INET ? PUNCH_AF_INET6 : PUNCH_AF_INET;
    tc.server_other = d->server_other;
    tc.n_local = punch_local_addresses(d->local.family, 0, tc.local, PUNCH_MAX_LOCAL);
    if (d->fd_other >= 0)
        tc.n_local += punch_local_addresses(other, 0, tc.local + tc.n_local,
                                            PUNCH_MAX_LOCAL - tc.n_local);
    return punch_driver_tcp_new(&d->tcp_paths, d->loop, &tc, &d->stats, after_tcp, d);
}

/* Dual stack (issue 16): a socket of the other family beside the main
 * one, on the same port when that is free, when the machine has an address
 * of that family to offer. A bind address of one family keeps to it. */
static void open_other_family(punch_driver *d, const punch_addr *bind)
{
    uint8_t family = d->local.family == PUNCH_AF_INET ? PUNCH_AF_INET6 : PUNCH_AF_INET;
    punch_addr one, any = {.family = family, .port = d->local.port};
    if (!punch_addr_is_any(bind) || punch_local_addresses(family, 0, &one, 1) == 0)
        return;
    if ((d->fd_other = punch_udp_bind(&any, &d->local_other)) < 0) {
        any.port = 0;
        d->fd_other = punch_udp_bind(&any, &d->local_other);
    }
    if (d->fd_other < 0)
        punch_log(PUNCH_LOG_WARN, "no %s socket: %s", family == PUNCH_AF_INET6 ? "IPv6" : "IPv4",
                  strerror(errno));
}

/* Our endpoints of both families, one of each in turn (punchd passes on
 * the first few: both families are among them). */
static size_t local_endpoints(const punch_driver *d, punch_addr *out, size_t cap)
{
    punch_addr main[PUNCH_MAX_LOCAL], other[PUNCH_MAX_LOCAL];
    size_t nm = punch_local_addresses(d->local.family, d->local.port, main, PUNCH_MAX_LOCAL);
    size_t no = d->fd_other < 0 ? 0
                                : punch_local_addresses(d->local_other.family,
                                                        d->local_other.port, other,
                                                        PUNCH_MAX_LOCAL);
    size_t n = 0;
    for (size_t i = 0; n < cap && (i < nm || i < no); i++) {
        if (i < nm)
            out[n++] = main[i];
        if (i < no && n < cap)
            out[n++] = other[i];
    }
    return n;
}

/* ac's server, and the first of its other servers of the other family
 * (family NONE: none): TCP to punchd's second try, and TCP paths'. */
static void take_servers(punch_driver *d, const punch_agent_cfg *ac)
{
    d->server = ac->server;
    for (size_t i = 0; i < ac->n_more_servers && !d->server_other.family; i++)
        if (ac->more_servers[i].family != ac->server.family)
            d->server_other = ac->more_servers[i];
}

int punch_driver_new(punch_driver **out, punch_loop *loop, const punch_driver_cfg *cfg)
{
    punch_driver *d = calloc(1, sizeof(*d));
    if (!d)
        return PUNCH_ERR_NOMEM;
    d->loop = loop;
    d->fd = d->fd_other = -1;
    d->ep = -1;
    d->extra_ep = -1;
    d->tcp_fd = -1;
    d->tcp_retry_ms = d->probe_next_ms = d->wait_probe_ms = UINT64_MAX;
    d->server = cfg->agent.server;
    d->fallback_ms = cfg->tcp_fallback_ms ? cfg->tcp_fallback_ms : PUNCH_DRIVER_TCP_FALLBACK_MS;
    d->on_event = cfg->on_event;
    d->arg = cfg->arg;
    punch_agent_cfg ac = cfg->agent;
    punch_addr bind = cfg->bind;
    /* An IPv6-only host: its IPv4 servers through the NAT64 (and so the
     * main socket is IPv6). */
    bool v6_only = punch_local_ipv6_only();
    punch_agent_cfg_nat64(&ac, !v6_only, v6_only);
    take_servers(d, &ac);
    if (bind.family == PUNCH_AF_NONE)
        bind.family = ac.server.family;
    int rc = PUNCH_ERR_NOMEM;
    if (!(d->rx = punch_udp_batch_new()) || !(d->tx = punch_udp_batch_new()) ||
        !(d->extra_tx = punch_udp_batch_new()) || !(d->tx_other = punch_udp_batch_new()) ||
        punch_tcp_out_init(&d->out, PUNCH_DRIVER_TCP_OUT_BYTES) != 0)
        goto fail;
    if ((d->fd = punch_udp_bind(&bind, &d->local)) < 0) {
        rc = PUNCH_ERR_IO;
        goto fail;
    }
    open_other_family(d, &bind);
    if (ac.n_local == 0)
        ac.n_local = local_endpoints(d, ac.local, PUNCH_MAX_LOCAL);
    if (!ac.random)
        ac.random = kernel_random;
    if (punch_random_bytes(d->probe_txid, sizeof(d->probe_txid)) != 0) {
        rc = PUNCH_ERR_IO;
        goto fail;
    }
    if (punch_portmap_pointless(&ac.server)) /* portmap hook */
        ac.portmap = PUNCH_PORTMAP_OFF;
    if ((rc = turn_link_new(d, cfg, &ac)) != 0 ||
        (rc = punch_agent_new(&d->agent, &ac, punch_clock_ms())) != 0)
        goto fail;
    memset(&ac.secret_key, 0, sizeof(ac.secret_key));
    if ((rc = punch_loop_timer_add(loop, PUNCH_LOOP_NEVER, on_timer, d, &d->timer)) != 0)
        goto fail;
    if (punch_loop_watch(loop, d->fd, on_readable, d) != 0 ||
        (d->fd_other >= 0 && punch_loop_watch(loop, d->fd_other, on_readable, d) != 0)) {
        rc = PUNCH_ERR_IO;
        goto fail;
    }
    /* The first flight (HELLO or the token's REGISTER and CONNECT) leaves
     * now: what follows is not needed before the answers come (cold start,
     * issue 10). */
    punch_driver_flush(d);
    if ((d->ep = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
        punch_loop_watch(loop, d->ep, on_tcp, d) != 0 ||
        (d->extra_ep = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
        punch_loop_watch(loop, d->extra_ep, on_extra, d) != 0 ||
        (ac.portmap && punch_portmap_io_new(&d->portmap, loop, d->agent, d->local.port,
                                            portmap_flush, d) != 0)) { /* portmap hook */
        rc = PUNCH_ERR_IO;
        goto fail;
    }
    if ((rc = tcp_paths_new(d, &ac)) != 0)
        goto fail;
    *out = d;
    /* No flush: the caller's next one (its CONNECT, say) comes sooner
     * without the gateway's thread starting first. */
    arm_timer(d);
    return 0;
fail:
    memset(&ac.secret_key, 0, sizeof(ac.secret_key));
    punch_driver_free(d);
    return rc;
}

void punch_driver_free(punch_driver *d)
{
    if (!d)
        return;
    punch_loop_timer_del(d->loop, d->timer);
    if (d->fd >= 0)
        close(d->fd);
    if (d->fd_other >= 0)
        close(d->fd_other);
    tcp_close(d);
    if (d->ep >= 0)
        close(d->ep);
    for (unsigned k = 1; d->extra && k <= PUNCH_MAX_SOCKETS; k++)
        extra_close(d, k);
    free(d->extra);
    if (d->extra_ep >= 0)
        close(d->extra_ep);
    punch_driver_tcp_free(d->tcp_paths);
    punch_turn_link_free(d->turn_link);
    punch_loop_undefer(d->loop, after_turn_change, d);
    punch_udp_batch_free(d->extra_tx);
    punch_tcp_out_free(&d->out);
    memset(d->last_reg, 0, sizeof(d->last_reg));
    punch_portmap_io_free(d->portmap); /* portmap hook: removes the mapping */
    punch_agent_free(d->agent);
    punch_udp_batch_free(d->rx);
    punch_udp_batch_free(d->tx);
    punch_udp_batch_free(d->tx_other);
    free(d);
}

punch_agent *punch_driver_agent(punch_driver *d)
{
    return d->agent;
}

void punch_driver_path_local(const punch_driver *d, const punch_event_path *path,
                             punch_addr *out)
{
    *out = d->fd_other >= 0 && path->remote.family == d->local_other.family ? d->local_other
                                                                           : d->local;
    punch_addr ip;
    if (punch_udp_route_source(&path->remote, &ip) == 0) {
        ip.port = out->port;
        *out = ip;
    }
    int fd = -1;
    if (path->socket.kind == PUNCH_SOCKET_EXTRA && d->extra &&
        path->socket.index <= PUNCH_MAX_SOCKETS)
        fd = d->extra[path->socket.index];
    if (path->socket.kind == PUNCH_SOCKET_TCP)
        fd = punch_driver_tcp_fd(d->tcp_paths, path->socket);
    if (fd >= 0) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        punch_addr bound;
        if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
            punch_addr_from_sockaddr((struct sockaddr *)&ss, &bound);
            out->port = bound.port;
        }
    }
}

const punch_addr *punch_driver_local(const punch_driver *d)
{
    return &d->local;
}
