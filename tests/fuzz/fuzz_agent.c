/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the peer agent's datagram handler (src/core), with
 * the harness as its punchd: COOKIEs and REGISTEREDs that answer its own
 * HELLOs and REGISTERs, INTRODUCEs with valid MACs naming peers at
 * endpoints the input chooses, mixed with raw datagrams from the server and
 * from anywhere, and time passing. The input is a script: each step a byte
 * picking what happens, then the bytes that step reads.
 *
 * Whatever happens: every datagram the agent sends fits the largest
 * datagram, and goes to an IP somebody named: the server's, one an
 * INTRODUCE gave, or one a datagram came from (§6.2: no traffic to
 * addresses nobody put in play).
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "crypto/auth.h"
#include "crypto/identity.h"
#include "fuzz_script.h"
#include "punch/punch.h"
#include "wire/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_NAMED 64

typedef struct world {
    punch_agent *agent;
    uint64_t now;
    uint8_t hello_txid[PUNCH_MSG_TXID_LEN], register_txid[PUNCH_MSG_TXID_LEN];
    punch_addr named[MAX_NAMED]; /* IPs in play */
    size_t n_named;
} world;

static punch_identity server_id, agent_id, peer_key[2];
static uint8_t mac_key[PUNCH_AUTH_KEY_LEN];
static const punch_addr SERVER = {.family = PUNCH_AF_INET, .port = 3478, .ip = {198, 51, 100, 1}};

static void setup_keys(void)
{
    static bool done;
    if (done)
        return;
    fuzz_identity(&server_id, 1);
    fuzz_identity(&agent_id, 2);
    fuzz_identity(&peer_key[0], 3);
    fuzz_identity(&peer_key[1], 4);
    if (punch_auth_derive(&server_id, agent_id.public_key, mac_key) != 0)
        __builtin_trap();
    done = true;
}

static bool is_named(const world *w, const punch_addr *a)
{
    for (size_t i = 0; i < w->n_named; i++)
        if (punch_addr_same_ip(&w->named[i], a))
            return true;
    return false;
}

static void name(world *w, const punch_addr *a)
{
    if (a->family != PUNCH_AF_NONE && !is_named(w, a) && w->n_named < MAX_NAMED)
        w->named[w->n_named++] = *a;
}

/* An endpoint from four bytes: a few IPs, any port. */
static punch_addr endpoint(script *s)
{
    punch_addr a = {.family = PUNCH_AF_INET};
    uint8_t pick = script_next(s);
    a.ip[0] = pick & 1 ? 10 : 203, a.ip[1] = 0, a.ip[2] = 113, a.ip[3] = (uint8_t)(pick >> 1);
    a.port = (uint16_t)(script_next(s) << 8 | script_next(s));
    if (pick == 0xff) {
        a.family = PUNCH_AF_INET6;
        a.ip[0] = 0x20, a.ip[1] = 0x01, a.ip[15] = script_next(s);
    }
    return a;
}

/* Drain what the agent sends and check where it goes. */
static void drain(world *w)
{
    uint8_t buf[PUNCH_MAX_DATAGRAM_LARGE + 256], ttl;
    punch_socket sock;
    punch_addr dst;
    size_t len;
    while (punch_agent_poll_transmit_from(w->agent, &sock, &dst, &ttl, buf, sizeof(buf), &len) ==
           1) {
        if (len > PUNCH_MAX_DATAGRAM_LARGE + 64)
            __builtin_trap();
        if (!punch_addr_same_ip(&dst, &SERVER) && !is_named(w, &dst))
            __builtin_trap(); /* sent where nobody pointed */
        punch_msg m;
        if (punch_addr_equal(&dst, &SERVER) && punch_msg_decode(buf, len, &m) == 0) {
            if (m.type == PUNCH_MSG_HELLO)
                memcpy(w->hello_txid, m.txid, PUNCH_MSG_TXID_LEN);
            if (m.type == PUNCH_MSG_REGISTER)
                memcpy(w->register_txid, m.txid, PUNCH_MSG_TXID_LEN);
        }
    }
    punch_event ev;
    while (punch_agent_poll_event(w->agent, &ev) == 1)
        ;
}

static void from_server(world *w, const punch_msg *m)
{
    uint8_t buf[PUNCH_MAX_DATAGRAM_LARGE];
    size_t len;
    if (punch_msg_encode(m, buf, sizeof(buf), &len) != 0)
        return;
    if (punch_msg_has_mac(m->type))
        punch_auth_mac(mac_key, buf, len - PUNCH_MSG_MAC_LEN, buf + len - PUNCH_MSG_MAC_LEN);
    punch_agent_handle_datagram(w->agent, w->now, &SERVER, buf, len);
}

static void introduce(world *w, script *s)
{
    uint8_t who = script_next(s);
    punch_msg m = {.type = PUNCH_MSG_INTRODUCE, .flags = script_next(s) & 3, .rtt_ms = script_next(s),
                   .nat_mapping = script_next(s) % 4, .nat_step = script_next(s), .nat_port = script_next(s)};
    for (int i = 0; i < PUNCH_MSG_TXID_LEN; i++)
        m.txid[i] = script_next(s);
    for (int i = 0; i < PUNCH_MSG_SESSION_LEN; i++)
        m.session[i] = script_next(s) & 1;
    memcpy(m.key, peer_key[who & 1].public_key, PUNCH_KEY_LEN);
    memcpy(m.name, who & 1 ? "carol" : "alice", 6);
    m.public_addr = endpoint(s);
    name(w, &m.public_addr);
    m.n_private = script_next(s) % 4;
    for (size_t i = 0; i < m.n_private; i++) {
        m.private_addr[i] = endpoint(s);
        name(w, &m.private_addr[i]);
    }
    m.n_mapped = (uint8_t)(script_next(s) % (m.n_private + 1));
    from_server(w, &m);
}

static void raw(world *w, script *s, const punch_addr *src)
{
    uint8_t buf[512];
    size_t len = (size_t)script_next(s) * 2;
    for (size_t i = 0; i < len; i++)
        buf[i] = script_next(s);
    name(w, src);
    punch_agent_handle_datagram(w->agent, w->now, src, buf, len);
}

static void step(world *w, script *s)
{
    punch_msg m = {0};
    switch (script_next(s) % 7) {
    case 0: /* COOKIE for its HELLO */
        m.type = PUNCH_MSG_COOKIE;
        memcpy(m.txid, w->hello_txid, PUNCH_MSG_TXID_LEN);
        memcpy(m.key, server_id.public_key, PUNCH_KEY_LEN);
        m.cookie[0] = script_next(s);
        m.second_port = script_next(s) & 1 ? 3479 : 0;
        from_server(w, &m);
        break;
    case 1: /* REGISTERED for its REGISTER */
        m.type = PUNCH_MSG_REGISTERED;
        memcpy(m.txid, w->register_txid, PUNCH_MSG_TXID_LEN);
        m.public_addr = endpoint(s);
        m.keepalive_s = script_next(s);
        from_server(w, &m);
        break;
    case 2:
        introduce(w, s);
        break;
    case 3: /* REFUSED for its REGISTER */
        m.type = PUNCH_MSG_REFUSED;
        memcpy(m.txid, w->register_txid, PUNCH_MSG_TXID_LEN);
        m.code = script_next(s) % 8;
        from_server(w, &m);
        break;
    case 4:
        raw(w, s, &SERVER);
        break;
    case 5: {
        punch_addr src = endpoint(s);
        raw(w, s, &src);
        break;
    }
    default:
        w->now += (uint64_t)script_next(s) * 50;
        punch_agent_handle_timeout(w->agent, w->now);
    }
    drain(w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup_keys();
    static uint64_t rng;
    rng = 9;
    punch_agent_cfg cfg = {.name = "bob", .server = SERVER, .pin_server = true,
                           .random = fuzz_fixed_random, .random_ctx = &rng, .n_local = 1};
    cfg.local[0] = (punch_addr){.family = PUNCH_AF_INET, .port = 5000, .ip = {10, 0, 0, 2}};
    memcpy(cfg.secret_key, agent_id.secret_key, PUNCH_KEY_LEN);
    memcpy(cfg.server_key, server_id.public_key, PUNCH_KEY_LEN);
    static world w;
    memset(&w, 0, sizeof(w));
    w.now = 1000;
    name(&w, &cfg.local[0]); /* its own address, for the hairpin and loopback */
    if (punch_agent_new(&w.agent, &cfg, w.now) != 0)
        __builtin_trap();
    drain(&w);
    script s = {data, size};
    for (int steps = 0; s.left && steps < 128; steps++)
        step(&w, &s);
    punch_agent_free(w.agent);
    return 0;
}
