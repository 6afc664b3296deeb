/* SPDX-License-Identifier: MIT */
/* STUN and ChannelData on a stream: see turn_stream.h. */
#include "wire/turn_stream.h"

#include "wire/bytes.h"

#define STUN_HEADER    20 /* RFC 8489 §5 */
#define CHANNEL_HEADER 4  /* RFC 8656 §12.4 */
#define LENGTH_KNOWN   4  /* both say their length in bytes 2 and 3 */

_Static_assert(PUNCH_TURN_STREAM_MAX <= PUNCH_FRAME_READER_BUF,
               "the frame reader's buffer holds the longest TURN message kept");

static size_t pad4(size_t n)
{
    return (n + 3) & ~(size_t)3;
}

/* The message's span from its first 4 bytes; false when they are no TURN
 * message's. */
static bool turn_measure(const uint8_t *h, punch_frame_span *span)
{
    size_t len = punch_get16(h + 2);
    span->off = 0;
    switch (h[0] >> 6) {
    case 0: /* STUN: the length leaves out the header and is a multiple of 4 */
        span->on_stream = span->len = STUN_HEADER + len;
        return len % 4 == 0;
    case 1: /* ChannelData: channels 0x4000-0x4FFF (RFC 8656 §12) */
        span->len = CHANNEL_HEADER + len;
        span->on_stream = CHANNEL_HEADER + pad4(len);
        return (h[0] & 0xF0) == 0x40;
    default:
        return false;
    }
}

static const punch_frame_format turn_format = {
    .header = LENGTH_KNOWN,
    .keep = PUNCH_TURN_STREAM_MAX,
    .measure = turn_measure,
};

void punch_turn_stream_reader_init(punch_frame_reader *r)
{
    punch_frame_reader_init_format(r, &turn_format);
}

size_t punch_turn_stream_padding(const uint8_t *msg, size_t len)
{
    if (len < CHANNEL_HEADER || (msg[0] & 0xF0) != 0x40)
        return 0;
    return pad4(len) - len;
}
