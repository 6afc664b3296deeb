/* SPDX-License-Identifier: MIT */
/*
 * stun_load: a STUN Binding load generator.
 *
 * Keeps --window Binding requests (RFC 8489) outstanding against one server,
 * spread over --sockets connected UDP sockets so the server sees several
 * source ports. Each valid answer frees its slot, which is re-armed with a
 * new transaction ID and sent again at once; a slot with no answer for
 * TIMEOUT_MS is re-sent, so lost datagrams do not shrink the window.
 *
 * A valid answer is a Binding success response whose transaction ID is the
 * one outstanding for its slot on the socket it arrived on, and whose
 * XOR-MAPPED-ADDRESS / MAPPED-ADDRESS (at least one present, every one that
 * is present) is that socket's own address. A FINGERPRINT in the answer must
 * be right. Anything else received counts as invalid, including a late
 * answer to a request that was already re-sent.
 *
 * After --warmup seconds the counters are reset; after --seconds more it
 * prints one line and exits (0 when at least one answer was valid):
 *   rate <answers/s> sent <n> valid <n> invalid <n> timeouts <n>
 *
 * --probe S only checks that the server answers: one request every
 * PROBE_INTERVAL_MS until the first valid answer (exit 0) or S seconds
 * (exit 1). stun_bench.sh uses it to wait for a server to be ready.
 *
 * The bytes are built and parsed by hand rather than with src/wire so that
 * the benchmark measures servers, not our codec, and builds on its own.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "wire/bytes.h"

#define STUN_HEADER_LEN 20
#define STUN_MAGIC_COOKIE 0x2112A442u        /* RFC 8489 §5 */
#define STUN_BINDING_REQUEST 0x0001          /* RFC 8489 §5, §18.2 */
#define STUN_BINDING_SUCCESS 0x0101
#define STUN_ATTR_MAPPED_ADDRESS 0x0001      /* RFC 8489 §14.1 */
#define STUN_ATTR_XOR_MAPPED_ADDRESS 0x0020  /* RFC 8489 §14.2 */
#define STUN_ATTR_FINGERPRINT 0x8028         /* RFC 8489 §14.7 */
#define STUN_FINGERPRINT_XOR 0x5354554Eu     /* RFC 8489 §14.7 */
#define STUN_FAMILY_IPV4 0x01
#define STUN_FAMILY_IPV6 0x02

#define REQ_MAX (STUN_HEADER_LEN + 8) /* header + FINGERPRINT */
#define BATCH 64                      /* datagrams per recvmmsg/sendmmsg */
#define RBUF_LEN 1500
#define TIMEOUT_MS 200                /* re-send a request unanswered this long */
#define SCAN_MS 20                    /* how often to look for such requests */
#define PROBE_INTERVAL_MS 50
#define SOCK_BUF_BYTES (1 << 20)

#define NS_PER_MS 1000000ull
#define NS_PER_S 1000000000ull

struct slot {
    uint64_t sent_ns; /* when the current transaction ID was queued */
    uint32_t seq;     /* current transaction's sequence number */
    uint8_t req[REQ_MAX];
};

struct gen_sock {
    int fd;
    unsigned idx;
    int family;            /* STUN_FAMILY_* of the local address */
    uint8_t addr[16];      /* local address, network order */
    uint16_t port;         /* local port, host order */
    /* --behind-nat: the mapping the first answer showed; later answers must
     * show the same one (a NAT keeps a socket's mapping). */
    int mapped_known;
    uint8_t mapped_addr[16];
    uint16_t mapped_port;
    struct mmsghdr rmsg[BATCH];
    struct iovec riov[BATCH];
    uint8_t (*rbuf)[RBUF_LEN];
    struct mmsghdr *smsg;  /* send queue, one entry per slot of this socket */
    struct iovec *siov;
    unsigned nqueued;
};

struct counters {
    uint64_t sent, valid, invalid, timeouts;
};

struct gen {
    struct sockaddr_storage server;
    socklen_t server_len;
    unsigned window, nsock;
    int fingerprint;
    uint32_t tag; /* first word of every transaction ID of this run */
    struct slot *slots;
    struct gen_sock *socks;
    struct counters c;
    int verbose;
    int behind_nat;
    uint64_t late, bad_addr; /* parts of c.invalid, for --verbose */
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static uint32_t stun_fingerprint(const uint8_t *msg, size_t len)
{
    return (uint32_t)crc32(0L, msg, (uInt)len) ^ STUN_FINGERPRINT_XOR;
}

static size_t req_len(const struct gen *g)
{
    return g->fingerprint ? REQ_MAX : STUN_HEADER_LEN;
}

/* Gives slot i a new transaction ID and rewrites its request:
 * txid = tag | slot index | sequence number. */
static void slot_arm(struct gen *g, unsigned i, uint64_t now)
{
    struct slot *s = &g->slots[i];
    uint8_t *p = s->req;
    s->seq++;
    s->sent_ns = now;
    punch_put16(p, STUN_BINDING_REQUEST);
    punch_put16(p + 2, (uint16_t)(req_len(g) - STUN_HEADER_LEN));
    punch_put32(p + 4, STUN_MAGIC_COOKIE);
    punch_put32(p + 8, g->tag);
    punch_put32(p + 12, i);
    punch_put32(p + 16, s->seq);
    if (g->fingerprint) {
        punch_put16(p + 20, STUN_ATTR_FINGERPRINT);
        punch_put16(p + 22, 4);
        punch_put32(p + 24, stun_fingerprint(p, STUN_HEADER_LEN));
    }
}

static void queue_slot(struct gen *g, unsigned i, uint64_t now)
{
    struct gen_sock *gs = &g->socks[i % g->nsock];
    slot_arm(g, i, now);
    gs->siov[gs->nqueued].iov_base = g->slots[i].req;
    gs->siov[gs->nqueued].iov_len = req_len(g);
    gs->nqueued++;
}

/* Sends what is queued on gs. A request the kernel will not take now stays
 * outstanding and is re-sent by the timeout scan, like a lost one. */
static void flush(struct gen *g, struct gen_sock *gs)
{
    unsigned done = 0;
    while (done < gs->nqueued) {
        int n = sendmmsg(gs->fd, gs->smsg + done, gs->nqueued - done, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != ENOBUFS && errno != ECONNREFUSED) {
                perror("stun_load: sendmmsg");
                exit(2);
            }
            break;
        }
        done += (unsigned)n;
        g->c.sent += (uint64_t)n;
    }
    gs->nqueued = 0;
}

/* Returns 1 when the address attribute at a (value, len al) is gs's own
 * address (with --behind-nat: the mapping gs showed first), 0 when it is
 * another one or malformed. */
static int addr_attr_is_ours(struct gen_sock *gs, int behind_nat, const uint8_t *msg,
                             const uint8_t *a, uint16_t al, int xored)
{
    uint8_t addr[16];
    size_t alen = gs->family == STUN_FAMILY_IPV4 ? 4 : 16;
    if (al != 4 + alen || a[1] != gs->family)
        return 0;
    uint16_t port = punch_get16(a + 2);
    memcpy(addr, a + 4, alen);
    if (xored) {
        /* RFC 8489 §14.2: port ^ top of cookie, address ^ cookie | txid. */
        port ^= (uint16_t)(STUN_MAGIC_COOKIE >> 16);
        for (size_t k = 0; k < alen; k++)
            addr[k] ^= msg[4 + k];
    }
    if (behind_nat) {
        if (!gs->mapped_known) {
            gs->mapped_known = 1;
            gs->mapped_port = port;
            memcpy(gs->mapped_addr, addr, alen);
        }
        return port == gs->mapped_port && memcmp(addr, gs->mapped_addr, alen) == 0;
    }
    return port == gs->port && memcmp(addr, gs->addr, alen) == 0;
}

/* Checks one datagram received on gs. Returns the slot it answers, or -1. */
static long check_answer(struct gen *g, struct gen_sock *gs, const uint8_t *p, size_t len)
{
    if (len < STUN_HEADER_LEN || punch_get16(p) != STUN_BINDING_SUCCESS)
        return -1;
    size_t mlen = punch_get16(p + 2);
    if ((mlen & 3) != 0 || STUN_HEADER_LEN + mlen != len)
        return -1;
    if (punch_get32(p + 4) != STUN_MAGIC_COOKIE || punch_get32(p + 8) != g->tag)
        return -1;
    uint32_t i = punch_get32(p + 12);
    if (i >= g->window || i % g->nsock != gs->idx)
        return -1;
    if (punch_get32(p + 16) != g->slots[i].seq) {
        g->late++;
        return -1;
    }
    /* len and off stay multiples of 4, so a padded attribute that fits
     * unpadded also fits padded and off never passes len. */
    int seen = 0;
    size_t off = STUN_HEADER_LEN;
    while (off < len) {
        if (len - off < 4)
            return -1;
        uint16_t at = punch_get16(p + off), al = punch_get16(p + off + 2);
        const uint8_t *v = p + off + 4;
        if (al > len - off - 4)
            return -1;
        if (at == STUN_ATTR_XOR_MAPPED_ADDRESS || at == STUN_ATTR_MAPPED_ADDRESS) {
            if (!addr_attr_is_ours(gs, g->behind_nat, p, v, al, at == STUN_ATTR_XOR_MAPPED_ADDRESS)) {
                g->bad_addr++;
                return -1;
            }
            seen = 1;
        } else if (at == STUN_ATTR_FINGERPRINT) {
            /* RFC 8489 §14.7: last, over everything before it. */
            if (al != 4 || off + 8 != len || punch_get32(v) != stun_fingerprint(p, off))
                return -1;
        }
        off += 4 + (((size_t)al + 3) & ~(size_t)3);
    }
    if (off != len || !seen)
        return -1;
    return (long)i;
}

/* Reads one batch on gs and queues a new request for each valid answer.
 * Returns the number of datagrams read. */
static int drain_once(struct gen *g, struct gen_sock *gs, uint64_t now)
{
    int n = recvmmsg(gs->fd, gs->rmsg, BATCH, MSG_DONTWAIT, NULL);
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR || errno == ECONNREFUSED)
            return 0;
        perror("stun_load: recvmmsg");
        exit(2);
    }
    for (int k = 0; k < n; k++) {
        long i = check_answer(g, gs, gs->rbuf[k], gs->rmsg[k].msg_len);
        if (i < 0) {
            g->c.invalid++;
            continue;
        }
        g->c.valid++;
        queue_slot(g, (unsigned)i, now);
    }
    return n;
}

static void scan_timeouts(struct gen *g, uint64_t now)
{
    for (unsigned i = 0; i < g->window; i++) {
        if (now - g->slots[i].sent_ns >= TIMEOUT_MS * NS_PER_MS) {
            g->c.timeouts++;
            queue_slot(g, i, now);
        }
    }
    for (unsigned k = 0; k < g->nsock; k++)
        flush(g, &g->socks[k]);
}

static int parse_hostport(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[64];
    const char *colon, *h = s;
    size_t hlen;
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (end == NULL || end[1] != ':')
            return -1;
        h = s + 1;
        hlen = (size_t)(end - h);
        colon = end + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return -1;
        hlen = (size_t)(colon - s);
    }
    if (hlen == 0 || hlen >= sizeof host)
        return -1;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    char *end;
    errno = 0;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (errno != 0 || *end != '\0' || end == colon + 1 || port == 0 || port > 65535)
        return -1;
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        *len = sizeof *sin;
    } else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        *len = sizeof *sin6;
    } else {
        return -1;
    }
    return 0;
}

/* Opens a non-blocking socket connected to the server and records its own
 * address, which every answer on it must report. */
static void sock_open(struct gen *g, struct gen_sock *gs, unsigned idx, unsigned per_sock)
{
    struct sockaddr_storage local;
    socklen_t llen = sizeof local;
    int buf = SOCK_BUF_BYTES;
    gs->idx = idx;
    gs->fd = socket(g->server.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (gs->fd < 0 || connect(gs->fd, (struct sockaddr *)&g->server, g->server_len) < 0 ||
        getsockname(gs->fd, (struct sockaddr *)&local, &llen) < 0) {
        perror("stun_load: socket");
        exit(2);
    }
    /* Best effort: the window must fit in our own receive queue. */
    (void)setsockopt(gs->fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    (void)setsockopt(gs->fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
    if (local.ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&local;
        gs->family = STUN_FAMILY_IPV4;
        memcpy(gs->addr, &sin->sin_addr, 4);
        gs->port = ntohs(sin->sin_port);
    } else {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&local;
        gs->family = STUN_FAMILY_IPV6;
        memcpy(gs->addr, &sin6->sin6_addr, 16);
        gs->port = ntohs(sin6->sin6_port);
    }
    gs->rbuf = calloc(BATCH, sizeof *gs->rbuf);
    gs->smsg = calloc(per_sock, sizeof *gs->smsg);
    gs->siov = calloc(per_sock, sizeof *gs->siov);
    if (gs->rbuf == NULL || gs->smsg == NULL || gs->siov == NULL) {
        fprintf(stderr, "stun_load: out of memory\n");
        exit(2);
    }
    for (unsigned k = 0; k < BATCH; k++) {
        gs->riov[k].iov_base = gs->rbuf[k];
        gs->riov[k].iov_len = RBUF_LEN;
        gs->rmsg[k].msg_hdr.msg_iov = &gs->riov[k];
        gs->rmsg[k].msg_hdr.msg_iovlen = 1;
    }
    for (unsigned k = 0; k < per_sock; k++) {
        gs->smsg[k].msg_hdr.msg_iov = &gs->siov[k];
        gs->smsg[k].msg_hdr.msg_iovlen = 1;
    }
}

static int run_probe(struct gen *g, double seconds)
{
    struct gen_sock *gs = &g->socks[0];
    uint64_t end = now_ns() + (uint64_t)(seconds * (double)NS_PER_S);
    for (;;) {
        uint64_t now = now_ns();
        if (now >= end)
            break;
        queue_slot(g, 0, now);
        flush(g, gs);
        uint64_t wait_end = now + PROBE_INTERVAL_MS * NS_PER_MS;
        while ((now = now_ns()) < wait_end) {
            struct pollfd pfd = {.fd = gs->fd, .events = POLLIN};
            int ms = (int)((wait_end - now + NS_PER_MS - 1) / NS_PER_MS);
            if (poll(&pfd, 1, ms) <= 0)
                continue;
            drain_once(g, gs, now);
            gs->nqueued = 0; /* the answer's follow-up is not wanted */
            if (g->c.valid > 0)
                return 0;
        }
    }
    fprintf(stderr, "stun_load: no valid answer within %.1f s\n", seconds);
    return 1;
}

static int run_load(struct gen *g, double warmup, double seconds)
{
    int rc = 2;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) {
        perror("stun_load: epoll_create1");
        return 2;
    }
    for (unsigned k = 0; k < g->nsock; k++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &g->socks[k]};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, g->socks[k].fd, &ev) < 0) {
            perror("stun_load: epoll_ctl");
            goto cleanup;
        }
    }
    uint64_t start = now_ns();
    uint64_t measure_from = start + (uint64_t)(warmup * (double)NS_PER_S);
    uint64_t end = measure_from + (uint64_t)(seconds * (double)NS_PER_S);
    uint64_t next_scan = start + SCAN_MS * NS_PER_MS;
    int measuring = warmup <= 0;
    for (unsigned i = 0; i < g->window; i++)
        queue_slot(g, i, start);
    for (unsigned k = 0; k < g->nsock; k++)
        flush(g, &g->socks[k]);
    for (;;) {
        uint64_t now = now_ns();
        if (!measuring && now >= measure_from) {
            memset(&g->c, 0, sizeof g->c);
            g->late = g->bad_addr = 0;
            measure_from = now;
            measuring = 1;
        }
        if (now >= end)
            break;
        if (now >= next_scan) {
            scan_timeouts(g, now);
            next_scan = now + SCAN_MS * NS_PER_MS;
        }
        uint64_t until = next_scan < end ? next_scan : end;
        int ms = (int)((until - now + NS_PER_MS - 1) / NS_PER_MS);
        struct epoll_event evs[16];
        int n = epoll_wait(ep, evs, 16, ms);
        if (n < 0 && errno != EINTR) {
            perror("stun_load: epoll_wait");
            goto cleanup;
        }
        now = now_ns();
        for (int e = 0; e < n; e++) {
            struct gen_sock *gs = evs[e].data.ptr;
            /* A few batches per wake-up, each answered before the next is
             * read, so the server is never kept waiting on a long drain. */
            for (int rounds = 0; rounds < 4; rounds++) {
                int got = drain_once(g, gs, now);
                flush(g, gs);
                if (got < BATCH)
                    break;
            }
        }
    }
    double elapsed = (double)(now_ns() - measure_from) / (double)NS_PER_S;
    printf("rate %.0f sent %llu valid %llu invalid %llu timeouts %llu\n",
           (double)g->c.valid / elapsed, (unsigned long long)g->c.sent,
           (unsigned long long)g->c.valid, (unsigned long long)g->c.invalid,
           (unsigned long long)g->c.timeouts);
    if (g->verbose)
        fprintf(stderr, "stun_load: %.3f s measured, invalid: %llu late, %llu wrong address\n",
                elapsed, (unsigned long long)g->late, (unsigned long long)g->bad_addr);
    rc = g->c.valid > 0 ? 0 : 1;
cleanup:
    close(ep);
    return rc;
}

static void gen_free(struct gen *g)
{
    for (unsigned k = 0; g->socks != NULL && k < g->nsock; k++) {
        struct gen_sock *gs = &g->socks[k];
        if (gs->fd > 0)
            close(gs->fd);
        free(gs->rbuf);
        free(gs->smsg);
        free(gs->siov);
    }
    free(g->socks);
    free(g->slots);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: stun_load ADDR:PORT [options]\n"
            "  --window N      requests in flight (default 256)\n"
            "  --seconds S     measured time (default 3)\n"
            "  --warmup S      unmeasured time before it (default 0.5)\n"
            "  --sockets K     source sockets (default 4)\n"
            "  --fingerprint   add FINGERPRINT to each request\n"
            "  --probe S       only wait up to S seconds for one valid answer\n"
            "  --verbose       break down the invalid count on stderr\n"
            "  --behind-nat    the mapped address is a NAT's: each socket's answers must\n"
            "                  show the mapping its first answer showed\n");
}

static int parse_num(const char *opt, const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "stun_load: bad value for %s: '%s'\n", opt, s);
        return -1;
    }
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    struct gen g = {0};
    double window = 256, seconds = 3, warmup = 0.5, sockets = 4, probe = -1;
    const char *target = NULL;
    for (int a = 1; a < argc; a++) {
        const char *o = argv[a];
        double *num = NULL, lo = 0, hi = 0;
        if (strcmp(o, "--window") == 0) {
            num = &window, lo = 1, hi = 1 << 20;
        } else if (strcmp(o, "--seconds") == 0) {
            num = &seconds, lo = 0.01, hi = 3600;
        } else if (strcmp(o, "--warmup") == 0) {
            num = &warmup, lo = 0, hi = 3600;
        } else if (strcmp(o, "--sockets") == 0) {
            num = &sockets, lo = 1, hi = 1024;
        } else if (strcmp(o, "--probe") == 0) {
            num = &probe, lo = 0.01, hi = 3600;
        } else if (strcmp(o, "--behind-nat") == 0) {
            g.behind_nat = 1;
        } else if (strcmp(o, "--fingerprint") == 0) {
            g.fingerprint = 1;
        } else if (strcmp(o, "--verbose") == 0 || strcmp(o, "-v") == 0) {
            g.verbose = 1;
        } else if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (o[0] != '-' && target == NULL) {
            target = o;
        } else {
            fprintf(stderr, "stun_load: unknown argument '%s'\n", o);
            usage(stderr);
            return 2;
        }
        if (num != NULL) {
            if (a + 1 >= argc) {
                fprintf(stderr, "stun_load: %s needs a value\n", o);
                return 2;
            }
            if (parse_num(o, argv[++a], lo, hi, num) < 0)
                return 2;
        }
    }
    if (target == NULL) {
        usage(stderr);
        return 2;
    }
    if (parse_hostport(target, &g.server, &g.server_len) < 0) {
        fprintf(stderr, "stun_load: bad server address '%s' (want IP:PORT or [IPv6]:PORT)\n",
                target);
        return 2;
    }
    if (probe > 0)
        window = sockets = 1;
    g.window = (unsigned)window;
    g.nsock = (unsigned)sockets < g.window ? (unsigned)sockets : g.window;
    g.tag = (uint32_t)getpid() * 2654435761u ^ (uint32_t)now_ns();
    g.slots = calloc(g.window, sizeof *g.slots);
    g.socks = calloc(g.nsock, sizeof *g.socks);
    if (g.slots == NULL || g.socks == NULL) {
        fprintf(stderr, "stun_load: out of memory\n");
        gen_free(&g);
        return 2;
    }
    unsigned per_sock = (g.window + g.nsock - 1) / g.nsock;
    for (unsigned k = 0; k < g.nsock; k++)
        sock_open(&g, &g.socks[k], k, per_sock);
    int rc = probe > 0 ? run_probe(&g, probe) : run_load(&g, warmup, seconds);
    gen_free(&g);
    return rc;
}
