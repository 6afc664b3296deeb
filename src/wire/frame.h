/* SPDX-License-Identifier: MIT */
/*
 * Messages cut from a byte stream, each message's length read from its
 * own header. One reader serves every such stream; a format says how many
 * bytes of header tell the length and how to read it:
 *
 * - punch's frames (punch_frame_reader_init): datagrams over TCP to
 *   punchd, the last resort when UDP is blocked. Each datagram is sent as
 *   a 2-byte big-endian length and then that many bytes, as RFC 4571
 *   frames RTP and STUN over TCP (and RFC 6544 ICE-TCP after it). A length
 *   of 0 or over PUNCH_FRAME_MAX is malformed: no punch or STUN datagram
 *   is empty or larger than a UDP datagram punchd takes, so such a stream
 *   is not ours (or is broken) and is closed.
 * - STUN and ChannelData to a TURN server over TCP or TLS
 *   (punch_turn_stream_reader_init, wire/turn_stream.h).
 *
 * The reader is a parser of untrusted input: it holds at most one message,
 * never allocates, passes over (and counts) a message its format accepts
 * but that is longer than the format keeps, and is fuzzed
 * (tests/fuzz/fuzz_frame.c, fuzz_turn_stream.c).
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
/* The most any format keeps of one message, header included. */
#define PUNCH_FRAME_READER_BUF (PUNCH_FRAME_HEADER + PUNCH_FRAME_MAX)

/* Where a message lies, as its header says. */
typedef struct punch_frame_span {
    size_t on_stream; /* its bytes on the stream: header, body and padding */
    size_t off, len;  /* what the reader hands out: buf[off..off+len) */
} punch_frame_span;

typedef struct punch_frame_format {
    size_t header; /* bytes that tell the length (at least 1) */
    size_t keep;   /* the longest on_stream kept (<= PUNCH_FRAME_READER_BUF) */
    /* Fill *span from the first header bytes of a message (on_stream >=
     * header, off + len <= on_stream); false when they are no message's:
     * the stream is then broken. */
    bool (*measure)(const uint8_t *head, punch_frame_span *span);
} punch_frame_format;

typedef struct punch_frame_reader {
    const punch_frame_format *fmt;
    size_t have;             /* bytes of the current message held */
    punch_frame_span span;   /* its span (on_stream 0: header not in yet) */
    size_t skip;             /* bytes of a message too long to keep still to pass over */
    bool broken;             /* a header no message has: nothing more is read */
    uint64_t skipped;        /* messages passed over for their length */
    uint8_t buf[PUNCH_FRAME_READER_BUF];
} punch_frame_reader;

/* A reader of punch's frames (2-byte length, then the datagram). */
void punch_frame_reader_init(punch_frame_reader *r);
/* A reader of messages in fmt (which must outlive it). */
void punch_frame_reader_init_format(punch_frame_reader *r, const punch_frame_format *fmt);

/* Take bytes from in[0..len) until a message is complete or in is used
 * up; *used says how many were taken. Returns 1 with *msg, *msg_len set
 * (the span's off and len; valid until the next call), 0 when every byte
 * was taken and no message is complete yet, or PUNCH_ERR_MALFORMED when
 * the format's measure refuses a header (every later call returns it too,
 * taking nothing). */
int punch_frame_read(punch_frame_reader *r, const uint8_t *in, size_t len, size_t *used,
                     const uint8_t **msg, size_t *msg_len);

/* True when part of a message is held (or passed over): a stream that
 * ends now was cut short. */
bool punch_frame_reader_partial(const punch_frame_reader *r);

/* Write the header of a frame of len bytes (1..PUNCH_FRAME_MAX) into out.
 * Returns 0 or PUNCH_ERR_INVAL. */
int punch_frame_header(size_t len, uint8_t out[PUNCH_FRAME_HEADER]);

#endif
