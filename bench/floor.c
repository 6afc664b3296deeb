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
 * No parsing, no checks, no state. Datagrams move BATCH at a time with
 * recvmmsg/sendmmsg, the batch size the real servers use.
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

#include "wire/bytes.h"

#define BATCH 64
#define BUF_LEN 2048

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

static int parse_addr(const char *s, struct sockaddr_in *sin)
{
    char host[INET_ADDRSTRLEN];
    const char *colon = strrchr(s, ':');
    if (colon == NULL || colon == s || (size_t)(colon - s) >= sizeof host)
        return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    char *end;
    errno = 0;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (errno != 0 || *end != '\0' || end == colon + 1 || port > 65535)
        return -1;
    memset(sin, 0, sizeof *sin);
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, host, &sin->sin_addr) == 1 ? 0 : -1;
}

int main(int argc, char **argv)
{
    static uint8_t buf[BATCH][BUF_LEN];
    static struct sockaddr_in peer[BATCH];
    static struct mmsghdr rmsg[BATCH], smsg[BATCH];
    static struct iovec riov[BATCH], siov[BATCH];
    struct sockaddr_in addr;

    if (argc != 2 || parse_addr(argv[1], &addr) < 0) {
        fprintf(stderr, "usage: " FLOOR_NAME " IPV4:PORT%s%s%s\n",
                argc > 1 ? " (bad address '" : "", argc > 1 ? argv[1] : "", argc > 1 ? "')" : "");
        return 2;
    }
    /* No SA_RESTART: a signal must break the blocking recvmmsg. */
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        fprintf(stderr, FLOOR_NAME ": cannot bind %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    /* Room for a generator's whole window: a drop costs it a timeout, and
     * sizing the queue once is setup, not per-packet work. */
    int rcvbuf = 1 << 20;
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    for (int k = 0; k < BATCH; k++) {
        riov[k].iov_base = buf[k];
        riov[k].iov_len = BUF_LEN;
        rmsg[k].msg_hdr.msg_iov = &riov[k];
        rmsg[k].msg_hdr.msg_iovlen = 1;
        rmsg[k].msg_hdr.msg_name = &peer[k];
        smsg[k].msg_hdr.msg_iov = &siov[k];
        smsg[k].msg_hdr.msg_iovlen = 1;
    }
    while (!stop) {
        for (int k = 0; k < BATCH; k++)
            rmsg[k].msg_hdr.msg_namelen = sizeof peer[k];
        int n = recvmmsg(fd, rmsg, BATCH, MSG_WAITFORONE, NULL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror(FLOOR_NAME ": recvmmsg");
            return 1;
        }
        int out = 0;
        for (int k = 0; k < n; k++) {
            size_t len = answer(buf[k], rmsg[k].msg_len, &peer[k]);
            if (len == 0)
                continue;
            siov[out].iov_base = buf[k];
            siov[out].iov_len = len;
            smsg[out].msg_hdr.msg_name = &peer[k];
            smsg[out].msg_hdr.msg_namelen = sizeof peer[k];
            out++;
        }
        for (int done = 0; done < out;) {
            int m = sendmmsg(fd, smsg + done, (unsigned)(out - done), 0);
            if (m < 0) {
                if (errno == EINTR && !stop)
                    continue;
                done++; /* skip the datagram the kernel refused */
                continue;
            }
            done += m;
        }
    }
    close(fd);
    return 0;
}
