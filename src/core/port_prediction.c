/* SPDX-License-Identifier: MIT */
/*
 * UDP port number prediction (draft §3.4): a peer whose NAT allocates a
 * new public port per destination, `step` after the latest (as NAT
 * discovery found, discovery.c), is probed first at its next
 * PREDICT_WINDOW ports, in order, before anything else new, so that two
 * such NATs allocate in step with each other.
 */
#include "core/agent_internal.h"

#define PREDICT_WINDOW 8

/* The peer's next ports, from what its INTRODUCE says of its NAT, at pub
 * (its public address, or that synthesized for our NAT64). */
void add_predicted_candidates(peer *p, const punch_msg *m, const punch_addr *pub, uint64_t now)
{
    int16_t step = (int16_t)m->nat_step;
    if (!step || m->nat_mapping < PUNCH_MSG_NAT_ADM)
        return;
    for (int k = 1; k <= PREDICT_WINDOW; k++) {
        punch_addr at = *pub;
        at.port = (uint16_t)(m->nat_port + k * step);
        if (at.port)
            add_candidate(p, &at, PUNCH_TECH_PORT_PREDICTION, now);
    }
}

/* Our own NAT maps per destination with a known step: the peer reaches
 * our public endpoint only by predicting our port. */
bool our_port_predicted(const punch_agent *a, uint8_t family)
{
    const nat_behaviour *nat = family == a->cfg.server.family ? &a->nat : &a->nat_other;
    return nat->mapping >= PUNCH_MSG_NAT_ADM && nat->step;
}
