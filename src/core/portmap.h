/* SPDX-License-Identifier: MIT */
/*
 * Port mapping (PUNCH_TECH_PORTMAP), the sans-I/O half: what to ask the
 * gateway and when, what the answers mean, and what to offer peers. The
 * agent holds one punch_portmap and calls these from a few hook lines;
 * the I/O half (src/io/portmap.c) speaks PCP, NAT-PMP and UPnP IGD.
 *
 * A round: in auto mode PCP (RFC 6887), then NAT-PMP (RFC 6886), then
 * UPnP IGD, each asked once by the I/O (which retransmits on its own); the
 * first mapping wins. A mapping is renewed at half its lifetime (RFC 6886
 * §3.3, RFC 6887 §11.2.1 both say so) with the protocol that made it; a
 * renewal that fails, or a mapping that expires, is dropped and a new
 * round starts. When no protocol gives a mapping, the round's failures are
 * told once (an ATTEMPT event) and a new round starts PORTMAP_RETRY_MS
 * later.
 */
#ifndef PUNCH_CORE_PORTMAP_H
#define PUNCH_CORE_PORTMAP_H

#include "punch/punch.h"

/* Asked for: two hours, what RFC 6886 §3.3 recommends. */
#define PUNCH_PORTMAP_LIFETIME_S 7200u
/* A gateway with nothing on offer is asked again this much later. */
#define PUNCH_PORTMAP_RETRY_MS (10u * 60u * 1000u)

typedef enum punch_portmap_state {
    PUNCH_PM_OFF = 0,
    PUNCH_PM_WANT,    /* a request is due */
    PUNCH_PM_ASKED,   /* the I/O is at it */
    PUNCH_PM_MAPPED,  /* we hold a mapping until expires_ms; renew at next_ms */
    PUNCH_PM_NONE,    /* nothing on offer; ask again at next_ms */
} punch_portmap_state;

typedef struct punch_portmap {
    punch_portmap_proto mode;      /* as configured */
    punch_portmap_state state;
    punch_portmap_proto trying;    /* the protocol of the request under way, or of the mapping */
    bool renewing;
    punch_addr external;           /* the mapping held; AF_NONE: none */
    uint32_t lifetime_s;
    uint8_t nonce[12];
    uint64_t started_ms;           /* this round's first request */
    uint64_t next_ms, expires_ms;
    char why[96];                  /* this round's failures so far */
} punch_portmap;

/* What punch_portmap_take asks of the agent. */
enum {
    PUNCH_PM_TELL = 0x1,           /* push *out (a PORTMAP or ATTEMPT event) */
    PUNCH_PM_READVERTISE = 0x2,    /* the endpoint to offer changed: register again */
};

/* mode: a punch_portmap_proto; nonce: 12 random bytes (PCP's, §11.1). */
void punch_portmap_init(punch_portmap *pm, uint8_t mode, const uint8_t nonce[12], uint64_t now);

/* 1 with *req when the gateway is to be asked now (then ASKED until the
 * answer is taken), else 0. */
int punch_portmap_poll(punch_portmap *pm, uint64_t now, punch_portmap_request *req);

/* The answer to the request under way (others are ignored). Returns
 * PUNCH_PM_* flags; with PUNCH_PM_TELL, *out is the event to push. */
unsigned punch_portmap_take(punch_portmap *pm, uint64_t now, const punch_portmap_result *res,
                            punch_event *out);

/* Time passed: a mapping past its lifetime is dropped. Returns
 * PUNCH_PM_READVERTISE when it was. */
unsigned punch_portmap_timeout(punch_portmap *pm, uint64_t now);

/* When punch_portmap_poll or punch_portmap_timeout may have work. */
uint64_t punch_portmap_next_timeout(const punch_portmap *pm);

/* Append the mapped endpoint to list (n used of cap; when full it takes
 * the last place): the private endpoints REGISTER carries. Returns how
 * many of the list's last entries are mapped ones (0 or 1). */
uint8_t punch_portmap_advertise(const punch_portmap *pm, punch_addr *list, size_t *n, size_t cap);

/* True while we hold a mapping: an address the peer's packets come from
 * that we never sent to came in through it (our NAT lets nothing else in
 * unasked). */
bool punch_portmap_held(const punch_portmap *pm);

/* 1 with *req the removal of the mapping held, 0 when none. */
int punch_portmap_release(punch_portmap *pm, punch_portmap_request *req);

#endif
