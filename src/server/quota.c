/* SPDX-License-Identifier: MIT */
/* Counts per source: see quota.h. */
#include "server/quota.h"

#include "server/ratelimit.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

typedef struct count_entry {
    uint64_t key;     /* punch_source_prefix */
    uint32_t count;   /* 0: free */
    uint8_t family;
} count_entry;

struct punch_source_counts {
    count_entry *e;
    size_t mask;
    uint8_t hash_key[crypto_shorthash_KEYBYTES];
};

int punch_source_counts_new(punch_source_counts **out, size_t capacity,
                            const uint8_t hash_key[16])
{
    punch_source_counts *t = calloc(1, sizeof(*t));
    if (!t)
        return PUNCH_ERR_NOMEM;
    size_t size = 16;
    while (size < 2 * capacity) /* load factor at most 1/2: probes stay short */
        size *= 2;
    t->e = calloc(size, sizeof(count_entry));
    if (!t->e) {
        free(t);
        return PUNCH_ERR_NOMEM;
    }
    t->mask = size - 1;
    memcpy(t->hash_key, hash_key, sizeof(t->hash_key));
    *out = t;
    return 0;
}

void punch_source_counts_free(punch_source_counts *t)
{
    if (!t)
        return;
    free(t->e);
    free(t);
}

static size_t home_of(const punch_source_counts *t, uint8_t family, uint64_t key)
{
    uint8_t in[9], h[crypto_shorthash_BYTES];
    in[0] = family;
    memcpy(in + 1, &key, sizeof(key));
    crypto_shorthash(h, in, sizeof(in), t->hash_key);
    uint64_t v;
    memcpy(&v, h, sizeof(v));
    return (size_t)(v & t->mask);
}

/* The slot of src's source, or the free slot where it would go. */
static size_t slot_of(const punch_source_counts *t, const punch_addr *src)
{
    uint64_t key = punch_source_prefix(src);
    size_t i = home_of(t, src->family, key);
    while (t->e[i].count && !(t->e[i].family == src->family && t->e[i].key == key))
        i = (i + 1) & t->mask;
    return i;
}

uint32_t punch_source_counts_get(const punch_source_counts *t, const punch_addr *src)
{
    return t->e[slot_of(t, src)].count;
}

void punch_source_counts_add(punch_source_counts *t, const punch_addr *src)
{
    count_entry *e = &t->e[slot_of(t, src)];
    if (!e->count)
        *e = (count_entry){.key = punch_source_prefix(src), .family = src->family};
    e->count++;
}

/* Backward shift deletion: no tombstones, so lookups stay short forever. */
static void delete_slot(punch_source_counts *t, size_t i)
{
    for (size_t j = i;;) {
        t->e[i].count = 0;
        for (;;) {
            j = (j + 1) & t->mask;
            if (!t->e[j].count)
                return;
            size_t home = home_of(t, t->e[j].family, t->e[j].key);
            bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
            if (!stays)
                break;
        }
        t->e[i] = t->e[j];
        i = j;
    }
}

void punch_source_counts_remove(punch_source_counts *t, const punch_addr *src)
{
    size_t i = slot_of(t, src);
    if (!t->e[i].count)
        return;
    if (--t->e[i].count == 0)
        delete_slot(t, i);
}
