/* SPDX-License-Identifier: MIT */
/* punch keygen [--force | --public] [FILE]: a new identity key, stored with
 * mode 0600, or the public key of the one there. */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>

#include "crypto/identity.h"
#include "common/cli.h"
#include "keyfile/keyfile.h"
#include "punch_cli.h"

static const char keygen_help[] =
    "usage: punch keygen [--force | --public] [FILE]\n"
    "\n"
    "Create a new identity key (X25519) in FILE (default: the --key file,\n"
    "$XDG_CONFIG_HOME/punch/key), readable by you alone, and print its public\n"
    "key: the identity peers pin with 'punch connect NAME@PUBKEY'.\n"
    "An existing key is never replaced unless --force is given.\n"
    "--public: make nothing; print the public key of the key in FILE (what a\n"
    "listener's --peer NAME@KEY or --allowed-peers file wants from us).\n";

int punch_cmd_keygen(const punch_cli *cli, int argc, char **argv)
{
    static const struct option longs[] = {
        {"force", no_argument, NULL, 'f'},
        {"public", no_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    bool force = false, public_only = false;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", longs, NULL)) != -1) {
        switch (c) {
        case 'f': force = true; break;
        case 'p': public_only = true; break;
        case 'h': fputs(keygen_help, stdout); return 0;
        default:
            return punch_cli_usage_error("punch keygen", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind > 1)
        return punch_cli_usage_error("punch keygen", "unexpected argument '%s'", argv[optind + 1]);
    char path[PATH_MAX];
    if (optind < argc)
        snprintf(path, sizeof(path), "%s", argv[optind]);
    else if (punch_cli_key_path(cli, path, sizeof(path)) != 0)
        return 1;

    if (force && public_only)
        return punch_cli_usage_error("punch keygen", "--public makes nothing: not with --force");
    punch_identity id;
    char err[PUNCH_KEYFILE_ERRLEN];
    if (public_only ? punch_keyfile_load(path, &id, err) != 0
                    : punch_keyfile_create(path, force, &id, err) != 0) {
        fprintf(stderr, "punch: keygen: %s\n", err);
        return 1;
    }
    char public_text[PUNCH_KEY_B64_LEN];
    punch_key_encode(id.public_key, public_text);
    punch_identity_wipe(&id);
    printf("%s\n", public_text);
    return 0;
}
