/* SPDX-License-Identifier: MIT */
/*
 * What every punch command that runs an agent needs: the server, the
 * identity, known_peers (trust on first use), the event loop and the
 * driver, and the SPEC.md §3 events of the agent's events. Shared by
 * session.c (listen, connect, forward) and vpn.c.
 */
#ifndef PUNCH_APPS_AGENT_CLI_H
#define PUNCH_APPS_AGENT_CLI_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "crypto/identity.h"
#include "driver/driver.h"
#include "common/events.h"
#include "io/loop.h"
#include "punch/punch.h"
#include "punch_cli.h"

#define PUNCH_DEFAULT_PORT 3478

/* The first --server resolved into *server (its first address; the
 * other servers are resolved by punch_agent_cli_start). Returns 0, 2
 * (usage error: no --server, or one badly written) or 1 (the first does
 * not resolve), with a message on stderr. */
int punch_agent_cli_server(const punch_cli *cli, const char *program, punch_addr *server);

/* The identity key loaded (created on first use) into *id, and the
 * known_peers path beside it. Returns 0 or 1 with a message on stderr. */
int punch_agent_cli_identity(const punch_cli *cli, const char *program, punch_identity *id,
                             char known_path[PATH_MAX]);

/* Trust on first use (SPEC.md §4), at the introduction: the key the
 * server gives for a peer's name must be the one met before. False, after
 * a loud message on stderr, when the key changed. A new name passes and is
 * not written down yet: see punch_agent_cli_learn. */
bool punch_agent_cli_trust(const char *known_path, const punch_event *ev);

/* At a path to the peer (its handshake completed: it holds the key): a
 * new name's key is remembered in known_peers. Strangers who never finish
 * a handshake are never written down, so a crowd of them neither stalls a
 * listener (a write and an fsync each) nor fills known_peers (issue 12).
 * False, after the same loud message, when another punch remembered
 * another key for the name meanwhile. */
bool punch_agent_cli_learn(const char *known_path, const punch_event *ev);

/* The global options that tune the agent (--open-ttl, --no-birthday). */
void punch_agent_cli_tune(const punch_cli *cli, punch_agent_cfg *cfg);

/* How a command runs its agent, and where punch_agent_cli_start puts what
 * it makes. */
typedef struct punch_agent_cli_setup {
    const char *cmd;              /* for messages: "punch", "punch vpn listen" */
    bool listening;               /* the name defaults to this host's */
    uint32_t flags;               /* PUNCH_AGENT_* */
    const int *signals;           /* handled by on_signal */
    size_t n_signals;
    punch_loop_signal_fn on_signal;
    punch_driver_event_fn on_event;
    void *arg;                    /* of both */
    char *known_path;             /* out: PATH_MAX bytes */
    char token_path[PATH_MAX];    /* kept: this server's token file ("": none) */
    punch_events **events;        /* out, as the three below: NULL until made */
    punch_loop **loop;
    punch_driver **driver;
    /* Kept by punch_agent_cli_start: whether punchd answered yet, and the
     * timer that says so on stderr when it has not within
     * PUNCH_SILENT_SERVER_MS. */
    const char *server_text;
    bool several_servers;         /* --server given more than once */
    bool registered;
    punch_loop_timer silent_timer;
} punch_agent_cli_setup;

/* How long a server may stay silent before the user hears of it. */
#define PUNCH_SILENT_SERVER_MS 5000

/* The identity (created on first use), the --events file, the loop with
 * its signals and the driver of an agent registering at server as --name.
 * Returns 0, or 1 with a message on stderr; either way what was made is in
 * the outputs, for punch_agent_cli_stop. */
int punch_agent_cli_start(const punch_cli *cli, const punch_addr *server,
                          punch_agent_cli_setup *setup);
void punch_agent_cli_stop(const punch_agent_cli_setup *setup);

/* PEER[@PUBKEY] of connect, forward and vpn connect: the name into
 * name, the key (when given) into key with *pinned set. Returns 0 or 2
 * (a usage error naming the bad input). */
int punch_agent_cli_target(const char *cmd, const char *text, char name[PUNCH_NAME_MAX + 1],
                           uint8_t key[PUNCH_KEY_LEN], bool *pinned);

/* --timeout SECONDS (1 to 86400). Returns 0 or 2. */
int punch_agent_cli_timeout(const char *cmd, const char *text, int *seconds);

/* How a command ends: *exit_code = code, and the loop stops. */
void punch_agent_cli_finish(punch_loop *loop, int *exit_code, int code);

/* Say goodbye to peer (when >= 0: it hears we close) and send what is
 * queued: how a command stops. */
void punch_agent_cli_goodbye(punch_driver *d, int peer);

/* Whether a CLOSED event is the peer's own goodbye after a path was up (an
 * ending, exit 0); otherwise the reason is said on stderr. */
bool punch_agent_cli_closed_fine(const punch_event *ev, bool had_path);

/* Write the SPEC.md §3 event (registered, introduced, path, attempt,
 * closed) and the log line of an agent event, and say a REFUSED on
 * stderr; what to do about any of them is the caller's. */
void punch_agent_cli_report(punch_events *events, const punch_addr *server, punch_driver *d,
                            const punch_event *ev);

#endif
