/* SPDX-License-Identifier: MIT */
/*
 * A standard TURN server in the simulated world (issue 15): see world.h.
 * The model (src/sim/turn_server.c) runs on a host of its own beside
 * punchd, so a peer reaches it over its NAT and the WAN like punchd, and
 * the test hears it as it hears the server (198.51.100.x: node.deaf_until_ms
 * lets it through).
 */
#include <stdio.h>
#include <stdlib.h>

#include "sim/world.h"

const punch_addr WORLD_TURN_ADDR = {.family = PUNCH_AF_INET, .ip = {198, 51, 100, 50},
                                    .port = 3478};

void world_add_turn(world *w)
{
    punch_sim_turn_cfg c = {.addr = WORLD_TURN_ADDR, .realm = "sim.test", .username = "punch",
                            .password = "secret"};
    int host = punch_sim_add_host(w->sim), l;
    if (w->turn || !(w->turn = calloc(1, sizeof(*w->turn))) || host < 0 ||
        punch_sim_turn_init(w->turn, &c) != 0) {
        fprintf(stderr, "world: cannot add the TURN server\n");
        abort();
    }
    link_up(w, host, WORLD_TURN_ADDR, false, w->router, (punch_addr){0}, false,
            &(punch_sim_link_cfg){.delay_us = 5 * MS}, &l);
    route(w, w->router, WORLD_TURN_ADDR, 32, l);
    punch_sim_turn_attach(w->turn, w->sim, host);
}

void world_turn_cfg(const world *w, punch_agent_cfg *c)
{
    c->turn_server = w->turn->cfg.addr;
    c->turn_username = "punch";
    c->turn_password = "secret";
}
