/* SPDX-License-Identifier: MIT */
/* Sources and counts per source: see counts.h. */
#include "wire/counts.h"

#include <stdlib.h>

uint64_t punch_source_prefix(const punch_addr *src)
{
    uint64_t k = 0;
    size_t n = src->family == PUNCH_AF_INET ? 4 : 8;
    for (size_t i = 0; i < n; i++)
        k = (k << 8) | src->ip[i];
    return k;
}

typedef struct count_entry {
    uint64_t key;
    uint32_t home;    /* hash & mask */
    uint32_t count;   /* 0: free */
    uint8_t family;
} count_entry;

struct punch_counts {
    count_entry *e;
    uint32_t mask;
    size_t used, capacity;
};

int punch_counts_new(punch_counts **out, size_t capacity)
{
    punch_counts *t = calloc(1, sizeof(*t));
    if (!t || capacity > (1u << 30)) {
        free(t);
        return PUNCH_ERR_NOMEM;
    }
    size_t size = 16;
    while (size < 2 * capacity) /* load factor at most 1/2: probes stay short */
        size *= 2;
    t->e = calloc(size, sizeof(count_entry));
    if (!t->e) {
        free(t);
        return PUNCH_ERR_NOMEM;
    }
    t->mask = (uint32_t)(size - 1);
    t->capacity = capacity;
    *out = t;
    return 0;
}

void punch_counts_free(punch_counts *t)
{
    if (!t)
        return;
    free(t->e);
    free(t);
}

/* The slot of (family, key), or the free slot where it would go. */
static uint32_t slot_of(const punch_counts *t, uint8_t family, uint64_t key, uint64_t hash)
{
    uint32_t i = (uint32_t)hash & t->mask;
    while (t->e[i].count && !(t->e[i].family == family && t->e[i].key == key))
        i = (i + 1) & t->mask;
    return i;
}

uint32_t punch_counts_get(const punch_counts *t, uint8_t family, uint64_t key, uint64_t hash)
{
    return t->e[slot_of(t, family, key, hash)].count;
}

int punch_counts_add(punch_counts *t, uint8_t family, uint64_t key, uint64_t hash)
{
    count_entry *e = &t->e[slot_of(t, family, key, hash)];
    if (!e->count) {
        if (t->used == t->capacity)
            return -1;
        t->used++;
        *e = (count_entry){.key = key, .home = (uint32_t)hash & t->mask, .family = family};
    }
    e->count++;
    return 0;
}

/* Backward shift: pull later entries of the run into the hole unless their
 * home lies cyclically in (hole, their slot]. No tombstones, so lookups
 * stay short however long the table lives. */
static void delete_slot(punch_counts *t, uint32_t i)
{
    for (uint32_t j = i;;) {
        t->e[i].count = 0;
        for (;;) {
            j = (j + 1) & t->mask;
            if (!t->e[j].count)
                return;
            uint32_t home = t->e[j].home;
            bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
            if (!stays)
                break;
        }
        t->e[i] = t->e[j];
        i = j;
    }
}

void punch_counts_remove(punch_counts *t, uint8_t family, uint64_t key, uint64_t hash)
{
    uint32_t i = slot_of(t, family, key, hash);
    if (!t->e[i].count)
        return;
    if (--t->e[i].count == 0) {
        t->used--;
        delete_slot(t, i);
    }
}
