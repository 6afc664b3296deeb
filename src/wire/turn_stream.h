/* SPDX-License-Identifier: MIT */
/*
 * STUN messages and ChannelData on a TCP or TLS connection to a TURN
 * server (RFC 8656 §12.5, RFC 8489 §6.2.2, RFC 7065): no framing of their
 * own, each message's length is in its header. The first two bits tell
 * which: 00 a STUN message (20 bytes of header, then its length, a
 * multiple of 4), 01 ChannelData (4 bytes of header, then its length,
 * padded to a multiple of 4 on a stream). Anything else means the stream
 * is out of step (or not TURN) and is closed.
 *
 * The reader is a parser of untrusted input: it holds at most one message,
 * never allocates, passes over (and counts) a message longer than it keeps,
 * and is fuzzed (tests/fuzz/fuzz_turn_stream.c).
 */
#ifndef PUNCH_WIRE_TURN_STREAM_H
#define PUNCH_WIRE_TURN_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest message kept: a peer's datagram (the I/O layer's
 * PUNCH_UDP_MTU) in a Data indication, with room to spare. Longer ones are
 * skipped whole. */
#define PUNCH_TURN_STREAM_MAX 2048

typedef struct punch_turn_stream_reader {
    size_t have;      /* bytes of the current message held */
    size_t need;      /* its length on the stream, padding included (0: header not in yet) */
    size_t skip;      /* bytes of a message too long to keep still to pass over */
    bool broken;      /* a first byte no TURN message has: nothing more is read */
    uint64_t skipped; /* messages passed over for their length */
    uint8_t buf[PUNCH_TURN_STREAM_MAX];
} punch_turn_stream_reader;

void punch_turn_stream_reader_init(punch_turn_stream_reader *r);

/* Take bytes from in[0..len) until a message is complete or in is used
 * up; *used says how many were taken. Returns 1 with *msg, *msg_len set
 * (valid until the next call; ChannelData without its padding), 0 when
 * every byte was taken and no message is complete yet, or
 * PUNCH_ERR_MALFORMED when a message starts with neither STUN's nor
 * ChannelData's bits, or a STUN length is not a multiple of 4 (every later
 * call returns it too). */
int punch_turn_stream_read(punch_turn_stream_reader *r, const uint8_t *in, size_t len,
                           size_t *used, const uint8_t **msg, size_t *msg_len);

/* True when part of a message is held: a stream that ends now cut it. */
bool punch_turn_stream_partial(const punch_turn_stream_reader *r);

/* The zero bytes to send after msg (len bytes) on a stream: ChannelData's
 * padding to a multiple of 4 (RFC 8656 §12.5), 0 for STUN. 0 too for
 * what is neither (the caller's own message: not checked here). */
size_t punch_turn_stream_padding(const uint8_t *msg, size_t len);

#endif
