/* SPDX-License-Identifier: MIT */
/* Messages between cluster members (src/server/cluster.c): what one member
 * signs another takes, field for field (records, INTROs, TURNs); anything forged, garbled, stale,
 * misdirected or signed with another secret is dropped and counted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <sodium.h>

#include "server/cluster.h"

static const uint8_t secret[PUNCH_CLUSTER_SECRET_LEN] = "the cluster's 32-byte secret...";
static const uint8_t m1[PUNCH_CLUSTER_MEMBER_LEN] = {1, 1, 1, 1, 1, 1, 1, 1};
static const uint8_t m2[PUNCH_CLUSTER_MEMBER_LEN] = {2, 2, 2, 2, 2, 2, 2, 2};
static const uint8_t txid[PUNCH_MSG_TXID_LEN] = {9, 8, 7, 6, 5, 4, 3, 2};
static const uint64_t now = 1800000000000ull; /* a wall clock, ms */

static punch_rendezvous_peer_info sample_peer(void)
{
    punch_rendezvous_peer_info p = {.name = "bob", .n_private = 2, .n_mapped = 1,
                                    .rtt_ms = 42, .nat_mapping = 2, .nat_step = 1,
                                    .nat_port = 40001};
    for (int i = 0; i < PUNCH_KEY_LEN; i++)
        p.key[i] = (uint8_t)(0xA0 + i);
    p.public_addr = (punch_addr){.family = PUNCH_AF_INET, .port = 40000, .ip = {198, 51, 100, 7}};
    p.private_addr[0] = (punch_addr){.family = PUNCH_AF_INET, .port = 5000, .ip = {10, 0, 0, 2}};
    p.private_addr[1] = (punch_addr){.family = PUNCH_AF_INET, .port = 6000, .ip = {192, 0, 2, 1}};
    return p;
}

static void assert_same_peer(const punch_rendezvous_peer_info *a,
                             const punch_rendezvous_peer_info *b)
{
    assert_string_equal(a->name, b->name);
    assert_memory_equal(a->key, b->key, PUNCH_KEY_LEN);
    /* Field by field: an address's padding bytes are not part of it. */
    assert_true(punch_addr_equal(&a->public_addr, &b->public_addr));
    assert_int_equal(a->n_private, b->n_private);
    for (unsigned i = 0; i < a->n_private; i++)
        assert_true(punch_addr_equal(&a->private_addr[i], &b->private_addr[i]));
    assert_int_equal(a->n_mapped, b->n_mapped);
    assert_int_equal(a->rtt_ms, b->rtt_ms);
    assert_int_equal(a->nat_mapping, b->nat_mapping);
    assert_int_equal(a->nat_step, b->nat_step);
    assert_int_equal(a->nat_port, b->nat_port);
}

static void record_round_trips(void **state)
{
    (void)state;
    punch_cluster a, b;
    punch_cluster_init(&a, secret, m1);
    punch_cluster_init(&b, secret, m2);
    a.self_addr = (punch_addr){.family = PUNCH_AF_INET, .port = 3478, .ip = {192, 0, 2, 10}};
    punch_rendezvous_peer_info p = sample_peer();
    uint8_t buf[PUNCH_CLUSTER_MAX_MSG];
    size_t len;
    assert_int_equal(punch_cluster_record(&a, &p, now + 90000, buf, sizeof(buf), &len), 0);
    /* Where a script in Redis finds the member and the owner's key. */
    assert_memory_equal(buf + PUNCH_CLUSTER_FROM_AT, m1, sizeof(m1));
    assert_memory_equal(buf + PUNCH_CLUSTER_OWNER_AT, p.key, PUNCH_KEY_LEN);
    punch_cluster_msg m;
    assert_int_equal(punch_cluster_read_record(&b, "bob", buf, len, now, &m), 0);
    assert_int_equal(m.type, PUNCH_CLUSTER_RECORD);
    assert_memory_equal(m.from, m1, sizeof(m1));
    assert_true(punch_addr_equal(&m.member_addr, &a.self_addr));
    /* A member without a relay address says none. */
    assert_int_equal(punch_cluster_record(&b, &p, now + 90000, buf, sizeof(buf), &len), 0);
    assert_int_equal(punch_cluster_read_record(&a, "bob", buf, len, now, &m), 0);
    assert_int_equal(m.member_addr.family, PUNCH_AF_NONE);
    assert_int_equal(punch_cluster_record(&a, &p, now + 90000, buf, sizeof(buf), &len), 0);
    assert_int_equal(m.stamp_ms, now + 90000);
    assert_same_peer(&m.peer, &p);
    assert_int_equal(b.counters.accepted, 1);
    /* Under another name, past its expiry, or taken as an INTRO: dropped. */
    assert_int_equal(punch_cluster_read_record(&b, "bobby", buf, len, now, &m), PUNCH_ERR_NOTFOUND);
    assert_int_equal(punch_cluster_read_record(&b, "bob", buf, len, now + 90000, &m),
                     PUNCH_ERR_LIMIT);
    assert_int_equal(punch_cluster_read_intro(&b, buf, len, now, &m), PUNCH_ERR_NOTFOUND);
    assert_int_equal(b.counters.misdirected, 2);
    assert_int_equal(b.counters.stale, 1);
    assert_int_equal(b.counters.accepted, 1);
}

/* On a member's channel, a record is news that its peer moved to the
 * member that made it (punch_cluster_read_channel): taken field for
 * field at any member, as long as it lives, again when published again
 * (what it makes a member do is look the name up); an INTRO there still
 * goes through read_intro's checks; every bit flip is refused. */
static void record_on_a_channel_is_news_of_a_move(void **state)
{
    (void)state;
    punch_cluster a, b;
    uint8_t m3[PUNCH_CLUSTER_MEMBER_LEN] = {3};
    punch_cluster_init(&a, secret, m1);
    punch_cluster_init(&b, secret, m3);
    assert_int_equal(punch_cluster_remember_intros(&b), 0);
    punch_rendezvous_peer_info p = sample_peer();
    uint8_t buf[PUNCH_CLUSTER_MAX_MSG], target[PUNCH_KEY_LEN] = {0x77};
    size_t len;
    punch_cluster_msg m;
    assert_int_equal(punch_cluster_record(&a, &p, now + 90000, buf, sizeof(buf), &len), 0);
    assert_int_equal(punch_cluster_read_channel(&b, buf, len, now, &m), 0);
    assert_int_equal(m.type, PUNCH_CLUSTER_RECORD);
    assert_memory_equal(m.from, m1, sizeof(m1));
    assert_same_peer(&m.peer, &p);
    assert_int_equal(punch_cluster_read_channel(&b, buf, len, now + 1, &m), 0);
    assert_int_equal(b.counters.accepted, 2);
    assert_int_equal(punch_cluster_read_channel(&b, buf, len, now + 90000, &m), PUNCH_ERR_LIMIT);
    assert_int_equal(b.counters.stale, 1);
    for (size_t i = 0; i < len; i++) {
        buf[i] ^= 0x01;
        assert_int_not_equal(punch_cluster_read_channel(&b, buf, len, now, &m), 0);
        buf[i] ^= 0x01;
    }
    assert_int_equal(b.counters.accepted, 2);
    /* An INTRO on the same channel: read as read_intro reads it (once). */
    assert_int_equal(punch_cluster_intro(&a, m3, target, &p, txid, target, 0, now, buf,
                                         sizeof(buf), &len), 0);
    assert_int_equal(punch_cluster_read_channel(&b, buf, len, now + 5, &m), 0);
    assert_int_equal(m.type, PUNCH_CLUSTER_INTRO);
    assert_int_equal(punch_cluster_read_channel(&b, buf, len, now + 6, &m), PUNCH_ERR_LIMIT);
    assert_int_equal(b.counters.replayed, 1);
    assert_int_equal(punch_cluster_read_channel(&b, buf, 3, now, &m), PUNCH_ERR_MALFORMED);
    punch_cluster_clear(&b);
}

static void intro_round_trips_to_its_member_only(void **state)
{
    (void)state;
    punch_cluster a, b, c;
    uint8_t m3[PUNCH_CLUSTER_MEMBER_LEN] = {3};
    punch_cluster_init(&a, secret, m1);
    punch_cluster_init(&b, secret, m2);
    punch_cluster_init(&c, secret, m3);
    punch_rendezvous_peer_info p = sample_peer();
    uint8_t target[PUNCH_KEY_LEN] = {0x77}, session[PUNCH_MSG_SESSION_LEN];
    uint8_t buf[PUNCH_CLUSTER_MAX_MSG];
    size_t len;
    punch_cluster_session_id(&a, p.key, txid, session);
    assert_int_equal(punch_cluster_intro(&a, m2, target, &p, txid, session, 0, now, buf,
                                         sizeof(buf), &len), 0);
    punch_cluster_msg m;
    assert_int_equal(punch_cluster_read_intro(&b, buf, len, now + 5, &m), 0);
    assert_memory_equal(m.to, m2, sizeof(m2));
    assert_memory_equal(m.target_key, target, sizeof(target));
    assert_memory_equal(m.session, session, sizeof(session));
    assert_memory_equal(m.txid, txid, sizeof(txid));
    assert_same_peer(&m.peer, &p);
    /* Member 3 hears it on no channel of its own; if it did, it drops it. */
    assert_int_equal(punch_cluster_read_intro(&c, buf, len, now, &m), PUNCH_ERR_NOTFOUND);
    assert_int_equal(c.counters.misdirected, 1);
    /* Replayed after its window, or from a clock far ahead: stale. */
    assert_int_equal(punch_cluster_read_intro(&b, buf, len, now + PUNCH_CLUSTER_INTRO_WINDOW_MS, &m),
                     PUNCH_ERR_LIMIT);
    assert_int_equal(punch_cluster_read_intro(&b, buf, len, now - PUNCH_CLUSTER_INTRO_WINDOW_MS - 1,
                                              &m), PUNCH_ERR_LIMIT);
    assert_int_equal(b.counters.stale, 2);
}

/* A peer's relayed address at a TURN server, for a peer at member 2: taken
 * there field for field, on member 2's channel only, never as a record,
 * once (a replay is refused); a peer without one has no TURN to send. */
static void turn_round_trips_to_its_member_only(void **state)
{
    (void)state;
    punch_cluster a, b, c;
    uint8_t m3[PUNCH_CLUSTER_MEMBER_LEN] = {3};
    punch_cluster_init(&a, secret, m1);
    punch_cluster_init(&b, secret, m2);
    punch_cluster_init(&c, secret, m3);
    assert_int_equal(punch_cluster_remember_intros(&b), 0);
    punch_rendezvous_peer_info p = sample_peer();
    p.relayed = (punch_addr){.family = PUNCH_AF_INET, .port = 49152, .ip = {192, 0, 2, 50}};
    uint8_t target[PUNCH_KEY_LEN] = {0x77}, session[PUNCH_MSG_SESSION_LEN] = {4, 2};
    uint8_t buf[PUNCH_CLUSTER_MAX_MSG];
    size_t len;
    assert_int_equal(punch_cluster_turn(&a, m2, target, &p, txid, session, now, buf, sizeof(buf),
                                        &len), 0);
    punch_cluster_msg m;
    assert_int_equal(punch_cluster_read_intro(&b, buf, len, now + 5, &m), 0);
    assert_int_equal(m.type, PUNCH_CLUSTER_TURN);
    assert_memory_equal(m.from, m1, sizeof(m1));
    assert_memory_equal(m.target_key, target, sizeof(target));
    assert_memory_equal(m.session, session, sizeof(session));
    assert_memory_equal(m.txid, txid, sizeof(txid));
    assert_memory_equal(m.peer.key, p.key, PUNCH_KEY_LEN);
    assert_true(punch_addr_equal(&m.peer.relayed, &p.relayed));
    assert_int_equal(punch_cluster_read_intro(&b, buf, len, now + 6, &m), PUNCH_ERR_LIMIT);
    assert_int_equal(b.counters.replayed, 1);
    assert_int_equal(punch_cluster_read_intro(&c, buf, len, now, &m), PUNCH_ERR_NOTFOUND);
    assert_int_equal(punch_cluster_read_record(&c, "bob", buf, len, now, &m), PUNCH_ERR_NOTFOUND);
    assert_int_equal(c.counters.misdirected, 2);
    /* Every bit of it is covered by the MAC. */
    for (size_t i = 0; i < len; i++) {
        buf[i] ^= 0x10;
        assert_int_not_equal(punch_cluster_read_intro(&c, buf, len, now, &m), 0);
        buf[i] ^= 0x10;
    }
    assert_int_equal(c.counters.accepted, 0);
    p.relayed.family = PUNCH_AF_NONE;
    assert_int_equal(punch_cluster_turn(&a, m2, target, &p, txid, session, now, buf, sizeof(buf),
                                        &len), PUNCH_ERR_INVAL);
    punch_cluster_clear(&b);
}

static void session_ids_follow_the_connect(void **state)
{
    (void)state;
    punch_cluster a, other;
    uint8_t other_secret[PUNCH_CLUSTER_SECRET_LEN] = {1};
    punch_cluster_init(&a, secret, m1);
    punch_cluster_init(&other, other_secret, m1);
    uint8_t key[PUNCH_KEY_LEN] = {5}, t2[PUNCH_MSG_TXID_LEN] = {1};
    uint8_t s1[PUNCH_MSG_SESSION_LEN], s1again[PUNCH_MSG_SESSION_LEN];
    uint8_t s2[PUNCH_MSG_SESSION_LEN], s3[PUNCH_MSG_SESSION_LEN];
    punch_cluster_session_id(&a, key, txid, s1);
    punch_cluster_session_id(&a, key, txid, s1again);
    punch_cluster_session_id(&a, key, t2, s2);
    punch_cluster_session_id(&other, key, txid, s3);
    assert_memory_equal(s1, s1again, sizeof(s1)); /* a CONNECT copy: the same session */
    assert_memory_not_equal(s1, s2, sizeof(s1));
    assert_memory_not_equal(s1, s3, sizeof(s1));
}

/* Every single bit flipped, every truncation and another secret: never
 * accepted, always counted as malformed or bad MAC. */
static void forged_and_garbled_are_dropped_and_counted(void **state)
{
    (void)state;
    punch_cluster a, b, stranger;
    uint8_t other_secret[PUNCH_CLUSTER_SECRET_LEN] = "a secret of another cluster....";
    punch_cluster_init(&a, secret, m1);
    punch_cluster_init(&b, secret, m2);
    punch_cluster_init(&stranger, other_secret, m1);
    punch_rendezvous_peer_info p = sample_peer();
    uint8_t buf[PUNCH_CLUSTER_MAX_MSG], bad[PUNCH_CLUSTER_MAX_MSG];
    size_t len;
    punch_cluster_msg m;
    assert_int_equal(punch_cluster_record(&a, &p, now + 1000, buf, sizeof(buf), &len), 0);
    uint64_t tries = 0;
    for (size_t i = 0; i < len; i++)
        for (int bit = 0; bit < 8; bit++, tries++) {
            memcpy(bad, buf, len);
            bad[i] ^= (uint8_t)(1u << bit);
            assert_int_not_equal(punch_cluster_read_record(&b, "bob", bad, len, now, &m), 0);
        }
    for (size_t n = 0; n < len; n++, tries++)
        assert_int_not_equal(punch_cluster_read_record(&b, "bob", buf, n, now, &m), 0);
    assert_int_equal(b.counters.accepted, 0);
    assert_int_equal(b.counters.malformed + b.counters.bad_mac, tries);
    assert_true(b.counters.bad_mac > 8 * (len - 4));
    /* Well formed, but signed with another cluster's secret. */
    assert_int_equal(punch_cluster_record(&stranger, &p, now + 1000, buf, sizeof(buf), &len), 0);
    assert_int_equal(punch_cluster_read_record(&b, "bob", buf, len, now, &m), PUNCH_ERR_INTEGRITY);
    assert_int_equal(b.counters.accepted, 0);
}

/* A member's own signature over bytes that are no cluster message (a
 * future version, a bad inner message) is malformed, not trusted. */
static void signed_garbage_is_malformed(void **state)
{
    (void)state;
    punch_cluster b;
    punch_cluster_init(&b, secret, m2);
    uint8_t buf[PUNCH_CLUSTER_HEADER_LEN + 20 + PUNCH_CLUSTER_MAC_LEN] = {'P', 'C', 1, 1};
    size_t signed_len = sizeof(buf) - PUNCH_CLUSTER_MAC_LEN;
    crypto_auth(buf + signed_len, buf, signed_len, secret);
    punch_cluster_msg m;
    assert_int_equal(punch_cluster_read_record(&b, "bob", buf, sizeof(buf), now, &m),
                     PUNCH_ERR_MALFORMED);
    assert_int_equal(b.counters.malformed, 1);
    assert_int_equal(b.counters.bad_mac, 0);
}

/* An INTRO is signed bytes anyone on Redis can publish again: the second
 * copy is refused and counted; a new INTRO (a CONNECT's next copy, another
 * txid) is not a replay. */
static void replayed_intro_is_refused_and_counted(void **state)
{
    (void)state;
    punch_cluster a, b;
    punch_cluster_init(&a, secret, m1);
    punch_cluster_init(&b, secret, m2);
    assert_int_equal(punch_cluster_remember_intros(&b), 0);
    punch_rendezvous_peer_info p = sample_peer();
    uint8_t session[PUNCH_MSG_SESSION_LEN] = {7}, other_txid[PUNCH_MSG_TXID_LEN] = {1};
    uint8_t buf[PUNCH_CLUSTER_MAX_MSG], next[PUNCH_CLUSTER_MAX_MSG];
    size_t len, next_len;
    punch_cluster_msg m;
    assert_int_equal(punch_cluster_intro(&a, m2, p.key, &p, txid, session, 0, now, buf,
                                         sizeof(buf), &len), 0);
    assert_int_equal(punch_cluster_read_intro(&b, buf, len, now + 5, &m), 0);
    assert_int_equal(punch_cluster_read_intro(&b, buf, len, now + 10, &m), PUNCH_ERR_LIMIT);
    assert_int_equal(punch_cluster_read_intro(&b, buf, len, now + 29999, &m), PUNCH_ERR_LIMIT);
    assert_int_equal(b.counters.replayed, 2);
    assert_int_equal(punch_cluster_intro(&a, m2, p.key, &p, other_txid, session, 0, now + 20,
                                         next, sizeof(next), &next_len), 0);
    assert_int_equal(punch_cluster_read_intro(&b, next, next_len, now + 25, &m), 0);
    /* Past the window the replay is stale, as without a cache. */
    assert_int_equal(punch_cluster_read_intro(&b, buf, len, now + 30000, &m), PUNCH_ERR_LIMIT);
    assert_int_equal(b.counters.stale, 1);
    assert_int_equal(b.counters.replayed, 2);
    assert_int_equal(b.counters.accepted, 2);
    punch_cluster_clear(&b);
}

/* More INTROs within the window than the cache holds: none is taken twice;
 * INTROs older than the ones it had to forget are refused as stale. */
static void full_replay_cache_refuses_what_it_forgot(void **state)
{
    (void)state;
    punch_cluster a, b;
    punch_cluster_init(&a, secret, m1);
    punch_cluster_init(&b, secret, m2);
    assert_int_equal(punch_cluster_remember_intros(&b), 0);
    punch_rendezvous_peer_info p = sample_peer();
    uint8_t session[PUNCH_MSG_SESSION_LEN] = {7}, id[PUNCH_MSG_TXID_LEN] = {0};
    uint8_t first[PUNCH_CLUSTER_MAX_MSG], buf[PUNCH_CLUSTER_MAX_MSG];
    size_t first_len, len;
    punch_cluster_msg m;
    assert_int_equal(punch_cluster_intro(&a, m2, p.key, &p, id, session, 0, now, first,
                                         sizeof(first), &first_len), 0);
    assert_int_equal(punch_cluster_read_intro(&b, first, first_len, now, &m), 0);
    const uint32_t n = 2 * PUNCH_CLUSTER_REPLAY_BUCKETS * PUNCH_CLUSTER_REPLAY_WAYS;
    for (uint32_t i = 1; i <= n; i++) {
        memcpy(id, &i, sizeof(i));
        assert_int_equal(punch_cluster_intro(&a, m2, p.key, &p, id, session, 0, now + 1 + i / 4096,
                                             buf, sizeof(buf), &len), 0);
        assert_int_equal(punch_cluster_read_intro(&b, buf, len, now + 1 + i / 4096, &m), 0);
    }
    assert_int_equal(punch_cluster_read_intro(&b, buf, len, now + 20, &m), PUNCH_ERR_LIMIT);
    assert_int_equal(b.counters.replayed, 1);
    assert_true(b.seen_floor_ms > now);
    assert_int_equal(punch_cluster_read_intro(&b, first, first_len, now + 20, &m), PUNCH_ERR_LIMIT);
    assert_int_equal(b.counters.stale, 1);
    assert_int_equal(b.counters.accepted, n + 1);
    punch_cluster_clear(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(record_round_trips),
        cmocka_unit_test(intro_round_trips_to_its_member_only),
        cmocka_unit_test(record_on_a_channel_is_news_of_a_move),
        cmocka_unit_test(turn_round_trips_to_its_member_only),
        cmocka_unit_test(session_ids_follow_the_connect),
        cmocka_unit_test(forged_and_garbled_are_dropped_and_counted),
        cmocka_unit_test(signed_garbage_is_malformed),
        cmocka_unit_test(replayed_intro_is_refused_and_counted),
        cmocka_unit_test(full_replay_cache_refuses_what_it_forgot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
