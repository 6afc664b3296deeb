/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the request heads punchd's metrics endpoint reads
 * (apps/punchd/http_request.c). Whatever the bytes: an answer in range; the
 * same answer when the head is whole, however much of the connection's
 * buffer is left (cap); and a prefix without the head's end is never more
 * than INCOMPLETE or BAD. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A copy of exactly size bytes, so ASan sees any read past the end. */
    char *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    punchd_http_request r = punchd_http_parse(copy, size, 2048);
    if (r > PUNCHD_HTTP_BAD)
        abort();
    if (r != PUNCHD_HTTP_INCOMPLETE && r != PUNCHD_HTTP_BAD &&
        punchd_http_parse(copy, size, size) != r)
        abort();
    for (size_t cut = 0; cut < size && cut < 64; cut++) {
        punchd_http_request p = punchd_http_parse(copy, cut, 2048);
        if (p == PUNCHD_HTTP_INCOMPLETE && r == PUNCHD_HTTP_INCOMPLETE)
            continue;
        /* A whole head in the prefix is the whole input's head (unless a
         * NUL byte later makes the whole input bad). */
        if (p != PUNCHD_HTTP_INCOMPLETE && p != PUNCHD_HTTP_BAD && r != PUNCHD_HTTP_BAD &&
            p != r)
            abort();
    }
    free(copy);
    return 0;
}
