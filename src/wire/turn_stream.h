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
 * They are cut from the stream by the one reader of wire/frame.h, set up
 * for this format here: it holds at most one message, passes over (and
 * counts in skipped) a message longer than it keeps, and is fuzzed
 * (tests/fuzz/fuzz_turn_stream.c).
 */
#ifndef PUNCH_WIRE_TURN_STREAM_H
#define PUNCH_WIRE_TURN_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "wire/frame.h"

/* The longest message kept: a peer's datagram (the I/O layer's
 * PUNCH_UDP_MTU) in a Data indication, with room to spare. Longer ones are
 * skipped whole. */
#define PUNCH_TURN_STREAM_MAX 2048

/* A reader of this format: punch_frame_read then hands out each message
 * (ChannelData without its padding) and returns PUNCH_ERR_MALFORMED when a
 * message starts with neither STUN's nor ChannelData's bits, or a STUN
 * length is not a multiple of 4; punch_frame_reader_partial tells whether
 * a stream that ends now cut one. */
void punch_turn_stream_reader_init(punch_frame_reader *r);

/* The zero bytes to send after msg (len bytes) on a stream: ChannelData's
 * padding to a multiple of 4 (RFC 8656 §12.5), 0 for STUN. 0 too for
 * what is neither (the caller's own message: not checked here). */
size_t punch_turn_stream_padding(const uint8_t *msg, size_t len);

#endif
