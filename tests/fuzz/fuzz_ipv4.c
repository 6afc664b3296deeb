/* SPDX-License-Identifier: MIT */
/* libFuzzer target: IPv4 parsing and every rewrite punch-nat does. */
#include <stdint.h>
#include <string.h>

#include "wire/ipv4.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t buf[2048], rst[64];
    if (size > sizeof(buf))
        return 0;
    memcpy(buf, data, size);
    punch_ipv4 p, inner;
    if (punch_ipv4_parse(buf, size, &p) != 0)
        return 0;
    punch_addr a = {.family = PUNCH_AF_INET, .port = 40001, .ip = {203, 0, 113, 7}};
    punch_addr b = {.family = PUNCH_AF_INET, .port = 5000, .ip = {10, 0, 1, 2}};
    punch_ipv4_tcp_rst(&p, rst, sizeof(rst));
    if (punch_ipv4_icmp_inner(&p, &inner) == 0) {
        punch_ipv4_set_inner_src(&p, &inner, &b);
        punch_ipv4_set_inner_dst(&p, &inner, &a);
    }
    punch_ipv4_set_src(&p, &a);
    punch_ipv4_set_dst(&p, &b);
    punch_ipv4_add_ttl(&p, 1);
    /* What was rewritten must parse again. */
    punch_ipv4 again;
    if (punch_ipv4_parse(buf, size, &again) != 0)
        __builtin_trap();
    return 0;
}
