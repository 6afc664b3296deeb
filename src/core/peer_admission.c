/* SPDX-License-Identifier: MIT */
/* Peer slots and the probe budget: see peer_admission.h. */
#include "core/peer_admission.h"

#include <string.h>

static bool handshaking_stranger(const punch_slot_view *s)
{
    return s->used && !s->asked && !s->handshaken;
}

static bool older(const punch_slot_view *slots, int i, int than)
{
    return than < 0 || slots[i].admitted_ms < slots[than].admitted_ms;
}

uint64_t punch_admission_answer_ms(uint32_t my_rtt_ms, uint32_t peer_rtt_ms)
{
    uint64_t ms = PUNCH_ANSWER_SLACK_MS + 2 * ((uint64_t)my_rtt_ms + peer_rtt_ms);
    return ms < PUNCH_ANSWER_MAX_MS ? ms : PUNCH_ANSWER_MAX_MS;
}

/* Whether a stranger may push out the silent one in s: its window ended. */
static bool may_push_out(const punch_slot_view *s, bool stranger, uint64_t now)
{
    return !stranger || now >= s->answer_by_ms;
}

int punch_admission_pick(const punch_slot_view *slots, size_t n, bool stranger, uint64_t now,
                         bool *evict)
{
    int free_slot = -1, oldest_silent = -1, oldest_speaking = -1;
    size_t strangers = 0;
    for (size_t i = 0; i < n; i++) {
        if (!slots[i].used) {
            if (free_slot < 0)
                free_slot = (int)i;
        } else if (handshaking_stranger(&slots[i])) {
            strangers++;
            int *oldest = slots[i].spoke ? &oldest_speaking : &oldest_silent;
            if (!slots[i].spoke && !may_push_out(&slots[i], stranger, now))
                continue;
            if (older(slots, (int)i, *oldest))
                *oldest = (int)i;
        }
    }
    bool crowded = stranger && strangers >= PUNCH_MAX_HANDSHAKING;
    *evict = false;
    if (free_slot >= 0 && !crowded)
        return free_slot;
    /* A silent stranger goes first; one that is handshaking with us (it
     * spoke) gives way only to a peer we asked for: a newer stranger waits
     * for its next introduction instead. */
    int victim = oldest_silent >= 0 || stranger ? oldest_silent : oldest_speaking;
    *evict = victim >= 0;
    return victim;
}

uint64_t punch_admission_room_at(const punch_slot_view *slots, size_t n)
{
    size_t strangers = 0;
    bool free_slot = false;
    uint64_t at = UINT64_MAX;
    for (size_t i = 0; i < n; i++) {
        if (!slots[i].used) {
            free_slot = true;
        } else if (handshaking_stranger(&slots[i])) {
            strangers++;
            if (!slots[i].spoke && slots[i].answer_by_ms < at)
                at = slots[i].answer_by_ms;
        }
    }
    return free_slot && strangers < PUNCH_MAX_HANDSHAKING ? 0 : at;
}

uint64_t punch_admission_deadline(const punch_slot_view *s)
{
    if (!handshaking_stranger(s))
        return UINT64_MAX;
    return s->admitted_ms + PUNCH_HANDSHAKE_DEADLINE_MS;
}

bool punch_admission_expired(const punch_slot_view *s, uint64_t now)
{
    return now >= punch_admission_deadline(s);
}

static void bucket_refill(punch_probe_bucket *b, uint64_t now)
{
    const uint64_t full = (uint64_t)PUNCH_PROBE_BURST * 1000;
    if (!b->started) {
        b->started = true;
        b->tokens_milli = full;
    } else if (now > b->updated_ms) {
        uint64_t add = (now - b->updated_ms) * PUNCH_PROBE_RATE; /* ms x probes/s = milli */
        b->tokens_milli = full - b->tokens_milli < add ? full : b->tokens_milli + add;
    }
    b->updated_ms = now > b->updated_ms ? now : b->updated_ms;
}

static bool within_budget(const punch_probe_ask *q)
{
    if (q->to_peer >= PUNCH_PROBES_PER_PEER + q->allowance)
        return false;
    if (q->many_port)
        return true;
    if (q->claimed)
        return q->to_ip < PUNCH_PROBES_PER_CLAIMED_IP;
    return q->to_candidate < PUNCH_PROBES_PER_CANDIDATE;
}

bool punch_probe_allowed(punch_probe_bucket *b, uint64_t now, const punch_probe_ask *q)
{
    if (q->verified)
        return true;
    if (!within_budget(q))
        return false;
    bucket_refill(b, now);
    if (b->tokens_milli < 1000)
        return false;
    b->tokens_milli -= 1000;
    return true;
}

void punch_spent_add(punch_spent_keys *s, const uint8_t key[32], uint64_t now)
{
    unsigned i = s->next;
    for (unsigned k = 0; k < PUNCH_SPENT_KEYS; k++)
        if (s->used[k] && memcmp(s->key[k], key, 32) == 0)
            i = k; /* the same key again: its entry, renewed */
    memcpy(s->key[i], key, 32);
    s->at_ms[i] = now;
    s->used[i] = true;
    if (i == s->next)
        s->next = (s->next + 1) % PUNCH_SPENT_KEYS;
}

bool punch_spent_recent(const punch_spent_keys *s, const uint8_t key[32], uint64_t now)
{
    for (unsigned k = 0; k < PUNCH_SPENT_KEYS; k++)
        if (s->used[k] && memcmp(s->key[k], key, 32) == 0 && now - s->at_ms[k] < PUNCH_SPENT_MS)
            return true;
    return false;
}
