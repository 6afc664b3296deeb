/*
 * stun_floor: the least work a STUN Binding server can do, as the floor a
 * real server is measured against on the same machine.
 *
 * For each datagram of at least a STUN header it turns the request into a
 * success response in place: the class bits become "success response", the
 * attributes are replaced by one XOR-MAPPED-ADDRESS of the sender (the least
 * a Binding answer can carry) and the length field is fixed. No parsing, no
 * checks, no state. Datagrams move BATCH at a time with recvmmsg/sendmmsg,
 * the batch size a real server would use.
 *
 * usage: stun_floor ADDR:PORT (IPv4). Prints nothing; exits on SIGINT/SIGTERM.
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

#define STUN_HEADER_LEN 20
#define STUN_MAGIC_COOKIE 0x2112A442u       /* RFC 8489 §5 */
#define STUN_CLASS_MASK 0x0110              /* RFC 8489 §5: C1 C0 */
#define STUN_CLASS_SUCCESS 0x0100
#define STUN_ATTR_XOR_MAPPED_ADDRESS 0x0020 /* RFC 8489 §14.2 */
#define XMA_LEN 12                          /* IPv4 XOR-MAPPED-ADDRESS, with its header */

#define BATCH 64
#define BUF_LEN 2048

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
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
        fprintf(stderr, "usage: stun_floor IPV4:PORT%s%s%s\n", argc > 1 ? " (bad address '" : "",
                argc > 1 ? argv[1] : "", argc > 1 ? "')" : "");
        return 2;
    }
    /* No SA_RESTART: a signal must break the blocking recvmmsg. */
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        fprintf(stderr, "stun_floor: cannot bind %s: %s\n", argv[1], strerror(errno));
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
            perror("stun_floor: recvmmsg");
            return 1;
        }
        int out = 0;
        for (int k = 0; k < n; k++) {
            uint8_t *p = buf[k];
            if (rmsg[k].msg_len < STUN_HEADER_LEN || peer[k].sin_family != AF_INET)
                continue;
            uint16_t type = (uint16_t)(p[0] << 8 | p[1]);
            wr16(p, (uint16_t)((type & ~STUN_CLASS_MASK) | STUN_CLASS_SUCCESS));
            wr16(p + 2, XMA_LEN);
            uint8_t *a = p + STUN_HEADER_LEN;
            wr16(a, STUN_ATTR_XOR_MAPPED_ADDRESS);
            wr16(a + 2, XMA_LEN - 4);
            a[4] = 0;
            a[5] = 0x01; /* IPv4 */
            wr16(a + 6, (uint16_t)(ntohs(peer[k].sin_port) ^ (STUN_MAGIC_COOKIE >> 16)));
            wr32(a + 8, ntohl(peer[k].sin_addr.s_addr) ^ STUN_MAGIC_COOKIE);
            siov[out].iov_base = p;
            siov[out].iov_len = STUN_HEADER_LEN + XMA_LEN;
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
