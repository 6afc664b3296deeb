/* SPDX-License-Identifier: MIT */
/* known_peers and other files of peers: see known_peers.h. */
#include "common/known_peers.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define fail(rc, ...) (snprintf(err, PUNCH_FILE_ERRLEN, __VA_ARGS__), (rc))

int punch_peer_file_load(const char *path, unsigned flags, punch_peer_list *l,
                         char err[PUNCH_FILE_ERRLEN])
{
    l->n = 0;
    /* One byte more than allowed tells a file that is too long. */
    char *text = malloc(PUNCH_PEER_LIST_MAX_BYTES + 2);
    if (!text)
        return fail(PUNCH_ERR_NOMEM, "out of memory reading %s", path);
    size_t line;
    const char *why;
    /* As ssh's StrictModes: whoever may write the list may add himself. */
    punch_file_info f;
    int rc = punch_private_file_read(path, PUNCH_FILE_OTHERS_WRITE, text,
                                     PUNCH_PEER_LIST_MAX_BYTES + 1, &f, err);
    if (rc == PUNCH_ERR_UNSUPPORTED)
        rc = fail(rc, "%s may be written by others (mode %04o): refusing to use it; run chmod "
                  "go-w %s", path, f.mode, path);
    else if (rc == 0)
        text[f.len] = '\0';
    if (rc == 0 && (rc = punch_peer_list_parse(text, f.len, flags, l, &line, &why)) != 0) {
        l->n = 0;
        if (line)
            rc = fail(rc, "%s:%zu: %s", path, line, why);
        else
            rc = fail(rc, "%s: %s", path, why);
    }
    free(text);
    return rc;
}

int punch_known_peers_find(const char *path, const char *name, uint8_t key[PUNCH_KEY_LEN],
                           char err[PUNCH_FILE_ERRLEN])
{
    punch_peer_list *l = malloc(sizeof(*l));
    if (!l)
        return fail(PUNCH_ERR_NOMEM, "out of memory reading %s", path);
    int rc = punch_peer_file_load(path, PUNCH_PEER_LIST_UNIQUE, l, err);
    if (rc == 0) {
        int i = punch_peer_list_find(l, name, NULL);
        if (i >= 0)
            memcpy(key, l->e[i].key, PUNCH_KEY_LEN);
        else
            rc = PUNCH_ERR_NOTFOUND;
    }
    free(l);
    return rc;
}

/* l as the new content of path: written beside it, then renamed over it. */
static int replace_file(const char *path, const punch_peer_list *l, char err[PUNCH_FILE_ERRLEN])
{
    char tmp[PATH_MAX], *text = malloc(PUNCH_PEER_LIST_MAX_BYTES + 1);
    if (!text)
        return fail(PUNCH_ERR_NOMEM, "out of memory writing %s", path);
    size_t len = punch_peer_list_format(l, text, PUNCH_PEER_LIST_MAX_BYTES + 1);
    int fd = -1, rc = 0;
    if (snprintf(tmp, sizeof(tmp), "%s.new", path) >= (int)sizeof(tmp))
        rc = fail(PUNCH_ERR_IO, "path too long: %s", path);
    else if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0)
        rc = fail(PUNCH_ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
    else {
        bool ok = write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
        ok = close(fd) == 0 && ok;
        if (!ok || rename(tmp, path) != 0) {
            rc = fail(PUNCH_ERR_IO, "cannot write %s: %s", path, strerror(errno));
            unlink(tmp);
        }
    }
    free(text);
    return rc;
}

/* Under the lock: read, learn, write back when something changed. */
static int learn_locked(const char *path, const char *name, const uint8_t key[PUNCH_KEY_LEN],
                        char err[PUNCH_FILE_ERRLEN])
{
    punch_peer_list *l = malloc(sizeof(*l));
    if (!l)
        return fail(PUNCH_ERR_NOMEM, "out of memory reading %s", path);
    int rc = punch_peer_file_load(path, PUNCH_PEER_LIST_UNIQUE, l, err);
    size_t before = l->n;
    if (rc == PUNCH_ERR_NOTFOUND)
        rc = 0;
    if (rc == 0)
        rc = punch_peer_list_learn(l, name, key);
    if (rc == PUNCH_ERR_INTEGRITY)
        rc = fail(rc, "%s holds another key for %s", path, name);
    else if (rc == PUNCH_ERR_LIMIT)
        rc = fail(rc, "%s is full (%d names): %s's key is not remembered", path,
             PUNCH_PEER_LIST_MAX, name);
    else if (rc == PUNCH_ERR_INVAL)
        rc = fail(rc, "'%s' is not a peer name", name);
    if (rc == 0 && l->n != before)
        rc = replace_file(path, l, err);
    free(l);
    return rc;
}

int punch_known_peers_add(const char *path, const char *name, const uint8_t key[PUNCH_KEY_LEN],
                          char err[PUNCH_FILE_ERRLEN])
{
    char lock[PATH_MAX];
    if (snprintf(lock, sizeof(lock), "%s.lock", path) >= (int)sizeof(lock))
        return fail(PUNCH_ERR_IO, "path too long: %s", path);
    if (punch_make_parents(path) != 0)
        return fail(PUNCH_ERR_IO, "cannot create the folder of %s: %s", path, strerror(errno));
    int fd = open(lock, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return fail(PUNCH_ERR_IO, "cannot open %s: %s", lock, strerror(errno));
    int rc;
    while ((rc = flock(fd, LOCK_EX)) != 0 && errno == EINTR)
        ;
    if (rc != 0)
        rc = fail(PUNCH_ERR_IO, "cannot lock %s: %s", lock, strerror(errno));
    else
        rc = learn_locked(path, name, key, err);
    close(fd); /* and the lock with it */
    return rc;
}
