/* SPDX-License-Identifier: MIT */
/*
 * NAT scenarios per second on the simulator (src/sim + src/nat).
 *
 * One scenario: a fresh topology (A behind a NAT of one of the SPEC.md §5
 * presets, a router, reflectors S1 and S2, an outside host O), A asks S1
 * and S2 for its public endpoint, O sends to it, and the outcome is checked
 * against the preset's mapping and filtering behaviour.
 *
 * The baseline is the same loop with the NAT replaced by a plain router, so
 * the figure comes with the cost of the simulator alone, measured in the
 * same run on the same machine.
 *
 * usage: sim_scenarios [-n SCENARIOS] [-s SEED]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim/sim.h"

static const char *const presets[] = {"p2p", "full-cone", "restricted-cone",
                                      "port-restricted-cone", "symmetric-sequential",
                                      "symmetric-random", "firewall", "basic-nat", "cgnat"};
#define N_PRESETS (sizeof(presets) / sizeof(presets[0]))

static punch_addr v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint16_t port)
{
    punch_addr x = {.family = PUNCH_AF_INET, .port = port};
    x.ip[0] = a, x.ip[1] = b, x.ip[2] = c, x.ip[3] = d;
    return x;
}

typedef struct seen {
    int n;
    punch_addr refl[4];
    punch_addr from[4];
} seen;

static void on_rx(void *ctx, punch_sim *sim, int host, uint64_t now, const punch_sim_datagram *d)
{
    (void)sim, (void)host, (void)now;
    seen *s = ctx;
    if (s->n == 4)
        return;
    if (punch_sim_reflect_decode(d->data, d->len, &s->refl[s->n]) != 0)
        memset(&s->refl[s->n], 0, sizeof(punch_addr));
    s->from[s->n++] = d->remote;
}

static const punch_addr PUB = {.family = PUNCH_AF_INET, .ip = {203, 0, 113, 1}};

/* One scenario; nat_cfg NULL: the pass-through baseline. Returns true when
 * the outcome is what the behaviour says. */
static bool scenario(punch_sim *sim, uint64_t seed, const punch_nat_cfg *nat_cfg)
{
    punch_sim_reset(sim, seed);
    punch_addr A = v4(10, 0, 0, 2, 5000), S1 = v4(198, 51, 100, 1, 3478),
               S2 = v4(198, 51, 100, 2, 3478), O = v4(192, 0, 2, 9, 4000), none = {0},
               any = {.family = PUNCH_AF_INET};
    int gw = nat_cfg ? punch_sim_add_nat(sim, nat_cfg) : punch_sim_add_router(sim);
    int a = punch_sim_add_host(sim), r = punch_sim_add_router(sim);
    int s1 = punch_sim_add_host(sim), s2 = punch_sim_add_host(sim), o = punch_sim_add_host(sim);
    punch_sim_link_cfg lan = {.delay_us = 200}, wan = {.delay_us = 10000, .jitter_us = 2000};
    int la = punch_sim_link(sim, &(punch_sim_end){a, A, false}, &(punch_sim_end){gw, none, true},
                            &lan);
    int lr = punch_sim_link(sim, &(punch_sim_end){gw, PUB, false},
                            &(punch_sim_end){r, none, false}, &wan);
    int l1 = punch_sim_link(sim, &(punch_sim_end){s1, S1, false}, &(punch_sim_end){r, none, false},
                            &wan);
    int l2 = punch_sim_link(sim, &(punch_sim_end){s2, S2, false}, &(punch_sim_end){r, none, false},
                            &wan);
    int lo = punch_sim_link(sim, &(punch_sim_end){o, O, false}, &(punch_sim_end){r, none, false},
                            &wan);
    punch_sim_route(sim, gw, &A, 32, la);
    punch_sim_route(sim, gw, &any, 0, lr);
    punch_sim_route(sim, r, &PUB, 24, lr);
    punch_sim_route(sim, r, &A, 8, lr);
    punch_sim_route(sim, r, &S1, 32, l1);
    punch_sim_route(sim, r, &S2, 32, l2);
    punch_sim_route(sim, r, &O, 32, lo);
    seen sa = {0}, so = {0};
    punch_sim_attach(sim, a, &(punch_sim_endpoint){.on_datagram = on_rx, .ctx = &sa});
    punch_sim_attach(sim, o, &(punch_sim_endpoint){.on_datagram = on_rx, .ctx = &so});
    punch_sim_attach(sim, s1, &punch_sim_reflector);
    punch_sim_attach(sim, s2, &punch_sim_reflector);

    static const uint8_t hi[] = "hi";
    punch_sim_send(sim, a, &(punch_sim_datagram){.local = A, .remote = S1, .data = hi, .len = 2});
    punch_sim_send(sim, a, &(punch_sim_datagram){.local = A, .remote = S2, .data = hi, .len = 2});
    punch_sim_run(sim, 100000);
    if (sa.n != 2)
        return false;
    punch_addr p1 = sa.refl[0], p2 = sa.refl[1];
    punch_sim_send(sim, o, &(punch_sim_datagram){.local = O, .remote = p1, .data = hi, .len = 2});
    punch_sim_run(sim, 200000);

    bool same = punch_addr_equal(&p1, &p2);
    bool o_in = sa.n == 3;
    if (!nat_cfg)
        return same && punch_addr_equal(&p1, &A) && o_in;
    bool eim = nat_cfg->mode != PUNCH_NAT_NAPT || nat_cfg->mapping == PUNCH_NAT_EIM;
    return same == eim && o_in == (nat_cfg->filtering == PUNCH_NAT_EIF);
}

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    long n = 50000;
    uint64_t seed = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
            n = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "-s") == 0 && i + 1 < argc)
            seed = strtoull(argv[++i], NULL, 0);
        else {
            fprintf(stderr, "usage: %s [-n SCENARIOS] [-s SEED]\n", argv[0]);
            return 2;
        }
    }
    if (n <= 0) {
        fprintf(stderr, "sim_scenarios: -n wants a positive count\n");
        return 2;
    }
    punch_nat_cfg cfgs[N_PRESETS];
    for (size_t i = 0; i < N_PRESETS; i++) {
        punch_nat_cfg_default(&cfgs[i]);
        cfgs[i].max_events = 0;
        cfgs[i].n_public = 1;
        cfgs[i].public_ip[0] = PUB;
        char spec[64], err[128];
        snprintf(spec, sizeof(spec), "%s,mappings=16", presets[i]);
        if (punch_nat_cfg_parse(&cfgs[i], spec, err, sizeof(err)) != 0) {
            fprintf(stderr, "sim_scenarios: %s\n", err);
            return 1;
        }
    }
    punch_sim *sim;
    if (punch_sim_new(&sim, &(punch_sim_cfg){.seed = seed}) != 0)
        return 1;

    long failed = 0;
    uint64_t events = 0;
    double t0 = seconds();
    for (long i = 0; i < n; i++) {
        if (!scenario(sim, seed + (uint64_t)i, &cfgs[i % N_PRESETS])) {
            if (failed++ < 5)
                fprintf(stderr, "sim_scenarios: %s failed, seed %llu\n", presets[i % N_PRESETS],
                        (unsigned long long)(seed + (uint64_t)i));
        }
        events += punch_sim_counters_get(sim)->events;
    }
    double t_nat = seconds() - t0;

    t0 = seconds();
    long failed_base = 0;
    for (long i = 0; i < n; i++)
        failed_base += !scenario(sim, seed + (uint64_t)i, NULL);
    double t_base = seconds() - t0;
    punch_sim_free(sim);

    double rate = (double)n / t_nat, base = (double)n / t_base;
    printf("sim_scenarios: %ld NAT scenarios (%zu presets, %.1f events each) in %.3f s: "
           "%.0f scenarios/s\n",
           n, N_PRESETS, (double)events / (double)n, t_nat, rate);
    printf("sim_scenarios: baseline (pass-through router, same loop): %.0f scenarios/s\n", base);
    printf("sim_scenarios: NAT/baseline = %.2f; failed checks: %ld NAT, %ld baseline\n",
           rate / base, failed, failed_base);
    return failed || failed_base ? 1 : 0;
}
