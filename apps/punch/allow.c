/* SPDX-License-Identifier: MIT */
/* Who may connect to a listener: see allow.h. */
#include "allow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_cli.h"
#include "common/cli.h"
#include "common/known_peers.h"
#include "io/log.h"

#define LOGGED_REFUSALS 16

static int have_list(punch_allow *a, const char *cmd)
{
    if (!a->list && !(a->list = calloc(1, sizeof(*a->list)))) {
        fprintf(stderr, "%s: out of memory\n", cmd);
        return 1;
    }
    if (a->any)
        return punch_cli_usage_error(cmd, "--any-peer lets anyone in: not with --peer or "
                                          "--allowed-peers");
    return 0;
}

int punch_allow_peer(punch_allow *a, const char *cmd, const char *text)
{
    int rc = have_list(a, cmd);
    if (rc != 0)
        return rc;
    punch_peer_entry e;
    const char *why;
    if (strpbrk(text, " \t\r\n"))
        return punch_cli_usage_error(cmd, "--peer: '%s' is not NAME@KEY (no spaces)", text);
    if (!strchr(text, '@'))
        return punch_cli_usage_error(cmd, "--peer: '%s' has no key: give NAME@KEY (KEY as "
                                          "'punch keygen' prints it)", text);
    if (punch_peer_entry_parse(text, strlen(text), &e, &why) != 0)
        return punch_cli_usage_error(cmd, "--peer: '%s': %s", text, why);
    if (a->list->n == PUNCH_PEER_LIST_MAX)
        return punch_cli_usage_error(cmd, "--peer: '%s' is one too many (at most %d peers)",
                                     text, PUNCH_PEER_LIST_MAX);
    a->list->e[a->list->n++] = e;
    return 0;
}

int punch_allow_file(punch_allow *a, const char *cmd, const char *path)
{
    int rc = have_list(a, cmd);
    if (rc != 0)
        return rc;
    punch_peer_list *file = malloc(sizeof(*file));
    char err[PUNCH_FILE_ERRLEN];
    if (!file || (rc = punch_peer_file_load(path, 0, file, err)) != 0) {
        fprintf(stderr, "%s: --allowed-peers: %s\n", cmd, file ? err : "out of memory");
        free(file);
        return rc == PUNCH_ERR_MALFORMED || rc == PUNCH_ERR_LIMIT ? 2 : 1;
    }
    if (a->list->n + file->n > PUNCH_PEER_LIST_MAX) {
        fprintf(stderr, "%s: --allowed-peers: %s: more than %d peers in all\n", cmd, path,
                PUNCH_PEER_LIST_MAX);
        free(file);
        return 2;
    }
    memcpy(a->list->e + a->list->n, file->e, file->n * sizeof(file->e[0]));
    a->list->n += file->n;
    free(file);
    return 0;
}

int punch_allow_any(punch_allow *a, const char *cmd)
{
    a->any = true;
    return a->list ? punch_cli_usage_error(cmd, "--any-peer lets anyone in: not with --peer or "
                                                "--allowed-peers")
                   : 0;
}

int punch_allow_option_take(punch_allow *a, const char *cmd, bool listening, int code,
                            const char *arg)
{
    if (!listening)
        return punch_cli_usage_error(cmd, "%s is for listen (who may connect to us)",
                                     code == 'P'   ? "--peer"
                                     : code == 'A' ? "--allowed-peers"
                                                   : "--any-peer");
    return code == 'P'   ? punch_allow_peer(a, cmd, arg)
           : code == 'A' ? punch_allow_file(a, cmd, arg)
                         : punch_allow_any(a, cmd);
}

int punch_allow_required(const punch_allow *a, const char *cmd, const char *what)
{
    if (a->any || a->list)
        return 0;
    fprintf(stderr, "%s: %s needs to know who may connect: add --peer NAME@KEY or "
                    "--allowed-peers FILE, or --any-peer to let anyone in\n", cmd, what);
    return 2;
}

const char *punch_allow_admit(const punch_allow *a, const char *name,
                              const uint8_t key[PUNCH_KEY_BYTES])
{
    if (!a->list || punch_peer_list_find(a->list, name, key) >= 0)
        return NULL;
    return punch_peer_list_find(a->list, name, NULL) >= 0 ? "not the key allowed for this name"
                                                          : "not an allowed peer";
}

bool punch_allow_introduced(punch_allow *a, punch_events *events, const char *known_path,
                            const punch_event *ev)
{
    const char *why = punch_allow_admit(a, ev->peer_name, ev->peer_key);
    if (!why && !a->list && !punch_agent_cli_trust(known_path, ev))
        why = "its key changed (known_peers)";
    if (why)
        punch_allow_refused(a, events, ev, why);
    return !why;
}

void punch_allow_refused(punch_allow *a, punch_events *events, const punch_event *ev,
                         const char *reason)
{
    char key[PUNCH_KEY_B64_LEN];
    punch_key_encode(ev->peer_key, key);
    a->refused++;
    punch_events_emit(events, "peer-refused", "\"peer\":\"%s\",\"key\":\"%s\",\"reason\":\"%s\"",
                      ev->peer_name, key, reason);
    /* Strangers may knock often (punchd lets a source CONNECT 200 times a
     * second): the log hears the first ones, the events and counters all. */
    if (a->refused <= LOGGED_REFUSALS)
        punch_log(PUNCH_LOG_WARN, "refusing %s: %s (key %s)%s", ev->peer_name, reason, key,
                  a->refused == LOGGED_REFUSALS ? "; further ones only in events and counters"
                                                : "");
}

void punch_allow_free(punch_allow *a)
{
    free(a->list);
    a->list = NULL;
}
