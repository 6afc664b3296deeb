/* SPDX-License-Identifier: MIT */
/* Identity key files: see keyfile.h. */
#include "keyfile/keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/loop.h"
#include "punch/punch.h"

#define fail(rc, ...) (snprintf(err, PUNCH_KEYFILE_ERRLEN, __VA_ARGS__), (rc))

static int write_key(const char *path, const char *text, bool replace,
                     char err[PUNCH_KEYFILE_ERRLEN])
{
    if (punch_make_parents(path) != 0)
        return fail(PUNCH_ERR_IO, "cannot create the folder of %s: %s", path, strerror(errno));
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s.new", path) >= (int)sizeof(tmp))
        return fail(PUNCH_ERR_IO, "path too long: %s", path);
    if (!replace && access(path, F_OK) == 0)
        return fail(PUNCH_ERR_LIMIT, "%s already holds a key; use --force to replace it", path);
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return fail(PUNCH_ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
    size_t len = strlen(text);
    bool ok = write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    /* link() fails when path appeared meanwhile: never replace by accident. */
    if (!ok || (!replace && link(tmp, path) != 0) || (replace && rename(tmp, path) != 0)) {
        int e = errno;
        unlink(tmp);
        return fail(e == EEXIST ? PUNCH_ERR_LIMIT : PUNCH_ERR_IO, "cannot write %s: %s", path,
                    strerror(e));
    }
    unlink(tmp);
    return 0;
}

int punch_key_file_save(const char *path, const uint8_t secret[PUNCH_KEY_BYTES], bool replace,
                        char *err_out, size_t errlen)
{
    char err[PUNCH_KEYFILE_ERRLEN] = "";
    char text[PUNCH_KEY_B64_LEN + 1];
    punch_key_encode(secret, text);
    strcat(text, "\n");
    int rc = write_key(path, text, replace, err);
    memset(text, 0, sizeof(text));
    if (rc != 0 && errlen > 0)
        snprintf(err_out, errlen, "%s", err);
    return rc;
}

int punch_keyfile_create(const char *path, bool replace, punch_identity *id,
                         char err[PUNCH_KEYFILE_ERRLEN])
{
    uint8_t secret[PUNCH_KEY_LEN];
    if (punch_random_bytes(secret, sizeof(secret)) != 0 ||
        punch_identity_from_secret(id, secret) != 0)
        return fail(PUNCH_ERR_IO, "no randomness: %s", strerror(errno));
    memset(secret, 0, sizeof(secret));
    int rc = punch_key_file_save(path, id->secret_key, replace, err, PUNCH_KEYFILE_ERRLEN);
    if (rc != 0)
        punch_identity_wipe(id);
    return rc;
}

int punch_keyfile_load(const char *path, punch_identity *id, char err[PUNCH_KEYFILE_ERRLEN])
{
    /* As ssh: a secret others can read is no longer only ours. */
    char text[128];
    punch_file_info f;
    int rc = punch_private_file_read(path, PUNCH_FILE_OTHERS_ANY, text, sizeof(text) - 1, &f, err);
    if (rc == PUNCH_ERR_UNSUPPORTED)
        return fail(rc, "%s may be read or written by others (mode %04o): refusing to use it; "
                    "run chmod 600 %s", path, f.mode, path);
    if (rc != 0)
        return rc;
    text[f.len] = '\0';
    uint8_t secret[PUNCH_KEY_LEN];
    if (punch_key_decode(text, secret) != 0 || punch_identity_from_secret(id, secret) != 0)
        rc = fail(PUNCH_ERR_MALFORMED, "%s does not hold a punch key (one base64 line)", path);
    memset(text, 0, sizeof(text));
    memset(secret, 0, sizeof(secret));
    return rc;
}

int punch_keyfile_load_or_create(const char *path, punch_identity *id, bool *created,
                                 char err[PUNCH_KEYFILE_ERRLEN])
{
    *created = false;
    int rc = punch_keyfile_load(path, id, err);
    if (rc != PUNCH_ERR_NOTFOUND)
        return rc;
    rc = punch_keyfile_create(path, false, id, err);
    /* Another process made it first: use theirs. */
    if (rc == PUNCH_ERR_LIMIT)
        return punch_keyfile_load(path, id, err);
    *created = rc == 0;
    return rc;
}

int punch_key_file_load(const char *path, uint8_t secret[PUNCH_KEY_BYTES], char *err_out,
                        size_t errlen)
{
    char err[PUNCH_KEYFILE_ERRLEN] = "";
    punch_identity id;
    int rc = punch_keyfile_load(path, &id, err);
    if (rc == 0)
        memcpy(secret, id.secret_key, PUNCH_KEY_BYTES);
    else if (errlen > 0)
        snprintf(err_out, errlen, "%s", err);
    punch_identity_wipe(&id);
    return rc;
}
