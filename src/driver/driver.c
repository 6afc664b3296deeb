/* The I/O driver: see driver.h. */
#include "driver/driver.h"

#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "io/net.h"
#include "driver/portmap.h" /* portmap hook */
#include "io/tcp.h"
#include "wire/msg.h"
#include "wire/stun.h"

/* Reconnecting to the server over TCP: 500 ms, doubling to 30 s. */
/* A connection not up by then is given up (the kernel alone would try for
 * about two minutes where SYNs are dropped). */
#define TCP_CONNECT_MS 10000u
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
/* Frames waiting for a slow TCP path to a peer. */
#define TP_OUT_BYTES (32u * 1024)

typedef struct tcp_path tcp_path;

struct punch_driver {
    punch_loop *loop;
    punch_loop_timer timer;    /* the agent's deadline and ours */
    punch_agent *agent;
    punch_portmap_io *portmap; /* portmap hook: the gateway's side, NULL when off */
    int fd;
    punch_addr local;
    punch_addr server;
    punch_udp_batch *rx, *tx;
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
    /* TCP paths to peers (below): their sockets in an epoll set of their own. */
    bool want_tcp;             /* PUNCH_AGENT_TCP: ask every peer for one */
    int tp_ep;
    tcp_path *tp;              /* TP_SLOTS */
};

static void kernel_random(void *ctx, uint8_t *buf, size_t len)
{
    (void)ctx;
    if (punch_random_bytes(buf, len) != 0)
        abort(); /* no randomness, no keys: nothing safe left to do */
}

size_t punch_local_addresses(uint8_t family, uint16_t port, punch_addr *out, size_t cap)
{
    struct ifaddrs *ifs = NULL;
    size_t n = 0;
    if (getifaddrs(&ifs) != 0)
        return 0;
    for (struct ifaddrs *i = ifs; i && n < cap; i = i->ifa_next) {
        if (!i->ifa_addr || !(i->ifa_flags & IFF_UP) || (i->ifa_flags & IFF_LOOPBACK))
            continue;
        punch_addr a;
        punch_addr_from_sockaddr(i->ifa_addr, &a);
        /* IPv6 link-local addresses need a scope: not usable as candidates. */
        if (a.family != family || (family == PUNCH_AF_INET6 && a.ip[0] == 0xfe &&
                                   (a.ip[1] & 0xc0) == 0x80))
            continue;
        a.port = port;
        bool seen = false;
        for (size_t k = 0; k < n; k++)
            seen = seen || punch_addr_equal(&out[k], &a);
        if (!seen)
            out[n++] = a;
    }
    freeifaddrs(ifs);
    return n;
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

static void tp_event(punch_driver *d, const punch_event *ev, uint64_t now);

/* What the consumers take: a DATA event with a consumer's tag goes to that
 * one only (returns true: on_event does not see it); PATH and CLOSED go to
 * every consumer. A consumer may detach itself meanwhile. */
static bool to_consumers(punch_driver *d, const punch_event *ev)
{
    if (ev->kind == PUNCH_EVENT_DATA) {
        for (size_t i = 0; ev->len > 0 && i < d->n_consumers; i++)
            if (d->consumers[i].tag == ev->data[0]) {
                d->consumers[i].fn(d->consumers[i].arg, ev);
                return true;
            }
        return false;
    }
    if (ev->kind == PUNCH_EVENT_PATH || ev->kind == PUNCH_EVENT_CLOSED)
        for (size_t i = 0; i < d->n_consumers; i++)
            d->consumers[i].fn(d->consumers[i].arg, ev);
    return false;
}

static void drain(punch_driver *d)
{
    punch_event ev;
    while (punch_agent_poll_event(d->agent, &ev) == 1) {
        tp_event(d, &ev, punch_clock_ms());
        if (ev.kind == PUNCH_EVENT_SOCKETS)
            for (unsigned k = ev.sock_first; k <= ev.sock_last && k <= PUNCH_MAX_SOCKETS; k++)
                if (k != ev.sock_keep)
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
                punch_agent_handle_datagram_on(d->agent, now, (uint16_t)k, &src, data, len);
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

/* ---- TCP paths to peers (draft §3.5 simultaneous open, §3.2 reversal) ----
 *
 * One attempt per peer at a time, in a slot of its own. Each try:
 *  1. bind a new TCP port P (SO_REUSEADDR|SO_REUSEPORT, §4.4), listen on
 *     it, and connect from it to the server, which answers a STUN Binding
 *     request in a frame: P's public endpoint (through our NAT).
 *  2. the side that asked for TCP (PUNCH_AGENT_TCP) sends an offer over
 *     the encrypted session (repeated every TP_OFFER_RTO_MS); the other
 *     side does step 1 and answers, saying it connects delay_ms later
 *     (half the session's round trip: when the answer arrives).
 *  3. both decide the same way who connects: when exactly one side's TCP
 *     endpoint is public (it is one of its own addresses: no NAT on the
 *     way), the other connects out to it (§3.2: `reversal` when that is
 *     the side that was asked, else `tcp-direct`); otherwise, and on any
 *     try after the first (a "public" side that could not be reached), both
 *     connect to each other's public endpoint from P at the agreed moment,
 *     every SYN opening its own NAT for the other's (§3.5). One side starts
 *     TP_HEAD_MS ahead, the asker on odd tries, the other on even ones: a
 *     NAT that answers an early SYN with a RST kills the try only when the
 *     SYN aimed at it leaves first, so of two tries one has the right order.
 *  4. the first connection up (connected, or accepted from the peer's
 *     address) is handed to the agent as a candidate on its own socket
 *     index, framed like the server's connection, and validated by PING/
 *     PONG; the rest are closed. A try with nothing up in TP_CONNECT_MS,
 *     or a refused one (RST), fails: the asker tries again with new ports
 *     up to TP_TRIES times (§6.2), each failure an ATTEMPT event. */
#define TP_SLOTS 8
#define TP_TRIES 3
#define TP_STUN_MS 3000u
#define TP_OFFER_RTO_MS 500u
#define TP_CONNECT_MS 5000u
#define TP_HEAD_MS 50u
#define TP_DEFAULT_RTT_MS 100u
#define TP_ACCEPTS 4 /* connections accepted per try from other addresses */

typedef enum tp_state {
    TP_IDLE = 0,
    TP_STUN,        /* learning our public TCP endpoint */
    TP_OFFERED,     /* asker: offer sent, waiting for the answer */
    TP_WAIT,        /* waiting for the agreed moment */
    TP_CONNECTING,
    TP_UP,
    TP_DONE,        /* asker: gave up, or the connection is gone: no more tries */
} tp_state;

struct tcp_path {
    int peer;                  /* -1: free */
    uint32_t gen;              /* bumped when the sockets change: stale epoll events */
    tp_state state;
    bool asker;
    uint16_t attempt;
    unsigned tries;
    uint32_t rtt_ms;           /* of the session's path (PATH events) */
    int lfd, sfd, cfd, fd;     /* listener, to the server, connecting, the one up */
    bool sfd_up;
    punch_addr local, public_addr;
    bool reachable;
    uint8_t txid[PUNCH_STUN_TXID_LEN];
    punch_tcp_offer peer_offer;
    bool have_peer;
    bool connect_out;
    punch_technique technique;
    uint64_t deadline_ms, connect_at_ms, next_offer_ms;
    uint16_t sock;
    punch_addr remote;
    unsigned accepts;
    punch_frame_reader rd;     /* the server's answer, then the peer's frames */
    punch_tcp_out out;
    uint32_t out_events;
};

enum { TP_FD_LISTEN, TP_FD_STUN, TP_FD_CONNECT, TP_FD_UP };

static int *tp_fdp(tcp_path *t, int which)
{
    return which == TP_FD_LISTEN ? &t->lfd
           : which == TP_FD_STUN ? &t->sfd
           : which == TP_FD_CONNECT ? &t->cfd
                                    : &t->fd;
}

static void tp_close_fd(punch_driver *d, tcp_path *t, int which)
{
    int *fd = tp_fdp(t, which);
    if (*fd >= 0) {
        epoll_ctl(d->tp_ep, EPOLL_CTL_DEL, *fd, NULL);
        close(*fd);
    }
    *fd = -1;
}

/* epoll's note of a socket: slot, which one, generation. */
static uint64_t tp_tag(const punch_driver *d, const tcp_path *t, int which)
{
    return (uint64_t)t->gen << 32 | (uint64_t)(t - d->tp) << 8 | (uint64_t)which;
}

static int tp_watch_op(punch_driver *d, tcp_path *t, int which, uint32_t events, int op)
{
    struct epoll_event ev = {.events = events, .data.u64 = tp_tag(d, t, which)};
    return epoll_ctl(d->tp_ep, op, *tp_fdp(t, which), &ev);
}

static int tp_watch(punch_driver *d, tcp_path *t, int which, uint32_t events)
{
    return tp_watch_op(d, t, which, events, EPOLL_CTL_ADD);
}

/* Close every socket of the try; the slot stays (state given). */
static void tp_reset(punch_driver *d, tcp_path *t, tp_state st)
{
    for (int w = TP_FD_LISTEN; w <= TP_FD_UP; w++)
        tp_close_fd(d, t, w);
    t->gen++;
    t->sfd_up = false;
    t->have_peer = false;
    t->state = st;
    t->sock = 0;
    t->accepts = 0;
    punch_tcp_out_clear(&t->out);
    t->out_events = 0;
}

static tcp_path *tp_find(punch_driver *d, int peer)
{
    for (unsigned i = 0; i < TP_SLOTS; i++)
        if (d->tp[i].peer == peer)
            return &d->tp[i];
    return NULL;
}

static tcp_path *tp_slot(punch_driver *d, int peer)
{
    tcp_path *t = tp_find(d, peer);
    if (t)
        return t;
    if (!(t = tp_find(d, -1)))
        return NULL;
    t->peer = peer;
    t->state = TP_IDLE;
    t->attempt = 0;
    t->tries = 0;
    return t;
}

static void tp_free_slot(punch_driver *d, tcp_path *t)
{
    tp_reset(d, t, TP_IDLE);
    t->peer = -1;
    t->rtt_ms = 0;
}

static uint32_t tp_rtt(const tcp_path *t)
{
    return t->rtt_ms ? t->rtt_ms : TP_DEFAULT_RTT_MS;
}

/* Step 1: a new port, listening, and its public endpoint from the server. */
static int tp_begin(punch_driver *d, tcp_path *t, uint64_t now)
{
    tp_reset(d, t, TP_STUN);
    punch_addr any = {.family = d->local.family};
    /* A TCP port with the number of our UDP one would look like the same
     * peer to the server (its tcp_clash rule): pick again. */
    for (int i = 0; i < 4; i++) {
        t->lfd = punch_tcp_listen_shared(&any, &t->local);
        if (t->lfd < 0 || t->local.port != d->local.port)
            break;
        tp_close_fd(d, t, TP_FD_LISTEN);
    }
    if (t->lfd < 0)
        return PUNCH_ERR_IO;
    t->sfd = punch_tcp_connect_from(&t->local, &d->server);
    if (t->sfd < 0 || tp_watch(d, t, TP_FD_STUN, EPOLLOUT) != 0)
        return PUNCH_ERR_IO;
    punch_frame_reader_init(&t->rd);
    if (punch_random_bytes(t->txid, sizeof(t->txid)) != 0)
        return PUNCH_ERR_IO;
    t->deadline_ms = now + TP_STUN_MS;
    return 0;
}

static void tp_send_offer(punch_driver *d, tcp_path *t, uint64_t now)
{
    punch_tcp_offer o = {.answer = !t->asker, .reachable = t->reachable, .prefer = t->asker,
                         .attempt = t->attempt, .public_addr = t->public_addr};
    if (!t->asker)
        o.delay_ms = (uint16_t)(t->connect_at_ms > now ? t->connect_at_ms - now : 0);
    punch_addr locals[PUNCH_TCP_MAX_PRIVATE];
    o.n_private = punch_local_addresses(t->local.family, t->local.port, locals,
                                        PUNCH_TCP_MAX_PRIVATE);
    memcpy(o.private_addr, locals, o.n_private * sizeof(punch_addr));
    punch_agent_tcp_offer(d->agent, now, t->peer, &o);
}

/* Step 3: who connects, and how it is called; the same on both sides. */
static void tp_decide(tcp_path *t)
{
    bool asker_pub = t->asker ? t->reachable : t->peer_offer.reachable;
    bool answerer_pub = t->asker ? t->peer_offer.reachable : t->reachable;
    if (t->tries > 1 || t->attempt > 1 || asker_pub == answerer_pub) {
        if (t->attempt == 1 && asker_pub && answerer_pub) {
            t->technique = PUNCH_TECH_TCP_DIRECT;
            t->connect_out = t->asker;
            return;
        }
        t->technique = PUNCH_TECH_TCP_SIMOPEN;
        t->connect_out = true;
        return;
    }
    /* Exactly one side is public: the other connects out to it. */
    bool asker_connects = answerer_pub;
    t->technique = asker_connects ? PUNCH_TECH_TCP_DIRECT : PUNCH_TECH_REVERSAL;
    t->connect_out = asker_connects == t->asker;
}

/* When this side connects, counted from the moment the answer arrives at
 * the asker: the side that goes first on this try at 0, the other
 * TP_HEAD_MS later (step 3). */
static uint32_t tp_head(const tcp_path *t)
{
    if (t->technique != PUNCH_TECH_TCP_SIMOPEN)
        return 0;
    bool asker_first = t->attempt % 2 == 1;
    return asker_first == t->asker ? 0 : TP_HEAD_MS + tp_rtt(t) / 2;
}

/* Our public TCP endpoint is known (step 1 done): offer, or answer. */
static void tp_local_ready(punch_driver *d, tcp_path *t, uint64_t now)
{
    punch_addr locals[PUNCH_MAX_LOCAL];
    size_t n = punch_local_addresses(t->local.family, t->local.port, locals, PUNCH_MAX_LOCAL);
    t->reachable = false;
    for (size_t i = 0; i < n; i++)
        t->reachable = t->reachable || punch_addr_equal(&locals[i], &t->public_addr);
    if (t->asker) {
        t->state = TP_OFFERED;
        t->deadline_ms = now + TP_CONNECT_MS;
        t->next_offer_ms = now + TP_OFFER_RTO_MS;
        tp_send_offer(d, t, now);
        return;
    }
    tp_decide(t);
    t->state = TP_WAIT;
    t->connect_at_ms = now + tp_rtt(t) / 2 + tp_head(t);
    t->deadline_ms = t->connect_at_ms + TP_CONNECT_MS;
    tp_send_offer(d, t, now);
}

static bool tp_peer_addr(const tcp_path *t, const punch_addr *a)
{
    if (punch_addr_same_ip(a, &t->peer_offer.public_addr))
        return true;
    for (size_t i = 0; i < t->peer_offer.n_private; i++)
        if (punch_addr_same_ip(a, &t->peer_offer.private_addr[i]))
            return true;
    return false;
}

/* Step 3, at the agreed moment: accept from the peer from now on, and
 * connect when it is our part. */
static void tp_connect(punch_driver *d, tcp_path *t, uint64_t now)
{
    t->state = TP_CONNECTING;
    t->deadline_ms = now + TP_CONNECT_MS;
    if (tp_watch(d, t, TP_FD_LISTEN, EPOLLIN) != 0)
        d->stats.tcp_path_errors++;
    if (!t->connect_out)
        return;
    t->remote = t->peer_offer.public_addr;
    t->cfd = punch_tcp_connect_from(&t->local, &t->remote);
    if (t->cfd < 0 || tp_watch(d, t, TP_FD_CONNECT, EPOLLOUT) != 0) {
        tp_close_fd(d, t, TP_FD_CONNECT);
        d->stats.tcp_path_errors++;
    }
}

static void tp_fail(punch_driver *d, tcp_path *t, uint64_t now, const char *why)
{
    char msg[96];
    d->stats.tcp_path_failures++;
    if (!t->asker) {
        tp_reset(d, t, TP_IDLE); /* the asker decides what comes next */
        return;
    }
    punch_technique tech = t->have_peer ? t->technique : PUNCH_TECH_TCP_SIMOPEN;
    punch_addr remote = t->have_peer ? t->peer_offer.public_addr : (punch_addr){0};
    bool again = t->tries < TP_TRIES;
    snprintf(msg, sizeof(msg), "try %u of %u: %s%s", t->tries, TP_TRIES, why,
             again ? "; again with new ports" : "; staying on the path in use");
    punch_agent_tcp_failed(d->agent, now, t->peer, 0, tech, &remote, msg);
    if (!again) {
        tp_reset(d, t, TP_DONE);
        return;
    }
    t->tries++;
    t->attempt++;
    if (tp_begin(d, t, now) != 0)
        tp_fail(d, t, now, "cannot open a TCP socket");
}

/* Step 4: a connection is up. */
static void tp_up(punch_driver *d, tcp_path *t, int which, const punch_addr *remote,
                  uint64_t now)
{
    int fd = *tp_fdp(t, which);
    *tp_fdp(t, which) = -1;
    epoll_ctl(d->tp_ep, EPOLL_CTL_DEL, fd, NULL);
    tp_reset(d, t, TP_UP);
    t->fd = fd;
    t->remote = *remote;
    t->sock = (uint16_t)(PUNCH_TCP_SOCK_FIRST + (t - d->tp));
    punch_frame_reader_init(&t->rd);
    t->out_events = EPOLLIN;
    if (tp_watch(d, t, TP_FD_UP, EPOLLIN) != 0 ||
        punch_agent_tcp_path(d->agent, now, t->peer, t->sock, t->technique, remote) != 0) {
        tp_reset(d, t, TP_DONE);
        return;
    }
    d->stats.tcp_paths++;
}

/* The connection that was up is gone: the agent falls back. */
static void tp_lost(punch_driver *d, tcp_path *t, uint64_t now, const char *why)
{
    uint16_t sock = t->sock;
    punch_addr remote = t->remote;
    tp_reset(d, t, TP_DONE);
    punch_agent_tcp_failed(d->agent, now, t->peer, sock, t->technique, &remote, why);
}

/* A datagram of the agent for TCP socket index sock. */
static void tp_send(punch_driver *d, uint16_t sock, const uint8_t *buf, size_t len,
                    uint64_t now)
{
    unsigned i = (unsigned)(sock - PUNCH_TCP_SOCK_FIRST);
    tcp_path *t = i < TP_SLOTS ? &d->tp[i] : NULL;
    if (!t || t->state != TP_UP || t->sock != sock ||
        punch_tcp_out_frame(&t->out, buf, len) != 0) {
        d->stats.tcp_path_dropped++;
        return;
    }
    if (punch_tcp_out_flush(t->fd, &t->out) != 0) {
        tp_lost(d, t, now, "TCP connection failed");
        return;
    }
    uint32_t want = EPOLLIN | (punch_tcp_out_pending(&t->out) ? EPOLLOUT : 0);
    if (want != t->out_events) {
        tp_watch_op(d, t, TP_FD_UP, want, EPOLL_CTL_MOD);
        t->out_events = want;
    }
}

static bool stun_mapped(const uint8_t *buf, size_t len, const uint8_t *txid, punch_addr *out)
{
    punch_stun_msg m;
    const punch_stun_attr *x;
    return punch_stun_is_stun(buf, len) && punch_stun_decode(&m, buf, len) == 0 && !m.classic &&
           m.method == PUNCH_STUN_BINDING && m.cls == PUNCH_STUN_SUCCESS &&
           memcmp(m.txid, txid, PUNCH_STUN_TXID_LEN) == 0 &&
           (x = punch_stun_find(&m, PUNCH_STUN_ATTR_XOR_MAPPED_ADDRESS)) != NULL &&
           punch_stun_read_addr(&m, x, out) == 0;
}

typedef struct tp_read_ctx {
    punch_driver *d;
    tcp_path *t;
    uint64_t now;
    bool stun;               /* reading the server's answer */
    bool got;
} tp_read_ctx;

static bool tp_on_frame(void *arg, const uint8_t *frame, size_t len)
{
    tp_read_ctx *c = arg;
    if (c->stun) {
        if (stun_mapped(frame, len, c->t->txid, &c->t->public_addr)) {
            c->got = true;
            return false;
        }
        c->d->stats.tcp_path_dropped++;
        return true;
    }
    punch_agent_handle_datagram_on(c->d->agent, c->now, c->t->sock, &c->t->remote, frame, len);
    return c->t->state == TP_UP;
}

static void tp_stun_event(punch_driver *d, tcp_path *t, uint32_t e, uint64_t now)
{
    if (!t->sfd_up) {
        uint8_t req[64], frame[80];
        size_t len;
        punch_stun_writer w;
        if (punch_tcp_connect_result(t->sfd) != 0) {
            tp_fail(d, t, now, "cannot reach the server over TCP");
            return;
        }
        t->sfd_up = true;
        if (punch_stun_writer_init(&w, req, sizeof(req), PUNCH_STUN_BINDING,
                                   PUNCH_STUN_REQUEST, t->txid) != 0 ||
            punch_stun_finish(&w, &len) != 0 || punch_frame_header(len, frame) != 0) {
            tp_fail(d, t, now, "cannot ask the server");
            return;
        }
        memcpy(frame + PUNCH_FRAME_HEADER, req, len);
        /* 22 bytes into a fresh connection's empty buffer: one send. */
        if (send(t->sfd, frame, PUNCH_FRAME_HEADER + len, MSG_NOSIGNAL | MSG_DONTWAIT) !=
            (ssize_t)(PUNCH_FRAME_HEADER + len)) {
            tp_fail(d, t, now, "cannot ask the server");
            return;
        }
        tp_watch_op(d, t, TP_FD_STUN, EPOLLIN, EPOLL_CTL_MOD);
        return;
    }
    if (!(e & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        return;
    tp_read_ctx c = {.d = d, .t = t, .now = now, .stun = true};
    int rc = punch_tcp_read_frames(t->sfd, &t->rd, 4096, tp_on_frame, &c);
    if (c.got) {
        /* The connection to the server stays open while the try lasts: it
         * holds our NAT's mapping of P. */
        epoll_ctl(d->tp_ep, EPOLL_CTL_DEL, t->sfd, NULL);
        tp_local_ready(d, t, now);
    } else if (rc != PUNCH_TCP_OPEN) {
        tp_fail(d, t, now, "the server closed the TCP connection");
    }
}

static void on_tp(void *arg, int ep)
{
    punch_driver *d = arg;
    struct epoll_event evs[16];
    int n = epoll_wait(ep, evs, 16, 0);
    uint64_t now = punch_clock_ms();
    for (int i = 0; i < n; i++) {
        uint64_t tag = evs[i].data.u64;
        unsigned slot = (unsigned)(tag >> 8 & 0xff), which = (unsigned)(tag & 0xff);
        uint32_t e = evs[i].events;
        if (slot >= TP_SLOTS || which > TP_FD_UP)
            continue;
        tcp_path *t = &d->tp[slot];
        if ((uint32_t)(tag >> 32) != t->gen || *tp_fdp(t, (int)which) < 0)
            continue; /* its sockets changed earlier in this round */
        if (which == TP_FD_STUN) {
            tp_stun_event(d, t, e, now);
        } else if (which == TP_FD_CONNECT) {
            if (punch_tcp_connect_result(t->cfd) == 0) {
                tp_up(d, t, TP_FD_CONNECT, &t->remote, now);
            } else {
                char why[80];
                snprintf(why, sizeof(why), "connect to the peer: %s",
                         errno == ECONNREFUSED ? "refused (RST)" : strerror(errno));
                tp_fail(d, t, now, why);
            }
        } else if (which == TP_FD_LISTEN) {
            punch_addr remote, local;
            int fd;
            while (t->lfd >= 0 && (fd = punch_tcp_accept(t->lfd, &remote, &local)) >= 0) {
                if (t->state != TP_CONNECTING || !tp_peer_addr(t, &remote) ||
                    t->accepts >= TP_ACCEPTS) {
                    close(fd); /* not the peer's: §6.1 */
                    d->stats.tcp_path_refused++;
                    continue;
                }
                t->accepts++;
                /* The listener's slot takes the accepted connection. */
                tp_close_fd(d, t, TP_FD_LISTEN);
                t->lfd = fd;
                tp_up(d, t, TP_FD_LISTEN, &remote, now);
                break;
            }
        } else if (t->state == TP_UP) {
            tp_read_ctx c = {.d = d, .t = t, .now = now};
            if (e & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                int rc = punch_tcp_read_frames(t->fd, &t->rd, TCP_READ_BUDGET, tp_on_frame, &c);
                if (rc == PUNCH_ERR_MALFORMED)
                    d->stats.tcp_path_bad_frames++;
                if (rc != PUNCH_TCP_OPEN && t->state == TP_UP) {
                    tp_lost(d, t, now, rc == PUNCH_ERR_MALFORMED
                                           ? "TCP connection closed: a bad frame"
                                           : "TCP connection closed");
                    continue;
                }
            }
            if ((e & EPOLLOUT) && t->state == TP_UP) {
                if (punch_tcp_out_flush(t->fd, &t->out) != 0) {
                    tp_lost(d, t, now, "TCP connection failed");
                    continue;
                }
                if (!punch_tcp_out_pending(&t->out)) {
                    tp_watch_op(d, t, TP_FD_UP, EPOLLIN, EPOLL_CTL_MOD);
                    t->out_events = EPOLLIN;
                }
            }
        }
    }
    drain(d);
    punch_driver_flush(d);
}

static int tp_addr_cmp(const punch_addr *a, const punch_addr *b)
{
    int c = memcmp(a->ip, b->ip, sizeof(a->ip));
    return c ? c : (int)a->port - (int)b->port;
}

/* An offer or answer from the peer. */
static void tp_on_offer(punch_driver *d, const punch_event *ev, uint64_t now)
{
    const punch_tcp_offer *o = &ev->tcp;
    tcp_path *t = tp_find(d, ev->peer);
    if (o->answer) {
        if (!t || !t->asker || t->state != TP_OFFERED || o->attempt != t->attempt) {
            d->stats.tcp_path_stale++;
            return;
        }
        t->peer_offer = *o;
        t->have_peer = true;
        tp_decide(t);
        uint32_t head = tp_head(t);
        if (head == 0) {
            tp_connect(d, t, now);
        } else {
            t->state = TP_WAIT;
            t->connect_at_ms = now + head;
            t->deadline_ms = t->connect_at_ms + TP_CONNECT_MS;
        }
        return;
    }
    if (t && t->asker) {
        /* Both asked: the side with the lower public TCP endpoint answers
         * (both compare the same two), once it knows its own. */
        if (t->state == TP_OFFERED && tp_addr_cmp(&t->public_addr, &o->public_addr) < 0) {
            t->asker = false;
            t->attempt = o->attempt;
            t->peer_offer = *o;
            t->have_peer = true;
            tp_local_ready(d, t, now);
        } else {
            d->stats.tcp_path_stale++;
        }
        return;
    }
    if (t && o->attempt == t->attempt && t->state != TP_IDLE) {
        if (t->state == TP_WAIT || t->state == TP_CONNECTING)
            tp_send_offer(d, t, now); /* our answer was lost */
        return;
    }
    if (t && o->attempt < t->attempt) {
        d->stats.tcp_path_stale++;
        return;
    }
    if (!t && !(t = tp_slot(d, ev->peer))) {
        d->stats.tcp_path_refused++;
        return;
    }
    /* The peer's tries are bounded here too (§6.2): an offer is a request
     * to connect to where it says. */
    if (t->tries >= TP_TRIES) {
        d->stats.tcp_path_refused++;
        return;
    }
    t->tries++;
    if (t->state == TP_UP)
        tp_lost(d, t, now, "TCP connection replaced: the peer tries again");
    t->asker = false;
    t->attempt = o->attempt;
    if (tp_begin(d, t, now) != 0) {
        tp_reset(d, t, TP_IDLE);
        d->stats.tcp_path_errors++;
        return;
    }
    t->peer_offer = *o;
    t->have_peer = true;
}

/* Start asking for a TCP path to this peer (its first path is up). */
static void tp_ask(punch_driver *d, int peer, uint64_t now)
{
    tcp_path *t = tp_find(d, peer);
    if (t && t->state != TP_IDLE)
        return; /* under way, or done */
    if (!t && !(t = tp_slot(d, peer)))
        return;
    t->asker = true;
    t->tries = 1;
    t->attempt = 1;
    if (tp_begin(d, t, now) != 0)
        tp_fail(d, t, now, "cannot open a TCP socket");
}

static void tp_timers(punch_driver *d, uint64_t now)
{
    for (unsigned i = 0; i < TP_SLOTS; i++) {
        tcp_path *t = &d->tp[i];
        if (t->peer < 0)
            continue;
        switch (t->state) {
        case TP_STUN:
            if (now >= t->deadline_ms)
                tp_fail(d, t, now, "the server did not tell our TCP endpoint");
            break;
        case TP_OFFERED:
            if (now >= t->deadline_ms) {
                tp_fail(d, t, now, "the peer did not answer the TCP offer");
            } else if (now >= t->next_offer_ms) {
                tp_send_offer(d, t, now);
                t->next_offer_ms = now + TP_OFFER_RTO_MS;
            }
            break;
        case TP_WAIT:
            if (now >= t->connect_at_ms)
                tp_connect(d, t, now);
            break;
        case TP_CONNECTING:
            if (now >= t->deadline_ms) {
                char why[64];
                snprintf(why, sizeof(why), "no TCP connection in %u ms", TP_CONNECT_MS);
                tp_fail(d, t, now, why);
            }
            break;
        default: break;
        }
    }
}

static uint64_t tp_deadline(const punch_driver *d)
{
    uint64_t t = UINT64_MAX;
    for (unsigned i = 0; i < TP_SLOTS; i++) {
        const tcp_path *p = &d->tp[i];
        uint64_t x = UINT64_MAX;
        if (p->peer < 0)
            continue;
        if (p->state == TP_STUN || p->state == TP_CONNECTING)
            x = p->deadline_ms;
        else if (p->state == TP_OFFERED)
            x = p->next_offer_ms < p->deadline_ms ? p->next_offer_ms : p->deadline_ms;
        else if (p->state == TP_WAIT)
            x = p->connect_at_ms;
        t = x < t ? x : t;
    }
    return t;
}

/* The driver's view of the agent's events, before the caller's. */
static void tp_event(punch_driver *d, const punch_event *ev, uint64_t now)
{
    tcp_path *t;
    switch (ev->kind) {
    case PUNCH_EVENT_PATH:
        if (d->want_tcp)
            tp_ask(d, ev->peer, now);
        if ((t = tp_find(d, ev->peer)) && ev->rtt_us && ev->sock == 0)
            t->rtt_ms = ev->rtt_us / 1000 ? ev->rtt_us / 1000 : 1;
        break;
    case PUNCH_EVENT_TCP_OFFER: tp_on_offer(d, ev, now); break;
    case PUNCH_EVENT_CLOSED:
        if ((t = tp_find(d, ev->peer)))
            tp_free_slot(d, t);
        break;
    default: break;
    }
}

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

/* The connection failed or dropped: try again after the backoff. */
static void tcp_fail(punch_driver *d, uint64_t now)
{
    d->stats.tcp_failures++;
    tcp_close(d);
    if (d->tcp_heard)
        d->tcp_backoff_ms = TCP_BACKOFF_MIN_MS; /* it worked: the next one may too */
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
    d->tcp_fd = punch_tcp_connect(&d->server);
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
    d->tcp_connect_deadline_ms = now + TCP_CONNECT_MS;
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
    tp_timers(d, now);
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
    uint64_t tp = tp_deadline(d);
    return tp < t ? tp : t;
}

static void portmap_flush(void *d) /* portmap hook: after a gateway's answer */
{
    drain(d);
    punch_driver_flush(d);
}

void punch_driver_flush(punch_driver *d)
{
    punch_portmap_io_kick(d->portmap); /* portmap hook */
    uint8_t buf[PUNCH_UDP_MTU], ttl;
    punch_addr dst;
    size_t len;
    uint16_t sock;
    uint64_t now = punch_clock_ms();
    while (punch_agent_poll_transmit_from(d->agent, &sock, &dst, &ttl, buf, sizeof(buf), &len) ==
           1) {
        if (sock >= PUNCH_TCP_SOCK_FIRST && sock <= PUNCH_TCP_SOCK_LAST) {
            tp_send(d, sock, buf, len, now);
            continue;
        }
        if (sock != 0) {
            extra_send(d, sock, &dst, ttl, buf, len);
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
        uint8_t *slot = punch_udp_queue(d->tx, &dst, NULL, ttl);
        if (!slot) {
            d->stats.udp_unsent += punch_udp_send(d->fd, d->tx);
            slot = punch_udp_queue(d->tx, &dst, NULL, ttl);
        }
        memcpy(slot, buf, len);
        punch_udp_queue_len(d->tx, len);
    }
    if (punch_udp_queued(d->tx))
        d->stats.udp_unsent += punch_udp_send(d->fd, d->tx);
    uint64_t t = punch_agent_next_timeout(d->agent), mine = driver_deadline(d);
    punch_loop_timer_set(d->loop, d->timer, mine < t ? mine : t);
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
    while ((n = punch_udp_recv(fd, d->rx, &d->local)) > 0) {
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

const char *punch_driver_transport(const punch_driver *d)
{
    return d->via_tcp ? "tcp" : "udp";
}

const punch_driver_stats *punch_driver_stats_get(const punch_driver *d)
{
    return &d->stats;
}

int punch_driver_new(punch_driver **out, punch_loop *loop, const punch_driver_cfg *cfg)
{
    punch_driver *d = calloc(1, sizeof(*d));
    if (!d)
        return PUNCH_ERR_NOMEM;
    d->loop = loop;
    d->fd = -1;
    d->ep = -1;
    d->extra_ep = -1;
    d->tp_ep = -1;
    d->tcp_fd = -1;
    d->want_tcp = (cfg->agent.flags & PUNCH_AGENT_TCP) != 0;
    d->tcp_retry_ms = d->probe_next_ms = d->wait_probe_ms = UINT64_MAX;
    d->server = cfg->agent.server;
    d->fallback_ms = cfg->tcp_fallback_ms ? cfg->tcp_fallback_ms : PUNCH_DRIVER_TCP_FALLBACK_MS;
    d->on_event = cfg->on_event;
    d->arg = cfg->arg;
    punch_agent_cfg ac = cfg->agent;
    punch_addr bind = cfg->bind;
    if (bind.family == PUNCH_AF_NONE)
        bind.family = ac.server.family;
    int rc = PUNCH_ERR_NOMEM;
    if (!(d->rx = punch_udp_batch_new()) || !(d->tx = punch_udp_batch_new()) ||
        !(d->extra_tx = punch_udp_batch_new()) ||
        punch_tcp_out_init(&d->out, PUNCH_DRIVER_TCP_OUT_BYTES) != 0 ||
        !(d->tp = calloc(TP_SLOTS, sizeof(tcp_path))))
        goto fail;
    for (unsigned i = 0; i < TP_SLOTS; i++) {
        tcp_path *t = &d->tp[i];
        t->peer = -1;
        t->lfd = t->sfd = t->cfd = t->fd = -1;
        if (punch_tcp_out_init(&t->out, TP_OUT_BYTES) != 0)
            goto fail;
    }
    if ((d->fd = punch_udp_bind(&bind, &d->local)) < 0) {
        rc = PUNCH_ERR_IO;
        goto fail;
    }
    if (ac.n_local == 0)
        ac.n_local = punch_local_addresses(d->local.family, d->local.port, ac.local,
                                           PUNCH_MAX_LOCAL);
    if (!ac.random)
        ac.random = kernel_random;
    if (punch_random_bytes(d->probe_txid, sizeof(d->probe_txid)) != 0) {
        rc = PUNCH_ERR_IO;
        goto fail;
    }
    if (punch_portmap_pointless(&ac.server)) /* portmap hook */
        ac.portmap = PUNCH_PORTMAP_OFF;
    if ((rc = punch_agent_new(&d->agent, &ac, punch_clock_ms())) != 0)
        goto fail;
    memset(&ac.secret_key, 0, sizeof(ac.secret_key));
    if ((rc = punch_loop_timer_add(loop, PUNCH_LOOP_NEVER, on_timer, d, &d->timer)) != 0)
        goto fail;
    if (punch_loop_watch(loop, d->fd, on_readable, d) != 0 ||
        (d->ep = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
        punch_loop_watch(loop, d->ep, on_tcp, d) != 0 ||
        (d->extra_ep = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
        punch_loop_watch(loop, d->extra_ep, on_extra, d) != 0 ||
        (d->tp_ep = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
        punch_loop_watch(loop, d->tp_ep, on_tp, d) != 0 ||
        (ac.portmap && punch_portmap_io_new(&d->portmap, loop, d->agent, d->local.port,
                                            portmap_flush, d) != 0)) { /* portmap hook */
        rc = PUNCH_ERR_IO;
        goto fail;
    }
    *out = d;
    punch_driver_flush(d);
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
    tcp_close(d);
    if (d->ep >= 0)
        close(d->ep);
    for (unsigned k = 1; d->extra && k <= PUNCH_MAX_SOCKETS; k++)
        extra_close(d, k);
    free(d->extra);
    if (d->extra_ep >= 0)
        close(d->extra_ep);
    for (unsigned i = 0; d->tp && i < TP_SLOTS; i++) {
        if (d->tp_ep >= 0)
            tp_reset(d, &d->tp[i], TP_IDLE);
        punch_tcp_out_free(&d->tp[i].out);
    }
    free(d->tp);
    if (d->tp_ep >= 0)
        close(d->tp_ep);
    punch_udp_batch_free(d->extra_tx);
    punch_tcp_out_free(&d->out);
    memset(d->last_reg, 0, sizeof(d->last_reg));
    punch_portmap_io_free(d->portmap); /* portmap hook: removes the mapping */
    punch_agent_free(d->agent);
    punch_udp_batch_free(d->rx);
    punch_udp_batch_free(d->tx);
    free(d);
}

punch_agent *punch_driver_agent(punch_driver *d)
{
    return d->agent;
}

void punch_driver_path_local(const punch_driver *d, const punch_event *ev, punch_addr *out)
{
    *out = d->local;
    punch_addr ip;
    if (punch_udp_route_source(&ev->remote, &ip) == 0) {
        ip.port = out->port;
        *out = ip;
    }
    int fd = -1;
    if (ev->sock && d->extra && ev->sock <= PUNCH_MAX_SOCKETS)
        fd = d->extra[ev->sock];
    if (ev->sock >= PUNCH_TCP_SOCK_FIRST && ev->sock < PUNCH_TCP_SOCK_FIRST + TP_SLOTS &&
        d->tp[ev->sock - PUNCH_TCP_SOCK_FIRST].state == TP_UP)
        fd = d->tp[ev->sock - PUNCH_TCP_SOCK_FIRST].fd;
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
