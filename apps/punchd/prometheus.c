/* SPDX-License-Identifier: MIT */
/* punchd's counters as Prometheus text: see prometheus.h. */
#include "prometheus.h"

#include <stdarg.h>
#include <stdio.h>

#include "punch/punch.h"
#include "wire/msg.h"

typedef struct text {
    char *buf;
    size_t cap, len;
} text;

static void put(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(text *t, const char *fmt, ...)
{
    if (t->len >= t->cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    t->len = n < 0 || (size_t)n >= t->cap - t->len ? t->cap : t->len + (size_t)n;
}

/* A family's HELP and TYPE lines. */
static void family(text *t, const char *name, const char *type, const char *help)
{
    put(t, "# HELP punchd_%s %s\n# TYPE punchd_%s %s\n", name, help, name, type);
}

/* One sample; labels "" or like reason="x". */
static void sample(text *t, const char *name, const char *labels, uint64_t v)
{
    put(t, "punchd_%s%s%s%s %llu\n", name, *labels ? "{" : "", labels, *labels ? "}" : "",
        (unsigned long long)v);
}

static void one(text *t, const char *name, const char *type, const char *help, uint64_t v)
{
    family(t, name, type, help);
    sample(t, name, "", v);
}

static void gauges(text *t, const punchd_stats *s)
{
    family(t, "build_info", "gauge", "punchd's version, in a label");
    put(t, "punchd_build_info{version=\"%s\"} 1\n", punch_version());
    one(t, "uptime_seconds", "gauge", "seconds since punchd started", s->uptime_s);
    one(t, "peers", "gauge", "peers registered now", s->rv->peers);
    one(t, "relay_sessions", "gauge", "relay sessions open now", s->rv->sessions);
    if (s->tcp)
        one(t, "tcp_connections", "gauge", "TCP connections open now", s->tcp->connections);
}

static void rendezvous(text *t, const punch_rendezvous_counters *r)
{
    one(t, "registrations_total", "counter", "REGISTERED answers (keepalives included)",
        r->registrations);
    one(t, "peers_added_total", "counter", "peers that registered a new name", r->peers_added);
    one(t, "peers_expired_total", "counter", "peers forgotten after their keepalives stopped",
        r->peers_expired);
    one(t, "introductions_total", "counter", "CONNECTs answered with INTRODUCE",
        r->introductions);
    one(t, "reintroductions_total", "counter", "sessions told again of a peer's new address",
        r->reintroductions);
    one(t, "cookies_total", "counter", "COOKIE answers to HELLO", r->cookies);
    one(t, "tokens_accepted_total", "counter",
        "REGISTERs that an address-validation token let in without a cookie", r->token_accepted);
    static const char *const refusals[] = {
        [PUNCH_REFUSED_COOKIE] = "cookie",         [PUNCH_REFUSED_NAME_TAKEN] = "name_taken",
        [PUNCH_REFUSED_NO_PEER] = "no_peer",       [PUNCH_REFUSED_KEY_MISMATCH] = "key_mismatch",
        [PUNCH_REFUSED_FULL] = "full", [PUNCH_REFUSED_NOT_REGISTERED] = "not_registered",
    };
    family(t, "refused_total", "counter", "REFUSED answers, by reason");
    char label[48];
    for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++)
        if (refusals[i]) {
            snprintf(label, sizeof(label), "reason=\"%s\"", refusals[i]);
            sample(t, "refused_total", label, r->refused[i]);
        }
    one(t, "relay_sessions_opened_total", "counter", "relay sessions opened", r->sessions_opened);
    one(t, "relay_sessions_closed_total", "counter", "relay sessions closed", r->sessions_closed);
    one(t, "relay_sessions_full_total", "counter", "introductions without a relay slot",
        r->sessions_full);
    one(t, "relayed_datagrams_total", "counter", "RELAY datagrams forwarded", r->relayed);
    one(t, "relayed_bytes_total", "counter", "bytes of RELAY datagrams forwarded",
        r->relayed_bytes);
}

static void stun(text *t, const punch_binding_counters *c)
{
    one(t, "stun_answered_total", "counter", "STUN Binding success responses", c->answered);
    one(t, "stun_errors_total", "counter", "STUN error responses (400, 420)", c->errors);
}

static void received(text *t, const punchd_stats *s)
{
    family(t, "received_total", "counter", "datagrams (and TCP frames) received, by service");
    sample(t, "received_total", "service=\"stun\"", s->stun->received);
    sample(t, "received_total", "service=\"rendezvous\"", s->rv->received);
}

/* Every datagram, frame or request dropped, one label a reason. */
static void drops(text *t, const punchd_stats *s)
{
    const punch_binding_counters *c = s->stun;
    const punch_rendezvous_counters *r = s->rv;
    const struct {
        const char *reason;
        uint64_t v;
    } d[] = {
        {"stun_malformed", c->malformed},     {"stun_not_request", c->not_request},
        {"stun_unsupported", c->unsupported}, {"stun_no_room", c->no_room},
        {"malformed", r->malformed},          {"unexpected", r->unexpected},
        {"bad_mac", r->bad_mac},
        {"token_bad", r->token_bad},          {"token_expired", r->token_expired},
        {"token_replayed", r->token_replayed},
        {"relay_unknown", r->relay_unknown},  {"relay_wrong_source", r->relay_wrong_source},
        {"relay_over_quota", r->relay_over_quota},
        {"relay_source_over", r->relay_source_over}, {"relay_peer_over", r->relay_peer_over},
        {"no_room", r->no_room},
        {"rate_limited", c->rate_limited + r->rate_limited},
        {"send_failed", s->send_dropped},     {"tcp_clash", s->tcp_clash},
        {"events_dropped", r->events_dropped},
        {"tcp_bad_frame", s->tcp ? s->tcp->bad_frames : 0},
        {"tcp_out_full", s->tcp ? s->tcp->out_dropped : 0},
        {"http_bad_request", s->http ? s->http->bad_requests : 0},
    };
    family(t, "drops_total", "counter", "input dropped or output not sent, by reason");
    char label[48];
    for (size_t i = 0; i < sizeof(d) / sizeof(d[0]); i++) {
        snprintf(label, sizeof(label), "reason=\"%s\"", d[i].reason);
        sample(t, "drops_total", label, d[i].v);
    }
}

static void rate_limits(text *t, const punchd_stats *s)
{
    family(t, "rate_limited_total", "counter",
           "requests refused because their source IP (IPv6: /64) was over --rate-limit");
    sample(t, "rate_limited_total", "service=\"stun\"", s->stun->rate_limited);
    sample(t, "rate_limited_total", "service=\"rendezvous\"", s->rv->rate_limited);
    if (s->tcp)
        sample(t, "rate_limited_total", "service=\"tcp\"", s->tcp->rate_limited);
    family(t, "rate_limited_sources_total", "counter",
           "times a source IP (IPv6: /64) began to be refused by --rate-limit");
    sample(t, "rate_limited_sources_total", "service=\"stun\"", s->stun->rate_limited_sources);
    sample(t, "rate_limited_sources_total", "service=\"rendezvous\"",
           s->rv->rate_limited_sources);
    if (s->tcp)
        sample(t, "rate_limited_sources_total", "service=\"tcp\"", s->tcp->rate_limited_sources);
}

static void tcp(text *t, const punch_tcp_server_counters *c)
{
    one(t, "tcp_accepted_total", "counter", "TCP connections accepted", c->accepted);
    family(t, "tcp_refused_total", "counter", "TCP connections closed at once, by reason");
    sample(t, "tcp_refused_total", "reason=\"full\"", c->refused_full);
    sample(t, "tcp_refused_total", "reason=\"per_ip\"", c->refused_per_ip);
    sample(t, "tcp_refused_total", "reason=\"rate_limited\"", c->rate_limited);
    one(t, "tcp_closed_total", "counter", "TCP connections closed", c->closed);
    one(t, "tcp_idle_closed_total", "counter", "TCP connections closed for want of a frame",
        c->idle_closed);
    one(t, "tcp_frames_in_total", "counter", "frames received on TCP", c->frames_in);
    one(t, "tcp_frames_out_total", "counter", "frames sent on TCP", c->frames_out);
}

static void http(text *t, const punchd_metrics_counters *c)
{
    one(t, "metrics_requests_total", "counter", "GET /metrics answered", c->requests);
    one(t, "metrics_timeouts_total", "counter", "metrics connections closed: too slow",
        c->timeouts);
    one(t, "metrics_refused_total", "counter", "metrics connections closed at once: too many",
        c->refused_full);
    one(t, "metrics_pushed_out_total", "counter",
        "metrics connections closed for a newer one before their request was whole",
        c->pushed_out);
}

static void cluster(text *t, const punchd_cluster *c)
{
    const punchd_cluster_stats *s = punchd_cluster_stats_get(c);
    const punch_cluster_counters *k = punchd_cluster_counters(c);
    one(t, "cluster_up", "gauge", "1 while connected to the cluster's Redis",
        punchd_cluster_up(c) ? 1 : 0);
    one(t, "cluster_lookups_total", "counter", "CONNECTs for names not registered here",
        s->lookups);
    one(t, "cluster_lookups_failed_total", "counter", "of those, refused", s->lookups_failed);
    one(t, "cluster_introductions_total", "counter", "introductions across members, both sides",
        s->introduced);
    one(t, "cluster_timeouts_total", "counter",
        "connections to Redis given up: commands unanswered for 2 s", s->timeouts);
    one(t, "cluster_relay_moves_total", "counter",
        "halves of relays moved to the member their far peer failed over to", s->halves_moved);
    one(t, "cluster_turn_addresses_total", "counter",
        "relayed addresses at TURN servers sent to other members", s->turn_sent);
    family(t, "cluster_drops_total", "counter", "cluster messages dropped, by reason");
    sample(t, "cluster_drops_total", "reason=\"malformed\"", k->malformed);
    sample(t, "cluster_drops_total", "reason=\"bad_mac\"", k->bad_mac);
    sample(t, "cluster_drops_total", "reason=\"stale\"", k->stale);
    sample(t, "cluster_drops_total", "reason=\"misdirected\"", k->misdirected);
    sample(t, "cluster_drops_total", "reason=\"replayed\"", k->replayed);
    sample(t, "cluster_drops_total", "reason=\"no_peer\"", s->intro_no_peer);
}

size_t punchd_prometheus_render(const punchd_stats *s, char *buf, size_t cap)
{
    text t = {.buf = buf, .cap = cap};
    gauges(&t, s);
    rendezvous(&t, s->rv);
    stun(&t, s->stun);
    received(&t, s);
    drops(&t, s);
    rate_limits(&t, s);
    if (s->tcp)
        tcp(&t, s->tcp);
    if (s->http)
        http(&t, s->http);
    if (s->cluster)
        cluster(&t, s->cluster);
    return t.len < cap ? t.len : cap ? cap - 1 : 0;
}
