/* SPDX-License-Identifier: MIT */
/*
 * Datagrams over a byte stream (TCP to punchd, the last resort when UDP is
 * blocked): each datagram is sent as a 2-byte big-endian length and then
 * that many bytes, as RFC 4571 frames RTP and STUN over TCP (and RFC 6544
 * ICE-TCP after it). A length of 0 or over PUNCH_FRAME_MAX is malformed:
 * no punch or STUN datagram is empty or larger than a UDP datagram punchd
 * takes, so such a stream is not ours (or is broken) and is closed.
 *
 * The reader is a parser of untrusted input: it holds at most one frame,
 * never allocates, and is fuzzed (tests/fuzz/fuzz_frame.c).
 */
#ifndef PUNCH_WIRE_FRAME_H
#define PUNCH_WIRE_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PUNCH_FRAME_HEADER 2
/* The largest datagram carried: punchd's PUNCH_RV_MAX_DATAGRAM and the I/O
 * layer's PUNCH_UDP_MTU. */
#define PUNCH_FRAME_MAX 2048

typedef struct punch_frame_reader {
    size_t have;                 /* bytes of the current frame held, header included */
    bool broken;                 /* a malformed length was seen: nothing more is read */
    uint8_t buf[PUNCH_FRAME_HEADER + PUNCH_FRAME_MAX];
} punch_frame_reader;

void punch_frame_reader_init(punch_frame_reader *r);

/* Take bytes from in[0..len) until a frame is complete or in is used up;
 * *used says how many were taken. Returns 1 with *frame, *frame_len set
 * (valid until the next call), 0 when every byte was taken and no frame is
 * complete yet, or PUNCH_ERR_MALFORMED when a length is 0 or over
 * PUNCH_FRAME_MAX (every later call returns it too). */
int punch_frame_read(punch_frame_reader *r, const uint8_t *in, size_t len, size_t *used,
                     const uint8_t **frame, size_t *frame_len);

/* True when part of a frame is held: a stream that ends now was cut short. */
bool punch_frame_reader_partial(const punch_frame_reader *r);

/* Write the header of a frame of len bytes (1..PUNCH_FRAME_MAX) into out.
 * Returns 0 or PUNCH_ERR_INVAL. */
int punch_frame_header(size_t len, uint8_t out[PUNCH_FRAME_HEADER]);

#endif
