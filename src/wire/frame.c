/* SPDX-License-Identifier: MIT */
/* Datagrams over a byte stream: see frame.h. */
#include "wire/frame.h"

#include <string.h>

#include "punch/punch.h"
#include "wire/bytes.h"

void punch_frame_reader_init(punch_frame_reader *r)
{
    r->have = 0;
    r->broken = false;
}

int punch_frame_read(punch_frame_reader *r, const uint8_t *in, size_t len, size_t *used,
                     const uint8_t **frame, size_t *frame_len)
{
    *used = 0;
    if (r->broken)
        return PUNCH_ERR_MALFORMED;
    if (r->have >= PUNCH_FRAME_HEADER &&
        r->have == PUNCH_FRAME_HEADER + (size_t)punch_get16(r->buf))
        r->have = 0; /* the frame returned last time */
    while (*used < len) {
        size_t want = PUNCH_FRAME_HEADER;
        if (r->have >= PUNCH_FRAME_HEADER)
            want += punch_get16(r->buf);
        size_t take = want - r->have;
        if (take > len - *used)
            take = len - *used;
        memcpy(r->buf + r->have, in + *used, take);
        r->have += take;
        *used += take;
        if (r->have == PUNCH_FRAME_HEADER && want == PUNCH_FRAME_HEADER) {
            size_t n = punch_get16(r->buf);
            if (n == 0 || n > PUNCH_FRAME_MAX) {
                r->broken = true;
                return PUNCH_ERR_MALFORMED;
            }
            continue;
        }
        if (r->have == want) {
            *frame = r->buf + PUNCH_FRAME_HEADER;
            *frame_len = want - PUNCH_FRAME_HEADER;
            return 1;
        }
    }
    return 0;
}

bool punch_frame_reader_partial(const punch_frame_reader *r)
{
    if (r->have == 0)
        return false;
    /* A frame handed out and not yet cleared is complete, not partial. */
    return !(r->have >= PUNCH_FRAME_HEADER &&
             r->have == PUNCH_FRAME_HEADER + (size_t)punch_get16(r->buf));
}

int punch_frame_header(size_t len, uint8_t out[PUNCH_FRAME_HEADER])
{
    if (len == 0 || len > PUNCH_FRAME_MAX)
        return PUNCH_ERR_INVAL;
    punch_put16(out, (uint16_t)len);
    return 0;
}
