/* SPDX-License-Identifier: MIT */
/*
 * When the TURN link (src/driver/turn_link.c) connects again after a
 * failure: 1 s after it, each next try twice as late, never more than
 * 30 s apart; PUNCH_TURN_LINK_TRIES of them in about 8 minutes. The
 * reconnection itself runs against coturn in interop.turn_relay.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "driver/turn_link.h"

static void retry_schedule(void **state)
{
    (void)state;
    static const uint64_t want[] = {1000, 2000, 4000, 8000, 16000, 30000, 30000};
    for (unsigned i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        assert_int_equal(punch_turn_link_retry_ms(i + 1), want[i]);
    assert_int_equal(punch_turn_link_retry_ms(0), 1000);
    assert_int_equal(punch_turn_link_retry_ms(UINT32_MAX), 30000);
    uint64_t total = 0;
    for (unsigned i = 1; i <= PUNCH_TURN_LINK_TRIES; i++)
        total += punch_turn_link_retry_ms(i);
    assert_int_equal(total, 31000 + 15 * 30000); /* 1+2+4+8+16, then 30 s each */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(retry_schedule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
