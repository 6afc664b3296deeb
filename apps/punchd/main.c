/* SPDX-License-Identifier: MIT */
/*
 * punchd: the public server. The STUN Binding service (RFC 8489, and RFC 5780
 * behaviour discovery with --alt), and on the same sockets the rendezvous and
 * relay service (draft §3.3.1, §3.1): datagrams starting with PUNCH_MSG_MAGIC
 * go to the one, everything else to the other. The protocol logic lives in
 * src/server (sans-I/O); this file drives sockets (options.c holds the settings;
 * metrics.c, config.c and notify.c what operators need).
 * The same services also listen on TCP at every address (the last resort
 * for peers whose network drops UDP): each frame on a connection
 * (src/wire/frame.h) is handled as a datagram from the connection's remote
 * address, and what goes back to that address goes on the connection.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "cluster_redis.h"
#include "common/events.h"
#include "keyfile/keyfile.h"
#include "io/log.h"
#include "io/loop.h"
#include "io/net.h"
#include "metrics.h"
#include "notify.h"
#include "options.h"
#include "prometheus.h"
#include "tcp_server.h"
#include "server/binding.h"
#include "server/rendezvous.h"
#include "wire/msg.h"

#define MAX_LISTEN PUNCHD_MAX_LISTEN
#define MAX_SOCKS (MAX_LISTEN * 4)
#define DEFAULT_RATE_SLOTS 65536     /* sources tracked at once */
/* Receive batches handled per wakeup and socket before the others get a turn. */
#define ROUNDS_PER_WAKEUP 8

typedef struct sock {
    int fd;
    size_t group;
    int ip, port;
    punch_addr bound;
    punch_udp_batch *tx;
    bool second;       /* the second port of a group without --alt (STUN only) */
} sock;

typedef struct punchd {
    punch_loop *loop;
    punch_loop_timer timer;        /* the rendezvous' deadline and the TCP server's */
    punch_binding_server *srv;
    punch_rendezvous *rv;
    punch_events *events;
    punch_udp_batch *rx;
    size_t n_socks;
    sock socks[MAX_SOCKS];
    int sock_of[MAX_LISTEN][2][2]; /* group, ip, port -> socks[] index */
    uint64_t send_dropped;
    punch_tcp_server *tcp;         /* NULL with --no-tcp */
    punch_addr tcp_bound[MAX_SOCKS];
    /* Punch datagrams over UDP from an address a TCP connection comes from
     * (a NAT may give a UDP and a TCP mapping the same IP and port):
     * dropped, so the two never share one rendezvous identity. */
    uint64_t tcp_clash;
    /* Operations (issue 13): --metrics, the config file and what SIGHUP
     * reads again (the same command line over the file as it is now). */
    punchd_metrics *metrics;       /* NULL without --metrics */
    uint64_t start_ms;
    punchd_config *config;         /* NULL: no file */
    punchd_source src;
    char metrics_field[PUNCH_ADDR_STRLEN + 16]; /* ,"metrics":"ADDR" of the started event */
    punchd_cluster *cluster;       /* NULL without --cluster */
} punchd;

static int add_sock(punchd *d, const punch_addr *a, size_t group, int ip, int port)
{
    if (d->n_socks == MAX_SOCKS)
        return -1;
    char text[PUNCH_ADDR_STRLEN];
    sock *s = &d->socks[d->n_socks];
    s->fd = punch_udp_bind(a, &s->bound);
    if (s->fd < 0) {
        punch_log(PUNCH_LOG_ERROR, "cannot listen on %s: %s", punch_addr_format(a, text),
                  strerror(errno));
        return -1;
    }
    s->tx = punch_udp_batch_new();
    if (!s->tx) {
        close(s->fd);
        punch_log(PUNCH_LOG_ERROR, "out of memory");
        return -1;
    }
    s->group = group;
    s->ip = ip;
    s->port = port;
    d->sock_of[group][ip][port] = (int)d->n_socks++;
    return 0;
}

/* The second port of a group without --alt (--second-port): STUN Binding
 * only, on the listen address. Returns 0 (also when off) or -1 (logged). */
static int open_second_port(punchd *d, const punch_addr *listen, int second_port,
                            size_t group, punch_binding_group *g)
{
    if (second_port == 0 || (second_port < 0 && listen->port == 65535))
        return 0;
    punch_addr at = *listen;
    at.port = second_port > 0 ? (uint16_t)second_port
                              : listen->port ? (uint16_t)(listen->port + 1) : 0;
    if (at.port && at.port == g->local[0][0].port)
        return 0; /* --second-port names the port itself: none */
    if (add_sock(d, &at, group, 0, 1) != 0) {
        punch_log(PUNCH_LOG_ERROR, "(--second-port off serves without a second port)");
        return -1;
    }
    d->socks[d->n_socks - 1].second = true;
    g->local[0][1] = d->socks[d->n_socks - 1].bound;
    g->has_second_port = true;
    return 0;
}

/* One group of sockets: the listen address alone (and its second port), or
 * with an alternate IP the four of RFC 5780 (both IPs x the port and the
 * next one). */
static int open_group(punchd *d, const punch_addr *listen, const punch_addr *alt,
                      int second_port, size_t group, punch_binding_group *g)
{
    if (add_sock(d, listen, group, 0, 0) != 0)
        return -1;
    g->local[0][0] = d->socks[d->n_socks - 1].bound;
    if (!alt)
        return open_second_port(d, listen, second_port, group, g);
    punch_addr other_port = g->local[0][0], alt_ip = *alt;
    other_port.port = listen->port ? (uint16_t)(listen->port + 1) : 0;
    if (add_sock(d, &other_port, group, 0, 1) != 0)
        return -1;
    alt_ip.port = g->local[0][0].port;
    if (add_sock(d, &alt_ip, group, 1, 0) != 0)
        return -1;
    alt_ip.port = d->socks[d->n_socks - 2].bound.port;
    if (add_sock(d, &alt_ip, group, 1, 1) != 0)
        return -1;
    for (int ip = 0; ip < 2; ip++)
        for (int port = 0; port < 2; port++)
            g->local[ip][port] = d->socks[d->sock_of[group][ip][port]].bound;
    g->has_alt = true;
    return 0;
}

static void flush_tx(punchd *d)
{
    for (size_t i = 0; i < d->n_socks; i++)
        if (punch_udp_queued(d->socks[i].tx))
            d->send_dropped += punch_udp_send(d->socks[i].fd, d->socks[i].tx);
}

/* Queue len bytes for dst on socket s, from src's IP when s is a wildcard. */
static void queue_datagram(punchd *d, sock *s, const punch_addr *dst, const punch_addr *src,
                           const uint8_t *data, size_t len)
{
    uint8_t *slot = punch_udp_queue(s->tx, dst, src, 0);
    if (!slot) {
        d->send_dropped += punch_udp_send(s->fd, s->tx);
        slot = punch_udp_queue(s->tx, dst, src, 0);
    }
    memcpy(slot, data, len);
    punch_udp_queue_len(s->tx, len);
}

/* A relayed datagram still in d->rx, queued where it is: the batch goes
 * before the next receive (on_readable flushes every round). */
static void queue_in_place(punchd *d, sock *s, const punch_addr *dst, const punch_addr *src,
                           const uint8_t *data, size_t len)
{
    if (!punch_udp_queue_ref(s->tx, dst, src, 0, data, len)) {
        d->send_dropped += punch_udp_send(s->fd, s->tx);
        punch_udp_queue_ref(s->tx, dst, src, 0, data, len);
    }
}

static void answer(punchd *d, const sock *s, const punch_binding_in *in)
{
    uint8_t reply[PUNCH_UDP_MTU];
    punch_binding_out out;
    if (punch_binding_handle(d->srv, in, reply, sizeof(reply), &out) != 1)
        return;
    sock *from = &d->socks[d->sock_of[s->group][out.ip][out.port]];
    /* Unchanged answers leave from the address that was asked (it matters
     * on a wildcard socket of a host with several addresses). */
    queue_datagram(d, from, &out.dst, out.changed ? NULL : &in->dst, reply, out.len);
}

/* Whether socket s receives what is sent to local. */
static bool sock_serves(const sock *s, const punch_addr *local)
{
    return punch_addr_equal(&s->bound, local) ||
           (punch_addr_is_any(&s->bound) && s->bound.family == local->family &&
            s->bound.port == local->port);
}

/* The socket to reach a peer from: the one serving the address the peer
 * talks to (its NAT lets answers in from there only), else any of the
 * peer's family. hint is tried first: usually the one just read. */
static sock *sock_for(punchd *d, sock *hint, const punch_addr *local, const punch_addr *dst)
{
    if (local->family != PUNCH_AF_NONE) {
        if (hint && sock_serves(hint, local))
            return hint;
        for (size_t i = 0; i < d->n_socks; i++)
            if (sock_serves(&d->socks[i], local))
                return &d->socks[i];
    }
    for (size_t i = 0; i < d->n_socks; i++)
        if (d->socks[i].bound.family == dst->family)
            return &d->socks[i];
    return NULL;
}

static void hex(const uint8_t *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

/* One peer's fields as strings (names are printable ASCII without quotes or
 * backslashes: src/wire checks that, so they go into JSON as they are). */
typedef struct peer_text {
    char key[PUNCH_KEY_B64_LEN];
    char pub[PUNCH_ADDR_STRLEN];
    char priv[PUNCH_MSG_MAX_PRIVATE * (PUNCH_ADDR_STRLEN + 3) + 1];
} peer_text;

static void format_peer(const punch_rendezvous_peer_info *p, peer_text *t)
{
    char a[PUNCH_ADDR_STRLEN];
    size_t used = 0;
    punch_key_encode(p->key, t->key);
    punch_addr_format(&p->public_addr, t->pub);
    t->priv[0] = '\0';
    for (size_t i = 0; i < p->n_private; i++)
        used += (size_t)snprintf(t->priv + used, sizeof(t->priv) - used, "%s\"%s\"",
                                 i ? "," : "", punch_addr_format(&p->private_addr[i], a));
}

static void emit_rendezvous_event(punchd *d, const punch_rendezvous_event *ev)
{
    peer_text a, b;
    char session[2 * PUNCH_MSG_SESSION_LEN + 1];
    const punch_rendezvous_peer_info *pa = &ev->peer[0], *pb = &ev->peer[1];
    format_peer(pa, &a);
    hex(ev->session, sizeof(ev->session), session);
    switch (ev->type) {
    case PUNCH_RV_EVENT_REGISTERED:
        punch_log(PUNCH_LOG_DEBUG, "registered %s at %s", pa->name, a.pub);
        punch_events_emit(d->events, "registered",
                          "\"name\":\"%s\",\"key\":\"%s\",\"public\":\"%s\",\"private\":[%s]",
                          pa->name, a.key, a.pub, a.priv);
        break;
    case PUNCH_RV_EVENT_INTRODUCED:
        format_peer(pb, &b);
        punch_log(PUNCH_LOG_DEBUG, "introduced %s to %s", pa->name, pb->name);
        punch_events_emit(d->events, "introduced",
                          "\"name\":\"%s\",\"key\":\"%s\",\"public\":\"%s\",\"peer\":\"%s\","
                          "\"peer_key\":\"%s\",\"peer_public\":\"%s\",\"session\":\"%s\","
                          "\"relay\":%s",
                          pa->name, a.key, a.pub, pb->name, b.key, b.pub, session,
                          ev->relay ? "true" : "false");
        break;
    case PUNCH_RV_EVENT_RELAY_OPENED:
        format_peer(pb, &b);
        punch_events_emit(d->events, "relay-opened",
                          "\"session\":\"%s\",\"name\":\"%s\",\"public\":\"%s\","
                          "\"peer\":\"%s\",\"peer_public\":\"%s\"",
                          session, pa->name, a.pub, pb->name, b.pub);
        break;
    case PUNCH_RV_EVENT_RELAY_CLOSED:
        punch_events_emit(d->events, "relay-closed",
                          "\"session\":\"%s\",\"name\":\"%s\",\"peer\":\"%s\",\"reason\":\"%s\","
                          "\"bytes_from_name\":%llu,\"bytes_from_peer\":%llu,"
                          "\"packets_from_name\":%llu,\"packets_from_peer\":%llu,"
                          "\"dropped\":%llu",
                          session, pa->name, pb->name, ev->reason,
                          (unsigned long long)ev->bytes[0], (unsigned long long)ev->bytes[1],
                          (unsigned long long)ev->packets[0], (unsigned long long)ev->packets[1],
                          (unsigned long long)ev->dropped);
        break;
    case PUNCH_RV_EVENT_LOOKUP:
    case PUNCH_RV_EVENT_MOVED:
    case PUNCH_RV_EVENT_RELAYED:
        break; /* the cluster's (cluster_redis.c) */
    }
}

/* Send what the rendezvous service queued and write its events. hint:
 * the socket just read (its datagram is in d->rx), else NULL. */
static void drain_rendezvous(punchd *d, sock *hint)
{
    const uint8_t *buf; /* a relayed datagram: still where it was received */
    punch_rendezvous_out out;
    while (punch_rendezvous_poll_transmit_view(d->rv, &out, &buf) == 1) {
        if (d->tcp && punch_tcp_server_send(d->tcp, &out.dst, buf, out.len) != 0)
            continue; /* the peer is on TCP: sent there, or dropped and counted */
        sock *s = sock_for(d, hint, &out.local, &out.dst);
        if (!s) {
            d->send_dropped++;
            continue;
        }
        const punch_addr *src = punch_addr_is_any(&s->bound) && out.local.family ? &out.local
                                                                                 : NULL;
        if (out.in_place && hint)
            queue_in_place(d, s, &out.dst, src, buf, out.len);
        else
            queue_datagram(d, s, &out.dst, src, buf, out.len);
    }
    punch_rendezvous_event ev;
    while (punch_rendezvous_poll_event(d->rv, &ev) == 1)
        if (!d->cluster || !punchd_cluster_on_event(d->cluster, &ev))
            emit_rendezvous_event(d, &ev);
}

static void on_timer(void *arg, uint64_t now_ms);

static void arm_timer(punchd *d)
{
    uint64_t t = punch_rendezvous_next_timeout(d->rv);
    if (d->tcp) {
        uint64_t tcp = punch_tcp_server_next_timeout(d->tcp);
        t = tcp < t ? tcp : t;
    }
    punch_loop_timer_set(d->loop, d->timer, t);
}

static void on_timer(void *arg, uint64_t now_ms)
{
    punchd *d = arg;
    if (d->tcp)
        punch_tcp_server_handle_timeout(d->tcp, now_ms);
    punch_rendezvous_handle_timeout(d->rv, now_ms);
    drain_rendezvous(d, NULL);
    flush_tx(d);
    arm_timer(d);
}

static void on_readable(void *arg, int fd)
{
    punchd *d = arg;
    sock *s = NULL;
    for (size_t i = 0; i < d->n_socks && !s; i++)
        if (d->socks[i].fd == fd)
            s = &d->socks[i];
    for (int round = 0; round < ROUNDS_PER_WAKEUP; round++) {
        int n = punch_udp_recv(fd, d->rx, &s->bound);
        if (n <= 0) {
            if (n < 0)
                punch_log(PUNCH_LOG_DEBUG, "receive: %s", strerror(errno));
            break;
        }
        punch_binding_in in = {.now_ms = punch_clock_ms(), .group = s->group,
                               .ip = s->ip, .port = s->port};
        for (int i = 0; i < n; i++) {
            punch_udp_received(d->rx, (unsigned)i, &in.data, &in.len, &in.src, &in.dst);
            /* Demultiplex by the first byte (msg.h, RFC 7983). */
            if (punch_msg_is_msg(in.data, in.len)) {
                if (s->second)
                    continue; /* the second port answers STUN only */
                if (d->tcp && punch_tcp_server_holds(d->tcp, &in.src)) {
                    d->tcp_clash++;
                    continue;
                }
                punch_rendezvous_handle(d->rv, in.now_ms, &in.src, &in.dst, in.data, in.len);
                drain_rendezvous(d, s);
            } else {
                answer(d, s, &in);
            }
        }
        flush_tx(d);
        if (n < PUNCH_UDP_BATCH)
            break;
    }
    arm_timer(d);
}

/* A frame from a TCP connection: a datagram from its remote address. */
static void on_tcp_frame(void *arg, uint64_t now_ms, const punch_addr *src,
                         const punch_addr *local, const uint8_t *data, size_t len)
{
    punchd *d = arg;
    if (punch_msg_is_msg(data, len)) {
        punch_rendezvous_handle(d->rv, now_ms, src, local, data, len);
        drain_rendezvous(d, NULL);
        return;
    }
    /* STUN Binding over TCP: the answer goes back on the connection. What
     * needs another address or port (CHANGE-REQUEST) cannot go there. */
    sock *s = sock_for(d, NULL, local, src);
    if (!s)
        return;
    punch_binding_in in = {.now_ms = now_ms, .group = s->group, .ip = s->ip, .port = s->port,
                           .src = *src, .dst = *local, .data = data, .len = len};
    uint8_t reply[PUNCH_UDP_MTU];
    punch_binding_out out;
    if (punch_binding_handle(d->srv, &in, reply, sizeof(reply), &out) != 1)
        return;
    if (out.changed || !punch_addr_equal(&out.dst, src) ||
        punch_tcp_server_send(d->tcp, src, reply, out.len) != 1)
        d->send_dropped++;
}

static void on_tcp_ready(void *arg, int fd)
{
    (void)fd;
    punchd *d = arg;
    punch_tcp_server_run(d->tcp, punch_clock_ms());
    flush_tx(d);
    arm_timer(d);
}

/* received, malformed, rate_limited and no_room add up both services;
 * answered, errors, not_request and unsupported are STUN's; the rest the
 * rendezvous service's (see punch_rendezvous_counters). */
static void emit_counters(punchd *d, const char *event)
{
    const punch_binding_counters *c = punch_binding_counters_get(d->srv);
    const punch_rendezvous_counters *r = punch_rendezvous_counters_get(d->rv);
    typedef unsigned long long ull;
    ull received = c->received + r->received, malformed = c->malformed + r->malformed;
    ull rate_limited = c->rate_limited + r->rate_limited, no_room = c->no_room + r->no_room;
    ull refused = 0;
    for (size_t i = 0; i < sizeof(r->refused) / sizeof(r->refused[0]); i++)
        refused += r->refused[i];
    /* TCP's counters (none with --no-tcp) join the same event. */
    char tcp[512] = "";
    if (d->tcp) {
        const punch_tcp_server_counters *t = punch_tcp_server_counters_get(d->tcp);
        snprintf(tcp, sizeof(tcp),
                 ",\"tcp_connections\":%llu,\"tcp_accepted\":%llu,\"tcp_refused_full\":%llu,"
                 "\"tcp_rate_limited\":%llu,\"tcp_refused_per_ip\":%llu,"
                 "\"tcp_closed\":%llu,\"tcp_idle_closed\":%llu,"
                 "\"tcp_bad_frames\":%llu,\"tcp_truncated\":%llu,\"tcp_errors\":%llu,"
                 "\"tcp_frames_in\":%llu,\"tcp_frames_out\":%llu,\"tcp_out_dropped\":%llu,"
                 "\"tcp_clash\":%llu",
                 (ull)t->connections, (ull)t->accepted, (ull)t->refused_full,
                 (ull)t->rate_limited, (ull)t->refused_per_ip, (ull)t->closed,
                 (ull)t->idle_closed, (ull)t->bad_frames,
                 (ull)t->truncated, (ull)t->errors, (ull)t->frames_in, (ull)t->frames_out,
                 (ull)t->out_dropped, (ull)d->tcp_clash);
    }
    char cluster[768] = ""; /* --cluster's, likewise */
    if (d->cluster)
        punchd_cluster_format_counters(d->cluster, cluster, sizeof(cluster));
    char tokens[160];
    snprintf(tokens, sizeof(tokens),
             ",\"token_accepted\":%llu,\"token_bad\":%llu,\"token_expired\":%llu,"
             "\"token_replayed\":%llu",
             (ull)r->token_accepted, (ull)r->token_bad, (ull)r->token_expired,
             (ull)r->token_replayed);
    punch_events_emit(
        d->events, event,
        "\"received\":%llu,\"answered\":%llu,\"errors\":%llu,"
        "\"malformed\":%llu,\"not_request\":%llu,\"unsupported\":%llu,"
        "\"rate_limited\":%llu,\"no_room\":%llu,\"send_dropped\":%llu,"
        "\"peers\":%llu,\"sessions\":%llu,\"cookies\":%llu,\"registrations\":%llu,"
        "\"introductions\":%llu,\"reintroductions\":%llu,\"relayed_told\":%llu,\"refused\":%llu,\"refused_cookie\":%llu,"
        "\"refused_name_taken\":%llu,\"refused_no_peer\":%llu,"
        "\"refused_key_mismatch\":%llu,\"refused_full\":%llu,"
        "\"refused_not_registered\":%llu,\"unexpected\":%llu,\"bad_mac\":%llu,"
        "\"bad_cookie\":%llu,\"peers_added\":%llu,\"peers_expired\":%llu,"
        "\"sessions_opened\":%llu,\"sessions_full\":%llu,\"sessions_closed\":%llu,"
        "\"relayed\":%llu,\"relayed_bytes\":%llu,\"relay_unknown\":%llu,"
        "\"relay_wrong_source\":%llu,\"relay_over_quota\":%llu,\"events_dropped\":%llu%s%s%s",
        received, (ull)c->answered, (ull)c->errors, malformed, (ull)c->not_request,
        (ull)c->unsupported, rate_limited, no_room, (ull)d->send_dropped, (ull)r->peers,
        (ull)r->sessions, (ull)r->cookies, (ull)r->registrations, (ull)r->introductions,
        (ull)r->reintroductions, (ull)r->relayed_told, refused,
        (ull)r->refused[PUNCH_REFUSED_COOKIE], (ull)r->refused[PUNCH_REFUSED_NAME_TAKEN],
        (ull)r->refused[PUNCH_REFUSED_NO_PEER], (ull)r->refused[PUNCH_REFUSED_KEY_MISMATCH],
        (ull)r->refused[PUNCH_REFUSED_FULL], (ull)r->refused[PUNCH_REFUSED_NOT_REGISTERED],
        (ull)r->unexpected, (ull)r->bad_mac, (ull)r->bad_cookie, (ull)r->peers_added,
        (ull)r->peers_expired, (ull)r->sessions_opened, (ull)r->sessions_full,
        (ull)r->sessions_closed, (ull)r->relayed, (ull)r->relayed_bytes, (ull)r->relay_unknown,
        (ull)r->relay_wrong_source, (ull)r->relay_over_quota, (ull)r->events_dropped, tokens, tcp,
        cluster);
    punch_log(PUNCH_LOG_INFO,
              "%llu received, %llu answered, %llu errors, %llu malformed, %llu rate-limited; "
              "%llu peers, %llu registrations, %llu introductions, %llu relayed",
              received, (ull)c->answered, (ull)c->errors, malformed, rate_limited,
              (ull)r->peers, (ull)r->registrations, (ull)r->introductions, (ull)r->relayed);
}

/* SIGHUP: the config file again under the same command line. log-level
 * and events apply now (the events file is reopened even when its name is
 * the same: log rotation moved it); other changed keys are named for the
 * next start. Registrations, sessions and sockets stay as they are. A bad
 * file keeps the running settings. */
static void reload(punchd *d)
{
    static const char *const live_keys[] = {"log-level", "events", NULL};
    punchd_options o;
    punchd_config *config;
    punchd_notify("RELOADING=1");
    if (punchd_options_read(&d->src, &o, &config) != 0) {
        punch_log(PUNCH_LOG_ERROR, "SIGHUP: %s not applied; the settings stay as they were",
                  d->src.config_path);
    } else {
        punch_log_init("punchd", o.log_level);
        if (punch_events_reopen(&d->events, o.events) != 0)
            punch_log(PUNCH_LOG_ERROR, "SIGHUP: cannot open events file '%s': %s (the one "
                      "open stays)", o.events, strerror(errno));
        punchd_config_report_changes(d->config, config, live_keys);
        punchd_config_free(d->config);
        d->config = config;
        punch_log(PUNCH_LOG_INFO, "SIGHUP: settings read again%s%s, events file reopened",
                  d->config ? " from " : "", d->config ? d->config->path : "");
        punch_events_emit(d->events, "reloaded", "\"peers\":%llu",
                          (unsigned long long)punch_rendezvous_counters_get(d->rv)->peers);
    }
    punchd_notify("READY=1");
}

static void on_signal(void *arg, int signo)
{
    punchd *d = arg;
    if (signo == SIGUSR1)
        emit_counters(d, "counters");
    else if (signo == SIGHUP)
        reload(d);
    else
        punch_loop_stop(d->loop);
}

static void emit_started(punchd *d)
{
    char list[MAX_SOCKS * (PUNCH_ADDR_STRLEN + 3)] = "", text[PUNCH_ADDR_STRLEN];
    char second[MAX_SOCKS * (PUNCH_ADDR_STRLEN + 3)] = "";
    char tcp[MAX_SOCKS * (PUNCH_ADDR_STRLEN + 3)] = "";
    size_t used = 0, used_second = 0, used_tcp = 0;
    for (size_t i = 0; i < d->n_socks; i++) {
        char *to = d->socks[i].second ? second : list;
        size_t *at = d->socks[i].second ? &used_second : &used;
        *at += (size_t)snprintf(to + *at, sizeof(list) - *at, "%s\"%s\"", *at ? "," : "",
                                punch_addr_format(&d->socks[i].bound, text));
        punch_log(PUNCH_LOG_INFO, "listening on %s%s", text,
                  d->socks[i].second ? " (STUN, second port)" : "");
        if (!d->tcp || d->socks[i].second)
            continue;
        used_tcp += (size_t)snprintf(tcp + used_tcp, sizeof(tcp) - used_tcp, "%s\"%s\"",
                                     used_tcp ? "," : "",
                                     punch_addr_format(&d->tcp_bound[i], text));
        punch_log(PUNCH_LOG_INFO, "listening on TCP %s", text);
    }
    char key[PUNCH_KEY_B64_LEN];
    punch_key_encode(punch_rendezvous_public_key(d->rv), key);
    punch_log(PUNCH_LOG_INFO, "server key %s", key);
    if (d->src.config_path)
        punch_log(PUNCH_LOG_INFO, "settings from %s, then the command line", d->src.config_path);
    else
        punch_log(PUNCH_LOG_INFO, "settings from the command line only (no --config)");
    punch_events_emit(d->events, "started",
                      "\"version\":\"%s\",\"listen\":[%s],\"second\":[%s],\"tcp\":[%s],"
                      "\"key\":\"%s\"%s",
                      punch_version(), list, second, tcp, key, d->metrics_field);
}

static void random_bytes(void *arg, uint8_t *buf, size_t len)
{
    (void)arg;
    /* getrandom() on Linux >= 3.17 does not fail once the pool is ready;
     * an error here leaves no safe way on. */
    if (punch_random_bytes(buf, len) != 0)
        abort();
}

/* The server key (--key, else a new one), secrets, and the service. */
static int setup_rendezvous(punchd *d, const punchd_options *o, const punch_binding_cfg *stun)
{
    punch_rendezvous_cfg cfg = {
        .random = random_bytes,
        .max_peers = o->max_peers,
        .names_per_source = (uint32_t)o->names_per_source,
        .no_relay = o->no_relay,
        .relay_max_bytes = o->relay_max_bytes,
        .relay_bytes_per_s = (uint32_t)o->relay_bytes_per_s,
        .relay_packets_per_s = (uint32_t)o->relay_packets_per_s,
        .relay_source_bytes_per_s = (uint32_t)o->relay_source_bytes_per_s,
        .relay_source_packets_per_s = (uint32_t)o->relay_source_packets_per_s,
        .relay_peer_bytes_per_s = (uint32_t)o->relay_source_bytes_per_s,
        .relay_peer_packets_per_s = (uint32_t)o->relay_source_packets_per_s,
        .connects_per_target_per_s = (uint32_t)o->connects_per_target_per_s,
        .connects_per_target_burst = (uint32_t)(10 * o->connects_per_target_per_s),
        .rate = stun->rate,
        .cluster = o->has_cluster,
    };
    /* COOKIE names the second STUN port beside each server port. */
    for (size_t i = 0; i < stun->n_groups && cfg.n_second_port < PUNCH_RV_MAX_SECOND_PORTS; i++) {
        const punch_binding_group *g = &stun->groups[i];
        if (!g->has_alt && !g->has_second_port)
            continue;
        cfg.second_port[cfg.n_second_port].port = g->local[0][0].port;
        cfg.second_port[cfg.n_second_port++].second = g->local[0][1].port;
    }
    char err[PUNCH_KEYFILE_ERRLEN];
    if (o->key) {
        bool created;
        if (punch_keyfile_load_or_create(o->key, &cfg.identity, &created, err) != 0) {
            punch_log(PUNCH_LOG_ERROR, "--key: %s", err);
            return -1;
        }
        if (created)
            punch_log(PUNCH_LOG_INFO, "created a new server key in %s", o->key);
    } else {
        uint8_t secret[PUNCH_KEY_LEN];
        if (punch_random_bytes(secret, sizeof(secret)) != 0 ||
            punch_identity_from_secret(&cfg.identity, secret) != 0) {
            punch_log(PUNCH_LOG_ERROR, "no randomness: %s", strerror(errno));
            return -1;
        }
        memset(secret, 0, sizeof(secret));
        punch_log(PUNCH_LOG_INFO, "no --key: using a new server key until exit");
    }
    int rc = -1;
    if (punch_random_bytes(cfg.cookie_secret, sizeof(cfg.cookie_secret)) != 0 ||
        punch_random_bytes(cfg.hash_key, sizeof(cfg.hash_key)) != 0 ||
        punch_random_bytes(cfg.rate.hash_key, sizeof(cfg.rate.hash_key)) != 0)
        punch_log(PUNCH_LOG_ERROR, "no randomness: %s", strerror(errno));
    else if (punch_rendezvous_new(&d->rv, &cfg) != 0)
        punch_log(PUNCH_LOG_ERROR, "cannot set up the rendezvous service for %llu peers",
                  o->max_peers);
    else
        rc = 0;
    punch_identity_wipe(&cfg.identity);
    memset(cfg.cookie_secret, 0, sizeof(cfg.cookie_secret));
    return rc;
}

/* TCP on every address a UDP socket serves (the port 0 case included: the
 * same port the kernel gave UDP). Returns 0 or -1 (logged). */
static int setup_tcp(punchd *d, const punchd_options *o, const punch_ratelimit_cfg *rate)
{
    punch_tcp_server_cfg cfg = {.max_conns = o->max_tcp, .per_ip_max = o->max_tcp_per_ip,
                                .rate = *rate,
                                .on_frame = on_tcp_frame, .arg = d};
    if (punch_random_bytes(cfg.rate.hash_key, sizeof(cfg.rate.hash_key)) != 0) {
        punch_log(PUNCH_LOG_ERROR, "no randomness: %s", strerror(errno));
        return -1;
    }
    if (punch_tcp_server_new(&d->tcp, &cfg) != 0) {
        punch_log(PUNCH_LOG_ERROR, "cannot set up TCP for %llu connections", o->max_tcp);
        return -1;
    }
    char text[PUNCH_ADDR_STRLEN];
    for (size_t i = 0; i < d->n_socks; i++)
        if (!d->socks[i].second &&
            punch_tcp_server_listen(d->tcp, &d->socks[i].bound, &d->tcp_bound[i]) != 0) {
            punch_log(PUNCH_LOG_ERROR, "cannot listen on TCP %s: %s (--no-tcp serves UDP only)",
                      punch_addr_format(&d->socks[i].bound, text), strerror(errno));
            return -1;
        }
    return 0;
}

/* Bind every socket and build the Binding service. Returns 0 or -1 (logged). */
static int setup(punchd *d, const punchd_options *o)
{
    punch_binding_cfg cfg = {
        .rate = {.per_sec = (uint32_t)o->rate, .burst = (uint32_t)o->rate * 2,
                 .slots = DEFAULT_RATE_SLOTS},
    };
    for (size_t i = 0; i < o->n_listen; i++) {
        const punch_addr *alt = (int)i == o->alt_for ? &o->alt : NULL;
        if (open_group(d, &o->listen[i], alt, o->second_port, cfg.n_groups,
                       &cfg.groups[cfg.n_groups]) == 0) {
            cfg.n_groups++;
            continue;
        }
        /* A machine without IPv6 still serves IPv4 on the defaults. */
        if (!o->default_listen || o->listen[i].family != PUNCH_AF_INET6 || cfg.n_groups == 0)
            return -1;
        punch_log(PUNCH_LOG_WARN, "IPv6 not available; serving IPv4 only");
    }
    if (punch_random_bytes(cfg.rate.hash_key, sizeof(cfg.rate.hash_key)) != 0) {
        punch_log(PUNCH_LOG_ERROR, "no randomness: %s", strerror(errno));
        return -1;
    }
    if (punch_binding_new(&d->srv, &cfg) != 0 || !(d->rx = punch_udp_batch_new())) {
        punch_log(PUNCH_LOG_ERROR, "cannot set up the Binding service");
        return -1;
    }
    if (setup_rendezvous(d, o, &cfg) != 0 || (!o->no_tcp && setup_tcp(d, o, &cfg.rate) != 0))
        return -1;
    static const int signals[] = {SIGINT, SIGTERM, SIGUSR1, SIGHUP};
    if (punch_loop_new(&d->loop) != 0 ||
        punch_loop_signals(d->loop, signals, 4, on_signal, d) != 0 ||
        punch_loop_timer_add(d->loop, PUNCH_LOOP_NEVER, on_timer, d, &d->timer) != 0) {
        punch_log(PUNCH_LOG_ERROR, "cannot set up the event loop: %s", strerror(errno));
        return -1;
    }
    for (size_t i = 0; i < d->n_socks; i++)
        if (punch_loop_watch(d->loop, d->socks[i].fd, on_readable, d) != 0) {
            punch_log(PUNCH_LOG_ERROR, "cannot watch socket: %s", strerror(errno));
            return -1;
        }
    if (d->tcp && punch_loop_watch(d->loop, punch_tcp_server_fd(d->tcp), on_tcp_ready, d) != 0) {
        punch_log(PUNCH_LOG_ERROR, "cannot watch TCP: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* The cluster queued answers in the rendezvous: send them. */
static void drain_for_cluster(void *arg)
{
    punchd *d = arg;
    drain_rendezvous(d, NULL);
    flush_tx(d);
    arm_timer(d);
}

/* The port of the first socket that serves ip (bound to it, or to the
 * wildcard of its family; not a second STUN port), or 0. */
static uint16_t port_serving(const punchd *d, const punch_addr *ip)
{
    for (size_t i = 0; i < d->n_socks; i++) {
        const punch_addr *b = &d->socks[i].bound;
        if (!d->socks[i].second && b->family == ip->family &&
            (punch_addr_is_any(b) || memcmp(b->ip, ip->ip, sizeof(b->ip)) == 0) &&
            (!ip->port || ip->port == b->port))
            return b->port;
    }
    return 0;
}

/* Whether ip is an address of this host (a socket can be bound to it). */
static bool is_local_ip(const punch_addr *ip)
{
    punch_addr any_port = *ip, bound;
    any_port.port = 0;
    int fd = punch_udp_bind(&any_port, &bound);
    if (fd < 0)
        return false;
    close(fd);
    return true;
}

/* Where other members reach this one for relays across members, and the
 * source of what it relays to them: --cluster-address (its port: the
 * first --listen serving it when none is given), else the first --listen
 * address naming one IP (a wildcard names none: no relay across members).
 * Returns 0, or -1 (logged) when --cluster-address is not served here. */
static int cluster_relay_addr(const punchd *d, const punchd_options *o, punch_addr *out)
{
    *out = (punch_addr){.family = PUNCH_AF_NONE};
    if (!o->has_cluster_address) {
        for (size_t i = 0; i < d->n_socks; i++)
            if (!punch_addr_is_any(&d->socks[i].bound) && !d->socks[i].second) {
                *out = d->socks[i].bound;
                return 0;
            }
        punch_log(PUNCH_LOG_WARN, "cluster: listening on wildcards only, this member offers no "
                  "relay across members (--cluster-address names its address for that)");
        return 0;
    }
    punch_addr a = o->cluster_address;
    a.port = port_serving(d, &a);
    if (!a.port || !is_local_ip(&a)) {
        char text[PUNCH_ADDR_STRLEN];
        punch_log(PUNCH_LOG_ERROR, "--cluster-address %s: not an address of this host that a "
                  "--listen serves", punch_addr_format(&o->cluster_address, text));
        return -1;
    }
    *out = a;
    return 0;
}

/* --cluster: Redis on the loop (cluster_redis.h). Returns 0 or -1 (logged). */
static int setup_cluster(punchd *d, const punchd_options *o)
{
    if (!o->has_cluster)
        return 0;
    punchd_cluster_cfg cfg = {
        .loop = d->loop, .rv = d->rv, .events = &d->events, .redis = o->cluster_redis,
        .db = o->cluster_db, .drain = drain_for_cluster, .drain_arg = d,
        /* the rendezvous' default peer expiry: 3 keepalives + 15 s */
        .record_ttl_ms = (3u * PUNCH_RV_DEFAULT_KEEPALIVE_S + 15u) * 1000u,
    };
    int rc = cluster_relay_addr(d, o, &cfg.relay_addr);
    if (rc == 0)
        rc = punchd_cluster_read_secret(o->cluster_secret_file, cfg.secret);
    if (rc == 0)
        rc = punchd_cluster_new(&d->cluster, &cfg);
    sodium_memzero(cfg.secret, sizeof(cfg.secret));
    return rc;
}

static void teardown(punchd *d)
{
    punchd_cluster_free(d->cluster);
    for (size_t i = 0; i < d->n_socks; i++) {
        close(d->socks[i].fd);
        punch_udp_batch_free(d->socks[i].tx);
    }
    punch_udp_batch_free(d->rx);
    punchd_metrics_free(d->metrics);
    punch_loop_free(d->loop);
    punch_binding_free(d->srv);
    punch_rendezvous_free(d->rv);
    punch_tcp_server_free(d->tcp);
    punch_events_close(d->events);
    punchd_config_free(d->config);
}

static size_t render_metrics(void *arg, char *buf, size_t cap)
{
    punchd *d = arg;
    punchd_stats s = {
        .stun = punch_binding_counters_get(d->srv),
        .rv = punch_rendezvous_counters_get(d->rv),
        .tcp = d->tcp ? punch_tcp_server_counters_get(d->tcp) : NULL,
        .http = d->metrics ? punchd_metrics_counters_get(d->metrics) : NULL,
        .send_dropped = d->send_dropped,
        .tcp_clash = d->tcp_clash,
        .uptime_s = (punch_clock_ms() - d->start_ms) / 1000,
        .cluster = d->cluster,
    };
    return punchd_prometheus_render(&s, buf, cap);
}

/* --metrics on the loop; its address goes into the started event. Returns
 * 0 or -1 (logged). */
static int setup_metrics(punchd *d, const punchd_options *o)
{
    if (!o->has_metrics)
        return 0;
    char text[PUNCH_ADDR_STRLEN];
    punch_addr bound;
    if (punchd_metrics_new(&d->metrics, d->loop, &o->metrics, &bound, render_metrics, d) != 0) {
        punch_log(PUNCH_LOG_ERROR, "--metrics: cannot listen on %s: %s",
                  punch_addr_format(&o->metrics, text), strerror(errno));
        return -1;
    }
    punch_addr_format(&bound, text);
    punch_log(PUNCH_LOG_INFO, "metrics at http://%s/metrics", text);
    snprintf(d->metrics_field, sizeof(d->metrics_field), ",\"metrics\":\"%s\"", text);
    return 0;
}

int main(int argc, char **argv)
{
    punchd d = {.start_ms = punch_clock_ms()};
    punchd_source_init(&d.src, argc, argv);
    punchd_options o;
    int rc = punchd_options_read(&d.src, &o, &d.config);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    punch_log_init("punchd", o.log_level);
    punch_log_timestamps();

    if (punch_events_open(&d.events, o.events, d.start_ms) != 0) {
        fprintf(stderr, "punchd: cannot open events file '%s': %s\n", o.events, strerror(errno));
        punchd_config_free(d.config);
        return 1;
    }
    punch_events_never_block(d.events); /* a stalled reader must not stall punchd */
    rc = 1;
    if (setup(&d, &o) != 0 || setup_metrics(&d, &o) != 0 || setup_cluster(&d, &o) != 0)
        goto cleanup;
    emit_started(&d);
    if (punchd_notify("READY=1") != 0)
        punch_log(PUNCH_LOG_WARN, "NOTIFY_SOCKET: cannot tell readiness: %s", strerror(errno));
    if (punch_loop_run(d.loop) != 0) {
        punch_log(PUNCH_LOG_ERROR, "event loop failed: %s", strerror(errno));
        goto cleanup;
    }
    punchd_notify("STOPPING=1");
    emit_counters(&d, "stopped");
    rc = 0;
cleanup:
    teardown(&d);
    return rc;
}
