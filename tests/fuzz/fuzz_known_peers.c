/* SPDX-License-Identifier: MIT */
/* libFuzzer target: known_peers (src/crypto/peer_list.c with one key a
 * name). Whatever the input: a list that parsed has no name twice; its
 * first name with another key is refused and leaves the list as it was;
 * a new name is learned unless the list is full; what is written parses
 * back to the same list (so an update never corrupts the file). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/peer_list.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void written_back(const punch_peer_list *l)
{
    static punch_peer_list back;
    static char text[PUNCH_PEER_LIST_MAX_BYTES + 1];
    size_t line, len = punch_peer_list_format(l, text, sizeof(text));
    const char *why;
    if (punch_peer_list_parse(text, len, PUNCH_PEER_LIST_UNIQUE, &back, &line, &why) != 0 ||
        back.n != l->n || memcmp(back.e, l->e, l->n * sizeof(l->e[0])) != 0)
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static punch_peer_list l;
    size_t line;
    const char *why;
    if (punch_peer_list_parse((const char *)data, size, PUNCH_PEER_LIST_UNIQUE, &l, &line,
                              &why) != 0)
        return 0;
    for (size_t i = 0; i < l.n; i++)
        if (punch_peer_list_find(&l, l.e[i].name, NULL) != (int)i)
            __builtin_trap(); /* a name twice */
    size_t n = l.n;
    if (n > 0) {
        uint8_t other[PUNCH_KEY_LEN];
        memcpy(other, l.e[0].key, PUNCH_KEY_LEN);
        other[0] ^= 1;
        if (punch_peer_list_learn(&l, l.e[0].name, other) != PUNCH_ERR_INTEGRITY || l.n != n ||
            punch_peer_list_learn(&l, l.e[0].name, l.e[0].key) != 0 || l.n != n)
            __builtin_trap();
    }
    uint8_t key[PUNCH_KEY_LEN] = {0};
    int rc = punch_peer_list_learn(&l, "fuzz-newcomer", key);
    bool had = punch_peer_list_find(&l, "fuzz-newcomer", NULL) >= 0 && l.n == n;
    bool full = rc == PUNCH_ERR_LIMIT && n == PUNCH_PEER_LIST_MAX;
    if (!(rc == 0 && (l.n == n + 1 || had)) && !full && rc != PUNCH_ERR_INTEGRITY)
        __builtin_trap();
    written_back(&l);
    return 0;
}
