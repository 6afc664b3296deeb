/* punch keygen [--force] [FILE]: a new identity key, stored with mode 0600. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/identity.h"
#include "io/cli.h"
#include "io/loop.h"
#include "punch_cli.h"

static const char keygen_help[] =
    "usage: punch keygen [--force] [FILE]\n"
    "\n"
    "Create a new identity key (X25519) in FILE (default: the --key file,\n"
    "$XDG_CONFIG_HOME/punch/key), readable by you alone, and print its public\n"
    "key: the identity peers pin with 'punch connect NAME@PUBKEY'.\n"
    "An existing key is never replaced unless --force is given.\n";

/* Create the parent directories of path with mode 0700, like mkdir -p. */
static int make_parents(const char *path)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", path);
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(dir, 0700) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return 0;
}

static int write_key(const char *path, const char *text, bool force)
{
    if (make_parents(path) != 0) {
        fprintf(stderr, "punch: keygen: cannot create the folder of %s: %s\n", path,
                strerror(errno));
        return 1;
    }
    /* Write beside, then rename: a crash never leaves a half-written key. */
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s.new", path) >= (int)sizeof(tmp)) {
        fprintf(stderr, "punch: keygen: path too long: %s\n", path);
        return 1;
    }
    if (!force && access(path, F_OK) == 0) {
        fprintf(stderr, "punch: keygen: %s already holds a key; use --force to replace it\n",
                path);
        return 1;
    }
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "punch: keygen: cannot create %s: %s\n", tmp, strerror(errno));
        return 1;
    }
    size_t len = strlen(text);
    bool ok = write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok || (!force && link(tmp, path) != 0) || (force && rename(tmp, path) != 0)) {
        fprintf(stderr, "punch: keygen: cannot write %s: %s\n", path, strerror(errno));
        unlink(tmp);
        return 1;
    }
    unlink(tmp);
    return 0;
}

int punch_cmd_keygen(const punch_cli *cli, int argc, char **argv)
{
    static const struct option longs[] = {
        {"force", no_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    bool force = false;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", longs, NULL)) != -1) {
        switch (c) {
        case 'f': force = true; break;
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

    uint8_t secret[PUNCH_KEY_LEN];
    punch_identity id;
    if (punch_random_bytes(secret, sizeof(secret)) != 0 ||
        punch_identity_from_secret(&id, secret) != 0) {
        fprintf(stderr, "punch: keygen: no randomness: %s\n", strerror(errno));
        return 1;
    }
    char secret_text[PUNCH_KEY_B64_LEN + 1], public_text[PUNCH_KEY_B64_LEN];
    punch_key_encode(id.secret_key, secret_text);
    strcat(secret_text, "\n");
    punch_key_encode(id.public_key, public_text);
    punch_identity_wipe(&id);
    memset(secret, 0, sizeof(secret));
    int rc = write_key(path, secret_text, force);
    memset(secret_text, 0, sizeof(secret_text));
    if (rc == 0)
        printf("%s\n", public_text);
    return rc;
}
