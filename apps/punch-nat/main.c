/* SPDX-License-Identifier: MIT */
/*
 * punch-nat: a user-space NAT for a Linux router (or network namespace) with
 * a LAN side and a WAN side, applying the NAT model of src/nat to real IPv4
 * UDP, TCP and ICMP packets. With the default preset it is the "P2P-NAT" of
 * the draft's §5.
 *
 * How packets reach us: two TUN devices and policy routing. Everything the
 * kernel would forward from the LAN goes to TUN "<name>o" (outbound); UDP,
 * TCP and ICMP arriving on the WAN for us goes to TUN "<name>i" (inbound), by
 * rules placed before the local table. We translate and write each packet
 * back into the TUN it came from; the kernel routes it on. A packet's
 * direction is thus known from its TUN, never guessed from addresses.
 */
#include <errno.h>
#include <getopt.h>
#include <linux/if.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cli.h"
#include "common/events.h"
#include "io/log.h"
#include "io/loop.h"
#include "io/net.h"
#include "io/tun.h"
#include "nat/nat.h"
#include "nat/nat_packet.h"
#include "wire/ipv4.h"

#define TUN_MTU 1500
#define PACKETS_PER_WAKEUP 64
#define RULE_PREF_WAN 100   /* before the local table, moved to LOCAL_PREF */
#define RULE_PREF_HAIRPIN 150
#define LOCAL_PREF 200
#define RULE_PREF_LAN 300
#define DEFAULT_TABLE_IN 7701
#define DEFAULT_TABLE_OUT 7702

static const char usage_text[] =
    "usage: punch-nat --lan IFACE --wan IFACE --public IP[+IP...] [--nat SPEC]\n"
    "                 [--name NAME] [--events FILE|-] [--log-level L] [--seed N]\n"
    "                 [--no-setup]\n"
    "\n"
    "A user-space NAT for this router (or network namespace): packets from\n"
    "the LAN interface to elsewhere leave by the WAN interface translated to\n"
    "a public IP, with the mapping, filtering, port allocation, hairpinning and\n"
    "timeouts that --nat describes (RFC 4787 / RFC 5382 vocabulary).\n"
    "\n"
    "  --lan IFACE, --wan IFACE   the inside and outside interfaces\n"
    "  --public IP[+IP...]        public address(es), already on the WAN interface\n"
    "  --nat SPEC                 a preset and/or key=value settings, comma-separated:\n"
    "                             presets p2p (default: the draft's §5), full-cone,\n"
    "                             restricted-cone, port-restricted-cone,\n"
    "                             symmetric-sequential, symmetric-random, firewall,\n"
    "                             basic-nat, cgnat; keys mapping=eim|adm|apdm,\n"
    "                             filtering=eif|adf|apdf, ports=preserve|sequential|random,\n"
    "                             step=N, port-range=LO-HI, hairpin=on|off,\n"
    "                             refresh=outbound|both, syn=drop|rst, trap=on|off\n"
    "                             (Linux's conntrack trap: a flow to a remote that\n"
    "                             sent to its port first gets another port),\n"
    "                             rst-close=on|off (Linux conntrack: a RST closes\n"
    "                             the TCP session; the remote's SYN is then refused),\n"
    "                             isn-check=on|off (Linux conntrack: a SYN or SYN-ACK\n"
    "                             with a new ISN after SYNs crossed is dropped),\n"
    "                             pooling=paired|arbitrary, udp-timeout=30s, tcp-timeout=2h,\n"
    "                             tcp-transitory-timeout=4m, icmp-timeout=60s, mappings=N,\n"
    "                             host-mappings=N (per inside host; default half)\n"
    "                             e.g. --nat symmetric-sequential,step=2,hairpin=on\n"
    "  --name NAME                TUN devices NAMEo and NAMEi (default pnat)\n"
    "  --events FILE|-            JSON events: started, mapping-created,\n"
    "                             mapping-expired, counters, reset, stopped\n"
    "  --seed N                   seed random port choice (default: from the kernel)\n"
    "  --no-setup                 create the TUN devices but leave routing to the caller\n"
    "  --help, --version\n"
    "\n"
    "Signals: SIGUSR1 writes the counters; SIGHUP forgets every mapping (as a\n"
    "NAT reboot would); SIGINT/SIGTERM remove the routing set-up and exit.\n"
    "Needs CAP_NET_ADMIN (root in a namespace is enough).\n";

typedef struct options {
    const char *lan, *wan, *name, *events, *spec;
    punch_addr public_ip[PUNCH_NAT_MAX_PUBLIC];
    size_t n_public;
    int log_level;
    bool setup;
    bool have_seed;
    uint64_t seed;
} options;

typedef struct natd {
    options opt;
    punch_nat_cfg cfg;
    punch_nat *nat;
    punch_events *events;
    punch_loop *loop;
    int tun_out, tun_in;
    punch_loop_timer timer;     /* the next mapping expiry */
    char tun_out_name[IFNAMSIZ], tun_in_name[IFNAMSIZ];
    bool routing_done;
    uint64_t rng[2];            /* xorshift128+ state */
    uint64_t dropped_parse, dropped_proto, dropped_icmp, write_errors;
} natd;

/* ---- randomness for the model: xorshift128+ seeded once ---- */

static uint64_t next_random(void *ctx)
{
    uint64_t *s = ctx, a = s[0];
    const uint64_t b = s[1];
    s[0] = b;
    a ^= a << 23;
    s[1] = a ^ b ^ (a >> 17) ^ (b >> 26);
    return s[1] + b;
}

static void sysctl_dev(const char *dev, const char *key, const char *value)
{
    char path[128];
    snprintf(path, sizeof(path), "/proc/sys/net/ipv4/conf/%s/%s", dev, key);
    if (punch_sysctl_write(path, value) != 0)
        punch_log(PUNCH_LOG_WARN, "cannot set %s to %s: %s", path, value, strerror(errno));
}

static void routing_down(natd *d)
{
    const options *o = &d->opt;
    for (int pref = RULE_PREF_WAN; pref <= RULE_PREF_WAN + 2; pref++)
        punch_ip_run(true, "rule del pref %d", pref);
    for (size_t i = 0; i < o->n_public; i++)
        punch_ip_run(true, "rule del pref %d", RULE_PREF_HAIRPIN);
    punch_ip_run(true, "rule del pref %d", RULE_PREF_LAN);
    /* Put the local table back first in line, if we had moved it (the
     * kernel would take a duplicate rule). */
    if (punch_ip_run(true, "rule del pref %d lookup local", LOCAL_PREF) == 0)
        punch_ip_run(true, "rule add pref 0 lookup local");
    punch_ip_run(true, "route flush table %d", DEFAULT_TABLE_IN);
    punch_ip_run(true, "route flush table %d", DEFAULT_TABLE_OUT);
}

/* The policy routing described at the top of this file. */
static int routing_up(natd *d)
{
    const options *o = &d->opt;
    char ip[PUNCH_ADDR_STRLEN];
    routing_down(d); /* whatever a killed predecessor left */
    if (punch_sysctl_write("/proc/sys/net/ipv4/ip_forward", "1") != 0) {
        punch_log(PUNCH_LOG_ERROR, "cannot enable IPv4 forwarding: %s", strerror(errno));
        return -1;
    }
    /* Translated packets come back from the TUNs with our public IP as
     * source: accept them, and never check them against reverse paths. */
    sysctl_dev("all", "rp_filter", "0");
    for (const char *const *dev = (const char *const[]){d->tun_in_name, d->tun_out_name, NULL};
         *dev; dev++) {
        sysctl_dev(*dev, "rp_filter", "0");
        sysctl_dev(*dev, "accept_local", "1");
        /* IPv4 only: no IPv6 chatter (router solicitations) into the TUNs. */
        char v6[128];
        snprintf(v6, sizeof(v6), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", *dev);
        punch_sysctl_write(v6, "1");
        if (punch_ip_run(false, "link set dev %s up mtu %d", *dev, TUN_MTU) != 0)
            return -1;
    }
    if (punch_ip_run(false, "route replace default dev %s table %d", d->tun_in_name, DEFAULT_TABLE_IN) ||
        punch_ip_run(false, "route replace default dev %s table %d", d->tun_out_name, DEFAULT_TABLE_OUT))
        return -1;
    static const char *const protos[] = {"udp", "tcp", "icmp"};
    for (int i = 0; i < 3; i++)
        if (punch_ip_run(false, "rule add pref %d iif %s ipproto %s lookup %d", RULE_PREF_WAN + i,
                   o->wan, protos[i], DEFAULT_TABLE_IN) != 0)
            return -1;
    for (size_t i = 0; i < o->n_public; i++) {
        const punch_addr *p = &o->public_ip[i];
        snprintf(ip, sizeof(ip), "%u.%u.%u.%u", p->ip[0], p->ip[1], p->ip[2], p->ip[3]);
        if (punch_ip_run(false, "rule add pref %d iif %s to %s/32 lookup %d", RULE_PREF_HAIRPIN, o->lan,
                   ip, DEFAULT_TABLE_OUT) != 0)
            return -1;
    }
    if (punch_ip_run(false, "rule add pref %d lookup local", LOCAL_PREF) != 0 ||
        punch_ip_run(false, "rule del pref 0 lookup local") != 0 ||
        punch_ip_run(false, "rule add pref %d iif %s lookup %d", RULE_PREF_LAN, o->lan,
               DEFAULT_TABLE_OUT) != 0)
        return -1;
    d->routing_done = true;
    return 0;
}

/* ---- events ---- */

static const char *proto_name(uint8_t proto)
{
    return proto == PUNCH_IP_UDP ? "udp" : proto == PUNCH_IP_TCP ? "tcp" : "icmp";
}

static void drain_events(natd *d)
{
    punch_nat_event ev;
    while (punch_nat_poll_event(d->nat, &ev) == 1) {
        char in[PUNCH_ADDR_STRLEN], pub[PUNCH_ADDR_STRLEN], rem[PUNCH_ADDR_STRLEN] = "";
        if (ev.remote.family)
            punch_addr_format(&ev.remote, rem);
        punch_events_emit(d->events,
                          ev.kind == PUNCH_NAT_EV_MAPPING_CREATED ? "mapping-created"
                                                                  : "mapping-expired",
                          "\"proto\":\"%s\",\"inside\":\"%s\",\"public\":\"%s\",\"remote\":\"%s\"",
                          proto_name(ev.proto), punch_addr_format(&ev.inside, in),
                          punch_addr_format(&ev.public_, pub), rem);
    }
}

static void emit_counters(natd *d, const char *event)
{
    const punch_nat_counters *c = punch_nat_counters_get(d->nat);
    punch_events_emit(
        d->events, event,
        "\"outbound\":%llu,\"inbound\":%llu,\"forwarded\":%llu,\"hairpinned\":%llu,"
        "\"rst\":%llu,\"mappings\":%zu,\"mappings_created\":%llu,\"mappings_expired\":%llu,"
        "\"dropped_no_mapping\":%llu,\"dropped_filtered\":%llu,\"dropped_hairpin_off\":%llu,"
        "\"dropped_tcp_invalid\":%llu,\"refused_table_full\":%llu,\"refused_no_port\":%llu,"
        "\"refused_host_quota\":%llu,"
        "\"dropped_unparsable\":%llu,\"dropped_protocol\":%llu,\"dropped_icmp\":%llu,"
        "\"write_errors\":%llu",
        (unsigned long long)c->outbound, (unsigned long long)c->inbound,
        (unsigned long long)c->forwarded, (unsigned long long)c->hairpinned,
        (unsigned long long)c->rst, punch_nat_mapping_count(d->nat),
        (unsigned long long)c->mappings_created, (unsigned long long)c->mappings_expired,
        (unsigned long long)c->dropped_no_mapping, (unsigned long long)c->dropped_filtered,
        (unsigned long long)c->dropped_hairpin_off, (unsigned long long)c->dropped_tcp_invalid,
        (unsigned long long)c->refused_table_full, (unsigned long long)c->refused_no_port,
        (unsigned long long)c->refused_host_quota,
        (unsigned long long)d->dropped_parse, (unsigned long long)d->dropped_proto,
        (unsigned long long)d->dropped_icmp, (unsigned long long)d->write_errors);
}

/* ---- the translation ---- */

static void send_back(natd *d, int fd, const uint8_t *buf, size_t len)
{
    if (write(fd, buf, len) != (ssize_t)len)
        d->write_errors++;
}

static void handle_packet(natd *d, int fd, uint8_t *buf, size_t len, bool inbound)
{
    uint8_t rst[PUNCH_NAT_RST_MAX];
    size_t out_len;
    switch (punch_nat_packet(d->nat, punch_clock_ms(), buf, len, inbound, rst, &out_len)) {
    case PUNCH_NAT_PKT_SEND: send_back(d, fd, buf, out_len); break;
    case PUNCH_NAT_PKT_RST: send_back(d, fd, rst, out_len); break;
    case PUNCH_NAT_PKT_BAD_PARSE: d->dropped_parse++; break;
    case PUNCH_NAT_PKT_BAD_PROTO: d->dropped_proto++; break;
    case PUNCH_NAT_PKT_BAD_ICMP: d->dropped_icmp++; break;
    case PUNCH_NAT_PKT_DROP: break;
    }
}

static void arm_timer(natd *d)
{
    punch_loop_timer_set(d->loop, d->timer, punch_nat_next_expiry(d->nat));
}

static void on_tun(void *arg, int fd)
{
    natd *d = arg;
    uint8_t buf[TUN_MTU + 64];
    for (int i = 0; i < PACKETS_PER_WAKEUP; i++) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n <= 0)
            break;
        handle_packet(d, fd, buf, (size_t)n, fd == d->tun_in);
    }
    drain_events(d);
    arm_timer(d);
}

static void on_timer(void *arg, uint64_t now_ms)
{
    natd *d = arg;
    punch_nat_expire(d->nat, now_ms);
    drain_events(d);
    arm_timer(d);
}

static void on_signal(void *arg, int signo)
{
    natd *d = arg;
    if (signo == SIGUSR1) {
        emit_counters(d, "counters");
    } else if (signo == SIGHUP) {
        /* Forget every mapping, as a rebooted NAT would. */
        punch_nat *fresh;
        if (punch_nat_new(&fresh, &d->cfg) == 0) {
            emit_counters(d, "reset");
            punch_nat_free(d->nat);
            d->nat = fresh;
            punch_log(PUNCH_LOG_INFO, "all mappings forgotten");
        }
        arm_timer(d);
    } else {
        punch_loop_stop(d->loop);
    }
}

/* ---- set-up ---- */

static int parse_public(const char *text, options *o)
{
    char copy[1024];
    snprintf(copy, sizeof(copy), "%s", text);
    for (char *save = NULL, *tok = strtok_r(copy, "+,", &save); tok;
         tok = strtok_r(NULL, "+,", &save)) {
        punch_addr a;
        if (o->n_public == PUNCH_NAT_MAX_PUBLIC || punch_addr_parse(tok, 0, &a) != 0 ||
            a.family != PUNCH_AF_INET || a.port != 0 || punch_addr_is_any(&a))
            return punch_cli_usage_error("punch-nat", "--public: '%s' is not an IPv4 address",
                                         tok);
        o->public_ip[o->n_public++] = a;
    }
    return 0;
}

/* Returns 0 to run, 2 on a usage error, -1 after --help/--version. */
static int parse_options(int argc, char **argv, options *o)
{
    static const struct option longs[] = {
        {"lan", required_argument, NULL, 'l'},   {"wan", required_argument, NULL, 'w'},
        {"public", required_argument, NULL, 'p'}, {"nat", required_argument, NULL, 'n'},
        {"preset", required_argument, NULL, 'n'}, {"name", required_argument, NULL, 'N'},
        {"events", required_argument, NULL, 'e'}, {"log-level", required_argument, NULL, 'L'},
        {"seed", required_argument, NULL, 's'},   {"no-setup", no_argument, NULL, 'S'},
        {"help", no_argument, NULL, 'h'},         {"version", no_argument, NULL, 'V'},
        {0},
    };
    *o = (options){.name = "pnat", .spec = "p2p", .log_level = PUNCH_LOG_INFO, .setup = true};
    int c, rc;
    char *end;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", longs, NULL)) != -1) {
        switch (c) {
        case 'l': o->lan = optarg; break;
        case 'w': o->wan = optarg; break;
        case 'p':
            if ((rc = parse_public(optarg, o)) != 0)
                return rc;
            break;
        case 'n': o->spec = optarg; break;
        case 'N':
            if (strlen(optarg) == 0 || strlen(optarg) > IFNAMSIZ - 2 || strchr(optarg, '/'))
                return punch_cli_usage_error("punch-nat", "--name: '%s' must be 1 to %d characters",
                                             optarg, IFNAMSIZ - 2);
            o->name = optarg;
            break;
        case 'e': o->events = optarg; break;
        case 'L':
            if ((o->log_level = punch_log_level_parse(optarg)) < 0)
                return punch_cli_usage_error(
                    "punch-nat", "--log-level: '%s' is not one of error, warn, info, debug", optarg);
            break;
        case 's':
            errno = 0;
            o->seed = strtoull(optarg, &end, 0);
            if (*optarg == '\0' || *end || errno)
                return punch_cli_usage_error("punch-nat", "--seed: '%s' is not a number", optarg);
            o->have_seed = true;
            break;
        case 'S': o->setup = false; break;
        case 'h': fputs(usage_text, stdout); return -1;
        case 'V': printf("punch-nat %s\n", punch_version()); return -1;
        case ':': return punch_cli_usage_error("punch-nat", "%s needs a value", argv[optind - 1]);
        default: return punch_cli_usage_error("punch-nat", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return punch_cli_usage_error("punch-nat", "unexpected argument '%s'", argv[optind]);
    if (!o->lan || !o->wan)
        return punch_cli_usage_error("punch-nat", "--lan and --wan are both needed");
    return 0;
}

static int build_model(natd *d)
{
    char err[256] = "";
    punch_nat_cfg_default(&d->cfg);
    if (punch_nat_cfg_parse(&d->cfg, d->opt.spec, err, sizeof(err)) != 0)
        return punch_cli_usage_error("punch-nat", "--nat: %s", err);
    if (d->cfg.mode != PUNCH_NAT_FIREWALL && d->opt.n_public == 0 && d->cfg.n_public == 0)
        return punch_cli_usage_error("punch-nat", "--public is needed unless mode=firewall");
    if (d->opt.n_public) {
        memcpy(d->cfg.public_ip, d->opt.public_ip, sizeof(d->opt.public_ip));
        d->cfg.n_public = d->opt.n_public;
    }
    if (d->opt.have_seed) {
        d->rng[0] = d->opt.seed ^ 0x9E3779B97F4A7C15ull;
        d->rng[1] = d->opt.seed * 0xBF58476D1CE4E5B9ull + 1;
    } else if (punch_random_bytes(d->rng, sizeof(d->rng)) != 0) {
        punch_log(PUNCH_LOG_ERROR, "no randomness: %s", strerror(errno));
        return 1;
    }
    d->rng[1] |= 1; /* never the all-zero state */
    d->cfg.random = next_random;
    d->cfg.random_ctx = d->rng;
    d->cfg.max_events = 4096;
    if (punch_nat_new(&d->nat, &d->cfg) != 0)
        return punch_cli_usage_error("punch-nat", "--nat '%s' does not make a working NAT",
                                     d->opt.spec);
    return 0;
}

static int setup(natd *d)
{
    char name[IFNAMSIZ];
    snprintf(name, sizeof(name), "%so", d->opt.name);
    d->tun_out = punch_tun_open(name, d->tun_out_name);
    snprintf(name, sizeof(name), "%si", d->opt.name);
    d->tun_in = d->tun_out < 0 ? -1 : punch_tun_open(name, d->tun_in_name);
    if (d->tun_in < 0) {
        punch_log(PUNCH_LOG_ERROR, "cannot create TUN device %s: %s", name, strerror(errno));
        return -1;
    }
    if (d->opt.setup && routing_up(d) != 0) {
        punch_log(PUNCH_LOG_ERROR, "cannot set up policy routing (is iproute2 installed, and "
                                   "are --lan %s and --wan %s interfaces here?)",
                  d->opt.lan, d->opt.wan);
        return -1;
    }
    static const int signals[] = {SIGINT, SIGTERM, SIGUSR1, SIGHUP};
    if (punch_loop_new(&d->loop) != 0 ||
        punch_loop_signals(d->loop, signals, 4, on_signal, d) != 0 ||
        punch_loop_watch(d->loop, d->tun_out, on_tun, d) != 0 ||
        punch_loop_watch(d->loop, d->tun_in, on_tun, d) != 0 ||
        punch_loop_timer_add(d->loop, PUNCH_LOOP_NEVER, on_timer, d, &d->timer) != 0) {
        punch_log(PUNCH_LOG_ERROR, "cannot set up the event loop: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static void teardown(natd *d)
{
    if (d->routing_done)
        routing_down(d);
    if (d->tun_out >= 0)
        close(d->tun_out);
    if (d->tun_in >= 0)
        close(d->tun_in);
    punch_loop_free(d->loop);
    punch_nat_free(d->nat);
    punch_events_close(d->events);
}

int main(int argc, char **argv)
{
    uint64_t start_ms = punch_clock_ms();
    natd d = {.tun_out = -1, .tun_in = -1};
    int rc = parse_options(argc, argv, &d.opt);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    punch_log_init("punch-nat", d.opt.log_level);
    if ((rc = build_model(&d)) != 0) {
        punch_nat_free(d.nat);
        return rc;
    }
    if (punch_events_open(&d.events, d.opt.events, start_ms) != 0) {
        fprintf(stderr, "punch-nat: cannot open events file '%s': %s\n", d.opt.events,
                strerror(errno));
        punch_nat_free(d.nat);
        return 1;
    }
    rc = 1;
    if (setup(&d) != 0)
        goto cleanup;
    const punch_nat_cfg *cfg = punch_nat_cfg_get(d.nat);
    const uint8_t *ip = cfg->public_ip[0].ip;
    char pub[20] = "";
    if (cfg->n_public)
        snprintf(pub, sizeof(pub), "%u.%u.%u.%u", ip[0], ip[1], ip[2], ip[3]);
    punch_events_emit(d.events, "started",
                      "\"lan\":\"%s\",\"wan\":\"%s\",\"public\":\"%s\",\"mapping\":\"%s\","
                      "\"filtering\":\"%s\",\"ports\":\"%s\",\"port_step\":%u,\"hairpin\":%s,"
                      "\"tun\":[\"%s\",\"%s\"]",
                      d.opt.lan, d.opt.wan, pub,
                      punch_nat_mapping_name(cfg->mapping), punch_nat_filtering_name(cfg->filtering),
                      punch_nat_ports_name(cfg->ports), cfg->port_step ? cfg->port_step : 1,
                      cfg->hairpin ? "true" : "false", d.tun_out_name, d.tun_in_name);
    punch_log(PUNCH_LOG_INFO, "translating %s -> %s as %s", d.opt.lan, d.opt.wan, d.opt.spec);
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
