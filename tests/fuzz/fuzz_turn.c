/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the TURN client (src/core/turn.c) fed datagrams from
 * its server. The first byte says where it starts: allocating (after the
 * first Allocate), or allocated with a peer that has a permission and a
 * channel (0x4000); the rest is datagrams, each behind a 2-byte length.
 * Invariants: data handed out lies inside the datagram and comes from the
 * peer; a failed client stays failed and sends nothing more; everything it
 * sends is a well-formed STUN request to its server. The random source
 * counts, so transaction ids repeat from run to run and can be found. */
#include <stdint.h>
#include <string.h>

#include "core/turn.h"
#include "wire/stun.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void counting_random(void *ctx, uint8_t *buf, size_t len)
{
    uint8_t *n = ctx;
    for (size_t i = 0; i < len; i++)
        buf[i] = ++*n;
}

static const punch_addr SERVER = {.family = PUNCH_AF_INET, .ip = {192, 0, 2, 1}, .port = 3478};
static const punch_addr PEER = {.family = PUNCH_AF_INET, .ip = {198, 51, 100, 9}, .port = 6000};

static void drain(punch_turn *t)
{
    uint8_t out[PUNCH_TURN_MSG_MAX];
    size_t len;
    punch_stun_msg m;
    while (punch_turn_poll_transmit(t, out, sizeof(out), &len) == 1)
        if (punch_stun_decode(&m, out, len) != 0 || m.cls != PUNCH_STUN_REQUEST)
            __builtin_trap();
}

/* Allocated with PEER permitted and bound, as if the server had said so. */
static void allocated(punch_turn *t, uint64_t now)
{
    t->state = PUNCH_TURN_ALLOCATED;
    t->alloc_txn.active = false;
    t->relayed = SERVER;
    t->refresh_at_ms = now + 1000;
    punch_turn_permit(t, now, &PEER);
    t->peers[0].permitted = t->peers[0].bound = true;
    memcpy(t->realm, "r", 2);
    memcpy(t->nonce, "n", 2);
    t->have_key = true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static punch_turn t;
    uint8_t rnd = 0;
    punch_turn_cfg c = {.server = SERVER, .username = "u", .password = "p",
                        .random = counting_random, .random_ctx = &rnd};
    if (punch_turn_init(&t, &c, 0) != 0)
        __builtin_trap();
    if (data[0] & 1)
        allocated(&t, 0);
    drain(&t);
    uint64_t now = 1;
    for (size_t at = 1; at + 2 <= size; now += 100) {
        size_t len = (size_t)data[at] << 8 | data[at + 1];
        at += 2;
        if (len > size - at)
            len = size - at;
        bool failed = t.state == PUNCH_TURN_FAILED;
        punch_addr peer;
        const uint8_t *d;
        size_t dlen;
        if (punch_turn_handle(&t, now, data + at, len, &peer, &d, &dlen) == 1 &&
            (d < data + at || d + dlen > data + at + len || !punch_addr_equal(&peer, &PEER)))
            __builtin_trap();
        if (failed && t.state != PUNCH_TURN_FAILED)
            __builtin_trap();
        punch_turn_handle_timeout(&t, now + 50);
        if (failed && t.tx_count)
            __builtin_trap();
        drain(&t);
        at += len;
    }
    return 0;
}
