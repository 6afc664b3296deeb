/* SPDX-License-Identifier: MIT */
/*
 * The agent's side of a standard TURN server (technique turn, punch --turn,
 * issue 15): turn.c speaks TURN; this file starts it when cfg.turn_server
 * is set, sends its control messages from the main socket, hands it the
 * TURN server's datagrams, runs its timer, and tells the relayed address
 * (PUNCH_EVENT_TURN) or why there is none (an ATTEMPT of technique turn).
 *
 * Not yet built on it: the relayed address offered to peers through
 * punchd's introduction, the peers' data through the allocation, and the
 * move from it to a direct path. Data a peer sends to the relayed address
 * is counted as dropped until then.
 */
#include "core/agent_internal.h"

#include <stdlib.h>
#include <string.h>

static void turn_flush(punch_agent *a)
{
    uint8_t buf[PUNCH_TURN_MSG_MAX];
    size_t len;
    while (punch_turn_poll_transmit(a->turn, buf, sizeof(buf), &len) == 1) {
        uint8_t *out = push_tx(a, MAIN_SOCKET, &a->turn->cfg.server, 0, len);
        if (out)
            memcpy(out, buf, len);
    }
}

/* Tell what changed: a (new) relayed address, or the allocation failing. */
static void turn_tell(punch_agent *a)
{
    const punch_turn *t = a->turn;
    if (t->state == PUNCH_TURN_ALLOCATED && !punch_addr_equal(&t->relayed, &a->turn_told)) {
        a->turn_told = t->relayed;
        ev *e = push_event(a, PUNCH_EVENT_TURN, -1);
        e->e.turn = (punch_event_turn){.relayed = t->relayed, .mapped = t->mapped,
                                       .server = t->cfg.server};
    } else if (t->state == PUNCH_TURN_FAILED && !a->turn_failed_told) {
        a->turn_failed_told = true;
        candidate tried = {.addr = t->cfg.server, .technique = PUNCH_TECH_TURN};
        tell_attempt(a, -1, &tried, "%s", t->why);
    }
}

int turn_agent_start(punch_agent *a, uint64_t now)
{
    if (a->cfg.turn_server.family == PUNCH_AF_NONE)
        return 0;
    punch_turn_cfg tc = {.server = a->cfg.turn_server, .username = a->cfg.turn_username,
                         .password = a->cfg.turn_password, .random = a->cfg.random,
                         .random_ctx = a->cfg.random_ctx};
    a->cfg.turn_username = a->cfg.turn_password = NULL; /* the caller's: copied */
    if (!(a->turn = calloc(1, sizeof(*a->turn))))
        return PUNCH_ERR_NOMEM;
    int rc = punch_turn_init(a->turn, &tc, now);
    if (rc == 0)
        turn_flush(a);
    return rc;
}

void turn_agent_free(punch_agent *a)
{
    if (!a->turn)
        return;
    volatile uint8_t *p = (volatile uint8_t *)a->turn; /* the password and its key */
    for (size_t i = 0; i < sizeof(*a->turn); i++)
        p[i] = 0;
    free(a->turn);
    a->turn = NULL;
}

bool turn_agent_on_datagram(punch_agent *a, uint64_t now, const punch_addr *src,
                            const uint8_t *data, size_t len)
{
    if (!a->turn || !punch_addr_equal(src, &a->turn->cfg.server) ||
        !punch_turn_is_turn(data, len))
        return false;
    punch_addr from;
    const uint8_t *payload;
    size_t payload_len;
    uint64_t dropped = a->turn->dropped;
    if (punch_turn_handle(a->turn, now, data, len, &from, &payload, &payload_len) == 1)
        a->dropped++; /* a peer's data through the relay: not used yet */
    a->dropped += a->turn->dropped - dropped;
    turn_flush(a);
    turn_tell(a);
    return true;
}

uint64_t turn_deadline(const punch_agent *a, int id)
{
    (void)id;
    return a->turn ? punch_turn_next_timeout(a->turn) : UINT64_MAX;
}

void turn_timeout(punch_agent *a, uint64_t now, int id)
{
    (void)id;
    punch_turn_handle_timeout(a->turn, now);
    turn_flush(a);
    turn_tell(a);
}
