/* SPDX-License-Identifier: MIT */
/* The sans-I/O Binding service (src/server/binding.c) and its rate limiter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "server/binding.h"
#include "wire/stun.h"

static const uint8_t TXID[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};

static punch_addr v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint16_t port)
{
    punch_addr x = {.family = PUNCH_AF_INET, .port = port};
    x.ip[0] = a, x.ip[1] = b, x.ip[2] = c, x.ip[3] = d;
    return x;
}

static punch_addr v6(uint16_t last, uint16_t port)
{
    /* 2001:db8::/32, documentation range; last varies the low bits */
    punch_addr x = {.family = PUNCH_AF_INET6, .port = port};
    x.ip[0] = 0x20, x.ip[1] = 0x01, x.ip[2] = 0x0d, x.ip[3] = 0xb8;
    x.ip[14] = (uint8_t)(last >> 8), x.ip[15] = (uint8_t)last;
    return x;
}

/* Server at 198.51.100.1:3478, with --alt 198.51.100.2 and port 3479. */
static punch_binding_server *make_server(bool alt, uint32_t per_sec, uint32_t burst)
{
    punch_binding_cfg cfg = {.n_groups = 1,
                             .rate = {.per_sec = per_sec, .burst = burst, .slots = 64}};
    punch_binding_group *g = &cfg.groups[0];
    g->local[0][0] = v4(198, 51, 100, 1, 3478);
    if (alt) {
        g->has_alt = true;
        g->local[0][1] = v4(198, 51, 100, 1, 3479);
        g->local[1][0] = v4(198, 51, 100, 2, 3478);
        g->local[1][1] = v4(198, 51, 100, 2, 3479);
    }
    punch_binding_server *srv = NULL;
    assert_int_equal(punch_binding_new(&srv, &cfg), 0);
    return srv;
}

typedef struct request {
    uint8_t buf[512];
    size_t len;
} request;

static punch_stun_writer start_request(request *r, uint16_t method, uint8_t cls)
{
    punch_stun_writer w;
    assert_int_equal(punch_stun_writer_init(&w, r->buf, sizeof(r->buf), method, cls, TXID), 0);
    return w;
}

static void end_request(request *r, punch_stun_writer *w)
{
    assert_int_equal(punch_stun_finish(w, &r->len), 0);
}

static request binding_request(void)
{
    request r;
    punch_stun_writer w = start_request(&r, PUNCH_STUN_BINDING, PUNCH_STUN_REQUEST);
    end_request(&r, &w);
    return r;
}

/* An answer as bytes: a reply may be copied and assigned freely, as it
 * holds no pointer; msg_of decodes it where it is read. */
typedef struct reply {
    int rc;
    uint8_t buf[1024];
    punch_binding_out out;
} reply;

/* The answer in rep, decoded; its attributes point into rep->buf, so it
 * lives as long as rep. */
static punch_stun_msg msg_of(const reply *rep)
{
    punch_stun_msg m;
    assert_int_equal(rep->rc, 1);
    assert_int_equal(punch_stun_decode(&m, rep->buf, rep->out.len), 0);
    return m;
}

static reply handle_at(punch_binding_server *srv, const request *r, punch_addr src,
                       int ip, int port, uint64_t now)
{
    reply rep;
    punch_binding_in in = {.now_ms = now, .ip = ip, .port = port, .src = src,
                           .dst = v4(198, 51, 100, 1, 3478), .data = r->buf, .len = r->len};
    rep.rc = punch_binding_handle(srv, &in, rep.buf, sizeof(rep.buf), &rep.out);
    if (rep.rc == 1)
        (void)msg_of(&rep); /* every answer decodes */
    return rep;
}

static reply handle(punch_binding_server *srv, const request *r, punch_addr src)
{
    return handle_at(srv, r, src, 0, 0, 1000);
}

static void assert_addr_attr(const punch_stun_msg *m, uint16_t type, punch_addr want)
{
    const punch_stun_attr *a = punch_stun_find(m, type);
    assert_non_null(a);
    punch_addr got;
    assert_int_equal(punch_stun_read_addr(m, a, &got), 0);
    assert_true(punch_addr_equal(&got, &want));
}

static int error_code_of(const punch_stun_msg *m)
{
    const punch_stun_attr *a = punch_stun_find(m, PUNCH_STUN_ATTR_ERROR_CODE);
    assert_non_null(a);
    int code;
    const char *reason;
    size_t len;
    assert_int_equal(punch_stun_read_error(a, &code, &reason, &len), 0);
    return code;
}

static void binding_answers_with_xor_mapped_address(void **state)
{
    (void)state;
    punch_binding_server *srv = make_server(false, 0, 0);
    request r = binding_request();
    punch_addr client = v4(203, 0, 113, 7, 40001);
    reply rep = handle(srv, &r, client);
    assert_int_equal(rep.rc, 1);
    punch_stun_msg m = msg_of(&rep);
    assert_int_equal(m.cls, PUNCH_STUN_SUCCESS);
    assert_int_equal(m.method, PUNCH_STUN_BINDING);
    assert_memory_equal(m.txid, TXID, 12);
    assert_false(m.classic);
    assert_addr_attr(&m, PUNCH_STUN_ATTR_XOR_MAPPED_ADDRESS, client);
    assert_null(punch_stun_find(&m, PUNCH_STUN_ATTR_OTHER_ADDRESS));
    assert_true(punch_addr_equal(&rep.out.dst, &client));
    assert_int_equal(rep.out.ip, 0);
    assert_int_equal(rep.out.port, 0);
    assert_false(rep.out.changed);
    /* Bounded answer: header + one XOR-MAPPED-ADDRESS. */
    assert_int_equal(rep.out.len, 32);
    assert_int_equal(punch_binding_counters_get(srv)->answered, 1);
    punch_binding_free(srv);
}

static void ipv6_client_gets_ipv6_mapping(void **state)
{
    (void)state;
    punch_binding_server *srv = make_server(false, 0, 0);
    request r = binding_request();
    punch_addr client = v6(0x77, 50000);
    reply rep = handle(srv, &r, client);
    assert_int_equal(rep.rc, 1);
    punch_stun_msg m = msg_of(&rep);
    assert_addr_attr(&m, PUNCH_STUN_ATTR_XOR_MAPPED_ADDRESS, client);
    punch_binding_free(srv);
}

static void classic_request_gets_rfc3489_answer(void **state)
{
    (void)state;
    punch_binding_server *srv = make_server(true, 0, 0);
    request r;
    uint8_t txid16[16];
    for (int i = 0; i < 16; i++)
        txid16[i] = (uint8_t)(0xA0 + i);
    punch_stun_writer w;
    assert_int_equal(punch_stun_writer_init_classic(&w, r.buf, sizeof(r.buf), PUNCH_STUN_BINDING,
                                                    PUNCH_STUN_REQUEST, txid16), 0);
    end_request(&r, &w);
    punch_addr client = v4(203, 0, 113, 9, 1234);
    reply rep = handle(srv, &r, client);
    assert_int_equal(rep.rc, 1);
    punch_stun_msg m = msg_of(&rep);
    assert_true(m.classic);
    assert_memory_equal(m.txid, txid16, 16);
    assert_addr_attr(&m, PUNCH_STUN_ATTR_MAPPED_ADDRESS, client);
    assert_addr_attr(&m, PUNCH_STUN_ATTR_SOURCE_ADDRESS, v4(198, 51, 100, 1, 3478));
    assert_addr_attr(&m, PUNCH_STUN_ATTR_CHANGED_ADDRESS, v4(198, 51, 100, 2, 3479));
    assert_null(punch_stun_find(&m, PUNCH_STUN_ATTR_XOR_MAPPED_ADDRESS));
    punch_binding_free(srv);
}

static request change_request(uint32_t flags)
{
    request r;
    punch_stun_writer w = start_request(&r, PUNCH_STUN_BINDING, PUNCH_STUN_REQUEST);
    punch_stun_put_u32(&w, PUNCH_STUN_ATTR_CHANGE_REQUEST, flags);
    end_request(&r, &w);
    return r;
}

static void change_request_picks_the_other_socket(void **state)
{
    (void)state;
    punch_binding_server *srv = make_server(true, 0, 0);
    punch_addr client = v4(203, 0, 113, 7, 40001);
    static const struct {
        uint32_t flags;
        int ip, port;
    } cases[] = {
        {0, 0, 0},
        {PUNCH_STUN_CHANGE_PORT, 0, 1},
        {PUNCH_STUN_CHANGE_IP, 1, 0},
        {PUNCH_STUN_CHANGE_IP | PUNCH_STUN_CHANGE_PORT, 1, 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        request r = change_request(cases[i].flags);
        reply rep = handle(srv, &r, client);
        assert_int_equal(rep.rc, 1);
        punch_stun_msg m = msg_of(&rep);
        assert_int_equal(m.cls, PUNCH_STUN_SUCCESS);
        assert_int_equal(rep.out.ip, cases[i].ip);
        assert_int_equal(rep.out.port, cases[i].port);
        assert_int_equal(rep.out.changed, cases[i].flags != 0);
        punch_addr origin = v4(198, 51, 100, (uint8_t)(1 + cases[i].ip),
                               (uint16_t)(3478 + cases[i].port));
        assert_addr_attr(&m, PUNCH_STUN_ATTR_RESPONSE_ORIGIN, origin);
        assert_addr_attr(&m, PUNCH_STUN_ATTR_OTHER_ADDRESS, v4(198, 51, 100, 2, 3479));
        assert_addr_attr(&m, PUNCH_STUN_ATTR_XOR_MAPPED_ADDRESS, client);
    }
    /* Asked on the alternate socket, CHANGE-IP goes back to the primary IP. */
    request r = change_request(PUNCH_STUN_CHANGE_IP);
    reply rep = handle_at(srv, &r, client, 1, 1, 1000);
    assert_int_equal(rep.out.ip, 0);
    assert_int_equal(rep.out.port, 1);
    punch_binding_free(srv);
}

static void change_request_without_alternate_is_420(void **state)
{
    (void)state;
    punch_binding_server *srv = make_server(false, 0, 0);
    request r = change_request(PUNCH_STUN_CHANGE_IP);
    reply rep = handle(srv, &r, v4(203, 0, 113, 7, 40001));
    assert_int_equal(rep.rc, 1);
    punch_stun_msg m = msg_of(&rep);
    assert_int_equal(m.cls, PUNCH_STUN_ERROR);
    assert_int_equal(error_code_of(&m), 420);
    uint16_t types[4];
    size_t n;
    const punch_stun_attr *ua = punch_stun_find(&m, PUNCH_STUN_ATTR_UNKNOWN_ATTRIBUTES);
    assert_non_null(ua);
    assert_int_equal(punch_stun_read_unknown(ua, types, 4, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(types[0], PUNCH_STUN_ATTR_CHANGE_REQUEST);
    assert_int_equal(rep.out.ip, 0);
    assert_false(rep.out.changed);
    /* An RFC 3489 client would take the 420 for an answer from the other
     * address: it gets silence instead. */
    uint8_t txid16[16] = {9};
    punch_stun_writer w;
    punch_stun_writer_init_classic(&w, r.buf, sizeof(r.buf), PUNCH_STUN_BINDING,
                                   PUNCH_STUN_REQUEST, txid16);
    punch_stun_put_u32(&w, PUNCH_STUN_ATTR_CHANGE_REQUEST, PUNCH_STUN_CHANGE_IP);
    end_request(&r, &w);
    assert_int_equal(handle(srv, &r, v4(203, 0, 113, 7, 40001)).rc, 0);
    assert_int_equal(punch_binding_counters_get(srv)->unsupported, 1);
    /* A zero CHANGE-REQUEST asks for nothing: answered normally. */
    r = change_request(0);
    rep = handle(srv, &r, v4(203, 0, 113, 7, 40001));
    m = msg_of(&rep);
    assert_int_equal(m.cls, PUNCH_STUN_SUCCESS);
    assert_int_equal(punch_binding_counters_get(srv)->errors, 1);
    punch_binding_free(srv);
}

static void unknown_required_attribute_is_420(void **state)
{
    (void)state;
    punch_binding_server *srv = make_server(false, 0, 0);
    request r;
    punch_stun_writer w = start_request(&r, PUNCH_STUN_BINDING, PUNCH_STUN_REQUEST);
    punch_stun_put(&w, 0x0031, "abcd", 4);   /* comprehension-required, unknown */
    punch_stun_put(&w, 0x8031, "efgh", 4);   /* comprehension-optional: fine */
    end_request(&r, &w);
    reply rep = handle(srv, &r, v4(203, 0, 113, 7, 40001));
    assert_int_equal(rep.rc, 1);
    punch_stun_msg m = msg_of(&rep);
    assert_int_equal(error_code_of(&m), 420);
    uint16_t types[4];
    size_t n;
    punch_stun_read_unknown(punch_stun_find(&m, PUNCH_STUN_ATTR_UNKNOWN_ATTRIBUTES),
                            types, 4, &n);
    assert_int_equal(n, 1);
    assert_int_equal(types[0], 0x0031);

    w = start_request(&r, PUNCH_STUN_BINDING, PUNCH_STUN_REQUEST);
    punch_stun_put(&w, 0x8031, "efgh", 4);
    end_request(&r, &w);
    rep = handle(srv, &r, v4(203, 0, 113, 7, 40001));
    m = msg_of(&rep);
    assert_int_equal(m.cls, PUNCH_STUN_SUCCESS);
    punch_binding_free(srv);
}

static void bad_change_request_value_is_400(void **state)
{
    (void)state;
    punch_binding_server *srv = make_server(true, 0, 0);
    request r;
    punch_stun_writer w = start_request(&r, PUNCH_STUN_BINDING, PUNCH_STUN_REQUEST);
    punch_stun_put(&w, PUNCH_STUN_ATTR_CHANGE_REQUEST, "\0\0", 2);
    end_request(&r, &w);
    reply rep = handle(srv, &r, v4(203, 0, 113, 7, 40001));
    assert_int_equal(rep.rc, 1);
    punch_stun_msg m = msg_of(&rep);
    assert_int_equal(error_code_of(&m), 400);
    assert_false(rep.out.changed);
    punch_binding_free(srv);
}

static void drops_what_is_not_a_binding_request(void **state)
{
    (void)state;
    punch_binding_server *srv = make_server(false, 0, 0);
    punch_addr client = v4(203, 0, 113, 7, 40001);
    request r = binding_request();
    r.buf[0] |= 0x80; /* not STUN */
    assert_int_equal(handle(srv, &r, client).rc, 0);
    r = binding_request();
    r.len -= 1; /* truncated */
    assert_int_equal(handle(srv, &r, client).rc, 0);

    punch_stun_writer w = start_request(&r, PUNCH_STUN_BINDING, PUNCH_STUN_INDICATION);
    end_request(&r, &w);
    assert_int_equal(handle(srv, &r, client).rc, 0);
    w = start_request(&r, PUNCH_STUN_BINDING, PUNCH_STUN_SUCCESS);
    end_request(&r, &w);
    assert_int_equal(handle(srv, &r, client).rc, 0);
    /* Other methods get no answer: an error would be larger than the request. */
    w = start_request(&r, PUNCH_STUN_ALLOCATE, PUNCH_STUN_REQUEST);
    end_request(&r, &w);
    assert_int_equal(handle(srv, &r, client).rc, 0);

    const punch_binding_counters *c = punch_binding_counters_get(srv);
    assert_int_equal(c->received, 5);
    assert_int_equal(c->malformed, 2);
    assert_int_equal(c->not_request, 2);
    assert_int_equal(c->unsupported, 1);
    assert_int_equal(c->answered + c->errors, 0);
    punch_binding_free(srv);
}

static void fingerprint_is_mirrored(void **state)
{
    (void)state;
    punch_binding_server *srv = make_server(false, 0, 0);
    request r;
    punch_stun_writer w = start_request(&r, PUNCH_STUN_BINDING, PUNCH_STUN_REQUEST);
    punch_stun_put_fingerprint(&w);
    end_request(&r, &w);
    reply rep = handle(srv, &r, v4(203, 0, 113, 7, 40001));
    assert_int_equal(rep.rc, 1);
    punch_stun_msg m = msg_of(&rep);
    assert_non_null(m.fingerprint.value);
    rep = handle(srv, &(request){0}, v4(203, 0, 113, 7, 40001));
    assert_int_equal(rep.rc, 0);
    punch_binding_free(srv);
}

static void response_port_and_padding(void **state)
{
    (void)state;
    punch_binding_server *srv = make_server(true, 0, 0);
    request r;
    uint8_t pad[100] = {0};
    punch_stun_writer w = start_request(&r, PUNCH_STUN_BINDING, PUNCH_STUN_REQUEST);
    punch_stun_put_u16(&w, PUNCH_STUN_ATTR_RESPONSE_PORT, 50123);
    punch_stun_put(&w, PUNCH_STUN_ATTR_PADDING, pad, sizeof(pad));
    end_request(&r, &w);
    punch_addr client = v4(203, 0, 113, 7, 40001);
    reply rep = handle(srv, &r, client);
    assert_int_equal(rep.rc, 1);
    punch_stun_msg m = msg_of(&rep);
    assert_int_equal(m.cls, PUNCH_STUN_SUCCESS);
    assert_true(punch_addr_same_ip(&rep.out.dst, &client));
    assert_int_equal(rep.out.dst.port, 50123);
    const punch_stun_attr *p = punch_stun_find(&m, PUNCH_STUN_ATTR_PADDING);
    assert_non_null(p);
    assert_int_equal(p->len, sizeof(pad));
    /* The mapped address is still where the request came from. */
    assert_addr_attr(&m, PUNCH_STUN_ATTR_XOR_MAPPED_ADDRESS, client);
    punch_binding_free(srv);
}

static void answer_that_does_not_fit_is_dropped(void **state)
{
    (void)state;
    punch_binding_server *srv = make_server(false, 0, 0);
    request r = binding_request();
    uint8_t small[24];
    punch_binding_out out;
    punch_binding_in in = {.src = v4(203, 0, 113, 7, 1), .dst = v4(198, 51, 100, 1, 3478),
                           .data = r.buf, .len = r.len};
    assert_int_equal(punch_binding_handle(srv, &in, small, sizeof(small), &out), 0);
    assert_int_equal(punch_binding_counters_get(srv)->no_room, 1);
    in.group = 1;
    assert_int_equal(punch_binding_handle(srv, &in, small, sizeof(small), &out), PUNCH_ERR_INVAL);
    punch_binding_free(srv);
}

static void rate_limit_per_source(void **state)
{
    (void)state;
    punch_binding_server *srv = make_server(false, 10, 20);
    request r = binding_request();
    punch_addr a = v4(203, 0, 113, 7, 40001), a_other_port = v4(203, 0, 113, 7, 40002);
    punch_addr b = v4(203, 0, 113, 8, 40001);
    for (int i = 0; i < 20; i++)
        assert_int_equal(handle_at(srv, &r, i % 2 ? a : a_other_port, 0, 0, 5000).rc, 1);
    /* The burst is spent for the IP, whatever the port. */
    assert_int_equal(handle_at(srv, &r, a, 0, 0, 5000).rc, 0);
    assert_int_equal(handle_at(srv, &r, a_other_port, 0, 0, 5000).rc, 0);
    /* Another source is not affected. */
    assert_int_equal(handle_at(srv, &r, b, 0, 0, 5000).rc, 1);
    /* 10 per second: one token back after 100 ms, not before. */
    assert_int_equal(handle_at(srv, &r, a, 0, 0, 5099).rc, 0);
    assert_int_equal(handle_at(srv, &r, a, 0, 0, 5100).rc, 1);
    assert_int_equal(handle_at(srv, &r, a, 0, 0, 5100).rc, 0);
    assert_int_equal(punch_binding_counters_get(srv)->rate_limited, 4);
    /* Two spells of refusal of one source (an allowed request between them):
     * the operator's count of sources limited. */
    assert_int_equal(punch_binding_counters_get(srv)->rate_limited_sources, 2);
    punch_binding_free(srv);
}

static void rate_limit_ipv6_by_prefix(void **state)
{
    (void)state;
    punch_ratelimit *rl;
    punch_ratelimit_cfg cfg = {.per_sec = 1, .burst = 1, .slots = 16};
    assert_int_equal(punch_ratelimit_new(&rl, &cfg), 0);
    punch_addr x = v6(1, 1000), same64 = v6(2, 1000), other64 = v6(1, 1000);
    other64.ip[7] = 1;
    assert_true(punch_ratelimit_allow(rl, &x, 0));
    assert_false(punch_ratelimit_allow(rl, &same64, 0));
    assert_true(punch_ratelimit_allow(rl, &other64, 0));
    punch_ratelimit_free(rl);
}

static void rate_limit_table_recycles_stale_slots(void **state)
{
    (void)state;
    punch_ratelimit *rl;
    punch_ratelimit_cfg cfg = {.per_sec = 1, .burst = 1, .slots = 4};
    assert_int_equal(punch_ratelimit_new(&rl, &cfg), 0);
    /* Far more sources than slots: each new one still gets its token. */
    for (uint8_t i = 0; i < 200; i++) {
        punch_addr a = v4(10, 0, 0, i, 1);
        assert_true(punch_ratelimit_allow(rl, &a, 1000 + i));
    }
    punch_ratelimit_free(rl);
    assert_int_equal(punch_ratelimit_new(&rl, &(punch_ratelimit_cfg){.per_sec = 5}),
                     PUNCH_ERR_INVAL);
}

/* Issue 12, finding 12: every answer as small as the RFCs allow, in bytes:
 * success is the header and XOR-MAPPED-ADDRESS (RFC 8489 §7.3.1), with
 * --alt RESPONSE-ORIGIN and OTHER-ADDRESS too (RFC 5780 §7.3, §7.4); no
 * SOFTWARE, no MAPPED-ADDRESS, no FINGERPRINT unless the request had one;
 * errors carry the code and no reason phrase. */
static void answers_as_small_as_the_rfcs_allow(void **state)
{
    (void)state;
    punch_binding_server *plain = make_server(false, 0, 0), *alt = make_server(true, 0, 0);
    request r = binding_request();
    struct { punch_binding_server *srv; punch_addr client; size_t len; } ok[] = {
        {plain, v4(203, 0, 113, 7, 40001), 20 + 12},
        {plain, v6(0x77, 50000), 20 + 24},
        {alt, v4(203, 0, 113, 7, 40001), 20 + 3 * 12},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        reply rep = handle(ok[i].srv, &r, ok[i].client);
        assert_int_equal(rep.rc, 1);
        punch_stun_msg m = msg_of(&rep);
        assert_int_equal(rep.out.len, ok[i].len);
        assert_null(punch_stun_find(&m, PUNCH_STUN_ATTR_MAPPED_ADDRESS));
        assert_null(punch_stun_find(&m, PUNCH_STUN_ATTR_SOFTWARE));
        assert_null(punch_stun_find(&m, PUNCH_STUN_ATTR_FINGERPRINT));
    }
    /* 420: header, ERROR-CODE (8), UNKNOWN-ATTRIBUTES (8) for a 28-byte request. */
    r = change_request(PUNCH_STUN_CHANGE_IP);
    reply rep = handle(plain, &r, v4(203, 0, 113, 7, 40001));
    assert_int_equal(r.len, 28);
    assert_int_equal(rep.out.len, 20 + 8 + 8);
    /* 400: header and ERROR-CODE: no larger than the request. */
    punch_stun_writer w = start_request(&r, PUNCH_STUN_BINDING, PUNCH_STUN_REQUEST);
    punch_stun_put(&w, PUNCH_STUN_ATTR_CHANGE_REQUEST, "\0\0", 2);
    end_request(&r, &w);
    rep = handle(alt, &r, v4(203, 0, 113, 7, 40001));
    punch_stun_msg m = msg_of(&rep);
    assert_int_equal(error_code_of(&m), 400);
    assert_int_equal(rep.out.len, 20 + 8);
    assert_true(rep.out.len <= r.len);
    punch_binding_free(plain);
    punch_binding_free(alt);
}

static void rejects_bad_groups(void **state)
{
    (void)state;
    punch_binding_server *srv = NULL;
    punch_binding_cfg cfg = {.n_groups = 1};
    assert_int_equal(punch_binding_new(&srv, &cfg), PUNCH_ERR_INVAL); /* no address */
    cfg.groups[0].local[0][0] = v4(0, 0, 0, 0, 3478);
    assert_int_equal(punch_binding_new(&srv, &cfg), 0); /* wildcard alone is fine */
    punch_binding_free(srv);
    cfg.groups[0].has_alt = true; /* ...but not with an alternate */
    cfg.groups[0].local[0][1] = v4(0, 0, 0, 0, 3479);
    cfg.groups[0].local[1][0] = v4(198, 51, 100, 2, 3478);
    cfg.groups[0].local[1][1] = v4(198, 51, 100, 2, 3479);
    assert_int_equal(punch_binding_new(&srv, &cfg), PUNCH_ERR_INVAL);
    cfg.n_groups = 0;
    assert_int_equal(punch_binding_new(&srv, &cfg), PUNCH_ERR_INVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(binding_answers_with_xor_mapped_address),
        cmocka_unit_test(ipv6_client_gets_ipv6_mapping),
        cmocka_unit_test(classic_request_gets_rfc3489_answer),
        cmocka_unit_test(change_request_picks_the_other_socket),
        cmocka_unit_test(change_request_without_alternate_is_420),
        cmocka_unit_test(unknown_required_attribute_is_420),
        cmocka_unit_test(bad_change_request_value_is_400),
        cmocka_unit_test(drops_what_is_not_a_binding_request),
        cmocka_unit_test(fingerprint_is_mirrored),
        cmocka_unit_test(response_port_and_padding),
        cmocka_unit_test(answer_that_does_not_fit_is_dropped),
        cmocka_unit_test(rate_limit_per_source),
        cmocka_unit_test(rate_limit_ipv6_by_prefix),
        cmocka_unit_test(rate_limit_table_recycles_stale_slots),
        cmocka_unit_test(answers_as_small_as_the_rfcs_allow),
        cmocka_unit_test(rejects_bad_groups),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
