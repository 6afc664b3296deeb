/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the simulator's TURN server model
 * (src/sim/turn_server.c) fed datagrams from a client and from a peer.
 * It starts with one allocation of the client's, a permission for the
 * peer and channel 0x4000 to it. The input is records: a byte (bit 0:
 * from the peer to the relayed address, else from the client to the
 * server), a 2-byte length, the datagram. Invariants: what it sends fits
 * its buffer; to the client only from the server's address, to a peer
 * only from the relayed address and only to a permitted IP. */
#include <stdint.h>
#include <string.h>

#include "sim/turn_server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const punch_addr SERVER = {.family = PUNCH_AF_INET, .ip = {192, 0, 2, 1}, .port = 3478};
static const punch_addr CLIENT = {.family = PUNCH_AF_INET, .ip = {203, 0, 113, 7}, .port = 4000};
static const punch_addr PEER = {.family = PUNCH_AF_INET, .ip = {198, 51, 100, 9}, .port = 6000};

static void one_allocation(punch_sim_turn *s)
{
    punch_sim_turn_alloc *a = &s->allocs[0];
    a->used = true;
    a->client = CLIENT;
    a->relayed = SERVER;
    a->relayed.port = 49152;
    a->until_ms = 600000;
    a->perms[0] = (punch_sim_turn_perm){.ip = PEER, .until_ms = 300000};
    a->perms[0].ip.port = 0;
    a->channels[0] = (punch_sim_turn_channel){.used = true, .number = 0x4000, .peer = PEER,
                                              .until_ms = 600000};
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static punch_sim_turn s;
    punch_sim_turn_cfg c = {.addr = SERVER, .realm = "r", .username = "u", .password = "p"};
    if (punch_sim_turn_init(&s, &c) != 0)
        __builtin_trap();
    one_allocation(&s);
    punch_addr relayed = s.allocs[0].relayed;
    uint64_t now = 1;
    for (size_t at = 0; at + 3 <= size; now += 1000) {
        bool from_peer = data[at] & 1;
        size_t len = (size_t)data[at + 1] << 8 | data[at + 2];
        at += 3;
        if (len > size - at)
            len = size - at;
        punch_sim_turn_out out;
        int rc = punch_sim_turn_handle(&s, now, from_peer ? &relayed : &SERVER,
                                       from_peer ? &PEER : &CLIENT, data + at, len, &out);
        if (rc == 1) {
            if (out.len > sizeof(out.buf))
                __builtin_trap();
            bool to_client = punch_addr_equal(&out.local, &SERVER) &&
                             punch_addr_equal(&out.remote, &CLIENT);
            bool to_peer = punch_addr_equal(&out.local, &relayed) && /* permissions are per IP */
                           punch_addr_same_ip(&out.remote, &PEER);
            if (!to_client && !to_peer)
                __builtin_trap();
        }
        at += len;
    }
    return 0;
}
