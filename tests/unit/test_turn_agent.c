/* SPDX-License-Identifier: MIT */
/*
 * The agent's TURN allocation (src/core/turn_agent.c, punch --turn) in
 * virtual time: with cfg.turn_server the first Allocate leaves the main
 * socket for the TURN server beside the registration; the TURN server's
 * datagrams go to the TURN client, not to NAT discovery; a server that
 * never answers ends, after RFC 8489's retransmissions, in one ATTEMPT
 * event of technique turn (peer -1, kind relay, naming the server); bad
 * settings are refused. The success path runs against real coturn in
 * interop.turn_relay.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "wire/stun.h"

static void counting_random(void *ctx, uint8_t *buf, size_t len)
{
    uint8_t *n = ctx;
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(++*n * 37u);
}

static const punch_addr SERVER = {.family = PUNCH_AF_INET, .ip = {192, 0, 2, 1}, .port = 7777};
static const punch_addr TURN = {.family = PUNCH_AF_INET, .ip = {192, 0, 2, 9}, .port = 3478};

static uint8_t rnd;

static punch_agent_cfg turn_cfg(void)
{
    punch_agent_cfg c = {.server = SERVER, .turn_server = TURN, .turn_username = "alice",
                         .turn_password = "secret", .random = counting_random,
                         .random_ctx = &rnd};
    memset(c.secret_key, 7, sizeof(c.secret_key));
    return c;
}

/* Take what the agent sends: how many Allocate requests went to TURN, and
 * that nothing else did. */
static int allocates_sent(punch_agent *a)
{
    uint8_t buf[2048], ttl;
    size_t len;
    punch_addr dst;
    int n = 0;
    while (punch_agent_poll_transmit(a, &dst, &ttl, buf, sizeof(buf), &len) == 1) {
        if (!punch_addr_equal(&dst, &TURN))
            continue;
        punch_stun_msg m;
        assert_int_equal(punch_stun_decode(&m, buf, len), 0);
        assert_int_equal(m.cls, PUNCH_STUN_REQUEST);
        assert_int_equal(m.method, PUNCH_STUN_ALLOCATE);
        n++;
    }
    return n;
}

static void allocate_goes_to_the_turn_server(void **state)
{
    (void)state;
    punch_agent_cfg c = turn_cfg();
    punch_agent *a;
    assert_int_equal(punch_agent_new(&a, &c, 0), 0);
    assert_int_equal(allocates_sent(a), 1);
    /* Junk from the TURN server (a ChannelData header, a short STUN) is
     * the TURN client's to drop; nothing is told. */
    static const uint8_t junk[] = {0x40, 0x00, 0x00, 0x04, 1, 2, 3, 4};
    punch_agent_stats st0, st1;
    punch_agent_stats_get(a, &st0);
    assert_int_equal(punch_agent_handle_datagram(a, 1, &TURN, junk, sizeof(junk)), 0);
    punch_agent_stats_get(a, &st1);
    punch_event ev;
    while (punch_agent_poll_event(a, &ev) == 1)
        assert_int_not_equal(ev.kind, PUNCH_EVENT_TURN);
    assert_int_equal(st1.received, st0.received + 1);
    assert_int_equal(st1.dropped, st0.dropped + 1);
    punch_agent_free(a);
}

static void silent_server_told_once(void **state)
{
    (void)state;
    punch_agent_cfg c = turn_cfg();
    punch_agent *a;
    assert_int_equal(punch_agent_new(&a, &c, 0), 0);
    int sent = allocates_sent(a), told = 0;
    punch_event ev;
    for (uint64_t now = 0; now < 120000;) {
        now = punch_agent_next_timeout(a);
        assert_true(now != UINT64_MAX);
        punch_agent_handle_timeout(a, now);
        sent += allocates_sent(a);
        while (punch_agent_poll_event(a, &ev) == 1) {
            if (ev.kind != PUNCH_EVENT_ATTEMPT || ev.attempt.technique != PUNCH_TECH_TURN)
                continue;
            told++;
            assert_int_equal(ev.peer, -1);
            assert_int_equal(ev.attempt.kind, PUNCH_PATH_RELAY);
            assert_true(punch_addr_equal(&ev.attempt.remote, &TURN));
            assert_string_equal(ev.attempt.why, "no answer from the TURN server");
            /* RFC 8489 §6.2.1: Rc = 7 requests, the last waited on Rm*RTO (39.5 s). */
            assert_int_equal(now, 39500);
        }
    }
    assert_int_equal(sent, 7);
    assert_int_equal(told, 1);
    punch_agent_free(a);
}

/* The TURN ATTEMPT events waiting: how many, the latest's why in why. */
static int turn_attempts(punch_agent *a, char *why, size_t cap)
{
    punch_event ev;
    int n = 0;
    while (punch_agent_poll_event(a, &ev) == 1)
        if (ev.kind == PUNCH_EVENT_ATTEMPT && ev.attempt.technique == PUNCH_TECH_TURN) {
            n++;
            snprintf(why, cap, "%s", ev.attempt.why);
        }
    return n;
}

/* The stream to the TURN server drops and comes back (turn_link.c): the
 * loss told once, nothing sent meanwhile, then one new Allocate and an
 * ATTEMPT saying why; a connection up while allocating changes nothing. */
static void stream_back_allocates_anew(void **state)
{
    (void)state;
    punch_agent_cfg c = turn_cfg();
    c.turn_stream = true;
    punch_agent *a;
    char why[128] = "";
    assert_int_equal(punch_agent_new(&a, &c, 0), 0);
    assert_int_equal(allocates_sent(a), 1);
    punch_agent_turn_up(a, 10); /* the first connection: allocating already */
    assert_int_equal(allocates_sent(a), 0);
    assert_int_equal(turn_attempts(a, why, sizeof(why)), 0);

    punch_agent_turn_down(a, 20, "TLS: the server closed the connection");
    punch_agent_turn_down(a, 1020, "TLS: cannot connect: Connection refused");
    assert_int_equal(turn_attempts(a, why, sizeof(why)), 1);
    assert_string_equal(why, "TLS: the server closed the connection");
    assert_int_equal(allocates_sent(a), 0);

    punch_agent_turn_up(a, 3020);
    assert_int_equal(allocates_sent(a), 1);
    assert_int_equal(turn_attempts(a, why, sizeof(why)), 1);
    assert_string_equal(why, "the connection to the TURN server is back: allocating anew");
    punch_agent_turn_up(a, 3030);
    assert_int_equal(allocates_sent(a), 0);
    /* Lost again: told again. */
    punch_agent_turn_down(a, 4000, "TLS: the server closed the connection");
    assert_int_equal(turn_attempts(a, why, sizeof(why)), 1);
    punch_agent_free(a);
}

static void bad_settings_refused(void **state)
{
    (void)state;
    punch_agent *a = NULL;
    punch_agent_cfg c = turn_cfg();
    c.turn_password = NULL;
    assert_int_equal(punch_agent_new(&a, &c, 0), PUNCH_ERR_INVAL);
    c = turn_cfg();
    c.turn_username = "";
    assert_int_equal(punch_agent_new(&a, &c, 0), PUNCH_ERR_INVAL);
    c = turn_cfg();
    c.turn_server = (punch_addr){.family = PUNCH_AF_INET6, .ip = {0x20, 0x01}, .port = 3478};
    assert_int_equal(punch_agent_new(&a, &c, 0), PUNCH_ERR_INVAL); /* not the server's family */
    c = turn_cfg();
    c.turn_server.port = 0;
    assert_int_equal(punch_agent_new(&a, &c, 0), PUNCH_ERR_INVAL);
    assert_null(a);
    /* No TURN server: nothing goes there. */
    c = turn_cfg();
    c.turn_server = (punch_addr){0};
    assert_int_equal(punch_agent_new(&a, &c, 0), 0);
    assert_int_equal(allocates_sent(a), 0);
    punch_agent_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(allocate_goes_to_the_turn_server),
        cmocka_unit_test(silent_server_told_once),
        cmocka_unit_test(stream_back_allocates_anew),
        cmocka_unit_test(bad_settings_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
