/* SPDX-License-Identifier: MIT */
/*
 * punch_blast: the load side of bench/connect_bench.sh. One program, five
 * roles, so the punch figures and the plain-UDP floors they are divided by
 * move the same datagrams (same size, same recvmmsg/sendmmsg batches from
 * src/io/net.h) between the same namespaces.
 *
 *   punch_blast punch-recv SERVER NAME [--relay-only] [--no-aes]
 *   punch_blast punch-send SERVER NAME PEER SECONDS SIZE [--relay-only] [--window N]
 *                          [--open-guard-ms N] [--no-aes]
 *       An agent through the I/O driver (src/io/driver.h). The sender waits
 *       for its registration, then connects and prints "connect_ms N": the
 *       time from punch_agent_connect to the first path of the kind asked
 *       for (direct; relay with --relay-only). With SECONDS > 0 it then sends
 *       SIZE-byte datagrams for SECONDS, at most --window (default 128)
 *       beyond what the receiver acknowledged (the receiver returns the
 *       highest sequence number seen every window/4 datagrams; a window
 *       without an answer for 20 ms is taken as lost). No retransmission:
 *       this measures datagrams delivered, as plain UDP does.
 *       --open-guard-ms sets punch_agent_cfg.open_guard_ms (how long the
 *       first probes to a public endpoint carry a low TTL; 0: adaptive, the default).
 *       --no-aes: PUNCH_AGENT_NO_AES (ChaCha20-Poly1305 even with AES-NI).
 *   punch_blast udp-recv PORT [--hello IP:PORT]
 *       Plain UDP, counting. --hello sends a small datagram there every
 *       100 ms until data comes: it opens our NAT towards the sender, or
 *       tells udp-forward where to forward.
 *   punch_blast udp-send IP:PORT SECONDS SIZE [--port P]
 *       Plain UDP as fast as the socket takes it (waiting for POLLOUT).
 *   punch_blast udp-forward PORT
 *       The least a relay does: the sender of the last hello is the
 *       receiver; every other datagram is forwarded to it, unchanged.
 *   punch_blast cipher SECONDS SIZE
 *       The AEADs alone (ChaCha20-Poly1305, and AES-256-GCM where the CPU
 *       has it, as punch seals every datagram): SIZE-byte datagrams sealed
 *       for SECONDS, then opened for SECONDS, on one core; prints seal_Bps
 *       and open_Bps (plaintext bytes), then aes_seal_Bps and aes_open_Bps
 *       (0 without AES-NI), then the CPU microseconds of one seal of each
 *       (seal_cpu_us, aes_seal_cpu_us) and of one seal and open of each
 *       (seal_open_cpu_us, aes_seal_open_cpu_us: a datagram's AEAD at both
 *       ends). What one core could carry if nothing but the cipher cost
 *       anything.
 *
 * Receivers print "recv_bytes B datagrams N seconds S rate_Bps R cpu_s C":
 * payload bytes between the first and the last datagram timed (see count), after 1 s without
 * data, and the CPU seconds the process used. Senders print "sent N cpu_s C". Everything here is for the lab; nothing else.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "crypto/noise.h"
#include "driver/driver.h"
#include "io/loop.h"
#include "io/net.h"

#define HELLO_LEN 5 /* shorter than any data datagram (at least 8 bytes) */
#define IDLE_US 1000000
#define TICK_MS 2
#define STALL_MS 20

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* What every receiver counts. The clock is read at the first datagram
 * and every CLOCK_EVERY-th after it, not at each (that was 4 % of the punch
 * receiver's profile); the rate is of the bytes up to the latest reading. */
#define CLOCK_EVERY 64
typedef struct counter {
    uint64_t bytes, datagrams, first_us, last_us;
    uint64_t timed_bytes; /* bytes up to and with the datagram at last_us */
} counter;

static void count(counter *c, size_t len)
{
    c->bytes += len;
    if (c->datagrams++ % CLOCK_EVERY == 0) {
        uint64_t t = now_us();
        if (c->datagrams == 1)
            c->first_us = t;
        c->last_us = t;
        c->timed_bytes = c->bytes;
    }
}

/* CPU seconds this process used (user and system): with the datagrams
 * moved, a cost per datagram that the machine's other load moves less
 * than it moves the rates. */
static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void report(const counter *c)
{
    double s = (double)(c->last_us - c->first_us) / 1e6;
    printf("recv_bytes %llu datagrams %llu seconds %.3f rate_Bps %.0f cpu_s %.3f\n",
           (unsigned long long)c->bytes, (unsigned long long)c->datagrams, s,
           s > 0 ? (double)c->timed_bytes / s : 0.0, cpu_seconds());
}

static int usage(void)
{
    fputs("usage: punch_blast punch-recv SERVER NAME [--relay-only] [--no-aes]\n"
          "       punch_blast punch-send SERVER NAME PEER SECONDS SIZE [--relay-only] [--window N]\n"
          "                              [--open-guard-ms N] [--no-aes]\n"
          "       punch_blast udp-recv PORT [--hello IP:PORT]\n"
          "       punch_blast udp-send IP:PORT SECONDS SIZE [--port P]\n"
          "       punch_blast udp-forward PORT\n"
          "       punch_blast cipher SECONDS SIZE\n", stderr);
    return 2;
}

/* ---- punch: an agent through the driver ---------------------------------- */

typedef struct blast {
    punch_loop *loop;
    punch_driver *d;
    const char *peer_name;         /* sender: whom to connect to */
    bool relay_only, started, sending;
    int peer, rc;
    punch_loop_timer tick;
    uint64_t connect_us, end_us, last_ack_us;
    uint64_t seconds;
    size_t size;
    uint64_t next_seq, acked, window;
    uint64_t highest, unacked;     /* receiver */
    counter c;
} blast;

static void fill(blast *b)
{
    uint8_t buf[PUNCH_MAX_DATAGRAM];
    punch_agent *a = punch_driver_agent(b->d);
    memset(buf, 0xab, b->size);
    unsigned n = 0;
    /* One reading of the clock for the run, as for udp-send: a run is a
     * window at most (512 datagrams: well under a millisecond). */
    uint64_t now = punch_clock_ms();
    while (b->sending && b->next_seq - b->acked < b->window) {
        put64(buf, b->next_seq);
        if (punch_agent_send(a, now, b->peer, buf, b->size) != 0)
            break;
        b->next_seq++;
        /* The agent queues at most 256 datagrams: flushing at half that lets
         * the driver send whole batches (PUNCH_UDP_BATCH, 64: one GSO run),
         * as udp-send does; every 32 halved them. */
        if (++n % 128 == 0)
            punch_driver_flush(b->d);
    }
    punch_driver_flush(b->d);
}

static void ack(blast *b)
{
    uint8_t buf[8];
    put64(buf, b->highest + 1);
    punch_agent_send(punch_driver_agent(b->d), punch_clock_ms(), b->peer, buf, sizeof(buf));
    b->unacked = 0;
}

static void on_event(void *arg, punch_driver *d, const punch_event *ev)
{
    blast *b = arg;
    punch_agent *a = punch_driver_agent(d);
    switch (ev->kind) {
    case PUNCH_EVENT_REGISTERED:
        if (b->peer_name && !b->started) {
            b->started = true;
            b->connect_us = now_us();
            b->peer = punch_agent_connect(a, punch_clock_ms(), b->peer_name, NULL);
            if (b->peer < 0) {
                fprintf(stderr, "punch_blast: connect: %s\n", punch_strerror(b->peer));
                punch_loop_stop(b->loop);
            }
        }
        break;
    case PUNCH_EVENT_INTRODUCED:
        if (!b->peer_name && b->peer < 0)
            b->peer = ev->peer;
        break;
    case PUNCH_EVENT_PATH:
        fprintf(stderr, "punch_blast: path %s via %s, %s\n", punch_path_kind_name(ev->path.kind),
                punch_technique_name(ev->path.technique), punch_cipher_name(ev->path.cipher));
        if (b->peer_name && !b->sending && b->end_us == 0 && ev->peer == b->peer &&
            ev->path.kind == (b->relay_only ? PUNCH_PATH_RELAY : PUNCH_PATH_DIRECT)) {
            printf("connect_ms %.1f\n", (double)(now_us() - b->connect_us) / 1000.0);
            fflush(stdout);
            b->rc = 0;
            if (b->seconds == 0) { /* only the connection time was asked for */
                punch_agent_close(a, punch_clock_ms(), b->peer);
                punch_driver_flush(d);
                punch_loop_stop(b->loop);
                break;
            }
            b->sending = true;
            b->last_ack_us = now_us();
            b->end_us = b->last_ack_us + b->seconds * 1000000;
            fill(b);
        }
        break;
    case PUNCH_EVENT_DATA:
        if (ev->data.len < 8 || ev->peer != b->peer)
            break;
        if (b->peer_name) { /* an acknowledgement */
            uint64_t upto = get64(ev->data.bytes);
            if (upto > b->acked) {
                b->acked = upto;
                b->last_ack_us = now_us();
            }
            fill(b);
        } else {
            count(&b->c, ev->data.len);
            uint64_t seq = get64(ev->data.bytes);
            if (seq > b->highest || b->c.datagrams == 1)
                b->highest = seq;
            if (++b->unacked >= b->window / 4)
                ack(b);
        }
        break;
    case PUNCH_EVENT_CLOSED:
    case PUNCH_EVENT_REFUSED:
        if (ev->kind == PUNCH_EVENT_REFUSED || ev->peer == b->peer) {
            fprintf(stderr, "punch_blast: %s: %s\n", ev->peer_name,
                    ev->kind == PUNCH_EVENT_REFUSED ? ev->refused.why : ev->closed.why);
            punch_loop_stop(b->loop);
        }
        break;
    default:
        break;
    }
}

static void on_tick(void *arg, uint64_t now_ms)
{
    blast *b = arg;
    uint64_t t = now_us();
    punch_loop_timer_set(b->loop, b->tick, now_ms + TICK_MS);
    if (b->peer_name && b->sending) {
        if (t >= b->end_us) {
            b->sending = false;
            printf("sent %llu cpu_s %.3f\n", (unsigned long long)b->next_seq, cpu_seconds());
            punch_agent_close(punch_driver_agent(b->d), punch_clock_ms(), b->peer);
            punch_driver_flush(b->d);
            punch_loop_stop(b->loop);
            return;
        }
        if (t - b->last_ack_us > STALL_MS * 1000) { /* the window's tail was lost */
            b->acked = b->next_seq;
            b->last_ack_us = t;
        }
        fill(b);
    } else if (!b->peer_name) {
        if (b->unacked > 0) {
            ack(b);
            punch_driver_flush(b->d);
        }
        if (b->c.datagrams > 0 && t - b->c.last_us > IDLE_US)
            punch_loop_stop(b->loop);
    }
}

static int run_punch(int argc, char **argv, bool sender)
{
    blast b = {.peer = -1, .window = 128, .rc = 1};
    bool no_aes = false;
    punch_driver_cfg dc = {.on_event = on_event, .arg = &b};
    int i = sender ? 7 : 4;
    if (argc < i)
        return usage();
    if (sender) {
        b.peer_name = argv[4];
        b.seconds = strtoull(argv[5], NULL, 10);
        b.size = strtoul(argv[6], NULL, 10);
        if (b.size < 8 || b.size > PUNCH_MAX_DATAGRAM)
            return usage();
    }
    for (; i < argc; i++) {
        if (strcmp(argv[i], "--relay-only") == 0)
            b.relay_only = true;
        else if (strcmp(argv[i], "--window") == 0 && i + 1 < argc)
            b.window = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--open-guard-ms") == 0 && i + 1 < argc)
            dc.agent.open_guard_ms = (uint32_t)strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--no-aes") == 0)
            no_aes = true;
        else
            return usage();
    }
    if (b.window < 4 || punch_addr_parse(argv[2], 3478, &dc.agent.server) != 0)
        return usage();
    dc.agent.name = argv[3];
    dc.agent.flags = (b.relay_only ? PUNCH_AGENT_RELAY_ONLY : 0) | (no_aes ? PUNCH_AGENT_NO_AES : 0);
    if (punch_random_bytes(dc.agent.secret_key, PUNCH_KEY_BYTES) != 0 ||
        punch_loop_new(&b.loop) != 0 || punch_driver_new(&b.d, b.loop, &dc) != 0) {
        perror("punch_blast: setup");
        return 1;
    }
    if (punch_loop_timer_add(b.loop, punch_clock_ms() + TICK_MS, on_tick, &b, &b.tick) != 0) {
        perror("punch_blast: timer");
        return 1;
    }
    punch_loop_run(b.loop);
    if (!sender) {
        report(&b.c);
        b.rc = b.c.datagrams > 0 ? 0 : 1;
    }
    punch_driver_free(b.d);
    punch_loop_free(b.loop);
    return b.rc;
}

/* ---- plain UDP ----------------------------------------------------------- */

static int bind_port(const char *port_text, punch_addr *bound)
{
    punch_addr any;
    char text[32];
    snprintf(text, sizeof(text), "0.0.0.0:%s", port_text);
    if (punch_addr_parse(text, 0, &any) != 0)
        return -1;
    int fd = punch_udp_bind(&any, bound);
    if (fd < 0)
        perror("punch_blast: bind");
    return fd;
}

static int udp_recv(int argc, char **argv)
{
    punch_addr bound, hello = {0};
    if (argc == 5 && strcmp(argv[3], "--hello") == 0) {
        if (punch_addr_parse(argv[4], 0, &hello) != 0)
            return usage();
    } else if (argc != 3) {
        return usage();
    }
    int fd = bind_port(argv[2], &bound);
    punch_udp_batch *rx = punch_udp_batch_new(), *tx = punch_udp_batch_new();
    if (fd < 0 || !rx || !tx)
        return 1;
    counter c = {0};
    uint64_t last_hello = 0, t;
    while ((t = now_us()), c.datagrams == 0 || t - c.last_us < IDLE_US) {
        if (c.datagrams == 0 && hello.family && t - last_hello > 100000) {
            memset(punch_udp_queue(tx, &hello, NULL, 0), 'h', HELLO_LEN);
            punch_udp_queue_len(tx, HELLO_LEN);
            punch_udp_send(fd, tx);
            last_hello = t;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        poll(&p, 1, 100);
        int n;
        while ((n = punch_udp_recv(fd, rx, &bound)) > 0)
            for (int i = 0; i < n; i++) {
                const uint8_t *data;
                size_t len;
                punch_addr src, dst;
                punch_udp_received(rx, (unsigned)i, &data, &len, &src, &dst);
                if (len > HELLO_LEN)
                    count(&c, len);
            }
    }
    report(&c);
    return 0;
}

static void wait_writable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    poll(&p, 1, 100);
}

static int udp_send(int argc, char **argv)
{
    punch_addr dst, bound;
    const char *port = "0";
    if (argc == 7 && strcmp(argv[5], "--port") == 0)
        port = argv[6];
    else if (argc != 5)
        return usage();
    size_t size = strtoul(argv[4], NULL, 10);
    uint64_t secs = strtoull(argv[3], NULL, 10);
    if (punch_addr_parse(argv[2], 0, &dst) != 0 || size < 8 || size > PUNCH_UDP_MTU)
        return usage();
    int fd = bind_port(port, &bound);
    punch_udp_batch *tx = punch_udp_batch_new();
    if (fd < 0 || !tx)
        return 1;
    uint64_t seq = 0, end = now_us() + secs * 1000000;
    while (now_us() < end) {
        for (int i = 0; i < PUNCH_UDP_BATCH; i++) {
            uint8_t *p = punch_udp_queue(tx, &dst, NULL, 0);
            memset(p, 0xab, size);
            put64(p, seq++);
            punch_udp_queue_len(tx, size);
        }
        wait_writable(fd);
        seq -= punch_udp_send(fd, tx); /* what the kernel refused was not sent */
    }
    printf("sent %llu cpu_s %.3f\n", (unsigned long long)seq, cpu_seconds());
    return 0;
}

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static int udp_forward(int argc, char **argv)
{
    punch_addr bound, to = {0};
    if (argc != 3)
        return usage();
    int fd = bind_port(argv[2], &bound);
    punch_udp_batch *rx = punch_udp_batch_new(), *tx = punch_udp_batch_new();
    if (fd < 0 || !rx || !tx)
        return 1;
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    while (!stop) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        poll(&p, 1, 100);
        int n;
        while ((n = punch_udp_recv(fd, rx, &bound)) > 0) {
            for (int i = 0; i < n; i++) {
                const uint8_t *data;
                size_t len;
                punch_addr src, dst;
                punch_udp_received(rx, (unsigned)i, &data, &len, &src, &dst);
                if (len <= HELLO_LEN) {
                    to = src;
                } else if (to.family) {
                    if (punch_udp_queued(tx) == PUNCH_UDP_BATCH) {
                        wait_writable(fd);
                        punch_udp_send(fd, tx);
                    }
                    memcpy(punch_udp_queue(tx, &to, NULL, 0), data, len);
                    punch_udp_queue_len(tx, len);
                }
            }
            if (punch_udp_queued(tx)) {
                wait_writable(fd);
                punch_udp_send(fd, tx);
            }
        }
    }
    return 0;
}

/* ---- the AEAD alone ------------------------------------------------------- */

/* AES-256-GCM as the transport runs it: the key expanded once. */
static crypto_aead_aes256gcm_state aes_state;

static void aes_seal(uint64_t n, const uint8_t *in, size_t len, uint8_t *out)
{
    uint8_t nonce[crypto_aead_aes256gcm_NPUBBYTES] = {0};
    memcpy(nonce + 4, &n, sizeof(n));
    crypto_aead_aes256gcm_encrypt_afternm(out, NULL, in, len, NULL, 0, NULL, nonce, &aes_state);
}

static int aes_open(uint64_t n, const uint8_t *in, size_t len, uint8_t *out)
{
    uint8_t nonce[crypto_aead_aes256gcm_NPUBBYTES] = {0};
    memcpy(nonce + 4, &n, sizeof(n));
    return crypto_aead_aes256gcm_decrypt_afternm(out, NULL, NULL, in, len, NULL, 0, nonce,
                                                 &aes_state);
}

/* Seconds per datagram: sealed alone (open = false), or sealed and then
 * opened again (a real ciphertext for its own nonce, so the open does all
 * its work), for `secs` seconds; ChaCha20-Poly1305 with key, or AES-256-GCM
 * (aes) with aes_state. */
static double cpu_per_seal; /* CPU seconds per datagram of the last aead_seconds */

static double aead_seconds(bool aes, bool open, double secs, const uint8_t *key,
                           const uint8_t *in, size_t len, uint8_t *sealed, uint8_t *opened)
{
    double cpu0 = cpu_seconds();
    uint64_t n = 0, start = now_us(), end = start + (uint64_t)(secs * 1e6), t;
    do {
        for (int i = 0; i < 256; i++, n++) {
            if (aes)
                aes_seal(n, in, len, sealed);
            else
                punch_noise_seal(key, n, NULL, 0, in, len, sealed);
            if (open && (aes ? aes_open(n, sealed, len + 16, opened)
                             : punch_noise_open(key, n, NULL, 0, sealed, len + 16, opened)) != 0)
                abort();
        }
    } while ((t = now_us()) < end);
    cpu_per_seal = (cpu_seconds() - cpu0) / (double)n;
    return (double)(t - start) / 1e6 / (double)n;
}

static int cipher(int argc, char **argv)
{
    double secs = argc == 4 ? atof(argv[2]) : 0;
    long size = argc == 4 ? atol(argv[3]) : 0;
    if (secs <= 0 || size < 16 || size > PUNCH_UDP_MTU)
        return usage();
    static uint8_t key[PUNCH_NOISE_KEY_LEN], plain[PUNCH_UDP_MTU], sealed[PUNCH_UDP_MTU + 16],
        opened[PUNCH_UDP_MTU];
    memset(key, 7, sizeof(key));
    memset(plain, 0xab, sizeof(plain));
    if (sodium_init() < 0)
        return 1;
    double seal = aead_seconds(false, false, secs, key, plain, (size_t)size, sealed, opened);
    double cpu_chacha = cpu_per_seal, cpu_aes = 0, both_chacha, both_aes = 0;
    double both = aead_seconds(false, true, secs, key, plain, (size_t)size, sealed, opened);
    both_chacha = cpu_per_seal;
    printf("seal_Bps %.0f open_Bps %.0f", (double)size / seal, (double)size / (both - seal));
    if (crypto_aead_aes256gcm_is_available()) {
        crypto_aead_aes256gcm_beforenm(&aes_state, key);
        seal = aead_seconds(true, false, secs, key, plain, (size_t)size, sealed, opened);
        cpu_aes = cpu_per_seal;
        both = aead_seconds(true, true, secs, key, plain, (size_t)size, sealed, opened);
        both_aes = cpu_per_seal;
        printf(" aes_seal_Bps %.0f aes_open_Bps %.0f", (double)size / seal,
               (double)size / (both - seal));
    } else {
        printf(" aes_seal_Bps 0 aes_open_Bps 0");
    }
    printf(" seal_cpu_us %.3f aes_seal_cpu_us %.3f", cpu_chacha * 1e6, cpu_aes * 1e6);
    printf(" seal_open_cpu_us %.3f aes_seal_open_cpu_us %.3f\n", both_chacha * 1e6, both_aes * 1e6);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return usage();
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (strcmp(argv[1], "punch-recv") == 0)
        return run_punch(argc, argv, false);
    if (strcmp(argv[1], "punch-send") == 0)
        return run_punch(argc, argv, true);
    if (strcmp(argv[1], "udp-recv") == 0)
        return udp_recv(argc, argv);
    if (strcmp(argv[1], "udp-send") == 0)
        return udp_send(argc, argv);
    if (strcmp(argv[1], "udp-forward") == 0)
        return udp_forward(argc, argv);
    if (strcmp(argv[1], "cipher") == 0)
        return cipher(argc, argv);
    return usage();
}
