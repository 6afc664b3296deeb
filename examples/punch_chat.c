/* SPDX-License-Identifier: MIT */
/*
 * punch_chat: a line chat between two machines behind NATs, as an example of
 * embedding libpunch in your own event loop.
 *
 *   punch_chat SERVER_HOST SERVER_PORT NAME          wait for a peer
 *   punch_chat SERVER_HOST SERVER_PORT NAME PEER     connect to PEER
 *
 * It uses only include/punch/punch.h, the sans-I/O agent: the program owns
 * the UDP socket, the clock, the randomness and the loop (poll(2) here; an
 * epoll, libuv or game loop works the same way). The agent never blocks and
 * never calls back: we hand it what arrives (handle_datagram), call it when
 * its deadline passes (handle_timeout), and after each call drain what it
 * wants sent (poll_transmit) and what happened (poll_event). If you would
 * rather not write the loop, punch/driver.h does all of this for you
 * (docs/tutorial.md).
 *
 * Events go to stderr, the peer's datagrams to stdout; each read of stdin
 * (a line, when typing) is one datagram to the peer.
 *
 * Left out to stay short: the identity key is new at every start (keep it
 * in a file in real use), and the peer's key is not pinned (pass it to
 * punch_agent_connect, or remember it on first use as `punch` does).
 */
#define _GNU_SOURCE /* getaddrinfo, getrandom, clock_gettime under -std=c11 */
#include <errno.h>
#include <netdb.h>
#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "punch/punch.h"

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The agent takes its randomness from us (keys, nonces, transaction ids). */
static void random_fill(void *ctx, uint8_t *buf, size_t len)
{
    (void)ctx;
    for (size_t got = 0; got < len;) {
        ssize_t n = getrandom(buf + got, len - got, 0);
        if (n < 0 && errno != EINTR)
            abort(); /* no randomness, no safe keys */
        got += n > 0 ? (size_t)n : 0;
    }
}

/* punch_addr is the library's socket-free address; convert at the edge. */
static socklen_t to_sockaddr(const punch_addr *a, struct sockaddr_storage *ss)
{
    if (a->family == PUNCH_AF_INET) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        *s4 = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(a->port)};
        memcpy(&s4->sin_addr, a->ip, 4);
        return sizeof(*s4);
    }
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    *s6 = (struct sockaddr_in6){.sin6_family = AF_INET6, .sin6_port = htons(a->port)};
    memcpy(&s6->sin6_addr, a->ip, 16);
    return sizeof(*s6);
}

static void from_sockaddr(const struct sockaddr_storage *ss, punch_addr *a)
{
    memset(a, 0, sizeof(*a));
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
        *a = (punch_addr){.family = PUNCH_AF_INET, .port = ntohs(s4->sin_port)};
        memcpy(a->ip, &s4->sin_addr, 4);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
        *a = (punch_addr){.family = PUNCH_AF_INET6, .port = ntohs(s6->sin6_port)};
        memcpy(a->ip, &s6->sin6_addr, 16);
    }
}

static const char *fmt(const punch_addr *a, char buf[64])
{
    char ip[INET6_ADDRSTRLEN] = "?";
    inet_ntop(a->family == PUNCH_AF_INET ? AF_INET : AF_INET6, a->ip, ip, sizeof(ip));
    snprintf(buf, 64, a->family == PUNCH_AF_INET ? "%s:%u" : "[%s]:%u", ip, a->port);
    return buf;
}

/* Send everything the agent queued. UDP may drop; the agent retransmits. */
static void flush(punch_agent *agent, int fd)
{
    uint8_t buf[2048], ttl; /* buf: more than any datagram the agent builds */
    punch_addr dst;
    size_t len;
    struct sockaddr_storage ss;
    while (punch_agent_poll_transmit(agent, &dst, &ttl, buf, sizeof(buf), &len) == 1) {
        /* The agent asks for a small TTL on its first probes to a peer's
         * public address (Linux's conntrack trap); 0 means the default. */
        int hops = ttl ? ttl : -1; /* -1: back to the system's default */
        setsockopt(fd, dst.family == PUNCH_AF_INET ? IPPROTO_IP : IPPROTO_IPV6,
                   dst.family == PUNCH_AF_INET ? IP_TTL : IPV6_UNICAST_HOPS, &hops, sizeof(hops));
        socklen_t sl = to_sockaddr(&dst, &ss);
        if (sendto(fd, buf, len, 0, (struct sockaddr *)&ss, sl) < 0 && errno != EAGAIN &&
            errno != ENOBUFS && errno != ECONNREFUSED)
            perror("punch_chat: sendto");
    }
}

/* Send what the agent queued, then handle its events. Returns 0 to go on,
 * 1 to stop (the peer left), 2 to stop on an error. */
static int pump(punch_agent *agent, int fd, int *peer, int *stdin_open)
{
    flush(agent, fd);
    punch_event ev;
    char a[64];
    while (punch_agent_poll_event(agent, &ev) == 1) {
        switch (ev.kind) {
        case PUNCH_EVENT_REGISTERED:
            fprintf(stderr, "registered, public address %s\n",
                    fmt(&ev.registered.public_addr, a));
            break;
        case PUNCH_EVENT_INTRODUCED: /* a listener takes the first peer that comes */
            fprintf(stderr, "introduced to %s at %s\n", ev.peer_name,
                    fmt(&ev.introduced.public_addr, a));
            if (*peer < 0)
                *peer = ev.peer;
            break;
        case PUNCH_EVENT_PATH:
            fprintf(stderr, "path to %s: %s via %s to %s\n", ev.peer_name,
                    punch_path_kind_name(ev.path.kind), punch_technique_name(ev.path.technique),
                    fmt(&ev.path.remote, a));
            if (ev.path.timed)
                fprintf(stderr, "round trip to %s: %.1f ms\n", ev.peer_name, ev.path.rtt_us / 1000.0);
            if (ev.peer == *peer)
                *stdin_open = 1; /* read stdin only once it can go somewhere */
            break;
        case PUNCH_EVENT_RTT: /* the path's round trip, when its PATH event had none */
            fprintf(stderr, "round trip to %s: %.1f ms\n", ev.peer_name, ev.rtt.rtt_us / 1000.0);
            break;
        case PUNCH_EVENT_ATTEMPT:
            fprintf(stderr, "%s to %s gave up: %s\n", punch_technique_name(ev.attempt.technique),
                    ev.peer_name, ev.attempt.why);
            break;
        case PUNCH_EVENT_DATA: /* ev.data.bytes is only valid until the next agent call */
            if (ev.peer == *peer &&
                fwrite(ev.data.bytes, 1, ev.data.len, stdout) == ev.data.len)
                fflush(stdout);
            break;
        case PUNCH_EVENT_CLOSED:
            fprintf(stderr, "%s closed: %s\n", ev.peer_name, ev.closed.why);
            if (ev.peer == *peer)
                return strcmp(ev.closed.why, "peer closed") == 0 ? 1 : 2;
            break;
        case PUNCH_EVENT_SOCKETS: /* the driver closes many-port probing's sockets */
        case PUNCH_EVENT_TCP_OFFER: /* the driver answers TCP offers */
        case PUNCH_EVENT_PONG:      /* punch_chat asks for no round trips */
        case PUNCH_EVENT_PORTMAP:   /* punch_chat asks no gateway for a mapping */
        case PUNCH_EVENT_TOKEN:     /* punch_chat keeps no token: it registers with a cookie */
        case PUNCH_EVENT_TURN:      /* punch_chat names no TURN server */
            break;
        case PUNCH_EVENT_REFUSED:
            fprintf(stderr, "the server refused us: %s\n", ev.refused.why);
            return 2;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 4 && argc != 5) {
        fprintf(stderr, "usage: %s SERVER_HOST SERVER_PORT NAME [PEER]\n", argv[0]);
        return 2;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_DGRAM, .ai_flags = AI_NUMERICSERV}, *ai;
    int gai = getaddrinfo(argv[1], argv[2], &hints, &ai);
    if (gai != 0) {
        fprintf(stderr, "punch_chat: %s port %s: %s\n", argv[1], argv[2], gai_strerror(gai));
        return 1;
    }
    /* One socket here: no many-port probing, which needs more (README). */
    punch_agent_cfg cfg = {.name = argv[3], .random = random_fill,
                           .flags = PUNCH_AGENT_NO_BIRTHDAY};
    struct sockaddr_storage ss = {0};
    memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
    from_sockaddr(&ss, &cfg.server);
    freeaddrinfo(ai);
    random_fill(NULL, cfg.secret_key, sizeof(cfg.secret_key));

    /* One UDP socket for everything: server, hole punching, the peer. And our
     * private endpoint (draft §3.3.2), for a peer behind the same NAT: the IP
     * the kernel picks towards the server (connect(2) on a second UDP socket
     * sends nothing) with the port bind(2) gave us. */
    struct sockaddr_storage any, mine;
    socklen_t sl = to_sockaddr(&(punch_addr){.family = cfg.server.family}, &any), ml = sl;
    int fd = socket(any.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int probe = socket(any.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || probe < 0 || bind(fd, (struct sockaddr *)&any, sl) != 0 ||
        getsockname(fd, (struct sockaddr *)&any, &sl) != 0 ||
        connect(probe, (struct sockaddr *)&ss, ml) != 0 ||
        getsockname(probe, (struct sockaddr *)&mine, &ml) != 0) {
        perror("punch_chat: socket setup");
        return 1;
    }
    close(probe);
    punch_addr bound;
    from_sockaddr(&any, &bound);
    from_sockaddr(&mine, &cfg.local[0]);
    cfg.local[0].port = bound.port;
    cfg.n_local = 1;

    punch_agent *agent;
    int rc = punch_agent_new(&agent, &cfg, now_ms()); /* starts registering */
    memset(cfg.secret_key, 0, sizeof(cfg.secret_key));
    if (rc != 0) {
        fprintf(stderr, "punch_chat: %s\n", punch_strerror(rc));
        return 1;
    }
    int peer = -1, stdin_open = 0, done = 0;
    if (argc == 5 && (peer = punch_agent_connect(agent, now_ms(), argv[4], NULL)) < 0) {
        fprintf(stderr, "punch_chat: connect %s: %s\n", argv[4], punch_strerror(peer));
        punch_agent_free(agent);
        return 1;
    }
    /* The loop: pump after every agent call; sleep until a socket is ready or
     * the agent's deadline comes, whichever is first. */
    while (!done && !(done = pump(agent, fd, &peer, &stdin_open))) {
        uint64_t deadline = punch_agent_next_timeout(agent), t = now_ms();
        int ms = deadline == UINT64_MAX ? -1 : deadline <= t ? 0
                 : deadline - t > 60000 ? 60000 : (int)(deadline - t);
        struct pollfd pfd[2] = {{.fd = fd, .events = POLLIN}, {.fd = 0, .events = POLLIN}};
        if (poll(pfd, stdin_open ? 2 : 1, ms) < 0 && errno != EINTR) {
            perror("punch_chat: poll");
            done = 2;
            break;
        }
        uint8_t buf[2048];
        punch_addr src;
        ssize_t n;
        while (!done && (pfd[0].revents & POLLIN) && (sl = sizeof(ss), n = recvfrom(fd, buf,
               sizeof(buf), 0, (struct sockaddr *)&ss, &sl)) >= 0) {
            from_sockaddr(&ss, &src);
            punch_agent_handle_datagram(agent, now_ms(), &src, buf, (size_t)n);
            done = pump(agent, fd, &peer, &stdin_open); /* ev.data.bytes is valid until now */
        }
        if (!done && stdin_open && (pfd[1].revents & (POLLIN | POLLHUP))) {
            if ((n = read(0, buf, PUNCH_MAX_DATAGRAM)) <= 0) {
                punch_agent_close(agent, now_ms(), peer); /* the peer need not time out */
                done = 1;
            } else if ((rc = punch_agent_send(agent, now_ms(), peer, buf, (size_t)n)) != 0) {
                fprintf(stderr, "punch_chat: line not sent: %s\n", punch_strerror(rc));
            }
        }
        if (!done && now_ms() >= punch_agent_next_timeout(agent))
            punch_agent_handle_timeout(agent, now_ms());
    }
    flush(agent, fd); /* the goodbye */
    punch_agent_free(agent);
    close(fd);
    return done == 2;
}
