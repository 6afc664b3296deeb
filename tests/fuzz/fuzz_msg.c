/* SPDX-License-Identifier: MIT */
/* libFuzzer target: punch's message decoder, and re-encoding what it took. */
#include <stdint.h>
#include <string.h>

#include "wire/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    punch_msg m, again;
    if (punch_msg_decode(data, size, &m) != 0)
        return 0;
    /* Whatever decodes must encode to the same bytes (one encoding only),
     * except HELLO's padding, which is free on input. */
    uint8_t buf[2048];
    size_t len;
    if (punch_msg_encode(&m, buf, sizeof(buf), &len) != 0 || len != size)
        __builtin_trap();
    if (m.type != PUNCH_MSG_HELLO) {
        size_t covered = punch_msg_has_mac(m.type) ? size - PUNCH_MSG_MAC_LEN : size;
        if (memcmp(buf, data, covered) != 0)
            __builtin_trap();
    }
    if (punch_msg_decode(buf, len, &again) != 0)
        __builtin_trap();
    return 0;
}
