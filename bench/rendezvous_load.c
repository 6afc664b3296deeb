/* SPDX-License-Identifier: MIT */
/*
 * rendezvous_load: a load generator for punchd's rendezvous service.
 *
 * Simulates --peers peers from --sockets UDP sockets on one address. Each
 * simulated peer has its own X25519 key pair from --seed and a fixed
 * socket (its "public endpoint"); its MAC key with the server (one X25519)
 * is computed once, up front, on two threads, before any load is sent.
 *
 *   1. registration: every peer does HELLO -> COOKIE -> REGISTER ->
 *      REGISTERED once, --window of them in flight; prints
 *        registered <n> seconds <s> rate <per s> rss_kib <VmRSS of --pid>
 *   2. keepalives: --window REGISTERs outstanding, each with the cookie of
 *      the peer's last REGISTERED, peers taken in turn over all of them (so
 *      the server's tables are walked, not one hot entry); after --warmup
 *      seconds the counters are reset, after --seconds more it prints
 *        keepalive rate <per s> sent <n> valid <n> invalid <n> timeouts <n>
 *                  bytes <REGISTER's size> <its answer's> refreshed <n>
 *      (refreshed: keepalives refused for an expired cookie, whose peer then
 *      asked for a new one: HELLO, COOKIE, REGISTER again); with --fresh,
 *      one untimed keepalive per peer first (refresh_pass), so that none
 *      is refused in the timed phase however long registering took.
 *      A valid answer is a REGISTERED with the outstanding txid whose MAC
 *      verifies with the peer's key.
 *
 * --connect C: phase 2 sends CONNECTs instead, from peer i to the peer
 * named C%07u (i), registered by another rendezvous_load run with
 * --prefix C, at this server or (punchd --cluster) another member; prints
 *        connect rate <per s> sent <n> valid <n> invalid <n> timeouts <n>
 *      A valid answer is an INTRODUCE with the outstanding txid whose MAC
 *      verifies: introductions per second as the asking side sees them.
 * --prefix C: names are C%07u (default p).
 *
 * --floor skips the X25519s and registration and sends the same REGISTER
 * datagrams to bench/rendezvous_floor, accepting any answer of the right
 * size and txid: the floor of this machine for the same packet sizes.
 *
 * Messages are built and read with the project's codec (src/wire/msg.c), so
 * the generator follows every field a message gains and cannot rot (it
 * once laid them out by hand, and punchd counted every REGISTER of it as
 * malformed after REGISTER grew); keys and MACs use src/crypto.
 * Everything goes to the address given (127.0.0.1 in rendezvous_bench.sh).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "crypto/auth.h"
#include "io/net.h"
#include "wire/bytes.h"
#include "wire/msg.h"

#define MAX_SOCKETS 64
#define BATCH PUNCH_UDP_BATCH
#define TIMEOUT_MS 1000       /* registration: X25519s may queue at the server */
#define KA_TIMEOUT_MS 200     /* keepalive: re-armed with the next peer */
#define SCAN_MS 20

typedef struct vpeer {
    uint8_t pub[32];
    uint8_t mac_key[32];
    uint8_t cookie[16];
    uint8_t registered;
} vpeer;

typedef struct slot {
    uint32_t peer;
    uint32_t gen;
    uint64_t sent_ms;
    uint8_t waiting; /* the type expected: PUNCH_MSG_COOKIE or _REGISTERED; 0 idle */
} slot;

/* Datagrams move with the servers' own batching (src/io/net.c: sendmmsg
 * with UDP GSO, recvmmsg with UDP GRO), so the generator's cost per
 * datagram is not what limits the figures (with one sendmmsg entry and one
 * recvmmsg entry per datagram, the floor itself was ~75,000/s here). */
typedef struct sock {
    int fd;
    uint32_t next; /* the next of this socket's peers (peer = s + n_socks * next) */
    bool wrapped;  /* phase 2: next went round all of them at least once */
    punch_addr local;
    punch_udp_batch *tx, *rx;
} sock;

static struct {
    punch_addr server;
    unsigned n_socks, window;
    uint32_t n_peers;
    uint64_t seed;
    bool floor;
    bool fresh; /* --fresh: refresh_pass before phase 2 */
    int pid;
    double seconds, warmup;
    uint8_t server_key[32];
    vpeer *peers;
    slot *slots;
    sock socks[MAX_SOCKETS];
    uint64_t sent, valid, invalid, timeouts, registered, refreshed;
    size_t register_len, answer_len; /* the sizes of the last REGISTER and its answer */
    size_t last_len;                 /* of the datagram queue() encoded last */
    bool keepalive; /* phase 2 */
    char prefix, connect_to; /* names' first letter; --connect's (0: keepalives) */
} g;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void flush(sock *s);

/* m encoded as the next datagram on socket s (flushing when full); with
 * mac_key, its MAC computed. Returns 0 or the codec's error. */
static int queue(sock *s, const punch_msg *m, const uint8_t *mac_key)
{
    uint8_t *b = punch_udp_queue(s->tx, &g.server, NULL, 0);
    if (!b) {
        flush(s);
        b = punch_udp_queue(s->tx, &g.server, NULL, 0);
    }
    size_t len = 0;
    int rc = punch_msg_encode(m, b, PUNCH_UDP_MTU, &len);
    if (rc == 0 && mac_key)
        punch_auth_mac(mac_key, b, len - PUNCH_MSG_MAC_LEN, b + len - PUNCH_MSG_MAC_LEN);
    punch_udp_queue_len(s->tx, len); /* (empty when it failed: the callers abort) */
    if (rc == 0)
        g.last_len = len;
    return rc;
}

/* What the kernel did not take (a full socket buffer) times out. */
static void flush(sock *s)
{
    g.sent += punch_udp_queued(s->tx);
    punch_udp_send(s->fd, s->tx);
}

static void txid(uint8_t *p, uint32_t k)
{
    punch_put32(p, k);
    punch_put32(p + 4, g.slots[k].gen);
}

static void send_hello(uint32_t k)
{
    slot *sl = &g.slots[k];
    sl->gen++;
    punch_msg m = {.type = PUNCH_MSG_HELLO};
    txid(m.txid, k);
    if (queue(&g.socks[k % g.n_socks], &m, NULL) != 0)
        abort(); /* a HELLO always encodes */
    sl->waiting = PUNCH_MSG_COOKIE;
    sl->sent_ms = now_ms();
}

/* Peer i's REGISTER: an 8-byte name, one private endpoint 10.x.y.z:5000,
 * round trip and NAT unknown. */
static void register_msg(uint32_t i, punch_msg *m)
{
    *m = (punch_msg){.type = PUNCH_MSG_REGISTER, .n_private = 1};
    memcpy(m->cookie, g.peers[i].cookie, PUNCH_MSG_COOKIE_LEN);
    memcpy(m->key, g.peers[i].pub, PUNCH_MSG_KEY_LEN);
    snprintf(m->name, sizeof(m->name), "%c%07u", g.prefix, i % 10000000u);
    m->private_addr[0] = (punch_addr){.family = PUNCH_AF_INET, .port = 5000,
                                      .ip = {10, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i}};
}

static void send_register(uint32_t k)
{
    slot *sl = &g.slots[k];
    sl->gen++;
    punch_msg m;
    register_msg(sl->peer, &m);
    txid(m.txid, k);
    if (queue(&g.socks[k % g.n_socks], &m, g.peers[sl->peer].mac_key) != 0)
        abort(); /* its fields are all in range */
    g.register_len = g.last_len;
    sl->waiting = PUNCH_MSG_REGISTERED;
    sl->sent_ms = now_ms();
}

/* Peer i asks for the peer named connect_to%07u (i). */
static void send_connect(uint32_t k)
{
    slot *sl = &g.slots[k];
    sl->gen++;
    punch_msg m = {.type = PUNCH_MSG_CONNECT};
    txid(m.txid, k);
    memcpy(m.key, g.peers[sl->peer].pub, PUNCH_MSG_KEY_LEN);
    snprintf(m.name, sizeof(m.name), "%c%07u", g.connect_to, sl->peer % 10000000u);
    if (queue(&g.socks[k % g.n_socks], &m, g.peers[sl->peer].mac_key) != 0)
        abort();
    sl->waiting = PUNCH_MSG_INTRODUCE;
    sl->sent_ms = now_ms();
}

/* Give slot k the next peer of its socket: in phase 1 one not registered
 * yet (false when there is none), in phase 2 the next in turn. */
static bool next_peer(uint32_t k)
{
    sock *s = &g.socks[k % g.n_socks];
    if (k % g.n_socks >= g.n_peers)
        return false;
    uint32_t per_sock = (g.n_peers - k % g.n_socks + g.n_socks - 1) / g.n_socks;
    if (!g.keepalive && s->next >= per_sock)
        return false;
    if (s->next >= per_sock) {
        s->next = 0;
        s->wrapped = true;
    }
    g.slots[k].peer = (uint32_t)(k % g.n_socks) + g.n_socks * s->next++;
    return true;
}

static void start_slot(uint32_t k)
{
    if (!next_peer(k)) {
        g.slots[k].waiting = 0;
        return;
    }
    if (g.keepalive && g.connect_to)
        send_connect(k);
    else if (g.keepalive)
        send_register(k);
    else
        send_hello(k);
}

/* The slot an answer with this txid and type is for, or NULL (late,
 * duplicate or refused). */
static slot *slot_of(unsigned si, const uint8_t *txid_bytes, uint8_t type)
{
    uint32_t k = punch_get32(txid_bytes);
    if (k >= g.window || k % g.n_socks != si || g.slots[k].gen != punch_get32(txid_bytes + 4) ||
        g.slots[k].waiting != type)
        return NULL;
    return &g.slots[k];
}

/* An answer from bench/rendezvous_floor: a REGISTER sent back with the
 * type byte turned into REGISTERED, not a message; its txid is all that
 * counts. */
static void on_floor_datagram(unsigned si, const uint8_t *d, size_t len)
{
    slot *sl = len >= 2 + PUNCH_MSG_TXID_LEN ? slot_of(si, d + 2, PUNCH_MSG_REGISTERED) : NULL;
    if (!sl) {
        g.invalid++;
        return;
    }
    g.valid++;
    g.answer_len = len;
    start_slot((uint32_t)(sl - g.slots));
}

static void on_datagram(unsigned si, const uint8_t *d, size_t len)
{
    if (g.floor) {
        on_floor_datagram(si, d, len);
        return;
    }
    punch_msg m;
    slot *sl = NULL;
    if (punch_msg_decode(d, len, &m) == 0)
        sl = slot_of(si, m.txid, m.type == PUNCH_MSG_REFUSED ? PUNCH_MSG_REGISTERED : (uint8_t)m.type);
    if (sl && m.type == PUNCH_MSG_REFUSED && m.code == PUNCH_REFUSED_COOKIE) {
        /* The cookie of a peer registered minutes ago (1,000,000 take that
         * long here) expired: ask for a new one, as a real peer does. */
        g.refreshed++;
        send_hello((uint32_t)(sl - g.slots));
        return;
    }
    if (!sl || m.type == PUNCH_MSG_REFUSED) {
        g.invalid++;
        return;
    }
    uint32_t k = (uint32_t)(sl - g.slots);
    vpeer *p = &g.peers[sl->peer];
    if (m.type == PUNCH_MSG_COOKIE) {
        memcpy(p->cookie, m.cookie, PUNCH_MSG_COOKIE_LEN);
        send_register(k);
        return;
    }
    if (punch_auth_verify(p->mac_key, d, m.mac_offset, m.mac) != 0) {
        g.invalid++;
        return;
    }
    if (m.type == PUNCH_MSG_REGISTERED)
        memcpy(p->cookie, m.cookie, PUNCH_MSG_COOKIE_LEN);
    g.answer_len = len;
    g.valid++;
    if (!p->registered) {
        p->registered = 1;
        g.registered++;
    }
    start_slot(k);
}

static void receive(unsigned si, int *got)
{
    sock *s = &g.socks[si];
    int n = punch_udp_recv(s->fd, s->rx, &s->local);
    for (int i = 0; i < n; i++) {
        const uint8_t *d;
        size_t len;
        punch_addr src, dst;
        punch_udp_received(s->rx, (unsigned)i, &d, &len, &src, &dst);
        on_datagram(si, d, len);
    }
    if (n > 0)
        *got += n;
}

static void scan_timeouts(uint64_t now)
{
    for (uint32_t k = 0; k < g.window; k++) {
        slot *sl = &g.slots[k];
        if (!sl->waiting || now - sl->sent_ms < (g.keepalive ? KA_TIMEOUT_MS : TIMEOUT_MS))
            continue;
        g.timeouts++;
        if (g.keepalive)
            start_slot(k);
        else
            send_hello(k); /* from the start: a stale cookie may have been the problem */
    }
}

/* Run the slots until done() says so. */
static void run(bool (*done)(uint64_t now))
{
    struct pollfd pfd[MAX_SOCKETS];
    for (unsigned i = 0; i < g.n_socks; i++)
        pfd[i] = (struct pollfd){.fd = g.socks[i].fd, .events = POLLIN};
    uint64_t last_scan = now_ms();
    for (;;) {
        int got = 0;
        for (unsigned i = 0; i < g.n_socks; i++)
            receive(i, &got);
        for (unsigned i = 0; i < g.n_socks; i++)
            if (punch_udp_queued(g.socks[i].tx))
                flush(&g.socks[i]);
        uint64_t now = now_ms();
        if (now - last_scan >= SCAN_MS) {
            scan_timeouts(now);
            last_scan = now;
        }
        if (done(now))
            return;
        if (!got)
            poll(pfd, g.n_socks, 1);
    }
}

static uint64_t deadline;

static bool all_registered(uint64_t now)
{
    (void)now;
    return g.registered == g.n_peers;
}

static bool past_deadline(uint64_t now)
{
    return now >= deadline;
}

static bool every_peer_once(uint64_t now)
{
    (void)now;
    for (unsigned i = 0; i < g.n_socks; i++)
        if (!g.socks[i].wrapped && i < g.n_peers)
            return false;
    return true;
}

/* The server's key, from a COOKIE (first answer within ready_s). */
static int probe(double ready_s)
{
    punch_msg hello = {.type = PUNCH_MSG_HELLO, .txid = {'p', 'r', 'o', 'b', 'e'}};
    uint8_t hb[PUNCH_MSG_HELLO_LEN];
    size_t hlen;
    if (punch_msg_encode(&hello, hb, sizeof(hb), &hlen) != 0)
        return -1;
    uint64_t end = now_ms() + (uint64_t)(ready_s * 1000);
    struct sockaddr_storage ss;
    socklen_t sl = punch_addr_to_sockaddr(&g.server, &ss);
    while (now_ms() < end) {
        sendto(g.socks[0].fd, hb, hlen, 0, (struct sockaddr *)&ss, sl);
        struct pollfd pfd = {.fd = g.socks[0].fd, .events = POLLIN};
        if (poll(&pfd, 1, 50) == 1) {
            uint8_t b[PUNCH_MAX_DATAGRAM];
            ssize_t n = recv(g.socks[0].fd, b, sizeof(b), 0);
            punch_msg m;
            if (g.floor && n >= 2)
                return 0;
            if (n > 0 && punch_msg_decode(b, (size_t)n, &m) == 0 && m.type == PUNCH_MSG_COOKIE &&
                memcmp(m.txid, hello.txid, PUNCH_MSG_TXID_LEN) == 0) {
                memcpy(g.server_key, m.key, PUNCH_MSG_KEY_LEN);
                return 0;
            }
        }
    }
    return -1;
}

typedef struct job {
    uint32_t from, to;
} job;

static void *derive_keys(void *arg)
{
    const job *j = arg;
    for (uint32_t i = j->from; i < j->to; i++) {
        vpeer *p = &g.peers[i];
        uint8_t in[12];
        memcpy(in, &g.seed, 8);
        memcpy(in + 8, &i, 4);
        punch_identity id;
        crypto_generichash(id.secret_key, 32, in, sizeof(in), NULL, 0);
        crypto_scalarmult_base(id.public_key, id.secret_key);
        memcpy(p->pub, id.public_key, 32);
        if (g.floor)
            continue;
        if (punch_auth_derive(&id, g.server_key, p->mac_key) != 0)
            abort();
    }
    return NULL;
}

static long vm_rss_kib(int pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    long kib = -1;
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

static int usage(void)
{
    fprintf(stderr, "usage: rendezvous_load IPV4:PORT [--peers N] [--sockets N] [--window N]\n"
                    "         [--seconds S] [--warmup S] [--seed N] [--pid PID] [--floor]\n"
                    "         [--prefix C] [--connect C] [--fresh]\n");
    return 2;
}

/* SERVER:PORT and the options into g. Returns 0, or usage()'s code. */
static int parse_args(int argc, char **argv)
{
    g.n_peers = 10000, g.n_socks = 8, g.window = 256, g.seconds = 3, g.warmup = 0.5, g.seed = 1;
    g.prefix = 'p';
    if (argc < 2)
        return usage();
    if (punch_addr_parse(argv[1], 0, &g.server) != 0 || g.server.family != PUNCH_AF_INET ||
        !g.server.port)
        return usage();
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--floor")) {
            g.floor = true;
            continue;
        }
        if (!strcmp(a, "--fresh")) {
            g.fresh = true;
            continue;
        }
        if (!v)
            return usage();
        i++;
        if (!strcmp(a, "--peers"))
            g.n_peers = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--sockets"))
            g.n_socks = (unsigned)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--window"))
            g.window = (unsigned)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--seconds"))
            g.seconds = atof(v);
        else if (!strcmp(a, "--warmup"))
            g.warmup = atof(v);
        else if (!strcmp(a, "--seed"))
            g.seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--pid"))
            g.pid = atoi(v);
        else if (!strcmp(a, "--prefix") && v[0] && !v[1])
            g.prefix = v[0];
        else if (!strcmp(a, "--connect") && v[0] && !v[1])
            g.connect_to = v[0];
        else
            return usage();
    }
    if (g.n_peers == 0 || g.n_socks == 0 || g.n_socks > MAX_SOCKETS || g.window < g.n_socks ||
        g.window > g.n_socks * BATCH)
        return usage();
    return 0;
}

/* g.n_socks sockets on the server's IP (4 MiB buffers, UDP GRO:
 * punch_udp_bind). Returns 0 or 1 (said on stderr). */
static int open_sockets(void)
{
    for (unsigned i = 0; i < g.n_socks; i++) {
        sock *s = &g.socks[i];
        punch_addr local = g.server;
        local.port = 0;
        s->fd = punch_udp_bind(&local, &s->local);
        s->tx = punch_udp_batch_new();
        s->rx = punch_udp_batch_new();
        if (s->fd < 0 || !s->tx || !s->rx) {
            perror("rendezvous_load: socket");
            return 1;
        }
    }
    return 0;
}

/* One X25519 per peer for its public key and one for its MAC key, on two
 * threads. */
static void derive_all_keys(void)
{
    uint64_t t0 = now_ms();
    pthread_t th[2];
    job jobs[2] = {{0, g.n_peers / 2}, {g.n_peers / 2, g.n_peers}};
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, derive_keys, &jobs[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    fprintf(stderr, "rendezvous_load: %u key pairs and MAC keys in %.1f s\n", g.n_peers,
            (double)(now_ms() - t0) / 1000);
}

/* Register every peer, as fast as the window allows; prints the rate. */
static void register_all(void)
{
    uint64_t t0 = now_ms();
    for (uint32_t k = 0; k < g.window; k++)
        start_slot(k);
    run(all_registered);
    double s = (double)(now_ms() - t0) / 1000;
    printf("registered %u seconds %.2f rate %.0f rss_kib %ld\n", g.n_peers, s, g.n_peers / s,
           g.pid ? vm_rss_kib(g.pid) : -1L);
    fflush(stdout);
}

/* One untimed keepalive for every peer, in the order the timed phase
 * takes them: a cookie lives 60 to 120 s, registering 1,000,000 peers
 * takes longer here (the server's X25519 each), and a keepalive with a
 * dead cookie is refused and refreshed (HELLO, COOKIE, REGISTER), which
 * is not what phase 2 times. After this pass every peer holds a cookie
 * younger than the pass; prints
 *   fresh seconds <s> refreshed <n> */
static void refresh_pass(void)
{
    uint64_t t0 = now_ms();
    run(every_peer_once);
    printf("fresh seconds %.2f refreshed %llu\n", (double)(now_ms() - t0) / 1000,
           (unsigned long long)g.refreshed);
    fflush(stdout);
    for (unsigned i = 0; i < g.n_socks; i++)
        g.socks[i].next = 0;
}

/* Keepalives for g.seconds after g.warmup; prints the rate. Returns the
 * exit code: 0 when any was answered. */
static int keepalives(void)
{
    g.keepalive = true;
    for (unsigned i = 0; i < g.n_socks; i++)
        g.socks[i].next = 0;
    memset(g.slots, 0, g.window * sizeof(slot));
    for (uint32_t k = 0; k < g.window; k++)
        start_slot(k);
    if (!g.floor && !g.connect_to && g.fresh)
        refresh_pass();
    deadline = now_ms() + (uint64_t)(g.warmup * 1000);
    run(past_deadline);
    g.sent = g.valid = g.invalid = g.timeouts = g.refreshed = 0;
    uint64_t t0 = now_ms();
    deadline = t0 + (uint64_t)(g.seconds * 1000);
    run(past_deadline);
    double s = (double)(now_ms() - t0) / 1000;
    if (g.connect_to)
        printf("connect rate %.0f sent %llu valid %llu invalid %llu timeouts %llu\n",
               (double)g.valid / s, (unsigned long long)g.sent, (unsigned long long)g.valid,
               (unsigned long long)g.invalid, (unsigned long long)g.timeouts);
    else
        printf("keepalive rate %.0f sent %llu valid %llu invalid %llu timeouts %llu bytes %zu %zu "
           "refreshed %llu\n",
           (double)g.valid / s, (unsigned long long)g.sent, (unsigned long long)g.valid,
           (unsigned long long)g.invalid, (unsigned long long)g.timeouts, g.register_len,
           g.answer_len, (unsigned long long)g.refreshed);
    return g.valid ? 0 : 1;
}

int main(int argc, char **argv)
{
    int rc = parse_args(argc, argv);
    if (rc != 0)
        return rc;
    if (sodium_init() < 0)
        return usage();
    g.peers = calloc(g.n_peers, sizeof(vpeer));
    g.slots = calloc(g.window, sizeof(slot));
    if (!g.peers || !g.slots || open_sockets() != 0)
        return 1;
    if (probe(10) != 0) {
        fprintf(stderr, "rendezvous_load: no COOKIE from %s\n", argv[1]);
        return 1;
    }
    derive_all_keys();
    if (!g.floor)
        register_all();
    return keepalives();
}
