/* SPDX-License-Identifier: MIT */
/* The CRC32c that stream packets carry (src/stream/stream.c put_checksum):
 * the same value usrsctp's own code gives, on the RFC 3720 test vectors and
 * on every length and alignment of random data, at its place in a packet. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <usrsctp.h>

#include "stream/stream.h"

/* RFC 3720 B.4: 32 bytes of zeros, of ones, ascending; as stored in the
 * header, which is little-endian in memory on every machine we build for. */
static void rfc3720_vectors(void **state)
{
    (void)state;
    uint8_t buf[32];
    memset(buf, 0, sizeof(buf));
    assert_int_equal(punch_sctp_crc32c(buf, 32), 0x8a9136aa);
    memset(buf, 0xff, sizeof(buf));
    assert_int_equal(punch_sctp_crc32c(buf, 32), 0x62a8ab43);
    for (int i = 0; i < 32; i++)
        buf[i] = (uint8_t)i;
    assert_int_equal(punch_sctp_crc32c(buf, 32), 0x46dd794e);
}

static void same_as_usrsctp(void **state)
{
    (void)state;
    static uint8_t buf[1300];
    srand(7);
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)rand();
    for (size_t start = 0; start < 8; start++)
        for (size_t len = 0; len + start <= sizeof(buf); len += 1 + len / 16)
            assert_int_equal(punch_sctp_crc32c(buf + start, len), usrsctp_crc32c(buf + start, len));
}

/* The checksum lands in the common header where a peer's usrsctp, checking
 * it, finds it right. */
static void packet_checksum(void **state)
{
    (void)state;
    uint8_t pkt[1151], copy[1151];
    srand(9);
    for (size_t i = 0; i < sizeof(pkt); i++)
        pkt[i] = (uint8_t)rand();
    punch_sctp_put_checksum(pkt, sizeof(pkt));
    memcpy(copy, pkt, sizeof(pkt));
    memset(copy + 8, 0, 4);
    uint32_t want = usrsctp_crc32c(copy, sizeof(copy)), got;
    memcpy(&got, pkt + 8, 4);
    assert_int_equal(got, want);
    assert_memory_equal(pkt, copy, 8);
    assert_memory_equal(pkt + 12, copy + 12, sizeof(pkt) - 12);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rfc3720_vectors),
        cmocka_unit_test(same_as_usrsctp),
        cmocka_unit_test(packet_checksum),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
