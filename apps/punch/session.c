/* SPDX-License-Identifier: MIT */
/*
 * punch listen / connect / forward: one agent (through the I/O driver).
 * By default stdin and stdout ride a reliable stream (src/stream); with
 * --datagram, one datagram per read (like nc -u). forward and listen
 * --allow-forward carry TCP connections, one stream each.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "crypto/identity.h"
#include "common/cli.h"
#include "driver/driver.h"
#include "agent_cli.h"
#include "allow.h"
#include "common/events.h"
#include "keyfile/keyfile.h"
#include "common/known_peers.h"
#include "io/log.h"
#include "io/net.h"
#include "punch_cli.h"
#include "stream/stream.h"
#include "wire/msg.h"

#define MAX_ALLOW 16
#define PROGRESS_MS 1000
#define DEFAULT_MAX_CONNECTIONS 1024
/* Descriptors kept for everything but forwarded connections: the agent's
 * sockets, many-port probing's 256, the loop's, stdio, the events file. */
#define FD_RESERVE 320

typedef struct session {
    const punch_cli *cli;
    bool listening, keep_open;
    const char *want_name;        /* connect: the peer asked for (target), else NULL */
    char target[PUNCH_NAME_MAX + 1];
    uint8_t pinned[PUNCH_KEY_LEN];
    bool has_pin;
    char known_path[PATH_MAX];
    punch_loop *loop;
    punch_driver *driver;
    punch_events *events;
    punch_addr server;
    int peer;                     /* the peer stdin goes to, -1 none */
    bool have_path, stdin_watched;
    punch_loop_timer timeout;     /* --timeout: no path by then fails */
    int exit_code;
    /* Streams (all but --datagram). */
    bool datagram;
    punch_sctp *sctp;
    punch_stream *stdio;          /* the stream stdin/stdout ride */
    bool stdio_done;
    uint64_t not_stream;          /* peers' datagrams that were not stream data */
    punch_allow who;              /* listen: the peers that may connect */
    size_t n_allow;               /* listen --allow-forward */
    uint16_t allow[MAX_ALLOW];
    bool forwarding;              /* forward: TCP connections to the peer */
    bool listening_forwards;      /* listen --allow-forward */
    punch_addr fwd_listen;
    uint16_t fwd_port;            /* the peer's port */
    int tcp_fd;
    /* Forwarded TCP connections (forward and listen --allow-forward). */
    unsigned max_conns, n_conns;
    uint64_t conns_refused;
    bool told_full;               /* said so on stderr since the last connection closed */
    int spare_fd;                 /* given up to accept-and-close when out of descriptors */
    const char *path_kind;        /* of the path to s->peer, for progress */
    bool progress;                /* stderr is a terminal */
    uint64_t progress_ms, progress_bytes;
} session;

#define STREAM_HELP \
    "The data is a reliable byte stream (SCTP over punch's encrypted datagrams):\n" \
    "ordered, retransmitted, flow- and congestion-controlled, across path changes.\n" \
    "Half-close: the end of our stdin ends our direction only; the peer's data\n" \
    "keeps coming until its own input ends, and its end closes our stdout.\n" \
    "Exit 0 once both directions ended and each side confirmed it wrote out\n" \
    "everything the other sent; 1 otherwise, with the reason. On a terminal,\n" \
    "stderr shows the bytes, the rate and the kind of path once a second.\n" \
    "--datagram: one datagram per read instead (like nc -u), best effort; the\n" \
    "end of stdin closes the session.\n"

static const char listen_help[] =
    "usage: punch [--server HOST[:PORT]] [--name NAME] listen [--datagram]\n"
    "             [--keep-open] [--allow-forward PORT[,PORT...] [--max-connections N]]\n"
    "             [--peer NAME@KEY]... [--allowed-peers FILE] [--any-peer]\n"
    "             [--no-relay] [--relay-only] [--timeout SECONDS]\n"
    "\n"
    "Register at the server as NAME (default: this host's name) and wait. The\n"
    "first peer that connects is piped to stdin/stdout (like nc -l).\n"
    STREAM_HELP
    "--keep-open: after a peer's stream ends, serve the next peer that connects,\n"
    "one at a time: each one's data is appended to stdout, which stays open, and\n"
    "stdin goes to the peer served (once stdin has ended, later peers get only\n"
    "its end); a peer that connects while another is served is refused (busy).\n"
    "It runs until SIGINT/SIGTERM: exit 0 between streams, 1 during one.\n"
    "With --datagram, every peer's datagrams go to stdout and stdin to the latest.\n"
    "--allow-forward PORT,...: serve 'punch forward' instead of stdin/stdout:\n"
    "each stream a peer opens for an allowed PORT becomes a TCP connection to\n"
    "127.0.0.1:PORT here; other ports are refused and nothing else is reachable.\n"
    "It serves every peer until SIGINT/SIGTERM (exit 0). --max-connections N\n"
    "(default 1024, at most what ulimit -n allows) bounds the connections open\n"
    "at once; a stream past it is refused, with the reason, and counted.\n"
    "--allow-forward needs --peer, --allowed-peers or --any-peer; without\n"
    "--allow-forward they are optional (default: anyone).\n"
    PUNCH_ALLOW_HELP;

/* How long connect looks for a path before it gives up (exit 1). */
#define DEFAULT_CONNECT_TIMEOUT_S 30

static const char connect_help[] =
    "usage: punch [--server HOST[:PORT]] connect PEER[@PUBKEY] [--datagram]\n"
    "             [--no-relay] [--relay-only | --no-direct] [--tcp] [--timeout SECONDS]\n"
    "\n"
    "Reach PEER through the server: directly when the network allows it, through\n"
    "the server's relay when not (until a direct path is found). stdin goes to\n"
    "the peer and the peer's data to stdout.\n"
    STREAM_HELP
    "With @PUBKEY only that key is accepted; without it the peer's key is learned\n"
    "from the server the first time and must match afterwards (known_peers).\n"
    "--tcp asks for a TCP path too, once a first path is up, and prefers it: TCP\n"
    "simultaneous open through both NATs, or a connection from the side behind a\n"
    "NAT to the public one (reversal); without it TCP is used only to reach the\n"
    "server where UDP is blocked.\n"
    "--timeout gives up when no path is found in time (exit 1; default 30 s).\n"
    "A server that has not answered within 5 s is named on stderr.\n";

static const char forward_help[] =
    "usage: punch [--server HOST[:PORT]] forward --listen [ADDR:]PORT PEER[@PUBKEY]:PORT\n"
    "             [--max-connections N] [--no-relay] [--relay-only | --no-direct]\n"
    "             [--timeout SECONDS]\n"
    "\n"
    "Accept TCP connections on ADDR:PORT (default address 127.0.0.1) and carry\n"
    "each one, as a reliable stream, to PEER, which connects it to 127.0.0.1:PORT\n"
    "on its side. PEER must run 'punch listen --allow-forward PORT'; a port it\n"
    "does not allow is refused (the connection is closed, the reason printed).\n"
    "Each direction of a connection ends on its own (TCP half-close is kept).\n"
    "--max-connections N (default 1024, at most what ulimit -n allows; the soft\n"
    "limit is raised to the hard one) bounds the connections carried at once: one\n"
    "more is closed at once, counted (connections_refused in the counters event)\n"
    "and said once on stderr until a connection closes.\n"
    "Runs until SIGINT/SIGTERM (exit 0) or until PEER goes away (exit 1).\n";

static void finish(session *s, int code)
{
    punch_agent_cli_finish(s->loop, &s->exit_code, code);
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
        punch_agent_cli_goodbye(s->driver, s->peer);
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
 * must be the one we met before; a new name's key is remembered once the
 * peer proved it (its first path). */
static bool trust(session *s, const punch_event *ev)
{
    /* With a pinned key, the agent checked it; else known_peers decides. */
    return s->has_pin || punch_agent_cli_trust(s->known_path, ev);
}

/* Whether known_peers vouches for this session's peers: connect without
 * a pinned key, a listener without --peer or --allowed-peers. */
static bool uses_known_peers(const session *s)
{
    return s->listening ? !s->who.list : !s->has_pin;
}

/* ---- streams ------------------------------------------------------------ */

static const char *human(uint64_t bytes, char buf[32])
{
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    snprintf(buf, 32, u ? "%.1f %s" : "%.0f %s", v, units[u]);
    return buf;
}

static void progress(session *s, uint64_t now, bool last)
{
    if (!s->progress || !s->stdio)
        return;
    uint64_t sent, received;
    punch_stream_bytes(s->stdio, &sent, &received);
    uint64_t total = sent + received, dt = now - s->progress_ms;
    if (!last && dt < PROGRESS_MS)
        return;
    char a[32], b[32], r[32];
    uint64_t rate = dt ? (total - s->progress_bytes) * 1000 / dt : 0;
    fprintf(stderr, "\rpunch: sent %s, received %s, %s/s, %s path   %s", human(sent, a),
            human(received, b), human(rate, r), s->path_kind ? s->path_kind : "no",
            last ? "\n" : "");
    s->progress_ms = now;
    s->progress_bytes = total;
}

static void on_tick(void *arg, uint64_t now_ms)
{
    session *s = arg;
    progress(s, now_ms, false);
}

static const char *peer_label(const session *s)
{
    return s->want_name ? s->want_name : "the peer";
}

/* ---- forwarded connections ------------------------------------------- */

static void connection_closed(session *s, int fd)
{
    close(fd);
    s->n_conns--;
    s->told_full = false;
}

/* A connection past --max-connections (or past the descriptors we have) is
 * closed at once and counted; stderr hears it once until one closes. */
static void refuse_connection(session *s, const char *why)
{
    s->conns_refused++;
    if (s->told_full)
        return;
    s->told_full = true;
    fprintf(stderr, "punch %s: %u connections open, new ones are refused (%s) until one closes\n",
            s->forwarding ? "forward" : "listen", s->n_conns, why);
}

static bool room_for_connection(session *s)
{
    if (s->n_conns < s->max_conns)
        return true;
    refuse_connection(s, "--max-connections");
    return false;
}

/* Out of descriptors with a client waiting: a listening socket stays
 * readable, so take the client with the spare descriptor and close it. */
static void shed_connection(session *s, int lfd)
{
    if (s->spare_fd >= 0)
        close(s->spare_fd);
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd >= 0)
        close(fd);
    s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    refuse_connection(s, "out of file descriptors");
}

/* As many connections as asked (default 1024), as far as the descriptors
 * allow: the soft RLIMIT_NOFILE is raised to the hard one first. */
static void set_connection_limit(session *s)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    rlim_t room = rl.rlim_cur > 2 * FD_RESERVE ? rl.rlim_cur - FD_RESERVE : rl.rlim_cur / 2;
    if (s->max_conns > room) {
        punch_log(PUNCH_LOG_WARN, "--max-connections %u is more than the %llu file descriptors "
                  "allow (ulimit -n): %llu", s->max_conns, (unsigned long long)rl.rlim_cur,
                  (unsigned long long)room);
        s->max_conns = (unsigned)room;
    }
    s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void on_stream_done(void *arg, punch_stream *st, const punch_stream_result *r)
{
    session *s = arg;
    if (st == s->stdio) {
        progress(s, punch_clock_ms(), true);
        s->stdio = NULL;
        s->stdio_done = true;
        /* --keep-open: the next peer's stream is welcome; we go on. */
        if (r->result == 0) {
            punch_log(PUNCH_LOG_INFO, "stream done: %llu bytes sent, %llu received, all confirmed",
                      (unsigned long long)r->bytes_sent, (unsigned long long)r->bytes_received);
            punch_agent_close(punch_driver_agent(s->driver), punch_clock_ms(),
                              punch_stream_peer(st));
            punch_driver_flush(s->driver);
            if (!s->keep_open)
                finish(s, 0);
        } else {
            fprintf(stderr, "punch: %s: %s\n",
                    r->result == PUNCH_ERR_UNSUPPORTED ? "the peer refused the stream"
                                                       : "stream failed",
                    r->why);
            if (!s->keep_open)
                finish(s, 1);
        }
        return;
    }
    intptr_t fd = (intptr_t)punch_stream_user(st) - 1;
    if (fd >= 0)
        connection_closed(s, (int)fd);
    if (s->forwarding && r->result == PUNCH_ERR_UNSUPPORTED)
        fprintf(stderr, "punch forward: %s refused port %u: %s\n", peer_label(s), s->fwd_port,
                r->why);
    else if (r->result != 0 && r->result != PUNCH_ERR_UNSUPPORTED)
        punch_log(PUNCH_LOG_WARN, "forwarded connection failed: %s", r->why);
    else
        punch_log(PUNCH_LOG_INFO, "forwarded connection closed: %llu bytes sent, %llu received",
                  (unsigned long long)r->bytes_sent, (unsigned long long)r->bytes_received);
}

/* listen: stdin/stdout carry peer's stream st now. */
static void serve_stdio(session *s, punch_stream *st, int peer)
{
    s->stdio = st;
    s->peer = peer;
    s->progress_ms = punch_clock_ms();
    s->progress_bytes = 0;
    if (s->keep_open)
        punch_stream_keep_output(st); /* stdout goes on with the next peer's data */
}

/* listen: a peer opened a stream. */
static void on_stream_open(void *arg, punch_stream *st, int peer, uint16_t service)
{
    session *s = arg;
    char why[120];
    if (s->n_allow == 0) {
        if (service != 0)
            snprintf(why, sizeof(why), "port %u: this side forwards no ports (punch listen "
                     "--allow-forward)", service);
        else if (s->stdio || (s->stdio_done && !s->keep_open))
            snprintf(why, sizeof(why), "busy: stdin/stdout already carry a stream");
        else if (punch_stream_attach(st, 0, 1, NULL) == 0) {
            serve_stdio(s, st, peer);
            return;
        } else
            snprintf(why, sizeof(why), "cannot use stdin/stdout here: %s", strerror(errno));
        punch_log(PUNCH_LOG_WARN, "refused a stream: %s", why);
        punch_stream_refuse(st, why);
        return;
    }
    bool allowed = false;
    for (size_t i = 0; i < s->n_allow; i++)
        allowed = allowed || s->allow[i] == service;
    if (service == 0) {
        snprintf(why, sizeof(why), "this side only forwards ports (punch listen --allow-forward)");
    } else if (!allowed) {
        snprintf(why, sizeof(why), "port %u is not allowed (punch listen --allow-forward)",
                 service);
    } else if (!room_for_connection(s)) {
        snprintf(why, sizeof(why), "%u connections open there (punch listen --max-connections)",
                 s->n_conns);
    } else {
        struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(service),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        /* Loopback answers a connect at once: blocking is fine here. */
        if (fd >= 0 && connect(fd, (struct sockaddr *)&to, sizeof(to)) == 0 &&
            punch_stream_attach(st, fd, fd, (void *)(intptr_t)(fd + 1)) == 0) {
            s->n_conns++;
            punch_log(PUNCH_LOG_INFO, "forwarding a connection to 127.0.0.1:%u", service);
            return;
        }
        snprintf(why, sizeof(why), "nothing accepts connections on port %u there: %s", service,
                 strerror(errno));
        if (fd >= 0)
            close(fd);
    }
    punch_log(PUNCH_LOG_WARN, "refused a forward: %s", why);
    punch_stream_refuse(st, why);
}

/* forward: a TCP client arrived; it becomes a stream to the peer. */
static void on_tcp_accept(void *arg, int lfd)
{
    session *s = arg;
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE)
            shed_connection(s, lfd);
        return;
    }
    if (!room_for_connection(s)) {
        close(fd);
        return;
    }
    punch_stream *st;
    int rc = s->peer < 0 ? PUNCH_ERR_NOTFOUND
                         : punch_stream_open(s->sctp, s->peer, s->fwd_port, fd, fd,
                                             (void *)(intptr_t)(fd + 1), &st);
    if (rc != 0) {
        punch_log(PUNCH_LOG_WARN, "cannot carry a new connection to %s: %s", peer_label(s),
                  punch_strerror(rc));
        close(fd);
        return;
    }
    s->n_conns++;
}

static int tcp_listen(const punch_addr *a)
{
    struct sockaddr_storage ss;
    socklen_t len = punch_addr_to_sockaddr(a, &ss);
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), one = 1;
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    /* The kernel caps the backlog (somaxconn): a burst of clients waits there. */
    if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, SOMAXCONN) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* The agent forgot a peer (CLOSED): whether that ends us. */
static void on_peer_closed(session *s, const punch_event *ev)
{
    if (!s->datagram) {
        /* The streams heard it first (and may have ended the stdio one). */
        if (ev->peer != s->peer)
            return;
        s->peer = -1;
        /* A listener waits on past peers that never had a path (a
         * stranger that did not complete its handshake, say). */
        if (s->n_allow > 0 || s->keep_open || (s->listening && !s->have_path)) {
            punch_log(PUNCH_LOG_INFO, "%s left: %s", ev->peer_name, ev->closed.why);
        } else if (s->forwarding) {
            fprintf(stderr, "punch forward: %s went away: %s\n", ev->peer_name, ev->closed.why);
            finish(s, 1);
        } else if (!s->stdio_done) {
            fprintf(stderr, "punch: %s left before a stream was carried: %s\n", ev->peer_name,
                    ev->closed.why);
            finish(s, 1);
        }
        return;
    }
    if (ev->peer == s->peer && s->listening && !s->have_path) {
        punch_log(PUNCH_LOG_INFO, "%s left: %s", ev->peer_name, ev->closed.why);
        s->peer = -1; /* as above: the next peer is welcome */
    } else if (ev->peer == s->peer) {
        bool fine = punch_agent_cli_closed_fine(ev, s->have_path);
        if (!s->keep_open)
            finish(s, fine ? 0 : 1);
        s->peer = -1;
    }
}

/* A listener lets in whom --peer, --allowed-peers or known_peers allow;
 * connect and forward want the peer's key as pinned or known. */
static void on_introduced(session *s, punch_agent *agent, const punch_event *ev)
{
    if (s->listening && !punch_allow_introduced(&s->who, s->events, s->known_path, ev)) {
        punch_agent_close(agent, punch_clock_ms(), ev->peer); /* no handshake, no data */
        return;
    }
    if (!s->listening && !trust(s, ev)) {
        punch_agent_close(agent, punch_clock_ms(), ev->peer);
        finish(s, 1);
        return;
    }
    /* Streams: the peer is the one stdin/stdout serve (serve_stdio). */
    if (s->listening && (s->peer < 0 || (s->keep_open && (s->datagram || !s->stdio))))
        s->peer = ev->peer;
}

static void on_event(void *arg, punch_driver *d, const punch_event *ev)
{
    session *s = arg;
    punch_agent *agent = punch_driver_agent(d);
    punch_agent_cli_report(s->events, &s->server, d, ev); /* events and log lines */
    switch (ev->kind) {
    case PUNCH_EVENT_REGISTERED:
        break;
    case PUNCH_EVENT_INTRODUCED:
        on_introduced(s, agent, ev);
        break;
    case PUNCH_EVENT_PATH:
        if (uses_known_peers(s) && !punch_agent_cli_learn(s->known_path, ev)) {
            punch_agent_close(agent, punch_clock_ms(), ev->peer);
            if (!s->listening)
                finish(s, 1);
            return;
        }
        if (ev->peer == s->peer)
            s->path_kind = punch_path_kind_name(ev->path.kind);
        if (ev->peer == s->peer && s->datagram && !s->stdin_watched) {
            /* Reading stdin only once there is a path: nothing is lost. */
            s->stdin_watched = true;
            punch_loop_watch(s->loop, 0, on_stdin, s);
        }
        if (ev->peer == s->peer && !s->datagram && !s->listening && !s->forwarding &&
            !s->stdio && !s->stdio_done) {
            int rc = punch_stream_open(s->sctp, s->peer, 0, 0, 1, NULL, &s->stdio);
            if (rc != 0) {
                fprintf(stderr, "punch: cannot open a stream on stdin/stdout: %s\n",
                        punch_strerror(rc));
                finish(s, 1);
                return;
            }
        }
        s->have_path = true;
        break;
    case PUNCH_EVENT_ATTEMPT:
        break;
    case PUNCH_EVENT_DATA:
        if (!s->datagram) {
            /* Stream data went to the streams (the driver's consumer of
             * PUNCH_STREAM_TAG): this is something else. */
            if (s->not_stream++ == 0) {
                punch_log(PUNCH_LOG_WARN, "%s sends datagrams that are not stream data (does it "
                          "run with --datagram?): dropped and counted", ev->peer_name);
            }
        } else if (ev->peer == s->peer || s->keep_open) {
            write_all(1, ev->data.bytes, ev->data.len);
        }
        break;
    case PUNCH_EVENT_CLOSED:
        on_peer_closed(s, ev);
        break;
    case PUNCH_EVENT_SOCKETS: /* the driver's business */
    case PUNCH_EVENT_TCP_OFFER:
    case PUNCH_EVENT_PONG:
    case PUNCH_EVENT_RTT:     /* told by punch_agent_cli_report */
    case PUNCH_EVENT_PORTMAP: /* told by punch_agent_cli_report */
    case PUNCH_EVENT_TURN:
    case PUNCH_EVENT_TOKEN:   /* kept by punch_agent_cli_start's watcher */
        break;
    case PUNCH_EVENT_REFUSED: /* said by punch_agent_cli_report */
        finish(s, 1);
        break;
    }
}

static void on_timeout(void *arg, uint64_t now_ms)
{
    (void)now_ms;
    session *s = arg;
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
    punch_agent_cli_goodbye(s->driver, s->peer);
    /* Stopping a forwarder, or a listener between --keep-open streams, is
     * how it ends; anything else was cut short. */
    bool service =
        s->forwarding || s->n_allow > 0 || (s->keep_open && !s->datagram && !s->stdio);
    if (!service && !s->datagram)
        fprintf(stderr, "punch: interrupted\n");
    finish(s, service ? 0 : 1);
}

/* The streams' and the agent's counters as an event, and a warning when
 * a peer sent what was not stream data. */
static void stream_counters(session *s)
{
    punch_sctp_counters c;
    punch_sctp_counters_get(s->sctp, &c);
    c.not_stream += s->not_stream;
    punch_agent_stats as;
    punch_agent_stats_get(punch_driver_agent(s->driver), &as);
    punch_events_emit(s->events, "counters",
                      "\"stream_packets_in\":%llu,\"stream_packets_out\":%llu,"
                      "\"not_stream\":%llu,\"oversize\":%llu,\"no_path\":%llu,"
                      "\"bad_checksum\":%llu,\"bad_vtag\":%llu,\"no_port\":%llu,"
                      "\"too_short\":%llu,\"out_of_the_blue\":%llu,\"retransmits\":%llu,"
                      "\"fast_retransmits\":%llu,\"timeouts\":%llu,\"sacks_out\":%llu,\"path_kicks\":%llu,"
                      "\"datagrams_dropped\":%llu,\"queue_overflows\":%llu,\"events_lost\":%llu,"
                      "\"udp_unsent\":%llu,\"init_timeouts\":%llu,\"cookie_timeouts\":%llu,"
                      "\"connections_open\":%u,\"connections_refused\":%llu,"
                      "\"peers_refused\":%llu,\"repair_resent\":%llu,\"repair_repaired\":%llu,"
                      "\"repair_given_up\":%llu,\"repair_malformed\":%llu,"
                      "\"window_probe_timeouts\":%llu,\"window_probes\":%llu,"
                      "\"window_restarts\":%llu",
                      (unsigned long long)c.packets_in, (unsigned long long)c.packets_out,
                      (unsigned long long)c.not_stream, (unsigned long long)c.oversize,
                      (unsigned long long)c.no_path, (unsigned long long)c.bad_checksum,
                      (unsigned long long)c.bad_vtag, (unsigned long long)c.no_port,
                      (unsigned long long)c.too_short, (unsigned long long)c.out_of_the_blue,
                      (unsigned long long)c.retransmits, (unsigned long long)c.fast_retransmits,
                      (unsigned long long)c.timeouts, (unsigned long long)c.sacks_out,
                      (unsigned long long)c.path_kicks, (unsigned long long)as.dropped,
                      (unsigned long long)as.overflowed, (unsigned long long)as.events_lost,
                      (unsigned long long)punch_driver_stats_get(s->driver)->udp_unsent,
                      (unsigned long long)c.init_timeouts,
                      (unsigned long long)c.cookie_timeouts, s->n_conns,
                      (unsigned long long)s->conns_refused,
                      (unsigned long long)s->who.refused, (unsigned long long)c.repair_resent,
                      (unsigned long long)c.repair_repaired, (unsigned long long)c.repair_given_up,
                      (unsigned long long)c.repair_malformed,
                      (unsigned long long)c.window_probe_timeouts,
                      (unsigned long long)c.window_probes,
                      (unsigned long long)c.window_restarts);
    uint64_t bad = c.not_stream + c.bad_vtag + c.too_short;
    if (bad)
        punch_log(PUNCH_LOG_WARN, "dropped %llu datagrams that were not valid stream data "
                  "(%llu untagged, %llu bad tag, %llu too short)",
                  (unsigned long long)bad, (unsigned long long)c.not_stream,
                  (unsigned long long)c.bad_vtag, (unsigned long long)c.too_short);
}

static void ask_for_peer(session *s)
{
    s->peer = punch_agent_connect(punch_driver_agent(s->driver), punch_clock_ms(), s->want_name,
                                  s->has_pin ? s->pinned : NULL);
    punch_driver_flush(s->driver);
}

static int run(session *s, uint32_t flags, int timeout_s)
{
    static const int signals[] = {SIGINT, SIGTERM};
    punch_agent_cli_setup su = {.cmd = "punch", .listening = s->listening, .flags = flags,
                                .signals = signals, .n_signals = 2, .on_signal = on_signal,
                                .on_event = on_event, .arg = s, .known_path = s->known_path,
                                .events = &s->events, .loop = &s->loop, .driver = &s->driver};
    int rc = punch_agent_cli_server(s->cli, "punch", &s->server);
    if (rc != 0)
        return rc;
    s->peer = -1;
    s->tcp_fd = -1;
    s->spare_fd = -1;
    s->exit_code = 1;
    if (s->forwarding || s->n_allow)
        set_connection_limit(s);
    if (punch_agent_cli_start(s->cli, &s->server, &su) != 0)
        goto done;
    /* CONNECT right behind the first flight (with a token it is the first
     * flight's), before the streams are set up (cold start, issue 10);
     * forward asks once its own port listens. */
    if (s->want_name && !s->forwarding)
        ask_for_peer(s);
    if (!s->datagram) {
        punch_sctp_cfg sc = {.loop = s->loop, .driver = s->driver, .accept = s->listening,
                             .on_open = on_stream_open, .on_done = on_stream_done,
                             .on_tick = on_tick, .arg = s};
        if ((rc = punch_sctp_new(&s->sctp, &sc)) != 0) {
            fprintf(stderr, "punch: cannot set up streams: %s\n", punch_strerror(rc));
            goto done;
        }
        s->progress = isatty(2) && !s->listening_forwards && !s->forwarding;
        s->progress_ms = punch_clock_ms();
    }
    if (s->forwarding) {
        char a[PUNCH_ADDR_STRLEN];
        if ((s->tcp_fd = tcp_listen(&s->fwd_listen)) < 0 ||
            punch_loop_watch(s->loop, s->tcp_fd, on_tcp_accept, s) != 0) {
            fprintf(stderr, "punch forward: cannot listen on %s: %s\n",
                    punch_addr_format(&s->fwd_listen, a), strerror(errno));
            goto done;
        }
        punch_log(PUNCH_LOG_INFO, "forwarding %s to %s port %u", punch_addr_format(&s->fwd_listen, a),
                  s->want_name, s->fwd_port);
        if (s->want_name)
            ask_for_peer(s);
    }
    uint64_t give_up = punch_clock_ms() + 1000u * (uint64_t)timeout_s;
    if (timeout_s > 0 && punch_loop_timer_add(s->loop, give_up, on_timeout, s, &s->timeout) != 0) {
        fprintf(stderr, "punch: cannot set the timeout: %s\n", strerror(errno));
        goto done;
    }
    if (punch_loop_run(s->loop) != 0)
        fprintf(stderr, "punch: event loop failed: %s\n", strerror(errno));
done:
    if (s->sctp) {
        stream_counters(s);
        punch_sctp_free(s->sctp);
    }
    if (s->tcp_fd >= 0)
        close(s->tcp_fd);
    if (s->spare_fd >= 0)
        close(s->spare_fd);
    punch_agent_cli_stop(&su);
    return s->exit_code;
}

/* "PORT" (1 to 65535). Returns 0 or -1. */
static int parse_port(const char *text, uint16_t *port)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (*text < '0' || *text > '9' || *end || errno || v < 1 || v > 65535)
        return -1;
    *port = (uint16_t)v;
    return 0;
}

/* --allow-forward PORT[,PORT...]. Returns 0 or 2. */
static int parse_allow(const char *cmd, const char *text, session *s)
{
    char buf[256];
    if (snprintf(buf, sizeof(buf), "%s", text) >= (int)sizeof(buf))
        return punch_cli_usage_error(cmd, "--allow-forward: '%s' is too long", text);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (s->n_allow == MAX_ALLOW)
            return punch_cli_usage_error(cmd, "--allow-forward: '%s' names more than %d ports",
                                         text, MAX_ALLOW);
        if (parse_port(tok, &s->allow[s->n_allow]) != 0)
            return punch_cli_usage_error(cmd, "--allow-forward: '%s' is not a port (1 to 65535)",
                                         tok);
        s->n_allow++;
    }
    if (s->n_allow == 0)
        return punch_cli_usage_error(cmd, "--allow-forward: '%s' names no port", text);
    return 0;
}

/* forward --listen [ADDR:]PORT. Returns 0 or 2. */
static int parse_listen(const char *cmd, const char *text, session *s)
{
    uint16_t port;
    if (parse_port(text, &port) == 0) {
        s->fwd_listen = (punch_addr){.family = PUNCH_AF_INET, .port = port,
                                     .ip = {127, 0, 0, 1}};
        return 0;
    }
    if (punch_addr_parse(text, 0, &s->fwd_listen) != 0 || s->fwd_listen.port == 0)
        return punch_cli_usage_error(cmd, "--listen: '%s' is not [ADDR:]PORT", text);
    return 0;
}

/* What the options ask must make sense together. Returns 0 or 2. */
static int check_options(const char *cmd, const session *s, uint32_t flags, bool have_listen,
                         bool have_max)
{
    if ((flags & PUNCH_AGENT_NO_RELAY) && (flags & PUNCH_AGENT_RELAY_ONLY))
        return punch_cli_usage_error(cmd, "--no-relay and --relay-only leave no path");
    if (s->datagram && s->n_allow)
        return punch_cli_usage_error(cmd, "--allow-forward carries streams: not with --datagram");
    if (s->forwarding && !have_listen)
        return punch_cli_usage_error(cmd, "which local port? give --listen [ADDR:]PORT");
    if (have_max && !s->forwarding && !s->n_allow)
        return punch_cli_usage_error(cmd, "--max-connections is for forward and listen "
                                          "--allow-forward");
    return 0;
}

/* Options shared by listen, connect and forward. Returns 0, 2 (usage
 * error) or -1 (--help served). */
static int parse(int argc, char **argv, const char *cmd, const char *help, session *s,
                 uint32_t *flags, int *timeout_s)
{
    static const struct option longs[] = {
        {"keep-open", no_argument, NULL, 'k'}, {"no-relay", no_argument, NULL, 'n'},
        {"relay-only", no_argument, NULL, 'r'}, {"no-direct", no_argument, NULL, 'r'},
        {"tcp", no_argument, NULL, 't'},       {"timeout", required_argument, NULL, 'T'},
        {"datagram", no_argument, NULL, 'd'},  {"allow-forward", required_argument, NULL, 'a'},
        {"listen", required_argument, NULL, 'l'}, {"help", no_argument, NULL, 'h'},
        {"max-connections", required_argument, NULL, 'm'},
        PUNCH_ALLOW_OPTIONS,
        {0},
    };
    int c, rc;
    char *end;
    bool have_listen = false, have_max = false;
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
            if ((rc = punch_agent_cli_timeout(cmd, optarg, timeout_s)) != 0)
                return rc;
            break;
        case 'd':
            if (s->forwarding)
                return punch_cli_usage_error(cmd, "--datagram is for listen and connect");
            s->datagram = true;
            break;
        case 'a':
            if (!s->listening)
                return punch_cli_usage_error(cmd, "--allow-forward is for listen");
            if ((rc = parse_allow(cmd, optarg, s)) != 0)
                return rc;
            s->listening_forwards = true;
            break;
        case 'l':
            if (!s->forwarding)
                return punch_cli_usage_error(cmd, "--listen is for forward");
            if ((rc = parse_listen(cmd, optarg, s)) != 0)
                return rc;
            have_listen = true;
            break;
        case 'm': {
            errno = 0;
            long max = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end || errno || max < 1 || max > 1000000)
                return punch_cli_usage_error(cmd, "--max-connections: '%s' is not 1 to 1000000",
                                             optarg);
            s->max_conns = (unsigned)max;
            have_max = true;
            break;
        }
        case 'P':
        case 'A':
        case 'Y':
            if ((rc = punch_allow_option_take(&s->who, cmd, s->listening, c, optarg)) != 0)
                return rc;
            break;
        case 'h': fputs(help, stdout); return -1;
        case ':': return punch_cli_usage_error(cmd, "%s needs a value", argv[optind - 1]);
        default: return punch_cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
        }
    }
    return check_options(cmd, s, *flags, have_listen, have_max);
}

int punch_cmd_listen(const punch_cli *cli, int argc, char **argv)
{
    session s = {.cli = cli, .listening = true, .max_conns = DEFAULT_MAX_CONNECTIONS};
    uint32_t flags = 0;
    int timeout_s = 0, rc = parse(argc, argv, "punch listen", listen_help, &s, &flags, &timeout_s);
    if (rc == 0 && optind < argc)
        rc = punch_cli_usage_error("punch listen", "unexpected argument '%s'", argv[optind]);
    else if (rc == 0 && s.n_allow)
        rc = punch_allow_required(&s.who, "punch listen", "--allow-forward");
    if (rc == 0) {
        s.keep_open = s.keep_open || s.n_allow;
        rc = run(&s, flags, timeout_s);
    }
    punch_allow_free(&s.who);
    return rc < 0 ? 0 : rc;
}

int punch_cmd_connect(const punch_cli *cli, int argc, char **argv)
{
    session s = {.cli = cli};
    uint32_t flags = 0;
    int timeout_s = DEFAULT_CONNECT_TIMEOUT_S;
    int rc = parse(argc, argv, "punch connect", connect_help, &s, &flags,
                                  &timeout_s);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (optind != argc - 1)
        return punch_cli_usage_error("punch connect", optind < argc ? "unexpected argument '%s'"
                                                                    : "which peer? give PEER%s",
                                     optind < argc ? argv[optind + 1] : "[@PUBKEY]");
    if ((rc = punch_agent_cli_target("punch connect", argv[optind], s.target, s.pinned,
                                     &s.has_pin)) != 0)
        return rc;
    s.want_name = s.target;
    return run(&s, flags, timeout_s);
}

int punch_cmd_forward(const punch_cli *cli, int argc, char **argv)
{
    static const char cmd[] = "punch forward";
    session s = {.cli = cli, .forwarding = true, .max_conns = DEFAULT_MAX_CONNECTIONS};
    uint32_t flags = 0;
    int timeout_s = 0, rc = parse(argc, argv, cmd, forward_help, &s, &flags, &timeout_s);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (optind != argc - 1)
        return punch_cli_usage_error(cmd, optind < argc ? "unexpected argument '%s'"
                                                        : "where to? give PEER[@PUBKEY]:PORT%s",
                                     optind < argc ? argv[optind + 1] : "");
    char spec[PUNCH_NAME_MAX + PUNCH_KEY_B64_LEN + 16];
    snprintf(spec, sizeof(spec), "%s", argv[optind]);
    char *colon = strrchr(spec, ':');
    if (!colon || parse_port(colon + 1, &s.fwd_port) != 0)
        return punch_cli_usage_error(cmd, "'%s' is not PEER[@PUBKEY]:PORT", argv[optind]);
    *colon = '\0';
    if ((rc = punch_agent_cli_target(cmd, spec, s.target, s.pinned, &s.has_pin)) != 0)
        return rc;
    s.want_name = s.target;
    return run(&s, flags, timeout_s);
}
