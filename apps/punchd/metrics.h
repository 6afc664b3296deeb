/* SPDX-License-Identifier: MIT */
/*
 * punchd --metrics ADDR:PORT: a small HTTP/1.x server on punchd's own event
 * loop that answers GET /metrics with Prometheus' text format (version
 * 0.0.4) and closes the connection. It never blocks the datagram loop:
 * every socket is non-blocking, at most PUNCHD_METRICS_MAX_CONNS
 * connections at once (a new one takes the place of the oldest that has
 * not sent a whole request yet, so idle connections cannot keep a scraper
 * out; when all are being answered it is closed at once; both counted), a
 * request must
 * come whole within PUNCHD_METRICS_REQUEST_MS in at most
 * PUNCHD_METRICS_MAX_REQUEST bytes, and the answer (at most
 * PUNCHD_METRICS_MAX_RESPONSE bytes) must be taken within the same time.
 * Anything else (not HTTP, another method, too long, too slow) is answered
 * 400 where it can be and counted as a bad request.
 */
#ifndef PUNCH_PUNCHD_METRICS_H
#define PUNCH_PUNCHD_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "io/loop.h"
#include "punch/punch.h"

#define PUNCHD_METRICS_MAX_CONNS 8
#define PUNCHD_METRICS_MAX_REQUEST 2048
#define PUNCHD_METRICS_MAX_RESPONSE (32 * 1024)
#define PUNCHD_METRICS_REQUEST_MS 5000u

typedef struct punchd_metrics_counters {
    uint64_t requests;       /* GET /metrics answered */
    uint64_t not_found;      /* GET of another path: 404 */
    uint64_t bad_requests;   /* not a GET request line, or too long: 400, closed */
    uint64_t timeouts;       /* not whole in time: closed */
    uint64_t refused_full;   /* closed at once: PUNCHD_METRICS_MAX_CONNS being answered */
    uint64_t pushed_out;     /* closed for a newer one before its request was whole */
} punchd_metrics_counters;

/* Writes the metrics text into buf (cap bytes); returns its length
 * (at most cap: a longer text is cut). */
typedef size_t (*punchd_metrics_render_fn)(void *arg, char *buf, size_t cap);

typedef struct punchd_metrics punchd_metrics;

/* Listen on at (TCP) and serve on loop. *bound gets the address bound.
 * Returns 0, PUNCH_ERR_NOMEM or PUNCH_ERR_IO (errno set). */
int punchd_metrics_new(punchd_metrics **m, punch_loop *loop, const punch_addr *at,
                       punch_addr *bound, punchd_metrics_render_fn render, void *arg);
/* Closes every connection and the listener. NULL is fine. */
void punchd_metrics_free(punchd_metrics *m);
const punchd_metrics_counters *punchd_metrics_counters_get(const punchd_metrics *m);

#endif
