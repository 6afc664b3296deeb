/* SPDX-License-Identifier: MIT */
/* STUN and ChannelData on a stream: see turn_stream.h. */
#include "wire/turn_stream.h"

#include <string.h>

#include "punch/punch.h"
#include "wire/bytes.h"

#define STUN_HEADER    20 /* RFC 8489 §5 */
#define CHANNEL_HEADER 4  /* RFC 8656 §12.4 */
#define LENGTH_KNOWN   4  /* both say their length in bytes 2 and 3 */

void punch_turn_stream_reader_init(punch_turn_stream_reader *r)
{
    r->have = r->need = r->skip = 0;
    r->broken = false;
    r->skipped = 0;
}

static size_t pad4(size_t n)
{
    return (n + 3) & ~(size_t)3;
}

/* The message's length on the stream from its first 4 bytes, or 0 when
 * they are no TURN message's. */
static size_t stream_length(const uint8_t *h)
{
    size_t len = punch_get16(h + 2);
    switch (h[0] >> 6) {
    case 0: /* STUN: the length leaves out the header and is a multiple of 4 */
        return len % 4 == 0 ? STUN_HEADER + len : 0;
    case 1: /* ChannelData: channels 0x4000-0x4FFF (RFC 8656 §12) */
        return (h[0] & 0xF0) == 0x40 ? CHANNEL_HEADER + pad4(len) : 0;
    default:
        return 0;
    }
}

/* Take up to want - r->have bytes of in into buf. */
static size_t fill(punch_turn_stream_reader *r, size_t want, const uint8_t *in, size_t len)
{
    size_t n = want - r->have < len ? want - r->have : len;
    memcpy(r->buf + r->have, in, n);
    r->have += n;
    return n;
}

int punch_turn_stream_read(punch_turn_stream_reader *r, const uint8_t *in, size_t len,
                           size_t *used, const uint8_t **msg, size_t *msg_len)
{
    *used = 0;
    while (!r->broken && *used < len) {
        if (r->skip) {
            size_t n = r->skip < len - *used ? r->skip : len - *used;
            r->skip -= n;
            *used += n;
            continue;
        }
        if (!r->need) {
            *used += fill(r, LENGTH_KNOWN, in + *used, len - *used);
            if (r->have < LENGTH_KNOWN)
                return 0;
            if (!(r->need = stream_length(r->buf))) {
                r->broken = true;
                break;
            }
            if (r->need > sizeof(r->buf)) { /* too long to keep: passed over */
                r->skip = r->need - r->have;
                r->skipped++;
                r->have = r->need = 0;
                continue;
            }
        }
        *used += fill(r, r->need, in + *used, len - *used);
        if (r->have < r->need)
            return 0;
        *msg = r->buf;
        *msg_len = r->buf[0] >> 6 ? (size_t)CHANNEL_HEADER + punch_get16(r->buf + 2) : r->need;
        r->have = r->need = 0;
        return 1;
    }
    return r->broken ? PUNCH_ERR_MALFORMED : 0;
}

bool punch_turn_stream_partial(const punch_turn_stream_reader *r)
{
    return r->have > 0 || r->skip > 0;
}

size_t punch_turn_stream_padding(const uint8_t *msg, size_t len)
{
    if (len < CHANNEL_HEADER || (msg[0] & 0xF0) != 0x40)
        return 0;
    return pad4(len) - len;
}
