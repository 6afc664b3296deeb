/* SPDX-License-Identifier: MIT */
/*
 * Address-validation tokens (like QUIC's NEW_TOKEN, RFC 9000 §8.1.3): every
 * REGISTERED carries one, bound to the peer's IP and key and good for
 * token_lifetime_s; a REGISTER from a restarted peer carries it instead of
 * a cookie, so registration (and a CONNECT right behind it) takes one
 * flight. A token that fails is a counted drop with no answer: the peer
 * sent a HELLO in the same flight and goes on with the cookie (SPEC.md §4:
 * nothing is kept and nothing is answered for a source not proven).
 */
#include "server/rendezvous_internal.h"

/* Serials are the issue time in ms, compared as RFC 1982 serial numbers
 * (a token lives far less than 2^31 ms, so they stay in order). */
static bool serial_newer(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) > 0;
}

bool rv_token_proves(punch_rendezvous *rv, uint64_t now, const peer *p, const punch_addr *src,
                     const punch_msg *req, uint32_t *serial)
{
    if (req->token_len != PUNCH_AUTH_TOKEN_LEN)
        return false;
    int rc = punch_auth_token_check(rv->cfg.cookie_secret, src, req->key,
                                    (uint32_t)(now / 1000), req->token, serial);
    if (rc == PUNCH_ERR_LIMIT) {
        rv->counters.token_expired++;
        return false;
    }
    if (rc != 0) {
        rv->counters.token_bad++;
        return false;
    }
    /* A key registered now remembers the newest token it came with: an
     * older one, or the same from another address, is a replay. The same
     * from the address it registered is a copy of that REGISTER (they go
     * in pairs on lossy links) and does no more than it did. */
    bool copy = p && p->token_used && *serial == p->token_serial &&
                punch_addr_equal(&p->pub, src);
    if (p && p->token_used && !serial_newer(*serial, p->token_serial) && !copy) {
        rv->counters.token_replayed++;
        return false;
    }
    return true;
}

void rv_token_taken(punch_rendezvous *rv, peer *p, uint32_t serial)
{
    if (!p->token_used || serial != p->token_serial)
        rv->counters.token_accepted++; /* copies are not counted again */
    p->token_used = true;
    p->token_serial = serial;
}

void rv_token_issue(const punch_rendezvous *rv, uint64_t now, peer *p)
{
    uint32_t expiry = (uint32_t)(now / 1000) + rv->cfg.token_lifetime_s;
    punch_auth_token(rv->cfg.cookie_secret, &p->pub, p->key, expiry, (uint32_t)now, p->token);
}
