/* SPDX-License-Identifier: MIT */
/*
 * punchd's counters as Prometheus text (exposition format 0.0.4): every
 * name starts with punchd_, counters end in _total, drops are one family
 * with a reason label. docs/operations.md lists them.
 */
#ifndef PUNCH_PUNCHD_PROMETHEUS_H
#define PUNCH_PUNCHD_PROMETHEUS_H

#include <stddef.h>
#include <stdint.h>

#include "cluster_redis.h"
#include "metrics.h"
#include "server/binding.h"
#include "server/rendezvous.h"
#include "tcp_server.h"

typedef struct punchd_stats {
    const punch_binding_counters *stun;
    const punch_rendezvous_counters *rv;
    const punch_tcp_server_counters *tcp;    /* NULL with --no-tcp */
    const punchd_metrics_counters *http;
    uint64_t send_dropped;  /* datagrams the kernel did not take */
    uint64_t tcp_clash;     /* punch datagrams over UDP from a TCP peer's address */
    uint64_t uptime_s;
    const punchd_cluster *cluster;           /* NULL without --cluster */
} punchd_stats;

/* Write the text into buf (cap bytes, cut if longer); returns its length. */
size_t punchd_prometheus_render(const punchd_stats *s, char *buf, size_t cap);

#endif
