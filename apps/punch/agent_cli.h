/*
 * What every punch command that runs an agent needs: the server, the
 * identity, known_peers (trust on first use) and the SPEC.md §3 events of
 * the agent's events. punch vpn uses these; session.c (listen/connect) has
 * the same code inline and can switch to them.
 */
#ifndef PUNCH_APPS_AGENT_CLI_H
#define PUNCH_APPS_AGENT_CLI_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "crypto/identity.h"
#include "driver/driver.h"
#include "common/events.h"
#include "punch/punch.h"
#include "punch_cli.h"

#define PUNCH_DEFAULT_PORT 3478

/* --server resolved into *server. Returns 0, 2 (usage error: no or bad
 * --server) or 1 (does not resolve), with a message on stderr. */
int punch_agent_cli_server(const punch_cli *cli, const char *program, punch_addr *server);

/* The identity key loaded (created on first use) into *id, and the
 * known_peers path beside it. Returns 0 or 1 with a message on stderr. */
int punch_agent_cli_identity(const punch_cli *cli, const char *program, punch_identity *id,
                             char known_path[PATH_MAX]);

/* Trust on first use (SPEC.md §4): the key the server gives for a peer's
 * name must be the one met before; a new name's key is remembered. False,
 * after a loud message on stderr, when the key changed. */
bool punch_agent_cli_trust(const char *known_path, const punch_event *ev);

/* Write the SPEC.md §3 event (registered, introduced, path, attempt,
 * closed) and the log line of an agent event; DATA and REFUSED are the
 * caller's. */
/* The global options that tune the agent (--open-ttl, --no-birthday). */
void punch_agent_cli_tune(const punch_cli *cli, punch_agent_cfg *cfg);

void punch_agent_cli_report(punch_events *events, const punch_addr *server, punch_driver *d,
                            const punch_event *ev);

#endif
