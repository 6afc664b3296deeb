/* SPDX-License-Identifier: MIT */
/* Port mapping's sans-I/O half (src/core/portmap.c), in virtual time:
 * auto mode asks PCP, then NAT-PMP, then UPnP; the first mapping is told
 * and offered; it is renewed at exactly half its lifetime, dropped when it
 * expires unrenewed, released on exit; with nothing on offer the ATTEMPT
 * says why, once, and the gateway is asked again 10 minutes later. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/portmap.h"
#include "punch/punch.h"

static const uint8_t nonce[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
static const punch_addr ext = {.family = PUNCH_AF_INET, .port = 40000, .ip = {192, 0, 3, 1}};

static punch_portmap_result failed(punch_portmap_proto p, const char *why)
{
    punch_portmap_result r = {.proto = p};
    strcpy(r.why, why);
    return r;
}

static punch_portmap_result granted(punch_portmap_proto p, uint32_t life)
{
    punch_portmap_result r = {.proto = p, .ok = true, .external = ext, .lifetime_s = life};
    return r;
}

static void auto_tries_each_in_turn(void **state)
{
    (void)state;
    punch_portmap pm;
    punch_portmap_request req;
    punch_event ev;
    punch_portmap_init(&pm, PUNCH_PORTMAP_AUTO, nonce, 100);
    assert_int_equal(punch_portmap_poll(&pm, 100, &req), 1);
    assert_int_equal(req.proto, PUNCH_PORTMAP_PCP);
    assert_memory_equal(req.nonce, nonce, 12);
    assert_int_equal(req.lifetime_s, PUNCH_PORTMAP_LIFETIME_S);
    assert_int_equal(punch_portmap_poll(&pm, 100, &req), 0); /* one at a time */
    punch_portmap_result r = failed(PUNCH_PORTMAP_PCP, "no answer");
    assert_int_equal(punch_portmap_take(&pm, 300, &r, &ev), 0);
    assert_int_equal(punch_portmap_poll(&pm, 300, &req), 1);
    assert_int_equal(req.proto, PUNCH_PORTMAP_NATPMP);
    r = granted(PUNCH_PORTMAP_NATPMP, 120);
    assert_int_equal(punch_portmap_take(&pm, 340, &r, &ev), PUNCH_PM_TELL | PUNCH_PM_READVERTISE);
    assert_int_equal(ev.kind, PUNCH_EVENT_PORTMAP);
    assert_string_equal(ev.portmap.proto, "natpmp");
    assert_int_equal(ev.portmap.took_ms, 240);
    assert_true(punch_addr_equal(&ev.portmap.external, &ext));
    assert_true(punch_portmap_held(&pm));
    /* Offered after the private endpoints; a full list gives up its last. */
    punch_addr list[3] = {{.family = PUNCH_AF_INET, .port = 1}, {.family = PUNCH_AF_INET, .port = 2}};
    size_t n = 2;
    assert_int_equal(punch_portmap_advertise(&pm, list, &n, 3), 1);
    assert_int_equal(n, 3);
    assert_true(punch_addr_equal(&list[2], &ext));
    n = 3;
    assert_int_equal(punch_portmap_advertise(&pm, list, &n, 3), 1);
    assert_int_equal(n, 3);
    /* Renewed with NAT-PMP at exactly half of 120 s, not a moment before. */
    assert_int_equal(punch_portmap_next_timeout(&pm), 340 + 60000);
    assert_int_equal(punch_portmap_poll(&pm, 340 + 59999, &req), 0);
    assert_int_equal(punch_portmap_poll(&pm, 340 + 60000, &req), 1);
    assert_int_equal(req.proto, PUNCH_PORTMAP_NATPMP);
    assert_true(punch_addr_equal(&req.external, &ext));
    r = granted(PUNCH_PORTMAP_NATPMP, 120);
    assert_int_equal(punch_portmap_take(&pm, 60400, &r, &ev), 0); /* same endpoint: quiet */
    /* Released on exit. */
    assert_int_equal(punch_portmap_release(&pm, &req), 1);
    assert_true(req.remove);
    assert_int_equal(req.proto, PUNCH_PORTMAP_NATPMP);
    assert_false(punch_portmap_held(&pm));
    assert_int_equal(punch_portmap_release(&pm, &req), 0);
}

static void nothing_on_offer(void **state)
{
    (void)state;
    punch_portmap pm;
    punch_portmap_request req;
    punch_event ev;
    punch_portmap_init(&pm, PUNCH_PORTMAP_AUTO, nonce, 0);
    const punch_portmap_proto order[] = {PUNCH_PORTMAP_PCP, PUNCH_PORTMAP_NATPMP,
                                         PUNCH_PORTMAP_UPNP};
    unsigned what = 0;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(punch_portmap_poll(&pm, 10, &req), 1);
        assert_int_equal(req.proto, order[i]);
        punch_portmap_result r = failed(order[i], "refused");
        what = punch_portmap_take(&pm, 10, &r, &ev);
    }
    assert_int_equal(what, PUNCH_PM_TELL);
    assert_int_equal(ev.kind, PUNCH_EVENT_ATTEMPT);
    assert_int_equal(ev.attempt.technique, PUNCH_TECH_PORTMAP);
    assert_int_equal(ev.peer, -1);
    assert_string_equal(ev.attempt.why, "no UPnP/NAT-PMP/PCP on the gateway (pcp: refused; natpmp: "
                                "refused; upnp: refused)");
    assert_int_equal(punch_portmap_poll(&pm, 10 + PUNCH_PORTMAP_RETRY_MS - 1, &req), 0);
    assert_int_equal(punch_portmap_poll(&pm, 10 + PUNCH_PORTMAP_RETRY_MS, &req), 1);
    assert_int_equal(req.proto, PUNCH_PORTMAP_PCP);
}

static void one_protocol_and_expiry(void **state)
{
    (void)state;
    punch_portmap pm;
    punch_portmap_request req;
    punch_event ev;
    punch_portmap_init(&pm, PUNCH_PORTMAP_UPNP, nonce, 0);
    assert_int_equal(punch_portmap_poll(&pm, 0, &req), 1);
    assert_int_equal(req.proto, PUNCH_PORTMAP_UPNP);
    punch_portmap_result r = granted(PUNCH_PORTMAP_PCP, 10); /* not what was asked */
    assert_int_equal(punch_portmap_take(&pm, 5, &r, &ev), 0);
    r = granted(PUNCH_PORTMAP_UPNP, 10);
    assert_int_equal(punch_portmap_take(&pm, 5, &r, &ev), PUNCH_PM_TELL | PUNCH_PM_READVERTISE);
    /* The renewal is asked but never answered: at 10 s the mapping goes. */
    assert_int_equal(punch_portmap_poll(&pm, 5005, &req), 1);
    assert_int_equal(punch_portmap_timeout(&pm, 10004), 0);
    assert_int_equal(punch_portmap_timeout(&pm, 10005), PUNCH_PM_READVERTISE);
    assert_false(punch_portmap_held(&pm));
    /* A renewal refused drops it too, and a new round starts. */
    r = failed(PUNCH_PORTMAP_UPNP, "gone");
    punch_portmap_init(&pm, PUNCH_PORTMAP_UPNP, nonce, 0);
    punch_portmap_poll(&pm, 0, &req);
    r = granted(PUNCH_PORTMAP_UPNP, 10);
    punch_portmap_take(&pm, 0, &r, &ev);
    assert_int_equal(punch_portmap_poll(&pm, 5000, &req), 1);
    r = failed(PUNCH_PORTMAP_UPNP, "gone");
    assert_int_equal(punch_portmap_take(&pm, 5001, &r, &ev), PUNCH_PM_READVERTISE);
    assert_false(punch_portmap_held(&pm));
    assert_int_equal(punch_portmap_poll(&pm, 5001, &req), 1);
}

static void off_and_names(void **state)
{
    (void)state;
    punch_portmap pm;
    punch_portmap_request req;
    punch_portmap_init(&pm, PUNCH_PORTMAP_OFF, nonce, 0);
    assert_int_equal(punch_portmap_poll(&pm, 0, &req), 0);
    assert_int_equal(punch_portmap_next_timeout(&pm), UINT64_MAX);
    assert_int_equal(punch_portmap_proto_parse("natpmp"), PUNCH_PORTMAP_NATPMP);
    assert_int_equal(punch_portmap_proto_parse("auto"), PUNCH_PORTMAP_AUTO);
    assert_int_equal(punch_portmap_proto_parse("nat-pmp"), -1);
    assert_string_equal(punch_technique_name(PUNCH_TECH_PORTMAP), "portmap");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(auto_tries_each_in_turn),
        cmocka_unit_test(nothing_on_offer),
        cmocka_unit_test(one_protocol_and_expiry),
        cmocka_unit_test(off_and_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
