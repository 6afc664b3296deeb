/* SPDX-License-Identifier: MIT */
/* Messages cut from a byte stream: see frame.h. */
#include "wire/frame.h"

#include <string.h>

#include "punch/punch.h"
#include "wire/bytes.h"

/* punch's frames: a length of 1..PUNCH_FRAME_MAX, handed out without it. */
static bool frame_measure(const uint8_t *head, punch_frame_span *span)
{
    size_t n = punch_get16(head);
    if (n == 0 || n > PUNCH_FRAME_MAX)
        return false;
    span->on_stream = PUNCH_FRAME_HEADER + n;
    span->off = PUNCH_FRAME_HEADER;
    span->len = n;
    return true;
}

static const punch_frame_format frame_format = {
    .header = PUNCH_FRAME_HEADER,
    .keep = PUNCH_FRAME_READER_BUF,
    .measure = frame_measure,
};

void punch_frame_reader_init(punch_frame_reader *r)
{
    punch_frame_reader_init_format(r, &frame_format);
}

void punch_frame_reader_init_format(punch_frame_reader *r, const punch_frame_format *fmt)
{
    r->fmt = fmt;
    r->have = r->skip = 0;
    r->span.on_stream = 0;
    r->broken = false;
    r->skipped = 0;
}

/* Take up to want - r->have bytes of in into buf. */
static size_t fill(punch_frame_reader *r, size_t want, const uint8_t *in, size_t len)
{
    size_t n = want - r->have < len ? want - r->have : len;
    memcpy(r->buf + r->have, in, n);
    r->have += n;
    return n;
}

/* With the header in: measure it. False when the stream is broken. */
static bool start_message(punch_frame_reader *r)
{
    if (!r->fmt->measure(r->buf, &r->span)) {
        r->span.on_stream = 0;
        r->broken = true;
        return false;
    }
    /* Too long to keep (the buffer bounds any format's keep): passed over. */
    if (r->span.on_stream > r->fmt->keep || r->span.on_stream > sizeof(r->buf)) {
        r->skip = r->span.on_stream - r->have;
        r->skipped++;
        r->have = r->span.on_stream = 0;
    }
    return true;
}

int punch_frame_read(punch_frame_reader *r, const uint8_t *in, size_t len, size_t *used,
                     const uint8_t **msg, size_t *msg_len)
{
    *used = 0;
    while (!r->broken && *used < len) {
        if (r->skip) {
            size_t n = r->skip < len - *used ? r->skip : len - *used;
            r->skip -= n;
            *used += n;
            continue;
        }
        if (!r->span.on_stream) {
            *used += fill(r, r->fmt->header, in + *used, len - *used);
            if (r->have < r->fmt->header)
                return 0;
            if (!start_message(r))
                break;
            if (!r->span.on_stream)
                continue; /* passed over */
        }
        *used += fill(r, r->span.on_stream, in + *used, len - *used);
        if (r->have < r->span.on_stream)
            return 0;
        *msg = r->buf + r->span.off;
        *msg_len = r->span.len;
        r->have = r->span.on_stream = 0;
        return 1;
    }
    return r->broken ? PUNCH_ERR_MALFORMED : 0;
}

bool punch_frame_reader_partial(const punch_frame_reader *r)
{
    return r->have > 0 || r->skip > 0;
}

int punch_frame_header(size_t len, uint8_t out[PUNCH_FRAME_HEADER])
{
    if (len == 0 || len > PUNCH_FRAME_MAX)
        return PUNCH_ERR_INVAL;
    punch_put16(out, (uint16_t)len);
    return 0;
}
