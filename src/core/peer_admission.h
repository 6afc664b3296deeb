/* SPDX-License-Identifier: MIT */
/*
 * Which peers may hold one of the agent's slots, for how long, and what
 * may be sent to addresses nobody has verified (draft §6.2, issue 12).
 * Pure decisions over small views of the agent's state: src/core/agent.c
 * fills the views and carries the decisions out.
 *
 * Slots. A peer the server (or a peer) introduced without our asking is a
 * stranger until the Noise handshake with it completes. A stranger that has
 * not completed it within PUNCH_HANDSHAKE_DEADLINE_MS of its introduction is
 * forgotten. At most PUNCH_MAX_HANDSHAKING strangers hold a slot at once;
 * a new introduction beyond that, or into a full table, takes the slot of
 * the oldest silent stranger still handshaking (nothing authenticated came
 * from it), once that one had the time to answer: its answer window,
 * twice both round trips to the server (our message 1 and its answer may
 * both cross the relay) plus PUNCH_ANSWER_SLACK_MS, at most
 * PUNCH_ANSWER_MAX_MS. Until a window ends a newer stranger finds no room
 * and waits (the waiting room below), or its asker's CONNECT repeats bring
 * it back (issue 12: a peer asking
 * in the middle of a burst of 1,000 strangers was pushed out before its
 * answer could arrive, and never got back in). A stranger that spoke (its
 * handshake is under way) gives way only to a peer we ask for: a newer
 * stranger then finds no room and waits for its next introduction, so a
 * flood of silent keys cannot push out a peer in the middle of its handshake (issue 12: 1,000 strangers in a
 * second did). A peer with a completed handshake, or one we asked for, is
 * never pushed out by an introduction.
 *
 * Probes. Until the handshake with a peer completes, what goes to an
 * address of it that has not sent us an authenticated datagram is counted:
 *  - to one IP it only claims (a private endpoint): at most
 *    PUNCH_PROBES_PER_CLAIMED_IP, all its candidates on that IP together;
 *  - to one other candidate (its public endpoint as the server saw it, a
 *    predicted port of it): at most PUNCH_PROBES_PER_CANDIDATE;
 *  - to the peer in all: PUNCH_PROBES_PER_PEER, plus the probes of one
 *    many-port run when it plays one (birthday_allowance);
 *  - from the whole agent: PUNCH_PROBE_RATE a second (a token bucket of
 *    PUNCH_PROBE_BURST), many-port probes included.
 * The relay (the server) and addresses the peer has spoken from are not
 * counted; after the handshake the peer is authenticated and probing
 * follows its schedule (agent.c).
 */
#ifndef PUNCH_CORE_PEER_ADMISSION_H
#define PUNCH_CORE_PEER_ADMISSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How long a stranger has to complete the handshake. Through the relay it
 * completes one crossing after the introduction; direct, the longest way
 * is the conntrack guard at its longest (2 s, MAX_OPEN_GUARD_MS), the fast
 * probing phase (10 probes 100 ms apart), a many-port run's sending (256
 * sockets then 1024 probes, 16 per 10 ms: 800 ms) and one slow probe
 * interval (1 s) for the answer: 4.8 s. A stranger that later completes it
 * is introduced again by the server (every CONNECT copy does) and starts
 * afresh. agent.c checks the sum against its constants. */
#define PUNCH_HANDSHAKE_DEADLINE_MS 4800
/* Of the agent's 16 slots, strangers still handshaking hold at most half:
 * the other half stays for sessions and for peers we ask for. */
#define PUNCH_MAX_HANDSHAKING 8

/* An IP only claimed (a private endpoint, which anyone may claim: §6.2's
 * own example) gets four probes: 4 x 102 bytes of Noise message 1, less
 * than the REGISTER and CONNECT (some 450 bytes) that made us send them. */
#define PUNCH_PROBES_PER_CLAIMED_IP 4
/* The server saw the peer at that IP: the fast phase (10 in one second). */
#define PUNCH_PROBES_PER_CANDIDATE 10
/* One public endpoint and 8 predicted ports at 10 each, and the claimed IPs. */
#define PUNCH_PROBES_PER_PEER 96
#define PUNCH_PROBE_RATE 100
#define PUNCH_PROBE_BURST 200

/* The answer window (see above): a stranger's message 2 (or anything
 * else authenticated) has this long to come back before a newer stranger
 * may push it out. The slack covers both hosts' scheduling; the cap holds
 * what the RTT the introduction reports (the peer's own, which an
 * attacker may inflate) can buy: a slot turns over at least once a
 * second. */
#define PUNCH_ANSWER_SLACK_MS 200
#define PUNCH_ANSWER_MAX_MS 1000

/* What admission needs to know of one slot. */
typedef struct punch_slot_view {
    bool used;
    bool asked;           /* we asked for this peer (punch_agent_connect) */
    bool handshaken;      /* the handshake with it completed */
    bool spoke;           /* an authenticated datagram came from it */
    uint64_t admitted_ms; /* introduced then */
    uint64_t answer_by_ms; /* a silent stranger is not pushed out before */
} punch_slot_view;

/* The answer window for round trips to the server of my_rtt_ms (ours)
 * and peer_rtt_ms (the peer's, as the introduction says). */
uint64_t punch_admission_answer_ms(uint32_t my_rtt_ms, uint32_t peer_rtt_ms);

/* Which slot a new peer takes (a stranger, or one we ask for) at now.
 * Returns the slot (>= 0) with *evict set when a stranger must be
 * forgotten there first, or -1 when there is no room (every slot holds a
 * session or a peer we asked for, or, for a stranger, one whose answer
 * window is still open). */
int punch_admission_pick(const punch_slot_view *slots, size_t n, bool stranger, uint64_t now,
                         bool *evict);

/* The earliest time punch_admission_pick finds a stranger a slot (a free
 * one, or a silent stranger's whose answer window ended): 0 when it does
 * now, UINT64_MAX when only a slot freed later can give one. */
uint64_t punch_admission_room_at(const punch_slot_view *slots, size_t n);

/* The waiting room: introductions of strangers that found no slot (every
 * stranger slot in its answer window), the newest PUNCH_WAITING_ROOM of
 * them, one per key. When a window ends the newest one still younger
 * than PUNCH_WAITING_MS takes the slot: an asker repeats its CONNECT, so
 * the last introduction turned away is the likeliest to be a live peer,
 * while a burst's silent strangers age out (issue 12: a peer asking in
 * the middle of 1,000 strangers otherwise waited for a CONNECT copy that
 * punchd's limit per source and target could drop, up to 1.7 s more). */
#define PUNCH_WAITING_ROOM 4
#define PUNCH_WAITING_MS 2000

/* Whether the slot holds a stranger past its deadline at now. */
bool punch_admission_expired(const punch_slot_view *s, uint64_t now);
/* When the slot's stranger expires; UINT64_MAX when it never does. */
uint64_t punch_admission_deadline(const punch_slot_view *s);

/* The agent-wide token bucket of probes to unverified addresses. */
typedef struct punch_probe_bucket {
    uint64_t tokens_milli; /* thousandths of a probe */
    uint64_t updated_ms;
    bool started;
} punch_probe_bucket;

/* One probe about to go to a peer that has not completed the handshake. */
typedef struct punch_probe_ask {
    bool verified;        /* to the relay, or to where the peer spoke from */
    bool claimed;         /* to a private endpoint (an IP the peer only claims) */
    unsigned to_candidate; /* sent before to this candidate (unverified) */
    unsigned to_ip;       /* ...to every candidate of the peer on this IP */
    unsigned to_peer;     /* ...to the peer in all (many-port probes too) */
    unsigned allowance;   /* more for this peer: its many-port run */
    bool many_port;       /* a many-port probe: only the peer's total and the bucket */
} punch_probe_ask;

/* Whether the probe may go; when it may, a token is taken from b. */
bool punch_probe_allowed(punch_probe_bucket *b, uint64_t now, const punch_probe_ask *q);

/* Keys of strangers forgotten before their handshake completed (at the
 * deadline, or pushed out). Introduced again within PUNCH_SPENT_MS, such a
 * key gets no second probe budget: the relay and the addresses it speaks
 * from still work, but a CONNECT repeated every few seconds does not buy
 * four more probes at each claimed IP. */
#define PUNCH_SPENT_KEYS 64
#define PUNCH_SPENT_MS 60000
typedef struct punch_spent_keys {
    uint8_t key[PUNCH_SPENT_KEYS][32];
    uint64_t at_ms[PUNCH_SPENT_KEYS];
    bool used[PUNCH_SPENT_KEYS];
    unsigned next;
} punch_spent_keys;

void punch_spent_add(punch_spent_keys *s, const uint8_t key[32], uint64_t now);
bool punch_spent_recent(const punch_spent_keys *s, const uint8_t key[32], uint64_t now);

#endif
