/* SPDX-License-Identifier: MIT */
/*
 * Relayed addresses at standard TURN servers (RFC 8656, issue 15): a peer
 * with an allocation tells its relayed address in a TURN_ADDR (wire/msg.h);
 * the server keeps it with the registration and passes it on beside every
 * INTRODUCE about that peer, so the other side can reach it through the
 * TURN server when punchd's relay is off or unreachable; when it changes
 * after an introduction (a new allocation), the peer met last is told at
 * once. Nothing here relays: the TURN server does.
 */
#include <string.h>

#include <sodium.h>

#include "server/rendezvous_internal.h"

/* Only from a registered peer, MAC'd with its key, from where it
 * registered (as a CONNECT), with no session: else dropped, counted. The
 * receipt is the same message, as long as the request: no amplification. */
void rv_handle_turn_addr(punch_rendezvous *rv, uint64_t now, const punch_addr *src,
                         const uint8_t *data, const punch_msg *req)
{
    if (!punch_ratelimit_allow(rv->rate, src, now)) {
        rv->counters.rate_limited++;
        return;
    }
    uint32_t i = rv_find_key(rv, req->key, now);
    if (i == NONE || !sodium_is_zero(req->session, PUNCH_MSG_SESSION_LEN)) {
        rv->counters.unexpected++;
        return;
    }
    peer *p = &rv->peers[i];
    if (!rv_mac_ok(rv, p->mac_key, data, req))
        return;
    if (!punch_addr_equal(&p->pub, src)) {
        rv->counters.unexpected++; /* it re-registers from there first */
        return;
    }
    bool changed = !punch_addr_equal(&p->relayed, &req->relayed);
    p->relayed = req->relayed;
    punch_msg receipt = *req;
    rv_send_to_peer(rv, p, &receipt);
    if (changed)
        rv_relayed_changed(rv, i); /* at an introduction, told beside it; since, now */
}

void rv_tell_relayed(punch_rendezvous *rv, const peer *to, const peer *other,
                     const uint8_t *txid, const uint8_t *id)
{
    if (other->relayed.family == PUNCH_AF_NONE)
        return;
    punch_msg m = {.type = PUNCH_MSG_TURN_ADDR, .relayed = other->relayed};
    memcpy(m.txid, txid, PUNCH_MSG_TXID_LEN);
    memcpy(m.session, id, PUNCH_MSG_SESSION_LEN);
    memcpy(m.key, other->key, PUNCH_KEY_LEN);
    rv_send_to_peer(rv, to, &m);
}
