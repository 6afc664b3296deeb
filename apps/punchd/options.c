/* SPDX-License-Identifier: MIT */
/* punchd's settings: see options.h. */
#include "options.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cli.h"
#include "io/log.h"
#include "io/net.h"
#include "server/rendezvous.h"
#include "cluster_redis.h"
#include "tcp_server.h"

#define DEFAULT_PORT 3478            /* RFC 8489 §18.6 */
#define DEFAULT_RATE_PER_SEC 200     /* Binding answers per source IP */
#define MAX_PEERS_LIMIT 100000000
#define MAX_TCP_LIMIT 1000000

static const char usage_text[] =
    "usage: punchd [--listen ADDR:PORT]... [--alt ADDR] [--second-port PORT|off]\n"
    "              [--key FILE] [--no-relay]\n"
    "              [--max-peers N] [--names-per-source N] [--relay-max-bytes N] [--relay-rate N]\n"
    "              [--relay-packets N] [--relay-source-rate N] [--relay-source-packets N]\n"
    "              [--connects-per-target N]\n"
    "              [--no-tcp] [--max-tcp N] [--max-tcp-per-ip N]\n"
    "              [--events FILE|-] [--metrics ADDR:PORT] [--config FILE]\n"
    "              [--log-level LEVEL] [--rate-limit N]\n"
    "              [--cluster redis://IP:PORT[/DB] --cluster-secret-file FILE\n"
    "               [--cluster-address IP[:PORT]]]\n"
    "\n"
    "The public server of punch: answers STUN Binding requests (RFC 8489) so\n"
    "peers learn their public address, and with --alt the RFC 5780 NAT\n"
    "behaviour discovery that `punch natcheck` uses. On the same sockets it\n"
    "registers peers by name and key, introduces them to each other for hole\n"
    "punching, and relays between two introduced peers when nothing else works.\n"
    "\n"
    "  --listen ADDR:PORT   address to serve on; repeat for more (IPv4 and IPv6).\n"
    "                       Default: 0.0.0.0:3478 and [::]:3478. Port 0 picks one.\n"
    "  --alt ADDR           a second local IP of the same family as the first\n"
    "                       --listen, which must then be a concrete address. punchd\n"
    "                       also serves on PORT+1 of both IPs, so CHANGE-REQUEST,\n"
    "                       OTHER-ADDRESS and RESPONSE-ORIGIN work (RFC 5780).\n"
    "  --second-port PORT|off  without --alt, punchd also answers STUN Binding on\n"
    "                       a second port of each --listen address (default PORT+1;\n"
    "                       with --listen port 0, one the kernel picks) and tells\n"
    "                       peers of it, so they learn whether their NAT maps each\n"
    "                       destination to a new port, and with what step, from\n"
    "                       one server address. off: a single port (peers then\n"
    "                       register with \"nat\":\"unknown\")\n"
    "  --key FILE           the server's identity key (X25519), created with mode\n"
    "                       0600 when FILE does not exist (as by `punch keygen`).\n"
    "                       Without it punchd makes a new key at every start, so\n"
    "                       peers cannot pin it.\n"
    "  --no-relay           introduce peers, never relay their traffic\n"
    "  --relay-max-bytes N  bytes one relay session may carry in all before it is\n"
    "                       closed (default 268435456); each session is also held\n"
    "                       to 262144 bytes/s and 1000 datagrams/s\n"
    "  --relay-rate N       bytes/s one relay session may carry, both directions\n"
    "                       together (default 262144; 0 means the default)\n"
    "  --relay-packets N    datagrams/s one relay session may carry (default 1000;\n"
    "                       0 means the default)\n"
    "  --relay-source-rate N bytes/s relayed from one IPv4 address or IPv6 /64,\n"
    "                       and to one peer, over all its sessions (default\n"
    "                       1048576; 0 means the default)\n"
    "  --relay-source-packets N datagrams/s relayed from one IPv4 address or\n"
    "                       IPv6 /64, and to one peer (default 4000; 0 means the\n"
    "                       default)\n"
    "  --connects-per-target N introductions per second of new sessions from one\n"
    "                       IPv4 address or IPv6 /64 to one peer, after a burst\n"
    "                       of ten times as many (default 1; 0 means the default)\n"
    "  --max-peers N        registered peers held at once (default 100000; about\n"
    "                       400 bytes each, taken as they register)\n"
    "  --names-per-source N names registered from one IPv4 address or IPv6 /64\n"
    "                       (default 256); more are refused as FULL\n"
    "  --no-tcp             serve on UDP only. By default punchd also listens on\n"
    "                       TCP at every address, for peers whose network drops\n"
    "                       UDP: each datagram goes as a 2-byte big-endian length\n"
    "                       and the datagram (RFC 4571 framing)\n"
    "  --max-tcp N          TCP connections held at once (default 1024; about\n"
    "                       35 KiB each); more are closed at once. A connection\n"
    "                       must bring a whole frame within 10 s and then one at\n"
    "                       least every 90 s\n"
    "  --max-tcp-per-ip N   of those, held at once from one IP address (default\n"
    "                       32), so one source cannot take them all\n"
    "  --events FILE|-      write one JSON event per line (started, registered,\n"
    "                       introduced, relay-opened, relay-closed, counters,\n"
    "                       stopped; with --cluster also cluster, cluster-introduced,\n"
    "                       cluster-lookup-failed, cluster-name-taken); - is stdout\n"
    "  --metrics ADDR:PORT  serve Prometheus text at http://ADDR:PORT/metrics\n"
    "                       (punchd_* counters and gauges; keep ADDR private)\n"
    "  --config FILE        read settings from FILE: one 'KEY = VALUE' a line, the\n"
    "                       keys the long options; the command line overrides it.\n"
    "                       Without it no file is read (punchd.service passes\n"
    "                       --config " PUNCHD_DEFAULT_CONFIG ")\n"
    "  --log-level LEVEL    error, warn, info (default) or debug\n"
    "  --rate-limit N       per source IP (IPv6: per /64) and second: Binding\n"
    "                       answers, and separately the rendezvous requests that\n"
    "                       cost work before the sender is known (HELLO, CONNECT,\n"
    "                       REGISTER of a new key), and TCP connections opened;\n"
    "                       default 200, 0 turns it off\n"
    "  --cluster redis://IP:PORT[/DB]  share names with the other punchd of this\n"
    "                       Redis (docs/cluster.md): a peer registered at any member\n"
    "                       can be reached from every member. IP is an address,\n"
    "                       not a host name; PORT defaults to 6379, DB to 0\n"
    "  --cluster-secret-file FILE  the secret all members share (at least 32\n"
    "                       bytes, e.g. head -c 32 /dev/urandom): members sign\n"
    "                       what they put in Redis with it and trust nothing else\n"
    "  --cluster-address IP[:PORT]  where the other members send this member the\n"
    "                       datagrams of relays across members, and the source it\n"
    "                       sends theirs from: an address of this host that a\n"
    "                       --listen serves (PORT: that --listen's). Default: the\n"
    "                       first --listen naming one IP; a member listening on\n"
    "                       wildcards only needs it to relay across members\n"
    "  --help, --version\n"
    "\n"
    "Signals: SIGINT/SIGTERM stop cleanly; SIGUSR1 writes the counters; SIGHUP\n"
    "reopens the events file and reads the config file again (log-level and events\n"
    "apply at once, the rest at restart), keeping every registration.\n";

#define usage_error(...) punch_cli_usage_error("punchd", __VA_ARGS__)

/* text as a whole decimal number from lo to hi into *v. Returns 0, or the
 * usage error's 2 naming the option and the bad value. */
static int number_option(const char *option, const char *text, unsigned long long lo,
                         unsigned long long hi, unsigned long long *v)
{
    char *end;
    errno = 0;
    *v = strtoull(text, &end, 10);
    if (*text >= '0' && *text <= '9' && !*end && !errno && *v >= lo && *v <= hi)
        return 0;
    if (hi == ULLONG_MAX)
        return usage_error("%s: '%s' is not a positive number", option, text);
    return usage_error("%s: '%s' is not a number from %llu to %llu", option, text, lo, hi);
}

/* --second-port PORT|off into *port (0: off). Returns 0 or the usage
 * error's 2. */
static int second_port_option(const char *text, int *port)
{
    if (strcmp(text, "off") == 0) {
        *port = 0;
        return 0;
    }
    char *end;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    if (*text < '0' || *text > '9' || *end || errno || v < 1 || v > 65535)
        return usage_error("--second-port: '%s' is not a port from 1 to 65535 or off", text);
    *port = (int)v;
    return 0;
}

/* --cluster (K), --cluster-secret-file (Q) and --cluster-address (A).
 * Returns 0 or 2 (usage error). */
static int cluster_option(punchd_options *o, int c)
{
    static const uint8_t any[16];
    if (c == 'Q') {
        o->cluster_secret_file = optarg;
        return 0;
    }
    if (c == 'A') {
        if (punch_addr_parse(optarg, 0, &o->cluster_address) != 0 ||
            memcmp(o->cluster_address.ip, any, sizeof(any)) == 0)
            return usage_error("--cluster-address: '%s' is not one IP[:PORT]", optarg);
        o->has_cluster_address = true;
        return 0;
    }
    if (punchd_cluster_parse_url(optarg, &o->cluster_redis, &o->cluster_db) != 0)
        return usage_error("--cluster: '%s' is not redis://IP[:PORT][/DB]", optarg);
    o->has_cluster = true;
    return 0;
}

/* --metrics IP:PORT. A port must be given (0: the kernel picks): a text
 * without one takes the default port, so two defaults tell. */
static int metrics_option(punchd_options *o, const char *text)
{
    punch_addr other;
    if (punch_addr_parse(text, 0, &o->metrics) != 0 || punch_addr_parse(text, 1, &other) != 0 ||
        other.port != o->metrics.port)
        return usage_error("--metrics: '%s' is not an address with a port (IP:PORT or "
                           "[IPv6]:PORT)", text);
    o->has_metrics = true;
    return 0;
}

/* The numbers that bound punchd's tables and limits (c from getopt_long). */
static int limit_option(punchd_options *o, int c)
{
    switch (c) {
    case 'm':
        return number_option("--max-peers", optarg, 1, MAX_PEERS_LIMIT, &o->max_peers);
    case 'N':
        return number_option("--names-per-source", optarg, 1, MAX_PEERS_LIMIT,
                             &o->names_per_source);
    case 'M':
        return number_option("--max-tcp", optarg, 1, MAX_TCP_LIMIT, &o->max_tcp);
    case 'I':
        return number_option("--max-tcp-per-ip", optarg, 1, MAX_TCP_LIMIT, &o->max_tcp_per_ip);
    case 'B':
        return number_option("--relay-max-bytes", optarg, 1, ULLONG_MAX, &o->relay_max_bytes);
    case 'R':
        return number_option("--relay-rate", optarg, 0, UINT32_MAX, &o->relay_bytes_per_s);
    case 'P':
        return number_option("--relay-packets", optarg, 0, UINT32_MAX, &o->relay_packets_per_s);
    case 'W':
        return number_option("--relay-source-rate", optarg, 0, UINT32_MAX,
                             &o->relay_source_bytes_per_s);
    case 'Y':
        return number_option("--relay-source-packets", optarg, 0, UINT32_MAX,
                             &o->relay_source_packets_per_s);
    case 'J':
        return number_option("--connects-per-target", optarg, 0, UINT32_MAX / 10,
                             &o->connects_per_target_per_s);
    default:
        return usage_error("unknown option");
    }
}

/* One option of punchd's (c from getopt_long). Returns 0, 2 on a usage
 * error, -1 when --help/--version was served. */
static int parse_option(punchd_options *o, int c, char **argv)
{
    switch (c) {
    case 'l':
        if (o->listen_replace)
            o->n_listen = 0;
        o->listen_replace = false;
        if (o->n_listen == PUNCHD_MAX_LISTEN)
            return usage_error("--listen: at most 8 addresses ('%s' is one too many)", optarg);
        if (punch_addr_parse(optarg, DEFAULT_PORT, &o->listen[o->n_listen]) != 0)
            return usage_error("--listen: '%s' is not an address (IP:PORT or [IPv6]:PORT)", optarg);
        o->n_listen++;
        return 0;
    case 'a':
        if (punch_addr_parse(optarg, 0, &o->alt) != 0 || o->alt.port != 0 ||
            punch_addr_is_any(&o->alt))
            return usage_error("--alt: '%s' is not a local IP address (no port)", optarg);
        o->has_alt = true;
        o->alt_text = optarg;
        return 0;
    case 'S':
        return second_port_option(optarg, &o->second_port);
    case 'e':
        o->events = optarg;
        return 0;
    case 'C':
        return 0; /* read before the other options (punchd_config_path) */
    case 'X':
        return metrics_option(o, optarg);
    case 'L':
        if ((o->log_level = punch_log_level_parse(optarg)) < 0)
            return usage_error("--log-level: '%s' is not one of error, warn, info, debug", optarg);
        return 0;
    case 'r':
        return number_option("--rate-limit", optarg, 0, 10000000, &o->rate);
    case 'k':
        o->key = optarg;
        return 0;
    case 'n':
        o->no_relay = true;
        return 0;
    case 'T':
        o->no_tcp = true;
        return 0;
    case 'm':
    case 'N':
    case 'M':
    case 'I':
    case 'B':
    case 'R':
    case 'P':
    case 'W':
    case 'Y':
    case 'J':
        return limit_option(o, c);
    case 'K':
    case 'Q':
    case 'A':
        return cluster_option(o, c);
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

static const struct option longs[] = {
    {"listen", required_argument, NULL, 'l'},
    {"alt", required_argument, NULL, 'a'},
    {"second-port", required_argument, NULL, 'S'},
    {"events", required_argument, NULL, 'e'},
    {"log-level", required_argument, NULL, 'L'},
    {"rate-limit", required_argument, NULL, 'r'},
    {"key", required_argument, NULL, 'k'},
    {"no-relay", no_argument, NULL, 'n'},
    {"max-peers", required_argument, NULL, 'm'},
    {"names-per-source", required_argument, NULL, 'N'},
    {"relay-max-bytes", required_argument, NULL, 'B'},
    {"relay-rate", required_argument, NULL, 'R'},
    {"relay-packets", required_argument, NULL, 'P'},
    {"relay-source-rate", required_argument, NULL, 'W'},
    {"relay-source-packets", required_argument, NULL, 'Y'},
    {"connects-per-target", required_argument, NULL, 'J'},
    {"no-tcp", no_argument, NULL, 'T'},
    {"max-tcp", required_argument, NULL, 'M'},
    {"max-tcp-per-ip", required_argument, NULL, 'I'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {"config", required_argument, NULL, 'C'},
    {"metrics", required_argument, NULL, 'X'},
    {"cluster", required_argument, NULL, 'K'},
    {"cluster-secret-file", required_argument, NULL, 'Q'},
    {"cluster-address", required_argument, NULL, 'A'},
    {0},
};

static void default_options(punchd_options *o)
{
    *o = (punchd_options){.log_level = PUNCH_LOG_INFO, .rate = DEFAULT_RATE_PER_SEC, .alt_for = -1,
                   .max_peers = PUNCH_RV_DEFAULT_MAX_PEERS,
                   .max_tcp = PUNCH_TCP_SERVER_DEFAULT_MAX_CONNS,
                   .max_tcp_per_ip = PUNCH_TCP_SERVER_DEFAULT_PER_IP, .second_port = -1};
}

/* Returns 0 to run, 2 on a usage error, -1 when --help/--version was served. */
static int parse_options(int argc, char **argv, punchd_options *o)
{
    optind = 0; /* glibc: start afresh (the config pass ran getopt before) */
    opterr = 0;
    int c, rc;
    while ((c = getopt_long(argc, argv, ":", longs, NULL)) != -1)
        if ((rc = parse_option(o, c, argv)) != 0)
            return rc;
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


/* --alt pairs with the first --listen of its family, which must be concrete.
 * Sets o->alt_for to that --listen's index. Returns 0 or 2 (usage error). */
static int check_alt(punchd_options *o)
{
    char text[PUNCH_ADDR_STRLEN];
    if (!o->has_alt)
        return 0;
    for (size_t i = 0; i < o->n_listen; i++) {
        if (o->listen[i].family != o->alt.family)
            continue;
        if (punch_addr_is_any(&o->listen[i]))
            return usage_error("--alt needs a concrete --listen address of its family, not '%s'",
                               punch_addr_format(&o->listen[i], text));
        if (o->listen[i].port == 65535)
            return usage_error("--alt serves on PORT+1: --listen '%s' leaves no room",
                               punch_addr_format(&o->listen[i], text));
        o->alt_for = (int)i;
        return 0;
    }
    return usage_error("--alt '%s' has no --listen address of the same family", o->alt_text);
}

/* One "KEY = VALUE" of the config file, as --KEY VALUE (a flag: KEY alone,
 * or yes/no). Returns 0 or 2 (printed with the file and line). */
static int config_option(void *arg, const char *key, const char *value)
{
    punchd_options *o = arg;
    const struct option *opt = longs;
    while (opt->name && strcmp(opt->name, key) != 0)
        opt++;
    if (!opt->name || opt->val == 'C' || opt->val == 'h' || opt->val == 'V')
        return usage_error("'%s' is not a setting (the long options are, without --)", key);
    if (opt->has_arg == no_argument) {
        if (value && strcmp(value, "no") == 0)
            return 0;
        if (value && strcmp(value, "yes") != 0)
            return usage_error("%s: '%s' is not yes or no", key, value);
    } else if (!value) {
        return usage_error("%s needs a value (%s = VALUE)", key, key);
    }
    optarg = (char *)value;
    return parse_option(o, opt->val, NULL);
}

void punchd_source_init(punchd_source *src, int argc, char **argv)
{
    src->argc = argc;
    src->argv = argv;
    /* Only a file named by --config (the packaged unit names
     * PUNCHD_DEFAULT_CONFIG): a punchd started by hand or by a test on a
     * host with the package installed takes no settings it was not given. */
    src->config_path = punchd_config_path(argc, argv, longs, 'C', &src->config_given);
}

int punchd_options_read(const punchd_source *src, punchd_options *o, punchd_config **config)
{
    default_options(o);
    *config = NULL;
    if (src->config_path) {
        int rc = punchd_config_load(src->config_path, !src->config_given, config_option, o,
                                    config);
        if (rc != 0)
            return rc;
    }
    o->listen_replace = o->n_listen > 0;
    int rc = parse_options(src->argc, src->argv, o);
    if (rc == 0)
        rc = check_alt(o);
    if (rc == 0 && o->has_cluster != (o->cluster_secret_file != NULL))
        rc = usage_error("--cluster and --cluster-secret-file go together");
    if (rc == 0 && o->has_cluster_address && !o->has_cluster)
        rc = usage_error("--cluster-address needs --cluster");
    if (rc != 0) {
        punchd_config_free(*config);
        *config = NULL;
    }
    return rc;
}

