/* SPDX-License-Identifier: MIT */
/*
 * Relaying (draft §3.1): the server's relay session, a candidate like any
 * other (the worst one): what goes there is wrapped in RELAY, what comes
 * from there is unwrapped here.
 */
#include <string.h>

#include "core/agent_internal.h"

/* Send an inner punch message (handshake or transport) on a candidate: as
 * it is, or wrapped in RELAY through the server. */
void send_on_ttl(punch_agent *a, const peer *p, const candidate *c, uint8_t ttl,
                 punch_msg_type type, const uint8_t *payload, size_t len)
{
    punch_msg inner = {.type = type, .payload = payload, .payload_len = len};
    if (is_turn_socket(c->sock)) {
        turn_send(a, c, &inner);
        return;
    }
    if (c->technique != PUNCH_TECH_RELAY) {
        send_msg_ttl(a, c->sock, &c->addr, ttl, &inner);
        return;
    }
    uint8_t buf[DGRAM_MAX];
    size_t ilen;
    if (punch_msg_encode(&inner, buf, sizeof(buf), &ilen) != 0)
        return;
    punch_msg relay = {.type = PUNCH_MSG_RELAY, .payload = buf, .payload_len = ilen};
    memcpy(relay.session, p->session, PUNCH_MSG_SESSION_LEN);
    send_msg(a, &c->addr, &relay);
}

void send_on(punch_agent *a, const peer *p, const candidate *c, punch_msg_type type,
             const uint8_t *payload, size_t len)
{
    send_on_ttl(a, p, c, 0, type, payload, len);
}

/* A RELAY from the server: a peer's handshake or transport datagram,
 * passed on in the session it names. */
void on_relay(punch_agent *a, uint64_t now, const punch_addr *src, const punch_msg *m)
{
    punch_msg inner;
    if (punch_msg_decode(m->payload, m->payload_len, &inner) != 0) {
        a->dropped++;
        return;
    }
    if (inner.type == PUNCH_MSG_DATA)
        on_data(a, now, src, true, m->session, inner.payload, inner.payload_len);
    else if (inner.type == PUNCH_MSG_HANDSHAKE1 || inner.type == PUNCH_MSG_HANDSHAKE2)
        route_handshake(a, now, src, true, m->session, inner.type, inner.payload,
                        inner.payload_len);
    else
        a->dropped++;
}

void on_relay_rate(punch_agent *a, const punch_msg *m)
{
    int id = find_peer_by_session(a, m->session);
    if (id < 0 || memcmp(a->peers[id].key, m->key, PUNCH_KEY_BYTES) != 0) {
        a->dropped++; /* its INTRODUCE lost (it comes again with the next), or not ours */
        return;
    }
    a->peers[id].relay_bytes_per_s = m->relay_bytes_per_s;
    a->peers[id].relay_packets_per_s = m->relay_packets_per_s;
}

int punch_agent_relay_rate(const punch_agent *a, int id, uint32_t *bytes_per_s,
                           uint32_t *packets_per_s)
{
    if (!a || id < 0 || id >= MAX_PEERS || !a->peers[id].used)
        return PUNCH_ERR_NOTFOUND;
    *bytes_per_s = a->peers[id].relay_bytes_per_s;
    *packets_per_s = a->peers[id].relay_packets_per_s;
    return 0;
}
