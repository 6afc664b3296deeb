/* SPDX-License-Identifier: MIT */
/*
 * The techniques (punch_technique, SPEC.md §3 events) in one table: the
 * name events and logs give, the rank the path choice uses, whether it is
 * a TCP path, and whether its probes to a public endpoint go with the low
 * TTL until the guard time ends (holepunch.c, the conntrack trap). A new
 * technique is a row here, its file, and the hook that makes its
 * candidates (docs/architecture.md, "Adding a technique").
 */
#include "core/agent_internal.h"

typedef struct technique_row {
    const char *name;
    int rank;     /* lower is better (agent.c's module comment, step 5) */
    bool tcp;     /* a TCP path: rank 0 when a side asked for TCP */
    bool guarded; /* low-TTL probes until the guard time (probe_guard_ms) */
} technique_row;

/* A TCP path is worse than any direct UDP one (head-of-line blocking under
 * datagrams, a TCP connection per peer) and better than the relay, unless
 * a side asked for TCP: then it beats everything. */
static const technique_row rows[] = {
    [PUNCH_TECH_PRIVATE] = {"private", 1, false, false},
    [PUNCH_TECH_HAIRPIN] = {"hairpin", 2, false, false},
    [PUNCH_TECH_HOLE_PUNCH] = {"hole-punch", 3, false, true},
    [PUNCH_TECH_PEER_REFLEXIVE] = {"peer-reflexive", 3, false, false},
    [PUNCH_TECH_RELAY] = {"relay", 5, false, false},
    [PUNCH_TECH_PORT_PREDICTION] = {"port-prediction", 3, false, true},
    [PUNCH_TECH_BIRTHDAY] = {"birthday", 3, false, false},
    [PUNCH_TECH_TCP_SIMOPEN] = {"tcp-simultaneous-open", 4, true, false},
    [PUNCH_TECH_REVERSAL] = {"reversal", 4, true, false},
    [PUNCH_TECH_TCP_DIRECT] = {"tcp-direct", 4, true, false},
    [PUNCH_TECH_PORTMAP] = {"portmap", 3, false, false},
    /* A standard TURN server: only when punchd's relay does not serve
     * (its path is longer, and it is someone else's). */
    [PUNCH_TECH_TURN] = {"turn", 6, false, false},
};

/* t's row, or NULL for a value that names no technique. */
static const technique_row *row_of(punch_technique t)
{
    if ((unsigned)t >= sizeof(rows) / sizeof(rows[0]) || !rows[t].name)
        return NULL;
    return &rows[t];
}

const char *punch_technique_name(punch_technique t)
{
    const technique_row *r = row_of(t);
    return r ? r->name : "unknown";
}

bool is_tcp(punch_technique t)
{
    const technique_row *r = row_of(t);
    return r && r->tcp;
}

bool technique_guarded(punch_technique t)
{
    const technique_row *r = row_of(t);
    return r && r->guarded;
}

int technique_rank(bool prefer_tcp, punch_technique t)
{
    const technique_row *r = row_of(t);
    if (!r)
        return 5;
    return r->tcp && prefer_tcp ? 0 : r->rank;
}
