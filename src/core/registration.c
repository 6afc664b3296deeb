/* SPDX-License-Identifier: MIT */
/*
 * Registration (draft §3.3.1 step 1): HELLO -> COOKIE (the server's key)
 * -> REGISTER, MAC'd with the key derived from our identity and the
 * server's (proof of possession) -> REGISTERED (our public endpoint).
 * REGISTER again every keepalive to hold the NAT binding and the server's
 * entry; the round trip to the server it times feeds the conntrack-trap
 * guard (holepunch.c).
 */
#include <string.h>

#include "core/agent_internal.h"

/* ---- loss (issue 10): redundancy and timers from the measured RTT ----
 * A lost request to the server costs a whole RTO, and a fresh connect is
 * four requests in a row (HELLO, REGISTER, the REGISTER that tells what
 * discovery found, CONNECT), each needing its answer back. So the first
 * SERVER_COPY_TRIES tries of each go as SERVER_COPIES copies (same
 * transaction: the server's answers to either will do; HELLO's COOKIE is
 * smaller than HELLO, and REGISTER and CONNECT come from a source that
 * proved its address, so copies amplify nothing; they count against the
 * server's per-source rates like any request), and once a round trip to
 * the server is known the timer starts from it (SERVER_RTO_RTT_FACTOR of
 * it, at least SERVER_RTO_MIN_MS) rather than SERVER_RTO_MS. Loss on an
 * access link is not congestion: the first SERVER_STEADY_TRIES tries keep
 * that timer, and only then does it double, to SERVER_RTO_MAX_MS, for a
 * server that is away. (With a doubling from the first try, five answers
 * lost in a row at 20 % loss cost 2.4 s: the slow runs of lab.loss.)
 * Back-to-back copies suit independent loss (the lab's linkem); a burst
 * takes both. */
#define SERVER_COPIES         2
#define SERVER_COPY_TRIES     4 /* tries that go as copies */
#define SERVER_STEADY_TRIES   4 /* tries at the first RTO, before it doubles */
#define SERVER_RTO_RTT_FACTOR 3
#define SERVER_RTO_MIN_MS     50

unsigned server_copies(unsigned tries)
{
    return tries < SERVER_COPY_TRIES ? SERVER_COPIES : 1;
}

uint64_t server_rto(const punch_agent *a, unsigned tries)
{
    uint64_t base = SERVER_RTO_MS;
    if (a->server_rtt_ms)
        base = min_u64(SERVER_RTO_MS, (uint64_t)a->server_rtt_ms * SERVER_RTO_RTT_FACTOR);
    if (base < SERVER_RTO_MIN_MS)
        base = SERVER_RTO_MIN_MS;
    unsigned doublings = tries < SERVER_STEADY_TRIES ? 0 : tries - SERVER_STEADY_TRIES + 1;
    uint64_t rto = base << (doublings < 5 ? doublings : 5);
    return rto < SERVER_RTO_MAX_MS ? rto : SERVER_RTO_MAX_MS;
}

static void send_hello(punch_agent *a)
{
    punch_msg m = {.type = PUNCH_MSG_HELLO};
    memcpy(m.txid, a->reg.txid, PUNCH_MSG_TXID_LEN);
    memcpy(a->reg.hello_txid, a->reg.txid, PUNCH_MSG_TXID_LEN);
    servers_send_hello(a, &m);
}

static void send_register(punch_agent *a)
{
    punch_msg m = {.type = PUNCH_MSG_REGISTER};
    memcpy(m.txid, a->reg.txid, PUNCH_MSG_TXID_LEN);
    memcpy(m.cookie, a->cookie, PUNCH_MSG_COOKIE_LEN);
    memcpy(m.key, a->id.public_key, PUNCH_KEY_BYTES);
    memcpy(m.name, a->name, sizeof(m.name));
    m.n_private = second_endpoints(a, m.private_addr, PUNCH_MSG_MAX_PRIVATE);
    m.n_mapped = punch_portmap_advertise(&a->portmap, m.private_addr, &m.n_private,
                                         PUNCH_MSG_MAX_PRIVATE);
    m.rtt_ms = (uint16_t)(a->server_rtt_ms < UINT16_MAX ? a->server_rtt_ms : UINT16_MAX);
    m.nat_mapping = a->nat.mapping;
    m.nat_step = a->nat.step;
    m.nat_port = a->nat.port;
    m.sequence = a->reg.sequence;
    a->reg.told_nat = a->disc.state == DISC_DONE;
    a->reg.told_second = !second_asking(a);
    token_put(a, &m);
    a->reg.rtt_told = m.rtt_ms;
    a->reg.again = false; /* this one says all there is to say */
    send_msg(a, &a->cfg.server, &m);
}

/* (Re)start a registration step: a new transaction, sent now. */
void reg_start(punch_agent *a, reg_state st, uint64_t now)
{
    a->reg.state = st;
    a->reg.tries = 0;
    new_txid(a, a->reg.txid);
    /* The clock, so a restarted agent (a new process, the same monotonic
     * clock) goes on from where it was; +1 when two start in one ms. */
    a->reg.sequence = now > a->reg.sequence ? now : a->reg.sequence + 1;
    a->reg.next_ms = now;
}

/* The next HELLO or REGISTER: a retransmission, or the keepalive. */
uint64_t reg_deadline(const punch_agent *a, int id)
{
    (void)id;
    return a->reg.next_ms;
}

void reg_timeout(punch_agent *a, uint64_t now, int id)
{
    (void)id;
    if (a->reg.state == REG_DONE) {
        /* Keepalive: REGISTER again with the cookie we were given. */
        reg_start(a, REG_REGISTER, now);
    }
    if (a->reg.tries == SERVER_TRIES) {
        /* The server is gone or lost our state: start over, slowly. */
        reg_start(a, REG_HELLO, now);
        a->reg.next_ms = now + SERVER_RTO_MS * 16;
        return;
    }
    for (unsigned k = 0; k < server_copies(a->reg.tries); k++) {
        /* With a token, REGISTER goes first: the server answers it first. */
        if (a->reg.state != REG_HELLO || a->reg.token_live)
            send_register(a);
        if (a->reg.state == REG_HELLO)
            send_hello(a);
    }
    a->reg.next_ms = now + server_rto(a, a->reg.tries);
    a->reg.sent_ms = now;
    a->reg.tries++;
}

/* An answer to an unrepeated request times the round trip (Karn's rule).
 * The guard (probe_guard_ms) wants the path's delay, not its worst
 * moment (a first packet waits for ARP, a busy host answers late): a lower
 * sample is taken at once, a higher one moves the estimate an eighth. */
void rtt_sample(punch_agent *a, uint64_t sent_ms, uint64_t now)
{
    uint32_t r = (uint32_t)min_u64(now - sent_ms, 60000);
    r = r ? r : 1;
    if (!a->server_rtt_ms || r <= a->server_rtt_ms)
        a->server_rtt_ms = r;
    else
        a->server_rtt_ms = (7 * a->server_rtt_ms + r) / 8;
}

static void sample_server_rtt(punch_agent *a, uint64_t now)
{
    if (a->reg.tries == 1)
        rtt_sample(a, a->reg.sent_ms, now);
}

/* Register again now (the path to a peer went quiet: our NAT may have
 * given us a new public endpoint, which the server and the peer must
 * learn; the gateway mapped a port). While a REGISTER is on its way, once
 * it is answered: it may say less (a mapping that came after it was sent
 * stayed untold until the keepalive, 6 s). */
void reregister(punch_agent *a, uint64_t now)
{
    if (a->reg.state == REG_DONE)
        a->reg.next_ms = now;
    else
        a->reg.again = true;
}

/* The REGISTERED event: our public endpoint and what discovery found. */
void announce(punch_agent *a)
{
    static const char *const nat_names[] = {"unknown", "eim", "adm", "apdm"};
    ev *e = push_event(a, PUNCH_EVENT_REGISTERED, -1);
    e->e.registered.public_addr = a->public_addr;
    e->e.registered.nat = nat_names[a->nat.mapping];
    e->e.registered.port_step = (int16_t)a->nat.step;
    e->e.registered.nat_port = a->nat.port;
    e->e.registered.by_token = a->reg.by_token;
    e->e.registered.server = a->cfg.server;
    e->e.registered.server_rtt_ms = a->server_rtt_ms;
    if (a->disc_other.state != DISC_IDLE) {
        e->e.registered.other_family = a->disc_other.dst[0].family;
        e->e.registered.other_nat = nat_names[a->nat_other.mapping];
        e->e.registered.other_port_step = (int16_t)a->nat_other.step;
    }
    a->reg.announced = true;
}

void on_cookie(punch_agent *a, uint64_t now, const punch_msg *m)
{
    if (a->reg.state == REG_DONE && a->reg.by_token &&
        memcmp(m->txid, a->reg.hello_txid, PUNCH_MSG_TXID_LEN) == 0) {
        /* The HELLO beside a token that worked: only its second port is news. */
        a->second_port = m->second_port;
        disc_on_cookie(a, now);
        return;
    }
    if (a->reg.state != REG_HELLO || memcmp(m->txid, a->reg.txid, PUNCH_MSG_TXID_LEN) != 0)
        return;
    if (a->cfg.pin_server && memcmp(m->key, a->cfg.server_key, PUNCH_KEY_BYTES) != 0) {
        ev *e = push_event(a, PUNCH_EVENT_REFUSED, -1);
        strcpy(e->e.refused.why, "the server's key is not the pinned one");
        return;
    }
    if (memcmp(m->key, a->server_key, PUNCH_KEY_BYTES) != 0) {
        memcpy(a->server_key, m->key, PUNCH_KEY_BYTES);
        if (punch_auth_derive(&a->id, a->server_key, a->mac_key) != 0)
            return;
    }
    memcpy(a->cookie, m->cookie, PUNCH_MSG_COOKIE_LEN);
    sample_server_rtt(a, now);
    /* The token's REGISTER (token_live) may still be answered: either
     * answer will do. */
    reg_start(a, REG_REGISTER, now);
    reg_timeout(a, now, -1);
    a->second_port = m->second_port;
    disc_on_cookie(a, now);
}

void on_registered(punch_agent *a, uint64_t now, const punch_msg *m)
{
    bool token_flight = token_answered(a, m);
    if (!token_flight && (a->reg.state != REG_REGISTER ||
                          memcmp(m->txid, a->reg.txid, PUNCH_MSG_TXID_LEN) != 0))
        return;
    if (token_flight)
        a->reg.by_token = true; /* for this run: later REGISTERs go with cookies */
    a->reg.token_live = false;
    bool changed = !punch_addr_equal(&a->public_addr, &m->public_addr);
    /* The token's REGISTER went with the HELLO: timed by its send time
     * only while no COOKIE has started another request since. */
    if (!token_flight || a->reg.state == REG_HELLO)
        sample_server_rtt(a, now);
    a->public_addr = m->public_addr;
    memcpy(a->cookie, m->cookie, PUNCH_MSG_COOKIE_LEN);
    if (a->reg.state != REG_DONE)
        a->reg.done++;
    a->reg.state = REG_DONE;
    token_on_registered(a, m);
    if (!token_flight)
        token_connect_now(a, now);
    uint32_t server_ms = m->keepalive_s ? (uint32_t)m->keepalive_s * 1000u : a->keepalive_ms;
    a->reg.next_ms = now + min_u64(a->keepalive_ms, server_ms);
    /* Registered, as far as peers can tell, once the server has what NAT
     * discovery found (nothing found is what a REGISTER says by default):
     * only then is the REGISTERED event told, and CONNECTs sent. */
    bool told =
        a->reg.told_nat || (a->disc.state == DISC_DONE && a->nat.mapping == PUNCH_MSG_NAT_UNKNOWN);
    /* Tell the server again when it has what discovery did not find yet,
     * or a round trip far off the one we know now (the first one waited
     * for ARP, say; a token's was the last run's): peers' guard times are
     * worked out from it. */
    if ((!told && a->disc.state == DISC_DONE) || a->reg.rtt_told > 2 * a->server_rtt_ms + 2 ||
        (a->reg.rtt_told && 2u * a->reg.rtt_told + 2u < a->server_rtt_ms) || a->reg.again)
        reregister(a, now);
    if (told && a->reg.told_second && (changed || !a->reg.announced))
        announce(a);
    /* Discovery that heard nothing (the server was away) starts over. */
    if (a->disc.state == DISC_DONE && a->disc.seen[0].family == PUNCH_AF_NONE)
        disc_start(a, now);
}

/* A CONNECT of ours refused as from a source the server does not have,
 * that went before we were registered as we are now: a token's first
 * flight, whose CONNECT overtook its REGISTER (the server still had our
 * last run's endpoint). Not news that the server lost us: asked for
 * again at once, if no introduction came meanwhile. */
static bool connect_went_before_registered(punch_agent *a, uint64_t now, const punch_msg *m)
{
    for (int i = 0; i < MAX_PEERS; i++) {
        peer *p = &a->peers[i];
        if (!p->used || !p->connect.asked ||
            memcmp(p->connect.txid, m->txid, PUNCH_MSG_TXID_LEN) != 0)
            continue;
        if (p->connect.sent_in == a->reg.done)
            return false;
        if (!p->introduced) {
            p->connect.next_ms = now;
            p->connect.tries = 0;
        }
        return true;
    }
    return false;
}

void on_refused(punch_agent *a, uint64_t now, const punch_msg *m)
{
    /* A CONNECT that went before the server had us (beside a token that
     * did not work): registration is under way, the CONNECT waits for it. */
    if (m->code == PUNCH_REFUSED_NOT_REGISTERED &&
        (a->reg.state != REG_DONE || connect_went_before_registered(a, now, m)))
        return;
    if (m->code == PUNCH_REFUSED_COOKIE || m->code == PUNCH_REFUSED_NOT_REGISTERED) {
        reg_start(a, REG_HELLO, now);
        reg_timeout(a, now, -1);
        return;
    }
    for (int i = 0; i < MAX_PEERS; i++) {
        peer *p = &a->peers[i];
        if (p->used && !p->introduced &&
            memcmp(p->connect.txid, m->txid, PUNCH_MSG_TXID_LEN) == 0) {
            ev *e = push_event(a, PUNCH_EVENT_CLOSED, i);
            strcpy(e->e.closed.why, m->code == PUNCH_REFUSED_NO_PEER ? "no such peer at the server"
                             : m->code == PUNCH_REFUSED_KEY_MISMATCH
                                 ? "the peer has another key than the pinned one"
                                 : "the server refused the connection");
            forget_peer(a, i);
            return;
        }
    }
    if (memcmp(m->txid, a->reg.txid, PUNCH_MSG_TXID_LEN) == 0) {
        ev *e = push_event(a, PUNCH_EVENT_REFUSED, -1);
        /* punchd holds a name for its key until that key has been silent
         * for its peer expiry (3 keepalives + 15 s: 90 s by default). */
        strcpy(e->e.refused.why, m->code == PUNCH_REFUSED_NAME_TAKEN
                                     ? "the name belongs to another key; punchd frees it 90 s "
                                       "after that key's last keepalive"
                                     : "the server refused to register us");
    }
}
