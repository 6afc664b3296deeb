/* SPDX-License-Identifier: MIT */
/*
 * punch vpn: a TUN interface carrying IPv4 and IPv6 packets to one peer over punch's
 * encrypted datagrams (direct when possible, the relay when not: the agent
 * chooses). Which packets may pass is src/core/vpn.h's business; this file
 * is the plumbing: the command line, the TUN, the agent's driver, events.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent_cli.h"
#include "allow.h"
#include "core/vpn.h"
#include "common/cli.h"
#include "io/log.h"
#include "io/net.h"
#include "io/tun.h"
#include "wire/msg.h"

/* The TUN's MTU is at most the largest datagram the agent carries for us,
 * because a tunnel datagram is the bare IP packet (core/vpn.h). Without
 * IPv6 inside it is 1152 bytes, PUNCH_MAX_DATAGRAM: on the wire that packet
 * grows by the DATA message (2-byte punch header, 16-byte transport header,
 * 1-byte inner type, 16-byte Poly1305 tag: 35 bytes), through the relay by
 * the RELAY header (2 + 8-byte session: 10 more), then UDP (8) and IP (20,
 * or 40 for IPv6): at most 1152 + 35 + 10 + 8 + 40 = 1245 bytes, under the
 * 1280 every IPv6 path carries and the 1500 of Ethernet, so it is never
 * fragmented outside. IPv6 inside needs 1280 (RFC 8200 §5): at most 1373
 * bytes on the wire, which a 1500-byte path carries whole and a smaller one
 * only fragmented by the sender's kernel (docs/vpn.md, "MTU"). */
#define VPN_MTU_IPV4 PUNCH_MAX_DATAGRAM     /* default without an IPv6 address */
#define VPN_MTU_IPV6 PUNCH_VPN_IPV6_MIN_MTU /* default with one, and the least */
#define TUN_BATCH 64          /* packets read from the TUN per wakeup, sent in one sendmmsg */
#define HELLO_INTERVAL_S 1    /* HELLO repeated until both sides have the other's */

typedef struct vpn {
    const punch_cli *cli;
    const char *cmd;                /* "punch vpn listen" / "punch vpn connect" */
    bool listening;
    char peer_name[PUNCH_NAME_MAX + 1]; /* connect: the peer to reach */
    uint8_t pinned[PUNCH_KEY_LEN];
    bool has_pin;
    punch_allow who;                /* listen: the peers that may connect */
    bool locked;                    /* listen: the first peer's key holds the tunnel */
    uint8_t locked_key[PUNCH_KEY_LEN];
    uint32_t flags;
    int timeout_s;
    const char *dev_arg;
    punch_vpn_prefix address4, address6; /* family PUNCH_AF_NONE: not given */
    punch_vpn_prefix routes[PUNCH_VPN_MAX_ROUTES];
    size_t n_routes;
    unsigned mtu;

    char known_path[PATH_MAX];
    punch_addr server;
    punch_loop *loop;
    punch_driver *driver;
    punch_events *events;
    int tun;
    punch_loop_timer hello_timer, timeout;
    char dev[PUNCH_IFNAMSIZ];
    int peer;                       /* the agent's id of the tunnel's peer, -1 none */
    char peer_label[PUNCH_NAME_MAX + 1];
    bool have_path, warned_refused;
    punch_vpn v;
    uint64_t dropped_no_path, dropped_send, tun_write_errors;
    int exit_code;
} vpn;

static const char vpn_help[] =
    "usage: punch [--server HOST[:PORT]] [--name NAME] vpn listen\n"
    "             (--peer NAME@KEY... | --allowed-peers FILE | --any-peer)\n"
    "             --address IP/LEN [--address IP6/LEN] [--route NET/LEN]... [--mtu N]\n"
    "             [--dev NAME] [--no-relay] [--relay-only | --no-direct] [--timeout SECONDS]\n"
    "       punch [--server HOST[:PORT]] [--name NAME] vpn connect PEER[@PUBKEY]\n"
    "             --address IP/LEN [--address IP6/LEN] [--route NET/LEN]... [same options]\n"
    "\n"
    "An IPv4 and/or IPv6 tunnel to one peer: a TUN interface whose packets travel\n"
    "in punch's encrypted datagrams, directly when the network allows it, through\n"
    "the server's relay when not. 'listen' registers as NAME and waits for the\n"
    "peer; 'connect' reaches PEER (its key learnt as for 'punch connect').\n"
    "\n"
    "  --address IP/LEN   our address in the tunnel and its network, e.g.\n"
    "                     10.99.0.1/24 or fd99::1/64; once per family (both for\n"
    "                     dual stack). The peer announces its own, which must lie\n"
    "                     in this network (or a --route)\n"
    "  --route NET/LEN    a network behind the peer (up to 16, IPv4 or IPv6, of a\n"
    "                     family we have an --address of): routed into the\n"
    "                     tunnel, and accepted as a source from the peer\n"
    "  --mtu N            the interface's MTU, 68 to 1280; default 1152 (nothing\n"
    "                     is fragmented outside), 1280 with an IPv6 address, the\n"
    "                     least IPv6 allows (outside: up to 1373 bytes)\n"
    "  --dev NAME         the interface's name (default punch%d: the first free)\n"
    "  --no-relay, --relay-only (--no-direct), --timeout SECONDS: as for connect\n"
    "\n"
    "listen needs one of these (the first peer let in holds the tunnel until we\n"
    "stop; others are refused):\n"
    PUNCH_ALLOW_HELP
    "\n"
    "Only packets whose source is the peer's tunnel address or inside a --route\n"
    "are taken from it (WireGuard's allowed-ips); everything else is dropped and\n"
    "counted. SIGUSR1 writes the counters as an event; SIGINT/SIGTERM close the\n"
    "tunnel (the interface goes with it) and exit 0. Needs CAP_NET_ADMIN.\n";

static void finish(vpn *s, int code)
{
    punch_agent_cli_finish(s->loop, &s->exit_code, code);
}

static void emit_counters(vpn *s, const char *event)
{
    const punch_vpn_counters *c = &s->v.c;
    punch_events_emit(
        s->events, event,
        "\"dev\":\"%s\",\"tun_packets\":%llu,\"tun_bytes\":%llu,\"peer_packets\":%llu,"
        "\"peer_bytes\":%llu,\"hellos\":%llu,\"dropped_tun_not_ip\":%llu,"
        "\"dropped_tun_malformed\":%llu,\"dropped_tun_ipv6_malformed\":%llu,"
        "\"dropped_tun_oversize\":%llu,\"dropped_tun_no_route\":%llu,"
        "\"dropped_tun_ipv6_no_route\":%llu,\"dropped_no_path\":%llu,\"dropped_send\":%llu,"
        "\"dropped_peer_not_ip\":%llu,\"dropped_peer_malformed\":%llu,"
        "\"dropped_peer_ipv6_malformed\":%llu,\"dropped_peer_source\":%llu,"
        "\"dropped_peer_ipv6_source\":%llu,\"dropped_peer_hello\":%llu,"
        "\"dropped_peer_control\":%llu,\"tun_write_errors\":%llu,\"refused_peers\":%llu",
        s->dev, (unsigned long long)c->tun_packets, (unsigned long long)c->tun_bytes,
        (unsigned long long)c->peer_packets, (unsigned long long)c->peer_bytes,
        (unsigned long long)c->hellos, (unsigned long long)c->tun_not_ip,
        (unsigned long long)c->tun_malformed, (unsigned long long)c->tun_ipv6_malformed,
        (unsigned long long)c->tun_oversize, (unsigned long long)c->tun_no_route,
        (unsigned long long)c->tun_ipv6_no_route, (unsigned long long)s->dropped_no_path,
        (unsigned long long)s->dropped_send, (unsigned long long)c->peer_not_ip,
        (unsigned long long)c->peer_malformed, (unsigned long long)c->peer_ipv6_malformed,
        (unsigned long long)c->peer_source, (unsigned long long)c->peer_ipv6_source,
        (unsigned long long)c->peer_hello_refused, (unsigned long long)c->peer_control,
        (unsigned long long)s->tun_write_errors, (unsigned long long)s->who.refused);
}

static void send_hello(vpn *s)
{
    uint8_t h[PUNCH_VPN_HELLO_MAX];
    if (s->peer < 0 || !s->have_path)
        return;
    size_t len = punch_vpn_hello_write(&s->v, h);
    punch_agent_send(punch_driver_agent(s->driver), punch_clock_ms(), s->peer, h, len);
    punch_driver_flush(s->driver);
}

/* ---- packets ---- */

static void on_tun(void *arg, int fd)
{
    vpn *s = arg;
    uint8_t buf[PUNCH_UDP_MTU];
    punch_agent *a = punch_driver_agent(s->driver);
    uint64_t now = punch_clock_ms();
    unsigned queued = 0;
    for (int i = 0; i < TUN_BATCH; i++) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break; /* EAGAIN: all read */
        if (!punch_vpn_from_tun(&s->v, buf, (size_t)n))
            continue;
        if (s->peer < 0 || !s->have_path) {
            s->dropped_no_path++;
            continue;
        }
        int rc = punch_agent_send(a, now, s->peer, buf, (size_t)n);
        if (rc == PUNCH_ERR_LIMIT)
            s->dropped_no_path++;
        else if (rc != 0)
            s->dropped_send++;
        else
            queued++;
    }
    if (queued)
        punch_driver_flush(s->driver); /* one sendmmsg for the batch */
}

#define ADDRESSES_STRLEN (2 * PUNCH_VPN_PREFIX_STRLEN + 32)

/* An IPv4 and an IPv6 address, each when there is one: for an event
 * (json: `"address":"10.99.0.2/24","address6":"fd99::2/64",`) or the log
 * ("10.99.0.2/24 fd99::2/64"). */
static const char *addresses(const punch_vpn_prefix *a4, const punch_vpn_prefix *a6, bool json,
                             char out[ADDRESSES_STRLEN])
{
    const punch_vpn_prefix *both[] = {a4, a6};
    char a[PUNCH_VPN_PREFIX_STRLEN];
    int off = 0;
    out[0] = '\0';
    for (int i = 0; i < 2; i++) {
        if (!both[i]->family)
            continue;
        punch_vpn_prefix_format(both[i], a);
        off += snprintf(out + off, ADDRESSES_STRLEN - (size_t)off,
                        json ? "\"address%s\":\"%s\"," : "%s%s", json ? (i ? "6" : "") :
                        (off ? " " : ""), a);
    }
    return off || json ? out : "no address";
}

static void from_peer(vpn *s, const punch_event *ev)
{
    uint8_t pkt[PUNCH_VPN_MAX_MTU];
    size_t ip_len = 0;
    char a[PUNCH_VPN_PREFIX_STRLEN], text[ADDRESSES_STRLEN];
    if (ev->data.len > sizeof(pkt)) { /* the agent never delivers more; counted all the same */
        s->v.c.peer_malformed++;
        return;
    }
    memcpy(pkt, ev->data.bytes, ev->data.len); /* the IPv4 parser wants a buffer it may write */
    switch (punch_vpn_from_peer(&s->v, pkt, ev->data.len, &ip_len)) {
    case PUNCH_VPN_DELIVER:
        if (write(s->tun, pkt, ip_len) != (ssize_t)ip_len)
            s->tun_write_errors++;
        break;
    case PUNCH_VPN_HELLO:
        if (s->v.peer_changed) {
            punch_events_emit(s->events, "vpn-peer", "\"peer\":\"%s\",\"dev\":\"%s\",%s\"mtu\":%u",
                              ev->peer_name, s->dev,
                              addresses(&s->v.peer4, &s->v.peer6, true, text), s->v.peer_mtu);
            punch_log(PUNCH_LOG_INFO, "%s is %s in the tunnel (%s, mtu %u)", ev->peer_name,
                      addresses(&s->v.peer4, &s->v.peer6, false, text), s->dev, s->v.peer_mtu);
            if (s->v.peer_mtu > s->v.mtu)
                punch_log(PUNCH_LOG_INFO, "%s's MTU is %u, ours %u: each side sends what its "
                                          "own allows", ev->peer_name, s->v.peer_mtu, s->v.mtu);
        }
        if (s->v.answer_due)
            send_hello(s);
        break;
    case PUNCH_VPN_HELLO_REFUSED:
        if (!s->warned_refused) { /* once: the peer must not fill our logs */
            s->warned_refused = true;
            punch_vpn_prefix_format(&s->v.refused, a);
            punch_log(PUNCH_LOG_WARN, "%s says its tunnel address is %s, outside our network "
                                      "and routes (or ours): its packets are dropped",
                      ev->peer_name, a);
        }
        break;
    case PUNCH_VPN_DROP:
        break;
    }
}

/* ---- the agent's events ---- */

/* Whether an introduced peer may have the tunnel (listen): allowed, and
 * the one that holds it once one does. Refused otherwise (counted). */
static bool admit(vpn *s, const punch_event *ev)
{
    if (!punch_allow_introduced(&s->who, s->events, s->known_path, ev))
        return false;
    if (s->locked && memcmp(s->locked_key, ev->peer_key, PUNCH_KEY_LEN) != 0) {
        punch_allow_refused(&s->who, s->events, ev,
                            "not the key of the peer that holds the tunnel");
        return false;
    }
    return true;
}

static void on_introduced(vpn *s, const punch_event *ev)
{
    punch_agent *agent = punch_driver_agent(s->driver);
    if (!s->listening) {
        if (!s->has_pin && !punch_agent_cli_trust(s->known_path, ev)) {
            punch_agent_close(agent, punch_clock_ms(), ev->peer);
            finish(s, 1);
        }
        return;
    }
    if (!admit(s, ev)) {
        punch_agent_close(agent, punch_clock_ms(), ev->peer); /* no handshake, no data */
        return;
    }
    if (!s->locked) {
        s->locked = true;
        memcpy(s->locked_key, ev->peer_key, PUNCH_KEY_LEN);
    }
    /* The same key again in another slot cannot happen (the agent keeps
     * one per key), but a new session in the same slot can: start over. */
    if (s->peer >= 0 && s->peer != ev->peer)
        punch_agent_close(agent, punch_clock_ms(), s->peer);
    s->peer = ev->peer;
    snprintf(s->peer_label, sizeof(s->peer_label), "%s", ev->peer_name);
    s->have_path = false;
    punch_vpn_peer_reset(&s->v);
}

/* Whether an address (of a path, of the server) lies in the tunnel's own
 * networks or routes: punch's packets to it would enter the tunnel. */
static const punch_vpn_prefix *in_tunnel(const vpn *s, const punch_addr *addr)
{
    if (punch_vpn_prefix_contains(&s->address4, addr->family, addr->ip))
        return &s->address4;
    if (punch_vpn_prefix_contains(&s->address6, addr->family, addr->ip))
        return &s->address6;
    for (size_t i = 0; i < s->n_routes; i++)
        if (punch_vpn_prefix_contains(&s->routes[i], addr->family, addr->ip))
            return &s->routes[i];
    return NULL;
}

/* A path inside the tunnel's own networks would carry the tunnel in itself. */
static void check_path(vpn *s, const punch_event *ev)
{
    if (in_tunnel(s, &ev->path.remote))
        punch_log(PUNCH_LOG_WARN, "the path to %s goes to an address inside the tunnel's "
                                  "networks: choose tunnel addresses that no real network uses",
                  ev->peer_name);
}

static void on_event(void *arg, punch_driver *d, const punch_event *ev)
{
    vpn *s = arg;
    punch_agent_cli_report(s->events, &s->server, d, ev);
    switch (ev->kind) {
    case PUNCH_EVENT_INTRODUCED:
        on_introduced(s, ev);
        break;
    case PUNCH_EVENT_PATH:
        if (!s->listening && !s->has_pin && !punch_agent_cli_learn(s->known_path, ev)) {
            punch_agent_close(punch_driver_agent(d), punch_clock_ms(), ev->peer);
            finish(s, 1);
            break;
        }
        if (ev->peer != s->peer)
            break;
        check_path(s, ev);
        if (!s->have_path) {
            s->have_path = true;
            send_hello(s);
        }
        break;
    case PUNCH_EVENT_DATA:
        if (ev->peer == s->peer)
            from_peer(s, ev);
        break;
    case PUNCH_EVENT_CLOSED: {
        if (ev->peer != s->peer)
            break;
        bool had_path = s->have_path;
        s->peer = s->listening ? -1 : s->peer;
        s->have_path = false;
        punch_vpn_peer_reset(&s->v);
        if (s->listening) {
            punch_log(PUNCH_LOG_INFO, "%s: %s; waiting for the next connection", ev->peer_name,
                      ev->closed.why);
            break;
        }
        finish(s, punch_agent_cli_closed_fine(ev, had_path) ? 0 : 1);
        break;
    }
    case PUNCH_EVENT_SOCKETS: /* the driver's business */
    case PUNCH_EVENT_TCP_OFFER:
    case PUNCH_EVENT_PORTMAP: /* told by punch_agent_cli_report */
    case PUNCH_EVENT_TURN:
    case PUNCH_EVENT_TOKEN:   /* kept by punch_agent_cli_start's watcher */
        break;
    case PUNCH_EVENT_REFUSED: /* said by punch_agent_cli_report */
        finish(s, 1);
        break;
    default: /* told by punch_agent_cli_report, or the driver's business */
        break;
    }
}

static void on_hello_timer(void *arg, uint64_t now_ms)
{
    vpn *s = arg;
    punch_loop_timer_set(s->loop, s->hello_timer, now_ms + 1000u * HELLO_INTERVAL_S);
    if (punch_vpn_hello_needed(&s->v))
        send_hello(s);
}

static void on_timeout(void *arg, uint64_t now_ms)
{
    (void)now_ms;
    vpn *s = arg;
    if (!s->have_path) {
        fprintf(stderr, "punch: no path to %s found in time\n",
                s->peer_name[0] ? s->peer_name : "any peer");
        finish(s, 1);
    }
}

static void on_signal(void *arg, int signo)
{
    vpn *s = arg;
    if (signo == SIGUSR1) {
        emit_counters(s, "counters");
        return;
    }
    punch_agent_cli_goodbye(s->driver, s->peer);
    finish(s, 0);
}

/* ---- set-up ---- */

/* A loop timer that fires in this many seconds (fn sets it again to repeat). */
static int add_timer(vpn *s, int seconds, punch_loop_timer_fn fn, punch_loop_timer *id)
{
    return punch_loop_timer_add(s->loop, punch_clock_ms() + 1000u * (uint64_t)seconds, fn, s, id);
}

static int open_tun(vpn *s)
{
    s->tun = punch_tun_open(s->dev_arg, s->dev);
    if (s->tun >= 0)
        return 0;
    if (errno == ENOENT || errno == ENODEV)
        fprintf(stderr, "punch: no /dev/net/tun: this system has no TUN driver (modprobe tun)\n");
    else if (errno == EPERM || errno == EACCES)
        fprintf(stderr, "punch: not allowed to create TUN device '%s': needs CAP_NET_ADMIN "
                        "(run as root)\n", s->dev_arg);
    else if (errno == EBUSY)
        fprintf(stderr, "punch: TUN device '%s' is in use by another program\n", s->dev_arg);
    else
        fprintf(stderr, "punch: cannot create TUN device '%s': %s\n", s->dev_arg,
                strerror(errno));
    return -1;
}

/* IPv6 on the interface only with an IPv6 address: without one the kernel
 * would still send router solicitations and MLD reports into it. With one,
 * no link-local address (nothing in the tunnel uses it) and no duplicate
 * address detection (the peer is the only other node, and its address is
 * checked to differ from ours): the address is usable at once. */
static int configure_ipv6(vpn *s)
{
    char path[128], a[PUNCH_VPN_PREFIX_STRLEN];
    snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", s->dev);
    if (!s->address6.family) {
        punch_sysctl_write(path, "1"); /* no IPv6 in the kernel: nothing to turn off */
        return 0;
    }
    if (punch_sysctl_write(path, "0") != 0) {
        fprintf(stderr, "punch: cannot turn IPv6 on for %s (%s): is IPv6 off in the kernel?\n",
                s->dev, path);
        return -1;
    }
    punch_ip_run(true, "link set dev %s addrgenmode none", s->dev); /* old ip: a link-local */
    punch_vpn_prefix_format(&s->address6, a);
    if (punch_ip_run(true, "addr add %s dev %s nodad", a, s->dev) != 0) {
        fprintf(stderr, "punch: cannot give %s the address %s (ip addr add failed)\n", s->dev, a);
        return -1;
    }
    return 0;
}

/* Addresses, MTU, routes; the interface up. */
static int configure_tun(vpn *s)
{
    char a[PUNCH_VPN_PREFIX_STRLEN];
    if (configure_ipv6(s) != 0)
        return -1;
    punch_vpn_prefix_format(&s->address4, a);
    if (s->address4.family && punch_ip_run(true, "addr add %s dev %s", a, s->dev) != 0) {
        fprintf(stderr, "punch: cannot give %s the address %s (ip addr add failed)\n", s->dev, a);
        return -1;
    }
    if (punch_ip_run(true, "link set dev %s mtu %u up", s->dev, s->mtu) != 0) {
        fprintf(stderr, "punch: cannot bring %s up with MTU %u (ip link set failed)\n", s->dev,
                s->mtu);
        return -1;
    }
    for (size_t i = 0; i < s->n_routes; i++) {
        punch_vpn_prefix_format(&s->routes[i], a);
        if (punch_ip_run(true, "route add %s dev %s", a, s->dev) != 0) {
            fprintf(stderr, "punch: cannot route %s into %s (ip route add failed: already "
                            "routed elsewhere?)\n", a, s->dev);
            return -1;
        }
    }
    return 0;
}

static void emit_interface(vpn *s)
{
    char a[PUNCH_VPN_PREFIX_STRLEN], text[ADDRESSES_STRLEN],
        routes[PUNCH_VPN_MAX_ROUTES * (PUNCH_VPN_PREFIX_STRLEN + 3) + 1];
    size_t off = 0;
    routes[0] = '\0';
    for (size_t i = 0; i < s->n_routes; i++) {
        punch_vpn_prefix_format(&s->routes[i], a);
        off += (size_t)snprintf(routes + off, sizeof(routes) - off, "%s\"%s\"", i ? "," : "", a);
    }
    punch_events_emit(s->events, "interface", "\"dev\":\"%s\",%s\"mtu\":%u,\"routes\":[%s]",
                      s->dev, addresses(&s->address4, &s->address6, true, text), s->mtu, routes);
    punch_log(PUNCH_LOG_INFO, "%s is up: %s, mtu %u", s->dev,
              addresses(&s->address4, &s->address6, false, text), s->mtu);
}

static int run(vpn *s)
{
    static const int signals[] = {SIGINT, SIGTERM, SIGUSR1};
    punch_agent_cli_setup su = {.cmd = s->cmd, .listening = s->listening,
                                .flags = s->flags | PUNCH_AGENT_LARGE_DATAGRAMS,
                                .signals = signals, .n_signals = 3, .on_signal = on_signal,
                                .on_event = on_event, .arg = s, .known_path = s->known_path,
                                .events = &s->events, .loop = &s->loop, .driver = &s->driver};
    int rc = punch_vpn_init(&s->v, s->address4.family ? &s->address4 : NULL,
                            s->address6.family ? &s->address6 : NULL, s->routes, s->n_routes,
                            (uint16_t)s->mtu);
    if (rc != 0)
        return punch_cli_usage_error(s->cmd, "bad tunnel settings"); /* parse() checked them */
    if ((rc = punch_agent_cli_server(s->cli, s->cmd, &s->server)) != 0)
        return rc;
    const punch_vpn_prefix *covering = in_tunnel(s, &s->server);
    if (covering) {
        char a[PUNCH_VPN_PREFIX_STRLEN];
        punch_vpn_prefix_format(covering, a);
        return punch_cli_usage_error(s->cmd, "%s: '%s' covers the server %s: punch's own packets "
                                     "would enter the tunnel",
                                     covering == &s->address4 || covering == &s->address6
                                         ? "--address" : "--route", a, s->cli->server);
    }
    s->peer = -1;
    s->tun = -1;
    s->exit_code = 1;
    /* The driver lists this host's addresses as our private endpoints
     * (draft §3.3.2) when it starts: before the tunnel has its address, or
     * the peer would try to reach us through the tunnel itself. Datagrams
     * up to 1280 bytes both ways, whatever our own MTU: the peer's may be
     * larger (each side sends what its own allows). */
    if (open_tun(s) != 0 || punch_agent_cli_start(s->cli, &s->server, &su) != 0)
        goto done;
    if (configure_tun(s) != 0)
        goto done;
    emit_interface(s);
    if (punch_loop_watch(s->loop, s->tun, on_tun, s) != 0 ||
        add_timer(s, HELLO_INTERVAL_S, on_hello_timer, &s->hello_timer) != 0 ||
        (s->timeout_s > 0 && add_timer(s, s->timeout_s, on_timeout, &s->timeout) != 0)) {
        fprintf(stderr, "punch: cannot set up the event loop: %s\n", strerror(errno));
        goto done;
    }
    if (!s->listening) {
        s->peer = punch_agent_connect(punch_driver_agent(s->driver), punch_clock_ms(),
                                      s->peer_name, s->has_pin ? s->pinned : NULL);
        snprintf(s->peer_label, sizeof(s->peer_label), "%s", s->peer_name);
        punch_driver_flush(s->driver);
    }
    if (punch_loop_run(s->loop) != 0)
        fprintf(stderr, "punch: event loop failed: %s\n", strerror(errno));
    emit_counters(s, "stopped");
done:
    punch_agent_cli_stop(&su);
    if (s->tun >= 0)
        close(s->tun); /* the interface, its address and routes go with it */
    return s->exit_code;
}

/* ---- the command line ---- */

static const char *family_name(uint8_t family)
{
    return family == PUNCH_AF_INET6 ? "IPv6" : "IPv4";
}

/* --address: at most one per family, each a host address of its network.
 * Returns 0 or the usage error's 2. */
static int parse_address(vpn *s, const char *text)
{
    punch_vpn_prefix a;
    if (punch_vpn_prefix_parse(text, &a) != 0)
        return punch_cli_usage_error(s->cmd, "--address: '%s' is not an %s address with its "
                                     "prefix length, e.g. %s", text,
                                     strchr(text, ':') ? "IPv6" : "IPv4",
                                     strchr(text, ':') ? "fd99::1/64" : "10.99.0.1/24");
    punch_vpn_prefix *slot = a.family == PUNCH_AF_INET6 ? &s->address6 : &s->address4;
    if (slot->family)
        return punch_cli_usage_error(s->cmd, "--address: '%s' is a second %s address (give at "
                                     "most one IPv4 and one IPv6)", text, family_name(a.family));
    if (!punch_vpn_prefix_is_host(&a))
        return punch_cli_usage_error(s->cmd, "--address: '%s' is not a host address of its "
                                     "network", text);
    *slot = a;
    return 0;
}

/* --route: a network without host bits. Returns 0 or the usage error's 2. */
static int parse_route(vpn *s, const char *text)
{
    punch_vpn_prefix r;
    char net[PUNCH_VPN_PREFIX_STRLEN];
    if (punch_vpn_prefix_parse(text, &r) != 0)
        return punch_cli_usage_error(s->cmd, "--route: '%s' is not an %s network NET/LEN, e.g. "
                                     "%s", text, strchr(text, ':') ? "IPv6" : "IPv4",
                                     strchr(text, ':') ? "fd50::/64" : "10.50.0.0/24");
    punch_vpn_prefix n = punch_vpn_prefix_network(&r);
    if (memcmp(n.ip, r.ip, sizeof(r.ip)) != 0) {
        punch_vpn_prefix_format(&n, net);
        return punch_cli_usage_error(s->cmd, "--route: '%s' has host bits set (the network is "
                                     "%s)", text, net);
    }
    if (s->n_routes == PUNCH_VPN_MAX_ROUTES)
        return punch_cli_usage_error(s->cmd, "--route: '%s' is one too many (at most %d)", text,
                                     PUNCH_VPN_MAX_ROUTES);
    s->routes[s->n_routes++] = r;
    return 0;
}

/* What needs every option: an address; routes of its families; an MTU
 * IPv6 can live with (RFC 8200 §5: links carry 1280 bytes whole). Returns
 * 0 or the usage error's 2. */
static int check_tunnel(vpn *s, const char *mtu_arg)
{
    char a[PUNCH_VPN_PREFIX_STRLEN];
    if (!s->address4.family && !s->address6.family)
        return punch_cli_usage_error(s->cmd, "--address IP/LEN is needed (our address in the "
                                     "tunnel, e.g. 10.99.0.1/24 or fd99::1/64)");
    for (size_t i = 0; i < s->n_routes; i++) {
        uint8_t family = s->routes[i].family;
        if ((family == PUNCH_AF_INET6 ? &s->address6 : &s->address4)->family != family) {
            punch_vpn_prefix_format(&s->routes[i], a);
            return punch_cli_usage_error(s->cmd, "--route: '%s' is an %s network, but no %s "
                                         "--address was given", a, family_name(family),
                                         family_name(family));
        }
    }
    if (!mtu_arg)
        s->mtu = s->address6.family ? VPN_MTU_IPV6 : VPN_MTU_IPV4;
    else if (s->address6.family && s->mtu < VPN_MTU_IPV6) {
        punch_vpn_prefix_format(&s->address6, a);
        return punch_cli_usage_error(s->cmd, "--mtu: '%s' is under %d, the least IPv6 allows "
                                     "(RFC 8200), and --address %s is IPv6", mtu_arg,
                                     VPN_MTU_IPV6, a);
    }
    return 0;
}

/* Returns 0 to run, 2 on a usage error, -1 after --help. */
static int parse(vpn *s, int argc, char **argv)
{
    static const struct option longs[] = {
        {"address", required_argument, NULL, 'a'}, {"route", required_argument, NULL, 'R'},
        {"mtu", required_argument, NULL, 'm'},     {"dev", required_argument, NULL, 'd'},
        PUNCH_ALLOW_OPTIONS,                       {"no-relay", no_argument, NULL, 'n'},
        {"relay-only", no_argument, NULL, 'r'},    {"no-direct", no_argument, NULL, 'r'},
        {"timeout", required_argument, NULL, 'T'}, {"help", no_argument, NULL, 'h'},
        {0},
    };
    const char *mtu_arg = NULL;
    char *end;
    long v;
    int c, rc;
    s->dev_arg = "punch%d";
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", longs, NULL)) != -1) {
        switch (c) {
        case 'a':
            if ((rc = parse_address(s, optarg)) != 0)
                return rc;
            break;
        case 'R':
            if ((rc = parse_route(s, optarg)) != 0)
                return rc;
            break;
        case 'm':
            errno = 0;
            v = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end || errno || v < PUNCH_VPN_IPV4_MIN_MTU ||
                v > PUNCH_VPN_MAX_MTU)
                return punch_cli_usage_error(s->cmd, "--mtu: '%s' is not %d to %d", optarg,
                                             PUNCH_VPN_IPV4_MIN_MTU, PUNCH_VPN_MAX_MTU);
            s->mtu = (unsigned)v;
            mtu_arg = optarg;
            break;
        case 'd': {
            const char *pct = strchr(optarg, '%');
            if (!optarg[0] || strlen(optarg) >= PUNCH_IFNAMSIZ || strchr(optarg, '/') ||
                strpbrk(optarg, " \t\n:") || (pct && (pct[1] != 'd' || strchr(pct + 1, '%'))))
                return punch_cli_usage_error(s->cmd, "--dev: '%s' is not an interface name (1 "
                                             "to %d characters, no '/', ':' or spaces)", optarg,
                                             PUNCH_IFNAMSIZ - 1);
            s->dev_arg = optarg;
            break;
        }
        case 'P':
        case 'A':
        case 'Y':
            if ((rc = punch_allow_option_take(&s->who, s->cmd, s->listening, c, optarg)) != 0)
                return rc;
            break;
        case 'n': s->flags |= PUNCH_AGENT_NO_RELAY; break;
        case 'r': s->flags |= PUNCH_AGENT_RELAY_ONLY; break;
        case 'T':
            if ((rc = punch_agent_cli_timeout(s->cmd, optarg, &s->timeout_s)) != 0)
                return rc;
            break;
        case 'h': fputs(vpn_help, stdout); return -1;
        case ':': return punch_cli_usage_error(s->cmd, "%s needs a value", argv[optind - 1]);
        default: return punch_cli_usage_error(s->cmd, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if ((s->flags & PUNCH_AGENT_NO_RELAY) && (s->flags & PUNCH_AGENT_RELAY_ONLY))
        return punch_cli_usage_error(s->cmd, "--no-relay and --relay-only leave no path");
    if (s->listening) {
        if (optind < argc)
            return punch_cli_usage_error(s->cmd, "unexpected argument '%s'", argv[optind]);
    } else {
        if (optind != argc - 1)
            return optind < argc ? punch_cli_usage_error(s->cmd, "unexpected argument '%s'",
                                                         argv[optind + 1])
                                 : punch_cli_usage_error(s->cmd, "which peer? give PEER[@PUBKEY]");
        if ((rc = punch_agent_cli_target(s->cmd, argv[optind], s->peer_name, s->pinned,
                                         &s->has_pin)) != 0)
            return rc;
    }
    rc = check_tunnel(s, mtu_arg);
    return rc == 0 && s->listening ? punch_allow_required(&s->who, s->cmd, "the tunnel") : rc;
}

int punch_cmd_vpn(const punch_cli *cli, int argc, char **argv)
{
    vpn s = {.cli = cli, .cmd = "punch vpn"};
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(vpn_help, stdout);
        return 0;
    }
    if (argc < 2)
        return punch_cli_usage_error("punch vpn", "listen or connect?");
    if (strcmp(argv[1], "listen") != 0 && strcmp(argv[1], "connect") != 0)
        return punch_cli_usage_error("punch vpn", "'%s' is not listen or connect", argv[1]);
    s.listening = strcmp(argv[1], "listen") == 0;
    s.cmd = s.listening ? "punch vpn listen" : "punch vpn connect";
    int rc = parse(&s, argc - 1, argv + 1);
    if (rc == 0)
        rc = run(&s);
    punch_allow_free(&s.who);
    return rc < 0 ? 0 : rc;
}
