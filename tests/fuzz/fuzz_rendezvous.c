/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: punchd's rendezvous state machine (src/server), driven
 * the way real peers would and past its checks: four keys whose MACs are
 * right, cookies taken from the COOKIEs and REGISTEREDs it sends, sessions
 * from its INTRODUCEs, mixed with whatever the input says (garbage, a byte
 * flipped, time passing). The input is a script: each step a byte picking
 * what happens, then the bytes that step reads.
 *
 * Whatever happens, SPEC.md §4 holds:
 *   - no answer to a source that no key registered from is larger than the
 *     request that made it;
 *   - nothing is sent to an address no key registered from, other than
 *     answers to the request's own source (bounded as above).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "crypto/auth.h"
#include "fuzz_script.h"
#include "server/rendezvous.h"
#include "wire/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define N_KEYS 4
#define N_ADDRS 8
#define MAX_REGISTERED 64

typedef struct world {
    punch_rendezvous *rv;
    uint64_t now;
    uint64_t sequence;
    uint8_t cookie[N_ADDRS][PUNCH_MSG_COOKIE_LEN];
    uint8_t session[PUNCH_MSG_SESSION_LEN];
    punch_addr registered[MAX_REGISTERED]; /* every address a key registered from */
    size_t n_registered;
} world;

static punch_identity server_id, peer_id[N_KEYS];
static uint8_t mac_key[N_KEYS][PUNCH_AUTH_KEY_LEN];
static const char *const names[N_KEYS + 1] = {"alice", "bob", "carol", "dave", "nobody"};

static void setup_keys(void)
{
    static bool done;
    if (done)
        return;
    fuzz_identity(&server_id, 1);
    for (int i = 0; i < N_KEYS; i++) {
        fuzz_identity(&peer_id[i], (uint8_t)(2 + i));
        if (punch_auth_derive(&peer_id[i], server_id.public_key, mac_key[i]) != 0)
            __builtin_trap();
    }
    done = true;
}

/* Addresses 0-5 IPv4 (two in one IP), 6-7 IPv6 (one /64). */
static punch_addr addr_of(unsigned i)
{
    punch_addr a = {.family = PUNCH_AF_INET, .port = (uint16_t)(40000 + i)};
    i %= N_ADDRS;
    if (i < 6) {
        a.ip[0] = 203, a.ip[1] = 0, a.ip[2] = 113, a.ip[3] = (uint8_t)(i < 2 ? 1 : i);
    } else {
        a.family = PUNCH_AF_INET6;
        a.ip[0] = 0x20, a.ip[1] = 0x01, a.ip[2] = 0x0d, a.ip[3] = 0xb8, a.ip[15] = (uint8_t)i;
    }
    return a;
}

static unsigned addr_index(const punch_addr *a)
{
    for (unsigned i = 0; i < N_ADDRS; i++) {
        punch_addr b = addr_of(i);
        if (punch_addr_equal(a, &b))
            return i;
    }
    return N_ADDRS;
}

static bool was_registered(const world *w, const punch_addr *a)
{
    for (size_t i = 0; i < w->n_registered; i++)
        if (punch_addr_equal(&w->registered[i], a))
            return true;
    return false;
}

/* Take in what an answer teaches a peer: cookies, sessions, registrations. */
static void learn(world *w, const punch_rendezvous_out *out, const uint8_t *buf)
{
    punch_msg m;
    if (punch_msg_decode(buf, out->len, &m) != 0)
        return;
    unsigned ai = addr_index(&out->dst);
    if ((m.type == PUNCH_MSG_COOKIE || m.type == PUNCH_MSG_REGISTERED) && ai < N_ADDRS)
        memcpy(w->cookie[ai], m.cookie, PUNCH_MSG_COOKIE_LEN);
    if (m.type == PUNCH_MSG_REGISTERED && !was_registered(w, &out->dst) &&
        w->n_registered < MAX_REGISTERED)
        w->registered[w->n_registered++] = out->dst;
    if (m.type == PUNCH_MSG_INTRODUCE)
        memcpy(w->session, m.session, PUNCH_MSG_SESSION_LEN);
}

/* Hand one datagram in from src and check every answer against §4. */
static void deliver(world *w, const punch_addr *src, const uint8_t *d, size_t len)
{
    punch_rendezvous_handle(w->rv, w->now, src, NULL, d, len);
    uint8_t buf[PUNCH_RV_MAX_DATAGRAM];
    punch_rendezvous_out out;
    while (punch_rendezvous_poll_transmit(w->rv, &out, buf, sizeof(buf)) == 1) {
        bool to_src = punch_addr_equal(&out.dst, src);
        /* A REGISTERED makes its destination registered: what follows it
         * (a peer that moved is told its session again) goes to a key's
         * proven address. */
        if (to_src && !was_registered(w, src) && out.len > len)
            __builtin_trap(); /* amplification towards an unverified source */
        if (!to_src && !was_registered(w, &out.dst))
            __builtin_trap(); /* sent where no key registered from */
        learn(w, &out, buf);
    }
}

static size_t encode(const punch_msg *m, int key, uint8_t *buf, size_t cap)
{
    size_t len = 0;
    if (punch_msg_encode(m, buf, cap, &len) != 0)
        return 0;
    if (key >= 0 && punch_msg_has_mac(m->type))
        punch_auth_mac(mac_key[key], buf, len - PUNCH_MSG_MAC_LEN, buf + len - PUNCH_MSG_MAC_LEN);
    return len;
}

static punch_msg signalling(script *s, punch_msg_type type, int key, const char *name)
{
    punch_msg m = {.type = type};
    for (int i = 0; i < PUNCH_MSG_TXID_LEN; i++)
        m.txid[i] = script_next(s);
    memcpy(m.key, peer_id[key].public_key, PUNCH_KEY_LEN);
    snprintf(m.name, sizeof(m.name), "%s", name);
    return m;
}

/* REGISTER from address ai with the cookie it was last given. */
static punch_msg register_msg(world *w, script *s, int key, unsigned ai)
{
    punch_msg m = signalling(s, PUNCH_MSG_REGISTER, key, names[script_next(s) % N_KEYS]);
    memcpy(m.cookie, w->cookie[ai], PUNCH_MSG_COOKIE_LEN);
    m.n_private = script_next(s) % (PUNCH_MSG_MAX_PRIVATE + 1);
    for (size_t i = 0; i < m.n_private; i++)
        m.private_addr[i] = addr_of(script_next(s)); /* others' addresses too, or its own */
    m.n_mapped = (uint8_t)(script_next(s) % (m.n_private + 1));
    m.nat_mapping = script_next(s) % 4;
    uint8_t step = script_next(s);
    w->sequence += step % 4 ? step : 0; /* sometimes the same, never back */
    m.sequence = step == 0xff ? 1 : w->sequence; /* or a stale one */
    return m;
}

static void step(world *w, script *s)
{
    uint8_t op = script_next(s), who = script_next(s);
    int key = who % N_KEYS;
    unsigned ai = (who >> 2) % N_ADDRS;
    punch_addr src = addr_of(ai);
    uint8_t buf[PUNCH_RV_MAX_DATAGRAM];
    size_t len = 0;
    punch_msg m;
    switch (op % 8) {
    case 0: /* HELLO, full size or cut */
        m = signalling(s, PUNCH_MSG_HELLO, key, "x");
        len = encode(&m, -1, buf, sizeof(buf));
        if (script_next(s) & 1)
            len = script_next(s) % (len + 1);
        break;
    case 1:
    case 2: /* REGISTER, right MAC */
        m = register_msg(w, s, key, ai);
        len = encode(&m, key, buf, sizeof(buf));
        break;
    case 3: /* CONNECT, right MAC, perhaps a pinned key */
        m = signalling(s, PUNCH_MSG_CONNECT, key, names[script_next(s) % (N_KEYS + 1)]);
        if (script_next(s) & 1)
            memcpy(m.peer_key, peer_id[script_next(s) % N_KEYS].public_key, PUNCH_KEY_LEN);
        len = encode(&m, key, buf, sizeof(buf));
        break;
    case 4: { /* RELAY on the latest session */
        uint8_t payload[256];
        size_t n = script_next(s);
        for (size_t i = 0; i < n; i++)
            payload[i] = script_next(s);
        m = (punch_msg){.type = PUNCH_MSG_RELAY, .payload = payload, .payload_len = n};
        memcpy(m.session, w->session, PUNCH_MSG_SESSION_LEN);
        len = encode(&m, -1, buf, sizeof(buf));
        break;
    }
    case 5: /* whatever the input says */
        len = script_next(s);
        for (size_t i = 0; i < len; i++)
            buf[i] = script_next(s);
        break;
    case 6: /* a REGISTER with one byte changed */
        m = register_msg(w, s, key, ai);
        len = encode(&m, key, buf, sizeof(buf));
        if (len)
            buf[script_next(s) % len] ^= (uint8_t)(1u << (script_next(s) % 8));
        break;
    default: /* time passes: seconds, or minutes */
        w->now += (uint64_t)script_next(s) * (script_next(s) & 1 ? 60000u : 1000u);
        punch_rendezvous_handle_timeout(w->rv, w->now);
        return;
    }
    deliver(w, &src, buf, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup_keys();
    static uint64_t rng;
    rng = 7;
    punch_rendezvous_cfg cfg = {.identity = server_id, .random = fuzz_fixed_random,
                                .random_arg = &rng, .max_peers = 8, .max_sessions = 4,
                                .names_per_source = 3, .relay_max_bytes = 4096,
                                .quota_slots = 64};
    memset(cfg.cookie_secret, 5, sizeof(cfg.cookie_secret));
    memset(cfg.hash_key, 6, sizeof(cfg.hash_key));
    static world w;
    memset(&w, 0, sizeof(w));
    if (punch_rendezvous_new(&w.rv, &cfg) != 0)
        __builtin_trap();
    w.now = 1000;
    script s = {data, size};
    for (int steps = 0; s.left && steps < 256; steps++)
        step(&w, &s);
    punch_rendezvous_event ev;
    while (punch_rendezvous_poll_event(w.rv, &ev) == 1)
        ;
    punch_rendezvous_free(w.rv);
    return 0;
}
