/* SPDX-License-Identifier: MIT */
/* Tokens kept between runs: see server_tokens.h. */
#include "common/server_tokens.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/token_line.h"
#include "io/net.h"

#define fail(rc, ...) (snprintf(err, PUNCH_FILE_ERRLEN, __VA_ARGS__), (rc))

int punch_server_token_path(const char *dir, const punch_addr *server, char path[PATH_MAX])
{
    char addr[PUNCH_ADDR_STRLEN];
    punch_addr_format(server, addr);
    return snprintf(path, PATH_MAX, "%s/servers/%s", dir, addr) < PATH_MAX ? 0 : -1;
}

int punch_server_token_load(const char *path, punch_server_token *t,
                            char err[PUNCH_FILE_ERRLEN])
{
    char text[PUNCH_TOKEN_LINE_MAX + 1];
    punch_file_info f;
    int rc = punch_private_file_read(path, PUNCH_FILE_OTHERS_WRITE, text, sizeof(text), &f, err);
    if (rc == PUNCH_ERR_UNSUPPORTED)
        return fail(rc, "%s may be written by others (mode %04o): not used", path, f.mode);
    if (rc != 0)
        return rc;
    if (punch_token_line_parse(text, f.len, t) != 0)
        return fail(PUNCH_ERR_MALFORMED, "%s: not a token line (server key, token, nat)", path);
    return 0;
}

int punch_server_token_save(const char *path, const punch_server_token *t,
                            char err[PUNCH_FILE_ERRLEN])
{
    char tmp[PATH_MAX], text[PUNCH_TOKEN_LINE_MAX];
    size_t len = punch_token_line_format(t, text);
    if (snprintf(tmp, sizeof(tmp), "%s.new", path) >= (int)sizeof(tmp))
        return fail(PUNCH_ERR_IO, "path too long: %s", path);
    if (punch_make_parents(path) != 0)
        return fail(PUNCH_ERR_IO, "cannot make the folder of %s: %s", path, strerror(errno));
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return fail(PUNCH_ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
    bool ok = write(fd, text, len) == (ssize_t)len;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return fail(PUNCH_ERR_IO, "cannot write %s: %s", path, strerror(e));
    }
    return 0;
}
