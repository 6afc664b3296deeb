/* SPDX-License-Identifier: MIT */
/* Batched UDP (src/io/net.c) on loopback: a run of datagrams sent as one
 * GSO buffer comes back one by one, each whole and in order, whether or not
 * the kernel joined them on the way (UDP GRO), with its source address; a
 * lone datagram of another size keeps its own length. Every other one is
 * queued by reference (punch_udp_queue_ref), in the same GSO runs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <poll.h>
#include <unistd.h>

#include <cmocka.h>

#include "io/net.h"

#define RUN 120 /* two GSO sends: more than one receive takes unless GRO joins them */
#define SIZE 1184

static void runs_come_back_one_by_one(void **state)
{
    (void)state;
    punch_addr lo, rx_addr, tx_addr;
    assert_int_equal(punch_addr_parse("127.0.0.1:0", 0, &lo), 0);
    int rx = punch_udp_bind(&lo, &rx_addr), tx = punch_udp_bind(&lo, &tx_addr);
    assert_true(rx >= 0 && tx >= 0);
    punch_udp_batch *out = punch_udp_batch_new(), *in = punch_udp_batch_new();
    assert_non_null(out);
    assert_non_null(in);
    /* RUN equal datagrams (GSO sends), then one shorter, then one longer
     * (which starts a send of its own). */
    for (unsigned i = 0; i < RUN + 2; i++) {
        size_t len = i < RUN ? SIZE : i == RUN ? 100 : 1500;
        if (i % 2) { /* by reference, as the driver and punchd send */
            static uint8_t own[RUN + 2][1500];
            memset(own[i], (int)i, len);
            if (!punch_udp_queue_ref(out, &rx_addr, NULL, 0, own[i], len)) {
                assert_int_equal(punch_udp_send(tx, out), 0);
                assert_true(punch_udp_queue_ref(out, &rx_addr, NULL, 0, own[i], len));
            }
            continue;
        }
        uint8_t *slot = punch_udp_queue(out, &rx_addr, NULL, 0);
        if (!slot) { /* the batch holds PUNCH_UDP_BATCH: send those first */
            assert_int_equal(punch_udp_send(tx, out), 0);
            slot = punch_udp_queue(out, &rx_addr, NULL, 0);
        }
        assert_non_null(slot);
        memset(slot, (int)i, len);
        punch_udp_queue_len(out, len);
    }
    assert_int_equal(punch_udp_send(tx, out), 0);

    unsigned got = 0, most = 0;
    struct pollfd pfd = {.fd = rx, .events = POLLIN};
    while (got < RUN + 2 && poll(&pfd, 1, 2000) == 1) {
        int n = punch_udp_recv(rx, in, &rx_addr);
        assert_true(n >= 0);
        most = (unsigned)n > most ? (unsigned)n : most;
        for (unsigned i = 0; i < (unsigned)n; i++, got++) {
            const uint8_t *data;
            size_t len;
            punch_addr src, dst;
            punch_udp_received(in, i, &data, &len, &src, &dst);
            size_t want = got < RUN ? SIZE : got == RUN ? 100 : 1500;
            assert_int_equal(len, want);
            for (size_t k = 0; k < len; k++)
                assert_int_equal(data[k], (uint8_t)got);
            assert_true(punch_addr_equal(&src, &tx_addr));
        }
    }
    assert_int_equal(got, RUN + 2);
    /* This kernel (5.0 or later) joins the run on loopback: more datagrams
     * in one receive than it has message slots shows the splitting ran. */
    assert_true(most > PUNCH_UDP_BATCH);
    punch_udp_batch_free(out);
    punch_udp_batch_free(in);
    close(rx);
    close(tx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(runs_come_back_one_by_one),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
