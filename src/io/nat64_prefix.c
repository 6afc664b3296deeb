/* SPDX-License-Identifier: MIT */
/* A NAT64 prefix as written (punch --nat64-prefix): "IPv6/LEN", or a bare
 * IPv6 address meaning /96 as before any other length was taken. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "io/net.h"

/* LEN: one to three decimal digits, nothing else. */
static int prefix_length(const char *text, unsigned *bits)
{
    size_t n = strspn(text, "0123456789");
    if (n == 0 || n > 3 || text[n] != '\0')
        return PUNCH_ERR_INVAL;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (unsigned)(text[i] - '0');
    *bits = v;
    return 0;
}

int punch_nat64_prefix_parse(const char *text, punch_nat64_prefix *out, char *why, size_t why_len)
{
    char ip[INET6_ADDRSTRLEN];
    uint8_t bytes[16];
    const char *slash = strchr(text, '/');
    size_t n = slash ? (size_t)(slash - text) : strlen(text);
    unsigned bits = 96;
    const char *bad = NULL;
    if (n >= sizeof(ip))
        bad = "not an IPv6 address";
    else if (slash && prefix_length(slash + 1, &bits) != 0)
        bad = "the length is not a number";
    if (!bad) {
        memcpy(ip, text, n);
        ip[n] = '\0';
        if (inet_pton(AF_INET6, ip, bytes) != 1)
            bad = "not an IPv6 address";
        else if (memcmp(bytes + PUNCH_NAT64_PREFIX_LEN, "\0\0\0\0", 4) != 0)
            bad = "bits are set beyond the prefix length";
    }
    /* 255: a length no prefix has (0 would mean the default), for
     * punch_nat64_prefix_check to name */
    punch_nat64_prefix p = {.bits = (uint8_t)(bits > 96 || bits == 0 ? 255 : bits)};
    if (!bad) {
        memcpy(p.ip, bytes, sizeof(p.ip));
        bad = punch_nat64_prefix_check(&p);
    }
    if (bad) {
        snprintf(why, why_len, "%s", bad);
        return PUNCH_ERR_INVAL;
    }
    *out = p;
    return 0;
}
