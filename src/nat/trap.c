/* SPDX-License-Identifier: MIT */
/*
 * Linux's conntrack trap, modelled (issue 10). A Linux router with no input
 * firewall takes an unsolicited packet to its public address for itself:
 * conntrack confirms an entry for it (remote -> our public endpoint) even
 * though nothing there answers. A later outbound flow whose reply would be
 * that same tuple cannot have the port (nf_nat_used_tuple), so the NAT
 * gives the flow another one, at random (nf_nat_l4proto_unique_tuple picks
 * a random offset for SNAT), and the peer, which filters by endpoint,
 * drops what comes from it. The entry lives as long as the remote keeps
 * sending to it: nf_conntrack_udp_timeout, 30 s, from its last packet.
 *
 * A small table of such entries, searched linearly: a trap is made by a
 * dropped packet, looked for only when a flow is new.
 */
#include <stdlib.h>

#include "nat/nat_internal.h"

/* Linux nf_conntrack_udp_timeout: an unreplied entry lives 30 s. */
#define TRAP_TIMEOUT_MS 30000
/* Many-port probing sends 1,024 probes to ports nothing has opened. */
#define TRAP_CAPACITY 2048

int trap_table_new(punch_nat *n)
{
    if (!n->cfg.conntrack_trap)
        return 0;
    n->traps = calloc(TRAP_CAPACITY, sizeof(*n->traps));
    return n->traps ? 0 : PUNCH_ERR_NOMEM;
}

static trap_entry *trap_find(const punch_nat *n, uint8_t proto, const punch_addr *remote,
                             const punch_addr *pub)
{
    for (size_t i = 0; i < n->n_traps; i++) {
        trap_entry *t = &n->traps[i];
        if (t->proto == proto && punch_addr_equal(&t->remote, remote) &&
            punch_addr_equal(&t->pub, pub))
            return t;
    }
    return NULL;
}

/* The slot for a new entry: a free one, else one that expired, else the
 * one closest to expiry (conntrack drops early too when full). */
static trap_entry *trap_slot(punch_nat *n, uint64_t now)
{
    if (n->n_traps < TRAP_CAPACITY)
        return &n->traps[n->n_traps++];
    trap_entry *oldest = &n->traps[0];
    for (size_t i = 0; i < n->n_traps && oldest->expires > now; i++)
        if (n->traps[i].expires < oldest->expires)
            oldest = &n->traps[i];
    return oldest;
}

void trap_note(punch_nat *n, uint64_t now, uint8_t proto, const punch_addr *remote,
               const punch_addr *pub)
{
    if (!n->traps || proto != PUNCH_IP_UDP)
        return;
    trap_entry *t = trap_find(n, proto, remote, pub);
    if (!t) {
        t = trap_slot(n, now);
        t->proto = proto;
        t->remote = *remote;
        t->pub = *pub;
        n->counters.traps_created++;
    }
    t->expires = now + TRAP_TIMEOUT_MS;
}

bool trap_holds(const punch_nat *n, uint64_t now, uint8_t proto, const punch_addr *remote,
                const punch_addr *pub)
{
    if (!n->traps || proto != PUNCH_IP_UDP)
        return false;
    const trap_entry *t = trap_find(n, proto, remote, pub);
    return t && t->expires > now;
}
