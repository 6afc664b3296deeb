/* SPDX-License-Identifier: MIT */
/*
 * Address-validation tokens, the peer's side (like QUIC's NEW_TOKEN, RFC
 * 9000 §8.1.3; docs/protocol.md). punchd hands a token out in every
 * REGISTERED; the application keeps the latest (PUNCH_EVENT_TOKEN) with the
 * server's key and gives both back on the next start. Then the first
 * flight is REGISTER with the token (its MAC from the kept server key),
 * the HELLO beside it (so a token that no longer works costs no time: the
 * COOKIE comes back with the REGISTERED that did not), and, when our NAT
 * mapped endpoint-independently last time, CONNECT right behind: the
 * introduction starts one round trip after the start, not three.
 */
#include <string.h>

#include "core/agent_internal.h"

_Static_assert(PUNCH_TOKEN_BYTES == PUNCH_MSG_TOKEN_LEN && PUNCH_MSG_TOKEN_LEN == PUNCH_AUTH_TOKEN_LEN,
               "one token size");

void token_setup(punch_agent *a)
{
    const punch_server_token *t = &a->cfg.token;
    if (!a->cfg.has_token ||
        (a->cfg.pin_server && memcmp(t->server_key, a->cfg.server_key, PUNCH_KEY_BYTES) != 0))
        return;
    if (punch_auth_derive(&a->id, t->server_key, a->mac_key) != 0)
        return; /* not a key: the cookie exchange will bring the server's */
    memcpy(a->server_key, t->server_key, PUNCH_KEY_BYTES);
    a->reg.token_live = true;
    new_txid(a, a->reg.token_txid);
    /* Last time our NAT kept one mapping for every destination, so peers
     * need nothing discovery will say: REGISTER says eim (discovery checks
     * and corrects it), and CONNECTs need not wait for it. */
    if (t->nat == PUNCH_MSG_NAT_EIM) {
        a->nat.mapping = PUNCH_MSG_NAT_EIM;
        a->reg.early = true;
    }
}

bool may_connect(const punch_agent *a)
{
    if (a->reg.state == REG_DONE && a->reg.announced)
        return true;
    return a->reg.early && (a->reg.token_live || a->reg.state == REG_DONE);
}

void token_put(const punch_agent *a, punch_msg *m)
{
    if (!a->reg.token_live || a->reg.state != REG_HELLO)
        return;
    /* Not measured yet in this run: the round trip of the last one, so
     * the peer's guard (probe_guard_ms) need not fall back to 100 ms. */
    if (!m->rtt_ms)
        m->rtt_ms = a->cfg.token.rtt_ms;
    m->token_len = PUNCH_MSG_TOKEN_LEN;
    memcpy(m->token, a->cfg.token.token, PUNCH_MSG_TOKEN_LEN);
    memcpy(m->txid, a->reg.token_txid, PUNCH_MSG_TXID_LEN);
}

void token_connect_now(punch_agent *a, uint64_t now)
{
    if (!a->reg.early)
        return;
    for (int i = 0; i < MAX_PEERS; i++) {
        peer *p = &a->peers[i];
        if (p->used && p->connect.asked && !p->introduced) {
            p->connect.next_ms = now;
            p->connect.tries = 0;
        }
    }
}

bool token_answered(const punch_agent *a, const punch_msg *m)
{
    return a->reg.token_live && a->reg.state != REG_DONE &&
           memcmp(m->txid, a->reg.token_txid, PUNCH_MSG_TXID_LEN) == 0;
}

void token_on_registered(punch_agent *a, const punch_msg *m)
{
    /* cfg.token is for cfg.server, the first server: another's token
     * (after a failover, servers.c) would be kept as the first's. */
    if (m->token_len != PUNCH_MSG_TOKEN_LEN || a->servers.current != 0)
        return;
    punch_server_token t = {.nat = a->disc.state == DISC_DONE ? a->nat.mapping
                                   : a->cfg.has_token       ? a->cfg.token.nat
                                                            : PUNCH_MSG_NAT_UNKNOWN};
    memcpy(t.server_key, a->server_key, PUNCH_KEY_BYTES);
    memcpy(t.token, m->token, PUNCH_MSG_TOKEN_LEN);
    t.rtt_ms = (uint16_t)min_u64(a->server_rtt_ms, UINT16_MAX);
    /* A new token or NAT is news; a round trip only when it moved far
     * (it moves a little with every keepalive). */
    const punch_server_token *old = &a->token_told;
    uint32_t slack = old->rtt_ms / 4u + 2u;
    bool rtt_moved = t.rtt_ms > old->rtt_ms + slack || t.rtt_ms + slack < old->rtt_ms;
    if (memcmp(t.token, old->token, PUNCH_TOKEN_BYTES) == 0 && t.nat == old->nat &&
        memcmp(t.server_key, old->server_key, PUNCH_KEY_BYTES) == 0 && !rtt_moved)
        return;
    a->token_told = t;
    ev *e = push_event(a, PUNCH_EVENT_TOKEN, -1);
    e->e.token = t;
}
