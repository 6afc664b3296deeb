/* SPDX-License-Identifier: MIT */
/*
 * Readiness for systemd's Type=notify (sd_notify(3)): a datagram of
 * "KEY=VALUE" lines to the AF_UNIX socket named by $NOTIFY_SOCKET (a path,
 * or "@name" in the abstract namespace). The protocol is a stable,
 * documented interface of systemd; these few lines keep punchd from
 * linking libsystemd for it. Without NOTIFY_SOCKET nothing is sent.
 */
#ifndef PUNCH_PUNCHD_NOTIFY_H
#define PUNCH_PUNCHD_NOTIFY_H

/* Send state ("READY=1", "RELOADING=1", "STOPPING=1", "STATUS=..."). Returns
 * 0 (sent, or no NOTIFY_SOCKET) or -1 with errno set (EINVAL: a
 * NOTIFY_SOCKET that is not an absolute path or "@name"). */
int punchd_notify(const char *state);

#endif
