/* SPDX-License-Identifier: MIT */
/*
 * A world for the peer agent in the simulator (src/sim): punchd's
 * rendezvous and STUN services (src/server) on a server host with two IPs,
 * a core router, NATs from the presets of SPEC.md §5, and peers running
 * the real agent (src/core), in the topologies of SPEC.md §6. Used by the
 * agent's tests (tests/unit/test_agent.c) and the NAT-pair matrix
 * (bench/nat_matrix.c). Setup failures abort: they are bugs of the caller.
 */
#ifndef PUNCH_SIM_WORLD_H
#define PUNCH_SIM_WORLD_H

#include <stdbool.h>
#include <stdint.h>

#include "punch/punch.h"
#include "server/binding.h"
#include "server/rendezvous.h"
#include "sim/rng.h"
#include "sim/sim.h"
#include "sim/tcp.h"
#include "sim/turn_server.h"

#define MS 1000ull
/* Where a node carries a TCP socket handed to its agent by hand, as UDP:
 * its port + this + the socket's index (tests without a TCP model). */
#define PUNCH_SIM_TCP_PORT_OFFSET 0x8000u

/* The server's addresses: two IPs (punchd --alt; world_start), one IP
 * with a second STUN port (punchd's default), or one IP and port only
 * (punchd --second-port off). */
typedef enum world_server_kind {
    WORLD_SERVER_TWO_IPS = 0,
    WORLD_SERVER_SECOND_PORT,
    WORLD_SERVER_ONE_PORT,
} world_server_kind;

typedef struct node {
    punch_sim *sim;
    int host;
    punch_addr addr;
    punch_addr addr6;            /* dual stack: its IPv6 address beside addr's IPv4
                                    (same port), AF_NONE: none (world_dual.c) */
    punch_addr addr6_outside;    /* ...as the outside sees it (another with NPTv6) */
    int v6_link;                 /* dual stack: its IPv6 firewall's WAN link */
    bool nat64;                  /* IPv6 only behind a NAT64: given the server's IPv4 */
    punch_agent *agent;
    punch_rng rng;
    /* What the events said. */
    bool registered;
    uint64_t registered_ms;      /* virtual time of the first REGISTERED event */
    unsigned registrations;      /* REGISTERED events */
    uint64_t last_registered_ms; /* ...the latest's virtual time */
    punch_addr server;           /* ...and the server it named */
    char nat[8];                 /* its "nat": unknown, eim, adm, apdm */
    uint8_t other_family;        /* ...and the other family's (issue 16), AF_NONE: none */
    char other_nat[8];
    int peer;                    /* the peer id of the connection, -1 */
    bool have_path;
    punch_path_kind kind;
    punch_technique technique;
    punch_cipher cipher;         /* ...and the session's AEAD */
    punch_addr path_remote;      /* the latest path's remote endpoint */
    bool path_timed;             /* ...its round trip measured (its PATH or RTT event) */
    uint32_t path_rtt_us;        /* ...and what it was */
    uint64_t path_ms, timed_ms;  /* virtual times of the latest PATH, and of its timing */
    unsigned rtt_events;         /* RTT events */
    unsigned sent_v6;            /* datagrams the agent sent to IPv6 addresses */
    /* Many-port probing's extra sockets, as the driver keeps them: one
     * opens with the first datagram sent from it, and closes when a
     * PUNCH_EVENT_SOCKETS says so (all of them when the agent restarts). */
    unsigned extra_sent;         /* datagrams sent from extra sockets */
    unsigned extra_open;         /* extra sockets open now */
    bool extra_is_open[PUNCH_MAX_SOCKETS + 1];
    uint64_t first_direct_ms;    /* virtual time of the first direct path */
    punch_technique first_direct_technique; /* ...and its technique */
    punch_path_kind first_kind;  /* of the first path */
    int last_peer;               /* the peer id of the latest introduction */
    punch_path_kind kind_of[16]; /* per peer id: the latest path */
    punch_technique technique_of[16];
    unsigned path_changes;
    uint64_t deaf_until_ms;      /* drop datagrams from peers until then (a late direct path) */
    unsigned counts[256];        /* datagrams "#N" received, per N */
    char got[128];               /* last datagram received */
    size_t got_len;              /* ...and its whole length */
    int got_from;                /* ...and the peer id it came from */
    char closed[96];
    char attempt[96];            /* the latest ATTEMPT event's why */
    char attempt_by[16][96];     /* ...and the latest per technique */
    unsigned birthday_anyway;    /* "nat behaviour unknown: trying birthday anyway" told */
    unsigned tcp_offers;         /* TCP_OFFER events, the latest in tcp_offer */
    punch_tcp_offer tcp_offer;
    /* With world.tcp_paths: TCP paths to peers (src/core/tcp_path.h) on
     * the host's simulated TCP (src/sim/tcp.h). */
    punch_tcp_paths *tcp;
    punch_sim_tcp stcp;
    /* Set before add_peer: register these private endpoints instead of
     * the peer's own address (an attacker's claim, draft §6.2). */
    size_t n_claim;
    punch_addr claim[PUNCH_MAX_LOCAL];
    bool mute;                   /* hears nothing (a silent attacker) */
    /* An on-path attacker in front of it: may change every UDP datagram
     * before the agent reads it (len bytes at data, which it may write). */
    void (*tamper)(uint8_t *data, size_t len);
    bool gone;                   /* hears and sends nothing any more (vanished) */
    bool use_turn;               /* set before add_peer: its agent allocates at world.turn */
    unsigned turn_events;        /* PUNCH_EVENT_TURN events, the latest in turn */
    punch_event_turn turn;
    char turn_said[96];          /* the latest ATTEMPT of technique turn about the
                                    allocation itself (peer -1) */
    uint64_t bytes_sent;         /* UDP payload bytes the agent sent */
    unsigned closed_count;       /* CLOSED events */
    /* Port mapping (world.portmap): the NAT the peer sits behind answers
     * requests of this protocol by a port forward (src/nat/portfwd.h),
     * and every other one with nothing, as a router without it. */
    int gateway;                 /* the NAT node in front of it, -1: none */
    punch_portmap_proto gateway_offers; /* PCP, NATPMP, UPNP; OFF: nothing */
    uint64_t gateway_rtt_ms;     /* a round trip to it: answers take as many as
                                  * the protocol needs, UPnP 1 s of discovery more */
    bool pm_pending;             /* an answer on its way, due at pm_due_ms */
    uint64_t pm_due_ms;
    punch_portmap_result pm_res;
    unsigned portmaps;           /* PORTMAP events (mappings obtained) */
    /* Address-validation tokens: the latest TOKEN event's, kept for a
     * restart (node_restart); whether the REGISTERED said by_token. */
    bool has_token;
    punch_server_token token;
    bool by_token;
    char name[PUNCH_NAME_MAX + 1];
    uint8_t secret[PUNCH_KEY_BYTES]; /* its identity, the same after a restart */
    /* The first signalling datagrams from the server, kept for a test to
     * replay (an on-path attacker's copies). */
    unsigned n_heard;
    size_t heard_len[16];
    punch_addr heard_from[16];
    uint8_t heard[16][1500];
} node;

typedef struct server {
    punch_sim *sim;
    int host;
    punch_addr addr;
    punch_rendezvous *rv;
    punch_binding_server *stun;  /* RFC 5780 on two IPs x two ports, as punchd --alt */
    punch_binding_group group;
    punch_addr addr6;            /* its IPv6 address (world_dual.c), AF_NONE: none */
    punch_binding_group group6;  /* ...and its STUN socket there (binding group 1) */
    punch_rng rng;
    bool down;                   /* drops everything */
    world_server_kind kind;
    bool no_relay;               /* punchd --no-relay (world_relay_off) */
    punch_sim_tcp stcp;          /* STUN Binding over TCP on its first address */
    uint32_t tcp_conns;
} server;

typedef struct world {
    punch_sim *sim;
    uint64_t seed;
    int router;
    server s;
    server s2;                   /* world_add_server: a second punchd */
    bool two_servers;
    node alice, bob, carol;
    uint32_t agent_flags;        /* punch_agent_cfg.flags of the peers added */
    bool tcp_paths;              /* peers added run TCP paths over simulated TCP... */
    const node *tcp_asker;       /* ...and this one asks for one (punch connect --tcp) */
    uint8_t tcp_open_ttl;        /* their punch_tcp_paths_cfg.open_ttl */
    bool wan_no_delay;           /* NATs on the core get WAN links without delay or jitter */
    uint64_t wan_delay_us;       /* ...else of this one-way delay (0: 10 ms) */
    uint32_t open_guard_ms;      /* their punch_agent_cfg.open_guard_ms (UINT32_MAX: no openers) */
    /* Peers added get this delay (0: 200 us) and jitter on their access
     * links, between host and NAT as in the lab; the jitter stands for a
     * loaded host's scheduling delay (the conntrack trap). */
    uint64_t access_delay_us, access_jitter_us;
    uint8_t portmap;             /* punch_agent_cfg.portmap of the peers added */
    punch_sim_turn *turn;        /* world_add_turn: a TURN server, NULL: none */
    punch_nat64_prefix nat64_prefix; /* STACK_V6_NAT64 sites' NAT64 prefix, told to
                                        their agents (bits 0: 64:ff9b::/96) */
} world;


punch_addr v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint16_t port);

/* A new world (server and core router only) with this seed; world_free
 * frees it and every peer added. Its server has two IPs (punchd --alt). */
void world_start(world *w, uint64_t seed);

void world_start_with(world *w, uint64_t seed, world_server_kind kind);
void world_free(world *w);
/* punchd --no-relay: the server (same keys) introduces only; call it
 * before adding peers. */
void world_relay_off(world *w);
/* A TURN server (src/sim/turn_server.h) at 198.51.100.50:3478, 5 ms from
 * the core router, realm "sim.test", user "punch", password "secret"
 * (world_turn.c); peers added with use_turn allocate there (punch --turn). */
void world_add_turn(world *w);
extern const punch_addr WORLD_TURN_ADDR;
/* Used by node_agent_new: the TURN settings of a use_turn peer into c. */
void world_turn_cfg(const world *w, punch_agent_cfg *c);
/* A second server (198.51.100.9, one IP with a second port, keys of its
 * own, 20 ms from the core router where the first is 5 ms) that peers
 * added from now on know after the first (more_servers). */
void world_add_server(world *w);

/* Building blocks: a link, a route, a NAT (preset or punch-nat spec) with
 * this public IP, a NAT on the core router (WAN link: 10 ms, 1 ms jitter,
 * loss; none of either with world.wan_no_delay), a peer on `up` (a NAT's inside or a router), with loss on its
 * access link; it registers at once. */
void link_up(world *w, int a, punch_addr a_addr, bool a_inside, int b, punch_addr b_addr,
             bool b_inside, const punch_sim_link_cfg *cfg, int *link);
void route(world *w, int node_id, punch_addr prefix, unsigned len, int link);
int add_nat(world *w, const char *spec, punch_addr public_ip);
int nat_on_core(world *w, const char *spec, punch_addr pub, double loss);
/* The same with the WAN link's delay, jitter and loss given. */
int nat_on_core_with(world *w, const char *spec, punch_addr pub, const punch_sim_link_cfg *wan);
void add_peer(world *w, node *n, const char *name, punch_addr addr, int up, bool up_is_nat,
              double loss, int *link);

/* The topologies: alice and bob behind NATs a and b; behind one NAT;
 * behind their own NATs, both behind x (draft §3.3.3); public (alice
 * behind alice_nat when not NULL). */
void different_nats(world *w, const char *a, const char *b, double loss);
void same_nat(world *w, const char *spec, double loss);
void multi_level(world *w, const char *x_spec, double loss);
void public_peers(world *w, const char *alice_nat, double loss);

/* Dual stack (issue 16, world_dual.c): alice and bob each with IPv4
 * behind a NAT of nat_spec, IPv6 (2001:db8::/32) behind a stateful
 * firewall of its own (no translation, inbound dropped unless
 * established), or both. The server gets an IPv6 address too, and a peer
 * with IPv6 only registers there. v6_delay_us: the one-way delay of the
 * firewalls' WAN links (the NATs' are 10 ms).
 * STACK_DUAL_NPT: dual, the IPv6 router translating the prefix (NPTv6)
 * beside its firewall. STACK_V6_NAT64: IPv6 only, native behind its
 * firewall, and a NAT64 (64:ff9b::/96, pool 192.168.255.2..) in front of
 * a NAT of nat_spec for IPv4; the host is given the server's IPv4 address. A dual-stack peer knows the server's IPv6 address
 * too (as with a name with A and AAAA records). */
typedef enum world_stack {
    STACK_DUAL = 0,
    STACK_V4_ONLY,
    STACK_V6_ONLY,
    STACK_DUAL_NPT,
    STACK_V6_NAT64
} world_stack;
void dual_stack(world *w, world_stack alice, world_stack bob, const char *nat_spec,
                uint64_t v6_delay_us);
/* The IPv6 of n stops working: its firewall's WAN link loses everything. */
void cut_v6(world *w, const node *n);

/* n's program starts again (a new agent with the same key and name, on
 * the next UDP port, so its NAT gives it a new mapping), with the token it
 * kept when `token` is not NULL (then *token is given; the caller may
 * spoil it). What its events said is forgotten. */
void node_restart(world *w, node *n, const punch_server_token *token);

/* Send what n's agent queued (extra socket k leaves from port + k; so
 * does a TCP path's socket index, its frames carried as datagrams). */
void node_flush(node *n);

/* Run until both registered (up to 10 s of virtual time), then alice asks
 * for bob. Returns the time she asked (ms), or UINT64_MAX when they did
 * not register. */
uint64_t register_and_connect(world *w);

#endif
