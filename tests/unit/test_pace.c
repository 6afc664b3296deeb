/* SPDX-License-Identifier: MIT */
/* Pacing below punchd's relay rates (src/stream/pace.c), in virtual time:
 * a sender that floods as SCTP's slow start does, the pacer, and a model
 * of the relay's policer (src/server/limits.c: a token bucket as deep as
 * one second of its rate, full at the start, excess dropped). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "stream/pace.h"

#define RELAY_BYTES_PER_S (1024u * 1024) /* punchd's default per source */
#define RELAY_PACKETS_PER_S 4000u
#define SCTP_PACKET 1132                 /* a full one (SCTP_PATH_MTU) */

/* The relay's policer: bytes and packets, as rv_bucket_take counts them. */
typedef struct policer {
    uint64_t bytes_milli, packets_milli, last_ms;
    uint64_t passed_bytes, dropped;
} policer;

static policer policer_new(void)
{
    return (policer){.bytes_milli = (uint64_t)RELAY_BYTES_PER_S * 1000,
                     .packets_milli = (uint64_t)RELAY_PACKETS_PER_S * 1000};
}

static void policer_take(policer *p, uint64_t now, size_t sctp_len)
{
    uint64_t elapsed = now - p->last_ms, cap_b = (uint64_t)RELAY_BYTES_PER_S * 1000,
             cap_p = (uint64_t)RELAY_PACKETS_PER_S * 1000;
    p->last_ms = now;
    p->bytes_milli += elapsed * RELAY_BYTES_PER_S;
    p->packets_milli += elapsed * RELAY_PACKETS_PER_S;
    p->bytes_milli = p->bytes_milli < cap_b ? p->bytes_milli : cap_b;
    p->packets_milli = p->packets_milli < cap_p ? p->packets_milli : cap_p;
    uint64_t cost = (sctp_len + PACE_OVERHEAD) * 1000; /* what the relay counts */
    if (p->packets_milli < 1000 || p->bytes_milli < cost) {
        p->dropped++;
        return;
    }
    p->packets_milli -= 1000;
    p->bytes_milli -= cost;
    p->passed_bytes += sctp_len + PACE_OVERHEAD;
}

/* For seconds of virtual time, a sender offers `burst` full packets every
 * ms (pacer: NULL, straight to the relay), the paced ones leave as
 * punch_pace_next allows: what the relay let through, and dropped. */
static policer flood(punch_pace *pc, unsigned seconds, unsigned burst)
{
    policer relay = policer_new();
    uint8_t pkt[SCTP_PACKET], out[PACE_MAX_PACKET];
    memset(pkt, 0xab, sizeof(pkt));
    for (uint64_t now = 0; now < seconds * 1000ull; now++) {
        for (unsigned i = 0; i < burst; i++)
            if (!pc || punch_pace_offer(pc, now, pkt, sizeof(pkt)) == PACE_SEND)
                policer_take(&relay, now, sizeof(pkt));
        size_t len;
        while (pc && (len = punch_pace_next(pc, now, out)) > 0)
            policer_take(&relay, now, len);
    }
    return relay;
}

/* Without pacing a flood at 10 packets a ms (11 MB/s) loses most of
 * itself at the relay (the test's model can fail); paced below the rates
 * the relay told, nothing is dropped there, and the relay still carries
 * more than 0.9 of all it would carry in 10 s (its burst and its rate):
 * the pacer's share (PACE_SHARE_PERCENT) and a burst of PACE_BURST_MS. */
static void paced_flood_passes_the_relay(void **state)
{
    (void)state;
    policer raw = flood(NULL, 10, 10);
    assert_true(raw.dropped > 50000);
    punch_pace *pc = punch_pace_new();
    assert_non_null(pc);
    punch_pace_set_rate(pc, 0, RELAY_BYTES_PER_S, RELAY_PACKETS_PER_S);
    assert_true(punch_pace_on(pc));
    policer paced = flood(pc, 10, 10);
    double most = 11.0 * RELAY_BYTES_PER_S;
    fprintf(stderr, "10 s flood: unpaced %llu dropped at the relay; paced %llu dropped, %.3f of "
                    "what the relay carries at most, %llu dropped by the queue\n",
            (unsigned long long)raw.dropped, (unsigned long long)paced.dropped,
            (double)paced.passed_bytes / most,
            (unsigned long long)punch_pace_counters(pc)->dropped);
    assert_int_equal(paced.dropped, 0);
    assert_true((double)paced.passed_bytes > 0.9 * most);
    assert_true(punch_pace_counters(pc)->dropped > 0); /* the flood overran the queue */
    punch_pace_free(pc);
}

/* Small packets meet the packet rate first: 100-byte packets at 5 a ms
 * are 5,000 a second, past the relay's 4,000. */
static void packet_rate_paced_too(void **state)
{
    (void)state;
    punch_pace *pc = punch_pace_new();
    punch_pace_set_rate(pc, 0, RELAY_BYTES_PER_S, RELAY_PACKETS_PER_S);
    policer relay = policer_new();
    uint8_t pkt[100] = {0}, out[PACE_MAX_PACKET];
    for (uint64_t now = 0; now < 5000; now++) {
        for (int i = 0; i < 5; i++)
            if (punch_pace_offer(pc, now, pkt, sizeof(pkt)) == PACE_SEND)
                policer_take(&relay, now, sizeof(pkt));
        size_t len;
        while ((len = punch_pace_next(pc, now, out)) > 0)
            policer_take(&relay, now, len);
    }
    assert_int_equal(relay.dropped, 0);
    punch_pace_free(pc);
}

/* Off (never told a rate, or told 0), every packet goes at once and
 * nothing is queued; turned off with packets waiting, they go at once. */
static void off_sends_everything_at_once(void **state)
{
    (void)state;
    punch_pace *pc = punch_pace_new();
    uint8_t pkt[SCTP_PACKET] = {0}, out[PACE_MAX_PACKET];
    for (int i = 0; i < 1000; i++)
        assert_int_equal(punch_pace_offer(pc, 0, pkt, sizeof(pkt)), PACE_SEND);
    assert_int_equal(punch_pace_deadline(pc, 0), UINT64_MAX);
    /* A rate of 10 packets a second: the burst (8 of them), then a wait. */
    punch_pace_set_rate(pc, 0, 1000000, 10);
    int sent = 0;
    while (punch_pace_offer(pc, 0, pkt, sizeof(pkt)) == PACE_SEND)
        sent++;
    assert_int_equal(sent, 10 * PACE_SHARE_PERCENT / 100 * PACE_BURST_MS / 1000);
    for (int i = 0; i < 5; i++)
        assert_int_equal(punch_pace_offer(pc, 0, pkt, sizeof(pkt)), PACE_QUEUED);
    assert_int_equal(punch_pace_waiting(pc), 6);
    assert_int_equal(punch_pace_next(pc, 0, out), 0);
    punch_pace_set_rate(pc, 1, 0, 0);
    assert_false(punch_pace_on(pc));
    assert_int_equal(punch_pace_deadline(pc, 1), 1);
    for (int i = 0; i < 6; i++)
        assert_int_equal(punch_pace_next(pc, 1, out), sizeof(pkt));
    assert_int_equal(punch_pace_next(pc, 1, out), 0);
    assert_int_equal(punch_pace_offer(pc, 1, pkt, sizeof(pkt)), PACE_SEND);
    punch_pace_free(pc);
}

/* What waits leaves in order, at the deadline punch_pace_deadline names
 * and not a millisecond before; a full queue drops the newest; a charge
 * around the queue (the repair's) pushes the deadline back. */
static void queue_order_deadline_and_charge(void **state)
{
    (void)state;
    punch_pace *pc = punch_pace_new();
    /* 95 packets a second paced: one per 1000/95 ms; bytes plenty. */
    punch_pace_set_rate(pc, 0, 100000000, 100);
    uint8_t pkt[200], out[PACE_MAX_PACKET];
    int sent = 0;
    for (int i = 0;; i++) {
        memset(pkt, i, sizeof(pkt));
        pace_verdict v = punch_pace_offer(pc, 0, pkt, 10 + (size_t)i % 100);
        if (v != PACE_SEND)
            break;
        sent++;
    }
    /* The one that did not go was queued; more until the queue is full. */
    int queued = 1;
    for (int i = sent + 1; i < sent + PACE_SLOTS + 10; i++) {
        memset(pkt, i, sizeof(pkt));
        pace_verdict v = punch_pace_offer(pc, 0, pkt, 10 + (size_t)i % 100);
        if (v == PACE_QUEUED)
            queued++;
        else
            assert_int_equal(v, PACE_DROPPED);
    }
    assert_int_equal(queued, PACE_QUEUE_MIN); /* 20 ms at this rate is less */
    assert_int_equal(punch_pace_counters(pc)->dropped, PACE_SLOTS + 9 - (queued - 1));
    /* The bucket is below one packet now: the next one at the deadline. */
    uint64_t at = punch_pace_deadline(pc, 0);
    assert_true(at > 0 && at <= 11);
    assert_int_equal(punch_pace_next(pc, at - 1, out), 0);
    size_t len = punch_pace_next(pc, at, out);
    assert_int_equal(len, 10 + (size_t)sent % 100);
    assert_int_equal(out[0], (uint8_t)sent);
    /* A charge of 5 packets' worth: the next waits 5 more intervals. */
    for (int i = 0; i < 5; i++)
        punch_pace_charge(pc, at, 10);
    uint64_t later = punch_pace_deadline(pc, at);
    assert_true(later >= at + 5 * 1000 / 95 && later <= at + 6 * 1000 / 95 + 1);
    assert_int_equal(punch_pace_next(pc, later - 1, out), 0);
    assert_int_equal(punch_pace_next(pc, later, out), 10 + (size_t)(sent + 1) % 100);
    assert_int_equal(out[0], (uint8_t)(sent + 1));
    punch_pace_free(pc);
}

/* A day idle fills the buckets to their depth and no further (no
 * overflow), and a packet too large for a slot is dropped, counted. */
static void idle_day_and_oversize(void **state)
{
    (void)state;
    punch_pace *pc = punch_pace_new();
    punch_pace_set_rate(pc, 0, UINT32_MAX, UINT32_MAX);
    uint8_t big[PACE_MAX_PACKET + 1] = {0};
    uint64_t day = 86400000ull;
    int sent = 0;
    while (punch_pace_offer(pc, day, big, PACE_MAX_PACKET) == PACE_SEND && sent < 10000000)
        sent++;
    /* UINT32_MAX bytes a second, 0.95 of it for 0.8 s: 2.7 M of 1203 bytes. */
    uint64_t want = (uint64_t)UINT32_MAX * PACE_SHARE_PERCENT / 100 * PACE_BURST_MS / 1000 /
                    (PACE_MAX_PACKET + PACE_OVERHEAD);
    assert_true((uint64_t)sent >= want - 1 && (uint64_t)sent <= want + 1);
    assert_int_equal(punch_pace_offer(pc, day, big, sizeof(big)), PACE_DROPPED);
    punch_pace_free(pc);
    punch_pace_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(paced_flood_passes_the_relay),
        cmocka_unit_test(packet_rate_paced_too),
        cmocka_unit_test(off_sends_everything_at_once),
        cmocka_unit_test(queue_order_deadline_and_charge),
        cmocka_unit_test(idle_day_and_oversize),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
