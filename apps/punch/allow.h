/* SPDX-License-Identifier: MIT */
/*
 * Who may connect to a listener (punch listen, punch vpn listen): the
 * peers given by name and key with --peer NAME@KEY and --allowed-peers
 * FILE, or anyone with --any-peer. A listener that exposes something
 * (listen --allow-forward, vpn listen) must be given one of them. A peer
 * not on the list is refused at its introduction, before a handshake can
 * complete and so before any data: said on stderr, in a peer-refused
 * event, and counted.
 */
#ifndef PUNCH_APPS_ALLOW_H
#define PUNCH_APPS_ALLOW_H

#include <stdbool.h>
#include <stdint.h>

#include "crypto/peer_list.h"
#include "common/events.h"
#include "punch/punch.h"

typedef struct punch_allow {
    bool any;               /* --any-peer */
    punch_peer_list *list;  /* --peer and --allowed-peers; NULL: none given */
    uint64_t refused;       /* peers refused, by the list or by the caller */
} punch_allow;

#define PUNCH_ALLOW_HELP \
    "--peer NAME@KEY (repeatable), --allowed-peers FILE: only these peers may\n" \
    "connect: the name and the key must both match (KEY as 'punch keygen' prints\n" \
    "it; FILE: one 'NAME KEY' or 'NAME@KEY' a line, blank lines allowed, no\n" \
    "comments, at most 1024). Anyone else is refused before any data flows\n" \
    "(a peer-refused event). --any-peer: anyone who can reach the server may\n" \
    "connect (their key is learnt as for 'punch connect', known_peers).\n"

/* --peer NAME@KEY, --allowed-peers FILE, --any-peer. Each returns 0, 2 (a
 * usage error naming the bad input, or a bad line of FILE named as
 * FILE:LINE) or 1 (FILE cannot be read), with the message on stderr. */
int punch_allow_peer(punch_allow *a, const char *cmd, const char *text);
int punch_allow_file(punch_allow *a, const char *cmd, const char *path);
int punch_allow_any(punch_allow *a, const char *cmd);
/* The getopt codes of the three options: 'P' --peer, 'A' --allowed-peers,
 * 'Y' --any-peer (for the option tables); punch_allow_option_take applies
 * one (returns as the three above; a usage error when not listening). */
#define PUNCH_ALLOW_OPTIONS                                                               \
    {"peer", required_argument, NULL, 'P'}, {"allowed-peers", required_argument, NULL, 'A'}, \
        {"any-peer", no_argument, NULL, 'Y'}
int punch_allow_option_take(punch_allow *a, const char *cmd, bool listening, int code,
                            const char *arg);

/* After the options: 0, or 2 with one line saying what to add when
 * required (a listener exposing what) has neither a list nor --any-peer. */
int punch_allow_required(const punch_allow *a, const char *cmd, const char *what);

/* Whether this peer may connect: NULL, or why not. */
const char *punch_allow_admit(const punch_allow *a, const char *name,
                              const uint8_t key[PUNCH_KEY_BYTES]);

/* A listener's check of an introduced peer: on the list, or with
 * --any-peer (or no list) its key as known_peers remembers it (trust on
 * first use). False after refusing it (punch_allow_refused). */
bool punch_allow_introduced(punch_allow *a, punch_events *events, const char *known_path,
                            const punch_event *ev);

/* A refused peer: the warning, the peer-refused event, the count. */
void punch_allow_refused(punch_allow *a, punch_events *events, const punch_event *ev,
                         const char *reason);

void punch_allow_free(punch_allow *a);

#endif
