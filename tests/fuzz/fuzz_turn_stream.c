/* SPDX-License-Identifier: MIT */
/* libFuzzer target: STUN and ChannelData on a stream to a TURN server
 * (src/wire/turn_stream.c's format of the reader in src/wire/frame.c). The
 * first byte of the input picks how the rest is cut into reads; whatever
 * the cut, the same messages come out as from a one-piece read
 * (fuzz_reader.h), each at most PUNCH_TURN_STREAM_MAX bytes and starting
 * with STUN's or ChannelData's bits, with the length its header says, the
 * input's own bytes before the read point and their padding, and every
 * byte is taken until the stream breaks. */
#include <stdint.h>
#include <string.h>

#include "fuzz_reader.h"
#include "wire/turn_stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_msg(const uint8_t *m, size_t len, const uint8_t *in, size_t end)
{
    if (len < 4 || len > PUNCH_TURN_STREAM_MAX)
        __builtin_trap();
    size_t said = (size_t)m[2] << 8 | m[3];
    if (m[0] >> 6 == 0 ? len != 20 + said : (m[0] & 0xF0) != 0x40 || len != 4 + said)
        __builtin_trap();
    size_t on_stream = len + punch_turn_stream_padding(m, len);
    if (on_stream > end || memcmp(m, in + end - on_stream, len) != 0)
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = (size_t)data[0] + 1;
    reader_cuts_agree(punch_turn_stream_reader_init, data + 1, size - 1, step, check_msg);
    return 0;
}
