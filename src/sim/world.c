/* SPDX-License-Identifier: MIT */
/* The simulated world of the agent: see world.h. */
#include "sim/world.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/identity.h"
#include "wire/stun.h"

/* A setup step that cannot fail unless the caller got something wrong. */
#define check(cond)                                                                            \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "%s:%d: world setup failed: %s\n", __FILE__, __LINE__, #cond);    \
            abort();                                                                           \
        }                                                                                      \
    } while (0)
#define check_eq(a, b) check((a) == (b))

static void rng_bytes(void *ctx, uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)punch_rng_next(ctx);
}

punch_addr v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint16_t port)
{
    return (punch_addr){.family = PUNCH_AF_INET, .port = port, .ip = {a, b, c, d}};
}

/* ---- glue: sans-I/O parts on simulated hosts ---- */

/* What the node's TCP paths ask for, done on its simulated TCP. */
static void node_tcp_run(node *n, uint64_t now_ms)
{
    punch_tcp_cmd c;
    while (n->tcp && punch_tcp_paths_poll_command(n->tcp, &c) == 1)
        punch_sim_tcp_exec(&n->stcp, now_ms, &c);
}

static uint32_t node_tcp_accept(void *ctx, uint64_t now_ms, uint32_t listener,
                                const punch_addr *remote)
{
    node *n = ctx;
    return punch_tcp_paths_handle_accept(n->tcp, now_ms, listener, remote);
}

static void node_tcp_result(void *ctx, uint64_t now_ms, const punch_tcp_result *r)
{
    node *n = ctx;
    punch_tcp_paths_handle_result(n->tcp, now_ms, r);
}

static void node_tcp_frame(void *ctx, uint64_t now_ms, uint32_t sock, const punch_addr *remote,
                           const uint8_t *data, size_t len)
{
    (void)remote;
    node *n = ctx;
    punch_tcp_paths_handle_frame(n->tcp, now_ms, sock, data, len);
}

/* A node's sockets are ports: the main one its port, extra socket k port +
 * k, and a TCP socket that a test hands the agent by hand (no n->tcp)
 * port + PUNCH_SIM_TCP_PORT_OFFSET + its index, carried as UDP. */
static uint16_t sim_port_offset(punch_socket s)
{
    switch (s.kind) {
    case PUNCH_SOCKET_EXTRA: return s.index;
    case PUNCH_SOCKET_TCP: return (uint16_t)(PUNCH_SIM_TCP_PORT_OFFSET + s.index);
    default: return 0;
    }
}

static bool sim_socket_at(const node *n, uint16_t port, punch_socket *s)
{
    uint16_t k = (uint16_t)(port - n->addr.port);
    if (k <= PUNCH_MAX_SOCKETS)
        *s = (punch_socket){.kind = k ? PUNCH_SOCKET_EXTRA : PUNCH_SOCKET_MAIN, .index = k};
    else if (k >= PUNCH_SIM_TCP_PORT_OFFSET && k - PUNCH_SIM_TCP_PORT_OFFSET < PUNCH_TCP_MAX_SOCKETS)
        *s = (punch_socket){.kind = PUNCH_SOCKET_TCP,
                            .index = (uint16_t)(k - PUNCH_SIM_TCP_PORT_OFFSET)};
    else
        return false;
    return true;
}

/* One line per event on stderr (PUNCH_SIM_DEBUG): the technique and the
 * reason where the kind has them. */
static void debug_event(const node *n, uint64_t now_ms, const punch_event *e)
{
    const char *how = "", *why = "";
    char path[64];
    if (e->kind == PUNCH_EVENT_PATH || e->kind == PUNCH_EVENT_RTT) {
        snprintf(path, sizeof(path), "%s ipv%d rtt %u us", punch_technique_name(e->path.technique),
                 e->path.remote.family, e->path.rtt_us);
        how = path;
    }
    if (e->kind == PUNCH_EVENT_ATTEMPT) {
        how = punch_technique_name(e->attempt.technique);
        why = e->attempt.why;
    }
    if (e->kind == PUNCH_EVENT_CLOSED)
        why = e->closed.why;
    if (e->kind == PUNCH_EVENT_REGISTERED)
        how = e->registered.server.family == PUNCH_AF_INET6 ? "at the server's ipv6" : "at ipv4";
    fprintf(stderr, "%8llu %s: event %d peer %d %s %s\n", (unsigned long long)now_ms,
            n->addr.ip[3] == 2 && n->addr.ip[2] == 1 ? "alice" : "bob", e->kind, e->peer, how,
            why);
}

static void node_registered(node *n, uint64_t now_ms, const punch_event_registered *r)
{
    if (!n->registered)
        n->registered_ms = now_ms;
    n->registered = true;
    n->by_token = r->by_token;
    n->server = r->server;
    n->registrations++;
    n->last_registered_ms = now_ms;
    snprintf(n->nat, sizeof(n->nat), "%s", r->nat);
    n->other_family = r->other_family;
    snprintf(n->other_nat, sizeof(n->other_nat), "%s", r->other_nat ? r->other_nat : "");
}

/* The extra sockets a PUNCH_EVENT_SOCKETS lets go. */
static void node_sockets_close(node *n, const punch_event_sockets *s)
{
    for (unsigned k = s->first; k <= s->last && k <= PUNCH_MAX_SOCKETS; k++)
        if (k != s->keep && n->extra_is_open[k]) {
            n->extra_is_open[k] = false;
            n->extra_open--;
        }
}

static void node_path(node *n, uint64_t now_ms, const punch_event *e)
{
    if (e->peer >= 0 && e->peer < 16) {
        n->kind_of[e->peer] = e->path.kind;
        n->technique_of[e->peer] = e->path.technique;
    }
    n->have_path = true;
    n->path_remote = e->path.remote;
    n->kind = e->path.kind;
    n->technique = e->path.technique;
    n->cipher = e->path.cipher;
    n->path_timed = e->path.timed;
    n->path_rtt_us = e->path.rtt_us;
    n->path_ms = n->timed_ms = now_ms;
    if (!n->path_changes++)
        n->first_kind = e->path.kind;
    if (e->path.kind == PUNCH_PATH_DIRECT && !n->first_direct_ms) {
        n->first_direct_ms = now_ms;
        n->first_direct_technique = e->path.technique;
    }
}

static void node_events(node *n, uint64_t now_ms)
{
    punch_event e;
    static int debug = -1;
    if (debug < 0)
        debug = getenv("PUNCH_AGENT_DEBUG") != NULL;
    while (punch_agent_poll_event(n->agent, &e) == 1) {
        if (n->tcp) {
            punch_tcp_paths_handle_event(n->tcp, now_ms, &e);
            node_tcp_run(n, now_ms);
        }
        if (debug)
            debug_event(n, now_ms, &e);
        switch (e.kind) {
        case PUNCH_EVENT_REGISTERED: node_registered(n, now_ms, &e.registered); break;
        case PUNCH_EVENT_INTRODUCED:
            if (n->peer < 0)
                n->peer = e.peer;
            n->last_peer = e.peer;
            break;
        case PUNCH_EVENT_PATH: node_path(n, now_ms, &e); break;
        case PUNCH_EVENT_RTT:
            n->path_timed = true;
            n->path_rtt_us = e.rtt.rtt_us;
            n->timed_ms = now_ms;
            n->rtt_events++;
            break;
        case PUNCH_EVENT_DATA:
            snprintf(n->got, sizeof(n->got), "%.*s", (int)e.data.len, (const char *)e.data.bytes);
            n->got_len = e.data.len;
            n->got_from = e.peer;
            if (e.data.len > 1 && e.data.bytes[0] == '#') {
                unsigned seq = (unsigned)strtoul(n->got + 1, NULL, 10);
                if (seq < sizeof(n->counts) / sizeof(n->counts[0]))
                    n->counts[seq]++;
            }
            break;
        case PUNCH_EVENT_CLOSED:
            snprintf(n->closed, sizeof(n->closed), "%s", e.closed.why);
            n->closed_count++;
            break;
        case PUNCH_EVENT_ATTEMPT:
            snprintf(n->attempt, sizeof(n->attempt), "%s", e.attempt.why);
            if ((unsigned)e.attempt.technique < sizeof(n->attempt_by) / sizeof(n->attempt_by[0]))
                snprintf(n->attempt_by[e.attempt.technique], sizeof(n->attempt_by[0]), "%s",
                         e.attempt.why);
            if (e.attempt.technique == PUNCH_TECH_TURN && e.peer < 0)
                snprintf(n->turn_said, sizeof(n->turn_said), "%s", e.attempt.why);
            if (strcmp(e.attempt.why, "nat behaviour unknown: trying birthday anyway") == 0)
                n->birthday_anyway++;
            break;
        case PUNCH_EVENT_PORTMAP:
            n->portmaps++;
            break;
        case PUNCH_EVENT_TCP_OFFER:
            n->tcp_offers++;
            n->tcp_offer = e.tcp_offer;
            break;
        case PUNCH_EVENT_SOCKETS:
            node_sockets_close(n, &e.sockets);
            break;
        case PUNCH_EVENT_TURN:
            n->turn_events++;
            n->turn = e.turn;
            break;
        case PUNCH_EVENT_TOKEN:
            n->has_token = true;
            n->token = e.token;
            break;
        default: break;
        }
    }
}

void node_flush(node *n)
{
    uint8_t buf[2048], ttl;
    size_t len;
    punch_addr dst;
    punch_socket sock;
    /* Low-TTL probes die where they would (the opener's TTL counts the
     * host and its NATs; the core router drops them). Extra socket k is
     * port 5000 + k. */
    while (punch_agent_poll_transmit_from(n->agent, &sock, &dst, &ttl, buf, sizeof(buf), &len) ==
           1) {
        if (n->tcp && sock.kind == PUNCH_SOCKET_TCP) {
            punch_sim_tcp_write(&n->stcp, punch_tcp_paths_sock_for(n->tcp, sock), buf, len);
            continue;
        }
        if (n->gone)
            continue;
        if (sock.kind == PUNCH_SOCKET_EXTRA && sock.index <= PUNCH_MAX_SOCKETS) {
            n->extra_sent++;
            n->extra_open += !n->extra_is_open[sock.index];
            n->extra_is_open[sock.index] = true;
        }
        punch_addr from = dst.family == PUNCH_AF_INET6 && n->addr6.family ? n->addr6 : n->addr;
        from.port = (uint16_t)(n->addr.port + sim_port_offset(sock));
        n->sent_v6 += dst.family == PUNCH_AF_INET6;
        n->bytes_sent += len;
        punch_sim_send(n->sim, n->host,
                       &(punch_sim_datagram){.local = from, .remote = dst, .ttl = ttl,
                                             .data = buf, .len = len});
    }
}

/* How long the gateway's answer takes (src/driver/portmap.c's exchanges):
 * PCP one round trip (a refusal too: ICMP port unreachable), NAT-PMP two
 * (its public address, then the mapping; a refusal one), UPnP a second of
 * SSDP discovery and, when the gateway answers, six more (the device
 * description, the external address and the mapping, each a TCP connect
 * and an HTTP exchange). */
static uint64_t gateway_delay(const node *n, const punch_portmap_request *req)
{
    bool offered = req->proto == n->gateway_offers;
    switch (req->proto) {
    case PUNCH_PORTMAP_NATPMP: return n->gateway_rtt_ms * (offered && !req->remove ? 2 : 1);
    case PUNCH_PORTMAP_UPNP: return 1000 + (offered ? 6 * n->gateway_rtt_ms : 0);
    default: return n->gateway_rtt_ms;
    }
}

/* The answer the NAT in front gives: a port forward for the protocol it
 * offers (src/nat/portfwd.h), nothing for any other. */
static void gateway_answer(node *n, uint64_t now_ms, const punch_portmap_request *req,
                           punch_portmap_result *res)
{
    *res = (punch_portmap_result){.proto = req->proto};
    punch_nat_fwd *f = n->gateway >= 0 ? punch_sim_nat_fwd(n->sim, n->gateway) : NULL;
    const char *proto = punch_portmap_proto_name(req->proto);
    if (!f || req->proto != n->gateway_offers) {
        snprintf(res->why, sizeof(res->why), "%s: no answer", proto);
    } else if (req->remove) {
        res->ok = punch_nat_fwd_remove(f, PUNCH_IP_UDP, &req->external) == 0;
    } else if (punch_nat_fwd_add(f, punch_sim_nat(n->sim, n->gateway), now_ms, PUNCH_IP_UDP,
                                 &n->addr, n->addr.port, req->lifetime_s * 1000ull,
                                 &res->external) == 0) {
        res->ok = true;
        res->lifetime_s = req->lifetime_s;
    } else {
        snprintf(res->why, sizeof(res->why), "%s: no free port", proto);
    }
}

/* The agent's requests to the gateway, one at a time as the driver runs
 * them; each answered gateway_delay() later (at once when that is 0). */
static void node_portmap(node *n, uint64_t now_ms)
{
    punch_portmap_request req;
    if (n->pm_pending) {
        if (now_ms < n->pm_due_ms)
            return;
        n->pm_pending = false;
        punch_agent_portmap_result(n->agent, now_ms, &n->pm_res);
    }
    for (int i = 0; i < 8 && punch_agent_poll_portmap(n->agent, now_ms, &req) == 1; i++) {
        gateway_answer(n, now_ms, &req, &n->pm_res);
        uint64_t delay = gateway_delay(n, &req);
        if (delay) {
            n->pm_pending = true;
            n->pm_due_ms = now_ms + delay;
            return;
        }
        punch_agent_portmap_result(n->agent, now_ms, &n->pm_res);
    }
}

/* The first signalling datagrams from the server (198.51.100.x; STUN
 * answers are not kept), for node.heard. */
static void keep_from_server(node *n, const punch_sim_datagram *d)
{
    unsigned k = n->n_heard;
    if (d->remote.ip[0] != 198 || k >= sizeof(n->heard) / sizeof(n->heard[0]) ||
        d->len > sizeof(n->heard[0]) || punch_stun_is_stun(d->data, d->len))
        return;
    memcpy(n->heard[k], d->data, d->len);
    n->heard_len[k] = d->len;
    n->heard_from[k] = d->remote;
    n->n_heard++;
}

static void node_rx(void *ctx, punch_sim *sim, int host, uint64_t now_us,
                    const punch_sim_datagram *d)
{
    (void)sim, (void)host;
    node *n = ctx;
    if (n->mute || n->gone)
        return;
    if (d->proto == PUNCH_IP_ICMP) {
        if (n->tcp) {
            punch_sim_tcp_icmp(&n->stcp, now_us / MS, d);
            node_tcp_run(n, now_us / MS);
            node_events(n, now_us / MS);
            node_flush(n);
        }
        return;
    }
    if (d->proto == PUNCH_IP_TCP) {
        if (n->tcp) {
            punch_sim_tcp_segment(&n->stcp, now_us / MS, d);
            node_tcp_run(n, now_us / MS);
            node_events(n, now_us / MS);
            node_flush(n);
        }
        return;
    }
    if (now_us / MS < n->deaf_until_ms && d->remote.ip[0] != 198)
        return; /* only the server (198.51.100.1) is heard yet */
    keep_from_server(n, d);
    punch_socket sock;
    if (!sim_socket_at(n, d->local.port, &sock))
        return;
    if (n->tamper && d->len <= 2048) { /* every datagram the agents send fits */
        uint8_t copy[2048];
        memcpy(copy, d->data, d->len);
        n->tamper(copy, d->len);
        punch_agent_handle_datagram_on(n->agent, now_us / MS, sock, &d->remote, copy, d->len);
    } else {
        punch_agent_handle_datagram_on(n->agent, now_us / MS, sock, &d->remote, d->data, d->len);
    }
    node_portmap(n, now_us / MS);
    node_events(n, now_us / MS);
    node_flush(n);
}

static void node_timer(void *ctx, punch_sim *sim, int host, uint64_t now_us)
{
    (void)sim, (void)host;
    node *n = ctx;
    if (n->tcp) {
        punch_sim_tcp_timeout(&n->stcp, now_us / MS);
        punch_tcp_paths_handle_timeout(n->tcp, now_us / MS);
        node_tcp_run(n, now_us / MS);
    }
    punch_agent_handle_timeout(n->agent, now_us / MS);
    node_portmap(n, now_us / MS);
    node_events(n, now_us / MS);
    node_flush(n);
}

static uint64_t node_next(void *ctx)
{
    const node *n = ctx;
    uint64_t t = punch_agent_next_timeout(n->agent);
    if (n->pm_pending && n->pm_due_ms < t)
        t = n->pm_due_ms;
    if (n->tcp) {
        uint64_t p = punch_tcp_paths_next_timeout(n->tcp), s = punch_sim_tcp_next_timeout(&n->stcp);
        t = p < t ? p : t;
        t = s < t ? s : t;
    }
    return t == UINT64_MAX ? UINT64_MAX : t * MS;
}

static void server_flush(server *s)
{
    uint8_t buf[PUNCH_RV_MAX_DATAGRAM];
    punch_rendezvous_out out;
    while (punch_rendezvous_poll_transmit(s->rv, &out, buf, sizeof(buf)) == 1)
        punch_sim_send(s->sim, s->host,
                       &(punch_sim_datagram){.local = out.local.family ? out.local : s->addr,
                                             .remote = out.dst, .data = buf, .len = out.len});
    punch_rendezvous_event ev;
    while (punch_rendezvous_poll_event(s->rv, &ev) == 1)
        ;
}

static void server_rx(void *ctx, punch_sim *sim, int host, uint64_t now_us,
                      const punch_sim_datagram *d)
{
    (void)sim, (void)host;
    server *s = ctx;
    if (s->down)
        return;
    if (d->proto == PUNCH_IP_TCP) {
        punch_sim_tcp_segment(&s->stcp, now_us / MS, d);
        return;
    }
    if (punch_stun_is_stun(d->data, d->len)) {
        punch_binding_in in = {.now_ms = now_us / MS, .src = d->remote, .dst = d->local,
                               .data = d->data, .len = d->len};
        in.group = s->addr6.family && punch_addr_same_ip(&d->local, &s->addr6);
        const punch_binding_group *g = in.group ? &s->group6 : &s->group;
        for (int ip = 0; ip < 2; ip++)
            for (int port = 0; port < 2; port++)
                if (punch_addr_equal(&g->local[ip][port], &d->local))
                    in.ip = ip, in.port = port;
        uint8_t buf[512];
        punch_binding_out out;
        if (punch_binding_handle(s->stun, &in, buf, sizeof(buf), &out) == 1)
            punch_sim_send(s->sim, s->host,
                           &(punch_sim_datagram){.local = g->local[out.ip][out.port],
                                                 .remote = out.dst, .data = buf, .len = out.len});
        return;
    }
    punch_rendezvous_handle(s->rv, now_us / MS, &d->remote, &d->local, d->data, d->len);
    server_flush(s);
}

/* punchd's TCP front end, as far as TCP paths use it: a STUN Binding
 * request over a connection is answered with the address it came from. */
static uint32_t server_tcp_accept(void *ctx, uint64_t now_ms, uint32_t listener,
                                  const punch_addr *remote)
{
    (void)now_ms, (void)listener, (void)remote;
    server *s = ctx;
    return ++s->tcp_conns;
}

static void server_tcp_result(void *ctx, uint64_t now_ms, const punch_tcp_result *r)
{
    server *s = ctx;
    if (r->kind == PUNCH_TCP_CLOSED)
        punch_sim_tcp_exec(&s->stcp, now_ms,
                           &(punch_tcp_cmd){.kind = PUNCH_TCP_CLOSE, .sock = r->sock});
}

static void server_tcp_frame(void *ctx, uint64_t now_ms, uint32_t sock, const punch_addr *remote,
                             const uint8_t *data, size_t len)
{
    server *s = ctx;
    punch_binding_in in = {.now_ms = now_ms, .src = *remote, .dst = s->addr, .data = data,
                           .len = len};
    uint8_t buf[512];
    punch_binding_out out;
    if (punch_binding_handle(s->stun, &in, buf, sizeof(buf), &out) == 1)
        punch_sim_tcp_write(&s->stcp, sock, buf, out.len);
}

static void server_timer(void *ctx, punch_sim *sim, int host, uint64_t now_us)
{
    (void)sim, (void)host;
    server *s = ctx;
    punch_rendezvous_handle_timeout(s->rv, now_us / MS);
    server_flush(s);
}

static uint64_t server_next(void *ctx)
{
    uint64_t t = punch_rendezvous_next_timeout(((server *)ctx)->rv);
    return t == UINT64_MAX ? UINT64_MAX : t * MS;
}

/* ---- topologies ---- */

void link_up(world *w, int a, punch_addr a_addr, bool a_inside, int b, punch_addr b_addr,
                    bool b_inside, const punch_sim_link_cfg *cfg, int *link)
{
    *link = punch_sim_link(w->sim, &(punch_sim_end){a, a_addr, a_inside},
                           &(punch_sim_end){b, b_addr, b_inside}, cfg);
    check(*link >= 0);
}

void route(world *w, int node_id, punch_addr prefix, unsigned len, int link)
{
    check_eq(punch_sim_route(w->sim, node_id, &prefix, len, link), 0);
}

int add_nat(world *w, const char *spec, punch_addr public_ip)
{
    punch_nat_cfg c;
    char err[128];
    punch_nat_cfg_default(&c);
    c.max_mappings = 1024; /* many-port probing opens 256 and more */
    c.n_public = 1;
    c.public_ip[0] = public_ip;
    if (punch_nat_cfg_parse(&c, spec, err, sizeof(err)) != 0) {
        fprintf(stderr, "world: NAT '%s': %s\n", spec, err);
        abort();
    }
    int id = punch_sim_add_nat(w->sim, &c);
    check(id >= 0);
    return id;
}

static const punch_addr ANY = {.family = PUNCH_AF_INET};
static const punch_addr NONE = {0};

void world_start(world *w, uint64_t seed)
{
    world_start_with(w, seed, WORLD_SERVER_TWO_IPS);
}

/* The STUN service's sockets for this kind of server (rendezvous on the
 * first); alt_ip: the last byte of its second IP (two IPs). */
static void server_stun(world *w, server *s, world_server_kind kind, uint8_t alt_ip)
{
    punch_addr port2 = s->addr;
    port2.port = 3479;
    if (kind == WORLD_SERVER_TWO_IPS) {
        /* The server's second IP, for NAT discovery (punchd --alt). */
        punch_addr alt = v4(198, 51, 100, alt_ip, 3478);
        int l;
        link_up(w, s->host, alt, false, w->router, NONE, false,
                &(punch_sim_link_cfg){.delay_us = 5 * MS}, &l);
        route(w, w->router, alt, 32, l);
        s->group = (punch_binding_group){
            .has_alt = true, .local = {{s->addr, port2}, {alt, v4(198, 51, 100, alt_ip, 3479)}}};
    } else {
        bool second = kind == WORLD_SERVER_SECOND_PORT;
        s->group = (punch_binding_group){.has_second_port = second,
                                         .local = {{s->addr, second ? port2 : NONE}}};
    }
    punch_binding_cfg bc = {.n_groups = 1, .groups = {s->group}};
    check_eq(punch_binding_new(&s->stun, &bc), 0);
}

/* The rendezvous service of server s: its own key and secrets from the seed. */
static void server_rendezvous(server *s, uint64_t seed, world_server_kind kind)
{
    punch_rng_seed(&s->rng, seed);
    punch_rendezvous_cfg rc = {.random = rng_bytes, .random_arg = &s->rng};
    uint8_t secret[32];
    rng_bytes(&s->rng, secret, sizeof(secret));
    check_eq(punch_identity_from_secret(&rc.identity, secret), 0);
    rng_bytes(&s->rng, rc.cookie_secret, sizeof(rc.cookie_secret));
    rng_bytes(&s->rng, rc.hash_key, sizeof(rc.hash_key));
    rc.max_peers = 64;
    rc.max_sessions = 16;
    rc.no_relay = s->no_relay;
    /* As punchd: COOKIE names the second port, with --alt or without. */
    if (kind != WORLD_SERVER_ONE_PORT) {
        rc.second_port[0].port = 3478;
        rc.second_port[0].second = 3479;
        rc.n_second_port = 1;
    }
    check_eq(punch_rendezvous_new(&s->rv, &rc), 0);
}

/* A server at 198.51.100.ip:3478 behind the core router on a link of
 * delay_ms (its second IP, with two, at ip + 1). */
static void server_start(world *w, server *s, uint8_t ip, world_server_kind kind, uint64_t delay_ms)
{
    s->sim = w->sim;
    s->addr = v4(198, 51, 100, ip, 3478);
    s->kind = kind;
    s->host = punch_sim_add_host(w->sim);
    int l;
    link_up(w, s->host, s->addr, false, w->router, NONE, false,
            &(punch_sim_link_cfg){.delay_us = delay_ms * MS}, &l);
    route(w, w->router, s->addr, 32, l);
    server_rendezvous(s, w->seed ^ 0x5e ^ ((uint64_t)(ip - 1) << 8), kind);
    server_stun(w, s, kind, (uint8_t)(ip + 1));
    punch_sim_attach(w->sim, s->host, &(punch_sim_endpoint){server_rx, server_timer, server_next, s});
    punch_sim_tcp_init(&s->stcp, w->sim, s->host, &s->addr,
                       &(punch_sim_tcp_cb){server_tcp_accept, server_tcp_result, server_tcp_frame,
                                           s});
    s->tcp_conns = 1; /* 1: the listener */
    punch_sim_tcp_exec(&s->stcp, 0,
                       &(punch_tcp_cmd){.kind = PUNCH_TCP_LISTEN, .sock = 1, .local = s->addr});
}

void world_start_with(world *w, uint64_t seed, world_server_kind kind)
{
    memset(w, 0, sizeof(*w));
    w->seed = seed;
    check_eq(punch_sim_new(&w->sim, &(punch_sim_cfg){.seed = seed}), 0);
    w->router = punch_sim_add_router(w->sim);
    server_start(w, &w->s, 1, kind, 5);
}

void world_relay_off(world *w)
{
    w->s.no_relay = true;
    punch_rendezvous_free(w->s.rv);
    server_rendezvous(&w->s, w->seed ^ 0x5e, w->s.kind); /* the same keys */
}

void world_add_server(world *w)
{
    check(!w->two_servers);
    server_start(w, &w->s2, 9, WORLD_SERVER_SECOND_PORT, 20);
    w->two_servers = true;
}

/* TCP paths for a peer (world.tcp_paths). */
static void node_tcp_start(world *w, node *n)
{
    punch_tcp_paths_cfg tc = {.agent = n->agent, .server = w->s.addr, .udp_port = n->addr.port,
                              .n_local = 1, .ask = n == w->tcp_asker,
                              .open_ttl = w->tcp_open_ttl, .random = rng_bytes,
                              .random_ctx = &n->rng};
    tc.local[0] = n->addr;
    if (n->addr6.family) /* dual stack: TCP paths over IPv6 too (issue 16) */
        tc.local[tc.n_local++] = n->addr6;
    check_eq(punch_tcp_paths_new(&n->tcp, &tc), 0);
    punch_sim_tcp_init(&n->stcp, w->sim, n->host, &n->addr,
                       &(punch_sim_tcp_cb){node_tcp_accept, node_tcp_result, node_tcp_frame, n});
    if (n->addr6.family)
        punch_sim_tcp_set_addr6(&n->stcp, &n->addr6);
}

/* n's agent (and its TCP paths), registering at once. */
static void node_agent_new(world *w, node *n, const punch_server_token *token)
{
    bool v6_only = n->addr.family == PUNCH_AF_INET6;
    punch_agent_cfg c = {.name = n->name, .server = v6_only && !n->nat64 ? w->s.addr6 : w->s.addr,
                         .n_local = 1, .flags = w->agent_flags, .portmap = w->portmap,
                         .open_guard_ms = w->open_guard_ms, .random = rng_bytes,
                         .random_ctx = &n->rng};
    c.local[0] = n->addr;
    c.nat64_prefix = w->nat64_prefix;
    if (n->addr6.family)
        c.local[c.n_local++] = n->addr6;
    if (w->two_servers)
        c.more_servers[c.n_more_servers++] = w->s2.addr;
    if (n->use_turn && w->turn) /* world_turn.c */
        world_turn_cfg(w, &c);
    if (n->addr6.family && !v6_only && w->s.addr6.family)
        c.more_servers[c.n_more_servers++] = w->s.addr6;
    if (n->n_claim) {
        c.n_local = n->n_claim;
        memcpy(c.local, n->claim, n->n_claim * sizeof(punch_addr));
    }
    memcpy(c.secret_key, n->secret, sizeof(c.secret_key));
    if (token) {
        c.has_token = true;
        c.token = *token;
    }
    check_eq(punch_agent_new(&n->agent, &c, punch_sim_now(w->sim) / MS), 0);
    memset(c.secret_key, 0, sizeof(c.secret_key));
    if (w->tcp_paths)
        node_tcp_start(w, n);
}

/* A peer at addr on a link to `up` (a NAT's inside or a router), with
 * loss on that access link. */
void add_peer(world *w, node *n, const char *name, punch_addr addr, int up, bool up_is_nat,
                     double loss, int *link)
{
    n->sim = w->sim;
    n->addr = addr;
    n->peer = -1;
    n->gateway = up_is_nat ? up : -1;
    n->host = punch_sim_add_host(w->sim);
    link_up(w, n->host, addr, false, up, NONE, up_is_nat,
            &(punch_sim_link_cfg){.delay_us = w->access_delay_us ? w->access_delay_us : 200,
                                  .jitter_us = w->access_jitter_us, .loss = loss},
            link);
    route(w, up, addr, addr.family == PUNCH_AF_INET6 ? 128 : 32, *link);
    uint64_t name_hash = 1469598103934665603ull; /* FNV-1a: a key of its own per peer */
    for (const char *c = name; *c; c++)
        name_hash = (name_hash ^ (uint8_t)*c) * 1099511628211ull;
    punch_rng_seed(&n->rng, w->seed ^ name_hash);
    snprintf(n->name, sizeof(n->name), "%s", name);
    rng_bytes(&n->rng, n->secret, sizeof(n->secret));
    node_agent_new(w, n, NULL);
    punch_sim_attach(w->sim, n->host, &(punch_sim_endpoint){node_rx, node_timer, node_next, n});
    /* Its first flight (HELLO and the STUN requests) leaves now, as the
     * driver's does (punch_driver_new flushes): left in the queue, it went
     * out only with the first retransmission, 250 ms late. */
    node_flush(n);
}

void node_restart(world *w, node *n, const punch_server_token *token)
{
    /* The program exits as punch does: its peers are told (CLOSE). */
    uint64_t now = punch_sim_now(w->sim) / MS;
    for (int i = 0; i < 16; i++)
        punch_agent_close(n->agent, now, i);
    node_flush(n);
    punch_tcp_paths_free(n->tcp);
    punch_agent_free(n->agent);
    n->tcp = NULL;
    n->addr.port++;
    n->addr6.port = n->addr.port;
    n->addr6_outside.port = n->addr.port;
    n->extra_open = 0; /* the old process's sockets closed with it */
    memset(n->extra_is_open, 0, sizeof(n->extra_is_open));
    n->registered = n->have_path = n->by_token = false;
    n->registered_ms = n->first_direct_ms = 0;
    n->peer = -1;
    n->path_changes = 0;
    node_agent_new(w, n, token);
}

/* A NAT with its outside on the core router (WAN link with delay and loss). */
int nat_on_core(world *w, const char *spec, punch_addr pub, double loss)
{
    return nat_on_core_with(w, spec, pub,
                            &(punch_sim_link_cfg){.delay_us = w->wan_no_delay  ? 0
                                                              : w->wan_delay_us ? w->wan_delay_us
                                                                                : 10 * MS,
                                                  .jitter_us = w->wan_no_delay ? 0 : 1 * MS,
                                                  .loss = loss});
}

int nat_on_core_with(world *w, const char *spec, punch_addr pub, const punch_sim_link_cfg *wan)
{
    int nat = add_nat(w, spec, pub), l;
    link_up(w, nat, pub, false, w->router, NONE, false, wan, &l);
    route(w, nat, ANY, 0, l);
    route(w, w->router, pub, 32, l);
    return nat;
}

void different_nats(world *w, const char *a, const char *b, double loss)
{
    int l;
    int na = nat_on_core(w, a, v4(203, 0, 113, 10, 0), loss);
    int nb = nat_on_core(w, b, v4(203, 0, 113, 20, 0), loss);
    add_peer(w, &w->alice, "alice", v4(10, 0, 1, 2, 5000), na, true, 0, &l);
    add_peer(w, &w->bob, "bob", v4(10, 0, 2, 2, 5000), nb, true, 0, &l);
}

void same_nat(world *w, const char *spec, double loss)
{
    int l;
    int n = nat_on_core(w, spec, v4(203, 0, 113, 10, 0), loss);
    add_peer(w, &w->alice, "alice", v4(10, 0, 1, 2, 5000), n, true, loss, &l);
    add_peer(w, &w->bob, "bob", v4(10, 0, 1, 3, 5000), n, true, loss, &l);
}

/* Alice and Bob behind their own home NATs, both behind the ISP's NAT X
 * (draft §3.3.3, figure 6). */
void multi_level(world *w, const char *x_spec, double loss)
{
    int l, la, lb;
    int x = nat_on_core(w, x_spec, v4(203, 0, 113, 30, 0), loss);
    punch_addr a_pub = v4(100, 64, 0, 10, 0), b_pub = v4(100, 64, 0, 20, 0);
    int na = add_nat(w, "port-restricted-cone", a_pub);
    int nb = add_nat(w, "port-restricted-cone", b_pub);
    link_up(w, na, a_pub, false, x, NONE, true, &(punch_sim_link_cfg){.delay_us = 2 * MS}, &la);
    link_up(w, nb, b_pub, false, x, NONE, true, &(punch_sim_link_cfg){.delay_us = 2 * MS}, &lb);
    route(w, na, ANY, 0, la);
    route(w, nb, ANY, 0, lb);
    route(w, x, a_pub, 32, la);
    route(w, x, b_pub, 32, lb);
    add_peer(w, &w->alice, "alice", v4(10, 0, 1, 2, 5000), na, true, 0, &l);
    add_peer(w, &w->bob, "bob", v4(10, 0, 1, 2, 5000), nb, true, 0, &l);
}

/* Both public, or (reversal, §3.2) Alice behind a NAT and Bob public. */
void public_peers(world *w, const char *alice_nat, double loss)
{
    int l;
    if (alice_nat) {
        int n = nat_on_core(w, alice_nat, v4(203, 0, 113, 10, 0), loss);
        add_peer(w, &w->alice, "alice", v4(10, 0, 1, 2, 5000), n, true, 0, &l);
    } else {
        add_peer(w, &w->alice, "alice", v4(192, 0, 2, 10, 5000), w->router, false, loss, &l);
    }
    add_peer(w, &w->bob, "bob", v4(192, 0, 2, 20, 5000), w->router, false, loss, &l);
}

void world_free(world *w)
{
    punch_tcp_paths_free(w->alice.tcp);
    punch_tcp_paths_free(w->bob.tcp);
    punch_tcp_paths_free(w->carol.tcp);
    punch_agent_free(w->alice.agent);
    punch_agent_free(w->bob.agent);
    punch_agent_free(w->carol.agent);
    punch_rendezvous_free(w->s.rv);
    punch_binding_free(w->s.stun);
    punch_rendezvous_free(w->s2.rv);
    punch_binding_free(w->s2.stun);
    free(w->turn);
    punch_sim_free(w->sim);
}

/* Both registered (retransmitting through any loss), then alice asks for
 * bob. Returns the time she asked, in ms. */
uint64_t register_and_connect(world *w)
{
    for (int i = 0; i < 100 && !(w->alice.registered && w->bob.registered); i++)
        punch_sim_run(w->sim, punch_sim_now(w->sim) + 100 * MS);
    if (!w->alice.registered || !w->bob.registered)
        return UINT64_MAX;
    uint64_t t0 = punch_sim_now(w->sim) / MS;
    w->alice.peer = punch_agent_connect(w->alice.agent, t0, "bob", NULL);
    check(w->alice.peer >= 0);
    node_flush(&w->alice);
    punch_sim_wake(w->sim, w->alice.host);
    return t0;
}

