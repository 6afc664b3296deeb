/* SPDX-License-Identifier: MIT */
/* The rendezvous' side of a cluster (punchd --cluster): a CONNECT for a
 * name registered at another member becomes a LOOKUP event, and the
 * caller answers it with an INTRODUCE about the remote peer or a REFUSED.
 * Messages between members are src/server/cluster.c's. See rendezvous.h. */
#include "server/rendezvous_internal.h"

#include <string.h>

#include <sodium.h>

void rv_cluster_lookup(punch_rendezvous *rv, uint64_t now, const peer *p, const punch_msg *req)
{
    /* The limit per source and target (finding 5) holds across members
     * too; the target's key is not known here, so its name stands in. */
    uint8_t target[PUNCH_KEY_LEN];
    crypto_generichash(target, sizeof(target), (const uint8_t *)req->name, strlen(req->name),
                       (const uint8_t *)"cluster name", 12);
    if (!rv_connect_allowed(rv, now, &p->pub, target))
        return;
    punch_rendezvous_event *ev = rv_event_reserve(rv, PUNCH_RV_EVENT_LOOKUP);
    if (!ev)
        return; /* counted: the CONNECT goes unanswered and is retried */
    rv_peer_info(p, &ev->peer[0]);
    memcpy(ev->peer[1].name, req->name, sizeof(ev->peer[1].name));
    memcpy(ev->peer[1].key, req->peer_key, PUNCH_KEY_LEN);
    memcpy(ev->txid, req->txid, PUNCH_MSG_TXID_LEN);
}

int punch_rendezvous_introduce_remote(punch_rendezvous *rv, uint64_t now_ms,
                                      const uint8_t local_key[PUNCH_KEY_LEN],
                                      const punch_rendezvous_peer_info *remote,
                                      const uint8_t txid[PUNCH_MSG_TXID_LEN],
                                      const uint8_t session_id[PUNCH_MSG_SESSION_LEN], uint8_t flags,
                                      punch_rendezvous_peer_info *local)
{
    uint32_t i = rv_find_key(rv, local_key, now_ms);
    if (i == NONE || remote->n_private > PUNCH_MSG_MAX_PRIVATE)
        return PUNCH_ERR_NOTFOUND;
    peer other = {.pub = remote->public_addr, .n_priv = (uint8_t)remote->n_private,
                  .n_mapped = remote->n_mapped, .rtt_ms = remote->rtt_ms,
                  .nat_mapping = remote->nat_mapping, .nat_step = remote->nat_step,
                  .nat_port = remote->nat_port, .relayed = remote->relayed};
    memcpy(other.key, remote->key, PUNCH_KEY_LEN);
    memcpy(other.name, remote->name, sizeof(other.name));
    memcpy(other.priv, remote->private_addr, remote->n_private * sizeof(punch_addr));
    rv_introduce(rv, &rv->peers[i], &other, txid, session_id, flags);
    if (local)
        rv_peer_info(&rv->peers[i], local);
    if (flags & PUNCH_INTRO_INITIATOR)
        rv->counters.introductions++; /* the CONNECT it answers was here */
    return 0;
}

int punch_rendezvous_met_remote(punch_rendezvous *rv, uint64_t now_ms,
                                const uint8_t local_key[PUNCH_KEY_LEN],
                                const uint8_t session_id[PUNCH_MSG_SESSION_LEN],
                                const punch_rendezvous_far *far)
{
    uint32_t i = rv_find_key(rv, local_key, now_ms);
    if (i == NONE)
        return PUNCH_ERR_NOTFOUND;
    rv_met_far(rv, i, session_id, far);
    return 0;
}

int punch_rendezvous_tell_relayed_remote(punch_rendezvous *rv, uint64_t now_ms,
                                         const uint8_t local_key[PUNCH_KEY_LEN],
                                         const punch_rendezvous_peer_info *about,
                                         const uint8_t txid[PUNCH_MSG_TXID_LEN],
                                         const uint8_t session_id[PUNCH_MSG_SESSION_LEN])
{
    if (about->relayed.family == PUNCH_AF_NONE)
        return PUNCH_ERR_INVAL;
    uint32_t i = rv_find_key(rv, local_key, now_ms);
    if (i == NONE)
        return PUNCH_ERR_NOTFOUND;
    peer other = {.relayed = about->relayed};
    memcpy(other.key, about->key, PUNCH_KEY_LEN);
    rv_tell_relayed(rv, &rv->peers[i], &other, txid, session_id);
    return 0;
}

int punch_rendezvous_refuse(punch_rendezvous *rv, uint64_t now_ms,
                            const uint8_t local_key[PUNCH_KEY_LEN],
                            const uint8_t txid[PUNCH_MSG_TXID_LEN], punch_refusal code)
{
    uint32_t i = rv_find_key(rv, local_key, now_ms);
    if (i == NONE)
        return PUNCH_ERR_NOTFOUND;
    rv_refuse_peer(rv, &rv->peers[i], txid, code);
    return 0;
}

int punch_rendezvous_relay_remote(punch_rendezvous *rv, uint64_t now_ms,
                                  const uint8_t local_key[PUNCH_KEY_LEN],
                                  const uint8_t session_id[PUNCH_MSG_SESSION_LEN],
                                  const punch_rendezvous_far *far)
{
    uint32_t i = rv_find_key(rv, local_key, now_ms);
    if (i == NONE)
        return PUNCH_ERR_NOTFOUND;
    return rv_open_remote_session(rv, now_ms, i, session_id, far) ? 0 : PUNCH_ERR_LIMIT;
}

bool punch_rendezvous_session_superseded(punch_rendezvous *rv, uint64_t now_ms,
                                         const uint8_t local_key[PUNCH_KEY_LEN],
                                         const uint8_t session_id[PUNCH_MSG_SESSION_LEN])
{
    uint32_t i = rv_find_key(rv, local_key, now_ms);
    return i != NONE && rv_session_superseded(rv, i, session_id);
}

int punch_rendezvous_refuse_name(punch_rendezvous *rv, uint64_t now_ms,
                                 const uint8_t local_key[PUNCH_KEY_LEN],
                                 const uint8_t txid[PUNCH_MSG_TXID_LEN])
{
    uint32_t i = rv_find_key(rv, local_key, now_ms);
    if (i == NONE)
        return PUNCH_ERR_NOTFOUND;
    const peer *p = &rv->peers[i];
    rv_refuse_peer(rv, p, txid, PUNCH_REFUSED_NAME_TAKEN);
    /* A later REGISTER (a keepalive, a re-registration) was answered while
     * Redis looked: the peer waits on that one's txid. */
    if (memcmp(p->register_txid, txid, PUNCH_MSG_TXID_LEN) != 0)
        rv_refuse_peer(rv, p, p->register_txid, PUNCH_REFUSED_NAME_TAKEN);
    rv_remove_peer(rv, i);
    return 0;
}

int punch_rendezvous_next_peer(const punch_rendezvous *rv, uint32_t *cursor,
                               punch_rendezvous_peer_info *info)
{
    while (*cursor < rv->peers_hwm) {
        const peer *p = &rv->peers[(*cursor)++];
        if (p->pub.family != PUNCH_AF_NONE) {
            rv_peer_info(p, info);
            return 1;
        }
    }
    return 0;
}

int punch_rendezvous_next_half(const punch_rendezvous *rv, uint32_t *cursor,
                               punch_rendezvous_half *half)
{
    while (*cursor < rv->sessions_hwm) {
        uint32_t i = (*cursor)++;
        const session *s = &rv->sessions[i];
        if (!s->used || !s->remote || !rv_session_peer_ok(rv, s, 0) ||
            !rv_half_current(rv, i))
            continue;
        memcpy(half->session, s->id, PUNCH_MSG_SESSION_LEN);
        rv_peer_info(&rv->peers[s->peer[0]], &half->local);
        half->far = s->far;
        return 1;
    }
    return 0;
}
