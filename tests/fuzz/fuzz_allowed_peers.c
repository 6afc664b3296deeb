/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the --allowed-peers parser (src/crypto/peer_list.c,
 * any name with several keys). Whatever the input: no more than
 * PUNCH_PEER_LIST_MAX peers, each a valid name, and a list that parsed
 * is found entry by entry and written out parses back to the same list. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/peer_list.h"
#include "wire/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static punch_peer_list l, back;
    static char text[PUNCH_PEER_LIST_MAX_BYTES + 1];
    size_t line;
    const char *why = NULL;
    int rc = punch_peer_list_parse((const char *)data, size, 0, &l, &line, &why);
    if (rc != 0) {
        if ((rc != PUNCH_ERR_MALFORMED && rc != PUNCH_ERR_LIMIT) || !why)
            __builtin_trap();
        return 0;
    }
    if (l.n > PUNCH_PEER_LIST_MAX)
        __builtin_trap();
    for (size_t i = 0; i < l.n; i++)
        if (!punch_msg_valid_name(l.e[i].name) ||
            punch_peer_list_find(&l, l.e[i].name, l.e[i].key) < 0)
            __builtin_trap();
    size_t len = punch_peer_list_format(&l, text, sizeof(text));
    if ((len == 0) != (l.n == 0) ||
        punch_peer_list_parse(text, len, 0, &back, &line, &why) != 0 || back.n != l.n ||
        memcmp(back.e, l.e, l.n * sizeof(l.e[0])) != 0)
        __builtin_trap();
    return 0;
}
