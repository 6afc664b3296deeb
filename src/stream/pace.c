/* SPDX-License-Identifier: MIT */
/* Pacing on relayed paths: see pace.h. */
#include "stream/pace.h"

#include <stdlib.h>
#include <string.h>

/* A token bucket in thousandths of a token: rate tokens a second is rate
 * thousandths a millisecond, so no division on the way. */
typedef struct pace_bucket {
    uint64_t rate;  /* tokens per second; 0: off */
    int64_t milli;  /* below 0 after a charge around the queue */
    int64_t cap;
} pace_bucket;

typedef struct pace_slot {
    uint16_t len;
    uint8_t data[PACE_MAX_PACKET];
} pace_slot;

struct punch_pace {
    pace_bucket bytes, packets;
    uint64_t last_ms;
    pace_slot *ring;   /* PACE_SLOTS, made on the first wait */
    size_t head, count, queued_bytes;
    pace_counters c;
};

punch_pace *punch_pace_new(void)
{
    return calloc(1, sizeof(punch_pace));
}

void punch_pace_free(punch_pace *pc)
{
    if (!pc)
        return;
    free(pc->ring);
    free(pc);
}

bool punch_pace_on(const punch_pace *pc)
{
    return pc->bytes.rate != 0;
}

static void refill(punch_pace *pc, uint64_t now)
{
    uint64_t elapsed = now > pc->last_ms ? now - pc->last_ms : 0;
    pc->last_ms = now;
    pace_bucket *b[2] = {&pc->bytes, &pc->packets};
    for (int i = 0; i < 2; i++) {
        /* Capped before multiplying: an idle hour must not overflow. */
        uint64_t room = (uint64_t)(b[i]->cap - b[i]->milli) / b[i]->rate + 1;
        uint64_t ms = elapsed < room ? elapsed : room;
        int64_t level = b[i]->milli + (int64_t)(ms * b[i]->rate);
        b[i]->milli = level < b[i]->cap ? level : b[i]->cap;
    }
}

static void set_bucket(pace_bucket *b, uint32_t told, bool was_on)
{
    b->rate = (uint64_t)told * PACE_SHARE_PERCENT / 100;
    if (!b->rate)
        b->rate = 1;
    b->cap = (int64_t)(b->rate * PACE_BURST_MS);
    if (!was_on || b->milli > b->cap)
        b->milli = b->cap;
}

void punch_pace_set_rate(punch_pace *pc, uint64_t now, uint32_t bytes_per_s,
                         uint32_t packets_per_s)
{
    if (!bytes_per_s || !packets_per_s) {
        pc->bytes.rate = pc->packets.rate = 0;
        return;
    }
    bool was_on = punch_pace_on(pc);
    if (was_on)
        refill(pc, now);
    pc->last_ms = now;
    set_bucket(&pc->bytes, bytes_per_s, was_on);
    set_bucket(&pc->packets, packets_per_s, was_on);
}

static int64_t byte_cost(size_t len)
{
    return (int64_t)(len + PACE_OVERHEAD) * 1000;
}

static bool affordable(const punch_pace *pc, size_t len)
{
    return pc->bytes.milli >= byte_cost(len) && pc->packets.milli >= 1000;
}

static void charge(punch_pace *pc, size_t len)
{
    pc->bytes.milli -= byte_cost(len);
    pc->packets.milli -= 1000;
    /* A debt of one burst at most: the repair's traffic around the queue
     * must not hold the queue back for longer than that. */
    if (pc->bytes.milli < -pc->bytes.cap)
        pc->bytes.milli = -pc->bytes.cap;
    if (pc->packets.milli < -pc->packets.cap)
        pc->packets.milli = -pc->packets.cap;
}

/* Room for one more packet of len bytes: PACE_QUEUE_MS of either paced
 * rate, at least PACE_QUEUE_MIN packets, at most PACE_SLOTS. */
static bool room_for(const punch_pace *pc, size_t len)
{
    if (pc->count >= PACE_SLOTS)
        return false;
    return pc->count < PACE_QUEUE_MIN ||
           (pc->queued_bytes + len + (pc->count + 1) * PACE_OVERHEAD <=
                pc->bytes.rate * PACE_QUEUE_MS / 1000 &&
            pc->count + 1 <= pc->packets.rate * PACE_QUEUE_MS / 1000);
}

pace_verdict punch_pace_offer(punch_pace *pc, uint64_t now, const uint8_t *pkt, size_t len)
{
    if (!punch_pace_on(pc))
        return PACE_SEND;
    refill(pc, now);
    if (pc->count == 0 && affordable(pc, len)) {
        charge(pc, len);
        return PACE_SEND;
    }
    if (len > PACE_MAX_PACKET || !room_for(pc, len) ||
        (!pc->ring && !(pc->ring = malloc(PACE_SLOTS * sizeof(pace_slot))))) {
        pc->c.dropped++;
        return PACE_DROPPED;
    }
    pace_slot *s = &pc->ring[(pc->head + pc->count) % PACE_SLOTS];
    s->len = (uint16_t)len;
    memcpy(s->data, pkt, len);
    pc->count++;
    pc->queued_bytes += len;
    pc->c.queued++;
    return PACE_QUEUED;
}

size_t punch_pace_next(punch_pace *pc, uint64_t now, uint8_t *out)
{
    if (pc->count == 0)
        return 0;
    const pace_slot *s = &pc->ring[pc->head];
    if (punch_pace_on(pc)) {
        refill(pc, now);
        if (!affordable(pc, s->len))
            return 0;
        charge(pc, s->len);
    }
    size_t len = s->len;
    memcpy(out, s->data, len);
    pc->head = (pc->head + 1) % PACE_SLOTS;
    pc->count--;
    pc->queued_bytes -= len;
    return len;
}

void punch_pace_charge(punch_pace *pc, uint64_t now, size_t len)
{
    if (!punch_pace_on(pc))
        return;
    refill(pc, now);
    charge(pc, len);
}

/* Milliseconds until b holds need thousandths (0: it does). */
static uint64_t wait_for(const pace_bucket *b, int64_t need)
{
    if (b->milli >= need)
        return 0;
    return ((uint64_t)(need - b->milli) + b->rate - 1) / b->rate;
}

uint64_t punch_pace_deadline(const punch_pace *pc, uint64_t now)
{
    if (pc->count == 0)
        return UINT64_MAX;
    if (!punch_pace_on(pc))
        return now;
    /* From the levels at last_ms (the last refill), which is at most now. */
    uint64_t a = wait_for(&pc->bytes, byte_cost(pc->ring[pc->head].len));
    uint64_t b = wait_for(&pc->packets, 1000);
    uint64_t at = pc->last_ms + (a > b ? a : b);
    return at > now ? at : now;
}

size_t punch_pace_waiting(const punch_pace *pc)
{
    return pc->count;
}

const pace_counters *punch_pace_counters(const punch_pace *pc)
{
    return &pc->c;
}
