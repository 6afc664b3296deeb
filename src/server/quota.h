/* SPDX-License-Identifier: MIT */
/*
 * punchd's limits per source and per destination, on top of the per
 * session ones (issue 12, findings 5 and 7; docs/security.md):
 *   - names registered from one source (IPv4 address or IPv6 /64), so one
 *     address cannot fill the registry;
 *   - introductions one source may ask for towards one target peer, so a
 *     crowd of keys behind one address cannot keep a listener's slots full;
 *   - relayed bytes and datagrams per source, over all the sessions it
 *     drives, and per destination peer, over all the sessions that reach it.
 * Sans-I/O like the rest of src/server: time comes in, nothing is allocated
 * after creation. Used by registry.c and relay.c.
 */
#ifndef PUNCH_SERVER_QUOTA_H
#define PUNCH_SERVER_QUOTA_H

#include "punch/punch.h"

/* Exact counts of something per source, in a table of fixed capacity
 * (every counted thing, a registered peer, is counted under one source). */
typedef struct punch_source_counts punch_source_counts;

/* Returns 0, PUNCH_ERR_NOMEM. capacity: the most things counted at once. */
int punch_source_counts_new(punch_source_counts **t, size_t capacity,
                            const uint8_t hash_key[16]);
void punch_source_counts_free(punch_source_counts *t);
/* How many are counted under src's source now. */
uint32_t punch_source_counts_get(const punch_source_counts *t, const punch_addr *src);
/* One more, one fewer under src's source (a remove of nothing is ignored). */
void punch_source_counts_add(punch_source_counts *t, const punch_addr *src);
void punch_source_counts_remove(punch_source_counts *t, const punch_addr *src);

#endif
