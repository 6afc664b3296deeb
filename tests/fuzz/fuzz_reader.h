/* SPDX-License-Identifier: MIT */
/*
 * What the fuzz targets of the stream reader share (fuzz_frame,
 * fuzz_turn_stream: src/wire/frame.c in each of its formats): the input is
 * read once in one piece and once cut into pieces of step bytes; whatever
 * the cut, the same messages must come out at the same places, with the
 * same end (0 or PUNCH_ERR_MALFORMED), the same bytes taken and the same
 * messages passed over; every read takes all it is given until a message
 * is complete; every byte is taken until the stream breaks; each message
 * passes the target's own check.
 */
#ifndef PUNCH_FUZZ_READER_H
#define PUNCH_FUZZ_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "punch/punch.h"
#include "wire/frame.h"

#define READER_MAX_MSGS 4096

/* Trap unless msg (len bytes, handed out when the read reached in[end])
 * is what the stream held. */
typedef void (*reader_check_fn)(const uint8_t *msg, size_t len, const uint8_t *in, size_t end);

typedef struct reader_run {
    size_t n;
    size_t end[READER_MAX_MSGS], len[READER_MAX_MSGS]; /* where each read ended, its length */
    int rc;                                            /* 0, or PUNCH_ERR_MALFORMED */
    size_t taken;
    uint64_t skipped;
} reader_run;

/* Hand in[0..piece) to the reader, recording what comes out; false once
 * the stream broke or READER_MAX_MSGS came out. */
static inline bool reader_feed(punch_frame_reader *r, const uint8_t *in, size_t at, size_t piece,
                               reader_check_fn check, reader_run *res)
{
    size_t done = 0;
    while (done < piece) {
        const uint8_t *m;
        size_t used, mlen;
        int rc = punch_frame_read(r, in + at + done, piece - done, &used, &m, &mlen);
        if (used > piece - done)
            __builtin_trap();
        done += used;
        res->taken += used;
        if (rc < 0) {
            if (rc != PUNCH_ERR_MALFORMED)
                __builtin_trap();
            res->rc = rc;
            return false;
        }
        if (rc == 0) {
            if (done != piece)
                __builtin_trap();
            break;
        }
        if (res->n == READER_MAX_MSGS)
            return false;
        check(m, mlen, in, at + done);
        res->end[res->n] = at + done;
        res->len[res->n++] = mlen;
    }
    return true;
}

static inline void reader_run_cut(void (*init)(punch_frame_reader *), const uint8_t *in,
                                  size_t size, size_t step, reader_check_fn check, reader_run *res)
{
    static punch_frame_reader r;
    init(&r);
    memset(res, 0, sizeof(*res));
    for (size_t off = 0; off < size; off += step) {
        size_t piece = size - off < step ? size - off : step;
        if (!reader_feed(&r, in, off, piece, check, res))
            break;
    }
    res->skipped = r.skipped;
}

/* Read in[0..size) whole and in pieces of step bytes: trap when they differ. */
static inline void reader_cuts_agree(void (*init)(punch_frame_reader *), const uint8_t *in,
                                     size_t size, size_t step, reader_check_fn check)
{
    static reader_run whole, cut;
    reader_run_cut(init, in, size, size, check, &whole);
    reader_run_cut(init, in, size, step, check, &cut);
    if (whole.n != cut.n || whole.rc != cut.rc || whole.taken != cut.taken ||
        whole.skipped != cut.skipped ||
        memcmp(whole.end, cut.end, whole.n * sizeof(size_t)) != 0 ||
        memcmp(whole.len, cut.len, whole.n * sizeof(size_t)) != 0)
        __builtin_trap();
    if (whole.rc == 0 && whole.n < READER_MAX_MSGS && whole.taken != size)
        __builtin_trap();
}

#endif
