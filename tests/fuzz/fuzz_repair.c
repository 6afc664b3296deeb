/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the loss repair under SCTP (src/stream/repair.c). The
 * input is a run of stream datagram bodies as a peer could send them, each
 * a length byte and that many bytes, taken at 7 ms steps with a tick in
 * between: whatever comes, every packet handed to SCTP is one that came in
 * (1 to REPAIR_MAX_PACKET - REPAIR_HEADER bytes), and what we send is a
 * NACK, a packet we framed, or our next sequence number (REPAIR_TAIL). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stream/repair.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void on_send(void *arg, const uint8_t *body, size_t len)
{
    (void)arg;
    if (len < 2 || len > REPAIR_MAX_PACKET ||
        (body[0] != REPAIR_NACK && body[0] != REPAIR_SEQ && body[0] != REPAIR_TAIL) ||
        (body[0] == REPAIR_TAIL && len != REPAIR_HEADER))
        abort();
}

static void on_deliver(void *arg, const uint8_t *pkt, size_t len)
{
    (void)arg;
    (void)pkt;
    if (len > REPAIR_MAX_PACKET - 1)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    punch_repair *r = punch_repair_new();
    if (!r)
        return 0;
    repair_io io = {.send = on_send, .deliver = on_deliver};
    /* some packets of ours, so NACKs find something to send again */
    uint8_t pkt[64] = {0}, body[64 + REPAIR_HEADER];
    pkt[15] = 20;
    for (int i = 0; i < 8; i++)
        punch_repair_frame(r, 0, pkt, sizeof(pkt), body);
    uint64_t now = 0;
    for (size_t off = 0; off < size;) {
        size_t len = data[off++];
        if (len > size - off)
            len = size - off;
        punch_repair_input(r, &io, now, 40, data + off, len);
        off += len;
        now += 7;
        punch_repair_tick(r, &io, now, 40);
    }
    punch_repair_tick(r, &io, now + 10000, 40);
    punch_repair_free(r);
    return 0;
}
