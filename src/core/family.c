/* SPDX-License-Identifier: MIT */
/*
 * Dual stack (issue 16): IPv4 and IPv6 candidates side by side in one agent.
 *
 * The agent sends to an address; the caller picks the socket of the
 * address's family (punch_agent_poll_transmit). So the agent only has to
 * know which families the caller can send on — the server's, and those of
 * its own endpoints (punch_agent_cfg.local) — to leave out candidates it
 * could never reach, how to name a candidate of each family, and which
 * family wins between two direct paths of the same kind.
 *
 * An IPv6 address of global scope is no private endpoint (draft §3.3.2):
 * it is public, behind at most a stateful firewall (or NPTv6), and is
 * reached by hole punching (§3.3.1) without translation; so is a public
 * IPv4 one a peer lists (global_v4). Between an IPv6
 * and an IPv4 direct path of the same kind, IPv6 wins unless its round
 * trip, measured by PING on both, is worse by more than FAMILY_MARGIN_US
 * (the spirit of RFC 8305's preference for IPv6: no translation state to
 * keep alive, no NAT to move the mapping). While both kinds are up, each
 * is PINGed at keepalive ticks until FAMILY_RTT_SAMPLES round trips are
 * timed (family_measure), and the least counts: a much slower IPv6 gives
 * way, a sample slowed by a busy host does not decide.
 */
#include <string.h>

#include "core/agent_internal.h"

/* RFC 8305 §5 prefers IPv6 by a head start of 250 ms in connection
 * setup; for a path already measured, a margin on the round trip does
 * the same work: 10 ms, about a metro hop, is "not worse". */
#define FAMILY_MARGIN_US 10000u
/* A PING from the peer on the other family while ours has been silent this
 * long: the peer left our path (family_follow). An idle path hears a PONG
 * every keepalive period (2 s); the peer leaves a dead one after two
 * (family_quiet_enough), when ours has been as silent as its own. */
#define FOLLOW_SILENCE_MS 3000u
/* Round trips timed per candidate before the families' choice rests on
 * their least (rtt_us): the first is often taken while both hosts are busy
 * with the handshakes (40 ms and more on a loaded host), and one such
 * sample would settle the choice for the whole session. */
#define FAMILY_RTT_SAMPLES 3u

bool family_usable(const punch_agent *a, uint8_t family)
{
    if (a->cfg.server.family == family)
        return true;
    for (size_t i = 0; i < a->cfg.n_local; i++)
        if (a->cfg.local[i].family == family)
            return true;
    return false;
}

/* 2000::/3, RFC 4291 §2.4 (global unicast; 2001:db8::/32 among them). */
static bool global_v6(const punch_addr *addr)
{
    return addr->family == PUNCH_AF_INET6 && (addr->ip[0] & 0xe0) == 0x20;
}

/* Not an address of RFC 1918, RFC 6598 (shared, CGN), RFC 3927 (link
 * local) or loopback: one only the outside of a NAT (or a public host)
 * has. Among a peer's interface addresses such an IPv4 endpoint is one a
 * server saw over IPv4 while the peer registered over IPv6
 * (second_family.c), or the peer's own public one. */
static bool global_v4(const punch_addr *addr)
{
    const uint8_t *ip = addr->ip;
    return addr->family == PUNCH_AF_INET && ip[0] != 10 && ip[0] != 127 &&
           !(ip[0] == 172 && (ip[1] & 0xf0) == 16) && !(ip[0] == 192 && ip[1] == 168) &&
           !(ip[0] == 100 && (ip[1] & 0xc0) == 64) && !(ip[0] == 169 && ip[1] == 254);
}

punch_technique family_private_technique(const punch_addr *addr)
{
    return global_v6(addr) || global_v4(addr) ? PUNCH_TECH_HOLE_PUNCH : PUNCH_TECH_PRIVATE;
}

/* ---- NAT64 (RFC 6146, RFC 6052) ----
 * An IPv6-only host behind a NAT64 reaches IPv4 at addresses under the
 * NAT64's prefix. A NAT64 is a NAT: it maps our IPv6 endpoint to an IPv4
 * one of its pool, per destination or not, and filters what comes back.
 * So an IPv4 peer's public endpoint, synthesized, is hole-punched like any
 * other (the peer sends to the NAT64's IPv4 mapping, which the server saw
 * when we registered through the NAT64). Such a path is IPv4 beyond the
 * NAT64: it is no native IPv6 path (direct_v6), which wins over it. */

/* RFC 6052 §3.1: the well-known prefix is for global IPv4 only; a
 * private IPv4 endpoint is not on the NAT64's side anyway. */
static bool synthesize(const punch_nat64_prefix *prefix, punch_addr *addr)
{
    return global_v4(addr) && punch_nat64_synthesize(prefix, addr, addr) == 0;
}

size_t punch_agent_cfg_nat64(punch_agent_cfg *cfg, bool have_v4, bool have_v6)
{
    if (!cfg || have_v4 || !have_v6 || (cfg->flags & PUNCH_AGENT_NO_NAT64))
        return 0;
    size_t n = synthesize(&cfg->nat64_prefix, &cfg->server);
    for (size_t i = 0; i < cfg->n_more_servers && i < PUNCH_MAX_SERVERS - 1; i++)
        n += synthesize(&cfg->nat64_prefix, &cfg->more_servers[i]);
    return n;
}

static bool have_local(const punch_agent_cfg *cfg, uint8_t family)
{
    for (size_t i = 0; i < cfg->n_local; i++)
        if (cfg->local[i].family == family)
            return true;
    return false;
}

void family_nat64_servers(punch_agent_cfg *cfg)
{
    punch_agent_cfg_nat64(cfg, have_local(cfg, PUNCH_AF_INET), have_local(cfg, PUNCH_AF_INET6));
}

/* No IPv4 of our own, IPv6 yes, NAT64 not off. */
static bool nat64_on(const punch_agent *a)
{
    return !(a->cfg.flags & PUNCH_AGENT_NO_NAT64) && !family_usable(a, PUNCH_AF_INET) &&
           family_usable(a, PUNCH_AF_INET6);
}

bool family_nat64(const punch_agent *a, punch_addr *addr)
{
    return nat64_on(a) && synthesize(&a->cfg.nat64_prefix, addr);
}

void family_mark_nat64(const punch_agent *a, candidate *c)
{
    c->via_nat64 = nat64_on(a) && punch_nat64_is_synthesized(&a->cfg.nat64_prefix, &c->addr);
}

static bool direct_v6(const candidate *c)
{
    return c->addr.family == PUNCH_AF_INET6 && c->technique != PUNCH_TECH_RELAY && !c->via_nat64;
}

bool family_better(const candidate *c, const candidate *d)
{
    if (direct_v6(c) == direct_v6(d))
        return c->rtt_us < d->rtt_us;
    const candidate *six = direct_v6(c) ? c : d, *four = direct_v6(c) ? d : c;
    /* Only round trips both measured by PING tell against IPv6: a
     * handshake's may be short (the answer to an earlier copy), a heard
     * candidate's unknown, and the two sides must choose alike. */
    bool six_wins = !six->rtt_pinged || !four->rtt_pinged ||
                    six->rtt_us <= four->rtt_us + FAMILY_MARGIN_US;
    return six == c ? six_wins : !six_wins;
}

bool family_switch(const candidate *best, const candidate *cur)
{
    if (best->technique == PUNCH_TECH_RELAY || cur->technique == PUNCH_TECH_RELAY)
        return false;
    if (direct_v6(best) && !direct_v6(cur))
        return family_better(best, cur);
    /* Back to IPv4 only on round trips both measured by PING (a handshake's
     * may be short: the answer to an earlier copy), and by twice the
     * margin: a gap between one and two margins moves nothing. */
    if (!direct_v6(best) && direct_v6(cur))
        return best->rtt_pinged && cur->rtt_pinged &&
               cur->rtt_us > best->rtt_us + 2 * FAMILY_MARGIN_US;
    return false;
}

bool family_quiet_enough(const peer *p, const candidate *best)
{
    const candidate *cur = &p->cand[p->path];
    return (best->addr.family == cur->addr.family && direct_v6(best) == direct_v6(cur)) ||
           p->keepalive.missed >= 2;
}

/* A direct UDP path both ways proven: one whose round trip a PING times. */
static bool pingable(const candidate *c)
{
    return c->technique != PUNCH_TECH_RELAY && !is_tcp(c->technique) && c->validated &&
           c->confirmed;
}

static void ping_for_rtt(punch_agent *a, uint64_t now, peer *p, candidate *c)
{
    if (c->rtt_samples < FAMILY_RTT_SAMPLES &&
        (!c->ping_sent_ms || now - c->ping_sent_ms >= PROBE_FAST_MS))
        send_ping(a, now, p, c);
}

void family_measure(punch_agent *a, uint64_t now, int id)
{
    peer *p = &a->peers[id];
    if (p->path < 0 || !pingable(&p->cand[p->path]))
        return;
    bool six = direct_v6(&p->cand[p->path]), rival = false;
    for (size_t i = 0; i < p->n_cand; i++) {
        candidate *c = &p->cand[i];
        if (pingable(c) && direct_v6(c) != six) {
            rival = true;
            ping_for_rtt(a, now, p, c);
        }
    }
    if (rival)
        ping_for_rtt(a, now, p, &p->cand[p->path]);
}

void family_moved(punch_agent *a, uint64_t now, int id, int was)
{
    peer *p = &a->peers[id];
    if (was < 0 || was == p->path || p->path < 0 ||
        p->cand[was].addr.family == p->cand[p->path].addr.family)
        return;
    /* A PING on the new path tells the peer at once (family_follow). */
    send_ping(a, now, p, &p->cand[p->path]);
    if (!direct_v6(&p->cand[was]))
        return;
    candidate *c = &p->cand[was];
    c->validated = false;
    c->first_probe_ms = c->next_probe_ms = now;
    c->probes = 0;
    c->gave_up = false;
}

void family_follow(punch_agent *a, uint64_t now, int id, int ci)
{
    peer *p = &a->peers[id];
    int was = p->path;
    if (was < 0 || ci == was || now - p->keepalive.last_rx_ms < FOLLOW_SILENCE_MS ||
        !p->cand[ci].validated || !p->cand[ci].confirmed ||
        p->cand[ci].addr.family == p->cand[was].addr.family)
        return;
    unsigned missed = p->keepalive.missed;
    p->keepalive.missed = missed > 2 ? missed : 2; /* quiet enough for the other family */
    choose_path(a, now, id);
    if (p->path == was)
        p->keepalive.missed = missed;
    family_moved(a, now, id, was);
}

const char *punch_family_name(uint8_t family)
{
    switch (family) {
    case PUNCH_AF_INET: return "ipv4";
    case PUNCH_AF_INET6: return "ipv6";
    default: return "none";
    }
}
