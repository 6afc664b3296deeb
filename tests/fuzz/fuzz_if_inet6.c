/* SPDX-License-Identifier: MIT */
/* libFuzzer target: a /proc/net/if_inet6 line (src/driver/addresses.c,
 * read in lines of up to 255 bytes). Whatever the text: a line that parses
 * names an IPv6 address, and the address written back as the line's 32 hex
 * digits parses to the same. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "driver/addresses.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char line[256];
    size_t n = size < sizeof(line) - 1 ? size : sizeof(line) - 1;
    memcpy(line, data, n);
    line[n] = '\0';
    punch_if_inet6 a, b;
    if (punch_if_inet6_parse(line, &a) != 0)
        return 0;
    if (a.addr.family != PUNCH_AF_INET6 || a.addr.port != 0)
        __builtin_trap();
    char again[64];
    for (int i = 0; i < 16; i++)
        snprintf(again + 2 * i, 3, "%02x", a.addr.ip[i]);
    strcpy(again + 32, " 1 40 0 0 x");
    if (punch_if_inet6_parse(again, &b) != 0 || memcmp(a.addr.ip, b.addr.ip, 16) != 0)
        __builtin_trap();
    return 0;
}
