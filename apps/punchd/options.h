/* SPDX-License-Identifier: MIT */
/*
 * punchd's settings: the config file (config.h) and the command line over
 * it, into one struct; the usage text and its usage errors, each quoting
 * the bad value (and naming FILE:LINE for a line of the file).
 */
#ifndef PUNCH_PUNCHD_OPTIONS_H
#define PUNCH_PUNCHD_OPTIONS_H

#include <stdbool.h>

#include "config.h"
#include "punch/punch.h"
#include "server/binding.h"

#define PUNCHD_MAX_LISTEN PUNCH_BINDING_MAX_GROUPS

typedef struct punchd_options {
    size_t n_listen;
    punch_addr listen[PUNCHD_MAX_LISTEN];
    bool has_alt;
    punch_addr alt;
    const char *alt_text;
    bool default_listen; /* no --listen given: 0.0.0.0 and :: */
    int alt_for;      /* index of the --listen that --alt pairs with, or -1 */
    const char *events;
    int log_level;
    unsigned long long rate;
    const char *key;
    bool no_relay;
    unsigned long long max_peers;
    unsigned long long names_per_source; /* 0: the default */
    unsigned long long relay_max_bytes;
    unsigned long long relay_bytes_per_s, relay_packets_per_s; /* 0: the defaults */
    /* per source IP (/64) and per destination peer; 0: the defaults */
    unsigned long long relay_source_bytes_per_s, relay_source_packets_per_s;
    unsigned long long connects_per_target_per_s; /* 0: the default */
    bool no_tcp;
    unsigned long long max_tcp, max_tcp_per_ip;
    int second_port;  /* -1: PORT+1 (default), 0: off, else that port */
    bool has_metrics;
    punch_addr metrics;
    /* --cluster redis://HOST:PORT[/DB] (cluster_redis.h) and its secret */
    bool has_cluster;
    punch_addr cluster_redis;
    unsigned cluster_db;
    const char *cluster_secret_file;
    bool has_cluster_address;   /* --cluster-address IP[:PORT] (port 0: the --listen's) */
    punch_addr cluster_address;
    bool listen_replace; /* the next --listen replaces those so far (the file's) */
} punchd_options;

/* Where the settings come from: the command line, and the config file it
 * names (--config) or the default one when that exists. */
typedef struct punchd_source {
    int argc;
    char **argv;
    const char *config_path;   /* NULL: none */
    bool config_given;         /* by --config: then it must exist */
} punchd_source;

/* Fill src from argc/argv (a first pass that only looks for --config). */
void punchd_source_init(punchd_source *src, int argc, char **argv);

/* The config file, then the command line over it, into *o; *config gets
 * the file read (NULL: none; o's strings may point into it, so it lives
 * as long as o). Returns 0 to run, 1 when the file cannot be read, 2 on a
 * usage error (printed), -1 when --help/--version was served. */
int punchd_options_read(const punchd_source *src, punchd_options *o, punchd_config **config);

#endif
