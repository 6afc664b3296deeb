/* SPDX-License-Identifier: MIT */
/*
 * The floor of this machine: the least work a server can do for a datagram,
 * as the figure a real server is measured against in the same run. Built
 * twice, with the answer chosen at compile time so the loop carries no
 * branch for it:
 *
 *   stun_floor (FLOOR_STUN): for each datagram of at least a STUN header,
 *     turn the request into a success response in place: the class bits
 *     become "success response", the attributes are replaced by one
 *     XOR-MAPPED-ADDRESS of the sender (the least a Binding answer can
 *     carry) and the length field is fixed.
 *   rendezvous_floor (FLOOR_RENDEZVOUS): send back the first REPLY_LEN bytes
 *     (the size of a REGISTERED answer) with the type byte turned into
 *     REGISTERED, so txid and sizes match what rendezvous_load expects of
 *     punchd.
 *
 * No parsing, no checks, no state. Datagrams move as the real servers
 * move them (src/io/net.c: recvmmsg with UDP GRO, sendmmsg with UDP GSO,
 * PUNCH_UDP_BATCH at a time): before, one datagram per message here made
 * the floor slower than punchd itself (98,000 against 176,000 answers/s).
 *
 * usage: stun_floor|rendezvous_floor ADDR:PORT (IPv4). Prints nothing; exits
 * on SIGINT/SIGTERM.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <poll.h>

#include "io/net.h"
#include "wire/bytes.h"


#if defined(FLOOR_STUN)
#define FLOOR_NAME "stun_floor"
#define STUN_HEADER_LEN 20
#define STUN_MAGIC_COOKIE 0x2112A442u       /* RFC 8489 §5 */
#define STUN_CLASS_MASK 0x0110              /* RFC 8489 §5: C1 C0 */
#define STUN_CLASS_SUCCESS 0x0100
#define STUN_ATTR_XOR_MAPPED_ADDRESS 0x0020 /* RFC 8489 §14.2 */
#define XMA_LEN 12                          /* IPv4 XOR-MAPPED-ADDRESS, with its header */

/* The answer to p (len bytes from peer), built in place: its length, or 0
 * to send nothing. */
static size_t answer(uint8_t *p, size_t len, const struct sockaddr_in *peer)
{
    if (len < STUN_HEADER_LEN || peer->sin_family != AF_INET)
        return 0;
    uint16_t type = punch_get16(p);
    punch_put16(p, (uint16_t)((type & ~STUN_CLASS_MASK) | STUN_CLASS_SUCCESS));
    punch_put16(p + 2, XMA_LEN);
    uint8_t *a = p + STUN_HEADER_LEN;
    punch_put16(a, STUN_ATTR_XOR_MAPPED_ADDRESS);
    punch_put16(a + 2, XMA_LEN - 4);
    a[4] = 0;
    a[5] = 0x01; /* IPv4 */
    punch_put16(a + 6, (uint16_t)(ntohs(peer->sin_port) ^ (STUN_MAGIC_COOKIE >> 16)));
    punch_put32(a + 8, ntohl(peer->sin_addr.s_addr) ^ STUN_MAGIC_COOKIE);
    return STUN_HEADER_LEN + XMA_LEN;
}
#elif defined(FLOOR_RENDEZVOUS)
#define FLOOR_NAME "rendezvous_floor"
#define REPLY_LEN 88 /* REGISTERED: magic, type, txid, endpoint, cookie, keepalive, token, MAC */
#define TYPE_REGISTERED 0x04

static size_t answer(uint8_t *p, size_t len, const struct sockaddr_in *peer)
{
    (void)peer;
    if (len < REPLY_LEN)
        return 0;
    p[1] = TYPE_REGISTERED;
    return REPLY_LEN;
}
#else
#error "build with FLOOR_STUN or FLOOR_RENDEZVOUS"
#endif

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

/* Answer every datagram of one receive, then send the answers. */
static void serve(int fd, punch_udp_batch *rx, punch_udp_batch *tx, const punch_addr *local)
{
    int n = punch_udp_recv(fd, rx, local);
    for (int k = 0; k < n; k++) {
        const uint8_t *d;
        size_t len;
        punch_addr src, dst;
        punch_udp_received(rx, (unsigned)k, &d, &len, &src, &dst);
        struct sockaddr_storage ss;
        punch_addr_to_sockaddr(&src, &ss);
        uint8_t buf[PUNCH_UDP_MTU];
        memcpy(buf, d, len);
        size_t out_len = answer(buf, len, (const struct sockaddr_in *)&ss);
        if (out_len == 0)
            continue;
        uint8_t *out = punch_udp_queue(tx, &src, NULL, 0);
        if (!out) {
            punch_udp_send(fd, tx);
            out = punch_udp_queue(tx, &src, NULL, 0);
        }
        memcpy(out, buf, out_len);
        punch_udp_queue_len(tx, out_len);
    }
    punch_udp_send(fd, tx);
}

int main(int argc, char **argv)
{
    punch_addr addr, local;
    if (argc != 2 || punch_addr_parse(argv[1], 0, &addr) != 0 || addr.family != PUNCH_AF_INET ||
        !addr.port) {
        fprintf(stderr, "usage: " FLOOR_NAME " IPV4:PORT%s%s%s\n",
                argc > 1 ? " (bad address '" : "", argc > 1 ? argv[1] : "", argc > 1 ? "')" : "");
        return 2;
    }
    /* No SA_RESTART: a signal must break the blocking poll. */
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    /* 4 MiB buffers (room for a generator's whole window: a drop costs it
     * a timeout) and UDP GRO, as the servers' sockets (punch_udp_bind). */
    int fd = punch_udp_bind(&addr, &local);
    punch_udp_batch *rx = punch_udp_batch_new(), *tx = punch_udp_batch_new();
    if (fd < 0 || !rx || !tx) {
        fprintf(stderr, FLOOR_NAME ": cannot bind %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    while (!stop)
        if (poll(&pfd, 1, -1) > 0)
            serve(fd, rx, tx, &local);
    punch_udp_batch_free(rx);
    punch_udp_batch_free(tx);
    close(fd);
    return 0;
}
