/* SPDX-License-Identifier: MIT */
/* libFuzzer target: a token kept between runs (src/crypto/token_line.c).
 * Whatever the input: a line that parses formats to a line that parses
 * back to the same token, server key and NAT (what punch writes, punch
 * reads), and that line is at most PUNCH_TOKEN_LINE_MAX - 1 bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/token_line.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    punch_server_token t, back;
    if (punch_token_line_parse((const char *)data, size, &t) != 0)
        return 0;
    if (t.nat > 3)
        __builtin_trap();
    char line[PUNCH_TOKEN_LINE_MAX];
    size_t len = punch_token_line_format(&t, line);
    if (len >= PUNCH_TOKEN_LINE_MAX || strlen(line) != len ||
        punch_token_line_parse(line, len, &back) != 0 || memcmp(&t, &back, sizeof(t)) != 0)
        __builtin_trap();
    return 0;
}
