/* SPDX-License-Identifier: MIT */
/*
 * Dual-stack peers in the simulated world (issue 16): see world.h.
 *
 * A home router that does both families is modelled as two boxes of the
 * model, which is what it is to a packet: a NAT for IPv4 and a stateful
 * firewall for IPv6 (the "firewall" preset: no translation, inbound only
 * from an endpoint an inside host sent to, RFC 6092 §3.2's default).
 * Addresses: peer i's IPv6 prefix is 2001:db8:i::/48, its host
 * 2001:db8:i:1::2; the server 2001:db8:5::1.
 *
 * NPTv6 (STACK_DUAL_NPT; RFC 6296): the router gives site i's prefix as
 * 2001:db8:1i::/48 outside, the host's interface identifier kept. The
 * model's basic NAT is that, per host: one outside address for each
 * inside one, ports kept (RFC 6296 is stateless and checksum-neutral; the
 * identifier it keeps here is one it would rewrite by a word, which no
 * peer can tell). Beside it, the router's stateful firewall: apdf.
 *
 * NAT64 (STACK_V6_NAT64; RFC 6146): an IPv6-only site reaches IPv6
 * natively through its firewall and IPv4 through a NAT64 (src/nat/nat64.h,
 * as tayga beside a NAT44 in the lab) whose IPv4 side is a NAT of nat_spec
 * at 203.0.113.10i.
 */
#include <stdlib.h>
#include <string.h>

#include "sim/world.h"

static punch_addr v6(uint8_t site, uint8_t subnet, uint8_t host, uint16_t port)
{
    return (punch_addr){.family = PUNCH_AF_INET6,
                        .port = port,
                        .ip = {0x20, 0x01, 0x0d, 0xb8, 0, site, 0, subnet, [15] = host}};
}

static const punch_addr ANY4 = {.family = PUNCH_AF_INET};
static const punch_addr ANY6 = {.family = PUNCH_AF_INET6};
static const punch_addr NONE = {0};

/* The server's IPv6 address, its rendezvous and STUN there (group 1). */
static void server_v6(world *w)
{
    if (w->s.addr6.family)
        return;
    int l;
    w->s.addr6 = v6(5, 0, 1, 3478);
    link_up(w, w->s.host, w->s.addr6, false, w->router, NONE, false,
            &(punch_sim_link_cfg){.delay_us = 5 * MS}, &l);
    route(w, w->router, w->s.addr6, 128, l);
    /* and its second STUN port, as punchd opens one on every address
     * without --alt: NAT discovery over IPv6 (discovery.c's other run) */
    punch_addr port2 = w->s.addr6;
    port2.port = 3479;
    w->s.group6 = (punch_binding_group){.has_second_port = true, .local = {{w->s.addr6, port2}}};
    punch_binding_free(w->s.stun);
    punch_binding_cfg bc = {.n_groups = 2, .groups = {w->s.group, w->s.group6}};
    if (punch_binding_new(&w->s.stun, &bc) != 0)
        abort();
}

/* Site i's outside IPv6 prefix: its own, or the one NPTv6 gives it. */
static uint8_t outside_site(uint8_t site, bool npt)
{
    return npt ? (uint8_t)(0x10 + site) : site;
}

/* Site i's IPv6 firewall on the core router (translating the prefix with
 * npt); returns it, its WAN link in *wan. */
static int firewall_on_core(world *w, uint8_t site, bool npt, uint64_t delay_us, int *wan)
{
    uint8_t out = outside_site(site, npt);
    int fw = npt ? add_nat(w, "basic-nat,filtering=apdf", v6(out, 1, 2, 0))
                 : add_nat(w, "firewall", v6(site, 0, 1, 0));
    link_up(w, fw, v6(out, 0, 1, 0), false, w->router, NONE, false,
            &(punch_sim_link_cfg){.delay_us = delay_us, .jitter_us = 1 * MS}, wan);
    route(w, fw, ANY6, 0, *wan);
    punch_addr prefix = v6(out, 0, 0, 0);
    route(w, w->router, prefix, 48, *wan);
    return fw;
}

/* An IPv6-only site: native IPv6 through its firewall, IPv4 through its
 * NAT64 (the host's route to w->nat64_prefix, 64:ff9b::/96 by default). */
static void nat64_site(world *w, node *n, const char *name, uint8_t site, punch_addr a6,
                       const char *nat_spec, uint64_t v6_delay_us)
{
    static const punch_nat64_prefix WKP = {.ip = {0, 0x64, 0xff, 0x9b}, .bits = 96};
    const punch_nat64_prefix *p = w->nat64_prefix.bits ? &w->nat64_prefix : &WKP;
    punch_addr under = {.family = PUNCH_AF_INET6};
    memcpy(under.ip, p->ip, sizeof(p->ip));
    int l6, l64;
    int fw = firewall_on_core(w, site, false, v6_delay_us, &n->v6_link);
    int nat = nat_on_core(w, nat_spec, v4(203, 0, 113, (uint8_t)(10 * site), 0), 0);
    punch_addr pool = v4(192, 168, 255, 2, 0);
    if (punch_sim_nat_nat64(w->sim, nat, p, &pool) != 0)
        abort();
    n->nat64 = true;
    add_peer(w, n, name, a6, fw, true, 0, &l6);
    link_up(w, n->host, a6, false, nat, NONE, true, &(punch_sim_link_cfg){.delay_us = 200}, &l64);
    route(w, nat, a6, 128, l64);
    route(w, n->host, ANY6, 0, l6);
    route(w, n->host, under, p->bits, l64);
}

static void add_site(world *w, node *n, const char *name, uint8_t site, world_stack stack,
                     const char *nat_spec, uint64_t v6_delay_us)
{
    punch_addr a4 = v4(10, 0, site, 2, 5000), a6 = v6(site, 1, 2, 5000);
    int fw = -1, nat = -1, l4 = -1, l6 = -1;
    bool npt = stack == STACK_DUAL_NPT;
    if (stack == STACK_V6_NAT64) {
        nat64_site(w, n, name, site, a6, nat_spec, v6_delay_us);
        return;
    }
    if (stack != STACK_V4_ONLY)
        fw = firewall_on_core(w, site, npt, v6_delay_us, &n->v6_link);
    if (stack != STACK_V6_ONLY)
        nat = nat_on_core(w, nat_spec, v4(203, 0, 113, (uint8_t)(10 * site), 0), 0);
    if (stack == STACK_V6_ONLY) {
        add_peer(w, n, name, a6, fw, true, 0, &l6);
        return;
    }
    if (stack == STACK_DUAL || npt) {
        n->addr6 = a6;
        n->addr6_outside = v6(outside_site(site, npt), 1, 2, 5000);
    }
    add_peer(w, n, name, a4, nat, true, 0, &l4);
    if (stack == STACK_V4_ONLY)
        return;
    /* The second interface: its routes pick the family's way out. */
    link_up(w, n->host, a6, false, fw, NONE, true, &(punch_sim_link_cfg){.delay_us = 200}, &l6);
    route(w, fw, a6, 128, l6);
    route(w, n->host, ANY4, 0, l4);
    route(w, n->host, ANY6, 0, l6);
}

void dual_stack(world *w, world_stack alice, world_stack bob, const char *nat_spec,
                uint64_t v6_delay_us)
{
    server_v6(w);
    add_site(w, &w->alice, "alice", 1, alice, nat_spec, v6_delay_us);
    add_site(w, &w->bob, "bob", 2, bob, nat_spec, v6_delay_us);
}

void cut_v6(world *w, const node *n)
{
    if (punch_sim_link_set(w->sim, n->v6_link, &(punch_sim_link_cfg){.loss = 1.0}) != 0)
        abort();
}
