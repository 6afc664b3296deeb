/* Server, identity, trust and events of a command running an agent: see agent_cli.h. */
#include "agent_cli.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "io/cli.h"
#include "io/keyfile.h"
#include "io/known_peers.h"
#include "io/log.h"
#include "io/net.h"

int punch_agent_cli_server(const punch_cli *cli, const char *program, punch_addr *server)
{
    if (!cli->server || !cli->server[0])
        return punch_cli_usage_error(program, "no server: give --server HOST[:PORT] or set "
                                              "PUNCH_SERVER");
    int rc = punch_addr_resolve(cli->server, PUNCH_DEFAULT_PORT, server);
    if (rc == PUNCH_ERR_INVAL)
        return punch_cli_usage_error(program, "--server: '%s' is not HOST[:PORT]", cli->server);
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

bool punch_agent_cli_trust(const char *known_path, const punch_event *ev)
{
    uint8_t known[PUNCH_KEY_LEN];
    char have[PUNCH_KEY_B64_LEN], got[PUNCH_KEY_B64_LEN];
    punch_key_encode(ev->peer_key, got);
    if (punch_known_peers_find(known_path, ev->peer_name, known) == 0) {
        if (memcmp(known, ev->peer_key, PUNCH_KEY_LEN) == 0)
            return true;
        punch_key_encode(known, have);
        fprintf(stderr,
                "punch: REFUSING %s: its key changed! known %s, the server now says %s.\n"
                "punch: someone may be impersonating it. If the change is expected, remove\n"
                "punch: the line for %s from %s.\n",
                ev->peer_name, have, got, ev->peer_name, known_path);
        return false;
    }
    if (punch_known_peers_add(known_path, ev->peer_name, ev->peer_key) == 0)
        punch_log(PUNCH_LOG_INFO, "learned %s's key %s (kept in %s)", ev->peer_name, got,
                  known_path);
    else
        punch_log(PUNCH_LOG_WARN, "cannot remember %s's key in %s: %s", ev->peer_name,
                  known_path, strerror(errno));
    return true;
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
    cfg->portmap = (uint8_t)cli->portmap;
}

void punch_agent_cli_report(punch_events *events, const punch_addr *server, punch_driver *d,
                            const punch_event *ev)
{
    char a[PUNCH_ADDR_STRLEN], b[PUNCH_ADDR_STRLEN];
    switch (ev->kind) {
    case PUNCH_EVENT_REGISTERED:
        punch_events_emit(events, "registered",
                          "\"server\":\"%s\",\"public\":\"%s\",\"transport\":\"%s\",\"nat\":\"%s\","
                          "\"port_step\":%d,\"nat_port\":%u",
                          fmt(server, a), fmt(&ev->remote, b), punch_driver_transport(d), ev->nat,
                          ev->port_step, ev->nat_port);
        punch_log(PUNCH_LOG_INFO, "registered at %s, public address %s", a, b);
        break;
    case PUNCH_EVENT_INTRODUCED:
        punch_events_emit(events, "introduced", "\"peer\":\"%s\",\"public\":\"%s\"",
                          ev->peer_name, fmt(&ev->remote, a));
        break;
    case PUNCH_EVENT_PATH: {
        punch_addr local;
        punch_driver_path_local(d, ev, &local);
        punch_events_emit(events, "path",
                          "\"peer\":\"%s\",\"kind\":\"%s\",\"technique\":\"%s\",\"local\":\"%s\","
                          "\"remote\":\"%s\",\"rtt_ms\":%.1f",
                          ev->peer_name, punch_path_kind_name(ev->path_kind),
                          punch_technique_name(ev->technique), fmt(&local, a),
                          fmt(&ev->remote, b), ev->rtt_us / 1000.0);
        punch_log(PUNCH_LOG_INFO, "%s: %s via %s to %s (rtt %.1f ms)", ev->peer_name,
                  punch_path_kind_name(ev->path_kind), punch_technique_name(ev->technique), b,
                  ev->rtt_us / 1000.0);
        break;
    }
    case PUNCH_EVENT_ATTEMPT:
        punch_events_emit(events, "attempt",
                          "\"peer\":\"%s\",\"technique\":\"%s\",\"result\":\"failed\","
                          "\"remote\":\"%s\",\"why\":\"%s\"",
                          ev->peer_name, punch_technique_name(ev->technique),
                          fmt(&ev->remote, a), ev->why);
        punch_log(PUNCH_LOG_DEBUG, "%s: %s to %s failed: %s", ev->peer_name,
                  punch_technique_name(ev->technique), a, ev->why);
        break;
    case PUNCH_EVENT_PORTMAP:
        punch_events_emit(events, "portmap",
                          "\"protocol\":\"%s\",\"external\":\"%s\",\"lifetime_s\":%u,"
                          "\"took_ms\":%u",
                          ev->portmap, fmt(&ev->remote, a), ev->lifetime_s, ev->took_ms);
        punch_log(PUNCH_LOG_INFO, "the gateway mapped %s for us (%s, %u s, in %u ms)", a,
                  ev->portmap, ev->lifetime_s, ev->took_ms);
        break;
    case PUNCH_EVENT_CLOSED:
        punch_events_emit(events, "closed", "\"peer\":\"%s\",\"reason\":\"%s\"", ev->peer_name,
                          ev->why);
        break;
    case PUNCH_EVENT_DATA:
    case PUNCH_EVENT_REFUSED:
    case PUNCH_EVENT_SOCKETS:
    case PUNCH_EVENT_TCP_OFFER:
        break;
    }
}
