/* SPDX-License-Identifier: MIT */
/* Inside the NAT behaviour model (nat.c): its pools, indexes and heap.
 * Not an interface: nat.h is. */
#ifndef PUNCH_NAT_INTERNAL_H
#define PUNCH_NAT_INTERNAL_H

#include "nat/nat.h"
#include "wire/counts.h"

#define NIL UINT32_MAX
#define SESSION_BIT 0x80000000u
#define MAX_CAPACITY (1u << 30)

/* TCP state bits of a session */
enum {
    T_SYN_OUT = 0x01,
    T_SYN_IN = 0x02,
    T_FIN_OUT = 0x04,
    T_FIN_IN = 0x08,
    T_RST = 0x10,
    T_CLOSED = 0x20,  /* rst_closes: a RST passed; CLOSE until a SYN from inside */
    T_OPENED_IN = 0x40, /* the remote's SYN made the session (the original direction is in) */
    T_PSYN_OUT = 0x80,  /* isn_check: a pure SYN went out (isn[0] is its ISN) */
    T_PSYN_IN = 0x100,  /* ...came in (isn[1]) */
    T_SYNACK = 0x200,   /* ...a SYN-ACK passed either way */
};

typedef struct hlink {
    uint32_t next, prev, bucket;
} hlink;

typedef struct hindex {
    uint32_t *heads;
    uint32_t mask;
    char *base;     /* pool the entries live in */
    size_t stride;  /* sizeof one entry */
    size_t off;     /* offset of this index's hlink in an entry */
} hindex;

typedef struct mapping {
    uint64_t expires;
    punch_addr inside;
    punch_addr remote;  /* the part of the remote that keys the mapping */
    punch_addr pub;
    uint32_t heap_pos;
    uint32_t sessions;  /* head of this mapping's session list */
    uint32_t escape;    /* conntrack trap: the mapping a trapped flow of ours got */
    uint32_t next_free;
    int16_t addr_slot;  /* basic mode: index of the public IP held */
    uint8_t proto;
    bool used;
    hlink by_key, by_pub;
} mapping;

typedef struct session {
    uint64_t expires;
    punch_addr remote;
    uint32_t mapping;
    uint32_t heap_pos;
    uint32_t next_free;
    uint32_t list_next, list_prev; /* in the mapping's list */
    uint16_t tcp;
    bool used;
    uint32_t isn[2];    /* isn_check: the last SYN's ISN out [0] and in [1] */
    hlink by_ep, by_ip;
} session;

typedef struct heap_item {
    uint64_t deadline;
    uint32_t ref; /* mapping index, or SESSION_BIT | session index */
} heap_item;

/* A conntrack-trap entry (trap.c): remote sent to pub, unsolicited. */
typedef struct trap_entry {
    uint64_t expires;
    punch_addr remote, pub;
    uint8_t proto;
} trap_entry;

typedef struct addr_slot {
    punch_addr inside; /* basic mode: inside IP holding public_ip[i] */
    uint32_t refs;
} addr_slot;

struct punch_nat {
    punch_nat_cfg cfg;
    punch_nat_counters counters;
    uint64_t key0, key1;
    mapping *maps;
    session *sess;
    uint32_t free_map, free_sess;
    size_t n_maps, n_sess;
    hindex by_key, by_pub, by_ep, by_ip;
    heap_item *heap;
    size_t heap_len;
    uint16_t next_port[PUNCH_NAT_MAX_PUBLIC]; /* sequential cursor per public IP */
    addr_slot slots[PUNCH_NAT_MAX_PUBLIC];
    punch_nat_event *events;
    size_t ev_head, ev_len;
    punch_counts *hosts; /* mappings per inside host (max_mappings_per_host) */
    trap_entry *traps;   /* cfg.conntrack_trap: entries for unsolicited packets */
    size_t n_traps;
};

/* trap.c: Linux's conntrack trap (cfg.conntrack_trap; UDP only). */
int trap_table_new(punch_nat *n);
/* An unsolicited packet from remote to pub was taken by the NAT itself. */
void trap_note(punch_nat *n, uint64_t now, uint8_t proto, const punch_addr *remote,
               const punch_addr *pub);
/* Would a new flow from pub to remote clash with such an entry? */
bool trap_holds(const punch_nat *n, uint64_t now, uint8_t proto, const punch_addr *remote,
                const punch_addr *pub);

/* tcp_state.c: TCP state of a session (RFC 5382, cfg.rst_closes). */
uint64_t nat_session_timeout(const punch_nat *n, uint8_t proto, uint16_t tcp);
/* A segment went out (inside to remote) or in; created: it made s. */
void nat_tcp_track(const punch_nat *n, session *s, uint8_t flags, uint32_t seq, bool outbound,
                   bool created);
/* A SYN the reply way on a session a RST closed: not let through. */
bool nat_tcp_closed_refuses(const punch_nat *n, const session *s, uint8_t flags, bool outbound);
/* A SYN or SYN-ACK with a new ISN in SYN_SENT2 (cfg.isn_check): INVALID. */
bool nat_tcp_isn_refuses(const punch_nat *n, const session *s, uint8_t flags, uint32_t seq,
                         bool outbound);

#endif
