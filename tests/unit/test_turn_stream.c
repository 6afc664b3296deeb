/* SPDX-License-Identifier: MIT */
/*
 * STUN and ChannelData on a stream to a TURN server (src/wire/turn_stream.c,
 * RFC 8656 §12.5): messages cut anywhere come out whole, ChannelData
 * without its padding; a message longer than the reader keeps is passed
 * over and counted; a first byte of neither kind, or a STUN length not a
 * multiple of 4, breaks the stream; the padding a sender adds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "punch/punch.h"
#include "wire/stun.h"
#include "wire/turn_stream.h"

/* A STUN Binding request with one 8-byte attribute: 28 bytes. */
static size_t stun_msg(uint8_t *buf)
{
    static const uint8_t m[] = {0x00, 0x01, 0x00, 0x08, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6,
                                7, 8, 9, 10, 11, 12, 0x80, 0x22, 0x00, 0x04, 'p', 'u', 'n', 'c'};
    memcpy(buf, m, sizeof(m));
    return sizeof(m);
}

/* ChannelData on channel 0x4001 with n bytes of data, padded: its length on the stream. */
static size_t channel_msg(uint8_t *buf, size_t n)
{
    size_t len;
    uint8_t data[64];
    for (size_t i = 0; i < n; i++)
        data[i] = (uint8_t)(0xA0 + i);
    assert_int_equal(punch_stun_channel_encode(buf, 128, 0x4001, data, n, true, &len), 0);
    return len;
}

/* Feed in, step bytes at a time; the messages' lengths into lens. */
static int read_all(punch_frame_reader *r, const uint8_t *in, size_t len, size_t step,
                    size_t *lens, size_t max)
{
    size_t off = 0, n = 0;
    while (off < len) {
        size_t piece = len - off < step ? len - off : step, done = 0;
        while (done < piece) {
            const uint8_t *msg;
            size_t used, mlen;
            int rc = punch_frame_read(r, in + off + done, piece - done, &used, &msg, &mlen);
            done += used;
            if (rc < 0)
                return rc;
            if (rc == 0)
                break;
            assert_true(n < max);
            lens[n++] = mlen;
        }
        off += piece;
    }
    return (int)n;
}

static void test_cut_anywhere(void **state)
{
    (void)state;
    uint8_t in[256];
    size_t len = stun_msg(in);
    size_t c1 = channel_msg(in + len, 5); /* 4 + 5, padded to 12 */
    assert_int_equal(c1, 12);
    len += c1;
    len += channel_msg(in + len, 8); /* no padding needed */
    len += stun_msg(in + len);
    for (size_t step = 1; step <= len; step++) {
        punch_frame_reader r;
        punch_turn_stream_reader_init(&r);
        size_t lens[8];
        assert_int_equal(read_all(&r, in, len, step, lens, 8), 4);
        assert_int_equal(lens[0], 28);
        assert_int_equal(lens[1], 9); /* without its padding */
        assert_int_equal(lens[2], 12);
        assert_int_equal(lens[3], 28);
        assert_false(punch_frame_reader_partial(&r));
    }
    /* The bytes handed out are the message's. */
    punch_frame_reader r;
    punch_turn_stream_reader_init(&r);
    const uint8_t *msg;
    size_t used, mlen;
    assert_int_equal(punch_frame_read(&r, in + 28, len - 28, &used, &msg, &mlen), 1);
    assert_int_equal(used, 12);
    assert_memory_equal(msg, in + 28, 9);
    uint16_t ch;
    const uint8_t *data;
    size_t dlen;
    assert_int_equal(punch_stun_channel_decode(msg, mlen, &ch, &data, &dlen), 0);
    assert_int_equal(ch, 0x4001);
    assert_int_equal(dlen, 5);
}

static void test_partial(void **state)
{
    (void)state;
    uint8_t in[64];
    size_t len = stun_msg(in);
    punch_frame_reader r;
    punch_turn_stream_reader_init(&r);
    const uint8_t *msg;
    size_t used, mlen;
    assert_int_equal(punch_frame_read(&r, in, len - 1, &used, &msg, &mlen), 0);
    assert_int_equal(used, len - 1);
    assert_true(punch_frame_reader_partial(&r));
    assert_int_equal(punch_frame_read(&r, in + len - 1, 1, &used, &msg, &mlen), 1);
    assert_false(punch_frame_reader_partial(&r));
}

/* A message longer than PUNCH_TURN_STREAM_MAX is passed over whole; the next comes out. */
static void test_too_long(void **state)
{
    (void)state;
    static uint8_t in[8000];
    size_t big = 6000;
    in[0] = 0x40;
    in[1] = 0x02;
    in[2] = (uint8_t)((big - 4) >> 8);
    in[3] = (uint8_t)(big - 4);
    size_t len = big + stun_msg(in + big);
    for (size_t step = 1; step <= len; step += 997) {
        punch_frame_reader r;
        punch_turn_stream_reader_init(&r);
        size_t lens[4];
        assert_int_equal(read_all(&r, in, len, step, lens, 4), 1);
        assert_int_equal(lens[0], 28);
        assert_int_equal(r.skipped, 1);
        assert_false(punch_frame_reader_partial(&r));
    }
}

static void broken(const uint8_t *in, size_t len)
{
    punch_frame_reader r;
    punch_turn_stream_reader_init(&r);
    const uint8_t *msg;
    size_t used, mlen;
    assert_int_equal(punch_frame_read(&r, in, len, &used, &msg, &mlen), PUNCH_ERR_MALFORMED);
    assert_int_equal(punch_frame_read(&r, in, len, &used, &msg, &mlen), PUNCH_ERR_MALFORMED);
    assert_int_equal(used, 0);
}

static void test_broken(void **state)
{
    (void)state;
    broken((const uint8_t[]){0x80, 0x01, 0x00, 0x00}, 4);         /* RTP-like: 10 */
    broken((const uint8_t[]){0xC0, 0x01, 0x00, 0x00}, 4);
    broken((const uint8_t[]){0x50, 0x00, 0x00, 0x04, 1, 2, 3, 4}, 8); /* reserved channel */
    broken((const uint8_t[]){0x00, 0x01, 0x00, 0x05}, 4);         /* STUN length 5 */
    broken((const uint8_t[]){0x70, 0x01, 0x00, 0x00}, 4);         /* a punch message */
}

static void test_padding(void **state)
{
    (void)state;
    uint8_t buf[128];
    for (size_t n = 0; n < 9; n++) {
        size_t len;
        uint8_t data[8] = {0};
        assert_int_equal(punch_stun_channel_encode(buf, sizeof(buf), 0x4000, data, n, false, &len), 0);
        assert_int_equal((len + punch_turn_stream_padding(buf, len)) % 4, 0);
        assert_true(punch_turn_stream_padding(buf, len) < 4);
    }
    size_t len = stun_msg(buf);
    assert_int_equal(punch_turn_stream_padding(buf, len), 0);
    assert_int_equal(punch_turn_stream_padding(buf, 2), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cut_anywhere),
        cmocka_unit_test(test_partial),
        cmocka_unit_test(test_too_long),
        cmocka_unit_test(test_broken),
        cmocka_unit_test(test_padding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
