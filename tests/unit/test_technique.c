/* SPDX-License-Identifier: MIT */
/* The table of techniques (src/core/technique.c): every punch_technique
 * has the name punch.h documents, a value that names none is "unknown",
 * and the ranks order the paths as agent.c's step 5 says: private, hairpin,
 * the public endpoint's techniques, TCP, the relay (TCP first when a side
 * asked for it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/agent_internal.h"

static const struct {
    punch_technique t;
    const char *name;
    bool tcp, guarded;
} techniques[] = {
    {PUNCH_TECH_PRIVATE, "private", false, false},
    {PUNCH_TECH_HAIRPIN, "hairpin", false, false},
    {PUNCH_TECH_HOLE_PUNCH, "hole-punch", false, true},
    {PUNCH_TECH_PEER_REFLEXIVE, "peer-reflexive", false, false},
    {PUNCH_TECH_RELAY, "relay", false, false},
    {PUNCH_TECH_PORT_PREDICTION, "port-prediction", false, true},
    {PUNCH_TECH_BIRTHDAY, "birthday", false, false},
    {PUNCH_TECH_TCP_SIMOPEN, "tcp-simultaneous-open", true, false},
    {PUNCH_TECH_REVERSAL, "reversal", true, false},
    {PUNCH_TECH_TCP_DIRECT, "tcp-direct", true, false},
    {PUNCH_TECH_PORTMAP, "portmap", false, false},
    {PUNCH_TECH_TURN, "turn", false, false},
};
#define N (sizeof(techniques) / sizeof(techniques[0]))

static void every_technique_has_its_row(void **state)
{
    (void)state;
    for (size_t i = 0; i < N; i++) {
        assert_string_equal(punch_technique_name(techniques[i].t), techniques[i].name);
        assert_int_equal(is_tcp(techniques[i].t), techniques[i].tcp);
        assert_int_equal(technique_guarded(techniques[i].t), techniques[i].guarded);
    }
    /* The list above is the whole enum: the value after its last names none. */
    assert_string_equal(punch_technique_name((punch_technique)0), "unknown");
    assert_string_equal(punch_technique_name((punch_technique)(PUNCH_TECH_TURN + 1)), "unknown");
    assert_string_equal(punch_technique_name((punch_technique)-1), "unknown");
    assert_false(is_tcp((punch_technique)99));
    assert_false(technique_guarded((punch_technique)99));
}

static void ranks_order_the_paths(void **state)
{
    (void)state;
    for (int prefer_tcp = 0; prefer_tcp <= 1; prefer_tcp++) {
        int private = technique_rank(prefer_tcp, PUNCH_TECH_PRIVATE);
        int hairpin = technique_rank(prefer_tcp, PUNCH_TECH_HAIRPIN);
        int relay = technique_rank(prefer_tcp, PUNCH_TECH_RELAY);
        assert_true(private < hairpin);
        for (size_t i = 0; i < N; i++) {
            punch_technique t = techniques[i].t;
            int r = technique_rank(prefer_tcp, t);
            if (t == PUNCH_TECH_RELAY || t == PUNCH_TECH_TURN)
                continue;
            assert_true(r < relay);
            if (techniques[i].tcp)
                assert_int_equal(r, prefer_tcp ? 0 : 4);
            else if (t != PUNCH_TECH_PRIVATE && t != PUNCH_TECH_HAIRPIN)
                assert_int_equal(r, 3);
        }
        assert_int_equal(technique_rank(prefer_tcp, (punch_technique)99), relay);
        /* A TURN server only when punchd's relay does not serve. */
        assert_true(technique_rank(prefer_tcp, PUNCH_TECH_TURN) > relay);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_technique_has_its_row),
        cmocka_unit_test(ranks_order_the_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
