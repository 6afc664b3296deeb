/* SPDX-License-Identifier: MIT */
/*
 * The simulator's figure for one cell of docs/nat-matrix.md (issue 10;
 * bench/nat_matrix.sh runs it beside the lab): the real agent and
 * punchd's services in the simulator (src/sim/world.h), bob behind NAT B
 * registered first, then alice behind NAT A starts and asks for bob at
 * once, as `punch connect` does. A run is direct when alice has a direct
 * path (with --tcp: a direct TCP path) within --limit ms of her start,
 * registration included; its time is from her start to that path.
 *
 * usage: nat_matrix [--runs N] [--limit MS] [--nat-a SPEC] [--nat-b SPEC]
 *                   [--server two-ips|second-port|one-port] [--loss PERCENT]
 *                   [--delay-a MS] [--delay-b MS] [--tcp]
 *                   [--portmap-a PROTO] [--portmap-b PROTO]
 * Defaults: 100 runs, 5000 ms, port-restricted-cone on both sides, punchd
 * on two addresses, no loss, 10 ms one way on each NAT's uplink (1 ms
 * jitter) and 5 ms to the server, UDP, no port mapping. Seeds 1..N.
 * Prints one line: RUNS DIRECT MEDIAN_MS|- TECHNIQUE (the technique of
 * most direct runs' first direct path, "relay" when none was direct).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/world.h"

#define MAX_RUNS 10000
#define N_TECH 32

typedef struct cell {
    unsigned runs;
    uint64_t limit_ms;
    const char *nat_a, *nat_b;
    world_server_kind server;
    double loss;
    uint64_t delay_a_ms, delay_b_ms;
    bool tcp;
    punch_portmap_proto portmap_a, portmap_b;
} cell;

typedef struct outcome {
    bool direct;
    uint64_t ms;
    punch_technique technique;
} outcome;

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static bool is_tcp(punch_technique t)
{
    return t == PUNCH_TECH_TCP_SIMOPEN || t == PUNCH_TECH_REVERSAL || t == PUNCH_TECH_TCP_DIRECT;
}

/* Run until n registered or 10 s passed. */
static bool registered(world *w, const node *n)
{
    for (int i = 0; i < 1000 && !n->registered; i++)
        punch_sim_run(w->sim, punch_sim_now(w->sim) + 10 * MS);
    return n->registered;
}

/* Has alice reached what the cell counts as direct? */
static bool reached(const cell *c, const node *a, outcome *o, uint64_t t0)
{
    if (!c->tcp) {
        if (!a->first_direct_ms)
            return false;
        *o = (outcome){true, a->first_direct_ms - t0, a->first_direct_technique};
        return true;
    }
    if (!a->have_path || a->kind != PUNCH_PATH_DIRECT || !is_tcp(a->technique))
        return false;
    *o = (outcome){true, punch_sim_now(a->sim) / MS - t0, a->technique};
    return true;
}

static outcome one_run(const cell *c, uint64_t seed)
{
    world w;
    outcome o = {0};
    world_start_with(&w, seed, c->server);
    w.portmap = c->portmap_a || c->portmap_b ? PUNCH_PORTMAP_AUTO : PUNCH_PORTMAP_OFF;
    w.tcp_paths = c->tcp;
    w.tcp_asker = &w.alice;
    int na = nat_on_core_with(&w, c->nat_a, v4(203, 0, 113, 10, 0),
                              &(punch_sim_link_cfg){.delay_us = c->delay_a_ms * MS,
                                                    .jitter_us = 1 * MS, .loss = c->loss});
    int nb = nat_on_core_with(&w, c->nat_b, v4(203, 0, 113, 20, 0),
                              &(punch_sim_link_cfg){.delay_us = c->delay_b_ms * MS,
                                                    .jitter_us = 1 * MS, .loss = c->loss});
    int l;
    /* The lab's delay sits on each host's access link, between it and its
     * NAT: the gateway is a round trip of twice that away. */
    w.bob.gateway_offers = c->portmap_b;
    w.bob.gateway_rtt_ms = 2 * c->delay_b_ms;
    add_peer(&w, &w.bob, "bob", v4(10, 0, 2, 2, 5000), nb, true, 0, &l);
    if (!registered(&w, &w.bob))
        goto done;
    w.alice.gateway_offers = c->portmap_a;
    w.alice.gateway_rtt_ms = 2 * c->delay_a_ms;
    add_peer(&w, &w.alice, "alice", v4(10, 0, 1, 2, 5000), na, true, 0, &l);
    uint64_t t0 = punch_sim_now(w.sim) / MS;
    w.alice.peer = punch_agent_connect(w.alice.agent, t0, "bob", NULL);
    node_flush(&w.alice);
    punch_sim_wake(w.sim, w.alice.host);
    while (punch_sim_now(w.sim) / MS < t0 + c->limit_ms && !reached(c, &w.alice, &o, t0))
        punch_sim_run(w.sim, punch_sim_now(w.sim) + (c->tcp ? 2 : 20) * MS);
    if (o.ms > c->limit_ms)
        o.direct = false;
done:
    world_free(&w);
    return o;
}

static void run_cell(const cell *c)
{
    static uint64_t took[MAX_RUNS];
    unsigned direct = 0, tech_count[N_TECH] = {0};
    for (unsigned r = 0; r < c->runs; r++) {
        outcome o = one_run(c, 1 + r);
        if (!o.direct)
            continue;
        took[direct++] = o.ms;
        if ((unsigned)o.technique < N_TECH)
            tech_count[o.technique]++;
    }
    unsigned best = 0;
    for (unsigned t = 1; t < N_TECH; t++)
        if (tech_count[t] > tech_count[best])
            best = t;
    qsort(took, direct, sizeof(took[0]), cmp_u64);
    printf("%u %u ", c->runs, direct);
    if (direct)
        printf("%llu %s\n", (unsigned long long)took[(direct - 1) / 2],
               punch_technique_name((punch_technique)best));
    else
        printf("- relay\n");
}

static int usage(void)
{
    fprintf(stderr, "usage: nat_matrix [--runs N] [--limit MS] [--nat-a SPEC] [--nat-b SPEC] "
                    "[--server two-ips|second-port|one-port] [--loss PERCENT] [--delay-a MS] "
                    "[--delay-b MS] [--tcp] [--portmap-a PROTO] [--portmap-b PROTO]\n");
    return 2;
}

static int parse_server(const char *s, world_server_kind *k)
{
    if (strcmp(s, "two-ips") == 0)
        *k = WORLD_SERVER_TWO_IPS;
    else if (strcmp(s, "second-port") == 0)
        *k = WORLD_SERVER_SECOND_PORT;
    else if (strcmp(s, "one-port") == 0)
        *k = WORLD_SERVER_ONE_PORT;
    else
        return -1;
    return 0;
}

static int parse_portmap(const char *s, punch_portmap_proto *p)
{
    int v = punch_portmap_proto_parse(s);
    if (v < 0 || v == PUNCH_PORTMAP_AUTO)
        return -1;
    *p = (punch_portmap_proto)v;
    return 0;
}

/* Parse a number in [lo, hi]; -1 when it is not one. */
static int number(const char *s, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int parse_args(int argc, char **argv, cell *c)
{
    static const struct option opts[] = {
        {"runs", 1, NULL, 'r'},    {"limit", 1, NULL, 'l'},     {"nat-a", 1, NULL, 'a'},
        {"nat-b", 1, NULL, 'b'},   {"server", 1, NULL, 's'},    {"loss", 1, NULL, 'L'},
        {"delay-a", 1, NULL, 'A'}, {"delay-b", 1, NULL, 'B'},   {"tcp", 0, NULL, 't'},
        {"portmap-a", 1, NULL, 'p'}, {"portmap-b", 1, NULL, 'q'}, {0},
    };
    int ch;
    double v;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int bad = 0;
        switch (ch) {
        case 'r': bad = number(optarg, 1, MAX_RUNS, &v); c->runs = (unsigned)v; break;
        case 'l': bad = number(optarg, 1, 600000, &v); c->limit_ms = (uint64_t)v; break;
        case 'a': c->nat_a = optarg; break;
        case 'b': c->nat_b = optarg; break;
        case 's': bad = parse_server(optarg, &c->server); break;
        case 'L': bad = number(optarg, 0, 99, &v); c->loss = v / 100.0; break;
        case 'A': bad = number(optarg, 0, 10000, &v); c->delay_a_ms = (uint64_t)v; break;
        case 'B': bad = number(optarg, 0, 10000, &v); c->delay_b_ms = (uint64_t)v; break;
        case 't': c->tcp = true; break;
        case 'p': bad = parse_portmap(optarg, &c->portmap_a); break;
        case 'q': bad = parse_portmap(optarg, &c->portmap_b); break;
        default: return -1;
        }
        if (bad) {
            fprintf(stderr, "nat_matrix: bad value '%s'\n", optarg);
            return -1;
        }
    }
    return optind == argc ? 0 : -1;
}

int main(int argc, char **argv)
{
    cell c = {.runs = 100, .limit_ms = 5000, .nat_a = "port-restricted-cone",
              .nat_b = "port-restricted-cone", .server = WORLD_SERVER_TWO_IPS,
              .delay_a_ms = 10, .delay_b_ms = 10};
    if (parse_args(argc, argv, &c) != 0)
        return usage();
    run_cell(&c);
    return 0;
}
