/* SPDX-License-Identifier: MIT */
/* Signalling authentication (src/crypto/auth.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "crypto/auth.h"

static punch_identity identity(uint8_t fill)
{
    uint8_t secret[PUNCH_KEY_LEN];
    memset(secret, fill, sizeof(secret));
    punch_identity id;
    assert_int_equal(punch_identity_from_secret(&id, secret), 0);
    return id;
}

static void both_sides_derive_the_same_key(void **state)
{
    (void)state;
    punch_identity peer = identity(1), server = identity(2), other = identity(3);
    uint8_t k1[PUNCH_AUTH_KEY_LEN], k2[PUNCH_AUTH_KEY_LEN], k3[PUNCH_AUTH_KEY_LEN];
    assert_int_equal(punch_auth_derive(&peer, server.public_key, k1), 0);
    assert_int_equal(punch_auth_derive(&server, peer.public_key, k2), 0);
    assert_memory_equal(k1, k2, sizeof(k1));
    /* Someone claiming the peer's public key without its secret gets another key. */
    assert_int_equal(punch_auth_derive(&other, server.public_key, k3), 0);
    assert_memory_not_equal(k1, k3, sizeof(k1));

    static const uint8_t msg[] = "REGISTER alice";
    uint8_t mac[PUNCH_AUTH_MAC_LEN];
    punch_auth_mac(k1, msg, sizeof(msg), mac);
    assert_int_equal(punch_auth_verify(k2, msg, sizeof(msg), mac), 0);
    assert_int_equal(punch_auth_verify(k3, msg, sizeof(msg), mac), PUNCH_ERR_INTEGRITY);
    for (size_t i = 0; i < sizeof(msg); i++) {
        uint8_t bad[sizeof(msg)];
        memcpy(bad, msg, sizeof(msg));
        bad[i] ^= 0x01;
        assert_int_equal(punch_auth_verify(k2, bad, sizeof(bad), mac), PUNCH_ERR_INTEGRITY);
    }
    mac[15] ^= 0x80;
    assert_int_equal(punch_auth_verify(k2, msg, sizeof(msg), mac), PUNCH_ERR_INTEGRITY);
}

static void low_order_keys_are_refused(void **state)
{
    (void)state;
    punch_identity server = identity(2);
    uint8_t zero[PUNCH_KEY_LEN] = {0}, key[PUNCH_AUTH_KEY_LEN];
    assert_int_equal(punch_auth_derive(&server, zero, key), PUNCH_ERR_INTEGRITY);
}

static void cookies_bind_address_and_period(void **state)
{
    (void)state;
    uint8_t secret[PUNCH_AUTH_SECRET_LEN], other[PUNCH_AUTH_SECRET_LEN];
    memset(secret, 7, sizeof(secret));
    memset(other, 8, sizeof(other));
    punch_addr a = {.family = PUNCH_AF_INET, .port = 40001, .ip = {203, 0, 113, 7}};
    punch_addr b = a;
    b.port = 40002;
    uint8_t c[PUNCH_AUTH_COOKIE_LEN];
    punch_auth_cookie(secret, &a, 100, c);
    assert_int_equal(punch_auth_cookie_check(secret, &a, 100, c), 0);
    assert_int_equal(punch_auth_cookie_check(secret, &a, 101, c), 0);  /* one period late */
    assert_int_equal(punch_auth_cookie_check(secret, &a, 102, c), PUNCH_ERR_INTEGRITY);
    assert_int_equal(punch_auth_cookie_check(secret, &a, 99, c), PUNCH_ERR_INTEGRITY);
    assert_int_equal(punch_auth_cookie_check(secret, &b, 100, c), PUNCH_ERR_INTEGRITY);
    assert_int_equal(punch_auth_cookie_check(other, &a, 100, c), PUNCH_ERR_INTEGRITY);
    punch_auth_cookie(secret, &a, 0, c);
    assert_int_equal(punch_auth_cookie_check(secret, &a, 0, c), 0);
}

/* Tokens bind the IP (not the port), the key and the expiry; the server
 * secret makes them; a cookie never passes for one. */
static void tokens_bind_ip_key_and_expiry(void **state)
{
    (void)state;
    uint8_t secret[PUNCH_AUTH_SECRET_LEN], other[PUNCH_AUTH_SECRET_LEN];
    memset(secret, 7, sizeof(secret));
    memset(other, 8, sizeof(other));
    uint8_t key[PUNCH_KEY_LEN], key2[PUNCH_KEY_LEN];
    memset(key, 0x11, sizeof(key));
    memset(key2, 0x12, sizeof(key2));
    punch_addr a = {.family = PUNCH_AF_INET, .port = 40001, .ip = {203, 0, 113, 7}};
    punch_addr port = a, ip = a, v6 = {.family = PUNCH_AF_INET6, .port = 40001};
    port.port = 51234;
    ip.ip[3] = 8;
    uint8_t t[PUNCH_AUTH_TOKEN_LEN];
    uint32_t serial = 0;
    punch_auth_token(secret, &a, key, 1000, 0xABCDEF01u, t);
    assert_int_equal(punch_auth_token_check(secret, &a, key, 999, t, &serial), 0);
    assert_int_equal(serial, 0xABCDEF01u);
    assert_int_equal(punch_auth_token_check(secret, &port, key, 999, t, &serial), 0);
    assert_int_equal(punch_auth_token_check(secret, &a, key, 1000, t, &serial), PUNCH_ERR_LIMIT);
    assert_int_equal(punch_auth_token_check(secret, &ip, key, 999, t, &serial), PUNCH_ERR_INTEGRITY);
    assert_int_equal(punch_auth_token_check(secret, &v6, key, 999, t, &serial),
                     PUNCH_ERR_INTEGRITY);
    assert_int_equal(punch_auth_token_check(secret, &a, key2, 999, t, &serial), PUNCH_ERR_INTEGRITY);
    assert_int_equal(punch_auth_token_check(other, &a, key, 999, t, &serial), PUNCH_ERR_INTEGRITY);
    for (size_t i = 0; i < PUNCH_AUTH_TOKEN_LEN; i++) { /* any byte changed: forged */
        t[i] ^= 0x20;
        assert_int_equal(punch_auth_token_check(secret, &a, key, 1, t, &serial),
                         PUNCH_ERR_INTEGRITY);
        t[i] ^= 0x20;
    }
    /* A cookie's bytes in a token's place (its MAC where the token's goes). */
    uint8_t c[PUNCH_AUTH_COOKIE_LEN];
    punch_auth_cookie(secret, &a, 0, c);
    memcpy(t + 8, c, sizeof(c));
    assert_int_equal(punch_auth_token_check(secret, &a, key, 1, t, &serial), PUNCH_ERR_INTEGRITY);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(both_sides_derive_the_same_key),
        cmocka_unit_test(low_order_keys_are_refused),
        cmocka_unit_test(cookies_bind_address_and_period),
        cmocka_unit_test(tokens_bind_ip_key_and_expiry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
