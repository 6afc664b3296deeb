/* SPDX-License-Identifier: MIT */
/* libFuzzer target: punch --turn's URL (src/core/turn_url.c). Invariants:
 * a parsed URL has a user name, a password, a host of printable
 * characters, a port and a transport; a refused one leaves nothing behind
 * in *url and gives a NUL-terminated reason. */
#include <stdint.h>
#include <string.h>

#include "core/turn_url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char text[1024];
    if (size >= sizeof(text))
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    punch_turn_url u;
    char why[96];
    memset(why, 'x', sizeof(why));
    if (punch_turn_url_parse(text, &u, why, sizeof(why)) == 0) {
        if (!u.username[0] || !u.password[0] || !u.host[0] || u.port == 0 ||
            u.transport > PUNCH_TURN_TLS)
            __builtin_trap();
        for (const char *h = u.host; *h; h++)
            if (*h <= ' ' || *h > '~')
                __builtin_trap();
        return 0;
    }
    if (!memchr(why, '\0', sizeof(why)) || u.password[0] || u.host[0] || u.port)
        __builtin_trap();
    return 0;
}
