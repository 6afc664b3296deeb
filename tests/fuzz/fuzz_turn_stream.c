/* SPDX-License-Identifier: MIT */
/* libFuzzer target: STUN and ChannelData on a stream to a TURN server
 * (src/wire/turn_stream.c). The first byte of the input picks how the rest
 * is cut into reads; whatever the cut, the same messages come out as from
 * a one-piece read, each at most PUNCH_TURN_STREAM_MAX bytes and starting
 * with STUN's or ChannelData's bits, with the length its header says, and
 * every byte is taken until the stream breaks. */
#include <stdint.h>
#include <string.h>

#include "punch/punch.h"
#include "wire/turn_stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_MSGS 4096

typedef struct result {
    size_t n;
    size_t off[MAX_MSGS], len[MAX_MSGS];
    int end;
    size_t taken;
    uint64_t skipped;
} result;

static void check_msg(const uint8_t *m, size_t len)
{
    if (len < 4 || len > PUNCH_TURN_STREAM_MAX)
        __builtin_trap();
    size_t said = (size_t)m[2] << 8 | m[3];
    if (m[0] >> 6 == 0 ? len != 20 + said : (m[0] & 0xF0) != 0x40 || len != 4 + said)
        __builtin_trap();
}

static void run(const uint8_t *in, size_t size, size_t step, result *res)
{
    static punch_turn_stream_reader r;
    punch_turn_stream_reader_init(&r);
    memset(res, 0, sizeof(*res));
    size_t off = 0;
    while (off < size && res->end == 0) {
        size_t piece = size - off < step ? size - off : step, done = 0;
        while (done < piece) {
            const uint8_t *m;
            size_t used, mlen;
            int rc = punch_turn_stream_read(&r, in + off + done, piece - done, &used, &m, &mlen);
            if (used > piece - done)
                __builtin_trap();
            done += used;
            res->taken += used;
            if (rc < 0) {
                if (rc != PUNCH_ERR_MALFORMED)
                    __builtin_trap();
                res->end = rc;
                break;
            }
            if (rc == 0) {
                if (done != piece)
                    __builtin_trap();
                break;
            }
            if (res->n == MAX_MSGS)
                return;
            check_msg(m, mlen);
            res->off[res->n] = off + done;
            res->len[res->n++] = mlen;
        }
        off += piece;
    }
    res->skipped = r.skipped;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = (size_t)data[0] + 1;
    static result whole, cut;
    run(data + 1, size - 1, size, &whole);
    run(data + 1, size - 1, step, &cut);
    if (whole.n != cut.n || whole.end != cut.end || whole.taken != cut.taken ||
        whole.skipped != cut.skipped)
        __builtin_trap();
    for (size_t i = 0; i < whole.n; i++)
        if (whole.off[i] != cut.off[i] || whole.len[i] != cut.len[i])
            __builtin_trap();
    if (whole.end == 0 && whole.n < MAX_MSGS && whole.taken != size - 1)
        __builtin_trap();
    return 0;
}
