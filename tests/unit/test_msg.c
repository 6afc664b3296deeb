/* SPDX-License-Identifier: MIT */
/* punch's messages (src/wire/msg.c): every type round-trips, every
 * malformed form is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "wire/msg.h"

static punch_addr v4(uint8_t d, uint16_t port)
{
    return (punch_addr){.family = PUNCH_AF_INET, .port = port, .ip = {10, 0, 1, d}};
}

static punch_addr v6(uint16_t port)
{
    punch_addr a = {.family = PUNCH_AF_INET6, .port = port, .ip = {0x20, 0x01, 0x0d, 0xb8}};
    a.ip[15] = 9;
    return a;
}

/* One message of each type with every field set. */
static punch_msg sample(punch_msg_type type)
{
    static const uint8_t payload[] = "noise bytes";
    punch_msg m = {.type = type};
    for (int i = 0; i < PUNCH_MSG_TXID_LEN; i++)
        m.txid[i] = (uint8_t)(i + 1);
    for (int i = 0; i < PUNCH_MSG_KEY_LEN; i++) {
        m.key[i] = (uint8_t)(0xA0 + i);
        m.peer_key[i] = (uint8_t)(0x40 + i);
    }
    for (int i = 0; i < PUNCH_MSG_COOKIE_LEN; i++)
        m.cookie[i] = (uint8_t)(0xC0 + i);
    for (int i = 0; i < PUNCH_MSG_SESSION_LEN; i++)
        m.session[i] = (uint8_t)(0x50 + i);
    strcpy(m.name, "alice-laptop");
    m.public_addr = (punch_addr){.family = PUNCH_AF_INET, .port = 40001, .ip = {203, 0, 113, 7}};
    m.relayed = (punch_addr){.family = PUNCH_AF_INET, .port = 49160, .ip = {198, 51, 100, 9}};
    m.n_private = 3;
    m.private_addr[0] = v4(2, 5000);
    m.private_addr[1] = v6(5000);
    m.private_addr[2] = v4(3, 65535);
    m.code = PUNCH_REFUSED_NO_PEER;
    m.keepalive_s = 25;
    m.flags = PUNCH_INTRO_INITIATOR | PUNCH_INTRO_RELAY;
    m.rtt_ms = 41;
    m.nat_mapping = PUNCH_MSG_NAT_APDM;
    m.nat_step = (uint16_t)-2;
    m.nat_port = 40010;
    m.n_mapped = 1;
    m.second_port = 3479;
    m.sequence = 0x0102030405060708ull;
    m.relay_bytes_per_s = 0x00100000;
    m.relay_packets_per_s = 4000;
    if (type == PUNCH_MSG_REGISTER || type == PUNCH_MSG_REGISTERED) {
        m.token_len = PUNCH_MSG_TOKEN_LEN;
        for (int i = 0; i < PUNCH_MSG_TOKEN_LEN; i++)
            m.token[i] = (uint8_t)(0x70 + i);
    }
    if (type == PUNCH_MSG_TCP_OFFER) {
        m.flags = PUNCH_TCP_FLAG_ANSWER | PUNCH_TCP_FLAG_PREFER;
        m.attempt = 2;
        m.delay_ms = 15;
    }
    if (type == PUNCH_MSG_RELAY || (type >= PUNCH_MSG_HANDSHAKE1 && type <= PUNCH_MSG_DATA)) {
        m.payload = payload;
        m.payload_len = sizeof(payload);
    }
    return m;
}

static const punch_msg_type all_types[] = {
    PUNCH_MSG_HELLO,     PUNCH_MSG_COOKIE,     PUNCH_MSG_REGISTER,   PUNCH_MSG_REGISTERED,
    PUNCH_MSG_CONNECT,   PUNCH_MSG_INTRODUCE,  PUNCH_MSG_REFUSED,    PUNCH_MSG_RELAY,
    PUNCH_MSG_HANDSHAKE1, PUNCH_MSG_HANDSHAKE2, PUNCH_MSG_DATA,   PUNCH_MSG_TCP_OFFER,
    PUNCH_MSG_TURN_ADDR, PUNCH_MSG_RELAY_RATE,
};
#define N_TYPES (sizeof(all_types) / sizeof(all_types[0]))

static void assert_same_fields(const punch_msg *a, const punch_msg *b)
{
    assert_int_equal(a->type, b->type);
    switch (a->type) {
    case PUNCH_MSG_HELLO:
        assert_memory_equal(a->txid, b->txid, PUNCH_MSG_TXID_LEN);
        break;
    case PUNCH_MSG_COOKIE:
        assert_memory_equal(a->cookie, b->cookie, PUNCH_MSG_COOKIE_LEN);
        assert_memory_equal(a->key, b->key, PUNCH_MSG_KEY_LEN);
        assert_int_equal(a->second_port, b->second_port);
        break;
    case PUNCH_MSG_REGISTER:
        assert_memory_equal(a->cookie, b->cookie, PUNCH_MSG_COOKIE_LEN);
        assert_memory_equal(a->key, b->key, PUNCH_MSG_KEY_LEN);
        assert_string_equal(a->name, b->name);
        assert_int_equal(a->n_private, b->n_private);
        for (size_t i = 0; i < a->n_private; i++)
            assert_true(punch_addr_equal(&a->private_addr[i], &b->private_addr[i]));
        assert_int_equal(a->rtt_ms, b->rtt_ms);
        assert_int_equal(a->nat_mapping, b->nat_mapping);
        assert_int_equal(a->nat_step, b->nat_step);
        assert_int_equal(a->nat_port, b->nat_port);
        assert_int_equal(a->n_mapped, b->n_mapped);
        assert_true(a->sequence == b->sequence);
        assert_int_equal(a->token_len, b->token_len);
        assert_memory_equal(a->token, b->token, PUNCH_MSG_TOKEN_LEN);
        break;
    case PUNCH_MSG_REGISTERED:
        assert_true(punch_addr_equal(&a->public_addr, &b->public_addr));
        assert_memory_equal(a->cookie, b->cookie, PUNCH_MSG_COOKIE_LEN);
        assert_int_equal(a->keepalive_s, b->keepalive_s);
        assert_int_equal(a->token_len, b->token_len);
        assert_memory_equal(a->token, b->token, PUNCH_MSG_TOKEN_LEN);
        break;
    case PUNCH_MSG_CONNECT:
        assert_memory_equal(a->peer_key, b->peer_key, PUNCH_MSG_KEY_LEN);
        assert_string_equal(a->name, b->name);
        break;
    case PUNCH_MSG_INTRODUCE:
        assert_memory_equal(a->session, b->session, PUNCH_MSG_SESSION_LEN);
        assert_true(punch_addr_equal(&a->public_addr, &b->public_addr));
        assert_int_equal(a->n_private, b->n_private);
        assert_int_equal(a->flags, b->flags);
        assert_int_equal(a->rtt_ms, b->rtt_ms);
        assert_int_equal(a->nat_mapping, b->nat_mapping);
        assert_int_equal(a->nat_step, b->nat_step);
        assert_int_equal(a->nat_port, b->nat_port);
        assert_int_equal(a->n_mapped, b->n_mapped);
        break;
    case PUNCH_MSG_REFUSED:
        assert_int_equal(a->code, b->code);
        break;
    case PUNCH_MSG_TURN_ADDR:
        assert_memory_equal(a->txid, b->txid, PUNCH_MSG_TXID_LEN);
        assert_memory_equal(a->session, b->session, PUNCH_MSG_SESSION_LEN);
        assert_memory_equal(a->key, b->key, PUNCH_MSG_KEY_LEN);
        assert_true(punch_addr_equal(&a->relayed, &b->relayed));
        break;
    case PUNCH_MSG_RELAY_RATE:
        assert_memory_equal(a->session, b->session, PUNCH_MSG_SESSION_LEN);
        assert_memory_equal(a->key, b->key, PUNCH_MSG_KEY_LEN);
        assert_int_equal(a->relay_bytes_per_s, b->relay_bytes_per_s);
        assert_int_equal(a->relay_packets_per_s, b->relay_packets_per_s);
        break;
    case PUNCH_MSG_TCP_OFFER:
        assert_int_equal(a->flags, b->flags);
        assert_int_equal(a->attempt, b->attempt);
        assert_int_equal(a->delay_ms, b->delay_ms);
        assert_true(punch_addr_equal(&a->public_addr, &b->public_addr));
        assert_int_equal(a->n_private, b->n_private);
        for (size_t i = 0; i < a->n_private; i++)
            assert_true(punch_addr_equal(&a->private_addr[i], &b->private_addr[i]));
        break;
    default:
        assert_int_equal(a->payload_len, b->payload_len);
        assert_memory_equal(a->payload, b->payload, a->payload_len);
    }
}

static void every_type_round_trips(void **state)
{
    (void)state;
    for (size_t t = 0; t < N_TYPES; t++) {
        punch_msg m = sample(all_types[t]), d;
        uint8_t buf[512];
        size_t len;
        assert_int_equal(punch_msg_encode(&m, buf, sizeof(buf), &len), 0);
        assert_true(punch_msg_is_msg(buf, len));
        assert_int_equal(punch_msg_decode(buf, len, &d), 0);
        assert_same_fields(&m, &d);
        if (punch_msg_has_mac(m.type)) {
            assert_non_null(d.mac);
            assert_int_equal(d.mac_offset, len - PUNCH_MSG_MAC_LEN);
            assert_ptr_equal(d.mac, buf + d.mac_offset);
        }
        /* Exactly the room it needs: one byte less is NOBUFS. */
        size_t len2;
        assert_int_equal(punch_msg_encode(&m, buf, len - 1, &len2), PUNCH_ERR_NOBUFS);
        assert_int_equal(punch_msg_encode(&m, buf, len, &len2), 0);
    }
}

static void hello_is_never_smaller_than_cookie(void **state)
{
    (void)state;
    uint8_t buf[512];
    size_t hello, cookie;
    punch_msg m = sample(PUNCH_MSG_HELLO);
    assert_int_equal(punch_msg_encode(&m, buf, sizeof(buf), &hello), 0);
    m = sample(PUNCH_MSG_COOKIE);
    assert_int_equal(punch_msg_encode(&m, buf, sizeof(buf), &cookie), 0);
    assert_int_equal(hello, PUNCH_MSG_HELLO_LEN);
    assert_true(cookie <= hello);
}

static void every_truncation_is_malformed(void **state)
{
    (void)state;
    for (size_t t = 0; t < N_TYPES; t++) {
        punch_msg m = sample(all_types[t]), d;
        uint8_t buf[512];
        size_t len;
        assert_int_equal(punch_msg_encode(&m, buf, sizeof(buf), &len), 0);
        /* Payload types end anywhere after their header: check up to it. */
        size_t min = len - m.payload_len;
        for (size_t cut = 0; cut < min; cut++)
            assert_int_equal(punch_msg_decode(buf, cut, &d), PUNCH_ERR_MALFORMED);
        if (!m.payload_len)
            assert_int_equal(punch_msg_decode(buf, len + 1, &d), PUNCH_ERR_MALFORMED);
    }
}

/* RELAY_RATE: session, key, bytes/s and datagrams/s (4 bytes each,
 * big-endian), MAC; a rate of 0 is malformed both ways. */
static void relay_rate_layout_and_zero(void **state)
{
    (void)state;
    uint8_t buf[512];
    size_t len;
    punch_msg m = sample(PUNCH_MSG_RELAY_RATE), d;
    assert_int_equal(punch_msg_encode(&m, buf, sizeof(buf), &len), 0);
    size_t rate_at = 2 + PUNCH_MSG_SESSION_LEN + PUNCH_MSG_KEY_LEN;
    assert_int_equal(len, rate_at + 8 + PUNCH_MSG_MAC_LEN);
    static const uint8_t rates[8] = {0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x0f, 0xa0};
    assert_memory_equal(buf + rate_at, rates, sizeof(rates));
    for (size_t at = rate_at; at < rate_at + 8; at += 4) {
        uint8_t keep[4];
        memcpy(keep, buf + at, 4);
        memset(buf + at, 0, 4);
        assert_int_equal(punch_msg_decode(buf, len, &d), PUNCH_ERR_MALFORMED);
        memcpy(buf + at, keep, 4);
    }
    assert_int_equal(punch_msg_decode(buf, len, &d), 0);
    m.relay_packets_per_s = 0;
    assert_int_equal(punch_msg_encode(&m, buf, sizeof(buf), &len), PUNCH_ERR_INVAL);
}

static void bad_values_are_refused(void **state)
{
    (void)state;
    uint8_t buf[512];
    size_t len;
    punch_msg m = sample(PUNCH_MSG_REGISTER), d;
    assert_int_equal(punch_msg_encode(&m, buf, sizeof(buf), &len), 0);

    buf[0] = 0x71;
    assert_int_equal(punch_msg_decode(buf, len, &d), PUNCH_ERR_MALFORMED);
    buf[0] = PUNCH_MSG_MAGIC;
    buf[1] = 0x0B; /* unknown type */
    assert_int_equal(punch_msg_decode(buf, len, &d), PUNCH_ERR_MALFORMED);
    buf[1] = PUNCH_MSG_REGISTER;

    size_t name_at = 2 + PUNCH_MSG_TXID_LEN + PUNCH_MSG_COOKIE_LEN + PUNCH_MSG_KEY_LEN;
    buf[name_at + 1] = ' '; /* a space in the name */
    assert_int_equal(punch_msg_decode(buf, len, &d), PUNCH_ERR_MALFORMED);
    buf[name_at + 1] = '"';
    assert_int_equal(punch_msg_decode(buf, len, &d), PUNCH_ERR_MALFORMED);
    buf[name_at + 1] = 'a';
    size_t priv_at = name_at + 1 + strlen(m.name);
    buf[priv_at] = PUNCH_MSG_MAX_PRIVATE + 1;
    assert_int_equal(punch_msg_decode(buf, len, &d), PUNCH_ERR_MALFORMED);
    buf[priv_at] = 3;
    buf[priv_at + 1] = 5; /* address family 5 */
    assert_int_equal(punch_msg_decode(buf, len, &d), PUNCH_ERR_MALFORMED);
    buf[priv_at + 1] = PUNCH_AF_INET;
    buf[priv_at + 1 + 18] = 1; /* IPv4 with a non-zero unused byte */
    assert_int_equal(punch_msg_decode(buf, len, &d), PUNCH_ERR_MALFORMED);
    buf[priv_at + 1 + 18] = 0;
    assert_int_equal(punch_msg_decode(buf, len, &d), 0);

    /* REGISTER ends with the sequence (8 bytes, big-endian), the token
     * (a length byte and the token) and the MAC. */
    size_t sequence_at = len - PUNCH_MSG_MAC_LEN - PUNCH_MSG_TOKEN_LEN - 1 - 8;
    assert_int_equal(buf[sequence_at], 0x01);
    assert_int_equal(buf[sequence_at + 7], 0x08);
    /* More mapped endpoints than private ones (before the sequence). */
    size_t mapped_at = sequence_at - 1;
    assert_int_equal(buf[mapped_at], 1);
    buf[mapped_at] = 4;
    assert_int_equal(punch_msg_decode(buf, len, &d), PUNCH_ERR_MALFORMED);
    buf[mapped_at] = 3;
    assert_int_equal(punch_msg_decode(buf, len, &d), 0);
    assert_int_equal(d.n_mapped, 3);

    /* A NAT mapping kind beyond the known ones (before it, the step and
     * the port). */
    size_t nat_at = mapped_at - 5;
    assert_int_equal(buf[nat_at], PUNCH_MSG_NAT_APDM);
    buf[nat_at] = PUNCH_MSG_NAT_APDM + 1;
    assert_int_equal(punch_msg_decode(buf, len, &d), PUNCH_ERR_MALFORMED);
    buf[nat_at] = PUNCH_MSG_NAT_APDM;
    assert_int_equal(punch_msg_decode(buf, len, &d), 0);
}

static void bad_tcp_offer_and_encoder_refusals(void **state)
{
    (void)state;
    uint8_t buf[512];
    size_t len;
    punch_msg m, d;

    /* TCP_OFFER: unknown flag bits, attempt 0. */
    m = sample(PUNCH_MSG_TCP_OFFER);
    assert_int_equal(punch_msg_encode(&m, buf, sizeof(buf), &len), 0);
    buf[2] |= 0x80;
    assert_int_equal(punch_msg_decode(buf, len, &d), PUNCH_ERR_MALFORMED);
    buf[2] &= 0x7f;
    buf[3] = buf[4] = 0;
    assert_int_equal(punch_msg_decode(buf, len, &d), PUNCH_ERR_MALFORMED);
    buf[4] = 1;
    assert_int_equal(punch_msg_decode(buf, len, &d), 0);
    m = sample(PUNCH_MSG_REGISTER);

    /* The encoder refuses what the decoder would. */
    strcpy(m.name, "has space");
    assert_int_equal(punch_msg_encode(&m, buf, sizeof(buf), &len), PUNCH_ERR_INVAL);
    m.name[0] = '\0';
    assert_int_equal(punch_msg_encode(&m, buf, sizeof(buf), &len), PUNCH_ERR_INVAL);
    memset(m.name, 'x', sizeof(m.name)); /* no terminator within 64 bytes */
    assert_int_equal(punch_msg_encode(&m, buf, sizeof(buf), &len), PUNCH_ERR_INVAL);
    m = sample(PUNCH_MSG_REGISTER);
    m.n_private = PUNCH_MSG_MAX_PRIVATE + 1;
    assert_int_equal(punch_msg_encode(&m, buf, sizeof(buf), &len), PUNCH_ERR_INVAL);
    m.n_private = 1;
    m.private_addr[0].family = 5;
    assert_int_equal(punch_msg_encode(&m, buf, sizeof(buf), &len), PUNCH_ERR_INVAL);
    assert_false(punch_msg_is_msg(buf, 1));
    assert_int_equal(punch_msg_decode(NULL, 4, &d), PUNCH_ERR_INVAL);
}

/* A token is absent (length 0) or PUNCH_MSG_TOKEN_LEN bytes, nothing else
 * (REGISTER and REGISTERED end with it, then the MAC). */
static void token_lengths(void **state)
{
    (void)state;
    static const punch_msg_type types[] = {PUNCH_MSG_REGISTER, PUNCH_MSG_REGISTERED};
    for (size_t t = 0; t < 2; t++) {
        uint8_t buf[512];
        size_t len;
        punch_msg m = sample(types[t]), d;
        assert_int_equal(punch_msg_encode(&m, buf, sizeof(buf), &len), 0);
        size_t token_at = len - PUNCH_MSG_MAC_LEN - PUNCH_MSG_TOKEN_LEN - 1;
        assert_int_equal(buf[token_at], PUNCH_MSG_TOKEN_LEN);
        buf[token_at] = PUNCH_MSG_TOKEN_LEN - 1;
        assert_int_equal(punch_msg_decode(buf, len, &d), PUNCH_ERR_MALFORMED);
        buf[token_at] = PUNCH_MSG_TOKEN_LEN;
        assert_int_equal(punch_msg_decode(buf, len, &d), 0);
        m.token_len = 0;
        size_t shorter;
        assert_int_equal(punch_msg_encode(&m, buf, sizeof(buf), &shorter), 0);
        assert_int_equal(shorter, len - PUNCH_MSG_TOKEN_LEN);
        assert_int_equal(punch_msg_decode(buf, shorter, &d), 0);
        assert_int_equal(d.token_len, 0);
        m.token_len = 3;
        assert_int_equal(punch_msg_encode(&m, buf, sizeof(buf), &len), PUNCH_ERR_INVAL);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_type_round_trips),
        cmocka_unit_test(bad_tcp_offer_and_encoder_refusals),
        cmocka_unit_test(hello_is_never_smaller_than_cookie),
        cmocka_unit_test(every_truncation_is_malformed),
        cmocka_unit_test(bad_values_are_refused),
        cmocka_unit_test(relay_rate_layout_and_zero),
        cmocka_unit_test(token_lengths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
