/* known_peers: see known_peers.h. */
#include "common/known_peers.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/keyfile.h"

int punch_known_peers_find(const char *path, const char *name, uint8_t key[PUNCH_KEY_LEN])
{
    FILE *f = fopen(path, "re");
    if (!f)
        return errno == ENOENT ? PUNCH_ERR_NOTFOUND : PUNCH_ERR_IO;
    char line[256];
    int rc = PUNCH_ERR_NOTFOUND;
    while (rc == PUNCH_ERR_NOTFOUND && fgets(line, sizeof(line), f)) {
        char *save = NULL, *n = strtok_r(line, " \t\r\n", &save);
        char *k = strtok_r(NULL, " \t\r\n", &save);
        if (n && k && n[0] != '#' && strcmp(n, name) == 0 && punch_key_decode(k, key) == 0)
            rc = 0;
    }
    fclose(f);
    return rc;
}

int punch_known_peers_add(const char *path, const char *name, const uint8_t key[PUNCH_KEY_LEN])
{
    char text[PUNCH_KEY_B64_LEN], line[PUNCH_KEY_B64_LEN + 80];
    punch_key_encode(key, text);
    int n = snprintf(line, sizeof(line), "%s %s\n", name, text);
    if (punch_make_parents(path) != 0)
        return PUNCH_ERR_IO;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return PUNCH_ERR_IO;
    bool ok = n > 0 && write(fd, line, (size_t)n) == n;
    ok = close(fd) == 0 && ok;
    return ok ? 0 : PUNCH_ERR_IO;
}
