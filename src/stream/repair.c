/* SPDX-License-Identifier: MIT */
/* Loss repair under SCTP: see repair.h. */
#include "stream/repair.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "wire/bytes.h"

/* SCTP chunk types (RFC 9260 §3.2, RFC 4960 NR-SACK draft) that may pass
 * unsequenced: acknowledgements, which SCTP takes in any order. */
enum { CHUNK_SACK = 3, CHUNK_HEARTBEAT = 4, CHUNK_HEARTBEAT_ACK = 5, CHUNK_NR_SACK = 16 };
#define SCTP_COMMON_HEADER 12
#define MAX_RESENDS 3        /* a packet is sent again at most this often */
#define MAX_NACKS 3          /* a missing packet is asked for at most this often */
#define UNKNOWN_RTT_MS 100   /* the agent has not timed the path yet */
/* NACKs and the packets they ask for go as two copies: one try of a repair
 * then fails when both copies of either are lost (2 % at 10 % loss, not
 * 19 %), so a repair rarely needs a second round trip, whose hold SCTP
 * could take for a lost SACK (a T3-rtx timeout, cwnd back to one packet). */
#define COPIES 2
/* The recent loss rate is a moving average over about this many sequence
 * numbers. Over 64, random loss of 10 % (lab.stream_loss) passed
 * REPAIR_LOSS_LIMIT by chance in one run in three (13 of 64 lost is 1 %
 * likely per window; a run has hundreds): every loss of those spells went
 * to SCTP, 40-60 given up, each a halved window, and the run fell to 0.1-0.3
 * of TCP BBR. Over 256 the same chance is about 1e-6 per window, and real
 * congestion still shows within 256 packets (0.06 s at 5 MB/s). */
#define LOSS_WINDOW 256
/* A packet of ours is kept at least this long for a NACK (longer on a
 * path whose hold is longer): the peer's hold, 4 round trips + 60 ms, is
 * 460 ms before its repairs have timed themselves, and its repairs can
 * take longer than the agent's round trip says (docs/streams.md). */
#define KEEP_MS 1000
#define MAX_KEEP_MS 10000
/* A NACK of the peer's within this long says its repair still mends our
 * packets (punch_repair_peer_conceals). */
#define MENDING_MS 1000

typedef struct sent_slot {
    uint32_t seq;
    uint16_t len; /* of body; 0: empty */
    uint8_t resends;
    uint64_t sent_ms;   /* when framed */
    uint64_t resent_ms; /* when last sent again */
    uint8_t body[REPAIR_MAX_PACKET];
} sent_slot;

typedef struct held_slot {
    uint32_t seq;
    uint16_t len;
    bool have, missing;
    bool gave_up;               /* missing, and left to SCTP: it may still come */
    uint8_t nacks;
    uint64_t missed_ms, nacked_ms;
    uint8_t pkt[REPAIR_MAX_PACKET];
} held_slot;

/* A ring of slots indexed by sequence number modulo cap (a power of two,
 * REPAIR_RING_MIN..REPAIR_RING): it grows while packets are in flight and
 * shrinks back when the peer is idle, so an idle peer with streams costs
 * two small rings, not two of REPAIR_RING (9.6 MB; docs/streams.md). */
typedef struct ring {
    void *slots;
    uint32_t cap;
} ring;

struct punch_repair {
    uint32_t next_seq;          /* ours */
    uint32_t seq_at_tick;       /* next_seq at the last tick */
    uint32_t tail_told;         /* next_seq in the last REPAIR_TAIL */
    uint64_t framed_ms;         /* when we last sequenced a packet */
    uint32_t sender_rtt_ms;     /* the path's, as the last tick was told */
    uint32_t nacked_keep_ms;    /* how long to keep ours, as NACKs showed (learn_keep) */
    bool nack_in;               /* the peer has asked for a packet of ours... */
    uint64_t nack_in_ms;        /* ...last at this time */
    ring sent;                  /* of sent_slot */
    bool started;
    uint32_t expect, highest;   /* theirs: the next to deliver; one past the highest seen */
    uint64_t seq_in_ms;         /* when we last got one of their sequenced packets */
    uint32_t loss;              /* recent loss rate of theirs, 1/65536, moving average */
    uint32_t repair_ms;         /* how long a repair takes, moving average; 0: none yet */
    ring held;                  /* of held_slot */
    repair_counters c;
};

/* The slots of a ring whose sequence numbers are in [hi - cap, hi) move
 * to a new ring of cap slots (the ones older are forgotten); on failure
 * the ring stays as it was. Returns whether it moved. Sequence numbers in
 * a window of cap consecutive values fall in distinct slots, and a slot
 * whose number does not match its index (never written) is left. */
static bool ring_resize(ring *g, size_t slot_size, uint32_t cap, uint32_t hi)
{
    uint8_t *to = calloc(cap, slot_size);
    if (!to)
        return false;
    const uint8_t *from = g->slots;
    for (uint32_t i = 0; i < g->cap; i++) {
        uint32_t seq;
        memcpy(&seq, from + i * slot_size, sizeof(seq));
        if (seq % g->cap == i && hi - seq - 1 < cap)
            memcpy(to + (seq % cap) * slot_size, from + i * slot_size, slot_size);
    }
    free(g->slots);
    g->slots = to;
    g->cap = cap;
    return true;
}

static sent_slot *sent_at(const punch_repair *r, uint32_t seq)
{
    return (sent_slot *)r->sent.slots + seq % r->sent.cap;
}

static held_slot *held_at(const punch_repair *r, uint32_t seq)
{
    return (held_slot *)r->held.slots + seq % r->held.cap;
}

punch_repair *punch_repair_new(void)
{
    punch_repair *r = calloc(1, sizeof(punch_repair));
    if (!r)
        return NULL;
    r->sent = (ring){calloc(REPAIR_RING_MIN, sizeof(sent_slot)), REPAIR_RING_MIN};
    r->held = (ring){calloc(REPAIR_RING_MIN, sizeof(held_slot)), REPAIR_RING_MIN};
    if (!r->sent.slots || !r->held.slots) {
        punch_repair_free(r);
        return NULL;
    }
    return r;
}

void punch_repair_free(punch_repair *r)
{
    if (!r)
        return;
    free(r->sent.slots);
    free(r->held.slots);
    free(r);
}

static uint64_t hold_ms(const punch_repair *r, uint32_t rtt_ms);

repair_state punch_repair_state(const punch_repair *r, uint32_t rtt_ms)
{
    return (repair_state){.repair_ms = r->repair_ms, .hold_ms = (uint32_t)hold_ms(r, rtt_ms),
                          .loss = r->loss, .waiting = r->highest - r->expect};
}

size_t punch_repair_memory(const punch_repair *r)
{
    return sizeof(*r) + r->sent.cap * sizeof(sent_slot) + r->held.cap * sizeof(held_slot);
}

const repair_counters *punch_repair_counters(const punch_repair *r)
{
    return &r->c;
}

bool punch_repair_peer_conceals(const punch_repair *r, uint64_t now)
{
    return !r->nack_in || now - r->nack_in_ms < MENDING_MS;
}

/* True when an SCTP packet holds acknowledgements only. */
static bool acks_only(const uint8_t *pkt, size_t len)
{
    size_t off = SCTP_COMMON_HEADER;
    if (len < off + 4)
        return false;
    while (off + 4 <= len) {
        uint8_t type = pkt[off];
        size_t clen = punch_get16(pkt + off + 2);
        if (clen < 4 || (type != CHUNK_SACK && type != CHUNK_NR_SACK && type != CHUNK_HEARTBEAT &&
                         type != CHUNK_HEARTBEAT_ACK))
            return false;
        off += (clen + 3) & ~(size_t)3;
    }
    return true;
}

/* How long a packet of ours may still be asked for: the peer's hold
 * (hold_ms) on a path of rtt_ms, at least KEEP_MS, and at least what the
 * NACKs have shown (the peer's hold follows its own timing of repairs,
 * which can be far longer than the agent's round trip). */
static uint64_t keep_ms(const punch_repair *r, uint32_t rtt_ms)
{
    uint64_t ms = 4 * (uint64_t)(rtt_ms ? rtt_ms : UNKNOWN_RTT_MS) + 60;
    if (ms < KEEP_MS)
        ms = KEEP_MS;
    return ms > r->nacked_keep_ms ? ms : r->nacked_keep_ms;
}

/* A NACK asked for a packet of ours age_ms old: the peer's hold is four
 * such waits and more (its tries are a round trip apart), so keep packets
 * that long from now on. */
static void learn_keep(punch_repair *r, uint64_t age_ms)
{
    uint64_t ms = 4 * age_ms + 60;
    if (ms > MAX_KEEP_MS)
        ms = MAX_KEEP_MS;
    if (ms > r->nacked_keep_ms)
        r->nacked_keep_ms = (uint32_t)ms;
}

/* The slot seq is to take in the sent ring holds a packet the peer may
 * still ask for: a larger ring, while there is room under REPAIR_RING. */
static void grow_sent(punch_repair *r, uint64_t now, uint32_t seq)
{
    for (;;) {
        const sent_slot *s = sent_at(r, seq);
        if (r->sent.cap >= REPAIR_RING || s->len == 0 || s->seq == seq ||
            now - s->sent_ms >= keep_ms(r, r->sender_rtt_ms) ||
            !ring_resize(&r->sent, sizeof(sent_slot), 2 * r->sent.cap, seq))
            return;
    }
}

size_t punch_repair_frame(punch_repair *r, uint64_t now, const uint8_t *pkt, size_t len,
                          uint8_t *out)
{
    if (acks_only(pkt, len)) {
        out[0] = REPAIR_PLAIN;
        memcpy(out + 1, pkt, len);
        return len + 1;
    }
    uint32_t seq = r->next_seq++;
    out[0] = REPAIR_SEQ;
    punch_put32(out + 1, seq);
    memcpy(out + REPAIR_HEADER, pkt, len);
    grow_sent(r, now, seq);
    r->framed_ms = now;
    sent_slot *s = sent_at(r, seq);
    s->seq = seq;
    s->len = (uint16_t)(len + REPAIR_HEADER);
    s->resends = 0;
    s->sent_ms = now;
    memcpy(s->body, out, s->len);
    return s->len;
}

/* The round trip repairs are timed by: the path's as the agent measured
 * it, or how long repairs took (from the first NACK to the packet), when
 * longer. The agent's figure can be far short of what a NACK and its answer
 * take under load: the lab's 40 ms path was given as 12 ms, so all three
 * NACKs went within one real round trip, a packet whose one answer was lost
 * was given up after 108 ms, and each such packet halved SCTP's window for
 * the rest of the transfer (lab.stream_loss at 0.04-0.1 of TCP BBR). */
static uint64_t repair_rtt(const punch_repair *r, uint32_t rtt_ms)
{
    uint32_t ms = rtt_ms ? rtt_ms : UNKNOWN_RTT_MS;
    return r->repair_ms > ms ? r->repair_ms : ms;
}

/* How long a missing packet may hold back the ones after it, and how long
 * to wait for an answer to a NACK before asking again. */
static uint64_t hold_ms(const punch_repair *r, uint32_t rtt_ms)
{
    uint64_t ms = repair_rtt(r, rtt_ms);
    /* Until a repair has timed itself the agent's figure is a floor only
     * for the hold (UNKNOWN_RTT_MS at least): told 1 ms on a 200 ms path
     * (the agent's figure before issue 14 fixed it), the first repairs
     * were given up after 64 ms, before any answer could come, and the few
     * losses that reached SCTP in its slow start left it growing by one
     * packet per 300 ms round trip (16 MiB at 0.27 MB/s). */
    if (r->repair_ms == 0 && ms < UNKNOWN_RTT_MS)
        ms = UNKNOWN_RTT_MS;
    return 4 * ms + 60;
}

/* The agent's figure alone sets this until a repair has timed itself:
 * with the hold's floor of 100 ms here too, a repair whose first try
 * failed (2 %) was asked again only after 110 ms on the lab's 40 ms path,
 * its answer came 150-200 ms after the loss, and SCTP's T3-rtx timer
 * (RTO.Min 250 ms) ran out in slow start: cwnd to one packet, ssthresh to
 * 25 KB, and the rest of 64 MiB grew by a packet per round trip (2.1-2.4
 * MB/s, 1 run in 10-15 of lab.stream_loss; docs/streams.md). The agent's
 * figure is a PONG's round trip now (rtt_ms 0 until one came). */
static uint64_t renack_ms(const punch_repair *r, uint32_t rtt_ms)
{
    return repair_rtt(r, rtt_ms) + 10;
}

/* A missing packet came, missed_ms after it was first asked for: one more
 * sample of the repair time (a packet whose first answer was lost gives a
 * longer one, which errs towards waiting). */
static void time_repair(punch_repair *r, uint64_t took_ms)
{
    uint32_t ms = took_ms > 10000 ? 10000 : (uint32_t)took_ms;
    if (r->repair_ms == 0)
        r->repair_ms = ms;
    else
        r->repair_ms = (uint32_t)((7 * (uint64_t)r->repair_ms + ms) / 8);
    /* 0 is "not timed yet": on a path of a millisecond or two (the lab's
     * relay case) the average fell to 0 and the hold went back to the
     * untimed floor, 460 ms instead of 64, each time. */
    if (r->repair_ms == 0)
        r->repair_ms = 1;
}

/* A packet given up on came after all: its repair took longer than the
 * hold, so it is a sample of the repair time too. Learning only from the
 * repairs that came in time, a hold set by an agent's round trip far below
 * the real one (4 ms told on a 200 ms path) never grew: every repair came
 * late, every loss went to SCTP, and SCTP crawled (issue 14). */
static void came_late(punch_repair *r, held_slot *h, uint64_t now)
{
    h->gave_up = false;
    r->c.late++;
    time_repair(r, now - h->missed_ms);
}

static bool concealing(const punch_repair *r)
{
    return r->loss <= REPAIR_LOSS_LIMIT;
}

/* One more sequence number seen (lost or not) in the moving average over
 * about the last LOSS_WINDOW. */
static void count_loss(punch_repair *r, bool lost)
{
    uint32_t x = lost ? 65536u : 0u;
    r->loss = (uint32_t)((int64_t)r->loss + ((int64_t)x - (int64_t)r->loss) / LOSS_WINDOW);
}

/* Deliver in order from expect: what is there, and past what is missing
 * when it waited too long, repair is off, or it falls out of the ring
 * before seq `room`. */
static void release(punch_repair *r, const repair_io *io, uint64_t now, uint32_t rtt_ms, uint32_t room)
{
    while (r->expect != r->highest) {
        held_slot *h = held_at(r, r->expect);
        if (h->have && h->seq == r->expect) {
            h->have = false;
            io->deliver(io->arg, h->pkt, h->len);
        } else if (!concealing(r) || (int32_t)(room - r->expect) > 0 ||
                   now - h->missed_ms >= hold_ms(r, rtt_ms)) {
            r->c.given_up++;
            h->gave_up = h->missing && h->seq == r->expect;
            h->missing = false;
        } else {
            break;
        }
        r->expect++;
    }
}

static void send_nacks(punch_repair *r, const repair_io *io, const uint32_t *seqs, size_t n)
{
    uint8_t b[2 + 4 * REPAIR_NACK_MAX];
    for (size_t i = 0; i < n; i += REPAIR_NACK_MAX) {
        size_t k = n - i < REPAIR_NACK_MAX ? n - i : REPAIR_NACK_MAX;
        b[0] = REPAIR_NACK;
        b[1] = (uint8_t)k;
        for (size_t j = 0; j < k; j++)
            punch_put32(b + 2 + 4 * j, seqs[i + j]);
        for (int c = 0; c < COPIES; c++)
            io->send(io->arg, b, 2 + 4 * k);
        r->c.nacks += k;
    }
}

/* The slot for seq (the highest yet), grown into a larger ring first
 * when it holds a packet given up on that may still come late: a late
 * packet is a sample of the repair time (came_late), and with the ring
 * only as large as the hold it was overwritten before its answer came
 * on a path whose round trip is longer than the hold, which then never
 * learned (unit.test_repair late_repairs_teach_the_hold). */
static held_slot *held_claim(punch_repair *r, uint32_t seq)
{
    while (r->held.cap < REPAIR_RING && held_at(r, seq)->gave_up &&
           ring_resize(&r->held, sizeof(held_slot), 2 * r->held.cap, r->highest)) {
    }
    return held_at(r, seq);
}

/* The sequence numbers from highest up to seq are missing: mark them, and
 * ask for them while repairing. */
static void mark_missing(punch_repair *r, const repair_io *io, uint64_t now, uint32_t seq)
{
    uint32_t want[REPAIR_RING];
    size_t n = 0;
    for (; r->highest != seq; r->highest++) {
        held_slot *h = held_claim(r, r->highest);
        *h = (held_slot){.seq = r->highest, .missing = true, .nacks = 1, .missed_ms = now,
                         .nacked_ms = now};
        count_loss(r, true);
        if (n < REPAIR_RING)
            want[n++] = r->highest;
    }
    if (concealing(r) && n)
        send_nacks(r, io, want, n);
}

/* Whether seq, at or past expect, fits in the held ring with what waits
 * from expect on, growing the ring (up to REPAIR_RING) when it does not. */
static bool held_fits(punch_repair *r, uint32_t seq)
{
    uint32_t need = seq - r->expect + 1, cap = r->held.cap;
    while (cap < need && cap < REPAIR_RING)
        cap *= 2;
    return cap == r->held.cap ? need <= cap
                              : ring_resize(&r->held, sizeof(held_slot), cap, r->highest) && need <= cap;
}

static void take_seq(punch_repair *r, const repair_io *io, uint64_t now, uint32_t rtt_ms,
                     uint32_t seq, const uint8_t *pkt, size_t len)
{
    if (!r->started || (int32_t)(r->expect - seq) > 4 * REPAIR_RING) {
        /* first packet, or the peer started over */
        r->started = true;
        r->expect = r->highest = seq;
    }
    r->seq_in_ms = now;
    held_slot *h = held_at(r, seq);
    if ((int32_t)(seq - r->expect) < 0) {
        /* Behind: one we gave up on, a second copy of one delivered, or the
         * first packets of a new peer on this peer's slot (its numbers start
         * at 0 again): SCTP takes each in any order and drops duplicates.
         * Dropping "duplicates" here lost a new peer's INIT (interop.stream,
         * listen --keep-open). */
        if (h->seq == seq && h->gave_up)
            came_late(r, h, now);
        io->deliver(io->arg, pkt, len);
        return;
    }
    if ((int32_t)(seq - r->highest) >= 0) {
        if (!held_fits(r, seq)) {
            /* what is missing that far back is SCTP's to recover */
            uint32_t room = seq - r->held.cap + 1;
            release(r, io, now, rtt_ms, room);
            if ((int32_t)(room - r->highest) > 0)
                r->expect = r->highest = room;
        }
        mark_missing(r, io, now, seq);
        count_loss(r, false);
        r->highest = seq + 1;
        h = held_claim(r, seq);
        *h = (held_slot){.seq = seq};
    } else if (h->seq != seq || h->have || !h->missing) {
        return; /* a duplicate */
    } else {
        r->c.repaired++;
        time_repair(r, now - h->missed_ms);
        h->missing = false;
    }
    h->have = true;
    h->len = (uint16_t)len;
    memcpy(h->pkt, pkt, len);
    release(r, io, now, rtt_ms, r->expect);
}

/* A NACK goes as COPIES copies, and each try of the receiver's waits a
 * round trip: a packet sent again less than half a round trip ago was sent
 * for this try's other copy. Answering both copies sent each missing packet
 * four times (1450 repairs cost 4200 resends in lab.stream_loss). */
static bool just_resent(const sent_slot *s, uint64_t now, uint32_t rtt_ms)
{
    return s->resends > 0 && now - s->resent_ms < (rtt_ms ? rtt_ms : UNKNOWN_RTT_MS) / 2;
}

/* The peer's next sequence number is seq: what it sent before and we have
 * not seen is missing (a lost last packet has no later one to show it). */
static void take_tail(punch_repair *r, const repair_io *io, uint64_t now, uint32_t rtt_ms,
                      const uint8_t *body, size_t len)
{
    if (len != REPAIR_HEADER) {
        r->c.malformed++;
        return;
    }
    uint32_t seq = punch_get32(body + 1);
    if (!r->started || (int32_t)(seq - r->highest) <= 0 || !held_fits(r, seq))
        return; /* nothing missing, or not a number of this run */
    mark_missing(r, io, now, seq);
    release(r, io, now, rtt_ms, r->expect);
}

/* A tick with no packet of ours sequenced, after some were: tell the peer
 * the next number (COPIES copies), so it can ask for the last ones if they
 * were lost. Without this a lost last packet of a flight waited for SCTP's
 * T3-rtx timer, and with a window of a packet or two every loss did: a 64
 * MiB transfer crawled at 0.07 MB/s with 200 timeouts (lab.stream_loss). */
static void tell_tail(punch_repair *r, const repair_io *io)
{
    bool idle = r->next_seq == r->seq_at_tick;
    r->seq_at_tick = r->next_seq;
    if (!idle || r->next_seq == r->tail_told)
        return;
    r->tail_told = r->next_seq;
    uint8_t b[REPAIR_HEADER] = {REPAIR_TAIL};
    punch_put32(b + 1, r->next_seq);
    for (int c = 0; c < COPIES; c++)
        io->send(io->arg, b, sizeof(b));
}

static void answer_nack(punch_repair *r, const repair_io *io, uint64_t now, uint32_t rtt_ms,
                        const uint8_t *body, size_t len)
{
    size_t n = len >= 2 ? body[1] : 0;
    if (n == 0 || n > REPAIR_NACK_MAX || len != 2 + 4 * n) {
        r->c.malformed++;
        return;
    }
    r->nack_in = true;
    r->nack_in_ms = now;
    for (size_t i = 0; i < n; i++) {
        uint32_t seq = punch_get32(body + 2 + 4 * i);
        if (sent_at(r, seq)->seq != seq && r->next_seq - seq <= REPAIR_RING &&
            r->sent.cap < REPAIR_RING)
            /* asked for one the ring forgot: a larger ring from now on */
            ring_resize(&r->sent, sizeof(sent_slot), 2 * r->sent.cap, r->next_seq);
        sent_slot *s = sent_at(r, seq);
        if (s->len == 0 || s->seq != seq || s->resends >= MAX_RESENDS ||
            just_resent(s, now, rtt_ms))
            continue;
        learn_keep(r, now - s->sent_ms);
        s->resends++;
        s->resent_ms = now;
        r->c.resent++;
        for (int c = 0; c < COPIES; c++)
            io->send(io->arg, s->body, s->len);
    }
}

void punch_repair_input(punch_repair *r, const repair_io *io, uint64_t now, uint32_t rtt_ms,
                        const uint8_t *body, size_t len)
{
    if (len >= 1 && body[0] == REPAIR_PLAIN)
        io->deliver(io->arg, body + 1, len - 1);
    else if (len >= 1 && body[0] == REPAIR_NACK)
        answer_nack(r, io, now, rtt_ms, body, len);
    else if (len >= 1 && body[0] == REPAIR_TAIL)
        take_tail(r, io, now, rtt_ms, body, len);
    else if (len > REPAIR_HEADER && len <= REPAIR_MAX_PACKET && body[0] == REPAIR_SEQ)
        take_seq(r, io, now, rtt_ms, punch_get32(body + 1), body + REPAIR_HEADER,
                 len - REPAIR_HEADER);
    else
        r->c.malformed++;
}

/* Idle: back to the smallest rings. Ours once nothing sent may still be
 * asked for; theirs once nothing is held and nothing came for two holds
 * (what was given up may still come late: a sample of the repair time). */
static void shrink_idle(punch_repair *r, uint64_t now, uint32_t rtt_ms)
{
    if (r->sent.cap > REPAIR_RING_MIN && now - r->framed_ms >= keep_ms(r, rtt_ms))
        ring_resize(&r->sent, sizeof(sent_slot), REPAIR_RING_MIN, r->next_seq);
    if (r->held.cap > REPAIR_RING_MIN && r->expect == r->highest &&
        now - r->seq_in_ms >= 2 * hold_ms(r, rtt_ms))
        ring_resize(&r->held, sizeof(held_slot), REPAIR_RING_MIN, r->highest);
}

void punch_repair_tick(punch_repair *r, const repair_io *io, uint64_t now, uint32_t rtt_ms)
{
    r->sender_rtt_ms = rtt_ms;
    shrink_idle(r, now, rtt_ms);
    tell_tail(r, io);
    if (!r->started)
        return;
    uint32_t want[REPAIR_RING];
    size_t n = 0;
    for (uint32_t q = r->expect; q != r->highest && concealing(r); q++) {
        held_slot *h = held_at(r, q);
        if (!h->missing || h->have || h->seq != q || h->nacks >= MAX_NACKS ||
            now - h->nacked_ms < renack_ms(r, rtt_ms))
            continue;
        h->nacks++;
        h->nacked_ms = now;
        want[n++] = q;
    }
    if (n)
        send_nacks(r, io, want, n);
    release(r, io, now, rtt_ms, r->expect);
}
