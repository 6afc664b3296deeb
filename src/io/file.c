/* SPDX-License-Identifier: MIT */
/* Private files: see file.h. */
#include "io/file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "punch/punch.h"

static int cannot_read(const char *path, int e, char err[PUNCH_FILE_ERRLEN])
{
    snprintf(err, PUNCH_FILE_ERRLEN, "cannot read %s: %s", path, strerror(e));
    return e == ENOENT ? PUNCH_ERR_NOTFOUND : PUNCH_ERR_IO;
}

/* Up to cap bytes of fd into buf; the count, or -1 with errno set. */
static ssize_t read_up_to(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    while (len < cap) {
        ssize_t n = read(fd, buf + len, cap - len);
        if (n == 0)
            break;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        len += (size_t)n;
    }
    return (ssize_t)len;
}

int punch_private_file_read(const char *path, unsigned refused, char *buf, size_t cap,
                            punch_file_info *info, char err[PUNCH_FILE_ERRLEN])
{
    info->mode = 0;
    info->len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cannot_read(path, errno, err);
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0) {
        rc = cannot_read(path, errno, err);
    } else if ((info->mode = (unsigned)(st.st_mode & 07777)) & refused) {
        rc = PUNCH_ERR_UNSUPPORTED;
    } else {
        ssize_t n = read_up_to(fd, buf, cap);
        if (n < 0)
            rc = cannot_read(path, errno, err);
        else
            info->len = (size_t)n;
    }
    close(fd);
    return rc;
}

int punch_make_parents(const char *path)
{
    char dir[PATH_MAX];
    if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir)) {
        errno = ENAMETOOLONG;
        return -1;
    }
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
