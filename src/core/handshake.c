/* SPDX-License-Identifier: MIT */
/*
 * Noise IK between the peers (SPEC.md §4, draft §6.1): the initiator's
 * message 1 is also its probe; the responder, which cannot answer before
 * it hears message 1, sends its own message 1 as the packet that opens its
 * NAT (never answered). The responder answers the first message 1 whose
 * sender has the key the server introduced, from wherever it came, and
 * repeats that answer to later copies; the initiator takes the first
 * answer. Rekeying runs the same handshake again on the path in use.
 *
 * The payloads: message 1 carries the initiator's transport index and a
 * byte of the ciphers it offers (a bit per punch_cipher); message 2 the
 * responder's index and the cipher it chose: AES-256-GCM when both offer
 * it, else ChaCha20-Poly1305. Both are encrypted and in the transcript,
 * which message 2's tag covers: a changed offer fails the handshake, so
 * nobody between the peers can force the weaker choice. A 4-byte payload
 * (a peer from before the offers) means ChaCha20-Poly1305.
 */
#include <string.h>

#include "core/agent_internal.h"
#include "wire/bytes.h"

static const char PROLOGUE_LABEL[] = "punch/0 introduction ";

static void prologue(const peer *p, uint8_t out[sizeof(PROLOGUE_LABEL) - 1 + 8])
{
    memcpy(out, PROLOGUE_LABEL, sizeof(PROLOGUE_LABEL) - 1);
    memcpy(out + sizeof(PROLOGUE_LABEL) - 1, p->session, PUNCH_MSG_SESSION_LEN);
}

#define CIPHER_BIT(c) (1u << (c))
#define INDEX_LEN 4
#define PAYLOAD_LEN (INDEX_LEN + 1) /* index, then the offer or the choice */

/* The ciphers we offer: ChaCha20-Poly1305 always, AES-256-GCM where the
 * machine runs it and the caller did not turn it off. */
static unsigned cipher_offer(const punch_agent *a)
{
    unsigned offer = CIPHER_BIT(PUNCH_CIPHER_CHACHA20_POLY1305);
    if (!(a->cfg.flags & PUNCH_AGENT_NO_AES) && punch_transport_aes_available())
        offer |= CIPHER_BIT(PUNCH_CIPHER_AES256_GCM);
    return offer;
}

/* The offer in a message 1 payload of plen bytes (ChaCha20-Poly1305 alone
 * from a peer that sends none); -1 for a bad length. */
static int offered_ciphers(const uint8_t *payload, size_t plen)
{
    if (plen == INDEX_LEN)
        return CIPHER_BIT(PUNCH_CIPHER_CHACHA20_POLY1305);
    return plen == PAYLOAD_LEN ? payload[INDEX_LEN] : -1;
}

/* The choice in a message 2 payload (ChaCha20-Poly1305 from a peer that
 * sends none); -1 for a bad length or no such cipher. */
static int chosen_cipher(const uint8_t *payload, size_t plen)
{
    if (plen == INDEX_LEN)
        return PUNCH_CIPHER_CHACHA20_POLY1305;
    if (plen != PAYLOAD_LEN || payload[INDEX_LEN] > PUNCH_CIPHER_AES256_GCM)
        return -1;
    return payload[INDEX_LEN];
}

/* Our message 1: the real one (initiator) or the NAT-opening one
 * (responder, never answered). Its payload is our transport index and
 * our cipher offer. */
int make_msg1(punch_agent *a, peer *p)
{
    uint8_t pro[sizeof(PROLOGUE_LABEL) - 1 + 8], e[32], payload[PAYLOAD_LEN];
    prologue(p, pro);
    random_bytes(a, e, sizeof(e));
    random_bytes(a, &p->hs.local_index, sizeof(p->hs.local_index));
    punch_put32(payload, p->hs.local_index);
    payload[INDEX_LEN] = (uint8_t)cipher_offer(a);
    punch_noise_handshake hs;
    int rc = punch_noise_initiator_init(&hs, &a->id, p->key, pro, sizeof(pro), e);
    if (rc == 0)
        rc = punch_noise_write_message(&hs, payload, sizeof(payload), p->hs.msg1,
                                       sizeof(p->hs.msg1), &p->hs.msg1_len);
    memset(e, 0, sizeof(e));
    if (rc == 0 && p->initiator)
        p->hs.noise = hs;
    else
        punch_noise_handshake_wipe(&hs);
    return rc;
}

/* Read a message 1 as a responder would: it must come from p's key.
 * On success *hs holds the handshake, ready to write message 2,
 * *their_index the initiator's transport index, *cipher our choice from
 * both offers and *answer_len our payload's length: without an offer (a
 * peer from before them) the answer names no choice either. */
static bool read_msg1(punch_agent *a, peer *p, const uint8_t *msg, size_t len,
                      punch_noise_handshake *hs, uint32_t *their_index, punch_cipher *cipher,
                      size_t *answer_len)
{
    uint8_t pro[sizeof(PROLOGUE_LABEL) - 1 + 8], e[32], payload[16], rs[32];
    size_t plen;
    prologue(p, pro);
    random_bytes(a, e, sizeof(e));
    int rc = punch_noise_responder_init(hs, &a->id, pro, sizeof(pro), e);
    memset(e, 0, sizeof(e));
    if (rc == 0)
        rc = punch_noise_read_message(hs, msg, len, payload, sizeof(payload), &plen);
    int offer = rc == 0 ? offered_ciphers(payload, plen) : -1;
    /* Only the peer the server introduced (SPEC.md §4). */
    if (offer < 0 || !(offer & CIPHER_BIT(PUNCH_CIPHER_CHACHA20_POLY1305)) ||
        punch_noise_remote_static(hs, rs) != 0 || memcmp(rs, p->key, PUNCH_KEY_BYTES) != 0) {
        punch_noise_handshake_wipe(hs);
        return false;
    }
    *their_index = punch_get32(payload);
    *answer_len = plen;
    *cipher = (unsigned)offer & cipher_offer(a) & CIPHER_BIT(PUNCH_CIPHER_AES256_GCM)
                  ? PUNCH_CIPHER_AES256_GCM
                  : PUNCH_CIPHER_CHACHA20_POLY1305;
    return true;
}

/* A new session replaces the one in use, which stays readable as prev. */
static void retire_transport(peer *p)
{
    punch_transport_wipe(&p->prev);
    p->has_prev = p->ready;
    if (p->ready)
        p->prev = p->t;
    memset(&p->t, 0, sizeof(p->t));
}

/* As initiator: the responder's message 2 opens the session. */
static bool on_handshake2(punch_agent *a, uint64_t now, int id, const punch_addr *src,
                          bool via_relay, const uint8_t *msg, size_t len)
{
    peer *p = &a->peers[id];
    uint8_t payload[16];
    size_t plen;
    if (p->initiator && p->ready && !p->rekey.in_progress && len >= 32 &&
        memcmp(msg, p->hs.answer_e, 32) == 0) {
        /* A copy of the answer we took, from where a message 1 of ours
         * went: that way works both ways. Only known candidates: a copy
         * is no news about a new address. */
        int ci = find_candidate(p, src, a->rx_sock, via_relay);
        if (ci >= 0 && !p->cand[ci].confirmed && p->cand[ci].probes)
            validate(a, now, id, ci, p->cand[ci].last_probe_ms);
        return true;
    }
    if (!p->initiator || (p->ready && !p->rekey.in_progress) ||
        punch_noise_read_message(&p->hs.noise, msg, len, payload, sizeof(payload), &plen) != 0)
        return false;
    int ci = candidate_for(a, p, src, via_relay, now);
    bool rekey = p->rekey.in_progress;
    if (rekey)
        retire_transport(p);
    p->rekey.in_progress = false;
    /* The choice must be one cipher, and one we offered. */
    int chosen = chosen_cipher(payload, plen);
    if (chosen < 0 || !(cipher_offer(a) & CIPHER_BIT(chosen)) || ci < 0 ||
        punch_transport_init(&p->t, &p->hs.noise, now, p->hs.local_index, punch_get32(payload)) !=
            0 ||
        punch_transport_use_cipher(&p->t, (punch_cipher)chosen) != 0) {
        /* Authentic but unusable: give up on this session. */
        ev *e = push_event(a, PUNCH_EVENT_CLOSED, id);
        strcpy(e->e.closed.why, "the peer's handshake answer was unusable");
        forget_peer(a, id);
        return true;
    }
    p->ready = true;
    p->keepalive.last_rx_ms = p->keepalive.heard_ms = now;
    memcpy(p->hs.answer_e, msg, 32);
    if (rekey)
        return true; /* same paths, new keys */
    /* The answer came back on this candidate: both directions work. */
    validate(a, now, id, ci, p->cand[ci].last_probe_ms);
    start_probing(a, now, id);
    return true;
}

/* A new message 1 in a session we have, soon after the server's news that
 * the peer is elsewhere: not a rekey (which comes on the path in use) but
 * the peer started over, e.g. killed and started again (issue 12). The
 * paths proven before lead to the old instance. */
#define STARTED_OVER_MS 10000
static bool started_over_elsewhere(const peer *p, uint64_t now)
{
    return p->moved_ms && now - p->moved_ms < STARTED_OVER_MS;
}

/* A message 1 from p, if it is one. As responder we answer it (or repeat
 * our answer to a copy); as initiator it is the responder's NAT-opening
 * probe: its source reaches us, so probe it now. */
static bool on_handshake1(punch_agent *a, uint64_t now, int id, const punch_addr *src,
                          bool via_relay, const uint8_t *msg, size_t len)
{
    peer *p = &a->peers[id];
    punch_noise_handshake hs;
    uint32_t their_index;
    punch_cipher cipher;
    size_t answer_len;
    int ci;
    if (!p->initiator && p->hs.msg2_len && len >= 32 && memcmp(msg, p->hs.answered_e, 32) == 0) {
        if ((ci = candidate_for(a, p, src, via_relay, now)) >= 0) {
            send_on(a, p, &p->cand[ci], PUNCH_MSG_HANDSHAKE2, p->hs.msg2, p->hs.msg2_len);
            if (p->cand[ci].technique != PUNCH_TECH_PEER_REFLEXIVE)
                hear(a, now, id, ci);
        }
        return true;
    }
    if (!read_msg1(a, p, msg, len, &hs, &their_index, &cipher, &answer_len))
        return false;
    if ((ci = candidate_for(a, p, src, via_relay, now)) < 0) {
        punch_noise_handshake_wipe(&hs);
        return true;
    }
    candidate *c = &p->cand[ci];
    if (p->initiator) {
        punch_noise_handshake_wipe(&hs);
        if (!p->ready)
            c->next_probe_ms = now;
        return true;
    }
    /* A new message 1 (first, or the initiator started over): a new session. */
    uint8_t ours[PAYLOAD_LEN];
    random_bytes(a, &p->hs.local_index, sizeof(p->hs.local_index));
    punch_put32(ours, p->hs.local_index);
    ours[INDEX_LEN] = (uint8_t)cipher;
    bool rekey = p->ready;
    retire_transport(p);
    if (punch_noise_write_message(&hs, ours, answer_len, p->hs.msg2, sizeof(p->hs.msg2),
                                  &p->hs.msg2_len) != 0 ||
        punch_transport_init(&p->t, &hs, now, p->hs.local_index, their_index) != 0 ||
        punch_transport_use_cipher(&p->t, cipher) != 0) {
        punch_noise_handshake_wipe(&hs);
        p->ready = false;
        p->hs.msg2_len = 0;
        return true;
    }
    memcpy(p->hs.answered_e, msg, 32);
    p->ready = true;
    p->unconfirmed = true;
    p->n_early = 0;
    p->keepalive.last_rx_ms = p->keepalive.heard_ms = now;
    send_on(a, p, c, PUNCH_MSG_HANDSHAKE2, p->hs.msg2, p->hs.msg2_len);
    if (rekey && !started_over_elsewhere(p, now))
        return true; /* same paths, new keys */
    if (rekey)
        forget_paths(a, id);
    /* Validate every candidate, this one first: a message 1 of this
     * introduction on a candidate the server gave proves the way in. */
    start_probing(a, now, id);
    send_ping(a, now, p, c);
    if (c->technique != PUNCH_TECH_PEER_REFLEXIVE)
        hear(a, now, id, ci);
    return true;
}

/* A handshake message names no session: it belongs to the first peer for
 * which it authenticates (the relay's RELAY header does name one). */
void route_handshake(punch_agent *a, uint64_t now, const punch_addr *src, bool via_relay,
                     const uint8_t *session, punch_msg_type type, const uint8_t *msg, size_t len)
{
    for (int i = 0; i < MAX_PEERS; i++) {
        peer *p = &a->peers[i];
        if (!p->used || !p->introduced ||
            (via_relay && memcmp(session, p->session, PUNCH_MSG_SESSION_LEN) != 0))
            continue;
        bool taken = type == PUNCH_MSG_HANDSHAKE1
                         ? on_handshake1(a, now, i, src, via_relay, msg, len)
                         : on_handshake2(a, now, i, src, via_relay, msg, len);
        if (taken)
            return;
    }
    a->dropped++;
}

/* WireGuard's rule (crypto/transport.h): the initiator starts a new
 * handshake when the session is old, on the path in use, and repeats its
 * message 1 every second until the answer comes; data keeps flowing on the
 * old keys meanwhile. */
#define REKEY_RETRY_MS 1000

uint64_t rekey_deadline(const punch_agent *a, int id)
{
    const peer *p = &a->peers[id];
    if (!p->initiator || !p->ready || p->path < 0)
        return UINT64_MAX;
    uint64_t due = p->t.established_ms + PUNCH_REKEY_AFTER_TIME_MS;
    return p->rekey.in_progress || p->rekey.next_ms > due ? p->rekey.next_ms : due;
}

void rekey_timeout(punch_agent *a, uint64_t now, int id)
{
    peer *p = &a->peers[id];
    /* Whatever happens, the next try is a second away. */
    p->rekey.next_ms = now + REKEY_RETRY_MS;
    if (!p->rekey.in_progress) {
        if (make_msg1(a, p) != 0)
            return;
        p->rekey.in_progress = true;
    }
    send_on(a, p, &p->cand[p->path], PUNCH_MSG_HANDSHAKE1, p->hs.msg1, p->hs.msg1_len);
}
