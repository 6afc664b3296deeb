/* SPDX-License-Identifier: MIT */
/*
 * Port mapping, the I/O half: talks to the gateway for the agent's
 * requests (punch_agent_poll_portmap) with PCP (our codec, src/wire/pcp.c),
 * NAT-PMP (libnatpmp) and UPnP IGD (libminiupnpc). Their calls block (UPnP
 * discovery alone waits half a second), so each request runs in a thread
 * of its own and its answer comes back to the loop through a pipe; the
 * loop never waits. The gateway is the default route's (IPv4,
 * /proc/net/route).
 */
#ifndef PUNCH_DRIVER_PORTMAP_H
#define PUNCH_DRIVER_PORTMAP_H

#include "io/loop.h"
#include "punch/punch.h"

typedef struct punch_portmap_io punch_portmap_io;

/* Serve agent's requests for a mapping of UDP port `port`; after each
 * answer handed to the agent, flush(arg) (the driver sends what the agent
 * queued and sets its timer). Returns 0, PUNCH_ERR_NOMEM or PUNCH_ERR_IO. */
int punch_portmap_io_new(punch_portmap_io **io, punch_loop *loop, punch_agent *agent,
                         uint16_t port, void (*flush)(void *arg), void *arg);
/* Start the agent's next request, if it has one and none is under way.
 * NULL-safe. */
void punch_portmap_io_kick(punch_portmap_io *io);
/* Stop a request under way (waiting 30 ms for it; one that cannot stop,
 * a UPnP exchange, is left to finish and free on its own), remove the
 * mapping held if the gateway answers within 60 ms (UPnP: only at the
 * gateway found before), and free. At most about 100 ms. NULL-safe. */
void punch_portmap_io_free(punch_portmap_io *io);

/* True when no gateway can stand between us and the server: it is on
 * loopback (tests, a server on this machine). The driver asks for no
 * mapping then. */
bool punch_portmap_pointless(const punch_addr *server);

/* Run one request now, blocking: internal port `port`. */
void punch_portmap_run(const punch_portmap_request *req, uint16_t port,
                       punch_portmap_result *res);

/* What the gateway offers (punch natcheck): each protocol asked once. */
typedef struct punch_portmap_offer {
    punch_addr gateway;            /* AF_NONE: no default route */
    bool pcp, natpmp, upnp;
    punch_addr external;           /* the first external address named; AF_NONE: none */
    uint32_t pcp_ms, natpmp_ms, upnp_ms; /* how long each took to answer or give up */
} punch_portmap_offer;
void punch_portmap_probe(punch_portmap_offer *out);

#endif
