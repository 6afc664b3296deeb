/* SPDX-License-Identifier: MIT */
/*
 * punch ping PEER[@PUBKEY] [--count N] [--timeout S] [--relay-only|--no-relay]:
 * reach PEER as connect does, then ask it for a round trip once a second
 * (an encrypted PING on the path in use, which every punch peer answers:
 * punch_agent_ping) and say per answer how the peer is reached and how
 * fast, as `tailscale ping` does:
 *
 *   pong from bob: direct via hole-punch (203.0.113.7:40001) in 20.4 ms
 *   pong from bob: relay (198.51.100.1:3478) in 41.2 ms
 *
 * Exit 0 when at least one of the N round trips was answered, 1 when none
 * was or no path came within --timeout (30 s), 2 on a usage error. With
 * --events, each answer is also a "pong" event beside SPEC.md §3's.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_cli.h"
#include "common/cli.h"
#include "io/log.h"
#include "io/net.h"

#define PING_EVERY_MS 1000
#define DEFAULT_COUNT 5
#define DEFAULT_TIMEOUT_S 30

static const char ping_help[] =
    "usage: punch [--server HOST[:PORT]] ping PEER[@PUBKEY] [--count N] [--timeout S]\n"
    "             [--relay-only | --no-relay]\n"
    "\n"
    "Reach PEER through the server as `punch connect` does, then ask it for a\n"
    "round trip every second, N times (--count, default 5), and print how each\n"
    "answer came: 'direct via TECHNIQUE' (hole-punch, private, ...) or 'relay',\n"
    "the peer's address on that path, and the round-trip time. Exit 0 when at\n"
    "least one was answered, 1 when none was or no path came within --timeout\n"
    "seconds (default 30).\n";

typedef struct pinger {
    const punch_cli *cli;
    punch_addr server;
    char target[PUNCH_NAME_MAX + 1];
    uint8_t pinned[PUNCH_KEY_LEN];
    bool has_pin;
    char known_path[PATH_MAX];
    punch_events *events;
    punch_loop *loop;
    punch_driver *driver;
    int peer;
    unsigned count, sent, answered;
    bool waiting;               /* the latest PING has no answer yet */
    punch_loop_timer tick, give_up;
    int exit_code;
} pinger;

static void finish(pinger *p, int code)
{
    punch_agent_cli_finish(p->loop, &p->exit_code, code);
}

/* One round: say the last one went unanswered, end after N, else ask. */
static void on_tick(void *arg, uint64_t now)
{
    pinger *p = arg;
    if (p->waiting)
        printf("no answer from %s in %u ms\n", p->target, PING_EVERY_MS);
    fflush(stdout);
    if (p->sent == p->count) {
        punch_agent_cli_goodbye(p->driver, p->peer);
        finish(p, p->answered ? 0 : 1);
        return;
    }
    int rc = punch_agent_ping(punch_driver_agent(p->driver), now, p->peer);
    punch_driver_flush(p->driver);
    p->sent++;
    p->waiting = rc == 0;
    if (rc != 0)
        printf("no path to %s now: %s\n", p->target, punch_strerror(rc));
    punch_loop_timer_set(p->loop, p->tick, now + PING_EVERY_MS);
}

static void on_pong(pinger *p, const punch_event *ev)
{
    char where[PUNCH_ADDR_STRLEN], how[64];
    const punch_event_pong *pong = &ev->pong;
    p->answered++;
    p->waiting = false;
    if (pong->kind == PUNCH_PATH_RELAY)
        snprintf(how, sizeof(how), "relay");
    else
        snprintf(how, sizeof(how), "direct via %s", punch_technique_name(pong->technique));
    printf("pong from %s: %s (%s) in %.1f ms, %s\n", ev->peer_name, how,
           punch_addr_format(&pong->remote, where), pong->rtt_us / 1000.0,
           punch_cipher_name(pong->cipher));
    fflush(stdout);
    punch_events_emit(p->events, "pong",
                      "\"peer\":\"%s\",\"kind\":\"%s\",\"technique\":\"%s\",\"remote\":\"%s\","
                      "\"family\":\"%s\",\"rtt_ms\":%.1f,\"cipher\":\"%s\"",
                      ev->peer_name, punch_path_kind_name(pong->kind),
                      punch_technique_name(pong->technique), where,
                      punch_family_name(pong->remote.family), pong->rtt_us / 1000.0,
                      punch_cipher_name(pong->cipher));
}

static void on_event(void *arg, punch_driver *d, const punch_event *ev)
{
    pinger *p = arg;
    punch_agent_cli_report(p->events, &p->server, d, ev); /* events and log lines */
    if (ev->peer != p->peer || p->peer < 0)
        return;
    switch (ev->kind) {
    case PUNCH_EVENT_INTRODUCED:
        if (!p->has_pin && !punch_agent_cli_trust(p->known_path, ev)) {
            punch_agent_close(punch_driver_agent(d), punch_clock_ms(), ev->peer);
            finish(p, 1);
        }
        break;
    case PUNCH_EVENT_PATH:
        /* The first path starts the rounds; later ones are used as they come. */
        if (p->sent == 0 && punch_loop_timer_deadline(p->loop, p->tick) == PUNCH_LOOP_NEVER)
            punch_loop_timer_set(p->loop, p->tick, punch_clock_ms());
        punch_loop_timer_del(p->loop, p->give_up);
        p->give_up = 0;
        break;
    case PUNCH_EVENT_PONG: on_pong(p, ev); break;
    case PUNCH_EVENT_CLOSED:
        fprintf(stderr, "punch ping: %s: %s\n", ev->peer_name, ev->closed.why);
        finish(p, p->answered ? 0 : 1);
        break;
    default: break;
    }
}

static void on_give_up(void *arg, uint64_t now)
{
    (void)now;
    pinger *p = arg;
    fprintf(stderr, "punch ping: no path to %s found in time\n", p->target);
    finish(p, 1);
}

static void on_signal(void *arg, int signo)
{
    (void)signo;
    pinger *p = arg;
    punch_agent_cli_goodbye(p->driver, p->peer);
    finish(p, p->answered ? 0 : 1);
}

static int run(pinger *p, uint32_t flags, int timeout_s)
{
    static const int signals[] = {SIGINT, SIGTERM};
    punch_agent_cli_setup su = {.cmd = "punch ping", .flags = flags, .signals = signals,
                                .n_signals = 2, .on_signal = on_signal, .on_event = on_event,
                                .arg = p, .known_path = p->known_path, .events = &p->events,
                                .loop = &p->loop, .driver = &p->driver};
    int rc = punch_agent_cli_server(p->cli, "punch ping", &p->server);
    if (rc != 0)
        return rc;
    p->peer = -1;
    p->exit_code = 1;
    if (punch_agent_cli_start(p->cli, &p->server, &su) != 0)
        goto done;
    uint64_t now = punch_clock_ms();
    if (punch_loop_timer_add(p->loop, PUNCH_LOOP_NEVER, on_tick, p, &p->tick) != 0 ||
        punch_loop_timer_add(p->loop, now + 1000u * (uint64_t)timeout_s, on_give_up, p,
                             &p->give_up) != 0) {
        fprintf(stderr, "punch ping: cannot set a timer: %s\n", strerror(errno));
        goto done;
    }
    p->peer = punch_agent_connect(punch_driver_agent(p->driver), now, p->target,
                                  p->has_pin ? p->pinned : NULL);
    punch_driver_flush(p->driver);
    if (p->peer < 0) {
        fprintf(stderr, "punch ping: cannot ask for %s: %s\n", p->target,
                punch_strerror(p->peer));
        goto done;
    }
    if (punch_loop_run(p->loop) != 0)
        fprintf(stderr, "punch ping: event loop failed: %s\n", strerror(errno));
done:
    punch_agent_cli_stop(&su);
    return p->exit_code;
}

/* --count N (1 to 100000). Returns 0 or 2. */
static int parse_count(const char *text, unsigned *count)
{
    char *end;
    errno = 0;
    long n = strtol(text, &end, 10);
    if (*text == '\0' || *end || errno || n < 1 || n > 100000)
        return punch_cli_usage_error("punch ping", "--count: '%s' is not 1 to 100000", text);
    *count = (unsigned)n;
    return 0;
}

int punch_cmd_ping(const punch_cli *cli, int argc, char **argv)
{
    static const struct option longs[] = {
        {"count", required_argument, NULL, 'c'},  {"timeout", required_argument, NULL, 'T'},
        {"relay-only", no_argument, NULL, 'r'},   {"no-direct", no_argument, NULL, 'r'},
        {"no-relay", no_argument, NULL, 'n'},     {"help", no_argument, NULL, 'h'},
        {0},
    };
    pinger p = {.cli = cli, .count = DEFAULT_COUNT};
    uint32_t flags = 0;
    int timeout_s = DEFAULT_TIMEOUT_S, c, rc = 0;
    opterr = 0;
    while (rc == 0 && (c = getopt_long(argc, argv, ":", longs, NULL)) != -1) {
        switch (c) {
        case 'c': rc = parse_count(optarg, &p.count); break;
        case 'T': rc = punch_agent_cli_timeout("punch ping", optarg, &timeout_s); break;
        case 'r': flags |= PUNCH_AGENT_RELAY_ONLY; break;
        case 'n': flags |= PUNCH_AGENT_NO_RELAY; break;
        case 'h': fputs(ping_help, stdout); return 0;
        case ':': return punch_cli_usage_error("punch ping", "%s needs a value", argv[optind - 1]);
        default: return punch_cli_usage_error("punch ping", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (rc != 0)
        return rc;
    if ((flags & PUNCH_AGENT_RELAY_ONLY) && (flags & PUNCH_AGENT_NO_RELAY))
        return punch_cli_usage_error("punch ping", "--relay-only and --no-relay exclude each other");
    if (optind != argc - 1)
        return punch_cli_usage_error("punch ping", optind < argc ? "unexpected argument '%s'"
                                                                 : "which peer? give PEER%s",
                                     optind < argc ? argv[optind + 1] : "[@PUBKEY]");
    if ((rc = punch_agent_cli_target("punch ping", argv[optind], p.target, p.pinned,
                                     &p.has_pin)) != 0)
        return rc;
    return run(&p, flags, timeout_s);
}
