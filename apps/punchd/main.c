/*
 * punchd: the public server. Today: the STUN Binding service (RFC 8489, and
 * RFC 5780 behaviour discovery with --alt). The protocol logic lives in
 * src/server (sans-I/O); this file parses arguments and drives sockets.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/cli.h"
#include "io/events.h"
#include "io/log.h"
#include "io/loop.h"
#include "io/net.h"
#include "server/binding.h"

#define MAX_LISTEN PUNCH_BINDING_MAX_GROUPS
#define MAX_SOCKS (MAX_LISTEN * 4)
#define DEFAULT_PORT 3478            /* RFC 8489 §18.6 */
#define DEFAULT_RATE_PER_SEC 200     /* Binding answers per source IP */
#define DEFAULT_RATE_SLOTS 65536     /* sources tracked at once */
/* Receive batches handled per wakeup and socket before the others get a turn. */
#define ROUNDS_PER_WAKEUP 8

typedef struct sock {
    int fd;
    size_t group;
    int ip, port;
    punch_addr bound;
    punch_udp_batch *tx;
} sock;

typedef struct punchd {
    punch_loop *loop;
    punch_binding_server *srv;
    punch_events *events;
    punch_udp_batch *rx;
    size_t n_socks;
    sock socks[MAX_SOCKS];
    int sock_of[MAX_LISTEN][2][2]; /* group, ip, port -> socks[] index */
    uint64_t send_dropped;
} punchd;

typedef struct options {
    size_t n_listen;
    punch_addr listen[MAX_LISTEN];
    bool has_alt;
    punch_addr alt;
    const char *alt_text;
    bool default_listen; /* no --listen given: 0.0.0.0 and :: */
    int alt_for;      /* index of the --listen that --alt pairs with, or -1 */
    const char *events;
    int log_level;
    unsigned long rate;
} options;

static const char usage_text[] =
    "usage: punchd [--listen ADDR:PORT]... [--alt ADDR] [--events FILE|-]\n"
    "              [--log-level LEVEL] [--rate-limit N]\n"
    "\n"
    "The public server of punch: answers STUN Binding requests (RFC 8489) so\n"
    "peers learn their public address, and with --alt the RFC 5780 NAT\n"
    "behaviour discovery that `punch natcheck` uses.\n"
    "\n"
    "  --listen ADDR:PORT   address to serve on; repeat for more (IPv4 and IPv6).\n"
    "                       Default: 0.0.0.0:3478 and [::]:3478. Port 0 picks one.\n"
    "  --alt ADDR           a second local IP of the same family as the first\n"
    "                       --listen, which must then be a concrete address. punchd\n"
    "                       also serves on PORT+1 of both IPs, so CHANGE-REQUEST,\n"
    "                       OTHER-ADDRESS and RESPONSE-ORIGIN work (RFC 5780).\n"
    "  --events FILE|-      write one JSON event per line (started, counters,\n"
    "                       stopped); - is stdout\n"
    "  --log-level LEVEL    error, warn, info (default) or debug\n"
    "  --rate-limit N       Binding answers per second per source IP (IPv6: per\n"
    "                       /64); default 200, 0 turns the limit off\n"
    "  --help, --version\n"
    "\n"
    "Signals: SIGINT/SIGTERM stop cleanly; SIGUSR1 writes the counters.\n";

#define usage_error(...) punch_cli_usage_error("punchd", __VA_ARGS__)

/* Returns 0 to run, 2 on a usage error, -1 when --help/--version was served. */
static int parse_options(int argc, char **argv, options *o)
{
    static const struct option longs[] = {
        {"listen", required_argument, NULL, 'l'},
        {"alt", required_argument, NULL, 'a'},
        {"events", required_argument, NULL, 'e'},
        {"log-level", required_argument, NULL, 'L'},
        {"rate-limit", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {0},
    };
    *o = (options){.log_level = PUNCH_LOG_INFO, .rate = DEFAULT_RATE_PER_SEC, .alt_for = -1};
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":", longs, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'l':
            if (o->n_listen == MAX_LISTEN)
                return usage_error("--listen: at most 8 addresses (%s is one too many)", optarg);
            if (punch_addr_parse(optarg, DEFAULT_PORT, &o->listen[o->n_listen]) != 0)
                return usage_error("--listen: '%s' is not an address (IP:PORT or [IPv6]:PORT)", optarg);
            o->n_listen++;
            break;
        case 'a':
            if (punch_addr_parse(optarg, 0, &o->alt) != 0 || o->alt.port != 0 ||
                punch_addr_is_any(&o->alt))
                return usage_error("--alt: '%s' is not a local IP address (no port)", optarg);
            o->has_alt = true;
            o->alt_text = optarg;
            break;
        case 'e':
            o->events = optarg;
            break;
        case 'L':
            if ((o->log_level = punch_log_level_parse(optarg)) < 0)
                return usage_error("--log-level: '%s' is not one of error, warn, info, debug", optarg);
            break;
        case 'r':
            errno = 0;
            o->rate = strtoul(optarg, &end, 10);
            if (*optarg < '0' || *optarg > '9' || *end || errno || o->rate > 10000000)
                return usage_error("--rate-limit: '%s' is not a number from 0 to 10000000", optarg);
            break;
        case 'h':
            fputs(usage_text, stdout);
            return -1;
        case 'V':
            printf("punchd %s\n", punch_version());
            return -1;
        case ':':
            return usage_error("%s needs a value", argv[optind - 1]);
        default:
            return usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument '%s'", argv[optind]);
    if (o->n_listen == 0) {
        punch_addr_parse("0.0.0.0", DEFAULT_PORT, &o->listen[0]);
        punch_addr_parse("::", DEFAULT_PORT, &o->listen[1]);
        o->n_listen = 2;
        o->default_listen = true;
    }
    return 0;
}

static int add_sock(punchd *d, const punch_addr *a, size_t group, int ip, int port)
{
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

/* One group of sockets: the listen address alone, or with an alternate IP
 * the four of RFC 5780 (both IPs x the port and the next one). */
static int open_group(punchd *d, const punch_addr *listen, const punch_addr *alt,
                      size_t group, punch_binding_group *g)
{
    if (add_sock(d, listen, group, 0, 0) != 0)
        return -1;
    g->local[0][0] = d->socks[d->n_socks - 1].bound;
    if (!alt)
        return 0;
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

/* --alt pairs with the first --listen of its family, which must be concrete.
 * Sets o->alt_for to that --listen's index. Returns 0 or 2 (usage error). */
static int check_alt(options *o)
{
    char text[PUNCH_ADDR_STRLEN];
    if (!o->has_alt)
        return 0;
    for (size_t i = 0; i < o->n_listen; i++) {
        if (o->listen[i].family != o->alt.family)
            continue;
        if (punch_addr_is_any(&o->listen[i]))
            return usage_error("--alt needs a concrete --listen address of its family, not %s",
                               punch_addr_format(&o->listen[i], text));
        if (o->listen[i].port == 65535)
            return usage_error("--alt serves on PORT+1: --listen %s leaves no room",
                               punch_addr_format(&o->listen[i], text));
        o->alt_for = (int)i;
        return 0;
    }
    return usage_error("--alt %s has no --listen address of the same family", o->alt_text);
}

static void flush_tx(punchd *d)
{
    for (size_t i = 0; i < d->n_socks; i++)
        if (punch_udp_queued(d->socks[i].tx))
            d->send_dropped += punch_udp_send(d->socks[i].fd, d->socks[i].tx);
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
    const punch_addr *src = out.changed ? NULL : &in->dst;
    uint8_t *slot = punch_udp_queue(from->tx, &out.dst, src);
    if (!slot) {
        d->send_dropped += punch_udp_send(from->fd, from->tx);
        slot = punch_udp_queue(from->tx, &out.dst, src);
    }
    memcpy(slot, reply, out.len);
    punch_udp_queue_len(from->tx, out.len);
}

static void on_readable(void *arg, int fd)
{
    punchd *d = arg;
    const sock *s = NULL;
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
            answer(d, s, &in);
        }
        flush_tx(d);
        if (n < PUNCH_UDP_BATCH)
            break;
    }
}

static void emit_counters(punchd *d, const char *event)
{
    const punch_binding_counters *c = punch_binding_counters_get(d->srv);
    punch_events_emit(d->events, event,
                      "\"received\":%llu,\"answered\":%llu,\"errors\":%llu,"
                      "\"malformed\":%llu,\"not_request\":%llu,\"unsupported\":%llu,"
                      "\"rate_limited\":%llu,\"no_room\":%llu,\"send_dropped\":%llu",
                      (unsigned long long)c->received, (unsigned long long)c->answered,
                      (unsigned long long)c->errors, (unsigned long long)c->malformed,
                      (unsigned long long)c->not_request, (unsigned long long)c->unsupported,
                      (unsigned long long)c->rate_limited, (unsigned long long)c->no_room,
                      (unsigned long long)d->send_dropped);
    punch_log(PUNCH_LOG_INFO,
              "%llu received, %llu answered, %llu errors, %llu malformed, %llu rate-limited",
              (unsigned long long)c->received, (unsigned long long)c->answered,
              (unsigned long long)c->errors, (unsigned long long)c->malformed,
              (unsigned long long)c->rate_limited);
}

static void on_signal(void *arg, int signo)
{
    punchd *d = arg;
    if (signo == SIGUSR1)
        emit_counters(d, "counters");
    else
        punch_loop_stop(d->loop);
}

static void emit_started(punchd *d)
{
    char list[MAX_SOCKS * (PUNCH_ADDR_STRLEN + 3)] = "", text[PUNCH_ADDR_STRLEN];
    size_t used = 0;
    for (size_t i = 0; i < d->n_socks; i++) {
        used += (size_t)snprintf(list + used, sizeof(list) - used, "%s\"%s\"", i ? "," : "",
                                 punch_addr_format(&d->socks[i].bound, text));
        punch_log(PUNCH_LOG_INFO, "listening on %s", text);
    }
    punch_events_emit(d->events, "started", "\"version\":\"%s\",\"listen\":[%s]",
                      punch_version(), list);
}

/* Bind every socket and build the Binding service. Returns 0 or -1 (logged). */
static int setup(punchd *d, const options *o)
{
    punch_binding_cfg cfg = {
        .rate = {.per_sec = (uint32_t)o->rate, .burst = (uint32_t)o->rate * 2,
                 .slots = DEFAULT_RATE_SLOTS},
    };
    for (size_t i = 0; i < o->n_listen; i++) {
        const punch_addr *alt = (int)i == o->alt_for ? &o->alt : NULL;
        if (open_group(d, &o->listen[i], alt, cfg.n_groups, &cfg.groups[cfg.n_groups]) == 0) {
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
    static const int signals[] = {SIGINT, SIGTERM, SIGUSR1};
    if (punch_loop_new(&d->loop) != 0 ||
        punch_loop_signals(d->loop, signals, 3, on_signal, d) != 0) {
        punch_log(PUNCH_LOG_ERROR, "cannot set up the event loop: %s", strerror(errno));
        return -1;
    }
    for (size_t i = 0; i < d->n_socks; i++)
        if (punch_loop_watch(d->loop, d->socks[i].fd, on_readable, d) != 0) {
            punch_log(PUNCH_LOG_ERROR, "cannot watch socket: %s", strerror(errno));
            return -1;
        }
    return 0;
}

static void teardown(punchd *d)
{
    for (size_t i = 0; i < d->n_socks; i++) {
        close(d->socks[i].fd);
        punch_udp_batch_free(d->socks[i].tx);
    }
    punch_udp_batch_free(d->rx);
    punch_loop_free(d->loop);
    punch_binding_free(d->srv);
    punch_events_close(d->events);
}

int main(int argc, char **argv)
{
    uint64_t start_ms = punch_clock_ms();
    options o;
    int rc = parse_options(argc, argv, &o);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if ((rc = check_alt(&o)) != 0)
        return rc;
    punch_log_init("punchd", o.log_level);

    punchd d = {0};
    if (punch_events_open(&d.events, o.events, start_ms) != 0) {
        fprintf(stderr, "punchd: cannot open events file '%s': %s\n", o.events, strerror(errno));
        return 1;
    }
    rc = 1;
    if (setup(&d, &o) != 0)
        goto cleanup;
    emit_started(&d);
    if (punch_loop_run(d.loop) != 0) {
        punch_log(PUNCH_LOG_ERROR, "event loop failed: %s", strerror(errno));
        goto cleanup;
    }
    emit_counters(&d, "stopped");
    rc = 0;
cleanup:
    teardown(&d);
    return rc;
}
