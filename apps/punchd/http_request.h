/* SPDX-License-Identifier: MIT */
/*
 * What an HTTP/1.x request head asks of punchd's metrics endpoint, from the
 * bytes received so far: pure (no sockets), bounded, and fed by the
 * network, so it has a fuzz target (tests/fuzz/fuzz_http.c).
 */
#ifndef PUNCH_PUNCHD_HTTP_REQUEST_H
#define PUNCH_PUNCHD_HTTP_REQUEST_H

#include <stddef.h>

typedef enum punchd_http_request {
    PUNCHD_HTTP_INCOMPLETE,  /* no empty line yet, and room for more */
    PUNCHD_HTTP_METRICS,     /* GET /metrics (a query string is ignored) */
    PUNCHD_HTTP_NOT_FOUND,   /* GET of another path */
    PUNCHD_HTTP_BAD_METHOD,  /* another method */
    PUNCHD_HTTP_BAD,         /* not an HTTP/1.x request line, a NUL byte, or
                                no end of the head within cap bytes */
} punchd_http_request;

/* data holds the first len bytes of a connection (any bytes); cap is the
 * most the caller will hold. */
punchd_http_request punchd_http_parse(const char *data, size_t len, size_t cap);

#endif
