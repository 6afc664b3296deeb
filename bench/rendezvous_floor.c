/*
 * rendezvous_floor: the least work a rendezvous server can do for a
 * keepalive, as the floor punchd is measured against on the same machine.
 *
 * For each datagram it sends back its first REPLY_LEN bytes (the size of a
 * REGISTERED answer) with the type byte turned into REGISTERED, so txid and
 * sizes match what rendezvous_load expects of punchd. No parsing, no MAC, no
 * table. Datagrams move BATCH at a time with recvmmsg/sendmmsg, as punchd's do.
 *
 * usage: rendezvous_floor IPV4:PORT. Prints nothing; exits on SIGINT/SIGTERM.
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

#define BATCH 64
#define BUF_LEN 2048
#define REPLY_LEN 63      /* REGISTERED: magic, type, txid, endpoint, cookie, keepalive, MAC */
#define TYPE_REGISTERED 0x04

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
        fprintf(stderr, "usage: rendezvous_floor IPV4:PORT\n");
        return 2;
    }
    struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: break recvmmsg */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        fprintf(stderr, "rendezvous_floor: cannot bind %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
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
            perror("rendezvous_floor: recvmmsg");
            return 1;
        }
        int out = 0;
        for (int k = 0; k < n; k++) {
            if (rmsg[k].msg_len < REPLY_LEN)
                continue;
            buf[k][1] = TYPE_REGISTERED;
            siov[out].iov_base = buf[k];
            siov[out].iov_len = REPLY_LEN;
            smsg[out].msg_hdr.msg_name = &peer[k];
            smsg[out].msg_hdr.msg_namelen = sizeof peer[k];
            out++;
        }
        for (int done = 0; done < out;) {
            int m = sendmmsg(fd, smsg + done, (unsigned)(out - done), 0);
            if (m < 0) {
                if (errno == EINTR && !stop)
                    continue;
                done++;
                continue;
            }
            done += m;
        }
    }
    close(fd);
    return 0;
}
