/* SPDX-License-Identifier: MIT */
/* PCP messages (src/wire/pcp.c, RFC 6887): requests byte for byte as the
 * RFC lays them out, a response miniupnpd 2.3.1 sent in the lab, and every
 * kind of bad answer refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "punch/punch.h"
#include "wire/pcp.h"

static const punch_addr client = {.family = PUNCH_AF_INET, .ip = {10, 0, 1, 10}};

/* RFC 6887 §7.1 and §11.1: version 2, MAP, lifetime 7200, the client as
 * ::ffff:10.0.1.10; nonce, UDP, internal port 40000, no suggestion. */
static const uint8_t map_request[] = {
    0x02, 0x01, 0x00, 0x00, 0x00, 0x00, 0x1c, 0x20,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 10, 0, 1, 10,
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
    17, 0, 0, 0, 0x9c, 0x40, 0x00, 0x00,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};

/* The answer miniupnpd 2.3.1 gave that request in the lab (punch-lab
 * --portmap-a pcp, sent from alice): R bit, SUCCESS, lifetime 7200, epoch
 * 36112; port 40000 at ::ffff:192.0.3.1. */
static const uint8_t map_response[] = {
    0x02, 0x81, 0x00, 0x00, 0x00, 0x00, 0x1c, 0x20, 0x00, 0x00, 0x8d, 0x10,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
    17, 0, 0, 0, 0x9c, 0x40, 0x9c, 0x40,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 3, 1,
};

static punch_pcp_map sample_map(void)
{
    punch_pcp_map m = {.protocol = PUNCH_PCP_PROTO_UDP, .internal_port = 40000};
    for (int i = 0; i < PUNCH_PCP_NONCE_LEN; i++)
        m.nonce[i] = (uint8_t)(i + 1);
    return m;
}

static void map_request_bytes(void **state)
{
    (void)state;
    uint8_t buf[PUNCH_PCP_MAX_LEN];
    size_t len = 0;
    punch_pcp_map m = sample_map();
    assert_int_equal(punch_pcp_encode_map(&client, 7200, &m, buf, sizeof(buf), &len), 0);
    assert_int_equal(len, sizeof(map_request));
    assert_memory_equal(buf, map_request, len);
    assert_int_equal(punch_pcp_encode_map(&client, 7200, &m, buf, len - 1, &len),
                     PUNCH_ERR_NOBUFS);
    punch_addr none = {0};
    assert_int_equal(punch_pcp_encode_map(&none, 7200, &m, buf, sizeof(buf), &len),
                     PUNCH_ERR_INVAL);
}

static void announce_bytes(void **state)
{
    (void)state;
    uint8_t buf[64];
    size_t len = 0;
    assert_int_equal(punch_pcp_encode_announce(&client, buf, sizeof(buf), &len), 0);
    assert_int_equal(len, PUNCH_PCP_HEADER_LEN);
    assert_int_equal(buf[0], PUNCH_PCP_VERSION);
    assert_int_equal(buf[1], PUNCH_PCP_OP_ANNOUNCE);
    assert_memory_equal(buf + 8, map_request + 8, 16);
}

static void map_response_read(void **state)
{
    (void)state;
    punch_pcp_response r;
    assert_int_equal(punch_pcp_decode_response(map_response, sizeof(map_response), &r), 0);
    assert_int_equal(r.opcode, PUNCH_PCP_OP_MAP);
    assert_int_equal(r.result, PUNCH_PCP_SUCCESS);
    assert_int_equal(r.lifetime_s, 7200);
    assert_int_equal(r.epoch_s, 36112);
    punch_pcp_map m = sample_map();
    assert_memory_equal(r.map.nonce, m.nonce, PUNCH_PCP_NONCE_LEN);
    assert_int_equal(r.map.protocol, PUNCH_PCP_PROTO_UDP);
    assert_int_equal(r.map.internal_port, 40000);
    punch_addr ext = {.family = PUNCH_AF_INET, .port = 40000, .ip = {192, 0, 3, 1}};
    assert_true(punch_addr_equal(&r.map.external, &ext));
}

static void options_are_skipped_when_well_formed(void **state)
{
    (void)state;
    uint8_t buf[sizeof(map_response) + 8];
    memcpy(buf, map_response, sizeof(map_response));
    /* PREFER_FAILURE (code 2, no data), then THIRD_PARTY cut short. */
    uint8_t opts[8] = {2, 0, 0, 0, 1, 0, 0, 16};
    memcpy(buf + sizeof(map_response), opts, sizeof(opts));
    punch_pcp_response r;
    assert_int_equal(punch_pcp_decode_response(buf, sizeof(map_response) + 4, &r), 0);
    assert_int_equal(punch_pcp_decode_response(buf, sizeof(buf), &r), PUNCH_ERR_MALFORMED);
}

static void bad_answers_refused(void **state)
{
    (void)state;
    uint8_t buf[PUNCH_PCP_MAX_LEN + 4] = {0};
    punch_pcp_response r;
    memcpy(buf, map_response, sizeof(map_response));
    /* Cut inside the body, not a multiple of 4, too long. */
    assert_int_equal(punch_pcp_decode_response(buf, 40, &r), PUNCH_ERR_MALFORMED);
    assert_int_equal(punch_pcp_decode_response(buf, 58, &r), PUNCH_ERR_MALFORMED);
    assert_int_equal(punch_pcp_decode_response(buf, sizeof(buf), &r), PUNCH_ERR_MALFORMED);
    assert_int_equal(punch_pcp_decode_response(buf, 20, &r), PUNCH_ERR_MALFORMED);
    /* A request (no R bit), a NAT-PMP answer (version 0), an unknown opcode. */
    buf[1] = PUNCH_PCP_OP_MAP;
    assert_int_equal(punch_pcp_decode_response(buf, sizeof(map_response), &r),
                     PUNCH_ERR_MALFORMED);
    buf[1] = 0x81;
    buf[0] = 0;
    assert_int_equal(punch_pcp_decode_response(buf, sizeof(map_response), &r),
                     PUNCH_ERR_MALFORMED);
    buf[0] = 2;
    buf[1] = 0x83;
    assert_int_equal(punch_pcp_decode_response(buf, sizeof(map_response), &r),
                     PUNCH_ERR_MALFORMED);
    assert_int_equal(punch_pcp_decode_response(NULL, 0, &r), PUNCH_ERR_INVAL);
}

static void error_answer_without_body(void **state)
{
    (void)state;
    uint8_t buf[PUNCH_PCP_HEADER_LEN];
    memcpy(buf, map_response, sizeof(buf));
    buf[3] = PUNCH_PCP_NOT_AUTHORIZED;
    punch_pcp_response r;
    assert_int_equal(punch_pcp_decode_response(buf, sizeof(buf), &r), 0);
    assert_int_equal(r.result, PUNCH_PCP_NOT_AUTHORIZED);
    assert_string_equal(punch_pcp_result_name(r.result), "NOT_AUTHORIZED");
    assert_string_equal(punch_pcp_result_name(200), "unknown result");
    /* SUCCESS must carry the body. */
    buf[3] = PUNCH_PCP_SUCCESS;
    assert_int_equal(punch_pcp_decode_response(buf, sizeof(buf), &r), PUNCH_ERR_MALFORMED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(map_request_bytes),
        cmocka_unit_test(announce_bytes),
        cmocka_unit_test(map_response_read),
        cmocka_unit_test(options_are_skipped_when_well_formed),
        cmocka_unit_test(bad_answers_refused),
        cmocka_unit_test(error_answer_without_body),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
