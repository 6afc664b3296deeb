/* SPDX-License-Identifier: MIT */
/* Server, identity, trust and events of a command running an agent: see agent_cli.h. */
#include "agent_cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cli.h"
#include "keyfile/keyfile.h"
#include "common/known_peers.h"
#include "common/server_tokens.h"
#include "io/log.h"
#include "io/net.h"
#include "wire/msg.h"

int punch_agent_cli_server(const punch_cli *cli, const char *program, punch_addr *server)
{
    if (!cli->server || !cli->server[0])
        return punch_cli_usage_error(program, "no server: give --server HOST[:PORT] or set "
                                              "PUNCH_SERVER");
    int rc = punch_addr_resolve(cli->server, PUNCH_DEFAULT_PORT, server);
    if (rc == PUNCH_ERR_INVAL)
        return punch_cli_usage_error(program, "--server: '%s' is not HOST[:PORT]", cli->server);
    for (size_t k = 0; k < cli->n_more_servers; k++) {
        punch_addr unused;
        size_t n;
        if (punch_addr_resolve_all(cli->more_servers[k], PUNCH_DEFAULT_PORT, &unused, 1, &n) ==
            PUNCH_ERR_INVAL)
            return punch_cli_usage_error(program, "--server: '%s' is not HOST[:PORT]",
                                         cli->more_servers[k]);
    }
    if (rc != 0) {
        fprintf(stderr, "%s: cannot resolve '%s'\n", program, cli->server);
        return 1;
    }
    return 0;
}

int punch_agent_cli_identity(const punch_cli *cli, const char *program, punch_identity *id,
                             char known_path[PATH_MAX])
{
    char path[PATH_MAX - 16], err[PUNCH_KEYFILE_ERRLEN];
    if (punch_cli_key_path(cli, path, sizeof(path)) != 0)
        return 1;
    bool created;
    if (punch_keyfile_load_or_create(path, id, &created, err) != 0) {
        fprintf(stderr, "%s: %s\n", program, err);
        return 1;
    }
    if (created)
        punch_log(PUNCH_LOG_INFO, "created a new identity key in %s", path);
    char *slash = strrchr(path, '/');
    if (slash)
        *slash = '\0';
    if (snprintf(known_path, PATH_MAX, "%s/known_peers", slash ? path : ".") >= PATH_MAX) {
        fprintf(stderr, "%s: key folder path too long: %s\n", program, path);
        punch_identity_wipe(id);
        return 1;
    }
    return 0;
}

/* A name met for the first time: remember its key. False when another
 * punch remembered another key for it meanwhile (known then holds it). */
static bool learn(const char *known_path, const punch_event *ev, uint8_t known[PUNCH_KEY_LEN])
{
    char got[PUNCH_KEY_B64_LEN], err[PUNCH_KEYFILE_ERRLEN];
    punch_key_encode(ev->peer_key, got);
    int rc = punch_known_peers_add(known_path, ev->peer_name, ev->peer_key, err);
    if (rc == 0)
        punch_log(PUNCH_LOG_INFO, "learned %s's key %s (kept in %s)", ev->peer_name, got,
                  known_path);
    else if (rc == PUNCH_ERR_INTEGRITY) {
        punch_known_peers_find(known_path, ev->peer_name, known, err);
        return false;
    }
    else /* full, or not writable: the names met before stay pinned */
        punch_log(PUNCH_LOG_WARN, "cannot remember %s's key: %s", ev->peer_name, err);
    return true;
}

/* Check ev's key against known_peers; learn a new name's when asked. */
static bool check_key(const char *known_path, const punch_event *ev, bool learn_new)
{
    uint8_t known[PUNCH_KEY_LEN] = {0};
    char have[PUNCH_KEY_B64_LEN], got[PUNCH_KEY_B64_LEN], err[PUNCH_KEYFILE_ERRLEN];
    int rc = punch_known_peers_find(known_path, ev->peer_name, known, err);
    if (rc == 0 && memcmp(known, ev->peer_key, PUNCH_KEY_LEN) == 0)
        return true;
    if (rc == PUNCH_ERR_NOTFOUND && (!learn_new || learn(known_path, ev, known)))
        return true;
    if (rc != 0 && rc != PUNCH_ERR_NOTFOUND) { /* a bad file is never half-believed */
        fprintf(stderr, "punch: REFUSING %s: cannot check its key: %s\n", ev->peer_name, err);
        return false;
    }
    punch_key_encode(known, have);
    punch_key_encode(ev->peer_key, got);
    fprintf(stderr,
            "punch: REFUSING %s: its key changed! known %s, the server now says %s.\n"
            "punch: someone may be impersonating it. If the change is expected (%s made a\n"
            "punch: new key), remove the line for %s from %s",
            ev->peer_name, have, got, ev->peer_name, ev->peer_name, known_path);
    /* A command to paste, for names sed takes as they are. */
    if (strspn(ev->peer_name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") ==
        strlen(ev->peer_name))
        fprintf(stderr, ":\npunch:   sed -i '/^%s /d' '%s'\n", ev->peer_name, known_path);
    else
        fprintf(stderr, ".\n");
    fprintf(stderr, "punch: The next connection learns the new key; or pin it: connect %s@%s\n",
            ev->peer_name, got);
    return false;
}

bool punch_agent_cli_trust(const char *known_path, const punch_event *ev)
{
    return check_key(known_path, ev, false);
}

bool punch_agent_cli_learn(const char *known_path, const punch_event *ev)
{
    return check_key(known_path, ev, true);
}

/* A token kept from an earlier run with this server (server_tokens.h):
 * the start registers in one flight. None, or a bad file: as before. */
static void load_token(punch_agent_cli_setup *su, const punch_addr *server,
                       punch_agent_cfg *cfg)
{
    char dir[PATH_MAX], err[PUNCH_KEYFILE_ERRLEN];
    snprintf(dir, sizeof(dir), "%s", su->known_path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    if (punch_server_token_path(slash ? dir : ".", server, su->token_path) != 0) {
        su->token_path[0] = '\0';
        return;
    }
    int rc = punch_server_token_load(su->token_path, &cfg->token, err);
    cfg->has_token = rc == 0;
    if (rc != 0 && rc != PUNCH_ERR_NOTFOUND)
        punch_log(PUNCH_LOG_WARN, "%s", err);
}

static void keep_token(const punch_agent_cli_setup *su, const punch_event *ev)
{
    char err[PUNCH_KEYFILE_ERRLEN];
    if (su->token_path[0] && punch_server_token_save(su->token_path, &ev->token, err) != 0)
        punch_log(PUNCH_LOG_DEBUG, "cannot keep the server's token: %s", err);
}

/* Every event of the agent passes here: a REGISTERED says the server
 * answers, a TOKEN is kept for the next start; then on to the command's
 * own handler. */
static void watch_event(void *arg, punch_driver *d, const punch_event *ev)
{
    punch_agent_cli_setup *su = arg;
    if (ev->kind == PUNCH_EVENT_REGISTERED)
        su->registered = true;
    if (ev->kind == PUNCH_EVENT_TOKEN) {
        keep_token(su, ev);
        return;
    }
    su->on_event(su->arg, d, ev);
}

/* PUNCH_SILENT_SERVER_MS after the start: a server that has not answered
 * is named on stderr (the agent keeps trying; --timeout still ends it). */
static void on_silent_server(void *arg, uint64_t now_ms)
{
    (void)now_ms;
    const punch_agent_cli_setup *su = arg;
    if (!su->registered)
        fprintf(stderr, "%s: no answer from punchd at %s%s after %d s (still trying; is the "
                "server running and reachable?)\n", su->cmd, su->server_text,
                su->several_servers ? " nor the other --server" : "",
                PUNCH_SILENT_SERVER_MS / 1000);
}

/* One more server address for cfg, unless it is there already or one too
 * many. One of the other family than the first is kept (the driver has a
 * socket per family): a server to fail over to, and where the agent
 * learns its public endpoint of that family (src/core/second_family.c). */
static void add_server(punch_agent_cfg *cfg, const punch_addr *a, const char *text)
{
    char buf[PUNCH_ADDR_STRLEN];
    if (punch_addr_equal(a, &cfg->server))
        return;
    for (size_t i = 0; i < cfg->n_more_servers; i++)
        if (punch_addr_equal(a, &cfg->more_servers[i]))
            return;
    if (cfg->n_more_servers == PUNCH_MAX_SERVERS - 1) {
        punch_log(PUNCH_LOG_WARN, "--server %s: %s left out (at most %d server addresses)", text,
                  punch_addr_format(a, buf), PUNCH_MAX_SERVERS);
        return;
    }
    cfg->more_servers[cfg->n_more_servers++] = *a;
}

/* The servers after the first: the first --server's other addresses (a
 * name with several addresses names several servers), then every later
 * --server's (punch_agent_cli_server checked how they are written). One
 * that does not resolve is left out: the others serve. */
static void more_servers(const punch_cli *cli, punch_agent_cfg *cfg)
{
    punch_addr all[PUNCH_MAX_SERVERS];
    size_t n;
    for (size_t k = 0; k <= cli->n_more_servers; k++) {
        const char *text = k ? cli->more_servers[k - 1] : cli->server;
        if (punch_addr_resolve_all(text, PUNCH_DEFAULT_PORT, all, PUNCH_MAX_SERVERS, &n) != 0) {
            punch_log(PUNCH_LOG_WARN, "cannot resolve '%s': going on without it", text);
            continue;
        }
        for (size_t i = 0; i < n; i++)
            add_server(cfg, &all[i], text);
    }
}

/* --turn's host resolved into cfg: its first address of the server's
 * family (the agent has one socket; over TCP or TLS too, for simplicity). Returns 0, or 1 with one line on
 * stderr. */
static int turn_server(const punch_cli *cli, const char *program, punch_agent_cfg *cfg)
{
    if (!cli->has_turn)
        return 0;
    char text[PUNCH_TURN_URL_HOST_MAX + 8];
    snprintf(text, sizeof(text), strchr(cli->turn.host, ':') ? "[%s]:%u" : "%s:%u",
             cli->turn.host, cli->turn.port);
    punch_addr all[PUNCH_MAX_SERVERS];
    size_t n = 0;
    if (punch_addr_resolve_all(text, PUNCH_TURN_DEFAULT_PORT, all, PUNCH_MAX_SERVERS, &n) != 0) {
        fprintf(stderr, "%s: --turn: cannot resolve '%s'\n", program, cli->turn.host);
        return 1;
    }
    size_t i = 0;
    while (i < n && all[i].family != cfg->server.family)
        i++;
    if (i == n) {
        fprintf(stderr, "%s: --turn: '%s' has no %s address, as --server has\n", program,
                cli->turn.host, punch_family_name(cfg->server.family));
        return 1;
    }
    cfg->turn_server = all[i];
    cfg->turn_username = cli->turn.username;
    cfg->turn_password = cli->turn.password;
    return 0;
}

/* The driver's settings: server, name, flags, tuning, and the secret key
 * (the caller wipes it once the driver has it). */
static int driver_cfg(const punch_cli *cli, const punch_addr *server,
                      punch_agent_cli_setup *su, punch_driver_cfg *dc,
                      char host[PUNCH_NAME_MAX + 1])
{
    *dc = (punch_driver_cfg){.agent = {.server = *server, .flags = su->flags},
                             .on_event = watch_event, .arg = su};
    more_servers(cli, &dc->agent);
    if (turn_server(cli, su->cmd, &dc->agent) != 0)
        return 1;
    if (cli->has_turn) {
        dc->turn_transport = cli->turn.transport == PUNCH_TURN_TLS   ? PUNCH_DRIVER_TURN_TLS
                             : cli->turn.transport == PUNCH_TURN_TCP ? PUNCH_DRIVER_TURN_TCP
                                                                     : PUNCH_DRIVER_TURN_UDP;
        dc->turn_host = cli->turn.host;
        dc->turn_ca_file = cli->turn_ca;
    }
    punch_identity id;
    if (punch_agent_cli_identity(cli, su->cmd, &id, su->known_path) != 0)
        return 1;
    const char *name = cli->name;
    if (!name && su->listening && gethostname(host, PUNCH_NAME_MAX) == 0)
        name = host;
    dc->agent.name = name;
    punch_agent_cli_tune(cli, &dc->agent);
    load_token(su, server, &dc->agent);
    memcpy(dc->agent.secret_key, id.secret_key, PUNCH_KEY_LEN);
    punch_identity_wipe(&id);
    return 0;
}

int punch_agent_cli_start(const punch_cli *cli, const punch_addr *server,
                          punch_agent_cli_setup *su)
{
    punch_driver_cfg dc;
    char host[PUNCH_NAME_MAX + 1] = "";
    if (driver_cfg(cli, server, su, &dc, host) != 0)
        return 1;
    int rc = 1;
    if (punch_events_open(su->events, cli->events, cli->start_ms) != 0)
        fprintf(stderr, "punch: cannot open events file '%s': %s\n", cli->events,
                strerror(errno));
    else if (punch_loop_new(su->loop) != 0 ||
             punch_loop_signals(*su->loop, su->signals, su->n_signals, su->on_signal, su->arg))
        fprintf(stderr, "punch: cannot set up the event loop: %s\n", strerror(errno));
    else if ((rc = punch_driver_new(su->driver, *su->loop, &dc)) != 0)
        fprintf(stderr, "punch: %s\n", rc == PUNCH_ERR_INVAL
                                           ? "bad settings (is --name printable, without spaces?)"
                                           : strerror(errno));
    memset(dc.agent.secret_key, 0, PUNCH_KEY_LEN);
    su->server_text = cli->server;
    su->several_servers = cli->n_more_servers > 0;
    if (rc == 0 && punch_loop_timer_add(*su->loop, punch_clock_ms() + PUNCH_SILENT_SERVER_MS,
                                        on_silent_server, su, &su->silent_timer) != 0) {
        fprintf(stderr, "%s: cannot set a timer: %s\n", su->cmd, strerror(errno));
        rc = 1;
    }
    return rc ? 1 : 0;
}

void punch_agent_cli_stop(const punch_agent_cli_setup *su)
{
    punch_driver_free(*su->driver);
    punch_loop_free(*su->loop);
    punch_events_close(*su->events);
    *su->driver = NULL;
    *su->loop = NULL;
    *su->events = NULL;
}

int punch_agent_cli_target(const char *cmd, const char *text, char name[PUNCH_NAME_MAX + 1],
                           uint8_t key[PUNCH_KEY_LEN], bool *pinned)
{
    char buf[PUNCH_NAME_MAX + 1 + PUNCH_KEY_B64_LEN + 1];
    snprintf(buf, sizeof(buf), "%s", text);
    char *at = strrchr(buf, '@'); /* a key has no '@'; a name may */
    *pinned = false;
    if (at) {
        *at = '\0';
        if (punch_key_decode(at + 1, key) != 0)
            return punch_cli_usage_error(cmd, "'%s' is not a public key (base64, 44 characters)",
                                         at + 1);
        *pinned = true;
    }
    if (!punch_msg_valid_name(buf))
        return punch_cli_usage_error(cmd, "'%s' is not a peer name (1 to %d printable "
                                     "characters, no spaces or quotes)", buf, PUNCH_NAME_MAX);
    memcpy(name, buf, strlen(buf) + 1);
    return 0;
}

int punch_agent_cli_timeout(const char *cmd, const char *text, int *seconds)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (*text == '\0' || *end || errno || v < 1 || v > 86400)
        return punch_cli_usage_error(cmd, "--timeout: '%s' is not 1 to 86400 seconds", text);
    *seconds = (int)v;
    return 0;
}

void punch_agent_cli_goodbye(punch_driver *d, int peer)
{
    if (peer >= 0)
        punch_agent_close(punch_driver_agent(d), punch_clock_ms(), peer);
    punch_driver_flush(d);
}

void punch_agent_cli_finish(punch_loop *loop, int *exit_code, int code)
{
    *exit_code = code;
    punch_loop_stop(loop);
}

bool punch_agent_cli_closed_fine(const punch_event *ev, bool had_path)
{
    bool fine = had_path && strcmp(ev->closed.why, "peer closed") == 0;
    if (!fine)
        fprintf(stderr, "punch: %s: %s\n", ev->peer_name, ev->closed.why);
    return fine;
}

static const char *fmt(const punch_addr *a, char buf[PUNCH_ADDR_STRLEN])
{
    return a->family ? punch_addr_format(a, buf) : "";
}

void punch_agent_cli_tune(const punch_cli *cli, punch_agent_cfg *cfg)
{
    if (cli->open_ttl == 0)
        cfg->open_guard_ms = UINT32_MAX;
    else if (cli->open_ttl > 0)
        cfg->open_ttl = (uint8_t)cli->open_ttl;
    if (cli->no_birthday)
        cfg->flags |= PUNCH_AGENT_NO_BIRTHDAY;
    if (cli->no_aes)
        cfg->flags |= PUNCH_AGENT_NO_AES;
    if (cli->no_nat64)
        cfg->flags |= PUNCH_AGENT_NO_NAT64;
    cfg->nat64_prefix = cli->nat64_prefix;
    cfg->portmap = (uint8_t)cli->portmap;
}

static void report_turn(punch_events *events, const punch_event *ev)
{
    char a[PUNCH_ADDR_STRLEN], b[PUNCH_ADDR_STRLEN], c[PUNCH_ADDR_STRLEN];
    punch_events_emit(events, "turn",
                      "\"relayed\":\"%s\",\"mapped\":\"%s\",\"server\":\"%s\",\"offered\":%s",
                      fmt(&ev->turn.relayed, a), fmt(&ev->turn.mapped, b),
                      fmt(&ev->turn.server, c), ev->turn.offered ? "true" : "false");
    if (ev->turn.offered)
        punch_log(PUNCH_LOG_INFO, "the server passes on our relayed address %s to peers", a);
    else
        punch_log(PUNCH_LOG_INFO, "the TURN server %s relays for us at %s", c, a);
}

/* A path event, or the RTT event of a path told untimed: "rtt_ms" null
 * until its round trip is measured (SPEC.md §3). */
static void report_path(punch_events *events, punch_driver *d, const punch_event *ev)
{
    char a[PUNCH_ADDR_STRLEN], b[PUNCH_ADDR_STRLEN], rtt[24] = "null";
    const punch_event_path *p = ev->kind == PUNCH_EVENT_RTT ? &ev->rtt : &ev->path;
    punch_addr local;
    punch_driver_path_local(d, p, &local);
    if (p->timed)
        snprintf(rtt, sizeof(rtt), "%.1f", p->rtt_us / 1000.0);
    punch_events_emit(events, ev->kind == PUNCH_EVENT_RTT ? "rtt" : "path",
                      "\"peer\":\"%s\",\"kind\":\"%s\",\"technique\":\"%s\",\"local\":\"%s\","
                      "\"remote\":\"%s\",\"family\":\"%s\",\"rtt_ms\":%s,\"cipher\":\"%s\"",
                      ev->peer_name, punch_path_kind_name(p->kind),
                      punch_technique_name(p->technique), fmt(&local, a), fmt(&p->remote, b),
                      punch_family_name(p->remote.family), rtt, punch_cipher_name(p->cipher));
    punch_log(PUNCH_LOG_INFO, "%s: %s via %s to %s (rtt %s ms, %s)", ev->peer_name,
              punch_path_kind_name(p->kind), punch_technique_name(p->technique), b,
              p->timed ? rtt : "not measured yet", punch_cipher_name(p->cipher));
}

void punch_agent_cli_report(punch_events *events, const punch_addr *server, punch_driver *d,
                            const punch_event *ev)
{
    char a[PUNCH_ADDR_STRLEN], b[PUNCH_ADDR_STRLEN];
    switch (ev->kind) {
    case PUNCH_EVENT_REGISTERED: {
        /* With several servers, the one that took us (the one in use now);
         * over TCP, the address the connection went to. */
        if (ev->registered.server.family != PUNCH_AF_NONE)
            server = &ev->registered.server;
        if (punch_driver_tcp_server(d))
            server = punch_driver_tcp_server(d);
        /* The other family's NAT discovery (issue 16), when it ran. */
        char other[96] = "";
        if (ev->registered.other_nat)
            snprintf(other, sizeof(other),
                     ",\"other_family\":{\"family\":\"%s\",\"nat\":\"%s\",\"port_step\":%d}",
                     punch_family_name(ev->registered.other_family), ev->registered.other_nat,
                     ev->registered.other_port_step);
        punch_events_emit(events, "registered",
                          "\"server\":\"%s\",\"public\":\"%s\",\"transport\":\"%s\",\"nat\":\"%s\","
                          "\"port_step\":%d,\"nat_port\":%u,\"by_token\":%s,\"server_rtt_ms\":%u%s",
                          fmt(server, a), fmt(&ev->registered.public_addr, b), punch_driver_transport(d),
                          ev->registered.nat, ev->registered.port_step, ev->registered.nat_port,
                          ev->registered.by_token ? "true" : "false", ev->registered.server_rtt_ms,
                          other);
        punch_log(PUNCH_LOG_INFO, "registered at %s, public address %s", a, b);
        break;
    }
    case PUNCH_EVENT_INTRODUCED:
        punch_events_emit(events, "introduced", "\"peer\":\"%s\",\"public\":\"%s\"",
                          ev->peer_name, fmt(&ev->introduced.public_addr, a));
        break;
    case PUNCH_EVENT_PATH:
    case PUNCH_EVENT_RTT: report_path(events, d, ev); break;
    case PUNCH_EVENT_ATTEMPT:
        punch_events_emit(events, "attempt",
                          "\"peer\":\"%s\",\"technique\":\"%s\",\"result\":\"failed\","
                          "\"remote\":\"%s\",\"why\":\"%s\"",
                          ev->peer_name, punch_technique_name(ev->attempt.technique),
                          fmt(&ev->attempt.remote, a), ev->attempt.why);
        punch_log(PUNCH_LOG_DEBUG, "%s: %s to %s failed: %s", ev->peer_name,
                  punch_technique_name(ev->attempt.technique), a, ev->attempt.why);
        break;
    case PUNCH_EVENT_PORTMAP:
        punch_events_emit(events, "portmap",
                          "\"protocol\":\"%s\",\"external\":\"%s\",\"lifetime_s\":%u,"
                          "\"took_ms\":%u",
                          ev->portmap.proto, fmt(&ev->portmap.external, a),
                          ev->portmap.lifetime_s, ev->portmap.took_ms);
        punch_log(PUNCH_LOG_INFO, "the gateway mapped %s for us (%s, %u s, in %u ms)", a,
                  ev->portmap.proto, ev->portmap.lifetime_s, ev->portmap.took_ms);
        break;
    case PUNCH_EVENT_TURN: report_turn(events, ev); break;
    case PUNCH_EVENT_CLOSED:
        punch_events_emit(events, "closed", "\"peer\":\"%s\",\"reason\":\"%s\"", ev->peer_name,
                          ev->closed.why);
        break;
    case PUNCH_EVENT_REFUSED:
        fprintf(stderr, "punch: the server refused us: %s\n", ev->refused.why);
        break;
    case PUNCH_EVENT_DATA:
    case PUNCH_EVENT_SOCKETS:
    case PUNCH_EVENT_TCP_OFFER:
    case PUNCH_EVENT_TOKEN: /* kept by watch_event */
    case PUNCH_EVENT_PONG: /* punch ping says it */
        break;
    }
}
