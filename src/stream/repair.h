/* SPDX-License-Identifier: MIT */
/*
 * Loss repair under SCTP (issue 14): a lost SCTP packet is asked for again
 * and held back in order before usrsctp ever sees a gap, so random loss
 * (Wi-Fi, mobile) does not reach usrsctp's congestion control, which is
 * loss-based (RFC 9260 §7.2, all four of its modules) and caps a path with
 * loss rate p near MSS/RTT * 1.22/sqrt(p): 0.11 MB/s at 10 % loss and
 * 40 ms (docs/streams.md). SCTP stays the reliable end-to-end transport:
 * repair is best-effort, and what it cannot mend in a few round trips, or
 * any loss once the recent loss rate passes REPAIR_LOSS_LIMIT (then the
 * losses are congestion's, and SCTP must see them and back off), reaches
 * SCTP as before.
 *
 * The body of a stream datagram (after PUNCH_STREAM_TAG), first byte:
 *   REPAIR_PLAIN  0x00, the SCTP packet: SACKs only, never held or repaired
 *   REPAIR_SEQ    0x01, 4-byte sequence number, the SCTP packet
 *   REPAIR_NACK   0x02, count (1..REPAIR_NACK_MAX), that many 4-byte
 *                 sequence numbers the receiver misses
 *   REPAIR_TAIL   0x03, the sender's next 4-byte sequence number, sent when
 *                 it stopped sending sequenced packets for a tick: the
 *                 receiver asks for what it missed before it
 * Pure: no clock (now is passed in), no sockets; what goes out and what is
 * delivered goes through the callbacks.
 */
#ifndef PUNCH_STREAM_REPAIR_H
#define PUNCH_STREAM_REPAIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { REPAIR_PLAIN = 0x00, REPAIR_SEQ = 0x01, REPAIR_NACK = 0x02, REPAIR_TAIL = 0x03 };
#define REPAIR_HEADER 5      /* kind + sequence number */
/* Packets kept to send again, and held to reorder, at most: at least the packets
 * SCTP can have in flight (SOCKET_BUF in stream_internal.h, about 2,900),
 * or a packet still being repaired falls out of the ring and is given up
 * (seen at 2048 with 2 MiB buffers: 25 given up at once, SCTP's window
 * halved). 2 x 4096 slots of 1.2 KB: 9.6 MB per peer at most, while it
 * moves data. */
#define REPAIR_RING 4096
/* ...and at least: each ring starts this small, grows (doubling) while
 * packets are in flight and shrinks back when the peer is idle, so an idle
 * peer with streams costs 2 x 32 slots (76 KB), not 9.6 MB. */
#define REPAIR_RING_MIN 32
#define REPAIR_NACK_MAX 64
#define REPAIR_MAX_PACKET 1152
/* Above this recent loss rate (of sequenced packets, in 1/65536) losses go
 * to SCTP: BBR, too, takes loss above 20 % for congestion (draft-ietf-ccwg-bbr
 * BBRLossThresh 2 %, per round; Linux tcp_bbr ignores loss below 20 %). */
#define REPAIR_LOSS_LIMIT (65536 / 5)

typedef struct repair_io {
    void *arg;
    /* A datagram body (to go after the tag) for the peer. */
    void (*send)(void *arg, const uint8_t *body, size_t len);
    /* An SCTP packet for usrsctp, in order. */
    void (*deliver)(void *arg, const uint8_t *pkt, size_t len);
} repair_io;

typedef struct repair_counters {
    uint64_t resent;     /* packets sent again on a NACK */
    uint64_t nacks;      /* sequence numbers asked for again */
    uint64_t repaired;   /* missing packets that came before SCTP saw a gap */
    uint64_t given_up;   /* missing packets left to SCTP */
    uint64_t late;       /* of those, the ones that came after all */
    uint64_t malformed;  /* bodies we could not read: dropped */
} repair_counters;

typedef struct punch_repair punch_repair;

/* Returns NULL when out of memory. */
punch_repair *punch_repair_new(void);
void punch_repair_free(punch_repair *r);
/* An SCTP packet of ours (len <= REPAIR_MAX_PACKET - REPAIR_HEADER - 1),
 * at now (ms): written framed to out (room for len + REPAIR_HEADER);
 * returns its length. */
size_t punch_repair_frame(punch_repair *r, uint64_t now, const uint8_t *pkt, size_t len,
                          uint8_t *out);
/* A datagram body from the peer, at now (ms), on a path of rtt_ms (0:
 * unknown). */
void punch_repair_input(punch_repair *r, const repair_io *io, uint64_t now, uint32_t rtt_ms,
                        const uint8_t *body, size_t len);
/* Time passed (call every few ms; stream.c: 10): tell the peer our next
 * sequence number when we stopped sending, ask again for what is still
 * missing, give up on what waited too long. */
void punch_repair_tick(punch_repair *r, const repair_io *io, uint64_t now, uint32_t rtt_ms);
const repair_counters *punch_repair_counters(const punch_repair *r);
/* Whether, at now (ms), no loss of our packets has reached the peer's SCTP
 * as far as we know: the peer has asked for none (nothing lost yet), or
 * asked for one within the last second (it mends them). It asks while the
 * losses are few enough to be random ones (REPAIR_LOSS_LIMIT); past that
 * they are congestion's, it leaves them to SCTP and stops asking. A cut of
 * our window by SCTP's retransmission timer while the peer conceals is the
 * timer's mistake, not congestion's (docs/streams.md "The second slow
 * mode"). */
bool punch_repair_peer_conceals(const punch_repair *r, uint64_t now);
/* What the repair goes by now, for traces: how long its repairs took
 * (moving average, 0: none yet), the hold on a path of rtt_ms, the recent
 * loss rate in 1/65536, and how many packets wait behind a gap. */
typedef struct repair_state {
    uint32_t repair_ms, hold_ms, loss, waiting;
} repair_state;
repair_state punch_repair_state(const punch_repair *r, uint32_t rtt_ms);
/* Bytes r has allocated now (its rings grow and shrink: REPAIR_RING_MIN). */
size_t punch_repair_memory(const punch_repair *r);

#endif
