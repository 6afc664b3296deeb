/* SPDX-License-Identifier: MIT */
/* Datagrams over a byte stream (src/wire/frame.c): frames come out whole
 * however the stream is cut, bad lengths are refused for good, and a
 * stream that ends inside a frame is seen as cut short. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "punch/punch.h"
#include "wire/frame.h"

/* A stream of three frames of 1, 300 and PUNCH_FRAME_MAX bytes. */
static size_t sample(uint8_t *buf, size_t lens[3])
{
    static const size_t sizes[3] = {1, 300, PUNCH_FRAME_MAX};
    size_t off = 0;
    for (int i = 0; i < 3; i++) {
        lens[i] = sizes[i];
        assert_int_equal(punch_frame_header(sizes[i], buf + off), 0);
        off += PUNCH_FRAME_HEADER;
        for (size_t k = 0; k < sizes[i]; k++)
            buf[off + k] = (uint8_t)(i * 31 + k);
        off += sizes[i];
    }
    return off;
}

/* Feed the stream in pieces of `step` bytes; every frame must come out
 * whole and in order. */
static void read_in_steps(size_t step)
{
    static uint8_t stream[3 * (PUNCH_FRAME_HEADER + PUNCH_FRAME_MAX)];
    size_t lens[3], total = sample(stream, lens), off = 0, got = 0, pos = 0;
    punch_frame_reader r;
    punch_frame_reader_init(&r);
    while (off < total) {
        size_t piece = total - off < step ? total - off : step, used_all = 0;
        while (used_all < piece) {
            const uint8_t *f;
            size_t used, flen;
            int rc = punch_frame_read(&r, stream + off + used_all, piece - used_all, &used, &f,
                                      &flen);
            assert_true(rc == 0 || rc == 1);
            used_all += used;
            if (rc == 1) {
                assert_true(got < 3);
                assert_int_equal(flen, lens[got]);
                pos += PUNCH_FRAME_HEADER;
                assert_memory_equal(f, stream + pos, flen);
                pos += flen;
                got++;
                assert_false(punch_frame_reader_partial(&r));
            } else {
                assert_int_equal(used_all, piece);
            }
        }
        off += piece;
    }
    assert_int_equal(got, 3);
    assert_false(punch_frame_reader_partial(&r));
}

static void whole_frames_however_cut(void **state)
{
    (void)state;
    static const size_t steps[] = {1, 2, 3, 7, 301, 2049, 2050, 100000};
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
        read_in_steps(steps[i]);
}

static void bad_lengths_break_the_reader(void **state)
{
    (void)state;
    static const uint8_t zero[] = {0, 0, 0x70}, over[] = {0x08, 0x01, 0x70},
                         huge[] = {0xff, 0xff};
    const uint8_t *cases[] = {zero, over, huge};
    size_t sizes[] = {sizeof(zero), sizeof(over), sizeof(huge)};
    for (int i = 0; i < 3; i++) {
        punch_frame_reader r;
        const uint8_t *f;
        size_t used, flen;
        punch_frame_reader_init(&r);
        assert_int_equal(punch_frame_read(&r, cases[i], sizes[i], &used, &f, &flen),
                         PUNCH_ERR_MALFORMED);
        assert_int_equal(used, 2); /* the header only */
        /* Broken for good: a stream out of step is never read again. */
        static const uint8_t good[] = {0, 1, 0x70};
        assert_int_equal(punch_frame_read(&r, good, sizeof(good), &used, &f, &flen),
                         PUNCH_ERR_MALFORMED);
        assert_int_equal(used, 0);
    }
    uint8_t hdr[PUNCH_FRAME_HEADER];
    assert_int_equal(punch_frame_header(0, hdr), PUNCH_ERR_INVAL);
    assert_int_equal(punch_frame_header(PUNCH_FRAME_MAX + 1, hdr), PUNCH_ERR_INVAL);
    assert_int_equal(punch_frame_header(PUNCH_FRAME_MAX, hdr), 0);
    assert_int_equal(hdr[0], PUNCH_FRAME_MAX >> 8);
    assert_int_equal(hdr[1], PUNCH_FRAME_MAX & 0xff);
}

static void a_cut_stream_is_partial(void **state)
{
    (void)state;
    static const uint8_t stream[] = {0, 4, 1, 2, 3, 4, 0, 3, 9};
    punch_frame_reader r;
    const uint8_t *f;
    size_t used, flen;
    punch_frame_reader_init(&r);
    assert_false(punch_frame_reader_partial(&r));
    assert_int_equal(punch_frame_read(&r, stream, 1, &used, &f, &flen), 0);
    assert_true(punch_frame_reader_partial(&r)); /* half a header */
    assert_int_equal(punch_frame_read(&r, stream + 1, sizeof(stream) - 1, &used, &f, &flen), 1);
    assert_int_equal(used, 5);
    assert_int_equal(flen, 4);
    assert_false(punch_frame_reader_partial(&r)); /* the frame just handed out is whole */
    assert_int_equal(punch_frame_read(&r, stream + 6, 3, &used, &f, &flen), 0);
    assert_int_equal(used, 3);
    assert_true(punch_frame_reader_partial(&r)); /* 1 of 3 bytes */
    /* Nothing to read is not an error. */
    assert_int_equal(punch_frame_read(&r, stream, 0, &used, &f, &flen), 0);
    assert_int_equal(used, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(whole_frames_however_cut),
        cmocka_unit_test(bad_lengths_break_the_reader),
        cmocka_unit_test(a_cut_stream_is_partial),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
