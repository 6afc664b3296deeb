/* SPDX-License-Identifier: MIT */
/*
 * NAT behaviour model, sans-I/O (SPEC.md §5): the same code translates real
 * packets in punch-nat and simulated ones in src/sim.
 *
 * Vocabulary is RFC 4787 (UDP) and RFC 5382 (TCP):
 *   mapping    eim | adm | apdm        RFC 4787 §4.1
 *   filtering  eif | adf | apdf        RFC 4787 §5
 *   ports      preserve | sequential (step) | random   RFC 4787 §4.2.1
 *   hairpin    on | off                RFC 4787 §6
 * A "mapping" binds an inside transport address (and, for adm/apdm, the remote
 * address or endpoint) to a public one. A "session" is one inside endpoint
 * talking to one remote endpoint through a mapping: it is what filtering
 * checks and what TCP state lives on.
 *
 * Time is milliseconds in a uint64_t passed by the caller; randomness comes
 * from cfg.random. Tables are fixed-size (capacities from the config), so no
 * packet allocates. A mapping or session whose deadline is <= now is gone:
 * lookups ignore it even if punch_nat_expire() has not yet run.
 *
 * The caller decides which side a packet came from: punch_nat_outbound() for
 * packets arriving on the inside, punch_nat_inbound() for the outside.
 */
#ifndef PUNCH_NAT_NAT_H
#define PUNCH_NAT_NAT_H

#include "punch/punch.h"
#include "wire/ipv4.h" /* PUNCH_IP_UDP/TCP/ICMP, PUNCH_TCP_* flags */

#define PUNCH_NAT_MAX_PUBLIC 64

typedef enum punch_nat_mapping {
    PUNCH_NAT_EIM = 0, /* endpoint-independent (REQ-1) */
    PUNCH_NAT_ADM,     /* address-dependent */
    PUNCH_NAT_APDM,    /* address-and-port-dependent ("symmetric") */
} punch_nat_mapping;

typedef enum punch_nat_filtering {
    PUNCH_NAT_EIF = 0,
    PUNCH_NAT_ADF,
    PUNCH_NAT_APDF,
} punch_nat_filtering;

typedef enum punch_nat_ports {
    PUNCH_NAT_PRESERVE = 0, /* the inside port when free, else the next free one above it */
    PUNCH_NAT_SEQUENTIAL,   /* last assigned + step */
    PUNCH_NAT_RANDOM,       /* uniform in the range, from cfg.random */
} punch_nat_ports;

typedef enum punch_nat_mode {
    PUNCH_NAT_NAPT = 0,  /* address and port translation */
    PUNCH_NAT_BASIC,     /* 1:1: each inside IP gets a public IP of its own, ports kept */
    PUNCH_NAT_FIREWALL,  /* no translation; filtering only */
} punch_nat_mode;

typedef struct punch_nat_cfg {
    punch_nat_mode mode;
    punch_nat_mapping mapping;
    punch_nat_filtering filtering;
    punch_nat_ports ports;
    uint16_t port_step;       /* sequential: 1, 2, ...; 0 means 1 */
    uint16_t port_min, port_max; /* assignable public ports, inclusive */
    bool pooling_arbitrary;   /* false: "paired" (RFC 4787 REQ-2), one public IP per inside IP */
    bool hairpin;             /* RFC 4787 REQ-9 */
    bool refresh_inbound;     /* UDP: inbound packets refresh too (REQ-6 asks outbound) */
    bool syn_rst;             /* unsolicited inbound TCP SYN: RST instead of silent drop */
    /* Linux with no input firewall (trap.c): an unsolicited UDP packet to
     * a public endpoint leaves a conntrack entry for 30 s after its last
     * one, and a new flow from that endpoint to that remote is given
     * another public port, at random. */
    bool conntrack_trap;
    /* Linux conntrack: a RST passing either way closes the TCP session
     * (CLOSE); a later SYN from the remote (the reply direction) is INVALID,
     * not translated, and the NAT's own stack answers it (RST with syn_rst,
     * else nothing); a new SYN from inside opens it again (tcp_state.c). */
    bool rst_closes;
    /* Linux conntrack's sequence check at the handshake (tcp_state.c):
     * once pure SYNs passed both ways and no SYN-ACK yet (SYN_SENT2), a
     * SYN or SYN-ACK with another ISN than the last SYN of its side is
     * INVALID and not translated (punch_nat_tuple.seq). */
    bool isn_check;
    uint64_t udp_timeout_ms;           /* RFC 4787 REQ-5: >= 2 min; draft §5.5: 5 min */
    uint64_t tcp_established_ms;       /* RFC 5382 REQ-5: >= 2 h 4 min */
    uint64_t tcp_transitory_ms;        /* RFC 5382 REQ-5: >= 4 min (SYN, FIN, RST states) */
    uint64_t icmp_timeout_ms;          /* RFC 5508 REQ-1: >= 60 s (ICMP query mappings) */
    size_t max_mappings;      /* table capacity; a new mapping beyond it is refused */
    /* Mappings one inside host (IPv4 address, IPv6 /64) may hold at once,
     * so one host cannot take every port from the others (RFC 6888 REQ-4:
     * a limit per subscriber). 0: half of max_mappings; a many-port run
     * (1024 probes through an apdm NAT) still fits the default 2048. */
    size_t max_mappings_per_host;
    size_t max_sessions;      /* 0 means 4 x max_mappings */
    size_t max_events;        /* event queue length; 0: no events kept */
    size_t n_public;
    punch_addr public_ip[PUNCH_NAT_MAX_PUBLIC]; /* ports ignored; unused by FIREWALL */
    /* Randomness, for ports=random, arbitrary pooling and the hash key.
     * Required for those; may be NULL otherwise. */
    uint64_t (*random)(void *ctx);
    void *random_ctx;
} punch_nat_cfg;

/* One packet's addressing: protocol and both transport addresses.
 * PUNCH_IP_ICMP stands for ICMP queries (echo): the query identifier is the
 * port of both ends, as punch_ipv4_parse() gives it (RFC 5508 §3.1); it is
 * translated like a UDP port, and the remote end's "port" is not looked at. */
typedef struct punch_nat_tuple {
    uint8_t proto; /* PUNCH_IP_UDP, PUNCH_IP_TCP or PUNCH_IP_ICMP */
    punch_addr src, dst;
    uint32_t seq;  /* TCP: the segment's sequence number (cfg.isn_check); in only */
} punch_nat_tuple;

/* What to do with a packet. */
typedef enum punch_nat_verdict {
    PUNCH_NAT_DROP = 0,  /* discard silently (the reason is counted) */
    PUNCH_NAT_FORWARD,   /* send out the other side as `out` */
    PUNCH_NAT_HAIRPIN,   /* outbound only: deliver back inside as `out` (RFC 4787 §6) */
    PUNCH_NAT_RST,       /* discard, and answer the sender with a TCP RST */
} punch_nat_verdict;

typedef struct punch_nat_counters {
    uint64_t outbound, inbound;      /* packets handed in */
    uint64_t forwarded, hairpinned, rst;
    uint64_t mappings_created, mappings_expired;
    uint64_t sessions_created, sessions_expired;
    uint64_t refused_table_full;     /* new mapping or session refused: table full */
    uint64_t refused_no_port;        /* new mapping refused: no free public port */
    uint64_t refused_host_quota;     /* new mapping refused: its inside host holds enough */
    uint64_t dropped_no_mapping;     /* inbound to a public address:port with no mapping */
    uint64_t dropped_filtered;       /* inbound refused by filtering */
    uint64_t dropped_hairpin_off;    /* inside to our own public address, hairpin off */
    uint64_t dropped_tcp_invalid;    /* TCP segment with no connection that is not a SYN */
    uint64_t dropped_bad;            /* unknown protocol or address family mismatch */
    uint64_t events_lost;            /* events not queued: the queue was full */
    uint64_t traps_created;          /* conntrack_trap: entries for unsolicited packets */
    uint64_t trap_escapes;           /* conntrack_trap: flows given another port by one */
    uint64_t refused_closed;         /* rst_closes: remote's SYN on a session a RST closed */
    uint64_t dropped_tcp_isn;        /* isn_check: a new ISN in SYN_SENT2 (INVALID) */
} punch_nat_counters;

typedef enum punch_nat_event_kind {
    PUNCH_NAT_EV_MAPPING_CREATED = 1,
    PUNCH_NAT_EV_MAPPING_EXPIRED,
} punch_nat_event_kind;

typedef struct punch_nat_event {
    punch_nat_event_kind kind;
    uint64_t t_ms;
    uint8_t proto;
    punch_addr inside;   /* inside transport address */
    punch_addr public_;  /* public transport address it maps to */
    punch_addr remote;   /* adm: remote IP (port 0); apdm: remote endpoint; eim: AF_NONE */
} punch_nat_event;

typedef struct punch_nat punch_nat;

/* Fill cfg with the default preset "p2p": every recommendation of the
 * draft's §5 and RFC 4787/5382 (eim, eif... see punch_nat_cfg_preset()). */
void punch_nat_cfg_default(punch_nat_cfg *cfg);

/* Set the behaviour of a named preset (SPEC.md §5): p2p (default),
 * full-cone, restricted-cone, port-restricted-cone, symmetric-sequential,
 * symmetric-random, firewall, basic-nat, cgnat. Every behaviour field and
 * the table capacities (max_mappings, max_sessions) are set; public_ip,
 * random and max_events are left alone.
 * p2p: napt eim/eif, preserve, hairpin on, UDP 5 min, TCP 2 h 4 min / 4 min,
 * outbound refresh, SYN dropped. The classic presets are p2p with their
 * mapping/filtering/ports and hairpin off; cgnat: eim/apdf, random ports,
 * hairpin on, 65536 mappings.
 * Returns 0 or PUNCH_ERR_NOTFOUND for an unknown name. */
int punch_nat_cfg_preset(punch_nat_cfg *cfg, const char *name);

/* Apply a comma-separated spec to cfg, left to right: a bare word is a preset
 * name, otherwise key=value. Keys: preset, mapping (eim|adm|apdm), filtering
 * (eif|adf|apdf), ports (preserve|sequential|random), step, port-range
 * (LO-HI), hairpin (on|off), refresh (outbound|both), syn (drop|rst),
 * trap (on|off: conntrack_trap), rst-close (on|off: rst_closes),
 * isn-check (on|off: isn_check),
 * pooling (paired|arbitrary), mode (napt|basic|firewall), udp-timeout,
 * tcp-timeout, tcp-transitory-timeout, icmp-timeout (a number with ms|s|m|h, seconds when
 * bare), mappings, host-mappings, sessions, public (IPv4[+IPv4...]).
 * Example: "symmetric-sequential,step=2,hairpin=on,udp-timeout=30s".
 * Returns 0, or PUNCH_ERR_INVAL with a message naming the bad token in
 * err (may be NULL). cfg may be partly changed on error. */
int punch_nat_cfg_parse(punch_nat_cfg *cfg, const char *spec, char *err, size_t errlen);

/* Returns 0, PUNCH_ERR_INVAL (no public IP for a translating mode, bad port
 * range, timeouts of 0, capacities of 0 or above 2^30, random needed but
 * NULL) or PUNCH_ERR_NOMEM. */
int punch_nat_new(punch_nat **nat, const punch_nat_cfg *cfg);
void punch_nat_free(punch_nat *nat);

/* A packet arrived on the inside. tcp_flags is 0 for UDP.
 * Returns PUNCH_NAT_FORWARD with the translated tuple in out;
 * PUNCH_NAT_HAIRPIN when it is addressed to one of our public mappings and
 * hairpinning is on: deliver out (source = the sender's public mapping,
 * destination = the inside endpoint) back inside; PUNCH_NAT_RST for an
 * unsolicited hairpinned SYN with syn_rst; PUNCH_NAT_DROP otherwise (table
 * full, no free port, hairpin off or filtered, TCP without a connection). */
punch_nat_verdict punch_nat_outbound(punch_nat *nat, uint64_t now_ms,
                                     const punch_nat_tuple *in, uint8_t tcp_flags,
                                     punch_nat_tuple *out);

/* A packet arrived on the outside.
 * Returns PUNCH_NAT_FORWARD with out translated to the inside endpoint,
 * PUNCH_NAT_RST for an unsolicited SYN with syn_rst, PUNCH_NAT_DROP
 * otherwise (no mapping, filtered, TCP without a connection). */
punch_nat_verdict punch_nat_inbound(punch_nat *nat, uint64_t now_ms,
                                    const punch_nat_tuple *in, uint8_t tcp_flags,
                                    punch_nat_tuple *out);

/* The earliest time at which punch_nat_expire() may have work, UINT64_MAX
 * when nothing is tracked. It may be early (a refreshed entry); calling
 * punch_nat_expire() then is harmless. */
uint64_t punch_nat_next_expiry(const punch_nat *nat);

/* Remove every mapping and session whose deadline is <= now_ms.
 * Returns how many mappings expired. */
size_t punch_nat_expire(punch_nat *nat, uint64_t now_ms);

/* Take the oldest queued event. Returns 1 with *ev filled, 0 when empty. */
int punch_nat_poll_event(punch_nat *nat, punch_nat_event *ev);

/* Look up, without changing anything, the public address that inside has
 * for traffic to remote (eim ignores remote). Returns 0 with *pub filled,
 * or PUNCH_ERR_NOTFOUND. */
int punch_nat_lookup(const punch_nat *nat, uint64_t now_ms, uint8_t proto,
                     const punch_addr *inside, const punch_addr *remote, punch_addr *pub);

/* The reverse: the inside address that public maps to (for translating
 * the packet quoted in an inbound ICMP error). Returns 0 with *inside
 * filled, or PUNCH_ERR_NOTFOUND. */
int punch_nat_lookup_public(const punch_nat *nat, uint64_t now_ms, uint8_t proto,
                            const punch_addr *pub, punch_addr *inside);

/* An ICMP error arrived on the outside quoting a packet of ours, from
 * our public endpoint pub to remote; `from` sent the error. It may pass
 * (RFC 5508 §4.2 asks that errors of a flow reach its inside host) when
 * the quoted packet is one the mapping really sent: a live session of the
 * mapping with remote, or one the filter would let in from remote; and,
 * unless filtering is endpoint-independent, the error comes from remote's
 * IP, so a third host cannot speak for a flow it is not part of (issue 12,
 * finding 10). Routers on the path cannot either, then: their errors are
 * as unsolicited as any of their packets.
 * Returns 0 with *inside filled (the inside endpoint of the mapping), or
 * PUNCH_ERR_NOTFOUND (no such mapping, or not allowed). */
int punch_nat_icmp_error_in(const punch_nat *nat, uint64_t now_ms, uint8_t proto,
                            const punch_addr *pub, const punch_addr *remote,
                            const punch_addr *from, punch_addr *inside);

/* Live mappings and sessions (including ones past their deadline that
 * punch_nat_expire() has not yet removed). */
size_t punch_nat_mapping_count(const punch_nat *nat);
size_t punch_nat_session_count(const punch_nat *nat);

const punch_nat_counters *punch_nat_counters_get(const punch_nat *nat);
const punch_nat_cfg *punch_nat_cfg_get(const punch_nat *nat);

const char *punch_nat_mapping_name(punch_nat_mapping m);
const char *punch_nat_filtering_name(punch_nat_filtering f);
const char *punch_nat_ports_name(punch_nat_ports p);

#endif
