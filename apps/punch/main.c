/* SPDX-License-Identifier: MIT */
/*
 * punch: the peer command line. A table of subcommands (one file each),
 * global options before the subcommand, usage generated from the table.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cli.h"
#include "io/log.h"
#include "io/net.h"
#include "io/loop.h"
#include "punch/punch.h"
#include "punch_cli.h"
#include "wire/msg.h"

static const punch_command commands[] = {
    {"keygen", punch_cmd_keygen, "[--force|--public] [FILE]",
     "write a new identity key (default: the --key file), print its public key"},
    {"natcheck", punch_cmd_natcheck, "[--json] [--lifetime]",
     "how the NAT between here and --server behaves (RFC 5780)"},
    {"listen", punch_cmd_listen, "[--keep-open]",
     "register as --name and wait; the peer is piped to stdin/stdout"},
    {"connect", punch_cmd_connect, "PEER[@PUBKEY]",
     "reach PEER through --server; stdin to the peer, its data to stdout"},
    {"ping", punch_cmd_ping, "PEER[@PUBKEY] [--count N]",
     "reach PEER, then print per round trip how (direct via ..., relay) and how fast"},
    {"vpn", punch_cmd_vpn, "listen|connect [PEER]", "an IPv4 tunnel (TUN) to one peer"},
    {"forward", punch_cmd_forward, "--listen PORT PEER:PORT",
     "carry local TCP connections to a port on PEER (listen --allow-forward)"},
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out)
{
    fprintf(out,
            "usage: punch [--server HOST[:PORT]]... [--name NAME] [--key FILE]\n"
            "             [--events FILE|-] [--log-level LEVEL] [--turn URL]\n"
            "             [--nat64-prefix PREFIX/LEN|off] COMMAND [ARGS]\n"
            "\n"
            "Reach another program directly across NATs and firewalls.\n"
            "\n"
            "Commands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(out, "  %-9s %-22s %s\n", commands[i].name, commands[i].args, commands[i].help);
    fprintf(out,
            "\n"
            "Options:\n"
            "  --server HOST[:PORT]  the punchd to use (default: $PUNCH_SERVER); again (or a\n"
            "                        name with several addresses) for more punchd of the same\n"
            "                        service: punch registers at the first that answers and\n"
            "                        moves to another when it stops answering\n"
            "  --name NAME           the name to register as\n"
            "  --key FILE            identity key (default: $XDG_CONFIG_HOME/punch/key)\n"
            "  --events FILE|-       one JSON event per line; - is stdout\n"
            "  --log-level LEVEL     error, warn, info (default) or debug\n"
            "  --open-ttl N          TTL of the first probes to a peer's public address, so\n"
            "                        they open our NAT but die before the peer's (Linux's\n"
            "                        conntrack trap); default 2, 0 turns this off\n"
            "  --no-birthday         no many-port probing: with a NAT that picks random\n"
            "                        ports, it opens 256 more sockets (or sends 1024 probes\n"
            "                        to the peer's) for a few seconds\n"
            "  --no-aes              seal datagrams with ChaCha20-Poly1305 even where both\n"
            "                        peers have AES instructions (default: AES-256-GCM\n"
            "                        then)\n"
            "  --portmap MODE        ask the home router to map our port and offer it to\n"
            "                        peers: auto (default: PCP, NAT-PMP, then UPnP IGD),\n"
            "                        pcp, natpmp, upnp or off\n"
            "  --nat64-prefix PREFIX/LEN|off\n"
            "                        on a host with IPv6 and no IPv4, reach IPv4 servers\n"
            "                        and peers through the network's NAT64 at their\n"
            "                        addresses under PREFIX (RFC 6052: LEN 32, 40, 48,\n"
            "                        56, 64 or 96; default the well-known 64:ff9b::/96);\n"
            "                        off: never\n"
            "  --turn turn://USER:PASS@HOST[:PORT][?transport=udp|tcp]\n"
            "  --turn turns://USER:PASS@HOST[:PORT]\n"
            "                        a standard TURN server (RFC 8656, e.g. coturn) to\n"
            "                        allocate a relayed address at, reached over UDP\n"
            "                        (default port 3478), TCP (?transport=tcp) or TLS\n"
            "                        (turns://, default port 5349; the certificate must\n"
            "                        name HOST and chain to the system's CAs); reported\n"
            "                        as a 'turn' event and offered to peers through the\n"
            "                        server; peers relay through it when nothing better\n"
            "                        works, and move to a direct path when one opens\n"
            "  --turn-ca FILE        trust the CA certificates in FILE (PEM) for turns://\n"
            "                        instead of the system's\n"
            "  --help, --version\n"
            "\n"
            "'punch COMMAND --help' describes one command.\n");
}

int punch_cli_key_path(const punch_cli *cli, char *out, size_t cap)
{
    const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
    int n;
    if (cli->key)
        n = snprintf(out, cap, "%s", cli->key);
    else if (xdg && xdg[0])
        n = snprintf(out, cap, "%s/punch/key", xdg);
    else if (home && home[0])
        n = snprintf(out, cap, "%s/.config/punch/key", home);
    else {
        fprintf(stderr, "punch: no key file: set --key, $XDG_CONFIG_HOME or $HOME\n");
        return 1;
    }
    if (n < 0 || (size_t)n >= cap) {
        fprintf(stderr, "punch: key file path too long\n");
        return 1;
    }
    return 0;
}

/* --server: the first replaces $PUNCH_SERVER, each later one is one more
 * server. Returns 0 or 2 (one too many, said on stderr). */
static int add_server(punch_cli *cli, bool *given, const char *text)
{
    if (*given && cli->n_more_servers == PUNCH_MAX_SERVERS - 1)
        return punch_cli_usage_error("punch", "--server: '%s' is one too many (at most %d)", text,
                                     PUNCH_MAX_SERVERS);
    if (*given)
        cli->more_servers[cli->n_more_servers++] = text;
    else
        cli->server = text;
    *given = true;
    return 0;
}

/* --open-ttl N: N, or -1 after saying why not. */
static int open_ttl_option(const char *text)
{
    char *end;
    long v = strtol(text, &end, 10);
    if (*text == '\0' || *end || v < 0 || v > 255) {
        punch_cli_usage_error("punch", "--open-ttl: '%s' is not 0 to 255", text);
        return -1;
    }
    return (int)v;
}

/* --turn URL: parsed now, so a badly written one is a usage error before
 * anything starts. The reason never repeats the password. */
static int turn_option(punch_cli *cli, const char *text)
{
    char why[128];
    if (punch_turn_url_parse(text, &cli->turn, why, sizeof(why)) != 0)
        return punch_cli_usage_error(
            "punch", "--turn: not turn[s]://USER:PASS@HOST[:PORT][?transport=udp|tcp]: %s", why);
    cli->has_turn = true;
    return 0;
}

/* --nat64-prefix PREFIX[/LEN] or off. Returns 0 or 2 (said on stderr). */
static int nat64_option(punch_cli *cli, const char *text)
{
    char why[96];
    if (strcmp(text, "off") == 0) {
        cli->no_nat64 = true;
        return 0;
    }
    if (punch_nat64_prefix_parse(text, &cli->nat64_prefix, why, sizeof(why)) != 0)
        return punch_cli_usage_error("punch", "--nat64-prefix: '%s': %s (give PREFIX/LEN, "
                                     "e.g. 64:ff9b::/96, or off)", text, why);
    return 0;
}

/* The global options (a subcommand parses its own). */
static const struct option longs[] = {
    {"server", required_argument, NULL, 's'},
    {"name", required_argument, NULL, 'n'},
    {"key", required_argument, NULL, 'k'},
    {"events", required_argument, NULL, 'e'},
    {"log-level", required_argument, NULL, 'L'},
    {"open-ttl", required_argument, NULL, 'T'},
    {"no-birthday", no_argument, NULL, 'B'},
    {"no-aes", no_argument, NULL, 'A'},
    {"portmap", required_argument, NULL, 'P'},
    {"turn", required_argument, NULL, 'U'},
    {"turn-ca", required_argument, NULL, 'C'},
    {"nat64-prefix", required_argument, NULL, '6'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {0},
};

int main(int argc, char **argv)
{
    punch_cli cli = {.server = getenv("PUNCH_SERVER"), .log_level = PUNCH_LOG_INFO,
                     .start_ms = punch_clock_ms(), .open_ttl = -1,
                     .portmap = PUNCH_PORTMAP_AUTO};
    int c;
    bool server_given = false; /* the first --server replaces $PUNCH_SERVER */
    opterr = 0;
    /* '+': stop at the subcommand; its own options are its business. */
    while ((c = getopt_long(argc, argv, "+:", longs, NULL)) != -1) {
        switch (c) {
        case 's':
            if (add_server(&cli, &server_given, optarg) != 0)
                return 2;
            break;
        case 'n':
            if (!punch_msg_valid_name(optarg))
                return punch_cli_usage_error(
                    "punch", "--name: '%s' is not a name (1 to %d printable ASCII characters, "
                    "no spaces, quotes or backslashes)", optarg, PUNCH_MSG_NAME_MAX);
            cli.name = optarg;
            break;
        case 'k': cli.key = optarg; break;
        case 'e': cli.events = optarg; break;
        case 'L':
            if ((cli.log_level = punch_log_level_parse(optarg)) < 0)
                return punch_cli_usage_error(
                    "punch", "--log-level: '%s' is not one of error, warn, info, debug", optarg);
            break;
        case 'T':
            if ((cli.open_ttl = open_ttl_option(optarg)) < 0)
                return 2;
            break;
        case 'B': cli.no_birthday = true; break;
        case 'A': cli.no_aes = true; break;
        case 'P':
            if ((cli.portmap = punch_portmap_proto_parse(optarg)) < 0)
                return punch_cli_usage_error(
                    "punch", "--portmap: '%s' is not one of auto, pcp, natpmp, upnp, off", optarg);
            break;
        case 'U':
            if (turn_option(&cli, optarg) != 0)
                return 2;
            break;
        case 'C': cli.turn_ca = optarg; break;
        case '6':
            if (nat64_option(&cli, optarg) != 0)
                return 2;
            break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("punch %s\n", punch_version()); return 0;
        case ':': return punch_cli_usage_error("punch", "%s needs a value", argv[optind - 1]);
        default: return punch_cli_usage_error("punch", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (cli.turn_ca && (!cli.has_turn || cli.turn.transport != PUNCH_TURN_TLS))
        return punch_cli_usage_error("punch", "--turn-ca is for a turns:// --turn");
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    punch_log_init("punch", cli.log_level);
    int sub = optind;
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(argv[sub], commands[i].name) == 0) {
            optind = 0; /* glibc: start getopt afresh for the subcommand */
            return commands[i].run(&cli, argc - sub, argv + sub);
        }
    return punch_cli_usage_error("punch", "'%s' is not a command", argv[optind]);
}
