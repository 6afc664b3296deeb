/* SPDX-License-Identifier: MIT */
/*
 * Several servers (punch_agent_cfg.more_servers; issue 15): punchd
 * members that serve the same peers. With one server nothing here runs.
 *
 * - Start: the registration's HELLO goes to the first server, and with
 *   each retransmission to one more (servers_send_hello); the first
 *   COOKIE that answers it chooses the server in use (cfg.server, which
 *   every other file talks to).
 * - Round trips: each server is asked a HELLO of its own now and then
 *   (PROBE_OTHER_MS; the one in use every PROBE_CURRENT_MS when nothing
 *   else came from it): its COOKIE is stateless at the server and smaller
 *   than the HELLO, and times the round trip.
 * - Failover: when FAILOVER_PROBES probes in a row to the server in use
 *   went unanswered, the registration starts again in the same way, from
 *   the server after it, and the first to answer is the next one in use. Direct sessions never
 *   depended on the server and go on; a session on the old server's relay
 *   asks its CONNECT again at the new one (the relay session is the
 *   server's: the new one introduces both sides in a session of its own).
 */
#include <string.h>

#include "core/agent_internal.h"

/* The server in use is asked every second when nothing else came from
 * it; the third probe in a row unanswered after a retransmission timeout
 * (server_rto) and it is given up: failover 2.3 to 3.3 s after its last
 * answer, plus the new registration's round trips. */
#define PROBE_CURRENT_MS 1000
#define PROBE_OTHER_MS   15000
#define FAILOVER_PROBES  3

static bool several(const punch_agent *a)
{
    return a->servers.n > 1;
}

void servers_init(punch_agent *a, uint64_t now)
{
    server_list *l = &a->servers;
    l->n = 1 + (a->cfg.n_more_servers < PUNCH_MAX_SERVERS ? a->cfg.n_more_servers
                                                          : PUNCH_MAX_SERVERS - 1);
    l->s[0].addr = a->cfg.server;
    for (size_t i = 1; i < l->n; i++)
        l->s[i].addr = a->cfg.more_servers[i - 1];
    for (size_t i = 0; i < l->n; i++) {
        l->s[i].heard_ms = now;
        l->s[i].next_probe_ms = now + PROBE_CURRENT_MS; /* the others: a round trip soon */
    }
    l->current = 0;
    l->chosen = !several(a);
}

static int server_index(const punch_agent *a, const punch_addr *src)
{
    for (size_t i = 0; i < a->servers.n; i++)
        if (punch_addr_equal(&a->servers.s[i].addr, src))
            return (int)i;
    return -1;
}

/* A registration HELLO: to the server in use or, while none is chosen,
 * to one more server each try, in the list's order from `first` (the
 * first try to the first server only: like Happy Eyeballs, RFC 8305, the
 * order is a preference that a server silent for one retransmission
 * timeout loses). */
void servers_send_hello(punch_agent *a, const punch_msg *m)
{
    const server_list *l = &a->servers;
    if (l->chosen) {
        send_msg(a, &a->cfg.server, m);
        return;
    }
    size_t count = a->reg.tries + 1u < l->n ? a->reg.tries + 1u : l->n;
    for (size_t j = 0; j < count; j++)
        send_msg(a, &l->s[(l->first + j) % l->n].addr, m);
}

void servers_heard_current(punch_agent *a, uint64_t now)
{
    known_server *s = &a->servers.s[a->servers.current];
    s->heard_ms = now;
    s->unanswered = 0;
    a->servers.chosen = true;
}

/* The server at index i is the one in use from now on: its round trip
 * is ours, and everything asked of the server goes there. */
static void use_server(punch_agent *a, uint64_t now, size_t i)
{
    server_list *l = &a->servers;
    bool other_family = a->cfg.server.family != l->s[i].addr.family;
    l->current = i;
    l->chosen = true;
    a->cfg.server = l->s[i].addr;
    a->server_rtt_ms = l->s[i].rtt_ms;
    a->reg.announced = false; /* the REGISTERED event names the new one */
    a->reg.token_live = false; /* a token is the first server's */
    l->s[i].next_probe_ms = now + PROBE_CURRENT_MS;
    servers_heard_current(a, now);
    if (other_family) { /* our endpoint of the family we left: second_family.c */
        disc_swap(a);
        second_ask_now(a, now);
    }
}

/* A COOKIE from server src. True when it was a probe's answer (taken
 * here); false when registration is to see it, which a COOKIE for the
 * registration's HELLO from another server, while none is chosen, first
 * makes the server in use. */
bool servers_on_cookie(punch_agent *a, uint64_t now, const punch_addr *src, const punch_msg *m)
{
    int i = server_index(a, src);
    if (i < 0)
        return false;
    known_server *s = &a->servers.s[i];
    if (s->asked_ms && memcmp(m->txid, s->txid, PUNCH_MSG_TXID_LEN) == 0) {
        uint32_t r = (uint32_t)min_u64(now - s->asked_ms, 60000);
        s->rtt_ms = r ? r : 1;
        s->asked_ms = 0;
        s->heard_ms = now;
        s->unanswered = 0;
        if ((size_t)i == a->servers.current && !a->server_rtt_ms)
            a->server_rtt_ms = s->rtt_ms;
        return true;
    }
    if (!a->servers.chosen && a->reg.state == REG_HELLO &&
        memcmp(m->txid, a->reg.txid, PUNCH_MSG_TXID_LEN) == 0) {
        /* An answer to the first try times the round trip (Karn's rule). */
        if (a->reg.tries == 1)
            s->rtt_ms = (uint32_t)min_u64(now - a->reg.sent_ms, 60000);
        use_server(a, now, (size_t)i);
    }
    return false;
}

/* Sessions that went through the old server's relay, or found no path
 * yet, ask the new one; CONNECTs under way go there. */
static void move_relayed(punch_agent *a, uint64_t now)
{
    for (int id = 0; id < MAX_PEERS; id++) {
        peer *p = &a->peers[id];
        if (!p->used || !p->connect.asked)
            continue;
        p->connect.tries = 0; /* the new server gets all of them */
        p->connect.next_ms = now;
        if (p->introduced && (p->path < 0 || p->cand[p->path].technique == PUNCH_TECH_RELAY))
            p->connect.reconnect = true;
    }
}

/* The server in use is silent: register anew at whichever answers first. */
static void fail_over(punch_agent *a, uint64_t now)
{
    a->servers.chosen = false;
    a->servers.first = (a->servers.current + 1) % a->servers.n; /* the silent one last */
    a->servers.failovers++;
    reg_start(a, REG_HELLO, now);
    reg_timeout(a, now, -1);
    move_relayed(a, now);
}

uint64_t servers_deadline(const punch_agent *a, int id)
{
    (void)id;
    uint64_t at = UINT64_MAX;
    if (several(a))
        for (size_t i = 0; i < a->servers.n; i++)
            at = min_u64(at, a->servers.s[i].next_probe_ms);
    return at;
}

static void probe(punch_agent *a, uint64_t now, known_server *s)
{
    punch_msg m = {.type = PUNCH_MSG_HELLO};
    new_txid(a, s->txid);
    memcpy(m.txid, s->txid, PUNCH_MSG_TXID_LEN);
    send_msg(a, &s->addr, &m);
    s->asked_ms = now;
    s->unanswered++;
}

void servers_timeout(punch_agent *a, uint64_t now, int id)
{
    (void)id;
    server_list *l = &a->servers;
    for (size_t i = 0; i < l->n; i++) {
        known_server *s = &l->s[i];
        if (!timer_due(s->next_probe_ms, now))
            continue;
        bool current = i == l->current;
        if (current && l->chosen && s->unanswered >= FAILOVER_PROBES)
            fail_over(a, now);
        else if (!current || now - s->heard_ms >= PROBE_CURRENT_MS)
            probe(a, now, s); /* the server in use, heard from lately, needs none */
        uint64_t wait = PROBE_OTHER_MS;
        if (current)
            wait = s->unanswered == FAILOVER_PROBES && l->chosen ? server_rto(a, 0)
                                                                : PROBE_CURRENT_MS;
        s->next_probe_ms = now + wait;
    }
}
