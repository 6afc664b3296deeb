/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the stream deframer (src/wire/frame.c). The first byte
 * of the input picks how the rest is cut into reads; whatever the cut, the
 * frames that come out must be those a one-piece read gives, each 1 to
 * PUNCH_FRAME_MAX bytes, and every byte must be taken until a bad length. */
#include <stdint.h>
#include <string.h>

#include "punch/punch.h"
#include "wire/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_FRAMES 4096

typedef struct result {
    size_t n;
    size_t off[MAX_FRAMES], len[MAX_FRAMES]; /* where each frame sits in the input */
    int end;                                 /* 0, or PUNCH_ERR_MALFORMED */
    size_t taken;
} result;

static void run(const uint8_t *in, size_t size, size_t step, result *res)
{
    static punch_frame_reader r;
    punch_frame_reader_init(&r);
    memset(res, 0, sizeof(*res));
    size_t off = 0;
    while (off < size && res->end == 0) {
        size_t piece = size - off < step ? size - off : step, done = 0;
        while (done < piece) {
            const uint8_t *f;
            size_t used, flen;
            int rc = punch_frame_read(&r, in + off + done, piece - done, &used, &f, &flen);
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
            if (flen == 0 || flen > PUNCH_FRAME_MAX || res->n == MAX_FRAMES)
                __builtin_trap();
            /* The frame's bytes are the input's, just before the read point. */
            size_t at = off + done - flen;
            if (memcmp(f, in + at, flen) != 0)
                __builtin_trap();
            res->off[res->n] = at;
            res->len[res->n++] = flen;
        }
        off += piece;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static result whole, cut;
    if (size < 1 || size > MAX_FRAMES * 3)
        return 0;
    size_t step = (size_t)data[0] % 17 + 1;
    run(data + 1, size - 1, size, &whole);
    run(data + 1, size - 1, step, &cut);
    if (whole.n != cut.n || whole.end != cut.end || whole.taken != cut.taken ||
        memcmp(whole.off, cut.off, whole.n * sizeof(size_t)) != 0 ||
        memcmp(whole.len, cut.len, whole.n * sizeof(size_t)) != 0)
        __builtin_trap();
    return 0;
}
