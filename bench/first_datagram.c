/* SPDX-License-Identifier: MIT */
/*
 * From a program's start to its first datagram (connect_bench.sh a'.,
 * issue 10): what a cold start pays before anything reaches the network,
 * on this machine under its load.
 *
 *   first_datagram RUNS PORT -- CMD [ARG...]
 *       RUNS times: fork, exec CMD (stdin, stdout and stderr /dev/null),
 *       and wait for the first datagram to 127.0.0.1:PORT (give CMD that
 *       as its server); then SIGKILL it. Prints each run's time from the
 *       fork to that datagram's arrival, and their median (ms).
 *   first_datagram send PORT
 *       The floor: a C program that sends one datagram to 127.0.0.1:PORT
 *       and exits (libc only, nothing else loaded or done).
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_RUNS 1000
#define WAIT_MS 5000

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static struct sockaddr_in loopback(const char *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

static int send_one(const char *port)
{
    struct sockaddr_in a = loopback(port);
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    return s >= 0 && sendto(s, "x", 1, 0, (struct sockaddr *)&a, sizeof(a)) == 1 ? 0 : 1;
}

static void child(char **cmd)
{
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
    }
    execvp(cmd[0], cmd);
    _exit(127);
}

/* One run: ms from the fork to the first datagram on s, -1 when none. */
static double one_run(int s, char **cmd)
{
    char buf[2048];
    while (recv(s, buf, sizeof(buf), MSG_DONTWAIT) >= 0)
        ; /* a late one of the last run */
    double t0 = now_ms(), took = -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0)
        child(cmd);
    struct pollfd p = {.fd = s, .events = POLLIN};
    if (poll(&p, 1, WAIT_MS) == 1 && recv(s, buf, sizeof(buf), 0) >= 0)
        took = now_ms() - t0;
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return took;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "send") == 0)
        return send_one(argv[2]);
    int runs = argc > 4 ? atoi(argv[1]) : 0;
    if (runs < 1 || runs > MAX_RUNS || strcmp(argv[3], "--") != 0) {
        fprintf(stderr, "usage: first_datagram RUNS PORT -- CMD [ARG...] | first_datagram send PORT\n");
        return 2;
    }
    struct sockaddr_in a = loopback(argv[2]);
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) != 0) {
        fprintf(stderr, "first_datagram: cannot bind 127.0.0.1:%s\n", argv[2]);
        return 1;
    }
    static double took[MAX_RUNS];
    printf("runs_ms");
    for (int i = 0; i < runs; i++) {
        if ((took[i] = one_run(s, argv + 4)) < 0) {
            fprintf(stderr, "first_datagram: no datagram from %s within %d ms\n", argv[4], WAIT_MS);
            return 1;
        }
        printf(" %.2f", took[i]);
    }
    qsort(took, (size_t)runs, sizeof(took[0]), cmp);
    printf("\nmedian_ms %.2f\n", runs % 2 ? took[runs / 2] : (took[runs / 2 - 1] + took[runs / 2]) / 2);
    return 0;
}
