/*
 * punch listen / punch connect: one agent (through the I/O driver), stdin
 * to the peer and the peer to stdout, one datagram per read (like nc -u).
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "crypto/identity.h"
#include "io/cli.h"
#include "io/driver.h"
#include "agent_cli.h"
#include "io/events.h"
#include "io/keyfile.h"
#include "io/known_peers.h"
#include "io/log.h"
#include "io/net.h"
#include "punch_cli.h"
#include "wire/msg.h"

#define DEFAULT_PORT 3478

typedef struct session {
    const punch_cli *cli;
    bool listening, keep_open;
    const char *want_name;        /* connect: the peer asked for */
    uint8_t pinned[PUNCH_KEY_LEN];
    bool has_pin;
    char known_path[PATH_MAX];
    punch_loop *loop;
    punch_driver *driver;
    punch_events *events;
    punch_addr server;
    int peer;                     /* the peer stdin goes to, -1 none */
    bool have_path, stdin_watched;
    int timeout_fd;
    int exit_code;
} session;

static const char listen_help[] =
    "usage: punch [--server HOST[:PORT]] [--name NAME] listen [--keep-open]\n"
    "             [--no-relay] [--relay-only] [--timeout SECONDS]\n"
    "\n"
    "Register at the server as NAME (default: this host's name) and wait. The\n"
    "first peer that connects is piped to stdin/stdout, one datagram per read\n"
    "(like nc -u -l); --keep-open accepts more peers (stdin goes to the latest).\n";

static const char connect_help[] =
    "usage: punch [--server HOST[:PORT]] connect PEER[@PUBKEY] [--no-relay]\n"
    "             [--relay-only | --no-direct] [--tcp] [--timeout SECONDS]\n"
    "\n"
    "Reach PEER through the server: directly when the network allows it, through\n"
    "the server's relay when not (until a direct path is found). stdin goes to\n"
    "the peer, one datagram per read, and the peer's datagrams to stdout.\n"
    "With @PUBKEY only that key is accepted; without it the peer's key is learned\n"
    "from the server the first time and must match afterwards (known_peers).\n"
    "--tcp asks for a TCP path too, once a first path is up, and prefers it: TCP\n"
    "simultaneous open through both NATs, or a connection from the side behind a\n"
    "NAT to the public one (reversal); without it TCP is used only to reach the\n"
    "server where UDP is blocked.\n"
    "--timeout gives up when no path is found in time (exit 1).\n";

static void finish(session *s, int code)
{
    s->exit_code = code;
    punch_loop_stop(s->loop);
}

static const char *fmt(const punch_addr *a, char buf[PUNCH_ADDR_STRLEN])
{
    return a->family ? punch_addr_format(a, buf) : "";
}

static void on_stdin(void *arg, int fd)
{
    session *s = arg;
    uint8_t buf[PUNCH_MAX_DATAGRAM];
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    punch_agent *a = punch_driver_agent(s->driver);
    if (n <= 0) {
        /* End of input: say goodbye and leave. */
        if (s->peer >= 0)
            punch_agent_close(a, punch_clock_ms(), s->peer);
        punch_driver_flush(s->driver);
        finish(s, 0);
        return;
    }
    int rc = punch_agent_send(a, punch_clock_ms(), s->peer, buf, (size_t)n);
    if (rc != 0)
        punch_log(PUNCH_LOG_WARN, "datagram of %zd bytes not sent: %s", n, punch_strerror(rc));
    punch_driver_flush(s->driver);
}

static void write_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        p += n;
        len -= (size_t)n;
    }
}

/* Trust on first use (SPEC.md §4): the key the server gives for a name
 * must be the one we met before; a new name's key is remembered. */
static bool trust(session *s, const punch_event *ev)
{
    uint8_t known[PUNCH_KEY_LEN];
    char have[PUNCH_KEY_B64_LEN], got[PUNCH_KEY_B64_LEN];
    punch_key_encode(ev->peer_key, got);
    if (s->has_pin)
        return true; /* the agent checked the pinned key */
    int rc = punch_known_peers_find(s->known_path, ev->peer_name, known);
    if (rc == 0) {
        if (memcmp(known, ev->peer_key, PUNCH_KEY_LEN) == 0)
            return true;
        punch_key_encode(known, have);
        fprintf(stderr,
                "punch: REFUSING %s: its key changed! known %s, the server now says %s.\n"
                "punch: someone may be impersonating it. If the change is expected, remove\n"
                "punch: the line for %s from %s.\n",
                ev->peer_name, have, got, ev->peer_name, s->known_path);
        return false;
    }
    if (punch_known_peers_add(s->known_path, ev->peer_name, ev->peer_key) == 0)
        punch_log(PUNCH_LOG_INFO, "learned %s's key %s (kept in %s)", ev->peer_name, got,
                  s->known_path);
    else
        punch_log(PUNCH_LOG_WARN, "cannot remember %s's key in %s: %s", ev->peer_name,
                  s->known_path, strerror(errno));
    return true;
}

static void on_event(void *arg, punch_driver *d, const punch_event *ev)
{
    session *s = arg;
    char a[PUNCH_ADDR_STRLEN], b[PUNCH_ADDR_STRLEN];
    punch_agent *agent = punch_driver_agent(d);
    switch (ev->kind) {
    case PUNCH_EVENT_REGISTERED:
        punch_events_emit(s->events, "registered",
                          "\"server\":\"%s\",\"public\":\"%s\",\"transport\":\"%s\",\"nat\":\"%s\","
                          "\"port_step\":%d,\"nat_port\":%u",
                          fmt(&s->server, a), fmt(&ev->remote, b), punch_driver_transport(d),
                          ev->nat, ev->port_step, ev->nat_port);
        punch_log(PUNCH_LOG_INFO, "registered at %s, public address %s", a, b);
        break;
    case PUNCH_EVENT_INTRODUCED:
        punch_events_emit(s->events, "introduced", "\"peer\":\"%s\",\"public\":\"%s\"",
                          ev->peer_name, fmt(&ev->remote, a));
        if (!trust(s, ev)) {
            punch_agent_close(agent, punch_clock_ms(), ev->peer);
            finish(s, 1);
            return;
        }
        if (s->listening && (s->peer < 0 || s->keep_open))
            s->peer = ev->peer;
        break;
    case PUNCH_EVENT_PATH: {
        punch_addr local;
        punch_driver_path_local(d, ev, &local);
        punch_events_emit(s->events, "path",
                          "\"peer\":\"%s\",\"kind\":\"%s\",\"technique\":\"%s\",\"local\":\"%s\","
                          "\"remote\":\"%s\",\"rtt_ms\":%.1f",
                          ev->peer_name, punch_path_kind_name(ev->path_kind),
                          punch_technique_name(ev->technique),
                          fmt(&local, a), fmt(&ev->remote, b),
                          ev->rtt_us / 1000.0);
        punch_log(PUNCH_LOG_INFO, "%s: %s via %s to %s (rtt %.1f ms)", ev->peer_name,
                  punch_path_kind_name(ev->path_kind), punch_technique_name(ev->technique), b,
                  ev->rtt_us / 1000.0);
        if (ev->peer == s->peer && !s->stdin_watched) {
            /* Reading stdin only once there is a path: nothing is lost. */
            s->stdin_watched = true;
            punch_loop_watch(s->loop, 0, on_stdin, s);
        }
        s->have_path = true;
        break;
    }
    case PUNCH_EVENT_ATTEMPT:
        punch_events_emit(s->events, "attempt",
                          "\"peer\":\"%s\",\"technique\":\"%s\",\"result\":\"failed\","
                          "\"remote\":\"%s\",\"why\":\"%s\"",
                          ev->peer_name, punch_technique_name(ev->technique),
                          fmt(&ev->remote, a), ev->why);
        punch_log(PUNCH_LOG_DEBUG, "%s: %s to %s failed: %s", ev->peer_name,
                  punch_technique_name(ev->technique), a, ev->why);
        break;
    case PUNCH_EVENT_DATA:
        if (ev->peer == s->peer || s->keep_open)
            write_all(1, ev->data, ev->len);
        break;
    case PUNCH_EVENT_CLOSED:
        punch_events_emit(s->events, "closed", "\"peer\":\"%s\",\"reason\":\"%s\"",
                          ev->peer_name, ev->why);
        if (ev->peer == s->peer) {
            bool fine = s->have_path && strcmp(ev->why, "peer closed") == 0;
            if (!fine)
                fprintf(stderr, "punch: %s: %s\n", ev->peer_name, ev->why);
            if (!s->keep_open)
                finish(s, fine ? 0 : 1);
            s->peer = -1;
        }
        break;
    case PUNCH_EVENT_SOCKETS: /* the driver's business */
    case PUNCH_EVENT_TCP_OFFER:
        break;
    case PUNCH_EVENT_REFUSED:
        fprintf(stderr, "punch: the server refused us: %s\n", ev->why);
        finish(s, 1);
        break;
    }
}

static void on_timeout(void *arg, int fd)
{
    session *s = arg;
    uint64_t n;
    if (read(fd, &n, sizeof(n)) < 0)
        return;
    if (!s->have_path) {
        fprintf(stderr, "punch: no path to %s found in time\n",
                s->want_name ? s->want_name : "any peer");
        finish(s, 1);
    }
}

static void on_signal(void *arg, int signo)
{
    (void)signo;
    session *s = arg;
    if (s->peer >= 0)
        punch_agent_close(punch_driver_agent(s->driver), punch_clock_ms(), s->peer);
    punch_driver_flush(s->driver);
    finish(s, 1);
}

/* Identity, known_peers, server: everything both commands need first. */
static int prepare(session *s, punch_identity *id)
{
    char path[PATH_MAX - 16], err[PUNCH_KEYFILE_ERRLEN];
    if (!s->cli->server || !s->cli->server[0])
        return punch_cli_usage_error("punch", "no server: give --server HOST[:PORT] or set "
                                              "PUNCH_SERVER");
    int rc = punch_addr_resolve(s->cli->server, DEFAULT_PORT, &s->server);
    if (rc == PUNCH_ERR_INVAL)
        return punch_cli_usage_error("punch", "--server: '%s' is not HOST[:PORT]", s->cli->server);
    if (rc != 0) {
        fprintf(stderr, "punch: cannot resolve '%s'\n", s->cli->server);
        return 1;
    }
    if (punch_cli_key_path(s->cli, path, sizeof(path)) != 0)
        return 1;
    bool created;
    if (punch_keyfile_load_or_create(path, id, &created, err) != 0) {
        fprintf(stderr, "punch: %s\n", err);
        return 1;
    }
    if (created)
        punch_log(PUNCH_LOG_INFO, "created a new identity key in %s", path);
    char *slash = strrchr(path, '/');
    if (slash)
        *slash = '\0';
    if (snprintf(s->known_path, sizeof(s->known_path), "%s/known_peers", slash ? path : ".") >=
        (int)sizeof(s->known_path)) {
        fprintf(stderr, "punch: key folder path too long: %s\n", path);
        return 1;
    }
    return 0;
}

static int run(session *s, uint32_t flags, int timeout_s)
{
    punch_identity id;
    int rc = prepare(s, &id);
    if (rc != 0)
        return rc;
    if (punch_events_open(&s->events, s->cli->events, s->cli->start_ms) != 0) {
        fprintf(stderr, "punch: cannot open events file '%s': %s\n", s->cli->events,
                strerror(errno));
        punch_identity_wipe(&id);
        return 1;
    }
    char host[PUNCH_NAME_MAX + 1] = "";
    const char *name = s->cli->name;
    if (!name && s->listening && gethostname(host, sizeof(host) - 1) == 0)
        name = host;
    punch_driver_cfg dc = {.agent = {.name = name, .server = s->server, .flags = flags},
                           .on_event = on_event, .arg = s};
    punch_agent_cli_tune(s->cli, &dc.agent);
    memcpy(dc.agent.secret_key, id.secret_key, PUNCH_KEY_LEN);
    punch_identity_wipe(&id);
    s->peer = -1;
    s->timeout_fd = -1;
    s->exit_code = 1;
    static const int signals[] = {SIGINT, SIGTERM};
    if (punch_loop_new(&s->loop) != 0 || punch_loop_signals(s->loop, signals, 2, on_signal, s)) {
        fprintf(stderr, "punch: cannot set up the event loop: %s\n", strerror(errno));
        goto done;
    }
    rc = punch_driver_new(&s->driver, s->loop, &dc);
    memset(dc.agent.secret_key, 0, PUNCH_KEY_LEN);
    if (rc != 0) {
        fprintf(stderr, "punch: %s\n", rc == PUNCH_ERR_INVAL
                                           ? "bad settings (is --name printable, without spaces?)"
                                           : strerror(errno));
        goto done;
    }
    if (s->want_name) {
        s->peer = punch_agent_connect(punch_driver_agent(s->driver), punch_clock_ms(),
                                      s->want_name, s->has_pin ? s->pinned : NULL);
        punch_driver_flush(s->driver);
    }
    if (timeout_s > 0) {
        s->timeout_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
        struct itimerspec its = {.it_value = {.tv_sec = timeout_s}};
        if (s->timeout_fd < 0 || timerfd_settime(s->timeout_fd, 0, &its, NULL) != 0 ||
            punch_loop_watch(s->loop, s->timeout_fd, on_timeout, s) != 0) {
            fprintf(stderr, "punch: cannot set the timeout: %s\n", strerror(errno));
            goto done;
        }
    }
    if (punch_loop_run(s->loop) != 0)
        fprintf(stderr, "punch: event loop failed: %s\n", strerror(errno));
done:
    punch_driver_free(s->driver);
    punch_loop_free(s->loop);
    punch_events_close(s->events);
    if (s->timeout_fd >= 0)
        close(s->timeout_fd);
    return s->exit_code;
}

/* Options shared by listen and connect. Returns 0, 2 (usage error) or -1
 * (--help served). */
static int parse(int argc, char **argv, const char *cmd, const char *help, session *s,
                 uint32_t *flags, int *timeout_s)
{
    static const struct option longs[] = {
        {"keep-open", no_argument, NULL, 'k'}, {"no-relay", no_argument, NULL, 'n'},
        {"relay-only", no_argument, NULL, 'r'}, {"no-direct", no_argument, NULL, 'r'},
        {"tcp", no_argument, NULL, 't'},       {"timeout", required_argument, NULL, 'T'},
        {"help", no_argument, NULL, 'h'},       {0},
    };
    int c;
    char *end;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", longs, NULL)) != -1) {
        switch (c) {
        case 'k':
            if (!s->listening)
                return punch_cli_usage_error(cmd, "--keep-open is for listen");
            s->keep_open = true;
            break;
        case 'n': *flags |= PUNCH_AGENT_NO_RELAY; break;
        case 'r': *flags |= PUNCH_AGENT_RELAY_ONLY; break;
        case 't':
            if (s->listening)
                return punch_cli_usage_error(cmd, "--tcp is for connect (listen answers it)");
            *flags |= PUNCH_AGENT_TCP;
            break;
        case 'T':
            errno = 0;
            *timeout_s = (int)strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end || errno || *timeout_s < 1 || *timeout_s > 86400)
                return punch_cli_usage_error(cmd, "--timeout: '%s' is not 1 to 86400 seconds",
                                             optarg);
            break;
        case 'h': fputs(help, stdout); return -1;
        case ':': return punch_cli_usage_error(cmd, "%s needs a value", argv[optind - 1]);
        default: return punch_cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if ((*flags & PUNCH_AGENT_NO_RELAY) && (*flags & PUNCH_AGENT_RELAY_ONLY))
        return punch_cli_usage_error(cmd, "--no-relay and --relay-only leave no path");
    return 0;
}

int punch_cmd_listen(const punch_cli *cli, int argc, char **argv)
{
    session s = {.cli = cli, .listening = true};
    uint32_t flags = 0;
    int timeout_s = 0, rc = parse(argc, argv, "punch listen", listen_help, &s, &flags, &timeout_s);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (optind < argc)
        return punch_cli_usage_error("punch listen", "unexpected argument '%s'", argv[optind]);
    return run(&s, flags, timeout_s);
}

int punch_cmd_connect(const punch_cli *cli, int argc, char **argv)
{
    session s = {.cli = cli};
    uint32_t flags = 0;
    int timeout_s = 0, rc = parse(argc, argv, "punch connect", connect_help, &s, &flags,
                                  &timeout_s);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (optind != argc - 1)
        return punch_cli_usage_error("punch connect", optind < argc ? "unexpected argument '%s'"
                                                                    : "which peer? give PEER%s",
                                     optind < argc ? argv[optind + 1] : "[@PUBKEY]");
    static char target[PUNCH_NAME_MAX + 1 + PUNCH_KEY_B64_LEN + 1];
    snprintf(target, sizeof(target), "%s", argv[optind]);
    char *at = strchr(target, '@');
    if (at) {
        *at = '\0';
        if (punch_key_decode(at + 1, s.pinned) != 0)
            return punch_cli_usage_error("punch connect", "'%s' is not a public key (base64, 44 "
                                                          "characters)", at + 1);
        s.has_pin = true;
    }
    if (!punch_msg_valid_name(target))
        return punch_cli_usage_error("punch connect", "'%s' is not a peer name (1 to %d printable "
                                     "characters, no spaces or quotes)", target, PUNCH_NAME_MAX);
    s.want_name = target;
    return run(&s, flags, timeout_s);
}
