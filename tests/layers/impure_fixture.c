/* SPDX-License-Identifier: MIT */
/* A deliberately impure "layer": check_layers.sh must reject it. This is the
 * test that shows the layer check can fail. */
#define _POSIX_C_SOURCE 200809L
#include <sys/socket.h>
#include <time.h>

int impure_fixture(void);

int impure_fixture(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return socket(AF_INET, SOCK_DGRAM, 0) + (int)ts.tv_sec;
}
