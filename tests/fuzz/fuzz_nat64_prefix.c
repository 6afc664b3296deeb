/* SPDX-License-Identifier: MIT */
/* libFuzzer target: punch --nat64-prefix's parser (src/io/nat64_prefix.c)
 * and the RFC 6052 address format under what it takes
 * (src/wire/nat64_addr.c). Invariants: a taken prefix passes
 * punch_nat64_prefix_check, has a length RFC 6052 §2.2 allows and its
 * u-octet zero; an IPv4 address synthesized under it is recognised, has
 * its u-octet zero and gives itself back; a refused text leaves *out
 * alone and gives a NUL-terminated reason. */
#include <stdint.h>
#include <string.h>

#include "io/net.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void round_trip(const punch_nat64_prefix *p, const uint8_t *data, size_t size)
{
    punch_addr four = {.family = PUNCH_AF_INET, .port = 9}, six, back;
    memcpy(four.ip, data, size < 4 ? size : 4);
    if (punch_nat64_synthesize(p, &four, &six) != 0 || six.ip[8] != 0 ||
        !punch_nat64_is_synthesized(p, &six) || punch_nat64_extract(p, &six, &back) != 0 ||
        !punch_addr_equal(&back, &four))
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char text[256];
    if (size >= sizeof(text))
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    punch_nat64_prefix p = {.bits = 1};
    char why[96];
    memset(why, 'x', sizeof(why));
    if (punch_nat64_prefix_parse(text, &p, why, sizeof(why)) == 0) {
        if (punch_nat64_prefix_check(&p) || p.bits % 8 || p.bits < 32 || p.bits > 96 ||
            (p.bits > 64 && p.bits < 96) || p.ip[8] != 0)
            __builtin_trap();
        round_trip(&p, data, size);
        return 0;
    }
    if (!memchr(why, '\0', sizeof(why)) || p.bits != 1)
        __builtin_trap();
    return 0;
}
