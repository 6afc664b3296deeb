/* SPDX-License-Identifier: MIT */
/*
 * Pacing of a peer's SCTP packets on a path through punchd's relay
 * (issue 14): the relay drops what exceeds its rate per session, per
 * source and per destination (src/server/limits.c: token buckets one
 * second deep), and usrsctp has no pacing, so its slow start sent bursts
 * that the relay dropped by the thousand, and the stream alternated bursts
 * and retransmission timeouts. The relay tells each peer its rates
 * (RELAY_RATE, wire/msg.h); the sender keeps below them with token buckets
 * of its own (bytes and packets), shallower and slower than the relay's,
 * and queues what has to wait. A full queue drops the newest packet, as a
 * router would: SCTP sees the loss and backs off. The packets queued are
 * SCTP's own, not yet framed by the repair (repair.h), so a packet dropped
 * here is SCTP's to retransmit, not the repair's.
 *
 * Off (no rate) it costs a branch: every packet goes at once.
 * Pure: no clock (now, in ms, is passed in), no sockets.
 */
#ifndef PUNCH_STREAM_PACE_H
#define PUNCH_STREAM_PACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Of the rate the relay told, the share a peer paces at: room for its
 * other traffic through the relay (keepalives, SACKs of the other
 * direction) and for clocks that differ. */
#define PACE_SHARE_PERCENT 95
/* The bucket's depth, in ms at the paced rate: the relay's buckets hold a
 * second, so a stream starts (and restarts after an idle spell) with a
 * burst the relay takes, and only a long one is paced. */
#define PACE_BURST_MS 800
/* What the relay counts of a datagram beyond the SCTP packet: the stream
 * tag and the repair's header (6: 1 + REPAIR_HEADER), the agent's inner
 * type (1), the transport's header and AEAD tag (32), DATA's header (2)
 * and RELAY's (10). */
#define PACE_OVERHEAD 51
/* The queue holds at most this long at the paced rate, and at least
 * PACE_QUEUE_MIN packets (a slow rate), at most PACE_SLOTS: the queue is
 * the path's buffer, and SCTP's window grows into it until it drops. A
 * short one: SCTP's T3-rtx timer runs out every RTO or two in a bulk
 * transfer (stream_internal.h, DELAYED_SACK_MS) and takes what waited
 * longer than srtt + 4 rttvar for lost, so with a queue of 300 ms it sent
 * again what still waited here (lab.stream's relay case: up to 10.4 k
 * packets out for 7.6 k, 9.2-11.8 s); with 20 ms, 7.65-7.68 k, 8.7-8.9 s
 * (docs/streams.md, "Pacing through the relay"). */
#define PACE_QUEUE_MS 20
#define PACE_QUEUE_MIN 16
#define PACE_SLOTS 256
#define PACE_MAX_PACKET 1152

typedef enum pace_verdict {
    PACE_SEND = 1, /* send it now: nothing waits before it, and it was charged */
    PACE_QUEUED,   /* kept: punch_pace_next gives it when its time comes */
    PACE_DROPPED,  /* the queue was full, or it was too large (counted) */
} pace_verdict;

typedef struct pace_counters {
    uint64_t queued;   /* packets that had to wait */
    uint64_t dropped;  /* packets the full queue dropped */
} pace_counters;

typedef struct punch_pace punch_pace;

/* Returns NULL when out of memory. The queue is allocated on the first
 * packet that has to wait. */
punch_pace *punch_pace_new(void);
void punch_pace_free(punch_pace *pc);
/* The relay's rates (bytes and packets per second, as told); 0 for
 * either turns pacing off, and what waits may go at once. The buckets
 * start full when pacing turns on, and keep their level on a change. */
void punch_pace_set_rate(punch_pace *pc, uint64_t now, uint32_t bytes_per_s,
                         uint32_t packets_per_s);
bool punch_pace_on(const punch_pace *pc);
/* An SCTP packet of len bytes (PACE_OVERHEAD is added) to go at now,
 * kept in order behind those that wait. */
pace_verdict punch_pace_offer(punch_pace *pc, uint64_t now, const uint8_t *pkt, size_t len);
/* The first packet waiting that may go at now, charged and taken off the
 * queue: copied to out (PACE_MAX_PACKET bytes), its length returned; 0:
 * none may go yet. */
size_t punch_pace_next(punch_pace *pc, uint64_t now, uint8_t *out);
/* A packet sent around the queue (the repair's requests and packets sent
 * again): charged, the buckets may go below empty. */
void punch_pace_charge(punch_pace *pc, uint64_t now, size_t len);
/* When the first packet waiting may go (UINT64_MAX: none waits). */
uint64_t punch_pace_deadline(const punch_pace *pc, uint64_t now);
/* Packets waiting now. */
size_t punch_pace_waiting(const punch_pace *pc);
const pace_counters *punch_pace_counters(const punch_pace *pc);

#endif
