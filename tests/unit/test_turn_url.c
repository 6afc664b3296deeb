/* SPDX-License-Identifier: MIT */
/*
 * punch --turn's URL (src/core/turn_url.c): the forms a user writes
 * (default port, IPv6 in brackets, %XX escapes, a bare '@' in a password,
 * ?transport=udp), turns:// (TLS, port 5349) and ?transport=tcp (RFC 7065),
 * and the bad ones refused with a reason that names the
 * bad part and never repeats the password.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/turn_url.h"

static punch_turn_url parse_ok(const char *text)
{
    punch_turn_url u;
    char why[128] = "";
    int rc = punch_turn_url_parse(text, &u, why, sizeof(why));
    if (rc != 0)
        print_error("'%s': %s\n", text, why);
    assert_int_equal(rc, 0);
    return u;
}

static void test_good(void **state)
{
    (void)state;
    punch_turn_url u = parse_ok("turn://alice:s3cret@turn.example.org:3479");
    assert_string_equal(u.username, "alice");
    assert_string_equal(u.password, "s3cret");
    assert_string_equal(u.host, "turn.example.org");
    assert_int_equal(u.port, 3479);

    u = parse_ok("turn://bob:pw@127.0.0.1");
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, PUNCH_TURN_DEFAULT_PORT);

    u = parse_ok("turn://bob:pw@[2001:db8::1]:5000?transport=udp");
    assert_string_equal(u.host, "2001:db8::1");
    assert_int_equal(u.port, 5000);

    u = parse_ok("turn://bob:pw@[::1]");
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 3478);
    assert_int_equal(u.transport, PUNCH_TURN_UDP);
}

/* RFC 7065: turns:// is TLS (default port 5349), ?transport=tcp is TCP. */
static void test_transports(void **state)
{
    (void)state;
    punch_turn_url u = parse_ok("turns://alice:pw@turn.example.org");
    assert_int_equal(u.transport, PUNCH_TURN_TLS);
    assert_int_equal(u.port, PUNCH_TURN_DEFAULT_TLS_PORT);
    assert_string_equal(u.host, "turn.example.org");
    u = parse_ok("turns://alice:pw@[2001:db8::1]:443?transport=tcp");
    assert_int_equal(u.transport, PUNCH_TURN_TLS);
    assert_int_equal(u.port, 443);
    assert_string_equal(u.host, "2001:db8::1");
    u = parse_ok("turn://alice:pw@10.0.0.1?transport=tcp");
    assert_int_equal(u.transport, PUNCH_TURN_TCP);
    assert_int_equal(u.port, PUNCH_TURN_DEFAULT_PORT);
    u = parse_ok("turn://alice:pw@10.0.0.1:80?transport=udp");
    assert_int_equal(u.transport, PUNCH_TURN_UDP);
    assert_string_equal(punch_turn_transport_name(PUNCH_TURN_TLS), "tls");
    assert_string_equal(punch_turn_transport_name(PUNCH_TURN_TCP), "tcp");
    assert_string_equal(punch_turn_transport_name(PUNCH_TURN_UDP), "udp");
}

static void test_escapes(void **state)
{
    (void)state;
    /* ':' and '@' escaped; a bare '@' in the password: the last '@' ends it. */
    punch_turn_url u = parse_ok("turn://a%3Ab:p%40ss%25word@h:1");
    assert_string_equal(u.username, "a:b");
    assert_string_equal(u.password, "p@ss%word");
    u = parse_ok("turn://carol:p@ss:w@h:65535");
    assert_string_equal(u.username, "carol");
    assert_string_equal(u.password, "p@ss:w");
    assert_int_equal(u.port, 65535);
}

/* text is refused with a reason containing want, and never the password. */
static void bad(const char *text, const char *want)
{
    punch_turn_url u;
    memset(&u, 0xa5, sizeof(u));
    char why[128] = "";
    assert_int_equal(punch_turn_url_parse(text, &u, why, sizeof(why)), PUNCH_ERR_INVAL);
    if (!strstr(why, want))
        print_error("'%s': reason '%s', not '%s'\n", text, why, want);
    assert_non_null(strstr(why, want));
    assert_null(strstr(why, "SECRETPW"));
    assert_int_equal(u.port, 0);
    assert_int_equal(u.password[0], 0); /* nothing left half-filled */
}

static void test_bad(void **state)
{
    (void)state;
    bad("stun://a:SECRETPW@h", "turn://");
    bad("turn:a:SECRETPW@h", "turn://");
    bad("turns:/a:SECRETPW@h", "turns://");
    bad("turns://a:SECRETPW@h?transport=udp", "DTLS");
    bad("turns://a:SECRETPW@h?transport=sctp", "'?transport=sctp'");
    bad("turns://h:5349", "USER:PASS@");
    bad("turn://h:3478", "USER:PASS@");
    bad("turn://a@h", "':PASSWORD'");
    bad("turn://:SECRETPW@h", "user name is empty");
    bad("turn://a:@h", "password is empty");
    bad("turn://a:SECRETPW@", "no host");
    bad("turn://a:SECRETPW@:3478", "no host");
    bad("turn://a:SECRETPW@h:0", "port '0'");
    bad("turn://a:SECRETPW@h:65536", "port '65536'");
    bad("turn://a:SECRETPW@h:123456", "port '123456'");
    bad("turn://a:SECRETPW@h:", "port ''");
    bad("turn://a:SECRETPW@h:x1", "port 'x1'");
    bad("turn://a:SECRETPW@h:1:2", "port '1:2'");
    bad("turn://a:SECRETPW@[::1", "']'");
    bad("turn://a:SECRETPW@[::1]x", "'x' after the host");
    bad("turn://a:SECRETPW@h/path", "path");
    bad("turn://a:SECRETPW@h?transport=TCP", "transport=udp or ?transport=tcp");
    bad("turn://a:SECRETPW@h?transport=tcp&x=1", "transport=udp or ?transport=tcp");
    bad("turn://a:SECRETPW@h\x01x", "character");
    bad("turn://a:SECRET%2PW@h", "password has a bad");
    bad("turn://a:SECRET%00PW@h", "password has a bad");
    bad("turn://a%zz:SECRETPW@h", "user name has a bad");
    char long_pw[300] = "turn://a:";
    memset(long_pw + 9, 'x', 200);
    strcpy(long_pw + 209, "@h");
    bad(long_pw, "over 127 bytes");
    char why[8];
    punch_turn_url u;
    assert_int_equal(punch_turn_url_parse(NULL, &u, why, sizeof(why)), PUNCH_ERR_INVAL);
    assert_string_equal(why, "no URL"); /* and a short buffer is cut, NUL-terminated */
    assert_int_equal(punch_turn_url_parse("turns://x", &u, why, sizeof(why)), PUNCH_ERR_INVAL);
    assert_int_equal(strlen(why), sizeof(why) - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),
        cmocka_unit_test(test_transports),
        cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
