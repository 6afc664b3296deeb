/* SPDX-License-Identifier: MIT */
/* SCTP packets and sockets, usrsctp's side of src/stream: packets
 * out (as tagged punch datagrams) and in, socket options and
 * timers of a stream's setup, and each peer's AF_CONN address and
 * listener. See stream.h. */
#include "stream/stream_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "io/log.h"

/* A stream datagram (tag, body) to peer p. */
static void send_dgram(sctp_peer *p, const uint8_t *dgram, size_t len)
{
    punch_sctp *s = p->owner;
    punch_agent *a = punch_driver_agent(s->cfg.driver);
    if (punch_agent_send(a, punch_clock_ms(), p->id, dgram, len) != 0) {
        s->c.no_path++; /* lost: SCTP retransmits once a path exists */
        p->unsent = true;
        return;
    }
    s->c.packets_out++;
    if (++s->since_flush >= FLUSH_EVERY) {
        s->since_flush = 0;
        punch_driver_flush(s->cfg.driver);
    }
}

/* A stream datagram body (after the tag) to peer p: the repair's NACKs and
 * packets sent again. */
static void send_body(void *arg, const uint8_t *body, size_t len)
{
    uint8_t dgram[PUNCH_MAX_DATAGRAM];
    dgram[0] = PUNCH_STREAM_TAG;
    memcpy(dgram + 1, body, len);
    send_dgram(arg, dgram, len + 1);
}

static void deliver_packet(void *arg, const uint8_t *pkt, size_t len)
{
    usrsctp_conninput(arg, pkt, len, 0);
}

static punch_repair *repair_of(sctp_peer *p)
{
    if (!p->repair)
        p->repair = punch_repair_new();
    return p->repair;
}

int stream_conn_output(void *addr, void *buf, size_t len, uint8_t tos, uint8_t set_df)
{
    (void)tos;
    (void)set_df;
    /* usrsctp's output callback only gets the AF_CONN address: our sctp_peer,
     * which knows its owner (also after the peer is gone). */
    sctp_peer *p = addr;
    punch_sctp *s = p->owner;
    if (!p->used) {
        /* The peer is gone (peer_gone) but an association of
         * its lingers until usrsctp lets it go: nowhere to send. */
        s->c.no_path++;
        return 0;
    }
    if (len > PUNCH_STREAM_MTU) {
        /* Never fragmented: an oversize packet is lost like any other. */
        s->c.oversize++;
        return 0;
    }
    /* The common header's checksum is left 0, as usrsctp writes it with
     * the CRC32c offloaded (punch_sctp_new): RFC 9653's zero checksum,
     * for a packet whose datagram's AEAD tag already proves every byte.
     * Computing it cost 2.6-3.6 % of a bulk sender's CPU
     * (bench/stream_bench.sh, perf), for a field no punch ever checked. */
    punch_repair *r = repair_of(p);
    if (!r) {
        s->c.no_path++; /* out of memory: lost, SCTP retransmits */
        return 0;
    }
    uint8_t dgram[PUNCH_MAX_DATAGRAM];
    dgram[0] = PUNCH_STREAM_TAG;
    send_dgram(p, dgram, 1 + punch_repair_frame(r, punch_clock_ms(), buf, len, dgram + 1));
    return 0;
}

static uint32_t rtt_ms(const sctp_peer *p)
{
    return (p->rtt_us + 999) / 1000;
}

void stream_repair_tick(punch_sctp *s, uint64_t now)
{
    for (int i = 0; i < MAX_PEERS; i++) {
        sctp_peer *p = &s->peers[i];
        if (!p->used || !p->repair)
            continue;
        repair_io io = {.arg = p, .send = send_body, .deliver = deliver_packet};
        punch_repair_tick(p->repair, &io, now, rtt_ms(p));
    }
}

void stream_repair_counters_add(const punch_sctp *s, punch_sctp_counters *c)
{
    for (int i = 0; i < MAX_PEERS; i++) {
        const sctp_peer *p = &s->peers[i];
        if (!p->used || !p->repair)
            continue;
        const repair_counters *r = punch_repair_counters(p->repair);
        c->repair_resent += r->resent;
        c->repair_repaired += r->repaired;
        c->repair_given_up += r->given_up;
        c->repair_malformed += r->malformed;
    }
}

void stream_repair_drop(sctp_peer *p)
{
    if (!p->repair)
        return;
    const repair_counters *c = punch_repair_counters(p->repair);
    p->owner->c.repair_resent += c->resent;
    p->owner->c.repair_repaired += c->repaired;
    p->owner->c.repair_given_up += c->given_up;
    p->owner->c.repair_malformed += c->malformed;
    punch_repair_free(p->repair);
    p->repair = NULL;
}

void stream_upcall(struct socket *so, void *arg, int flags)
{
    (void)so;
    (void)flags;
    punch_sctp *s = arg;
    s->kick = true;
}

static void listener_upcall(struct socket *so, void *arg, int flags)
{
    (void)so;
    (void)flags;
    sctp_peer *p = arg;
    p->accept_pending = true;
    p->owner->kick = true;
}

struct sockaddr_conn stream_conn_addr(sctp_peer *p, uint16_t port)
{
    struct sockaddr_conn a;
    memset(&a, 0, sizeof(a));
    a.sconn_family = AF_CONN;
    a.sconn_port = htons(port);
    a.sconn_addr = p;
    return a;
}

/* Options every stream socket (and the listeners, for what they accept) gets. */
int stream_set_options(struct socket *so)
{
    const int on = 1;
    struct sctp_event ev = {.se_assoc_id = SCTP_FUTURE_ASSOC, .se_type = SCTP_ASSOC_CHANGE,
                            .se_on = 1};
    struct sctp_initmsg init = {.sinit_num_ostreams = 1, .sinit_max_instreams = 1};
    /* The MTU is ours to say: one SCTP packet per punch datagram. */
    struct sctp_paddrparams pp;
    memset(&pp, 0, sizeof(pp));
    pp.spp_assoc_id = SCTP_FUTURE_ASSOC;
    pp.spp_flags = SPP_PMTUD_DISABLE;
    pp.spp_pathmtu = SCTP_PATH_MTU;
    if (usrsctp_set_non_blocking(so, 1) != 0 ||
        usrsctp_setsockopt(so, IPPROTO_SCTP, SCTP_RECVRCVINFO, &on, sizeof(on)) != 0 ||
        usrsctp_setsockopt(so, IPPROTO_SCTP, SCTP_NODELAY, &on, sizeof(on)) != 0 ||
        usrsctp_setsockopt(so, IPPROTO_SCTP, SCTP_EVENT, &ev, sizeof(ev)) != 0 ||
        usrsctp_setsockopt(so, IPPROTO_SCTP, SCTP_INITMSG, &init, sizeof(init)) != 0 ||
        usrsctp_setsockopt(so, IPPROTO_SCTP, SCTP_PEER_ADDR_PARAMS, &pp, sizeof(pp)) != 0)
        return PUNCH_ERR_IO;
    return 0;
}

/* The association's own path gets the MTU too (the endpoint default above
 * covers what the handshake sends). */
void stream_set_path_mtu(punch_stream *st)
{
    struct sctp_paddrparams pp;
    memset(&pp, 0, sizeof(pp));
    struct sockaddr_conn a = stream_conn_addr(st->peer, 0);
    memcpy(&pp.spp_address, &a, sizeof(a));
    pp.spp_flags = SPP_PMTUD_DISABLE;
    pp.spp_pathmtu = SCTP_PATH_MTU;
    socklen_t len = sizeof(pp);
    struct sctp_paddrparams cur;
    memset(&cur, 0, sizeof(cur));
    /* Any address of the association: AF_CONN has one. */
    cur.spp_assoc_id = 0;
    if (usrsctp_getsockopt(st->so, IPPROTO_SCTP, SCTP_PEER_ADDR_PARAMS, &cur, &len) == 0)
        memcpy(&pp.spp_address, &cur.spp_address, sizeof(pp.spp_address));
    usrsctp_setsockopt(st->so, IPPROTO_SCTP, SCTP_PEER_ADDR_PARAMS, &pp, sizeof(pp));
}

/* usrsctp takes FreeBSD's per-association SCTP_PLUGGABLE_CC (sctp(4):
 * an sctp_assoc_value naming an SCTP_CC_* module) but its header leaves
 * the option's number out. */
#ifndef SCTP_PLUGGABLE_CC
#define SCTP_PLUGGABLE_CC 0x00001202
#endif

/* HSTCP (the stack's default, punch_sctp_new) on a direct path; H-TCP
 * through punchd's relay. The relay polices each source (1 MiB/s by
 * default, docs/datapath.md) and drops what exceeds it: HSTCP backs off
 * by only 27-33 % at large windows and grows by 8-17 KB per SACK in slow
 * start, so it keeps bursting into the policer (lab.stream's relay case:
 * 9.1-19.1 s for 8 MiB, against 8.4-8.6 s with H-TCP, which halves). The
 * relay's losses are the policer's, which is what a loss-based controller
 * is made for; random loss on a direct path is the repair's (repair.c). */
static int stream_cc_for(const sctp_peer *p)
{
    return p->relayed ? SCTP_CC_HTCP : SCTP_CC_HSTCP;
}

/* Congestion control module cc for st; returns whether it was taken. A
 * one-to-one socket's option is its association's, whatever the id. The
 * module starts the window over (usrsctp's sctp_set_initial_cc_param:
 * the initial window, ssthresh at the peer's window). */
static bool take_cc(punch_stream *st, int cc)
{
    struct sctp_assoc_value av = {.assoc_id = 0, .assoc_value = (uint32_t)cc};
    if (usrsctp_setsockopt(st->so, IPPROTO_SCTP, SCTP_PLUGGABLE_CC, &av, sizeof(av)) != 0) {
        punch_log(PUNCH_LOG_DEBUG, "stream: congestion control %d not taken (errno %d)", cc, errno);
        return false;
    }
    return true;
}

void stream_set_cc(punch_stream *st)
{
    int cc = stream_cc_for(st->peer);
    if (!st->so || !st->up || cc == st->cc)
        return;
    if (take_cc(st, cc))
        st->cc = cc;
}

bool stream_restart_window(punch_stream *st)
{
    return st->so && st->up && take_cc(st, st->cc);
}

/* Set once the INIT is out (its timer keeps the setup's RTO) and again
 * at COMM_UP (an accepted association is made by the COOKIE-ECHO): from
 * then on RTT measurements give RTO.Min at least, so the first DATA's
 * timer does too (set at COMM_UP alone, an opener's path kept the setup's
 * 120 ms until its first SACK, and a repair in the first flight still ran
 * it out). */
void stream_set_data_rto(punch_stream *st)
{
    /* usrsctp takes an RTO.Min only with an RTO.Initial at or above it;
     * RTO.Initial no longer matters once the association is up. */
    /* A one-to-one socket's option is its association's, whatever the id. */
    struct sctp_rtoinfo ri = {.srto_assoc_id = 0, .srto_initial = RTO_INITIAL_MS,
                              .srto_min = DATA_RTO_MIN_MS};
    if (usrsctp_setsockopt(st->so, IPPROTO_SCTP, SCTP_RTOINFO, &ri, sizeof(ri)) != 0)
        punch_log(PUNCH_LOG_WARN, "stream: could not set RTO.Min %u ms (errno %d)",
                  DATA_RTO_MIN_MS, errno);
}

/* How long the setup of a stream to p waits for an answer before sending
 * again. SCTP's RTO.Initial (1 s) is for a path nothing is known of; punch
 * sets streams up over a path the agent has proven, often timed by its
 * PING/PONG. Measured in the lab (10 ms each access link, 5 % loss): one
 * setup in eight lost a packet and its first bytes came 1.1 s (2.7 s for
 * two) after the path event, against 120 ms without loss; with a lost
 * INIT-ACK now about 450 ms (lab/tests/stream.sh, "first bytes"). */
static uint32_t setup_rto_ms(const sctp_peer *p)
{
    if (!p->has_path)
        return RTO_INITIAL_MS; /* the INIT waits for a path: path_changed sends it */
    if (p->rtt_us == 0)
        return SETUP_RTO_UNTIMED_MS;
    uint64_t ms = 3 * (uint64_t)p->rtt_us / 1000;
    if (ms < SETUP_RTO_MIN_MS)
        return SETUP_RTO_MIN_MS;
    return ms > RTO_INITIAL_MS ? RTO_INITIAL_MS : (uint32_t)ms;
}

int stream_set_setup_rto(struct socket *so, const sctp_peer *p)
{
    /* 0: keep RTO.Max and RTO.Min. */
    struct sctp_rtoinfo ri = {.srto_assoc_id = SCTP_FUTURE_ASSOC,
                              .srto_initial = setup_rto_ms(p)};
    if (usrsctp_setsockopt(so, IPPROTO_SCTP, SCTP_RTOINFO, &ri, sizeof(ri)) != 0)
        return PUNCH_ERR_IO;
    return 0;
}

sctp_peer *stream_peer_get(punch_sctp *s, int id)
{
    if (id < 0 || id >= MAX_PEERS)
        return NULL;
    sctp_peer *p = &s->peers[id];
    if (p->used)
        return p;
    *p = (sctp_peer){.owner = s, .id = id, .used = true};
    usrsctp_register_address(p);
    if (!s->cfg.accept)
        return p;
    struct socket *l = usrsctp_socket(AF_CONN, SOCK_STREAM, IPPROTO_SCTP, NULL, NULL, 0, NULL);
    struct sockaddr_conn a = stream_conn_addr(p, ACCEPT_PORT);
    if (!l || stream_set_options(l) != 0 ||
        usrsctp_bind(l, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        usrsctp_listen(l, ACCEPT_BACKLOG) != 0) {
        punch_log(PUNCH_LOG_WARN, "stream: cannot listen for peer %d: %s", id, strerror(errno));
        if (l)
            usrsctp_close(l);
        return p;
    }
    usrsctp_set_upcall(l, listener_upcall, p);
    p->listener = l;
    return p;
}

/* A datagram with PUNCH_STREAM_TAG from peer: an SCTP packet. */
void stream_take_packet(punch_sctp *s, int peer, const uint8_t *data, size_t len)
{
    sctp_peer *p = stream_peer_get(s, peer);
    if (len < 1 || data[0] != PUNCH_STREAM_TAG || !p) {
        s->c.not_stream++;
        return;
    }
    s->c.packets_in++;
    punch_repair *r = repair_of(p);
    if (!r)
        return; /* out of memory: lost, SCTP retransmits */
    /* usrsctp checks the verification tag and every chunk, and drops (and
     * counts) what does not belong to an association; the CRC32c is not
     * checked (stream_conn_output). */
    repair_io io = {.arg = p, .send = send_body, .deliver = deliver_packet};
    punch_repair_input(r, &io, punch_clock_ms(), rtt_ms(p), data + 1, len - 1);
    /* The streams are served once per batch of datagrams, not once per
     * packet: one write to wfd for many packets. usrsctp's own answers
     * (SACKs) went out from inside usrsctp_conninput already. */
    if (punch_loop_defer(s->cfg.loop, stream_serve_deferred, s) != 0)
        stream_serve_all(s);
}

