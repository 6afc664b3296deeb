/* SPDX-License-Identifier: MIT */
/*
 * The sans-I/O rendezvous and relay service (src/server/rendezvous.c), in
 * virtual time: simulated peers build their messages with punch_msg_encode
 * and punch_auth_mac, from identities with fixed secrets, and check every
 * answer the way a peer would (decode, MAC with its own derived key).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "crypto/auth.h"
#include "server/rendezvous.h"
#include "wire/msg.h"

static punch_addr v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint16_t port)
{
    punch_addr x = {.family = PUNCH_AF_INET, .port = port};
    x.ip[0] = a, x.ip[1] = b, x.ip[2] = c, x.ip[3] = d;
    return x;
}

static const punch_addr *server_local(void)
{
    static punch_addr s;
    s = v4(192, 0, 2, 1, 3478);
    return &s;
}

static const uint8_t COOKIE_SECRET[32] = {42, 1, 2, 3};

/* Deterministic randomness: a counter run through xorshift64. */
static void test_random(void *arg, uint8_t *buf, size_t len)
{
    uint64_t *state = arg;
    for (size_t i = 0; i < len; i++) {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        buf[i] = (uint8_t)*state;
    }
}

static uint64_t rng_state;
static punch_identity server_id;

static void identity_from_byte(punch_identity *id, uint8_t b)
{
    uint8_t secret[32];
    for (int i = 0; i < 32; i++)
        secret[i] = (uint8_t)(b * 31 + i);
    assert_int_equal(punch_identity_from_secret(id, secret), 0);
}

static punch_rendezvous_cfg base_cfg(void)
{
    rng_state = 0x1234567887654321ull;
    identity_from_byte(&server_id, 1);
    punch_rendezvous_cfg cfg = {.identity = server_id, .random = test_random,
                                .random_arg = &rng_state, .max_peers = 16, .max_sessions = 8};
    memcpy(cfg.cookie_secret, COOKIE_SECRET, sizeof(COOKIE_SECRET));
    memset(cfg.hash_key, 7, sizeof(cfg.hash_key));
    return cfg;
}

static punch_rendezvous *make(const punch_rendezvous_cfg *cfg)
{
    punch_rendezvous *rv = NULL;
    assert_int_equal(punch_rendezvous_new(&rv, cfg), 0);
    return rv;
}

/* A simulated peer. */
typedef struct tpeer {
    punch_identity id;
    uint8_t mac_key[PUNCH_AUTH_KEY_LEN];
    punch_addr addr;
    const char *name;
    size_t n_priv;
    punch_addr priv[2];
    uint8_t cookie[PUNCH_MSG_COOKIE_LEN];
    uint8_t token[PUNCH_MSG_TOKEN_LEN]; /* from the latest REGISTERED */
    bool use_token;                     /* REGISTER carries it */
    uint64_t txn;
} tpeer;

static void peer_init(tpeer *p, uint8_t seed, const char *name, punch_addr addr)
{
    memset(p, 0, sizeof(*p));
    identity_from_byte(&p->id, seed);
    assert_int_equal(punch_auth_derive(&p->id, server_id.public_key, p->mac_key), 0);
    p->name = name;
    p->addr = addr;
    p->n_priv = 1;
    p->priv[0] = v4(10, seed, 0, 2, 5000);
}

typedef struct dgram {
    uint8_t buf[PUNCH_RV_MAX_DATAGRAM];
    size_t len;
} dgram;

static dgram encode(const punch_msg *m, const uint8_t *mac_key)
{
    dgram d;
    assert_int_equal(punch_msg_encode(m, d.buf, sizeof(d.buf), &d.len), 0);
    if (mac_key)
        punch_auth_mac(mac_key, d.buf, d.len - PUNCH_MSG_MAC_LEN, d.buf + d.len - PUNCH_MSG_MAC_LEN);
    return d;
}

static void txid_of(tpeer *p, uint8_t txid[PUNCH_MSG_TXID_LEN])
{
    p->txn++;
    for (int i = 0; i < PUNCH_MSG_TXID_LEN; i++)
        txid[i] = (uint8_t)(p->txn >> (8 * i)) ^ p->id.public_key[i];
}

static dgram hello(tpeer *p, size_t pad_to)
{
    punch_msg m = {.type = PUNCH_MSG_HELLO};
    txid_of(p, m.txid);
    dgram d = encode(&m, NULL);
    d.len = pad_to; /* shorter: cut; the encoder writes exactly HELLO_LEN */
    return d;
}

static dgram register_msg(tpeer *p, const uint8_t *mac_key)
{
    punch_msg m = {.type = PUNCH_MSG_REGISTER, .n_private = p->n_priv};
    txid_of(p, m.txid);
    m.sequence = p->txn; /* larger with every REGISTER, as a peer's clock */
    memcpy(m.cookie, p->cookie, sizeof(m.cookie));
    memcpy(m.key, p->id.public_key, PUNCH_KEY_LEN);
    snprintf(m.name, sizeof(m.name), "%s", p->name);
    memcpy(m.private_addr, p->priv, sizeof(p->priv));
    m.rtt_ms = (uint16_t)(10 + p->addr.port % 7); /* as measured by the peer */
    m.nat_mapping = PUNCH_MSG_NAT_APDM;
    m.nat_step = 1;
    m.nat_port = (uint16_t)(p->addr.port + 3);
    if (p->use_token) {
        m.token_len = PUNCH_MSG_TOKEN_LEN;
        memcpy(m.token, p->token, PUNCH_MSG_TOKEN_LEN);
    }
    return encode(&m, mac_key ? mac_key : p->mac_key);
}

static dgram connect_msg(tpeer *p, const char *to, const uint8_t *pinned)
{
    punch_msg m = {.type = PUNCH_MSG_CONNECT};
    txid_of(p, m.txid);
    memcpy(m.key, p->id.public_key, PUNCH_KEY_LEN);
    if (pinned)
        memcpy(m.peer_key, pinned, PUNCH_KEY_LEN);
    snprintf(m.name, sizeof(m.name), "%s", to);
    return encode(&m, p->mac_key);
}

static dgram relay_msg(const uint8_t *session, const char *payload)
{
    punch_msg m = {.type = PUNCH_MSG_RELAY, .payload = (const uint8_t *)payload,
                   .payload_len = strlen(payload)};
    memcpy(m.session, session, PUNCH_MSG_SESSION_LEN);
    return encode(&m, NULL);
}

static void send_from(punch_rendezvous *rv, uint64_t now, const punch_addr *src, const dgram *d)
{
    assert_int_equal(punch_rendezvous_handle(rv, now, src, server_local(), d->buf, d->len), 0);
}

/* The next answer: decoded into m, its bytes kept in out. */
typedef struct answer {
    punch_rendezvous_out out;
    dgram d;
    punch_msg m;
} answer;

static bool next_answer(punch_rendezvous *rv, answer *a)
{
    int rc = punch_rendezvous_poll_transmit(rv, &a->out, a->d.buf, sizeof(a->d.buf));
    assert_true(rc == 0 || rc == 1);
    if (rc == 0)
        return false;
    a->d.len = a->out.len;
    assert_true(punch_addr_equal(&a->out.local, server_local()));
    assert_int_equal(punch_msg_decode(a->d.buf, a->d.len, &a->m), 0);
    return true;
}

static void expect_nothing(punch_rendezvous *rv)
{
    answer a;
    assert_false(next_answer(rv, &a));
}

/* The next answer goes to p, and (for signalling) carries p's MAC. */
static answer expect_to(punch_rendezvous *rv, const tpeer *p, punch_msg_type type)
{
    answer a;
    assert_true(next_answer(rv, &a));
    assert_int_equal(a.m.type, type);
    assert_true(punch_addr_equal(&a.out.dst, &p->addr));
    if (punch_msg_has_mac(type))
        assert_int_equal(punch_auth_verify(p->mac_key, a.d.buf, a.m.mac_offset, a.m.mac), 0);
    return a;
}

/* REFUSED with code, MAC'd for p, and no larger than the request. */
static void expect_refused(punch_rendezvous *rv, const tpeer *p, const dgram *req,
                           punch_refusal code)
{
    answer a = expect_to(rv, p, PUNCH_MSG_REFUSED);
    assert_int_equal(a.m.code, code);
    assert_memory_equal(a.m.txid, req->buf + 2, PUNCH_MSG_TXID_LEN);
    assert_true(a.d.len <= req->len);
    expect_nothing(rv);
}

static void get_cookie(punch_rendezvous *rv, uint64_t now, tpeer *p)
{
    dgram h = hello(p, PUNCH_MSG_HELLO_LEN);
    send_from(rv, now, &p->addr, &h);
    answer a = expect_to(rv, p, PUNCH_MSG_COOKIE);
    assert_memory_equal(a.m.txid, h.buf + 2, PUNCH_MSG_TXID_LEN);
    assert_memory_equal(a.m.key, server_id.public_key, PUNCH_KEY_LEN);
    assert_true(a.d.len <= h.len); /* SPEC.md §4: no amplification */
    memcpy(p->cookie, a.m.cookie, sizeof(p->cookie));
    expect_nothing(rv);
}

/* REGISTER with the current cookie; expects REGISTERED first and keeps
 * its cookie. */
static answer register_answered(punch_rendezvous *rv, uint64_t now, tpeer *p)
{
    dgram r = register_msg(p, NULL);
    send_from(rv, now, &p->addr, &r);
    answer a = expect_to(rv, p, PUNCH_MSG_REGISTERED);
    assert_memory_equal(a.m.txid, r.buf + 2, PUNCH_MSG_TXID_LEN);
    assert_true(punch_addr_equal(&a.m.public_addr, &p->addr));
    memcpy(p->cookie, a.m.cookie, sizeof(p->cookie));
    assert_int_equal(a.m.token_len, PUNCH_MSG_TOKEN_LEN); /* every REGISTERED has one */
    memcpy(p->token, a.m.token, sizeof(p->token));
    return a;
}

/* The same, and nothing else is sent. */
static answer do_register(punch_rendezvous *rv, uint64_t now, tpeer *p)
{
    answer a = register_answered(rv, now, p);
    expect_nothing(rv);
    return a;
}

static void join(punch_rendezvous *rv, uint64_t now, tpeer *p)
{
    get_cookie(rv, now, p);
    do_register(rv, now, p);
}

static bool next_event(punch_rendezvous *rv, punch_rendezvous_event *ev)
{
    return punch_rendezvous_poll_event(rv, ev) == 1;
}

static void drain_events(punch_rendezvous *rv)
{
    punch_rendezvous_event ev;
    while (next_event(rv, &ev))
        ;
}

/* A rendezvous of cfg with alice, and carol unless NULL, joined at
 * t = 1000 and the events of it drained. */
static punch_rendezvous *make_joined(const punch_rendezvous_cfg *cfg, tpeer *alice, tpeer *carol)
{
    punch_rendezvous *rv = make(cfg);
    peer_init(alice, 2, "alice", v4(203, 0, 113, 7, 40001));
    join(rv, 1000, alice);
    if (carol) {
        peer_init(carol, 3, "carol", v4(203, 0, 113, 8, 40001));
        join(rv, 1000, carol);
    }
    drain_events(rv);
    return rv;
}

static void assert_info(const punch_rendezvous_peer_info *info, const tpeer *p)
{
    assert_string_equal(info->name, p->name);
    assert_memory_equal(info->key, p->id.public_key, PUNCH_KEY_LEN);
    assert_true(punch_addr_equal(&info->public_addr, &p->addr));
    assert_int_equal(info->n_private, p->n_priv);
    for (size_t i = 0; i < p->n_priv; i++)
        assert_true(punch_addr_equal(&info->private_addr[i], &p->priv[i]));
}

/* The INTRODUCE p gets tells it about other. */
static void assert_introduces(const answer *a, const tpeer *other)
{
    assert_string_equal(a->m.name, other->name);
    assert_memory_equal(a->m.key, other->id.public_key, PUNCH_KEY_LEN);
    assert_true(punch_addr_equal(&a->m.public_addr, &other->addr));
    assert_int_equal(a->m.rtt_ms, 10 + other->addr.port % 7); /* passed on */
    assert_int_equal(a->m.nat_mapping, PUNCH_MSG_NAT_APDM);
    assert_int_equal(a->m.nat_step, 1);
    assert_int_equal(a->m.nat_port, other->addr.port + 3);
    assert_int_equal(a->m.n_private, other->n_priv);
    for (size_t i = 0; i < other->n_priv; i++)
        assert_true(punch_addr_equal(&a->m.private_addr[i], &other->priv[i]));
}

typedef struct pair {
    punch_rendezvous *rv;
    tpeer alice, bob;
    uint8_t session[PUNCH_MSG_SESSION_LEN];
    uint8_t flags;
} pair;

/* alice and bob registered at t = 1000, alice connected to bob at 2000. */
static void setup_pair(pair *x, const punch_rendezvous_cfg *cfg)
{
    x->rv = make(cfg);
    peer_init(&x->alice, 2, "alice", v4(203, 0, 113, 7, 40001));
    peer_init(&x->bob, 3, "bob", v4(198, 51, 100, 9, 31000));
    x->bob.n_priv = 2;
    x->bob.priv[1] = v4(172, 16, 0, 9, 4000);
    join(x->rv, 1000, &x->alice);
    join(x->rv, 1000, &x->bob);
    dgram c = connect_msg(&x->alice, "bob", NULL);
    send_from(x->rv, 2000, &x->alice.addr, &c);
    answer to_a = expect_to(x->rv, &x->alice, PUNCH_MSG_INTRODUCE);
    answer to_b = expect_to(x->rv, &x->bob, PUNCH_MSG_INTRODUCE);
    expect_nothing(x->rv);
    assert_memory_equal(to_a.m.txid, c.buf + 2, PUNCH_MSG_TXID_LEN);
    assert_memory_equal(to_a.m.session, to_b.m.session, PUNCH_MSG_SESSION_LEN);
    assert_introduces(&to_a, &x->bob);
    assert_introduces(&to_b, &x->alice);
    assert_true(to_a.m.flags & PUNCH_INTRO_INITIATOR);
    assert_false(to_b.m.flags & PUNCH_INTRO_INITIATOR);
    assert_int_equal(to_a.m.flags & PUNCH_INTRO_RELAY, to_b.m.flags & PUNCH_INTRO_RELAY);
    memcpy(x->session, to_a.m.session, PUNCH_MSG_SESSION_LEN);
    x->flags = to_a.m.flags;
    drain_events(x->rv);
}

/* ---- the full exchange ---- */

/* full_exchange, step 1: HELLO, REGISTER, keepalives, a changed private
 * list, and bob joining. */
static void exchange_register(punch_rendezvous *rv, tpeer *alice, tpeer *bob)
{
    punch_rendezvous_event ev;

    /* HELLO -> COOKIE: the cookie is the one for this address and minute. */
    get_cookie(rv, 1000, alice);
    uint8_t want[PUNCH_AUTH_COOKIE_LEN];
    punch_auth_cookie(COOKIE_SECRET, &alice->addr, 0, want);
    assert_memory_equal(alice->cookie, want, sizeof(want));
    assert_false(next_event(rv, &ev)); /* no state for a HELLO */
    assert_int_equal(punch_rendezvous_counters_get(rv)->peers, 0);

    /* REGISTER -> REGISTERED: public endpoint as seen, MAC'd for alice-> */
    answer a = do_register(rv, 1000, alice);
    assert_int_equal(a.m.keepalive_s, PUNCH_RV_DEFAULT_KEEPALIVE_S);
    assert_true(next_event(rv, &ev));
    assert_int_equal(ev.type, PUNCH_RV_EVENT_REGISTERED);
    assert_info(&ev.peer[0], alice);
    assert_false(next_event(rv, &ev));

    /* A keepalive (same endpoints) answers but reports nothing new. */
    do_register(rv, 26000, alice);
    assert_false(next_event(rv, &ev));
    /* A changed private list is news. */
    alice->n_priv = 2;
    alice->priv[1] = v4(10, 9, 9, 9, 5001);
    do_register(rv, 27000, alice);
    assert_true(next_event(rv, &ev));
    assert_info(&ev.peer[0], alice);

    join(rv, 27000, bob);
    assert_true(next_event(rv, &ev));
    assert_info(&ev.peer[0], bob);
}

/* Step 2: CONNECT, and both introduced. Returns the two INTRODUCEs. */
static void exchange_introduce(punch_rendezvous *rv, tpeer *alice, tpeer *bob, answer *out_a,
                               answer *out_b)
{
    punch_rendezvous_event ev;

    /* CONNECT -> INTRODUCE to both, each about the other. */
    dgram c = connect_msg(alice, "bob", NULL);
    send_from(rv, 28000, &alice->addr, &c);
    answer to_a = expect_to(rv, alice, PUNCH_MSG_INTRODUCE);
    answer to_b = expect_to(rv, bob, PUNCH_MSG_INTRODUCE);
    expect_nothing(rv);
    assert_memory_equal(to_a.m.txid, c.buf + 2, PUNCH_MSG_TXID_LEN);
    assert_memory_not_equal(to_b.m.txid, c.buf + 2, PUNCH_MSG_TXID_LEN);
    assert_memory_equal(to_a.m.session, to_b.m.session, PUNCH_MSG_SESSION_LEN);
    assert_int_equal(to_a.m.flags, PUNCH_INTRO_INITIATOR | PUNCH_INTRO_RELAY);
    assert_int_equal(to_b.m.flags, PUNCH_INTRO_RELAY);
    assert_introduces(&to_a, bob);
    assert_introduces(&to_b, alice);
    assert_true(next_event(rv, &ev));
    assert_int_equal(ev.type, PUNCH_RV_EVENT_INTRODUCED);
    assert_info(&ev.peer[0], alice);
    assert_info(&ev.peer[1], bob);
    assert_true(ev.relay);
    assert_memory_equal(ev.session, to_a.m.session, PUNCH_MSG_SESSION_LEN);
    *out_a = to_a;
    *out_b = to_b;
}

/* Step 3: relaying both ways. The two datagrams go to *out_r1, *out_r2. */
static void exchange_relay(punch_rendezvous *rv, tpeer *alice, tpeer *bob, const answer *to_a,
                           const answer *to_b, dgram *out_r1, dgram *out_r2)
{
    punch_rendezvous_event ev;

    /* RELAY both ways: the same datagram, to the other's public endpoint. */
    dgram r1 = relay_msg(to_a->m.session, "hello bob");
    send_from(rv, 29000, &alice->addr, &r1);
    answer f1 = expect_to(rv, bob, PUNCH_MSG_RELAY);
    assert_int_equal(f1.d.len, r1.len);
    assert_memory_equal(f1.d.buf, r1.buf, r1.len);
    assert_true(next_event(rv, &ev));
    assert_int_equal(ev.type, PUNCH_RV_EVENT_RELAY_OPENED);
    assert_info(&ev.peer[0], alice);
    assert_info(&ev.peer[1], bob);
    dgram r2 = relay_msg(to_b->m.session, "hi alice, from bob");
    send_from(rv, 29500, &bob->addr, &r2);
    answer f2 = expect_to(rv, alice, PUNCH_MSG_RELAY);
    assert_memory_equal(f2.d.buf, r2.buf, r2.len);
    assert_false(next_event(rv, &ev)); /* opened once */
    const punch_rendezvous_counters *k = punch_rendezvous_counters_get(rv);
    assert_int_equal(k->relayed, 2);
    assert_int_equal(k->relayed_bytes, r1.len + r2.len);
    *out_r1 = r1;
    *out_r2 = r2;
}

/* Step 4: the idle session closes at exactly its deadline. */
static void exchange_idle_close(punch_rendezvous *rv, tpeer *alice, tpeer *bob, const dgram *r1p,
                                const dgram *r2p)
{
    punch_rendezvous_event ev;
    const punch_rendezvous_counters *k = punch_rendezvous_counters_get(rv);
    dgram r1 = *r1p, r2 = *r2p;

    /* The session closes when idle for session_idle_ms: at exactly the deadline. */
    uint64_t deadline = 29500 + PUNCH_RV_DEFAULT_SESSION_IDLE_MS;
    /* peers expire first unless they keep alive */
    for (uint64_t t = 50000; t < deadline; t += 25000) {
        do_register(rv, t, alice);
        do_register(rv, t, bob);
    }
    punch_rendezvous_handle_timeout(rv, deadline - 1);
    assert_int_equal(k->sessions, 1);
    assert_false(next_event(rv, &ev));
    assert_true(punch_rendezvous_next_timeout(rv) <= deadline);
    punch_rendezvous_handle_timeout(rv, deadline);
    assert_int_equal(k->sessions, 0);
    assert_true(next_event(rv, &ev));
    assert_int_equal(ev.type, PUNCH_RV_EVENT_RELAY_CLOSED);
    assert_string_equal(ev.reason, "idle");
    assert_int_equal(ev.bytes[0], r1.len);
    assert_int_equal(ev.bytes[1], r2.len);
    assert_int_equal(ev.packets[0], 1);
    assert_int_equal(ev.packets[1], 1);
    /* Gone: relaying on it now is dropped. */
    send_from(rv, deadline, &alice->addr, &r1);
    expect_nothing(rv);
    assert_int_equal(k->relay_unknown, 1);
}

static void full_exchange(void **state)
{
    (void)state;
    punch_rendezvous_cfg cfg = base_cfg();
    punch_rendezvous *rv = make(&cfg);
    tpeer alice, bob;
    peer_init(&alice, 2, "alice", v4(203, 0, 113, 7, 40001));
    peer_init(&bob, 3, "bob", v4(198, 51, 100, 9, 31000));
    answer to_a, to_b;
    dgram r1, r2;
    exchange_register(rv, &alice, &bob);
    exchange_introduce(rv, &alice, &bob, &to_a, &to_b);
    exchange_relay(rv, &alice, &bob, &to_a, &to_b, &r1, &r2);
    exchange_idle_close(rv, &alice, &bob, &r1, &r2);
    punch_rendezvous_free(rv);
}

/* A RELAY is queued as it came, without a copy (rendezvous.h): taken at
 * once (poll_transmit_view) it is the caller's own buffer; still queued
 * when the next datagram comes in, it is copied then, so the caller may
 * reuse its buffer after that call. */
static void relayed_in_place_or_copied_before_the_next(void **state)
{
    (void)state;
    punch_rendezvous_cfg cfg = base_cfg();
    punch_rendezvous *rv = make(&cfg);
    tpeer alice, bob;
    peer_init(&alice, 2, "alice", v4(203, 0, 113, 7, 40001));
    peer_init(&bob, 3, "bob", v4(198, 51, 100, 9, 31000));
    answer to_a, to_b;
    exchange_register(rv, &alice, &bob);
    exchange_introduce(rv, &alice, &bob, &to_a, &to_b);
    drain_events(rv);
    dgram r1 = relay_msg(to_a.m.session, "first, from alice");
    dgram kept = r1;
    send_from(rv, 29000, &alice.addr, &r1);
    dgram r2 = relay_msg(to_b.m.session, "second, from bob");
    send_from(rv, 29001, &bob.addr, &r2);
    memset(r1.buf, 0, sizeof(r1.buf)); /* the caller's buffer, reused */
    answer f1 = expect_to(rv, &bob, PUNCH_MSG_RELAY);
    assert_int_equal(f1.d.len, kept.len);
    assert_memory_equal(f1.d.buf, kept.buf, kept.len);
    punch_rendezvous_out out;
    const uint8_t *data;
    assert_int_equal(punch_rendezvous_poll_transmit_view(rv, &out, &data), 1);
    assert_ptr_equal(data, r2.buf); /* not copied */
    assert_int_equal(out.len, r2.len);
    assert_true(punch_addr_equal(&out.dst, &alice.addr));
    assert_int_equal(punch_rendezvous_poll_transmit_view(rv, &out, &data), 0);
    punch_rendezvous_free(rv);
}

/* ---- unauthenticated input ---- */

static void hello_short_dropped_answers_never_larger(void **state)
{
    (void)state;
    punch_rendezvous_cfg cfg = base_cfg();
    punch_rendezvous *rv = make(&cfg);
    tpeer p;
    peer_init(&p, 2, "alice", v4(203, 0, 113, 7, 40001));
    dgram h = hello(&p, PUNCH_MSG_HELLO_LEN - 1);
    send_from(rv, 1000, &p.addr, &h);
    expect_nothing(rv);
    assert_int_equal(punch_rendezvous_counters_get(rv)->malformed, 1);
    get_cookie(rv, 1000, &p); /* asserts COOKIE <= HELLO */
    /* Garbage of every type byte: never an answer. */
    uint8_t junk[64] = {PUNCH_MSG_MAGIC};
    for (int t = 0; t < 256; t++) {
        junk[1] = (uint8_t)t;
        assert_int_equal(punch_rendezvous_handle(rv, 1000, &p.addr, NULL, junk, sizeof(junk)), 0);
        answer a;
        assert_false(next_answer(rv, &a));
    }
    punch_rendezvous_free(rv);
}

static void hello_rate_limited_per_source(void **state)
{
    (void)state;
    punch_rendezvous_cfg cfg = base_cfg();
    cfg.rate = (punch_ratelimit_cfg){.per_sec = 10, .burst = 10, .slots = 64};
    punch_rendezvous *rv = make(&cfg);
    tpeer p;
    peer_init(&p, 2, "alice", v4(203, 0, 113, 7, 40001));
    int answered = 0;
    for (int i = 0; i < 20; i++) {
        dgram h = hello(&p, PUNCH_MSG_HELLO_LEN);
        send_from(rv, 1000, &p.addr, &h);
        answer a;
        while (next_answer(rv, &a))
            answered++;
    }
    assert_int_equal(answered, 10);
    assert_int_equal(punch_rendezvous_counters_get(rv)->rate_limited, 10);
    assert_int_equal(punch_rendezvous_counters_get(rv)->rate_limited_sources, 1);
    punch_rendezvous_free(rv);
}

static void stale_cookie_refused(void **state)
{
    (void)state;
    punch_rendezvous_cfg cfg = base_cfg();
    cfg.peer_expiry_ms = 600000; /* so alice is still known two periods later */
    punch_rendezvous *rv = make(&cfg);
    tpeer alice, carol;
    peer_init(&alice, 2, "alice", v4(203, 0, 113, 7, 40001));
    peer_init(&carol, 4, "carol", v4(203, 0, 113, 8, 40001));
    join(rv, 1000, &alice); /* cookie of period 0 */
    /* Period 1 still takes a period-0 cookie. */
    do_register(rv, 61000, &alice); /* now holds a period-1 cookie */
    /* Period 3: stale. */
    dgram r = register_msg(&alice, NULL);
    send_from(rv, 3 * PUNCH_RV_COOKIE_PERIOD_MS + 5, &alice.addr, &r);
    expect_refused(rv, &alice, &r, PUNCH_REFUSED_COOKIE);
    /* An unknown key with a stale cookie gets the same answer. */
    get_cookie(rv, 1000, &carol);
    dgram rc = register_msg(&carol, NULL);
    send_from(rv, 3 * PUNCH_RV_COOKIE_PERIOD_MS, &carol.addr, &rc);
    expect_refused(rv, &carol, &rc, PUNCH_REFUSED_COOKIE);
    assert_int_equal(punch_rendezvous_counters_get(rv)->bad_cookie, 2);
    assert_int_equal(punch_rendezvous_counters_get(rv)->peers, 1);
    punch_rendezvous_free(rv);
}

static void cookie_from_another_address_refused(void **state)
{
    (void)state;
    punch_rendezvous_cfg cfg = base_cfg();
    punch_rendezvous *rv = make(&cfg);
    tpeer p;
    peer_init(&p, 2, "alice", v4(203, 0, 113, 7, 40001));
    get_cookie(rv, 1000, &p);
    p.addr.port++; /* another port: another address */
    dgram r = register_msg(&p, NULL);
    send_from(rv, 1000, &p.addr, &r);
    expect_refused(rv, &p, &r, PUNCH_REFUSED_COOKIE);
    p.addr = v4(203, 0, 113, 99, 40001); /* another IP */
    send_from(rv, 1000, &p.addr, &r);
    expect_refused(rv, &p, &r, PUNCH_REFUSED_COOKIE);
    assert_int_equal(punch_rendezvous_counters_get(rv)->peers, 0);
    punch_rendezvous_free(rv);
}

static void bad_mac_dropped(void **state)
{
    (void)state;
    punch_rendezvous_cfg cfg = base_cfg();
    punch_rendezvous *rv = make(&cfg);
    tpeer p;
    peer_init(&p, 2, "alice", v4(203, 0, 113, 7, 40001));
    get_cookie(rv, 1000, &p);
    dgram r = register_msg(&p, NULL);
    r.buf[r.len - 1] ^= 1;
    send_from(rv, 1000, &p.addr, &r);
    expect_nothing(rv);
    assert_int_equal(punch_rendezvous_counters_get(rv)->bad_mac, 1);
    do_register(rv, 1000, &p);
    /* Registered now (cached key): a bad MAC is still dropped, any message. */
    r = register_msg(&p, NULL);
    r.buf[10] ^= 0x80; /* a bit of the cookie: the MAC no longer covers it */
    send_from(rv, 2000, &p.addr, &r);
    dgram c = connect_msg(&p, "bob", NULL);
    c.buf[c.len - 5] ^= 1;
    send_from(rv, 2000, &p.addr, &c);
    expect_nothing(rv);
    assert_int_equal(punch_rendezvous_counters_get(rv)->bad_mac, 3);
    punch_rendezvous_free(rv);
}

/* Mallory claims alice's public key but has not its secret: whatever MAC
 * key she uses, the server's (from alice's key) differs. */
static void someone_elses_key_fails(void **state)
{
    (void)state;
    punch_rendezvous_cfg cfg = base_cfg();
    punch_rendezvous *rv = make(&cfg);
    tpeer alice, mallory;
    peer_init(&alice, 2, "alice", v4(203, 0, 113, 7, 40001));
    peer_init(&mallory, 5, "alice", v4(203, 0, 113, 66, 40001));
    /* The key mallory puts in the message is alice's; the MAC is hers. */
    memcpy(mallory.id.public_key, alice.id.public_key, PUNCH_KEY_LEN);
    get_cookie(rv, 1000, &mallory);
    dgram r = register_msg(&mallory, NULL);
    send_from(rv, 1000, &mallory.addr, &r);
    expect_nothing(rv);
    /* ...also once alice is registered (the cached key). */
    join(rv, 1000, &alice);
    get_cookie(rv, 2000, &mallory);
    r = register_msg(&mallory, NULL);
    send_from(rv, 2000, &mallory.addr, &r);
    dgram c = connect_msg(&mallory, "alice", NULL);
    send_from(rv, 2000, &mallory.addr, &c);
    expect_nothing(rv);
    assert_int_equal(punch_rendezvous_counters_get(rv)->bad_mac, 3);
    /* alice's registration is untouched: her keepalive is not a change. */
    drain_events(rv);
    do_register(rv, 3000, &alice);
    punch_rendezvous_event ev;
    assert_false(next_event(rv, &ev));
    punch_rendezvous_free(rv);
}

static void name_taken_until_owner_expires(void **state)
{
    (void)state;
    punch_rendezvous_cfg cfg = base_cfg();
    punch_rendezvous *rv = make(&cfg);
    tpeer alice, carol;
    peer_init(&alice, 2, "alice", v4(203, 0, 113, 7, 40001));
    peer_init(&carol, 4, "alice", v4(203, 0, 113, 8, 40001));
    join(rv, 1000, &alice);
    get_cookie(rv, 1000, &carol);
    dgram r = register_msg(&carol, NULL);
    send_from(rv, 1000, &carol.addr, &r);
    expect_refused(rv, &carol, &r, PUNCH_REFUSED_NAME_TAKEN);
    /* alice falls silent; at her deadline the name is free again. */
    uint64_t deadline = 1000 + 3 * 25000 + 15000;
    get_cookie(rv, deadline - 1, &carol);
    r = register_msg(&carol, NULL);
    send_from(rv, deadline - 1, &carol.addr, &r);
    expect_refused(rv, &carol, &r, PUNCH_REFUSED_NAME_TAKEN);
    do_register(rv, deadline, &carol);
    assert_int_equal(punch_rendezvous_counters_get(rv)->peers, 1);
    assert_int_equal(punch_rendezvous_counters_get(rv)->peers_expired, 1);
    /* A key may rename itself; its old name is then free. */
    carol.name = "carol";
    do_register(rv, deadline + 1, &carol);
    join(rv, deadline + 1, &alice);
    assert_int_equal(punch_rendezvous_counters_get(rv)->peers, 2);
    punch_rendezvous_free(rv);
}

static void connect_refusals(void **state)
{
    (void)state;
    punch_rendezvous_cfg cfg = base_cfg();
    punch_rendezvous *rv = make(&cfg);
    tpeer alice, bob, carol;
    peer_init(&alice, 2, "alice", v4(203, 0, 113, 7, 40001));
    peer_init(&bob, 3, "bob", v4(198, 51, 100, 9, 31000));
    peer_init(&carol, 4, "carol", v4(203, 0, 113, 8, 40001));
    join(rv, 1000, &alice);
    join(rv, 1000, &bob);
    /* Not registered: REFUSED, MAC'd with a key derived on the spot. */
    dgram c = connect_msg(&carol, "bob", NULL);
    send_from(rv, 2000, &carol.addr, &c);
    expect_refused(rv, &carol, &c, PUNCH_REFUSED_NOT_REGISTERED);
    /* Registered, but asking from another address (its NAT rebound). */
    tpeer moved = alice;
    moved.addr.port = 40002;
    c = connect_msg(&moved, "bob", NULL);
    send_from(rv, 2000, &moved.addr, &c);
    expect_refused(rv, &moved, &c, PUNCH_REFUSED_NOT_REGISTERED);
    /* Nobody by that name, or oneself. */
    c = connect_msg(&alice, "nobody", NULL);
    send_from(rv, 2000, &alice.addr, &c);
    expect_refused(rv, &alice, &c, PUNCH_REFUSED_NO_PEER);
    c = connect_msg(&alice, "alice", NULL);
    send_from(rv, 2000, &alice.addr, &c);
    expect_refused(rv, &alice, &c, PUNCH_REFUSED_NO_PEER);
    /* Pinned key that is not bob's. */
    c = connect_msg(&alice, "bob", carol.id.public_key);
    send_from(rv, 2000, &alice.addr, &c);
    expect_refused(rv, &alice, &c, PUNCH_REFUSED_KEY_MISMATCH);
    /* Pinned and right: introduced. */
    c = connect_msg(&alice, "bob", bob.id.public_key);
    send_from(rv, 2000, &alice.addr, &c);
    expect_to(rv, &alice, PUNCH_MSG_INTRODUCE);
    expect_to(rv, &bob, PUNCH_MSG_INTRODUCE);
    expect_nothing(rv);
    const punch_rendezvous_counters *k = punch_rendezvous_counters_get(rv);
    assert_int_equal(k->refused[PUNCH_REFUSED_NOT_REGISTERED], 2);
    assert_int_equal(k->refused[PUNCH_REFUSED_NO_PEER], 2);
    assert_int_equal(k->refused[PUNCH_REFUSED_KEY_MISMATCH], 1);
    assert_int_equal(k->introductions, 1);
    punch_rendezvous_free(rv);
}

static void nat_rebinding_updates_endpoint(void **state)
{
    (void)state;
    punch_rendezvous_cfg cfg = base_cfg();
    pair x;
    setup_pair(&x, &cfg);
    /* alice's NAT gives her a new port: HELLO again, REGISTER from there. */
    x.alice.addr.port = 40777;
    get_cookie(x.rv, 3000, &x.alice);
    register_answered(x.rv, 3000, &x.alice);
    punch_rendezvous_event ev;
    assert_true(next_event(x.rv, &ev));
    assert_int_equal(ev.type, PUNCH_RV_EVENT_REGISTERED);
    assert_true(punch_addr_equal(&ev.peer[0].public_addr, &x.alice.addr));
    /* Unasked, both are told again of their session: bob learns where she
     * is now (same session id, so it is news, not a new connection). */
    answer again_a = expect_to(x.rv, &x.alice, PUNCH_MSG_INTRODUCE);
    answer again_b = expect_to(x.rv, &x.bob, PUNCH_MSG_INTRODUCE);
    expect_nothing(x.rv);
    assert_memory_equal(again_a.m.session, x.session, PUNCH_MSG_SESSION_LEN);
    assert_memory_equal(again_b.m.session, x.session, PUNCH_MSG_SESSION_LEN);
    assert_introduces(&again_b, &x.alice);
    assert_introduces(&again_a, &x.bob);
    assert_true(again_a.m.flags & PUNCH_INTRO_INITIATOR);
    assert_false(again_b.m.flags & PUNCH_INTRO_INITIATOR);
    assert_int_equal(punch_rendezvous_counters_get(x.rv)->reintroductions, 1);
    /* A keepalive from where she already is tells nobody anything. */
    do_register(x.rv, 3500, &x.alice);
    expect_nothing(x.rv);
    /* bob learns her new endpoint; the relay follows it. */
    dgram c = connect_msg(&x.bob, "alice", NULL);
    send_from(x.rv, 3000, &x.bob.addr, &c);
    expect_to(x.rv, &x.bob, PUNCH_MSG_INTRODUCE);
    answer to_a = expect_to(x.rv, &x.alice, PUNCH_MSG_INTRODUCE);
    assert_introduces(&to_a, &x.bob);
    /* (a new CONNECT, past the crossing window: a new session) */
    assert_memory_not_equal(to_a.m.session, x.session, PUNCH_MSG_SESSION_LEN);
    dgram r = relay_msg(to_a.m.session, "to the new port");
    send_from(x.rv, 3000, &x.bob.addr, &r);
    expect_to(x.rv, &x.alice, PUNCH_MSG_RELAY);
    /* ...and the old endpoint is no longer one of the session's. */
    tpeer old = x.alice;
    old.addr.port = 40001;
    send_from(x.rv, 3000, &old.addr, &r);
    expect_nothing(x.rv);
    assert_int_equal(punch_rendezvous_counters_get(x.rv)->relay_wrong_source, 1);
    punch_rendezvous_free(x.rv);
}

static size_t drain_to(punch_rendezvous *rv, const punch_addr *dst, uint64_t *bytes);

/* Issue 12, finding 8: alice moves; her old REGISTER replayed from her old
 * address (spoofed), while its cookie is still good, does not move her
 * back: dropped without an answer, counted, introductions still go to
 * where she is. From where she is, a lower sequence (a restart) is fine. */
static void replayed_register_cannot_move_a_peer_back(void **state)
{
    (void)state;
    punch_rendezvous_cfg cfg = base_cfg();
    pair x;
    setup_pair(&x, &cfg);
    tpeer before = x.alice;
    dgram old = register_msg(&before, NULL); /* what an eavesdropper kept */
    x.alice.txn = before.txn;
    x.alice.addr.port = 40777;
    get_cookie(x.rv, 3000, &x.alice);
    register_answered(x.rv, 3000, &x.alice);
    drain_to(x.rv, &x.bob.addr, NULL);
    drain_events(x.rv);
    send_from(x.rv, 4000, &before.addr, &old); /* the cookie is this minute's */
    expect_nothing(x.rv);
    const punch_rendezvous_counters *k = punch_rendezvous_counters_get(x.rv);
    assert_int_equal(k->stale_register, 1);
    dgram c = connect_msg(&x.bob, "alice", NULL);
    send_from(x.rv, 4000, &x.bob.addr, &c);
    answer to_b = expect_to(x.rv, &x.bob, PUNCH_MSG_INTRODUCE);
    assert_true(punch_addr_equal(&to_b.m.public_addr, &x.alice.addr));
    expect_to(x.rv, &x.alice, PUNCH_MSG_INTRODUCE);
    /* Restarted where she is: her sequence starts lower, still accepted. */
    x.alice.txn = 0;
    do_register(x.rv, 5000, &x.alice);
    assert_int_equal(k->stale_register, 1);
    punch_rendezvous_free(x.rv);
}

/* ---- relay ---- */

static void relay_only_between_the_sessions_peers(void **state)
{
    (void)state;
    punch_rendezvous_cfg cfg = base_cfg();
    pair x;
    setup_pair(&x, &cfg);
    tpeer carol;
    peer_init(&carol, 4, "carol", v4(203, 0, 113, 8, 40001));
    dgram r = relay_msg(x.session, "let me in");
    /* From a third address, even a registered peer's. */
    send_from(x.rv, 3000, &carol.addr, &r);
    join(x.rv, 3000, &carol);
    send_from(x.rv, 3000, &carol.addr, &r);
    /* From alice's IP but another port. */
    punch_addr near = x.alice.addr;
    near.port++;
    send_from(x.rv, 3000, &near, &r);
    expect_nothing(x.rv);
    /* Unknown session. */
    uint8_t other[PUNCH_MSG_SESSION_LEN];
    memcpy(other, x.session, sizeof(other));
    other[0] ^= 1;
    dgram u = relay_msg(other, "who?");
    send_from(x.rv, 3000, &x.alice.addr, &u);
    expect_nothing(x.rv);
    const punch_rendezvous_counters *k = punch_rendezvous_counters_get(x.rv);
    assert_int_equal(k->relay_wrong_source, 3);
    assert_int_equal(k->relay_unknown, 1);
    assert_int_equal(k->relayed, 0);
    punch_rendezvous_free(x.rv);
}

/* A relay across members (punchd --cluster): the half held here passes
 * alice's RELAY to the other member and the other member's to alice, the
 * datagram unchanged; nobody else gets through, and another member cannot
 * take the session over. */
/* The far end of a half across members: bob's key at member 7 (hop). */
static punch_rendezvous_far far_at(punch_addr hop, uint8_t member)
{
    punch_rendezvous_far far = {.hop = hop, .member = {member}, .key = {0xb0, 0xb}};
    return far;
}

static void relay_half_across_members(void **state)
{
    (void)state;
    punch_rendezvous_cfg cfg = base_cfg();
    tpeer alice;
    punch_rendezvous *rv = make_joined(&cfg, &alice, NULL);
    const uint8_t id[PUNCH_MSG_SESSION_LEN] = {1, 2, 3, 4, 5, 6, 7, 8}, nobody[PUNCH_KEY_LEN] = {9};
    punch_addr hop = v4(192, 0, 2, 50, 3478), stranger = v4(192, 0, 2, 51, 3478);
    punch_rendezvous_far far = far_at(hop, 7), other_key = far_at(stranger, 8);
    other_key.key[0] = 0xee;
    const uint8_t *key = alice.id.public_key;
    assert_int_equal(punch_rendezvous_relay_remote(rv, 2000, key, id, &far), 0);
    assert_int_equal(punch_rendezvous_relay_remote(rv, 2001, key, id, &far), 0); /* a copy */
    assert_int_equal(punch_rendezvous_relay_remote(rv, 2001, key, id, &other_key), PUNCH_ERR_LIMIT);
    assert_int_equal(punch_rendezvous_relay_remote(rv, 2001, nobody, id, &far), PUNCH_ERR_NOTFOUND);
    answer a;
    dgram out = relay_msg(id, "to bob");
    send_from(rv, 2002, &alice.addr, &out);
    assert_true(next_answer(rv, &a));
    assert_true(punch_addr_equal(&a.out.dst, &hop));
    assert_int_equal(a.d.len, out.len);
    assert_memory_equal(a.d.buf, out.buf, out.len);
    dgram back = relay_msg(id, "to alice");
    send_from(rv, 2003, &hop, &back);
    assert_true(next_answer(rv, &a));
    assert_true(punch_addr_equal(&a.out.dst, &alice.addr));
    assert_memory_equal(a.d.buf, back.buf, back.len);
    send_from(rv, 2004, &stranger, &back);
    expect_nothing(rv);
    const punch_rendezvous_counters *k = punch_rendezvous_counters_get(rv);
    assert_int_equal(k->relayed, 2);
    assert_int_equal(k->relay_wrong_source, 1);
    assert_int_equal(k->sessions_opened, 1);
    punch_rendezvous_free(rv);
}

/* bob's member stops and bob moves to another member: an INTRO of the
 * same session from there moves alice's half to it, and the datagrams
 * go there from this member's own relay address (via), which the new
 * member checks, whatever address alice talks to. */
static void relay_half_follows_far_member(void **state)
{
    (void)state;
    punch_rendezvous_cfg cfg = base_cfg();
    tpeer alice;
    punch_rendezvous *rv = make_joined(&cfg, &alice, NULL);
    const uint8_t id[PUNCH_MSG_SESSION_LEN] = {1, 2, 3, 4, 5, 6, 7, 8};
    punch_addr old_hop = v4(192, 0, 2, 50, 3478), new_hop = v4(192, 0, 2, 52, 3478);
    punch_rendezvous_far far = far_at(old_hop, 7), moved = far_at(new_hop, 9);
    moved.via = v4(198, 51, 100, 9, 3478);
    const uint8_t *key = alice.id.public_key;
    assert_int_equal(punch_rendezvous_relay_remote(rv, 2000, key, id, &far), 0);
    assert_int_equal(punch_rendezvous_relay_remote(rv, 3000, key, id, &moved), 0);
    answer a;
    dgram out = relay_msg(id, "to bob");
    send_from(rv, 3001, &alice.addr, &out);
    assert_int_equal(punch_rendezvous_poll_transmit(rv, &a.out, a.d.buf, sizeof(a.d.buf)), 1);
    assert_true(punch_addr_equal(&a.out.dst, &new_hop));
    assert_true(punch_addr_equal(&a.out.local, &moved.via));
    dgram back = relay_msg(id, "to alice");
    send_from(rv, 3002, &old_hop, &back); /* the member that stopped: no more */
    expect_nothing(rv);
    send_from(rv, 3003, &new_hop, &back);
    assert_true(next_answer(rv, &a));
    assert_true(punch_addr_equal(&a.out.dst, &alice.addr));
    assert_int_equal(punch_rendezvous_counters_get(rv)->sessions_opened, 1);
    punch_rendezvous_free(rv);
}

/* The halves held here, for a member to move when their far member
 * stops: each with its session, local peer and far end (name too); not
 * one its peer has left for another session, nor one of a peer gone. */
static void halves_listed_while_current(void **state)
{
    (void)state;
    punch_rendezvous_cfg cfg = base_cfg();
    cfg.cluster = true;
    tpeer alice, carol;
    punch_rendezvous *rv = make_joined(&cfg, &alice, &carol);
    const uint8_t id[PUNCH_MSG_SESSION_LEN] = {1, 2, 3, 4, 5, 6, 7, 8}, id2[PUNCH_MSG_SESSION_LEN] = {9};
    punch_rendezvous_far far = far_at(v4(192, 0, 2, 50, 3478), 7), far2 = far_at(v4(192, 0, 2, 51, 3478), 8);
    strcpy(far.name, "erin");
    far2.key[0] = 0xcc;
    assert_int_equal(punch_rendezvous_relay_remote(rv, 2000, alice.id.public_key, id, &far), 0);
    assert_int_equal(punch_rendezvous_relay_remote(rv, 2000, carol.id.public_key, id2, &far2), 0);
    punch_rendezvous_half h;
    uint32_t cursor = 0;
    assert_int_equal(punch_rendezvous_next_half(rv, &cursor, &h), 1);
    assert_memory_equal(h.session, id, sizeof(id));
    assert_memory_equal(h.local.key, alice.id.public_key, PUNCH_KEY_LEN);
    assert_string_equal(h.far.name, "erin");
    assert_memory_equal(h.far.member, far.member, PUNCH_RV_MEMBER_LEN);
    assert_int_equal(punch_rendezvous_next_half(rv, &cursor, &h), 1);
    assert_memory_equal(h.session, id2, sizeof(id2));
    assert_int_equal(punch_rendezvous_next_half(rv, &cursor, &h), 0);
    /* alice is introduced to carol here: her half is old news. */
    dgram c = connect_msg(&alice, "carol", NULL);
    send_from(rv, 2100, &alice.addr, &c);
    expect_to(rv, &alice, PUNCH_MSG_INTRODUCE);
    expect_to(rv, &carol, PUNCH_MSG_INTRODUCE);
    cursor = 0;
    assert_int_equal(punch_rendezvous_next_half(rv, &cursor, &h), 0);
    punch_rendezvous_free(rv);
}

/* alice's NAT rebinds while she is in a relay session across members:
 * the half here follows her new endpoint, and a MOVED event (her new
 * endpoint, the session, the far member and peer) is the news the far
 * member must give bob, as one server tells both again. */
static void rebinding_across_members_reported(void **state)
{
    (void)state;
    punch_rendezvous_cfg cfg = base_cfg();
    cfg.cluster = true;
    tpeer alice;
    punch_rendezvous *rv = make_joined(&cfg, &alice, NULL);
    const uint8_t id[PUNCH_MSG_SESSION_LEN] = {1, 2, 3, 4, 5, 6, 7, 8};
    punch_addr hop = v4(192, 0, 2, 50, 3478);
    punch_rendezvous_far far = far_at(hop, 7);
    far.asked = true;
    assert_int_equal(punch_rendezvous_relay_remote(rv, 2000, alice.id.public_key, id, &far), 0);
    alice.addr.port = 40777;
    get_cookie(rv, 3000, &alice);
    register_answered(rv, 3000, &alice);
    expect_nothing(rv); /* nobody here to tell */
    punch_rendezvous_event ev;
    assert_true(next_event(rv, &ev));
    assert_int_equal(ev.type, PUNCH_RV_EVENT_REGISTERED);
    assert_true(next_event(rv, &ev));
    assert_int_equal(ev.type, PUNCH_RV_EVENT_MOVED);
    assert_true(punch_addr_equal(&ev.peer[0].public_addr, &alice.addr));
    assert_memory_equal(ev.peer[0].key, alice.id.public_key, PUNCH_KEY_LEN);
    assert_memory_equal(ev.session, id, PUNCH_MSG_SESSION_LEN);
    assert_memory_equal(ev.far.member, far.member, PUNCH_RV_MEMBER_LEN);
    assert_memory_equal(ev.far.key, far.key, PUNCH_KEY_LEN);
    assert_true(ev.far.asked);
    assert_false(next_event(rv, &ev));
    assert_int_equal(punch_rendezvous_counters_get(rv)->reintroductions, 1);
    /* A keepalive from where she is now moves nothing. */
    do_register(rv, 3500, &alice);
    assert_true(next_event(rv, &ev) && ev.type == PUNCH_RV_EVENT_REGISTERED && ev.refresh);
    assert_false(next_event(rv, &ev));
    /* The relay follows her: from the far member to her new endpoint. */
    answer a;
    dgram back = relay_msg(id, "to alice");
    send_from(rv, 3600, &hop, &back);
    assert_true(next_answer(rv, &a));
    assert_true(punch_addr_equal(&a.out.dst, &alice.addr));
    punch_rendezvous_free(rv);
}

/* News of a session across members (an INTRO of it: the far peer moved)
 * is old news once alice was introduced to another peer: the member must
 * not hand it to her (she would take up the session she left). */
static void superseded_half_across_members(void **state)
{
    (void)state;
    punch_rendezvous_cfg cfg = base_cfg();
    cfg.cluster = true;
    tpeer alice, carol;
    punch_rendezvous *rv = make_joined(&cfg, &alice, &carol);
    const uint8_t id[PUNCH_MSG_SESSION_LEN] = {1, 2, 3, 4, 5, 6, 7, 8}, other[PUNCH_MSG_SESSION_LEN] = {9};
    const uint8_t *key = alice.id.public_key;
    punch_rendezvous_far far = far_at(v4(192, 0, 2, 50, 3478), 7);
    assert_int_equal(punch_rendezvous_relay_remote(rv, 2000, key, id, &far), 0);
    assert_false(punch_rendezvous_session_superseded(rv, 2001, key, id));
    assert_false(punch_rendezvous_session_superseded(rv, 2001, key, other));
    dgram c = connect_msg(&alice, "carol", NULL);
    send_from(rv, 2002, &alice.addr, &c);
    expect_to(rv, &alice, PUNCH_MSG_INTRODUCE);
    expect_to(rv, &carol, PUNCH_MSG_INTRODUCE);
    assert_true(punch_rendezvous_session_superseded(rv, 2003, key, id));
    assert_false(punch_rendezvous_session_superseded(rv, 2003, carol.id.public_key, id));
    punch_rendezvous_free(rv);
}

/* A cluster member learns from Redis that alice's name is another key's:
 * she is refused on the REGISTER the claim was for and on her latest one
 * (a keepalive answered meanwhile: the one she waits on), and forgotten. */
static void name_refused_across_members(void **state)
{
    (void)state;
    punch_rendezvous_cfg cfg = base_cfg();
    punch_rendezvous *rv = make(&cfg);
    tpeer alice;
    peer_init(&alice, 2, "alice", v4(203, 0, 113, 7, 40001));
    get_cookie(rv, 1000, &alice);
    answer first = do_register(rv, 1000, &alice);
    answer latest = do_register(rv, 1100, &alice);
    drain_events(rv);
    const uint8_t *key = alice.id.public_key;
    assert_int_equal(punch_rendezvous_refuse_name(rv, 1200, key, first.m.txid), 0);
    answer a = expect_to(rv, &alice, PUNCH_MSG_REFUSED);
    assert_int_equal(a.m.code, PUNCH_REFUSED_NAME_TAKEN);
    assert_memory_equal(a.m.txid, first.m.txid, PUNCH_MSG_TXID_LEN);
    a = expect_to(rv, &alice, PUNCH_MSG_REFUSED);
    assert_int_equal(a.m.code, PUNCH_REFUSED_NAME_TAKEN);
    assert_memory_equal(a.m.txid, latest.m.txid, PUNCH_MSG_TXID_LEN);
    expect_nothing(rv);
    /* Forgotten: a second refusal finds nobody, a REGISTER starts anew. */
    assert_int_equal(punch_rendezvous_refuse_name(rv, 1200, key, latest.m.txid),
                     PUNCH_ERR_NOTFOUND);
    assert_int_equal(punch_rendezvous_counters_get(rv)->refused[PUNCH_REFUSED_NAME_TAKEN], 2);
    assert_int_equal(punch_rendezvous_counters_get(rv)->peers, 0);
    punch_rendezvous_free(rv);
}

/* A cluster member: CONNECTs for a name registered elsewhere become
 * LOOKUPs, within the same limit per source and target as local ones
 * (burst 10, then 1 a second), or one source could make the cluster
 * introduce it to one peer without end. */
static void lookups_limited_per_source_and_name(void **state)
{
    (void)state;
    punch_rendezvous_cfg cfg = base_cfg();
    cfg.cluster = true;
    tpeer alice;
    punch_rendezvous *rv = make_joined(&cfg, &alice, NULL);
    punch_rendezvous_event ev;
    unsigned lookups = 0;
    for (int i = 0; i < 12; i++) {
        dgram c = connect_msg(&alice, "bob", NULL);
        send_from(rv, 2000, &alice.addr, &c);
        while (next_event(rv, &ev))
            lookups += ev.type == PUNCH_RV_EVENT_LOOKUP;
    }
    assert_int_equal(lookups, PUNCH_RV_DEFAULT_CONNECTS_PER_TARGET_BURST);
    assert_int_equal(punch_rendezvous_counters_get(rv)->connects_limited, 2);
    /* Another name has its own allowance; a second later, one more. */
    dgram c = connect_msg(&alice, "carol", NULL);
    send_from(rv, 2000, &alice.addr, &c);
    assert_true(next_event(rv, &ev) && ev.type == PUNCH_RV_EVENT_LOOKUP);
    c = connect_msg(&alice, "bob", NULL);
    send_from(rv, 3000, &alice.addr, &c);
    assert_true(next_event(rv, &ev) && ev.type == PUNCH_RV_EVENT_LOOKUP);
    punch_rendezvous_free(rv);
}

static void relay_quotas(void **state)
{
    (void)state;
    punch_rendezvous_cfg cfg = base_cfg();
    cfg.relay_packets_per_s = 5;
    cfg.relay_bytes_per_s = 1000;
    cfg.relay_max_bytes = 300;
    pair x;
    setup_pair(&x, &cfg);
    /* 10 at once: the packet bucket holds 5. */
    dgram r = relay_msg(x.session, "0123456789"); /* 20 bytes */
    int forwarded = 0;
    for (int i = 0; i < 10; i++) {
        send_from(x.rv, 3000, &x.alice.addr, &r);
        answer a;
        while (next_answer(x.rv, &a))
            forwarded++;
    }
    assert_int_equal(forwarded, 5);
    assert_int_equal(punch_rendezvous_counters_get(x.rv)->relay_over_quota, 5);
    /* A second later the bucket is full again; the byte cap (300) ends the
     * session at the 16th datagram (15 x 20 = 300). */
    for (uint64_t t = 4000; t < 7000; t += 1000)
        for (int i = 0; i < 5; i++) {
            send_from(x.rv, t, &x.bob.addr, &r);
            answer a;
            while (next_answer(x.rv, &a))
                forwarded++;
        }
    assert_int_equal(forwarded, 15);
    send_from(x.rv, 8000, &x.bob.addr, &r);
    expect_nothing(x.rv);
    punch_rendezvous_event ev;
    assert_true(next_event(x.rv, &ev));
    assert_int_equal(ev.type, PUNCH_RV_EVENT_RELAY_OPENED);
    assert_true(next_event(x.rv, &ev));
    assert_int_equal(ev.type, PUNCH_RV_EVENT_RELAY_CLOSED);
    assert_string_equal(ev.reason, "byte cap");
    assert_int_equal(ev.bytes[0], 5 * 20);
    assert_int_equal(ev.bytes[1], 10 * 20);
    assert_int_equal(ev.dropped, 6);
    assert_int_equal(punch_rendezvous_counters_get(x.rv)->sessions, 0);
    punch_rendezvous_free(x.rv);
}

/* A CONNECT sent again (lost answer: the same transaction), or one from
 * the other side crossing it, gets the session already held, so both peers
 * name the same one; a new transaction (the asker restarted) a new one. */
static void connect_again_same_session(void **state)
{
    (void)state;
    punch_rendezvous_cfg cfg = base_cfg();
    pair x;
    setup_pair(&x, &cfg);
    x.alice.txn--; /* setup_pair's CONNECT again */
    dgram c = connect_msg(&x.alice, "bob", NULL);
    send_from(x.rv, 2500, &x.alice.addr, &c);
    answer a = expect_to(x.rv, &x.alice, PUNCH_MSG_INTRODUCE);
    answer b = expect_to(x.rv, &x.bob, PUNCH_MSG_INTRODUCE);
    assert_memory_equal(a.m.session, x.session, PUNCH_MSG_SESSION_LEN);
    assert_memory_equal(b.m.session, x.session, PUNCH_MSG_SESSION_LEN);
    c = connect_msg(&x.bob, "alice", NULL);
    send_from(x.rv, 2600, &x.bob.addr, &c);
    b = expect_to(x.rv, &x.bob, PUNCH_MSG_INTRODUCE);
    assert_memory_equal(b.m.session, x.session, PUNCH_MSG_SESSION_LEN);
    assert_int_equal(b.m.flags, PUNCH_INTRO_INITIATOR | PUNCH_INTRO_RELAY);
    expect_to(x.rv, &x.alice, PUNCH_MSG_INTRODUCE);
    const punch_rendezvous_counters *k = punch_rendezvous_counters_get(x.rv);
    assert_int_equal(k->sessions_opened, 1);
    assert_int_equal(k->introductions, 3);
    /* ...but not once it is gone: idle from 2600, closed at 122600. */
    punch_rendezvous_handle_timeout(x.rv, 2600 + PUNCH_RV_DEFAULT_SESSION_IDLE_MS);
    for (uint64_t t = 50000; t <= 100000; t += 50000) {
        do_register(x.rv, t, &x.alice);
        do_register(x.rv, t, &x.bob);
    }
    punch_rendezvous_handle_timeout(x.rv, 2600 + PUNCH_RV_DEFAULT_SESSION_IDLE_MS);
    assert_int_equal(k->sessions, 0);
    c = connect_msg(&x.alice, "bob", NULL);
    send_from(x.rv, 130000, &x.alice.addr, &c);
    a = expect_to(x.rv, &x.alice, PUNCH_MSG_INTRODUCE);
    assert_memory_not_equal(a.m.session, x.session, PUNCH_MSG_SESSION_LEN);
    assert_int_equal(k->sessions_opened, 2);
    expect_to(x.rv, &x.bob, PUNCH_MSG_INTRODUCE);
    /* bob's program restarts and asks anew: a new session replaces it, so
     * alice does not take it for news of the one she holds (issue 10). */
    c = connect_msg(&x.bob, "alice", NULL);
    send_from(x.rv, 135000, &x.bob.addr, &c);
    answer b2 = expect_to(x.rv, &x.bob, PUNCH_MSG_INTRODUCE);
    answer a2 = expect_to(x.rv, &x.alice, PUNCH_MSG_INTRODUCE);
    assert_memory_not_equal(b2.m.session, a.m.session, PUNCH_MSG_SESSION_LEN);
    assert_memory_equal(a2.m.session, b2.m.session, PUNCH_MSG_SESSION_LEN);
    assert_int_equal(k->sessions_opened, 3);
    assert_int_equal(k->sessions, 1);
    punch_rendezvous_free(x.rv);
}

static void no_relay_introduces_only(void **state)
{
    (void)state;
    punch_rendezvous_cfg cfg = base_cfg();
    cfg.no_relay = true;
    pair x;
    setup_pair(&x, &cfg);
    assert_int_equal(x.flags, PUNCH_INTRO_INITIATOR);
    dgram r = relay_msg(x.session, "x");
    send_from(x.rv, 3000, &x.alice.addr, &r);
    expect_nothing(x.rv);
    assert_int_equal(punch_rendezvous_counters_get(x.rv)->sessions, 0);
    punch_rendezvous_free(x.rv);
}

/* Without a relay session (--no-relay) a rebinding is news all the same:
 * bob's NAT gives him a new port, both are told again of their session
 * (same id, no relay, alice still the asker). Once alice met carol, a
 * rebinding of bob's is nobody's news (one server tells a peer of its
 * latest session only), carol's is alice's. */
static void no_relay_rebinding_reintroduces(void **state)
{
    (void)state;
    punch_rendezvous_cfg cfg = base_cfg();
    cfg.no_relay = true;
    pair x;
    setup_pair(&x, &cfg);
    x.bob.addr.port = 31777;
    get_cookie(x.rv, 3000, &x.bob);
    register_answered(x.rv, 3000, &x.bob);
    answer again_a = expect_to(x.rv, &x.alice, PUNCH_MSG_INTRODUCE);
    answer again_b = expect_to(x.rv, &x.bob, PUNCH_MSG_INTRODUCE);
    expect_nothing(x.rv);
    assert_memory_equal(again_a.m.session, x.session, PUNCH_MSG_SESSION_LEN);
    assert_memory_equal(again_b.m.session, x.session, PUNCH_MSG_SESSION_LEN);
    assert_introduces(&again_a, &x.bob);
    assert_int_equal(again_a.m.flags, PUNCH_INTRO_INITIATOR);
    assert_int_equal(again_b.m.flags, 0);
    assert_int_equal(punch_rendezvous_counters_get(x.rv)->reintroductions, 1);
    tpeer carol;
    peer_init(&carol, 4, "carol", v4(203, 0, 113, 9, 40001));
    join(x.rv, 3100, &carol);
    dgram c = connect_msg(&x.alice, "carol", NULL);
    send_from(x.rv, 3200, &x.alice.addr, &c);
    answer to_a = expect_to(x.rv, &x.alice, PUNCH_MSG_INTRODUCE);
    expect_to(x.rv, &carol, PUNCH_MSG_INTRODUCE);
    x.bob.addr.port = 31888;
    get_cookie(x.rv, 3300, &x.bob);
    register_answered(x.rv, 3300, &x.bob);
    expect_nothing(x.rv);
    carol.addr.port = 40999;
    get_cookie(x.rv, 3400, &carol);
    register_answered(x.rv, 3400, &carol);
    answer news = expect_to(x.rv, &x.alice, PUNCH_MSG_INTRODUCE);
    expect_to(x.rv, &carol, PUNCH_MSG_INTRODUCE);
    expect_nothing(x.rv);
    assert_memory_equal(news.m.session, to_a.m.session, PUNCH_MSG_SESSION_LEN);
    assert_introduces(&news, &carol);
    assert_int_equal(punch_rendezvous_counters_get(x.rv)->reintroductions, 2);
    punch_rendezvous_free(x.rv);
}

static void restart(tpeer *p);

/* Without a relay session, a peer started again (its REGISTER with a
 * token, from a new port) is not told of the session its last run had:
 * it holds none; its CONNECT makes a new one. */
static void no_relay_restart_not_reintroduced(void **state)
{
    (void)state;
    punch_rendezvous_cfg cfg = base_cfg();
    cfg.no_relay = true;
    pair x;
    setup_pair(&x, &cfg);
    restart(&x.bob);
    dgram r = register_msg(&x.bob, NULL);
    send_from(x.rv, 5000, &x.bob.addr, &r);
    expect_to(x.rv, &x.bob, PUNCH_MSG_REGISTERED);
    expect_nothing(x.rv);
    assert_int_equal(punch_rendezvous_counters_get(x.rv)->token_accepted, 1);
    assert_int_equal(punch_rendezvous_counters_get(x.rv)->reintroductions, 0);
    punch_rendezvous_free(x.rv);
}

/* Across members without a relay half (--no-relay): alice met bob at
 * member 7 (punch_rendezvous_met_remote); her rebinding is a MOVED event
 * for that member, without relay. */
static void no_relay_rebinding_across_members_reported(void **state)
{
    (void)state;
    punch_rendezvous_cfg cfg = base_cfg();
    cfg.cluster = true;
    cfg.no_relay = true;
    tpeer alice;
    punch_rendezvous *rv = make_joined(&cfg, &alice, NULL);
    const uint8_t id[PUNCH_MSG_SESSION_LEN] = {1, 2, 3, 4, 5, 6, 7, 8}, nobody[PUNCH_KEY_LEN] = {9};
    punch_rendezvous_far far = far_at(v4(192, 0, 2, 50, 3478), 7);
    assert_int_equal(punch_rendezvous_relay_remote(rv, 2000, alice.id.public_key, id, &far),
                     PUNCH_ERR_LIMIT);
    assert_int_equal(punch_rendezvous_met_remote(rv, 2000, nobody, id, &far), PUNCH_ERR_NOTFOUND);
    assert_int_equal(punch_rendezvous_met_remote(rv, 2000, alice.id.public_key, id, &far), 0);
    alice.addr.port = 40777;
    get_cookie(rv, 3000, &alice);
    register_answered(rv, 3000, &alice);
    expect_nothing(rv);
    punch_rendezvous_event ev;
    assert_true(next_event(rv, &ev) && ev.type == PUNCH_RV_EVENT_REGISTERED);
    assert_true(next_event(rv, &ev));
    assert_int_equal(ev.type, PUNCH_RV_EVENT_MOVED);
    assert_false(ev.relay);
    assert_true(punch_addr_equal(&ev.peer[0].public_addr, &alice.addr));
    assert_memory_equal(ev.session, id, PUNCH_MSG_SESSION_LEN);
    assert_memory_equal(ev.far.member, far.member, PUNCH_RV_MEMBER_LEN);
    assert_memory_equal(ev.far.key, far.key, PUNCH_KEY_LEN);
    assert_false(ev.far.asked);
    assert_false(next_event(rv, &ev));
    punch_rendezvous_free(rv);
}

static void sessions_full_still_introduces(void **state)
{
    (void)state;
    punch_rendezvous_cfg cfg = base_cfg();
    cfg.max_sessions = 1;
    pair x;
    setup_pair(&x, &cfg); /* takes the one session */
    tpeer carol;
    peer_init(&carol, 4, "carol", v4(203, 0, 113, 8, 40001));
    join(x.rv, 3000, &carol);
    dgram c = connect_msg(&carol, "alice", NULL);
    send_from(x.rv, 3000, &carol.addr, &c);
    answer a = expect_to(x.rv, &carol, PUNCH_MSG_INTRODUCE);
    assert_int_equal(a.m.flags, PUNCH_INTRO_INITIATOR);
    expect_to(x.rv, &x.alice, PUNCH_MSG_INTRODUCE);
    assert_int_equal(punch_rendezvous_counters_get(x.rv)->sessions_full, 1);
    punch_rendezvous_free(x.rv);
}

static void relay_stops_when_a_peer_is_gone(void **state)
{
    (void)state;
    punch_rendezvous_cfg cfg = base_cfg();
    cfg.session_idle_ms = 1000000;
    pair x;
    setup_pair(&x, &cfg);
    dgram r = relay_msg(x.session, "x");
    send_from(x.rv, 3000, &x.alice.addr, &r);
    expect_to(x.rv, &x.bob, PUNCH_MSG_RELAY);
    /* bob falls silent; alice keeps alive. bob's deadline is 91000. */
    for (uint64_t t = 25000; t < 100000; t += 25000)
        do_register(x.rv, t, &x.alice);
    punch_rendezvous_handle_timeout(x.rv, 91000);
    assert_int_equal(punch_rendezvous_counters_get(x.rv)->peers, 1);
    drain_events(x.rv);
    send_from(x.rv, 100000, &x.alice.addr, &r);
    expect_nothing(x.rv);
    punch_rendezvous_event ev;
    assert_true(next_event(x.rv, &ev));
    assert_int_equal(ev.type, PUNCH_RV_EVENT_RELAY_CLOSED);
    assert_string_equal(ev.reason, "peer gone");
    /* A new bob (same key, re-registered) is a new peer: the old session
     * does not come back. */
    join(x.rv, 100000, &x.bob);
    send_from(x.rv, 100000, &x.alice.addr, &r);
    expect_nothing(x.rv);
    punch_rendezvous_free(x.rv);
}

/* ---- capacity and expiry ---- */

static void table_full(void **state)
{
    (void)state;
    punch_rendezvous_cfg cfg = base_cfg();
    cfg.max_peers = 2;
    punch_rendezvous *rv = make(&cfg);
    tpeer alice, bob, carol;
    peer_init(&alice, 2, "alice", v4(203, 0, 113, 7, 40001));
    peer_init(&bob, 3, "bob", v4(198, 51, 100, 9, 31000));
    peer_init(&carol, 4, "carol", v4(203, 0, 113, 8, 40001));
    join(rv, 1000, &alice);
    join(rv, 2000, &bob);
    get_cookie(rv, 3000, &carol);
    dgram r = register_msg(&carol, NULL);
    send_from(rv, 3000, &carol.addr, &r);
    expect_refused(rv, &carol, &r, PUNCH_REFUSED_FULL);
    /* Known peers still keep alive when full. */
    do_register(rv, 3000, &bob);
    /* At alice's deadline her slot is free for carol, with no timer run. */
    send_from(rv, 91000 - 1, &carol.addr, &r);
    expect_refused(rv, &carol, &r, PUNCH_REFUSED_FULL);
    get_cookie(rv, 91000, &carol);
    do_register(rv, 91000, &carol);
    const punch_rendezvous_counters *k = punch_rendezvous_counters_get(rv);
    assert_int_equal(k->refused[PUNCH_REFUSED_FULL], 2);
    assert_int_equal(k->peers, 2);
    assert_int_equal(k->peers_expired, 1);
    punch_rendezvous_free(rv);
}

static void peer_expiry_exactly_at_deadline(void **state)
{
    (void)state;
    punch_rendezvous_cfg cfg = base_cfg();
    punch_rendezvous *rv = make(&cfg);
    assert_int_equal(punch_rendezvous_next_timeout(rv), UINT64_MAX);
    tpeer alice;
    peer_init(&alice, 2, "alice", v4(203, 0, 113, 7, 40001));
    join(rv, 1000, &alice);
    /* 3 keepalives of 25 s + 15 s of slack. */
    assert_int_equal(punch_rendezvous_next_timeout(rv), 91000);
    do_register(rv, 26000, &alice);
    assert_int_equal(punch_rendezvous_next_timeout(rv), 116000);
    punch_rendezvous_handle_timeout(rv, 115999);
    assert_int_equal(punch_rendezvous_counters_get(rv)->peers, 1);
    punch_rendezvous_handle_timeout(rv, 116000);
    assert_int_equal(punch_rendezvous_counters_get(rv)->peers, 0);
    assert_int_equal(punch_rendezvous_next_timeout(rv), UINT64_MAX);
    /* Gone: a keepalive with its still-valid cookie registers it anew. */
    do_register(rv, 116000, &alice);
    assert_int_equal(punch_rendezvous_counters_get(rv)->peers_added, 2);
    punch_rendezvous_free(rv);
}

/* Many peers: each handle_timeout call does bounded work, and the hash
 * tables stay right through deletions (backward shifts) and reuse. */
static void expiry_bounded_and_tables_consistent(void **state)
{
    (void)state;
    enum { N = 3000 };
    punch_rendezvous_cfg cfg = base_cfg();
    cfg.max_peers = N;
    cfg.peer_expiry_ms = 100000;
    punch_rendezvous *rv = make(&cfg);
    static tpeer peers[N];
    static char names[N][16];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "p%d", i);
        uint8_t secret[32] = {0};
        secret[1] = (uint8_t)i, secret[2] = (uint8_t)(i >> 8), secret[3] = 0x5a; /* X25519 clamps byte 0 */
        memset(&peers[i], 0, sizeof(peers[i]));
        assert_int_equal(punch_identity_from_secret(&peers[i].id, secret), 0);
        assert_int_equal(punch_auth_derive(&peers[i].id, server_id.public_key, peers[i].mac_key), 0);
        peers[i].name = names[i];
        peers[i].addr = v4(100, 64, (uint8_t)(i >> 8), (uint8_t)i, 1000);
        join(rv, 1000, &peers[i]);
    }
    const punch_rendezvous_counters *k = punch_rendezvous_counters_get(rv);
    assert_int_equal(k->peers, N);
    /* Every third keeps alive at 50 s; the others expire at 101 s. */
    for (int i = 0; i < N; i += 3)
        do_register(rv, 50000, &peers[i]);
    punch_rendezvous_handle_timeout(rv, 101000);
    assert_int_equal(k->peers, N - 1024); /* one batch */
    assert_true(punch_rendezvous_next_timeout(rv) <= 101000);
    punch_rendezvous_handle_timeout(rv, 101000);
    assert_int_equal(k->peers, N / 3);
    assert_int_equal(punch_rendezvous_next_timeout(rv), 150000);
    drain_events(rv);
    /* Survivors are found by key (a keepalive, not a new peer) and by name
     * (another key is refused it); the others' names are free. */
    tpeer other;
    peer_init(&other, 9, "x", v4(100, 127, 0, 1, 1));
    for (int i = 0; i < N; i++) {
        other.name = names[i];
        get_cookie(rv, 110000, &other);
        dgram r = register_msg(&other, NULL);
        send_from(rv, 110000, &other.addr, &r);
        answer a;
        assert_true(next_answer(rv, &a));
        if (i % 3 == 0) {
            assert_int_equal(a.m.type, PUNCH_MSG_REFUSED);
            assert_int_equal(a.m.code, PUNCH_REFUSED_NAME_TAKEN);
            do_register(rv, 110000, &peers[i]);
        } else {
            assert_int_equal(a.m.type, PUNCH_MSG_REGISTERED); /* other takes the name */
        }
    }
    assert_int_equal(k->peers_added, N + 1); /* other renames itself each time */
    assert_int_equal(k->peers, N / 3 + 1);
    punch_rendezvous_free(rv);
}

/* ---- limits per source and per peer (issue 12, findings 5 and 7) ---- */

/* Peer n of a crowd: its own key and name ("c<n>"), at addr. */
static void crowd_init(tpeer *p, uint32_t n, punch_addr addr)
{
    static char names[1024][16];
    uint8_t secret[32] = {0xc0, (uint8_t)(n >> 8), (uint8_t)n};
    memset(p, 0, sizeof(*p));
    assert_true(n < 1024);
    assert_int_equal(punch_identity_from_secret(&p->id, secret), 0);
    assert_int_equal(punch_auth_derive(&p->id, server_id.public_key, p->mac_key), 0);
    snprintf(names[n], sizeof(names[n]), "c%u", (unsigned)n);
    p->name = names[n];
    p->addr = addr;
}

static punch_addr v6_in_64(uint16_t host, uint16_t port)
{
    punch_addr x = {.family = PUNCH_AF_INET6, .port = port};
    x.ip[0] = 0x20, x.ip[1] = 0x01, x.ip[2] = 0x0d, x.ip[3] = 0xb8;
    x.ip[14] = (uint8_t)(host >> 8), x.ip[15] = (uint8_t)host;
    x.ip[9] = (uint8_t)(host * 7); /* anywhere in the low 64 bits */
    return x;
}

/* HELLO and REGISTER for p; returns the answer's type (REGISTERED, REFUSED). */
static punch_msg_type try_join(punch_rendezvous *rv, uint64_t now, tpeer *p, uint16_t *code)
{
    get_cookie(rv, now, p);
    dgram r = register_msg(p, NULL);
    send_from(rv, now, &p->addr, &r);
    answer a;
    assert_true(next_answer(rv, &a));
    expect_nothing(rv);
    *code = a.m.code;
    return a.m.type;
}

/* 300 keys from one source: the first 256 names are taken, the rest are
 * refused FULL, and another source still registers. */
static void names_per_source_run(punch_addr (*addr_of)(uint32_t n))
{
    punch_rendezvous_cfg cfg = base_cfg();
    cfg.max_peers = 1024;
    punch_rendezvous *rv = make(&cfg);
    static tpeer crowd[300];
    int registered = 0, full = 0;
    for (uint32_t n = 0; n < 300; n++) {
        crowd_init(&crowd[n], n, addr_of(n));
        uint16_t code = 0;
        if (try_join(rv, 1000 + n, &crowd[n], &code) == PUNCH_MSG_REGISTERED)
            registered++;
        else if (code == PUNCH_REFUSED_FULL)
            full++;
    }
    assert_int_equal(registered, PUNCH_RV_DEFAULT_NAMES_PER_SOURCE);
    assert_int_equal(full, 300 - PUNCH_RV_DEFAULT_NAMES_PER_SOURCE);
    const punch_rendezvous_counters *k = punch_rendezvous_counters_get(rv);
    assert_int_equal(k->names_per_source_full, 300 - PUNCH_RV_DEFAULT_NAMES_PER_SOURCE);
    tpeer other;
    peer_init(&other, 9, "other", v4(198, 51, 100, 77, 4000));
    join(rv, 2000, &other);
    /* When the names expire, the source has room again. */
    uint64_t later = 1000 + 300 + PUNCH_RV_DEFAULT_KEEPALIVE_S * 3000u + 15000u;
    punch_rendezvous_handle_timeout(rv, later);
    uint16_t code = 0;
    assert_int_equal(try_join(rv, later, &crowd[299], &code), PUNCH_MSG_REGISTERED);
    punch_rendezvous_free(rv);
}

static punch_addr one_ipv4(uint32_t n)
{
    return v4(203, 0, 113, 50, (uint16_t)(20000 + n));
}

static punch_addr one_ipv6_64(uint32_t n)
{
    return v6_in_64((uint16_t)(n + 1), 3000);
}

static void names_per_source(void **state)
{
    (void)state;
    names_per_source_run(one_ipv4);
    names_per_source_run(one_ipv6_64);
}

/* Count what the queue holds for dst (drained), in datagrams and bytes. */
static size_t drain_to(punch_rendezvous *rv, const punch_addr *dst, uint64_t *bytes)
{
    size_t n = 0;
    answer a;
    while (next_answer(rv, &a))
        if (punch_addr_equal(&a.out.dst, dst)) {
            n++;
            if (bytes)
                *bytes += a.d.len;
        }
    return n;
}

/* Twenty keys behind one address each CONNECT bob twice at once: only 10
 * introductions reach him (the burst), then one a second; a peer
 * elsewhere is introduced at once all the same. */
static void connects_per_source_and_target(void **state)
{
    (void)state;
    punch_rendezvous_cfg cfg = base_cfg();
    cfg.max_peers = 64;
    cfg.max_sessions = 64;
    punch_rendezvous *rv = make(&cfg);
    tpeer bob, carol, crowd[20];
    peer_init(&bob, 3, "bob", v4(198, 51, 100, 9, 31000));
    peer_init(&carol, 4, "carol", v4(192, 0, 2, 99, 5000));
    join(rv, 1000, &bob);
    join(rv, 1000, &carol);
    for (uint32_t n = 0; n < 20; n++) {
        crowd_init(&crowd[n], n, one_ipv4(n));
        join(rv, 1000, &crowd[n]);
    }
    size_t to_bob = 0;
    for (uint32_t n = 0; n < 20; n++)
        for (int copy = 0; copy < 2; copy++) {
            dgram c = connect_msg(&crowd[n], "bob", NULL);
            send_from(rv, 2000, &crowd[n].addr, &c);
            to_bob += drain_to(rv, &bob.addr, NULL);
        }
    assert_int_equal(to_bob, PUNCH_RV_DEFAULT_CONNECTS_PER_TARGET_BURST);
    assert_int_equal(punch_rendezvous_counters_get(rv)->connects_limited,
                     40 - PUNCH_RV_DEFAULT_CONNECTS_PER_TARGET_BURST);
    /* Five seconds later: five more. */
    for (uint32_t n = 0; n < 20; n++) {
        dgram c = connect_msg(&crowd[n], "bob", NULL);
        send_from(rv, 7000, &crowd[n].addr, &c);
        to_bob += drain_to(rv, &bob.addr, NULL);
    }
    assert_int_equal(to_bob, PUNCH_RV_DEFAULT_CONNECTS_PER_TARGET_BURST + 5);
    /* Another source, and another target of the same source: untouched. */
    dgram c = connect_msg(&carol, "bob", NULL);
    send_from(rv, 7000, &carol.addr, &c);
    assert_int_equal(drain_to(rv, &bob.addr, NULL), 1);
    c = connect_msg(&crowd[0], "carol", NULL);
    send_from(rv, 7000, &crowd[0].addr, &c);
    assert_int_equal(drain_to(rv, &carol.addr, NULL), 1);
    punch_rendezvous_free(rv);
}

/* Copies and retries of one CONNECT (one transaction) open one session and
 * are charged once: twelve of them from a source that shares its address
 * with nobody are all answered, none limited (each was charged before, so
 * fresh peers behind one NAT met the limit after their fifth connect). */
static void connect_copies_charged_once(void **state)
{
    (void)state;
    punch_rendezvous_cfg cfg = base_cfg();
    punch_rendezvous *rv = make(&cfg);
    tpeer bob, alice;
    peer_init(&bob, 3, "bob", v4(198, 51, 100, 9, 31000));
    peer_init(&alice, 4, "alice", v4(192, 0, 2, 99, 5000));
    join(rv, 1000, &bob);
    join(rv, 1000, &alice);
    dgram c = connect_msg(&alice, "bob", NULL);
    size_t to_bob = 0;
    for (int copy = 0; copy < 12; copy++) {
        send_from(rv, 2000 + (uint64_t)copy * 10, &alice.addr, &c);
        to_bob += drain_to(rv, &bob.addr, NULL);
    }
    assert_int_equal(to_bob, 12);
    assert_int_equal(punch_rendezvous_counters_get(rv)->connects_limited, 0);
    assert_int_equal(punch_rendezvous_counters_get(rv)->introductions, 12);
    punch_rendezvous_free(rv);
}

/* n askers (crowd[i], at addr_of(i)) each CONNECT target i % n_targets and
 * relay 1,000-byte datagrams at their session's full rate (256 KiB/s) for
 * 10 s. Returns the bytes delivered to targets[0]..; *total gets them all. */
typedef struct relay_run {
    punch_rendezvous *rv;
    tpeer crowd[20], targets[20];
    uint8_t session[20][PUNCH_MSG_SESSION_LEN];
    size_t n, n_targets;
} relay_run;

static void relay_run_setup(relay_run *x, punch_addr (*asker_addr)(uint32_t), size_t n_targets)
{
    punch_rendezvous_cfg cfg = base_cfg();
    cfg.max_peers = 64;
    cfg.max_sessions = 64;
    x->rv = make(&cfg);
    x->n = 20;
    x->n_targets = n_targets;
    for (uint32_t t = 0; t < n_targets; t++) {
        crowd_init(&x->targets[t], 100 + t, v4(198, 51, 100, (uint8_t)(10 + t), 31000));
        join(x->rv, 1000, &x->targets[t]);
    }
    for (uint32_t i = 0; i < x->n; i++) {
        crowd_init(&x->crowd[i], i, asker_addr(i));
        join(x->rv, 1000, &x->crowd[i]);
        dgram c = connect_msg(&x->crowd[i], x->targets[i % n_targets].name, NULL);
        send_from(x->rv, 2000, &x->crowd[i].addr, &c);
        answer a = expect_to(x->rv, &x->crowd[i], PUNCH_MSG_INTRODUCE);
        assert_true(a.m.flags & PUNCH_INTRO_RELAY);
        memcpy(x->session[i], a.m.session, PUNCH_MSG_SESSION_LEN);
        drain_to(x->rv, &a.out.dst, NULL);
    }
}

/* Relays 10 s of traffic; returns the bytes that reached any target. */
static uint64_t relay_run_flood(relay_run *x)
{
    char payload[1001];
    memset(payload, 'x', 1000);
    payload[1000] = 0;
    uint64_t bytes = 0;
    /* 256 KiB/s in 1,000-byte datagrams: about 2.6 per 10 ms per session. */
    for (uint64_t t = 3000; t < 13000; t += 10)
        for (uint32_t i = 0; i < x->n; i++)
            for (int k = 0; k < 3; k++) {
                dgram r = relay_msg(x->session[i], payload);
                send_from(x->rv, t, &x->crowd[i].addr, &r);
                answer a;
                while (next_answer(x->rv, &a))
                    bytes += a.d.len;
            }
    return bytes;
}

static punch_addr many_ipv4(uint32_t n)
{
    return v4(203, 0, 113, (uint8_t)(100 + n), 40000);
}

/* Floods x's sessions for 10 s and checks that what got through is the
 * limit's rate (bytes a second) plus one burst, and that the limit's
 * counter (*over, read after the flood) counted drops. */
static void check_relay_limit(relay_run *x, const char *what, uint64_t rate,
                              const uint64_t *over)
{
    uint64_t bytes = relay_run_flood(x);
    printf("relay %s: %llu bytes in 10 s (limit %llu/s)\n", what, (unsigned long long)bytes,
           (unsigned long long)rate);
    assert_true(bytes <= 11 * rate);
    assert_true(bytes >= 9 * rate);
    assert_true(*over > 0);
    punch_rendezvous_free(x->rv);
}

/* Twenty keys from twenty addresses relay to one peer: it gets at most
 * its own rate (1 MiB/s) plus one burst over 10 s, not twenty sessions'. */
static void relay_per_destination_peer(void **state)
{
    (void)state;
    relay_run x;
    relay_run_setup(&x, many_ipv4, 1);
    check_relay_limit(&x, "to one peer from 20 sessions", PUNCH_RV_DEFAULT_RELAY_PEER_BYTES_PER_S,
                      &punch_rendezvous_counters_get(x.rv)->relay_peer_over);
}

/* Twenty keys behind one address relay to twenty peers: together they get
 * the source's rate (1 MiB/s), not twenty sessions' (5 MiB/s). */
static void relay_per_source(void **state)
{
    (void)state;
    relay_run x;
    relay_run_setup(&x, one_ipv4, 20);
    check_relay_limit(&x, "from one source in 20 sessions",
                      PUNCH_RV_DEFAULT_RELAY_SOURCE_BYTES_PER_S,
                      &punch_rendezvous_counters_get(x.rv)->relay_source_over);
}

static void rejects_bad_config(void **state)
{
    (void)state;
    punch_rendezvous_cfg cfg = base_cfg();
    cfg.random = NULL;
    punch_rendezvous *rv = NULL;
    assert_int_equal(punch_rendezvous_new(&rv, &cfg), PUNCH_ERR_INVAL);
    cfg = base_cfg();
    cfg.max_peers = (size_t)1 << 31;
    assert_int_equal(punch_rendezvous_new(&rv, &cfg), PUNCH_ERR_INVAL);
    punch_rendezvous_free(NULL);
}

/* ---- address-validation tokens (src/server/tokens.c) ---- */

/* p starts again: a new port of the same IP, no cookie, the kept token. */
static void restart(tpeer *p)
{
    p->addr.port++;
    memset(p->cookie, 0, sizeof(p->cookie));
    p->use_token = true;
}

/* A REGISTER with p's token that is dropped without an answer, counted. */
static void token_dropped(punch_rendezvous *rv, uint64_t now, tpeer *p, const uint64_t *counter)
{
    uint64_t before = *counter, peers = punch_rendezvous_counters_get(rv)->peers_added;
    dgram r = register_msg(p, NULL);
    send_from(rv, now, &p->addr, &r);
    expect_nothing(rv);
    assert_int_equal(*counter, before + 1);
    assert_int_equal(punch_rendezvous_counters_get(rv)->peers_added, peers);
}

static void token_registers_in_one_flight(void **state)
{
    (void)state;
    pair x;
    punch_rendezvous_cfg cfg = base_cfg();
    setup_pair(&x, &cfg);
    const punch_rendezvous_counters *c = punch_rendezvous_counters_get(x.rv);
    uint8_t old[PUNCH_MSG_TOKEN_LEN];
    memcpy(old, x.alice.token, sizeof(old));
    /* Alice starts again: REGISTER and CONNECT in one flight, no HELLO. */
    restart(&x.alice);
    dgram r = register_msg(&x.alice, NULL), k = connect_msg(&x.alice, "bob", NULL);
    send_from(x.rv, 5000, &x.alice.addr, &r);
    send_from(x.rv, 5000, &x.alice.addr, &k);
    answer a = expect_to(x.rv, &x.alice, PUNCH_MSG_REGISTERED);
    assert_true(punch_addr_equal(&a.m.public_addr, &x.alice.addr));
    assert_memory_not_equal(a.m.token, old, PUNCH_MSG_TOKEN_LEN); /* for the new address */
    uint8_t newer[PUNCH_MSG_TOKEN_LEN];
    memcpy(newer, a.m.token, sizeof(newer));
    answer to_a = expect_to(x.rv, &x.alice, PUNCH_MSG_INTRODUCE);
    expect_to(x.rv, &x.bob, PUNCH_MSG_INTRODUCE);
    assert_true(punch_addr_equal(&to_a.m.public_addr, &x.bob.addr));
    assert_int_equal(c->token_accepted, 1);
    assert_int_equal(c->peers, 2);
    while (next_answer(x.rv, &a)) /* the session told again, as for a rebinding */
        assert_int_equal(a.m.type, PUNCH_MSG_INTRODUCE);
    /* A copy of that REGISTER (same token, same address) is answered and
     * not counted again. */
    send_from(x.rv, 5001, &x.alice.addr, &r);
    expect_to(x.rv, &x.alice, PUNCH_MSG_REGISTERED);
    expect_nothing(x.rv);
    assert_int_equal(c->token_accepted, 1);
    assert_int_equal(c->token_replayed, 0);
    /* The same token again (a replay, from yet another port): dropped. */
    x.alice.addr.port++;
    token_dropped(x.rv, 6000, &x.alice, &c->token_replayed);
    /* The newer token works. */
    memcpy(x.alice.token, newer, sizeof(x.alice.token));
    register_answered(x.rv, 7000, &x.alice);
    assert_int_equal(c->token_accepted, 2);
    punch_rendezvous_free(x.rv);
}

/* A token from another IP, forged, for another key, or expired is a
 * counted drop; the peer's HELLO and cookie still work. */
static void bad_tokens_dropped(void **state)
{
    (void)state;
    punch_rendezvous_cfg cfg = base_cfg();
    cfg.token_lifetime_s = 3600;
    punch_rendezvous *rv = make(&cfg);
    const punch_rendezvous_counters *c = punch_rendezvous_counters_get(rv);
    tpeer alice, carol;
    peer_init(&alice, 2, "alice", v4(203, 0, 113, 7, 40001));
    peer_init(&carol, 4, "carol", v4(203, 0, 113, 7, 40100));
    join(rv, 1000, &alice);
    restart(&alice);
    alice.addr.ip[3] = 8; /* another IP */
    token_dropped(rv, 2000, &alice, &c->token_bad);
    alice.addr.ip[3] = 7;
    alice.token[PUNCH_MSG_TOKEN_LEN - 1] ^= 1; /* forged */
    token_dropped(rv, 2000, &alice, &c->token_bad);
    alice.token[PUNCH_MSG_TOKEN_LEN - 1] ^= 1;
    alice.token[0] ^= 1; /* a later expiry than it was given */
    token_dropped(rv, 2000, &alice, &c->token_bad);
    alice.token[0] ^= 1;
    memcpy(carol.token, alice.token, sizeof(carol.token)); /* another key, same IP */
    carol.use_token = true;
    token_dropped(rv, 2000, &carol, &c->token_bad);
    /* Exactly at its expiry (1 s + 3600 s): expired. */
    token_dropped(rv, 3601000, &alice, &c->token_expired);
    /* Just before, it works. */
    register_answered(rv, 3600999, &alice);
    assert_int_equal(c->token_accepted, 1);
    /* The drops made no state and left the cookie way open. */
    assert_int_equal(c->peers, 1);
    get_cookie(rv, 3601000, &carol);
    carol.use_token = false;
    do_register(rv, 3601000, &carol);
    punch_rendezvous_free(rv);
}

/* punchd started again (a new secret) knows no old token; and a peer that
 * kept a wrong server key MACs with the wrong key: both dropped. */
static void token_of_another_server_dropped(void **state)
{
    (void)state;
    punch_rendezvous_cfg cfg = base_cfg();
    punch_rendezvous *rv = make(&cfg);
    tpeer alice;
    peer_init(&alice, 2, "alice", v4(203, 0, 113, 7, 40001));
    join(rv, 1000, &alice);
    punch_rendezvous_free(rv);
    cfg.cookie_secret[0] ^= 1;
    rv = make(&cfg);
    restart(&alice);
    token_dropped(rv, 2000, &alice, &punch_rendezvous_counters_get(rv)->token_bad);
    punch_rendezvous_free(rv);

    cfg.cookie_secret[0] ^= 1;
    rv = make(&cfg);
    punch_identity other;
    identity_from_byte(&other, 9);
    uint8_t wrong[PUNCH_AUTH_KEY_LEN];
    assert_int_equal(punch_auth_derive(&alice.id, other.public_key, wrong), 0);
    dgram r = register_msg(&alice, wrong);
    send_from(rv, 2000, &alice.addr, &r);
    expect_nothing(rv);
    assert_int_equal(punch_rendezvous_counters_get(rv)->bad_mac, 1);
    assert_int_equal(punch_rendezvous_counters_get(rv)->peers, 0);
    punch_rendezvous_free(rv);
}

/* ---- relayed addresses at TURN servers (TURN_ADDR, issue 15) ---- */

static dgram turn_addr_msg(tpeer *p, const punch_addr *relayed, const uint8_t *mac_key)
{
    punch_msg m = {.type = PUNCH_MSG_TURN_ADDR, .relayed = *relayed};
    txid_of(p, m.txid);
    memcpy(m.key, p->id.public_key, PUNCH_KEY_LEN);
    return encode(&m, mac_key);
}

/* A registered peer's TURN_ADDR is kept and answered with the same
 * message (no larger); forged, misplaced or unknown ones get nothing. The
 * INTRODUCE about it is what it always was (old peers decode it as
 * before); its relayed address follows, to the other side only, in the
 * session, MAC'd for that side. Without TURN_ADDR nothing follows at all
 * (setup_pair's expect_nothing: an old peer sees no change). */
static void turn_addr_kept_and_passed_on(void **state)
{
    (void)state;
    punch_rendezvous_cfg cfg = base_cfg();
    punch_rendezvous *rv = make(&cfg);
    tpeer alice, bob;
    peer_init(&alice, 2, "alice", v4(203, 0, 113, 7, 40001));
    peer_init(&bob, 3, "bob", v4(198, 51, 100, 9, 31000));
    join(rv, 1000, &alice);
    join(rv, 1000, &bob);
    punch_addr relayed = v4(192, 0, 2, 50, 49152);
    const punch_rendezvous_counters *n = punch_rendezvous_counters_get(rv);

    uint64_t bad_mac = n->bad_mac, unexpected = n->unexpected;
    dgram forged = turn_addr_msg(&alice, &relayed, bob.mac_key);
    send_from(rv, 1100, &alice.addr, &forged);
    dgram elsewhere = turn_addr_msg(&alice, &relayed, alice.mac_key);
    punch_addr other = v4(203, 0, 113, 8, 40001);
    send_from(rv, 1100, &other, &elsewhere);
    tpeer stranger;
    peer_init(&stranger, 9, "carol", v4(203, 0, 113, 9, 40001));
    dgram unknown = turn_addr_msg(&stranger, &relayed, stranger.mac_key);
    send_from(rv, 1100, &stranger.addr, &unknown);
    expect_nothing(rv);
    assert_true(n->bad_mac == bad_mac + 1 && n->unexpected == unexpected + 2);

    dgram t = turn_addr_msg(&alice, &relayed, alice.mac_key);
    send_from(rv, 1200, &alice.addr, &t);
    answer receipt = expect_to(rv, &alice, PUNCH_MSG_TURN_ADDR);
    expect_nothing(rv);
    assert_memory_equal(receipt.m.txid, t.buf + 2, PUNCH_MSG_TXID_LEN);
    assert_memory_equal(receipt.m.key, alice.id.public_key, PUNCH_KEY_LEN);
    assert_true(punch_addr_equal(&receipt.m.relayed, &relayed));
    static const uint8_t zero[PUNCH_MSG_SESSION_LEN];
    assert_memory_equal(receipt.m.session, zero, sizeof(zero));
    assert_true(receipt.d.len <= t.len);

    dgram c = connect_msg(&bob, "alice", NULL);
    send_from(rv, 2000, &bob.addr, &c);
    answer to_b = expect_to(rv, &bob, PUNCH_MSG_INTRODUCE);
    answer news = expect_to(rv, &bob, PUNCH_MSG_TURN_ADDR); /* right behind its INTRODUCE */
    answer to_a = expect_to(rv, &alice, PUNCH_MSG_INTRODUCE);
    expect_nothing(rv); /* bob has none: alice gets no TURN_ADDR */
    assert_introduces(&to_b, &alice);
    assert_introduces(&to_a, &bob);
    assert_memory_equal(news.m.session, to_b.m.session, PUNCH_MSG_SESSION_LEN);
    assert_memory_equal(news.m.key, alice.id.public_key, PUNCH_KEY_LEN);
    assert_true(punch_addr_equal(&news.m.relayed, &relayed));
    punch_rendezvous_free(rv);
}

/* Across members: alice's relayed address rides in her LOOKUP (her member
 * sends it on to bob's in a TURN), and the relayed address of bob, at
 * another member, reaches her as one server would send it: a TURN_ADDR
 * in the session, MAC'd for her. */
static void turn_addr_across_members(void **state)
{
    (void)state;
    punch_rendezvous_cfg cfg = base_cfg();
    cfg.cluster = true;
    punch_rendezvous *rv = make(&cfg);
    tpeer alice;
    peer_init(&alice, 2, "alice", v4(203, 0, 113, 7, 40001));
    join(rv, 1000, &alice);
    punch_addr relayed = v4(192, 0, 2, 50, 49152), bobs = v4(192, 0, 2, 60, 50000);
    dgram t = turn_addr_msg(&alice, &relayed, alice.mac_key);
    send_from(rv, 1200, &alice.addr, &t);
    expect_to(rv, &alice, PUNCH_MSG_TURN_ADDR);
    drain_events(rv);
    dgram c = connect_msg(&alice, "bob", NULL);
    send_from(rv, 2000, &alice.addr, &c);
    punch_rendezvous_event ev;
    assert_true(next_event(rv, &ev));
    assert_int_equal(ev.type, PUNCH_RV_EVENT_LOOKUP);
    assert_true(punch_addr_equal(&ev.peer[0].relayed, &relayed));

    punch_rendezvous_peer_info bob = {.name = "bob", .relayed = bobs};
    memset(bob.key, 0xb0, PUNCH_KEY_LEN);
    const uint8_t id[PUNCH_MSG_SESSION_LEN] = {1, 2, 3, 4, 5, 6, 7, 8}, tx[PUNCH_MSG_TXID_LEN] = {5};
    const uint8_t nobody[PUNCH_KEY_LEN] = {9};
    assert_int_equal(punch_rendezvous_tell_relayed_remote(rv, 2100, nobody, &bob, tx, id),
                     PUNCH_ERR_NOTFOUND);
    assert_int_equal(punch_rendezvous_tell_relayed_remote(rv, 2100, alice.id.public_key, &bob,
                                                          tx, id), 0);
    answer news = expect_to(rv, &alice, PUNCH_MSG_TURN_ADDR);
    expect_nothing(rv);
    assert_memory_equal(news.m.session, id, PUNCH_MSG_SESSION_LEN);
    assert_memory_equal(news.m.txid, tx, PUNCH_MSG_TXID_LEN);
    assert_memory_equal(news.m.key, bob.key, PUNCH_KEY_LEN);
    assert_true(punch_addr_equal(&news.m.relayed, &bobs));
    bob.relayed.family = PUNCH_AF_NONE;
    assert_int_equal(punch_rendezvous_tell_relayed_remote(rv, 2200, alice.id.public_key, &bob,
                                                          tx, id), PUNCH_ERR_INVAL);
    expect_nothing(rv);

    /* Alice met bob (at member 7) in session id; her allocation is made
     * anew: a RELAYED event for member 7 to tell bob, once per change. */
    punch_rendezvous_far far = {.member = {7}, .name = "bob", .asked = false};
    memcpy(far.key, bob.key, PUNCH_KEY_LEN);
    assert_int_equal(punch_rendezvous_met_remote(rv, 2300, alice.id.public_key, id, &far), 0);
    drain_events(rv);
    punch_addr anew = v4(192, 0, 2, 50, 49999);
    for (int i = 0; i < 2; i++) {
        t = turn_addr_msg(&alice, &anew, alice.mac_key);
        send_from(rv, 2400 + (uint64_t)i, &alice.addr, &t);
        expect_to(rv, &alice, PUNCH_MSG_TURN_ADDR); /* the receipt */
        expect_nothing(rv);
    }
    assert_true(next_event(rv, &ev));
    assert_int_equal(ev.type, PUNCH_RV_EVENT_RELAYED);
    assert_true(punch_addr_equal(&ev.peer[0].relayed, &anew));
    assert_memory_equal(ev.peer[0].key, alice.id.public_key, PUNCH_KEY_LEN);
    assert_memory_equal(ev.session, id, PUNCH_MSG_SESSION_LEN);
    assert_memory_equal(ev.far.member, far.member, PUNCH_RV_MEMBER_LEN);
    assert_memory_equal(ev.far.key, bob.key, PUNCH_KEY_LEN);
    assert_false(next_event(rv, &ev)); /* the same address again is no news */
    assert_int_equal(punch_rendezvous_counters_get(rv)->relayed_told, 1);
    punch_rendezvous_free(rv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(full_exchange),
        cmocka_unit_test(relayed_in_place_or_copied_before_the_next),
        cmocka_unit_test(hello_short_dropped_answers_never_larger),
        cmocka_unit_test(hello_rate_limited_per_source),
        cmocka_unit_test(stale_cookie_refused),
        cmocka_unit_test(cookie_from_another_address_refused),
        cmocka_unit_test(bad_mac_dropped),
        cmocka_unit_test(someone_elses_key_fails),
        cmocka_unit_test(name_taken_until_owner_expires),
        cmocka_unit_test(connect_refusals),
        cmocka_unit_test(nat_rebinding_updates_endpoint),
        cmocka_unit_test(replayed_register_cannot_move_a_peer_back),
        cmocka_unit_test(relay_only_between_the_sessions_peers),
        cmocka_unit_test(relay_half_across_members),
        cmocka_unit_test(relay_half_follows_far_member),
        cmocka_unit_test(halves_listed_while_current),
        cmocka_unit_test(rebinding_across_members_reported),
        cmocka_unit_test(superseded_half_across_members),
        cmocka_unit_test(name_refused_across_members),
        cmocka_unit_test(lookups_limited_per_source_and_name),
        cmocka_unit_test(relay_quotas),
        cmocka_unit_test(connect_again_same_session),
        cmocka_unit_test(no_relay_introduces_only),
        cmocka_unit_test(no_relay_rebinding_reintroduces),
        cmocka_unit_test(no_relay_rebinding_across_members_reported),
        cmocka_unit_test(no_relay_restart_not_reintroduced),
        cmocka_unit_test(sessions_full_still_introduces),
        cmocka_unit_test(relay_stops_when_a_peer_is_gone),
        cmocka_unit_test(table_full),
        cmocka_unit_test(peer_expiry_exactly_at_deadline),
        cmocka_unit_test(expiry_bounded_and_tables_consistent),
        cmocka_unit_test(names_per_source),
        cmocka_unit_test(connects_per_source_and_target),
        cmocka_unit_test(connect_copies_charged_once),
        cmocka_unit_test(relay_per_destination_peer),
        cmocka_unit_test(relay_per_source),
        cmocka_unit_test(rejects_bad_config),
        cmocka_unit_test(token_registers_in_one_flight),
        cmocka_unit_test(bad_tokens_dropped),
        cmocka_unit_test(token_of_another_server_dropped),
        cmocka_unit_test(turn_addr_kept_and_passed_on),
        cmocka_unit_test(turn_addr_across_members),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
