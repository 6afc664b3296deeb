/* SPDX-License-Identifier: MIT */
/* libFuzzer target: what a cluster member reads from Redis (src/server/
 * cluster.c). Each input is tried as it came (forged: the MAC must stop
 * it) and signed with the fuzzer's cluster secret, so the parser behind
 * the MAC is reached too; what is taken must encode to the same bytes. */
#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "server/cluster.h"
#include "wire/bytes.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t secret[PUNCH_CLUSTER_SECRET_LEN] = "fuzzing cluster secret, 32 byte";

/* An INTRO or a TURN that was taken, made again by its sender: the same bytes but
 * for the inner message's own MAC field, which the cluster's MAC covers. */
static void check_round_trip(const punch_cluster_msg *m, const uint8_t *in, size_t len)
{
    punch_cluster sender;
    uint8_t out[PUNCH_CLUSTER_MAX_MSG];
    size_t n;
    punch_cluster_init(&sender, secret, m->from);
    sender.self_addr = m->member_addr;
    int rc = m->type == PUNCH_CLUSTER_TURN
                 ? punch_cluster_turn(&sender, m->to, m->target_key, &m->peer, m->txid,
                                      m->session, m->stamp_ms, out, sizeof(out), &n)
                 : punch_cluster_intro(&sender, m->to, m->target_key, &m->peer, m->txid,
                                       m->session, m->flags, m->stamp_ms, out, sizeof(out), &n);
    if (rc != 0 || n != len || memcmp(out, in, len - PUNCH_CLUSTER_MAC_LEN - PUNCH_MSG_MAC_LEN) != 0)
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t nobody[PUNCH_CLUSTER_MEMBER_LEN];
    punch_cluster c;
    punch_cluster_msg m;
    uint8_t buf[PUNCH_CLUSTER_MAX_MSG + PUNCH_CLUSTER_MAC_LEN];
    punch_cluster_init(&c, secret, nobody);
    if (punch_cluster_read_record(&c, "bob", data, size, 0, &m) == 0 ||
        punch_cluster_read_intro(&c, data, size, 0, &m) == 0 ||
        punch_cluster_read_channel(&c, data, size, 0, &m) == 0)
        __builtin_trap(); /* unsigned input taken */
    if (size > PUNCH_CLUSTER_MAX_MSG)
        return 0;
    memcpy(buf, data, size);
    crypto_auth(buf + size, buf, size, secret);
    size_t len = size + PUNCH_CLUSTER_MAC_LEN;
    uint64_t stamp = size >= PUNCH_CLUSTER_HEADER_LEN ? 0 : 1;
    if (size >= PUNCH_CLUSTER_HEADER_LEN) {
        /* Addressed to us, read when it was sent: every check can pass. */
        memcpy(c.self, data + 4 + PUNCH_CLUSTER_MEMBER_LEN, PUNCH_CLUSTER_MEMBER_LEN);
        stamp = ((uint64_t)punch_get32(data + 20) << 32) | punch_get32(data + 24);
    }
    if (punch_cluster_read_intro(&c, buf, len, stamp, &m) == 0)
        check_round_trip(&m, buf, len);
    punch_cluster_read_record(&c, "bob", buf, len, stamp ? stamp - 1 : 0, &m);
    /* On a channel, a record taken (news of a move) names its member as
     * the header does and its owner's key the same both ways. */
    if (punch_cluster_read_channel(&c, buf, len, stamp ? stamp - 1 : 0, &m) == 0 &&
        m.type == PUNCH_CLUSTER_RECORD &&
        (memcmp(m.from, buf + PUNCH_CLUSTER_FROM_AT, PUNCH_CLUSTER_MEMBER_LEN) != 0 ||
         memcmp(m.target_key, m.peer.key, PUNCH_KEY_LEN) != 0))
        __builtin_trap();
    return 0;
}
