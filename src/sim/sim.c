/* SPDX-License-Identifier: MIT */
/* Discrete-event network simulator: see sim.h. */
#include "sim/sim.h"

#include <stdlib.h>
#include <string.h>

#define NONE UINT32_MAX
/* A home router's port forwards: a few hosts, each with one mapping. */
#define SIM_MAX_FORWARDS 8
#define SIM_MAX_FORWARD_FLOWS 256

enum { NODE_HOST, NODE_ROUTER, NODE_NAT };
enum { EV_DELIVER, EV_TIMER };

typedef struct packet {
    uint8_t proto, tcp_flags, ttl;
    uint32_t tcp_seq;
    punch_addr src, dst;
    /* As its host sent it (time_exceeded answers there). */
    int origin;
    punch_addr sent_src, sent_dst;
    uint64_t sent_us;
    uint32_t next_free;
    size_t len;
    uint8_t data[PUNCH_SIM_MTU];
} packet;

typedef struct iface {
    int link;
    int end;          /* which end of the link this is */
    punch_addr addr;
    bool inside;
} iface;

typedef struct route {
    punch_addr prefix;
    unsigned len;
    int iface;
} route;

typedef struct node {
    int kind;
    int n_ifaces;
    iface ifaces[PUNCH_SIM_MAX_IFACES];
    route *routes;
    size_t n_routes, cap_routes;
    punch_sim_endpoint ep;
    bool has_ep;
    punch_nat *nat;
    punch_nat_fwd *fwd; /* its port forwards (UPnP / NAT-PMP / PCP), asked first */
    int icmp_left;      /* host: ICMP time exceeded that may still reach it, -1: any
                           (punch_sim_set_icmp) */
    punch_nat64 *nat64; /* a NAT64's translation in front of nat (punch_sim_nat_nat64) */
    uint64_t timer_at; /* the armed TIMER event, UINT64_MAX: none */
} node;

typedef struct link {
    punch_sim_link_cfg cfg;
    int node[2], iface[2];
} link;

typedef struct event {
    uint64_t time, seq;
    uint32_t pkt;
    int node, iface, kind;
} event;

struct punch_sim {
    punch_sim_cfg cfg;
    punch_rng rng;
    uint64_t now, seq, trace;
    punch_sim_counters counters;
    node *nodes;
    size_t n_nodes, cap_nodes;
    link *links;
    size_t n_links, cap_links;
    packet **chunks; /* the pool, in chunks so packets never move */
    size_t n_chunks, n_pkts;
    uint32_t free_pkt;
    event *heap;
    size_t heap_len, heap_cap;
};

/* ---- helpers -------------------------------------------------------- */

static int grow(void **arr, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap * 2 : 8;
    while (n < need)
        n *= 2;
    void *p = realloc(*arr, n * size);
    if (!p)
        return PUNCH_ERR_NOMEM;
    *arr = p;
    *cap = n;
    return 0;
}

static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    h *= 0xff51afd7ed558ccdull;
    return h ^ (h >> 32);
}

static uint64_t mix_addr(uint64_t h, const punch_addr *a)
{
    h = mix(h, (uint64_t)a->family << 16 | a->port);
    for (int i = 0; i < (a->family == PUNCH_AF_INET6 ? 16 : 4); i++)
        h = mix(h, a->ip[i]);
    return h;
}

static void trace(punch_sim *sim, int what, int node_id, const packet *p)
{
    uint64_t h = mix(mix(mix(sim->trace, sim->now), (uint64_t)what), (uint64_t)node_id);
    h = mix(mix_addr(mix_addr(h, &p->src), &p->dst), (uint64_t)p->proto << 8 | p->tcp_flags);
    h = mix(h, p->len);
    for (size_t i = 0; i < p->len; i++)
        h = h * 31 + p->data[i];
    sim->trace = h;
}

static bool valid_node(const punch_sim *sim, int id)
{
    return id >= 0 && (size_t)id < sim->n_nodes;
}

/* ---- packet pool ---------------------------------------------------- */

#define CHUNK 256

static packet *pkt(const punch_sim *sim, uint32_t id)
{
    return &sim->chunks[id / CHUNK][id % CHUNK];
}

static uint32_t pkt_alloc(punch_sim *sim)
{
    if (sim->free_pkt == NONE) {
        size_t max = sim->cfg.max_packets ? sim->cfg.max_packets : 65536;
        packet **chunks;
        if (sim->n_pkts >= max ||
            !(chunks = realloc(sim->chunks, (sim->n_chunks + 1) * sizeof(*chunks)))) {
            sim->counters.pool_full++;
            return NONE;
        }
        sim->chunks = chunks;
        if (!(chunks[sim->n_chunks] = malloc(CHUNK * sizeof(packet)))) {
            sim->counters.pool_full++;
            return NONE;
        }
        sim->n_chunks++;
        for (size_t i = sim->n_pkts + CHUNK; i-- > sim->n_pkts;) {
            pkt(sim, (uint32_t)i)->next_free = sim->free_pkt;
            sim->free_pkt = (uint32_t)i;
        }
        sim->n_pkts += CHUNK;
    }
    uint32_t id = sim->free_pkt;
    sim->free_pkt = pkt(sim, id)->next_free;
    return id;
}

static void pkt_free(punch_sim *sim, uint32_t id)
{
    pkt(sim, id)->next_free = sim->free_pkt;
    sim->free_pkt = id;
}

/* ---- event heap ----------------------------------------------------- */

static bool before(const event *a, const event *b)
{
    return a->time < b->time || (a->time == b->time && a->seq < b->seq);
}

static int push_event(punch_sim *sim, event ev)
{
    if (grow((void **)&sim->heap, &sim->heap_cap, sim->heap_len + 1, sizeof(event)) != 0)
        return PUNCH_ERR_NOMEM;
    ev.seq = sim->seq++; /* ties break in scheduling order: deterministic */
    size_t pos = sim->heap_len++;
    while (pos > 0) {
        size_t parent = (pos - 1) / 2;
        if (!before(&ev, &sim->heap[parent]))
            break;
        sim->heap[pos] = sim->heap[parent];
        pos = parent;
    }
    sim->heap[pos] = ev;
    return 0;
}

static event pop_event(punch_sim *sim)
{
    event top = sim->heap[0];
    event last = sim->heap[--sim->heap_len];
    size_t pos = 0;
    for (;;) {
        size_t c = pos * 2 + 1;
        if (c >= sim->heap_len)
            break;
        if (c + 1 < sim->heap_len && before(&sim->heap[c + 1], &sim->heap[c]))
            c++;
        if (!before(&sim->heap[c], &last))
            break;
        sim->heap[pos] = sim->heap[c];
        pos = c;
    }
    if (sim->heap_len)
        sim->heap[pos] = last;
    return top;
}

/* ---- timers --------------------------------------------------------- */

static void rearm(punch_sim *sim, int id)
{
    node *n = &sim->nodes[id];
    uint64_t want = UINT64_MAX;
    if (n->has_ep && n->ep.next_timeout)
        want = n->ep.next_timeout(n->ep.ctx);
    if (n->nat) {
        uint64_t ms = punch_nat_next_expiry(n->nat);
        if (ms != UINT64_MAX && ms < UINT64_MAX / 1000 && ms * 1000 < want)
            want = ms * 1000;
    }
    if (want < sim->now)
        want = sim->now;
    if (want == n->timer_at)
        return;
    n->timer_at = want;
    if (want != UINT64_MAX)
        push_event(sim, (event){.time = want, .node = id, .kind = EV_TIMER, .pkt = NONE});
}

void punch_sim_set_icmp(punch_sim *sim, int host, int budget)
{
    if (sim && valid_node(sim, host))
        sim->nodes[host].icmp_left = budget < 0 ? -1 : budget;
}

void punch_sim_wake(punch_sim *sim, int host)
{
    if (sim && valid_node(sim, host))
        rearm(sim, host);
}

/* ---- links and routing ---------------------------------------------- */

/* Put packet pid on the link behind iface ifc of node id. Consumes pid. */
static void transmit(punch_sim *sim, int id, int ifc, uint32_t pid)
{
    const iface *f = &sim->nodes[id].ifaces[ifc];
    const link *l = &sim->links[f->link];
    int peer = 1 - f->end;
    sim->counters.transmitted++;
    if (punch_rng_chance(&sim->rng, l->cfg.loss)) {
        sim->counters.lost++;
        trace(sim, 'L', id, pkt(sim, pid));
        pkt_free(sim, pid);
        return;
    }
    int copies = punch_rng_chance(&sim->rng, l->cfg.dup) ? 2 : 1;
    for (int c = 0; c < copies; c++) {
        uint32_t p = pid;
        if (c == 1) {
            if ((p = pkt_alloc(sim)) == NONE)
                return;
            *pkt(sim, p) = *pkt(sim, pid);
            sim->counters.duplicated++;
        }
        uint64_t delay = l->cfg.delay_us + punch_rng_below(&sim->rng, l->cfg.jitter_us + 1);
        if (punch_rng_chance(&sim->rng, l->cfg.reorder)) {
            delay += l->cfg.reorder_us ? l->cfg.reorder_us : 2 * l->cfg.delay_us + 1;
            sim->counters.reordered++;
        }
        push_event(sim, (event){.time = sim->now + delay, .pkt = p, .node = l->node[peer],
                                .iface = l->iface[peer], .kind = EV_DELIVER});
    }
}

static bool prefix_match(const punch_addr *prefix, unsigned len, const punch_addr *a)
{
    if (prefix->family != a->family)
        return false;
    unsigned full = len / 8, rest = len % 8;
    if (memcmp(prefix->ip, a->ip, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (prefix->ip[full] & mask) == (a->ip[full] & mask);
}

/* The interface to reach dst from node id, or -1. */
static int lookup_route(const punch_sim *sim, int id, const punch_addr *dst)
{
    const node *n = &sim->nodes[id];
    int best = -1;
    unsigned best_len = 0;
    for (size_t i = 0; i < n->n_routes; i++) {
        const route *r = &n->routes[i];
        if ((best < 0 || r->len > best_len) && prefix_match(&r->prefix, r->len, dst)) {
            best = r->iface;
            best_len = r->len;
        }
    }
    if (best < 0 && n->kind == NODE_HOST && n->n_ifaces > 0)
        best = 0;
    return best;
}

/* A TCP segment ran out of TTL: the router's ICMP time exceeded reaches
 * the sending host (its NAT translates it back, RFC 5508 §4.2) as long
 * after the sending as the segment travelled, as a datagram of proto
 * PUNCH_IP_ICMP naming the segment's own addresses (local: the sender's,
 * remote: where it went). Linux ends a connect that gets one (tcp_path.c).
 * UDP's are not delivered (the agent never reads them). Consumes pid. */
static void time_exceeded(punch_sim *sim, uint32_t pid)
{
    packet *p = pkt(sim, pid);
    if (p->proto != PUNCH_IP_TCP || p->origin < 0 || sim->nodes[p->origin].icmp_left == 0) {
        pkt_free(sim, pid);
        return;
    }
    if (sim->nodes[p->origin].icmp_left > 0)
        sim->nodes[p->origin].icmp_left--;
    p->proto = PUNCH_IP_ICMP;
    p->tcp_flags = 0;
    p->src = p->sent_dst;
    p->dst = p->sent_src;
    p->len = 0;
    int host = p->origin;
    p->origin = -1;
    push_event(sim, (event){.time = 2 * sim->now - p->sent_us, .pkt = pid, .node = host,
                            .kind = EV_DELIVER});
}

static void forward(punch_sim *sim, int id, uint32_t pid)
{
    packet *p = pkt(sim, pid);
    int ifc = lookup_route(sim, id, &p->dst);
    if (ifc < 0) {
        sim->counters.no_route++;
        pkt_free(sim, pid);
        return;
    }
    if (sim->nodes[id].kind != NODE_HOST) {
        if (p->ttl <= 1) {
            sim->counters.ttl_expired++;
            time_exceeded(sim, pid);
            return;
        }
        p->ttl--;
    }
    transmit(sim, id, ifc, pid);
}

/* ---- node behaviour ------------------------------------------------- */

static bool is_local(const node *n, const punch_addr *a)
{
    for (int i = 0; i < n->n_ifaces; i++)
        if (punch_addr_same_ip(&n->ifaces[i].addr, a))
            return true;
    return false;
}

static void host_receive(punch_sim *sim, int id, uint32_t pid)
{
    node *n = &sim->nodes[id];
    packet *p = pkt(sim, pid);
    if (!is_local(n, &p->dst)) {
        sim->counters.no_route++; /* hosts do not forward */
        pkt_free(sim, pid);
        return;
    }
    if (!n->has_ep) {
        sim->counters.no_endpoint++;
        pkt_free(sim, pid);
        return;
    }
    sim->counters.delivered++;
    punch_sim_datagram d = {.proto = p->proto, .tcp_flags = p->tcp_flags, .tcp_seq = p->tcp_seq,
                            .local = p->dst,
                            .remote = p->src, .data = p->data, .len = p->len};
    /* the endpoint may send from inside the call: the packet stays out of
     * the free list (and the pool never moves packets) until it returns */
    n->ep.on_datagram(n->ep.ctx, sim, id, sim->now, &d);
    pkt_free(sim, pid);
    rearm(sim, id);
}

static void nat_receive(punch_sim *sim, int id, int ifc, uint32_t pid)
{
    node *n = &sim->nodes[id];
    packet *p = pkt(sim, pid);
    if (n->ifaces[ifc].inside) {
        int to = lookup_route(sim, id, &p->dst);
        if (to >= 0 && n->ifaces[to].inside) { /* the LAN: no translation */
            forward(sim, id, pid);
            return;
        }
    }
    punch_nat_tuple in = {.proto = p->proto, .src = p->src, .dst = p->dst, .seq = p->tcp_seq},
                    out;
    if (n->nat64 && n->ifaces[ifc].inside && !punch_nat64_out(n->nat64, &in, &in)) {
        sim->counters.nat_dropped++; /* a NAT64 only: IPv6 to its prefix */
        pkt_free(sim, pid);
        return;
    }
    uint64_t ms = sim->now / 1000;
    /* A forward's flows live as long as the NAT's own UDP sessions. */
    uint64_t flow_ms = punch_nat_cfg_get(n->nat)->udp_timeout_ms;
    punch_nat_verdict v;
    if (n->ifaces[ifc].inside)
        v = punch_nat_fwd_outbound(n->fwd, ms, &in, flow_ms, &out)
                ? PUNCH_NAT_FORWARD
                : punch_nat_outbound(n->nat, ms, &in, p->tcp_flags, &out);
    else
        v = punch_nat_fwd_inbound(n->fwd, ms, &in, flow_ms, &out)
                ? PUNCH_NAT_FORWARD
                : punch_nat_inbound(n->nat, ms, &in, p->tcp_flags, &out);
    trace(sim, 'N' + (int)v, id, p);
    switch (v) {
    case PUNCH_NAT_HAIRPIN:
        sim->counters.nat_hairpinned++;
        /* fall through */
    case PUNCH_NAT_FORWARD:
        if (n->nat64) /* back in to a pool address: IPv6 for the inside */
            punch_nat64_in(n->nat64, &out, &out);
        p->src = out.src;
        p->dst = out.dst;
        forward(sim, id, pid);
        break;
    case PUNCH_NAT_RST: {
        /* answer the sender from the address it tried to reach */
        sim->counters.nat_rst++;
        punch_addr from = p->dst, to = p->src;
        p->src = from;
        p->dst = to;
        p->tcp_flags = PUNCH_TCP_RST | PUNCH_TCP_ACK;
        p->len = 0;
        p->ttl = PUNCH_SIM_TTL;
        p->origin = -1;
        forward(sim, id, pid);
        break;
    }
    case PUNCH_NAT_DROP:
    default:
        sim->counters.nat_dropped++;
        pkt_free(sim, pid);
        break;
    }
    rearm(sim, id);
}

static void deliver(punch_sim *sim, const event *ev)
{
    node *n = &sim->nodes[ev->node];
    trace(sim, 'D', ev->node, pkt(sim, ev->pkt));
    switch (n->kind) {
    case NODE_HOST: host_receive(sim, ev->node, ev->pkt); break;
    case NODE_NAT: nat_receive(sim, ev->node, ev->iface, ev->pkt); break;
    default: forward(sim, ev->node, ev->pkt); break;
    }
}

static void fire_timer(punch_sim *sim, const event *ev)
{
    node *n = &sim->nodes[ev->node];
    if (ev->time != n->timer_at)
        return; /* superseded by a later rearm() */
    n->timer_at = UINT64_MAX;
    if (n->nat)
        punch_nat_expire(n->nat, sim->now / 1000);
    if (n->has_ep && n->ep.on_timeout &&
        (!n->ep.next_timeout || n->ep.next_timeout(n->ep.ctx) <= sim->now))
        n->ep.on_timeout(n->ep.ctx, sim, ev->node, sim->now);
    rearm(sim, ev->node);
}

bool punch_sim_step(punch_sim *sim)
{
    if (!sim || sim->heap_len == 0)
        return false;
    event ev = pop_event(sim);
    sim->now = ev.time;
    sim->counters.events++;
    if (ev.kind == EV_DELIVER)
        deliver(sim, &ev);
    else
        fire_timer(sim, &ev);
    return true;
}

uint64_t punch_sim_run(punch_sim *sim, uint64_t until)
{
    uint64_t n = 0;
    if (!sim)
        return 0;
    while (sim->heap_len > 0 && sim->heap[0].time <= until) {
        punch_sim_step(sim);
        n++;
    }
    if (until > sim->now)
        sim->now = until;
    return n;
}

int punch_sim_send(punch_sim *sim, int host, const punch_sim_datagram *d)
{
    if (!sim || !d || !valid_node(sim, host) || sim->nodes[host].kind != NODE_HOST ||
        d->len > PUNCH_SIM_MTU || (d->len && !d->data))
        return PUNCH_ERR_INVAL;
    uint32_t pid = pkt_alloc(sim);
    if (pid == NONE)
        return PUNCH_ERR_LIMIT;
    packet *p = pkt(sim, pid);
    p->proto = d->proto ? d->proto : PUNCH_IP_UDP;
    p->tcp_flags = d->tcp_flags;
    p->tcp_seq = d->tcp_seq;
    p->ttl = d->ttl ? d->ttl : PUNCH_SIM_TTL;
    p->src = p->sent_src = d->local;
    p->dst = p->sent_dst = d->remote;
    p->origin = host;
    p->sent_us = sim->now;
    p->len = d->len;
    if (d->len)
        memcpy(p->data, d->data, d->len);
    sim->counters.sent++;
    forward(sim, host, pid);
    return 0;
}

/* ---- topology ------------------------------------------------------- */

static int add_node(punch_sim *sim, int kind)
{
    if (grow((void **)&sim->nodes, &sim->cap_nodes, sim->n_nodes + 1, sizeof(node)) != 0)
        return PUNCH_ERR_NOMEM;
    node *n = &sim->nodes[sim->n_nodes];
    memset(n, 0, sizeof(*n));
    n->kind = kind;
    n->timer_at = UINT64_MAX;
    n->icmp_left = -1;
    return (int)sim->n_nodes++;
}

int punch_sim_add_host(punch_sim *sim)
{
    return sim ? add_node(sim, NODE_HOST) : PUNCH_ERR_INVAL;
}

int punch_sim_add_router(punch_sim *sim)
{
    return sim ? add_node(sim, NODE_ROUTER) : PUNCH_ERR_INVAL;
}

int punch_sim_add_nat(punch_sim *sim, const punch_nat_cfg *cfg)
{
    if (!sim || !cfg)
        return PUNCH_ERR_INVAL;
    punch_nat_cfg c = *cfg;
    if (!c.random) {
        c.random = punch_rng_callback;
        c.random_ctx = &sim->rng;
    }
    punch_nat *nat;
    punch_nat_fwd *fwd = NULL;
    int rc = punch_nat_new(&nat, &c);
    if (rc != 0)
        return rc;
    if ((rc = punch_nat_fwd_new(&fwd, SIM_MAX_FORWARDS, SIM_MAX_FORWARD_FLOWS)) != 0) {
        punch_nat_free(nat);
        return rc;
    }
    int id = add_node(sim, NODE_NAT);
    if (id < 0) {
        punch_nat_free(nat);
        punch_nat_fwd_free(fwd);
        return id;
    }
    sim->nodes[id].nat = nat;
    sim->nodes[id].fwd = fwd;
    return id;
}

int punch_sim_link(punch_sim *sim, const punch_sim_end *a, const punch_sim_end *b,
                   const punch_sim_link_cfg *cfg)
{
    if (!sim || !a || !b || !cfg || !valid_node(sim, a->node) || !valid_node(sim, b->node) ||
        sim->nodes[a->node].n_ifaces >= PUNCH_SIM_MAX_IFACES ||
        sim->nodes[b->node].n_ifaces >= PUNCH_SIM_MAX_IFACES || a->node == b->node)
        return PUNCH_ERR_INVAL;
    if (grow((void **)&sim->links, &sim->cap_links, sim->n_links + 1, sizeof(link)) != 0)
        return PUNCH_ERR_NOMEM;
    int id = (int)sim->n_links++;
    link *l = &sim->links[id];
    l->cfg = *cfg;
    const punch_sim_end *ends[2] = {a, b};
    for (int e = 0; e < 2; e++) {
        node *n = &sim->nodes[ends[e]->node];
        iface *f = &n->ifaces[n->n_ifaces];
        f->link = id;
        f->end = e;
        f->addr = ends[e]->addr;
        f->inside = ends[e]->inside;
        l->node[e] = ends[e]->node;
        l->iface[e] = n->n_ifaces++;
    }
    return id;
}

int punch_sim_link_set(punch_sim *sim, int link_id, const punch_sim_link_cfg *cfg)
{
    if (!sim || !cfg || link_id < 0 || (size_t)link_id >= sim->n_links)
        return PUNCH_ERR_INVAL;
    sim->links[link_id].cfg = *cfg;
    return 0;
}

int punch_sim_route(punch_sim *sim, int id, const punch_addr *prefix, unsigned len, int link_id)
{
    if (!sim || !prefix || !valid_node(sim, id) || link_id < 0 ||
        (size_t)link_id >= sim->n_links || len > (prefix->family == PUNCH_AF_INET6 ? 128u : 32u))
        return PUNCH_ERR_INVAL;
    node *n = &sim->nodes[id];
    int ifc = -1;
    for (int i = 0; i < n->n_ifaces; i++)
        if (n->ifaces[i].link == link_id)
            ifc = i;
    if (ifc < 0)
        return PUNCH_ERR_INVAL;
    if (grow((void **)&n->routes, &n->cap_routes, n->n_routes + 1, sizeof(route)) != 0)
        return PUNCH_ERR_NOMEM;
    n->routes[n->n_routes++] = (route){.prefix = *prefix, .len = len, .iface = ifc};
    return 0;
}

int punch_sim_attach(punch_sim *sim, int host, const punch_sim_endpoint *ep)
{
    if (!sim || !ep || !ep->on_datagram || !valid_node(sim, host) ||
        sim->nodes[host].kind != NODE_HOST)
        return PUNCH_ERR_INVAL;
    sim->nodes[host].ep = *ep;
    sim->nodes[host].has_ep = true;
    rearm(sim, host);
    return 0;
}

/* ---- lifetime ------------------------------------------------------- */

int punch_sim_new(punch_sim **out, const punch_sim_cfg *cfg)
{
    if (!out || !cfg || cfg->max_packets > NONE)
        return PUNCH_ERR_INVAL;
    punch_sim *sim = calloc(1, sizeof(*sim));
    if (!sim)
        return PUNCH_ERR_NOMEM;
    sim->cfg = *cfg;
    sim->free_pkt = NONE;
    punch_sim_reset(sim, cfg->seed);
    *out = sim;
    return 0;
}

static void clear_nodes(punch_sim *sim)
{
    for (size_t i = 0; i < sim->n_nodes; i++) {
        punch_nat_free(sim->nodes[i].nat);
        punch_nat_fwd_free(sim->nodes[i].fwd);
        free(sim->nodes[i].nat64);
        free(sim->nodes[i].routes);
    }
    sim->n_nodes = 0;
}

void punch_sim_reset(punch_sim *sim, uint64_t seed)
{
    if (!sim)
        return;
    clear_nodes(sim);
    sim->n_links = 0;
    sim->heap_len = 0;
    sim->free_pkt = NONE;
    for (size_t i = sim->n_pkts; i-- > 0;) {
        pkt(sim, (uint32_t)i)->next_free = sim->free_pkt;
        sim->free_pkt = (uint32_t)i;
    }
    memset(&sim->counters, 0, sizeof(sim->counters));
    sim->cfg.seed = seed;
    punch_rng_seed(&sim->rng, seed);
    sim->now = 0;
    sim->seq = 0;
    sim->trace = mix(0x7472616365ull, seed);
}

void punch_sim_free(punch_sim *sim)
{
    if (!sim)
        return;
    clear_nodes(sim);
    free(sim->nodes);
    free(sim->links);
    for (size_t i = 0; i < sim->n_chunks; i++)
        free(sim->chunks[i]);
    free(sim->chunks);
    free(sim->heap);
    free(sim);
}

uint64_t punch_sim_now(const punch_sim *sim)
{
    return sim ? sim->now : 0;
}

uint64_t punch_sim_seed(const punch_sim *sim)
{
    return sim ? sim->cfg.seed : 0;
}

uint64_t punch_sim_trace_hash(const punch_sim *sim)
{
    return sim ? sim->trace : 0;
}

punch_rng *punch_sim_rng(punch_sim *sim)
{
    return sim ? &sim->rng : NULL;
}

punch_nat *punch_sim_nat(punch_sim *sim, int id)
{
    return sim && valid_node(sim, id) ? sim->nodes[id].nat : NULL;
}

int punch_sim_nat_nat64(punch_sim *sim, int id, const punch_nat64_prefix *prefix,
                        const punch_addr *pool)
{
    if (!sim || !valid_node(sim, id) || !sim->nodes[id].nat || sim->nodes[id].nat64 || !pool ||
        pool->family != PUNCH_AF_INET)
        return PUNCH_ERR_INVAL;
    punch_nat64 t;
    if (punch_nat64_init(&t, prefix, pool) != 0)
        return PUNCH_ERR_INVAL;
    if (!(sim->nodes[id].nat64 = malloc(sizeof(punch_nat64))))
        return PUNCH_ERR_NOMEM;
    *sim->nodes[id].nat64 = t;
    return 0;
}

punch_nat_fwd *punch_sim_nat_fwd(punch_sim *sim, int id)
{
    return sim && valid_node(sim, id) ? sim->nodes[id].fwd : NULL;
}

const punch_sim_counters *punch_sim_counters_get(const punch_sim *sim)
{
    return sim ? &sim->counters : NULL;
}

/* ---- reflector ------------------------------------------------------ */

#define REFLECT_LEN 20

static void reflect(void *ctx, punch_sim *sim, int host, uint64_t now,
                    const punch_sim_datagram *d)
{
    (void)ctx;
    (void)now;
    uint8_t buf[REFLECT_LEN] = {'R', d->remote.family, (uint8_t)(d->remote.port >> 8),
                                (uint8_t)d->remote.port};
    memcpy(buf + 4, d->remote.ip, 16);
    punch_sim_datagram r = {.proto = d->proto, .local = d->local, .remote = d->remote,
                            .data = buf, .len = sizeof(buf)};
    if (d->proto == PUNCH_IP_TCP)
        r.tcp_flags = PUNCH_TCP_ACK | (d->tcp_flags & PUNCH_TCP_SYN);
    punch_sim_send(sim, host, &r);
}

const punch_sim_endpoint punch_sim_reflector = {.on_datagram = reflect};

int punch_sim_reflect_decode(const uint8_t *data, size_t len, punch_addr *seen)
{
    if (!data || !seen || len != REFLECT_LEN || data[0] != 'R')
        return PUNCH_ERR_MALFORMED;
    memset(seen, 0, sizeof(*seen));
    seen->family = data[1];
    seen->port = (uint16_t)(data[2] << 8 | data[3]);
    memcpy(seen->ip, data + 4, 16);
    return 0;
}
