/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the stream deframer (src/wire/frame.c) reading punch's
 * frames. The first byte of the input picks how the rest is cut into reads;
 * whatever the cut, the frames that come out must be those a one-piece read
 * gives (fuzz_reader.h), each 1 to PUNCH_FRAME_MAX bytes and the input's
 * own bytes just before the read point, and every byte must be taken until
 * a bad length. */
#include <stdint.h>
#include <string.h>

#include "fuzz_reader.h"
#include "wire/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_frame(const uint8_t *f, size_t len, const uint8_t *in, size_t end)
{
    if (len == 0 || len > PUNCH_FRAME_MAX || memcmp(f, in + end - len, len) != 0)
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Every frame takes 3 bytes or more: never READER_MAX_MSGS of them. */
    if (size < 1 || size > READER_MAX_MSGS * 3)
        return 0;
    size_t step = (size_t)data[0] % 17 + 1;
    reader_cuts_agree(punch_frame_reader_init, data + 1, size - 1, step, check_frame);
    return 0;
}
