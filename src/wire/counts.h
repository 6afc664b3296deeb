/* SPDX-License-Identifier: MIT */
/*
 * What one source of traffic is, and exact counts per source, shared by
 * punchd's limits (src/server: names per source) and punch-nat's
 * (src/nat: mappings per inside host).
 *
 * A source is an IPv4 address or the /64 of an IPv6 address: one host
 * commonly holds a whole /64, so counting IPv6 addresses one by one would
 * let it take as many shares as it likes.
 *
 * punch_counts: exact counts in a table of fixed capacity (each counted
 * thing counted under one key), open addressing with backward-shift
 * deletion. The caller hashes (with its own key, so no sender can aim at
 * a bucket); nothing is allocated after creation.
 */
#ifndef PUNCH_WIRE_COUNTS_H
#define PUNCH_WIRE_COUNTS_H

#include "punch/punch.h"

/* src's source as a number (compare the family too). */
uint64_t punch_source_prefix(const punch_addr *src);

typedef struct punch_counts punch_counts;

/* capacity: the most things counted at once. Returns 0, PUNCH_ERR_NOMEM. */
int punch_counts_new(punch_counts **t, size_t capacity);
void punch_counts_free(punch_counts *t);

/* How many are counted under (family, key); hash is the caller's hash of it. */
uint32_t punch_counts_get(const punch_counts *t, uint8_t family, uint64_t key, uint64_t hash);
/* One more; one fewer (a remove of nothing is ignored). Adding more than
 * capacity things at once is the caller's bug: refused (returns -1). */
int punch_counts_add(punch_counts *t, uint8_t family, uint64_t key, uint64_t hash);
void punch_counts_remove(punch_counts *t, uint8_t family, uint64_t key, uint64_t hash);

#endif
