/*
 * The ready-made I/O driver of libpunch: one punch_agent on one UDP socket,
 * run by a punch_loop (or by the caller's own loop through the fd and the
 * deadline). It binds the socket, finds the machine's private endpoints
 * (every interface address, draft §3.3.2 and §4.2), feeds received
 * datagrams and time to the agent, sends what the agent queues and hands
 * the agent's events to a callback.
 */
#ifndef PUNCH_IO_DRIVER_H
#define PUNCH_IO_DRIVER_H

#include "io/loop.h"
#include "punch/punch.h"

typedef struct punch_driver punch_driver;
typedef void (*punch_driver_event_fn)(void *arg, punch_driver *d, const punch_event *ev);

typedef struct punch_driver_cfg {
    punch_agent_cfg agent;   /* local[] is filled from the interfaces when n_local is 0;
                                random defaults to the kernel's CSPRNG */
    punch_addr bind;         /* default: any address of the server's family, port 0 */
    punch_driver_event_fn on_event;
    void *arg;
} punch_driver_cfg;

/* Returns 0, PUNCH_ERR_IO (socket; errno set), PUNCH_ERR_NOMEM or the
 * agent's PUNCH_ERR_INVAL. */
int punch_driver_new(punch_driver **d, punch_loop *loop, const punch_driver_cfg *cfg);
void punch_driver_free(punch_driver *d);

punch_agent *punch_driver_agent(punch_driver *d);
/* Send what the agent queued and set the loop's timer to its next deadline:
 * call after using the agent directly (connect, send, close). */
void punch_driver_flush(punch_driver *d);
/* The socket's address as bound. */
const punch_addr *punch_driver_local(const punch_driver *d);

/* The machine's interface addresses of this family (loopback excluded),
 * with port. Returns how many were written (at most cap). */
size_t punch_local_addresses(uint8_t family, uint16_t port, punch_addr *out, size_t cap);

#endif
