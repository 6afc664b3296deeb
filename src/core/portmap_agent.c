/* SPDX-License-Identifier: MIT */
/* The agent's side of port mapping (technique portmap, draft §4.5's
 * "midcom" as routers offer it today): portmap.c decides what to ask the
 * router and when; this file gives it the agent's timer and public calls.
 * The driver asks the router and hands back the answers. */
#include "core/agent_internal.h"

uint64_t portmap_deadline(const punch_agent *a, int id)
{
    (void)id;
    return punch_portmap_next_timeout(&a->portmap);
}

void portmap_timeout(punch_agent *a, uint64_t now, int id)
{
    (void)id;
    if (punch_portmap_timeout(&a->portmap, now) & PUNCH_PM_READVERTISE)
        reregister(a, now);
}

int punch_agent_poll_portmap(punch_agent *a, uint64_t now, punch_portmap_request *req)
{
    return a && req ? punch_portmap_poll(&a->portmap, now, req) : 0;
}

void punch_agent_portmap_result(punch_agent *a, uint64_t now, const punch_portmap_result *res)
{
    punch_event out;
    if (!a || !res)
        return;
    unsigned what = punch_portmap_take(&a->portmap, now, res, &out);
    if (what & PUNCH_PM_TELL)
        push_event(a, out.kind, -1)->e = out;
    if (what & PUNCH_PM_READVERTISE)
        reregister(a, now);
}

int punch_agent_portmap_release(punch_agent *a, punch_portmap_request *req)
{
    return a && req ? punch_portmap_release(&a->portmap, req) : 0;
}
