/* SPDX-License-Identifier: MIT */
/* The punch command line: global options and one file per subcommand. */
#ifndef PUNCH_APPS_PUNCH_CLI_H
#define PUNCH_APPS_PUNCH_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/turn_url.h"
#include "punch/punch.h"

typedef struct punch_cli {
    const char *server;   /* --server, else $PUNCH_SERVER */
    const char *more_servers[PUNCH_MAX_SERVERS - 1]; /* --server given again */
    size_t n_more_servers;
    const char *name;     /* --name */
    const char *key;      /* --key, else $XDG_CONFIG_HOME/punch/key */
    const char *events;   /* --events */
    uint64_t start_ms;    /* when the program started (events' t_ms) */
    int open_ttl;         /* --open-ttl: TTL of the first probes to a public endpoint;
                             0 turns the low-TTL opening off, -1 the default */
    int log_level;
    bool no_birthday;     /* --no-birthday: no many-port probing */
    bool no_aes;          /* --no-aes: never offer AES-256-GCM */
    bool no_nat64;        /* --nat64-prefix off */
    punch_nat64_prefix nat64_prefix; /* --nat64-prefix P/LEN; bits 0: 64:ff9b::/96 */
    int portmap;          /* --portmap: a punch_portmap_proto (default auto) */
    bool has_turn;        /* --turn URL, parsed (host not resolved yet) */
    punch_turn_url turn;
    const char *turn_ca;  /* --turn-ca FILE: the CAs a turns:// server's certificate chains to */
} punch_cli;

typedef struct punch_command {
    const char *name;
    int (*run)(const punch_cli *cli, int argc, char **argv);
    const char *args;     /* what follows the name in the usage line */
    const char *help;     /* one line */
} punch_command;

/* Subcommands: argv[0] is the subcommand's name. Each returns the exit code. */
int punch_cmd_keygen(const punch_cli *cli, int argc, char **argv);
int punch_cmd_natcheck(const punch_cli *cli, int argc, char **argv);
int punch_cmd_listen(const punch_cli *cli, int argc, char **argv);
int punch_cmd_connect(const punch_cli *cli, int argc, char **argv);
int punch_cmd_ping(const punch_cli *cli, int argc, char **argv);
int punch_cmd_vpn(const punch_cli *cli, int argc, char **argv);
int punch_cmd_forward(const punch_cli *cli, int argc, char **argv);

/* The key file path: --key, else $XDG_CONFIG_HOME/punch/key, else
 * $HOME/.config/punch/key. Returns 0, or 1 with a message on stderr. */
int punch_cli_key_path(const punch_cli *cli, char *out, size_t cap);

#endif
