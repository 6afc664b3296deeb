/* SPDX-License-Identifier: MIT */
/*
 * The TURN client (src/core/turn.c) against a TURN server played by the
 * test with the STUN codec, in virtual time: the long-term credential
 * challenge (401, then the request signed with MD5(user:realm:pass)), a
 * forged success dropped, Refresh before the lifetime ends and a stale
 * nonce (438) on it, CreatePermission and ChannelBind for a peer and their
 * renewals, Send indications before the channel and ChannelData after it,
 * data in both ways, retransmissions running out, and refused credentials;
 * slots over hours (issue 15): 100 peers in sequence through 16 slots, a
 * released slot reused only after RFC 8656 §12's quarantine, refreshes
 * for live peers only, and a forgotten allocation (437) made anew;
 * ChannelData taken before the ChannelBind's answer; a Refresh at once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/turn.h"
#include "wire/stun.h"

static void counting_random(void *ctx, uint8_t *buf, size_t len)
{
    uint8_t *n = ctx;
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(++*n * 37u);
}

static const punch_addr SERVER = {.family = PUNCH_AF_INET, .ip = {192, 0, 2, 1}, .port = 3478};
static const punch_addr RELAYED = {.family = PUNCH_AF_INET, .ip = {192, 0, 2, 1}, .port = 50000};
static const punch_addr MAPPED = {.family = PUNCH_AF_INET, .ip = {203, 0, 113, 7}, .port = 40001};
static const punch_addr PEER = {.family = PUNCH_AF_INET, .ip = {198, 51, 100, 9}, .port = 60000};

typedef struct fixture {
    punch_turn t;
    uint8_t rnd;
    uint8_t req[PUNCH_TURN_MSG_MAX];
    size_t req_len;
    punch_stun_msg m; /* the request taken last */
    uint8_t key[16];
} fixture;

/* The next request the client sends; it must be there. */
static const punch_stun_msg *take(fixture *f)
{
    assert_int_equal(punch_turn_poll_transmit(&f->t, f->req, sizeof(f->req), &f->req_len), 1);
    assert_int_equal(punch_stun_decode(&f->m, f->req, f->req_len), 0);
    assert_int_equal(f->m.cls, PUNCH_STUN_REQUEST);
    return &f->m;
}

static void nothing_sent(fixture *f)
{
    assert_int_equal(punch_turn_poll_transmit(&f->t, f->req, sizeof(f->req), &f->req_len), 0);
}

typedef enum { UNSIGNED, SIGNED, SIGNED_WRONG } signing;

/* The server's answer to the request taken last: class cls, error code
 * (cls ERROR), realm and nonce (when not NULL), relayed address (Allocate). */
static void answer(fixture *f, uint64_t now, uint8_t cls, int code, const char *nonce,
                   uint32_t lifetime, signing sign)
{
    uint8_t buf[512];
    punch_stun_writer w;
    assert_int_equal(punch_stun_writer_init(&w, buf, sizeof(buf), f->m.method, cls, f->m.txid), 0);
    if (cls == PUNCH_STUN_ERROR)
        punch_stun_put_error(&w, code, code == 401 ? "Unauthorized" : "Stale Nonce");
    if (nonce) {
        punch_stun_put(&w, PUNCH_STUN_ATTR_REALM, "example.org", 11);
        punch_stun_put(&w, PUNCH_STUN_ATTR_NONCE, nonce, strlen(nonce));
    }
    if (cls == PUNCH_STUN_SUCCESS && f->m.method == PUNCH_STUN_ALLOCATE) {
        punch_stun_put_addr(&w, PUNCH_STUN_ATTR_XOR_RELAYED_ADDRESS, &RELAYED);
        punch_stun_put_addr(&w, PUNCH_STUN_ATTR_XOR_MAPPED_ADDRESS, &MAPPED);
    }
    if (lifetime)
        punch_stun_put_u32(&w, PUNCH_STUN_ATTR_LIFETIME, lifetime);
    uint8_t wrong[16] = {1};
    if (sign != UNSIGNED)
        punch_stun_put_integrity(&w, sign == SIGNED ? f->key : wrong, 16);
    size_t len;
    assert_int_equal(punch_stun_finish(&w, &len), 0);
    punch_addr peer;
    const uint8_t *data;
    size_t dlen;
    assert_int_equal(punch_turn_handle(&f->t, now, buf, len, &peer, &data, &dlen), 0);
}

/* A request signed as RFC 8489 §9.2.4 says, with nonce. */
static void assert_signed(fixture *f, const char *nonce)
{
    const punch_stun_attr *u = punch_stun_find(&f->m, PUNCH_STUN_ATTR_USERNAME);
    const punch_stun_attr *n = punch_stun_find(&f->m, PUNCH_STUN_ATTR_NONCE);
    assert_non_null(u);
    assert_non_null(n);
    assert_non_null(punch_stun_find(&f->m, PUNCH_STUN_ATTR_REALM));
    assert_memory_equal(u->value, "alice", 5);
    assert_int_equal(n->len, strlen(nonce));
    assert_memory_equal(n->value, nonce, n->len);
    assert_int_equal(punch_stun_check_integrity(&f->m, f->key, 16), 0);
}

/* Allocated at t = 0: challenge, signed Allocate, success (lifetime 600 s). */
static void allocate(fixture *f)
{
    memset(f, 0, sizeof(*f));
    punch_stun_long_term_key_md5("alice", "example.org", "secret", f->key);
    punch_turn_cfg c = {.server = SERVER, .username = "alice", .password = "secret",
                        .random = counting_random, .random_ctx = &f->rnd};
    assert_int_equal(punch_turn_init(&f->t, &c, 0), 0);
    take(f);
    assert_int_equal(f->m.method, PUNCH_STUN_ALLOCATE);
    uint32_t transport;
    assert_int_equal(
        punch_stun_read_u32(punch_stun_find(&f->m, PUNCH_STUN_ATTR_REQUESTED_TRANSPORT), &transport),
        0);
    assert_int_equal(transport, 17u << 24); /* UDP */
    assert_null(punch_stun_find(&f->m, PUNCH_STUN_ATTR_USERNAME));
    uint8_t first_txid[12];
    memcpy(first_txid, f->m.txid, 12);
    answer(f, 20, PUNCH_STUN_ERROR, 401, "nonce-1", 0, UNSIGNED);
    take(f);
    assert_int_equal(f->m.method, PUNCH_STUN_ALLOCATE);
    assert_memory_not_equal(f->m.txid, first_txid, 12);
    assert_signed(f, "nonce-1");
    answer(f, 40, PUNCH_STUN_SUCCESS, 0, NULL, 600, SIGNED);
    assert_int_equal(f->t.state, PUNCH_TURN_ALLOCATED);
    assert_true(punch_addr_equal(&f->t.relayed, &RELAYED));
    assert_true(punch_addr_equal(&f->t.mapped, &MAPPED));
    nothing_sent(f);
}

static void long_term_credentials(void **state)
{
    (void)state;
    fixture f;
    allocate(&f);
}

/* A success that is not signed with the key, or signed with another, is
 * dropped: the allocation stays under way. */
static void forged_success_dropped(void **state)
{
    (void)state;
    fixture f;
    memset(&f, 0, sizeof(f));
    punch_stun_long_term_key_md5("alice", "example.org", "secret", f.key);
    punch_turn_cfg c = {.server = SERVER, .username = "alice", .password = "secret",
                        .random = counting_random, .random_ctx = &f.rnd};
    assert_int_equal(punch_turn_init(&f.t, &c, 0), 0);
    take(&f);
    answer(&f, 20, PUNCH_STUN_ERROR, 401, "n", 0, UNSIGNED);
    take(&f);
    answer(&f, 30, PUNCH_STUN_SUCCESS, 0, NULL, 600, UNSIGNED);
    answer(&f, 31, PUNCH_STUN_SUCCESS, 0, NULL, 600, SIGNED_WRONG);
    assert_int_equal(f.t.state, PUNCH_TURN_ALLOCATING);
    assert_int_equal(f.t.dropped, 2);
    answer(&f, 32, PUNCH_STUN_SUCCESS, 0, NULL, 600, SIGNED);
    assert_int_equal(f.t.state, PUNCH_TURN_ALLOCATED);
}

/* Refresh a minute before the 600 s end; a 438 on it brings the request
 * again with the new nonce; the answer moves the next one 540 s on. */
static void refresh_and_stale_nonce(void **state)
{
    (void)state;
    fixture f;
    allocate(&f);
    assert_int_equal(punch_turn_next_timeout(&f.t), 40 + 540000);
    punch_turn_handle_timeout(&f.t, 40 + 539999);
    nothing_sent(&f);
    punch_turn_handle_timeout(&f.t, 40 + 540000);
    take(&f);
    assert_int_equal(f.m.method, PUNCH_STUN_REFRESH);
    assert_non_null(punch_stun_find(&f.m, PUNCH_STUN_ATTR_LIFETIME));
    assert_signed(&f, "nonce-1");
    answer(&f, 540100, PUNCH_STUN_ERROR, 438, "nonce-2", 0, UNSIGNED);
    take(&f);
    assert_int_equal(f.m.method, PUNCH_STUN_REFRESH);
    assert_signed(&f, "nonce-2");
    answer(&f, 540200, PUNCH_STUN_SUCCESS, 0, NULL, 600, SIGNED);
    assert_int_equal(f.t.refreshes, 1);
    assert_int_equal(punch_turn_next_timeout(&f.t), 540200 + 540000);
}

/* The request for a peer (CreatePermission or ChannelBind) taken last is
 * for PEER. */
static void assert_for_peer(fixture *f)
{
    punch_addr a;
    assert_int_equal(
        punch_stun_read_addr(&f->m, punch_stun_find(&f->m, PUNCH_STUN_ATTR_XOR_PEER_ADDRESS), &a),
        0);
    assert_true(punch_addr_equal(&a, &PEER));
}

/* A permission and a channel for the peer; a Send indication before the
 * channel, ChannelData after; data from the peer both ways in; renewals. */
static void permission_channel_and_data(void **state)
{
    (void)state;
    fixture f;
    allocate(&f);
    assert_int_equal(punch_turn_permit(&f.t, 100, &PEER), 0);
    take(&f);
    assert_int_equal(f.m.method, PUNCH_STUN_CREATE_PERMISSION);
    assert_for_peer(&f);
    assert_signed(&f, "nonce-1");
    answer(&f, 120, PUNCH_STUN_SUCCESS, 0, NULL, 0, SIGNED);
    uint8_t out[256];
    size_t len;
    assert_int_equal(punch_turn_wrap(&f.t, &PEER, (const uint8_t *)"hi", 2, out, sizeof(out), &len),
                     0);
    punch_stun_msg send;
    assert_int_equal(punch_stun_decode(&send, out, len), 0);
    assert_int_equal(send.cls, PUNCH_STUN_INDICATION);
    assert_int_equal(send.method, PUNCH_STUN_SEND);
    assert_memory_equal(punch_stun_find(&send, PUNCH_STUN_ATTR_DATA)->value, "hi", 2);
    take(&f);
    assert_int_equal(f.m.method, PUNCH_STUN_CHANNEL_BIND);
    assert_for_peer(&f);
    uint16_t channel;
    assert_int_equal(
        punch_stun_read_channel(punch_stun_find(&f.m, PUNCH_STUN_ATTR_CHANNEL_NUMBER), &channel), 0);
    assert_true(channel >= PUNCH_STUN_CHANNEL_MIN && channel <= PUNCH_STUN_CHANNEL_MAX);
    answer(&f, 130, PUNCH_STUN_SUCCESS, 0, NULL, 0, SIGNED);
    assert_int_equal(punch_turn_wrap(&f.t, &PEER, (const uint8_t *)"hi", 2, out, sizeof(out), &len),
                     0);
    assert_int_equal(len, 4 + 2);
    assert_int_equal(out[0] << 8 | out[1], channel);
    /* In: ChannelData on the channel, and a Data indication. */
    punch_addr from;
    const uint8_t *data;
    size_t dlen;
    assert_int_equal(punch_turn_handle(&f.t, 200, out, len, &from, &data, &dlen), 1);
    assert_true(punch_addr_equal(&from, &PEER));
    assert_memory_equal(data, "hi", 2);
    uint8_t ind[128], txid[12] = {9};
    punch_stun_writer w;
    punch_stun_writer_init(&w, ind, sizeof(ind), PUNCH_STUN_DATA, PUNCH_STUN_INDICATION, txid);
    punch_stun_put_addr(&w, PUNCH_STUN_ATTR_XOR_PEER_ADDRESS, &PEER);
    punch_stun_put(&w, PUNCH_STUN_ATTR_DATA, "yo", 2);
    punch_stun_finish(&w, &len);
    assert_int_equal(punch_turn_handle(&f.t, 200, ind, len, &from, &data, &dlen), 1);
    assert_memory_equal(data, "yo", 2);
    /* ...not from a peer without a permission, nor on another channel. */
    punch_stun_writer_init(&w, ind, sizeof(ind), PUNCH_STUN_DATA, PUNCH_STUN_INDICATION, txid);
    punch_stun_put_addr(&w, PUNCH_STUN_ATTR_XOR_PEER_ADDRESS, &MAPPED);
    punch_stun_put(&w, PUNCH_STUN_ATTR_DATA, "yo", 2);
    punch_stun_finish(&w, &len);
    assert_int_equal(punch_turn_handle(&f.t, 200, ind, len, &from, &data, &dlen), 0);
    out[1] ^= 1;
    assert_int_equal(punch_turn_handle(&f.t, 200, out, 6, &from, &data, &dlen), 0);
    assert_int_equal(f.t.dropped, 2);
    /* Renewals: the permission 240 s after its answer, the channel 540 s. */
    assert_int_equal(punch_turn_next_timeout(&f.t), 120 + 240000);
    punch_turn_handle_timeout(&f.t, 120 + 240000);
    take(&f);
    assert_int_equal(f.m.method, PUNCH_STUN_CREATE_PERMISSION);
    answer(&f, 240200, PUNCH_STUN_SUCCESS, 0, NULL, 0, SIGNED);
    punch_turn_handle_timeout(&f.t, 130 + 540000);
    take(&f);
    assert_int_equal(f.m.method, PUNCH_STUN_REFRESH); /* due at 40 + 540000 */
    take(&f);
    assert_int_equal(f.m.method, PUNCH_STUN_CREATE_PERMISSION); /* 240200 + 240000 */
    take(&f);
    assert_int_equal(f.m.method, PUNCH_STUN_CHANNEL_BIND);
    nothing_sent(&f);
}

/* No answer: 7 tries, 500 ms doubling (RFC 8489 §6.2.1), then failed. */
static void no_answer_fails(void **state)
{
    (void)state;
    fixture f;
    memset(&f, 0, sizeof(f));
    punch_turn_cfg c = {.server = SERVER, .username = "alice", .password = "secret",
                        .random = counting_random, .random_ctx = &f.rnd};
    assert_int_equal(punch_turn_init(&f.t, &c, 0), 0);
    uint64_t at = 0, rto = 500;
    for (int i = 1; i < 7; i++) {
        take(&f);
        at += rto;
        rto *= 2;
        assert_int_equal(punch_turn_next_timeout(&f.t), at);
        punch_turn_handle_timeout(&f.t, at);
    }
    take(&f);
    assert_int_equal(f.t.state, PUNCH_TURN_ALLOCATING);
    assert_int_equal(punch_turn_next_timeout(&f.t), at + 16 * 500); /* Rm x RTO: 39.5 s */
    punch_turn_handle_timeout(&f.t, punch_turn_next_timeout(&f.t));
    assert_int_equal(f.t.state, PUNCH_TURN_FAILED);
    assert_string_equal(f.t.why, "no answer from the TURN server");
    nothing_sent(&f);
}

/* Over TCP or TLS (cfg.reliable) a request goes once (RFC 8489 §6.2.2)
 * and fails at the same 39.5 s; a lost connection gives up at once. */
static void over_a_stream(void **state)
{
    (void)state;
    fixture f;
    memset(&f, 0, sizeof(f));
    punch_turn_cfg c = {.server = SERVER, .username = "alice", .password = "secret",
                        .random = counting_random, .random_ctx = &f.rnd, .reliable = true};
    assert_int_equal(punch_turn_init(&f.t, &c, 0), 0);
    take(&f);
    uint64_t at;
    while ((at = punch_turn_next_timeout(&f.t)) != UINT64_MAX && at < 39500) {
        punch_turn_handle_timeout(&f.t, at);
        nothing_sent(&f);
        assert_int_equal(f.t.state, PUNCH_TURN_ALLOCATING);
    }
    assert_int_equal(at, 39500);
    punch_turn_handle_timeout(&f.t, at);
    assert_int_equal(f.t.state, PUNCH_TURN_FAILED);

    assert_int_equal(punch_turn_init(&f.t, &c, 0), 0);
    punch_turn_give_up(&f.t, "TLS: certificate verification failed: hostname mismatch");
    assert_int_equal(f.t.state, PUNCH_TURN_FAILED);
    assert_string_equal(f.t.why, "TLS: certificate verification failed: hostname mismatch");
    assert_int_equal(punch_turn_next_timeout(&f.t), UINT64_MAX);
    punch_turn_give_up(&f.t, "again"); /* told once */
    assert_string_equal(f.t.why, "TLS: certificate verification failed: hostname mismatch");
}

/* A 401 to the signed request refuses the credentials: failed, saying so. */
static void wrong_password_fails(void **state)
{
    (void)state;
    fixture f;
    memset(&f, 0, sizeof(f));
    punch_turn_cfg c = {.server = SERVER, .username = "alice", .password = "wrong",
                        .random = counting_random, .random_ctx = &f.rnd};
    assert_int_equal(punch_turn_init(&f.t, &c, 0), 0);
    take(&f);
    answer(&f, 20, PUNCH_STUN_ERROR, 401, "n", 0, UNSIGNED);
    take(&f);
    answer(&f, 40, PUNCH_STUN_ERROR, 401, "n", 0, UNSIGNED);
    assert_int_equal(f.t.state, PUNCH_TURN_FAILED);
    assert_string_equal(f.t.why, "the TURN server refused the allocation: 401 Unauthorized");
}

/* ---- slots over hours: release, quarantine, reuse ---- */

/* The peer address of the request taken last. */
static punch_addr request_peer(fixture *f)
{
    punch_addr a;
    assert_int_equal(
        punch_stun_read_addr(&f->m, punch_stun_find(&f->m, PUNCH_STUN_ATTR_XOR_PEER_ADDRESS), &a),
        0);
    return a;
}

static punch_addr peer_n(unsigned n)
{
    return (punch_addr){.family = PUNCH_AF_INET, .ip = {198, 51, 100, (uint8_t)(1 + n % 250)},
                        .port = (uint16_t)(20000 + n)};
}

/* The server's view of channels (RFC 8656 §12): per channel number the
 * address it was bound to and when it was last bound; a ChannelBind that
 * moves either within 600 + 300 s is a violation. */
typedef struct channel_book {
    punch_addr addr[PUNCH_TURN_MAX_PEERS];
    uint64_t bound_ms[PUNCH_TURN_MAX_PEERS];
    bool used[PUNCH_TURN_MAX_PEERS];
    unsigned violations, binds, permissions, refreshes_of_dead;
} channel_book;

static void book_bind(channel_book *b, uint64_t now, uint16_t channel, const punch_addr *addr)
{
    unsigned k = channel - PUNCH_STUN_CHANNEL_MIN;
    assert_true(k < PUNCH_TURN_MAX_PEERS);
    for (unsigned i = 0; i < PUNCH_TURN_MAX_PEERS; i++) {
        bool same_addr = b->used[i] && punch_addr_equal(&b->addr[i], addr);
        bool fresh = b->used[i] && now < b->bound_ms[i] + (600 + 300) * 1000ull;
        if (fresh && ((i == k && !same_addr) || (i != k && same_addr)))
            b->violations++;
    }
    b->used[k] = true;
    b->addr[k] = *addr;
    b->bound_ms[k] = now;
    b->binds++;
}

/* Answer every request queued with success, as a server would, checking
 * that peer requests are for live addresses only (live: n_live of them). */
static void serve(fixture *f, channel_book *b, uint64_t now, const punch_addr *live, size_t n_live)
{
    while (punch_turn_poll_transmit(&f->t, f->req, sizeof(f->req), &f->req_len) == 1) {
        assert_int_equal(punch_stun_decode(&f->m, f->req, f->req_len), 0);
        if (f->m.method == PUNCH_STUN_CHANNEL_BIND || f->m.method == PUNCH_STUN_CREATE_PERMISSION) {
            punch_addr a = request_peer(f);
            bool is_live = false;
            for (size_t i = 0; i < n_live; i++)
                is_live = is_live || punch_addr_equal(&live[i], &a);
            b->refreshes_of_dead += !is_live;
            if (f->m.method == PUNCH_STUN_CHANNEL_BIND) {
                uint16_t ch;
                assert_int_equal(punch_stun_read_channel(
                                     punch_stun_find(&f->m, PUNCH_STUN_ATTR_CHANNEL_NUMBER), &ch),
                                 0);
                book_bind(b, now, ch, &a);
            } else {
                b->permissions++;
            }
        }
        answer(f, now, PUNCH_STUN_SUCCESS, 0, NULL, f->m.method == PUNCH_STUN_REFRESH ? 600 : 0,
               SIGNED);
    }
}

/* Run the client's timers up to until, serving every request. */
static void run_until(fixture *f, channel_book *b, uint64_t until, const punch_addr *live,
                      size_t n_live)
{
    for (uint64_t at; (at = punch_turn_next_timeout(&f->t)) <= until;) {
        punch_turn_handle_timeout(&f->t, at);
        serve(f, b, at, live, n_live);
    }
}

/* Whether data for addr goes as ChannelData (its channel bound). */
static bool on_channel(fixture *f, const punch_addr *addr)
{
    uint8_t out[64];
    size_t len;
    return punch_turn_wrap(&f->t, addr, (const uint8_t *)"x", 1, out, sizeof(out), &len) == 0 &&
           (out[0] & 0xF0) == 0x40;
}

/* 100 peers one after another, a new one every 90 s, each for 180 s (two
 * at a time), 2.5 hours in all: every one gets a permission and a channel
 * out of 16 slots, no channel number or address is bound anew inside its
 * quarantine, and nothing is refreshed for a peer that ended. */
static void hundred_peers_in_sequence(void **state)
{
    (void)state;
    fixture f;
    channel_book b = {0};
    allocate(&f);
    punch_addr live[2] = {0};
    for (unsigned n = 0; n < 100; n++) {
        uint64_t t0 = 100000 + n * 90000ull;
        run_until(&f, &b, t0, live, 2);
        if (n >= 2) { /* the one of 180 s ago ends */
            assert_int_equal(punch_turn_release(&f.t, &live[n % 2]), 0);
            assert_int_equal(punch_turn_release(&f.t, &live[n % 2]), PUNCH_ERR_NOTFOUND);
        }
        live[n % 2] = peer_n(n);
        assert_int_equal(punch_turn_permit(&f.t, t0, &live[n % 2]), 0);
        serve(&f, &b, t0 + 20, live, 2);
        assert_true(on_channel(&f, &live[n % 2]));
    }
    run_until(&f, &b, 100000 + 100 * 90000ull + 3 * 3600 * 1000ull, live, 2);
    assert_int_equal(b.violations, 0);
    assert_int_equal(b.refreshes_of_dead, 0);
    assert_int_equal(f.t.no_slot, 0);
    assert_true(b.binds >= 100);
    assert_int_equal(f.t.state, PUNCH_TURN_ALLOCATED);
    assert_true(f.t.refreshes >= 25); /* the allocation lives on: 5.3 h / 540 s */
}

/* Sixteen peers let go: a seventeenth address waits out the quarantine
 * (600 s of channel from its last ChannelBind, 5 s of trip, 300 s), while
 * one of the sixteen comes back at once on its own channel; released,
 * nothing is sent for them any more. */
static void quarantine_before_reuse(void **state)
{
    (void)state;
    fixture f;
    channel_book b = {0};
    allocate(&f);
    punch_addr peers[PUNCH_TURN_MAX_PEERS + 1];
    for (unsigned n = 0; n <= PUNCH_TURN_MAX_PEERS; n++)
        peers[n] = peer_n(n);
    for (unsigned n = 0; n < PUNCH_TURN_MAX_PEERS; n++)
        assert_int_equal(punch_turn_permit(&f.t, 100, &peers[n]), 0);
    /* 32 requests at once overflow the queue of 8: the rest come again. */
    serve(&f, &b, 120, peers, PUNCH_TURN_MAX_PEERS);
    run_until(&f, &b, 10000, peers, PUNCH_TURN_MAX_PEERS);
    for (unsigned n = 0; n < PUNCH_TURN_MAX_PEERS; n++)
        assert_true(on_channel(&f, &peers[n]));
    unsigned binds = b.binds;
    assert_int_equal(punch_turn_permit(&f.t, 200, &peers[16]), PUNCH_ERR_LIMIT);
    for (unsigned n = 0; n < PUNCH_TURN_MAX_PEERS; n++)
        assert_int_equal(punch_turn_release(&f.t, &peers[n]), 0);
    /* Only the allocation is refreshed from now on. */
    run_until(&f, &b, 2000000, NULL, 0);
    assert_int_equal(b.refreshes_of_dead, 0);
    assert_int_equal(b.binds, binds);
    /* The first slot out of quarantine: its last ChannelBind + 905 s. */
    uint64_t reuse = UINT64_MAX;
    for (int i = 0; i < PUNCH_TURN_MAX_PEERS; i++)
        if (punch_turn_reuse_at(&f.t, i) < reuse)
            reuse = punch_turn_reuse_at(&f.t, i);
    assert_true(reuse >= 100 + (600 + 5 + 300) * 1000ull);
    assert_true(reuse < 10000 + (600 + 5 + 300) * 1000ull);
    /* Back before the end: its own slot, on the channel it had. */
    assert_int_equal(punch_turn_permit(&f.t, 300000, &peers[3]), 0);
    assert_true(on_channel(&f, &peers[3])); /* still bound at the server: 600 s */
    serve(&f, &b, 300020, &peers[3], 1);
    assert_int_equal(punch_turn_permit(&f.t, reuse - 1, &peers[16]), PUNCH_ERR_LIMIT);
    assert_int_equal(f.t.no_slot, 2);
    assert_int_equal(punch_turn_permit(&f.t, reuse, &peers[16]), 0);
    punch_addr now_live[2] = {peers[3], peers[16]};
    serve(&f, &b, reuse + 20, now_live, 2);
    assert_true(on_channel(&f, &peers[16]));
    assert_int_equal(b.violations, 0);
    assert_int_equal(b.refreshes_of_dead, 0);
}

/* The server forgot the allocation (437 to a Refresh): a new Allocate,
 * and the live peer is permitted and bound again on the new one. */
static void forgotten_allocation_reallocates(void **state)
{
    (void)state;
    fixture f;
    channel_book b = {0};
    allocate(&f);
    assert_int_equal(punch_turn_permit(&f.t, 100, &PEER), 0);
    serve(&f, &b, 120, &PEER, 1);
    punch_turn_handle_timeout(&f.t, 40 + 540000);
    take(&f);
    while (f.m.method != PUNCH_STUN_REFRESH)
        take(&f);
    answer(&f, 540100, PUNCH_STUN_ERROR, 437, NULL, 0, UNSIGNED);
    assert_int_equal(f.t.state, PUNCH_TURN_ALLOCATING);
    assert_int_equal(f.t.reallocations, 1);
    assert_string_equal(f.t.why, "the TURN server forgot our allocation (437): allocating anew");
    do /* the peer's renewals queued before it are not answered */
        take(&f);
    while (f.m.method != PUNCH_STUN_ALLOCATE);
    assert_signed(&f, "nonce-1");
    answer(&f, 540200, PUNCH_STUN_SUCCESS, 0, NULL, 600, SIGNED);
    assert_int_equal(f.t.state, PUNCH_TURN_ALLOCATED);
    assert_false(on_channel(&f, &PEER));
    assert_true(punch_turn_next_timeout(&f.t) <= 540200);
    punch_turn_handle_timeout(&f.t, 540200);
    serve(&f, &b, 540220, &PEER, 1);
    assert_true(on_channel(&f, &PEER));
    assert_int_equal(b.refreshes_of_dead, 0);
}

/* ChannelData on a channel whose ChannelBind is still on its way is the
 * peer's (the server uses the channel at once; our answer may be lost);
 * let go, it is taken until the server's binding may have expired (its
 * last ChannelBind + 5 s + 600 s), then dropped. */
static void channel_data_before_the_answer(void **state)
{
    (void)state;
    fixture f;
    allocate(&f);
    assert_int_equal(punch_turn_permit(&f.t, 100, &PEER), 0);
    take(&f);
    take(&f);
    assert_int_equal(f.m.method, PUNCH_STUN_CHANNEL_BIND);
    uint16_t ch;
    assert_int_equal(
        punch_stun_read_channel(punch_stun_find(&f.m, PUNCH_STUN_ATTR_CHANNEL_NUMBER), &ch), 0);
    uint8_t cd[16];
    size_t len;
    assert_int_equal(punch_stun_channel_encode(cd, sizeof(cd), ch, (const uint8_t *)"yo", 2, false,
                                               &len),
                     0);
    punch_addr from;
    const uint8_t *data;
    size_t dlen;
    assert_int_equal(punch_turn_handle(&f.t, 150, cd, len, &from, &data, &dlen), 1);
    assert_true(punch_addr_equal(&from, &PEER));
    assert_false(on_channel(&f, &PEER)); /* we send on it only once it is confirmed */
    assert_int_equal(punch_turn_release(&f.t, &PEER), 0);
    assert_int_equal(punch_turn_handle(&f.t, 100 + 604999, cd, len, &from, &data, &dlen), 1);
    assert_int_equal(punch_turn_handle(&f.t, 100 + 605000, cd, len, &from, &data, &dlen), 0);
}

/* A path through the relay went quiet: a Refresh now, one at a time. */
static void refresh_now(void **state)
{
    (void)state;
    fixture f;
    allocate(&f);
    punch_turn_refresh_now(&f.t, 1000);
    take(&f);
    assert_int_equal(f.m.method, PUNCH_STUN_REFRESH);
    punch_turn_refresh_now(&f.t, 1100);
    nothing_sent(&f);
    answer(&f, 1200, PUNCH_STUN_SUCCESS, 0, NULL, 600, SIGNED);
    assert_int_equal(f.t.refreshes, 1);
    assert_int_equal(punch_turn_next_timeout(&f.t), 1200 + 540000);
}

static void bad_config(void **state)
{
    (void)state;
    punch_turn t;
    uint8_t rnd = 0;
    punch_turn_cfg c = {.server = SERVER, .username = "alice", .password = "",
                        .random = counting_random, .random_ctx = &rnd};
    assert_int_equal(punch_turn_init(&t, &c, 0), PUNCH_ERR_INVAL);
    c.password = "x";
    c.server.port = 0;
    assert_int_equal(punch_turn_init(&t, &c, 0), PUNCH_ERR_INVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(long_term_credentials),
        cmocka_unit_test(forged_success_dropped),
        cmocka_unit_test(refresh_and_stale_nonce),
        cmocka_unit_test(permission_channel_and_data),
        cmocka_unit_test(no_answer_fails),
        cmocka_unit_test(over_a_stream),
        cmocka_unit_test(wrong_password_fails),
        cmocka_unit_test(hundred_peers_in_sequence),
        cmocka_unit_test(quarantine_before_reuse),
        cmocka_unit_test(forgotten_allocation_reallocates),
        cmocka_unit_test(channel_data_before_the_answer),
        cmocka_unit_test(refresh_now),
        cmocka_unit_test(bad_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
