/* SPDX-License-Identifier: MIT */
/*
 * punch's own messages, carried in UDP datagrams on the same port as STUN.
 *
 * Demultiplexing (RFC 7983 leaves first bytes 80..127 unassigned): STUN
 * starts with 0..3, TURN ChannelData with 64..79, a punch message with
 * PUNCH_MSG_MAGIC (0x70, 'p', version 0), then a type byte.
 *
 * Signalling between a peer and punchd (draft §3.3.1 rendezvous):
 *   HELLO       peer -> server   ask for a cookie; padded so the answer is smaller
 *   COOKIE      server -> peer   cookie bound to the source address, server key, and
 *                                the server's second port for NAT discovery (0: none)
 *   REGISTER    peer -> server   name, key, private endpoints; cookie or token; MAC
 *   REGISTERED  server -> peer   the public endpoint seen, the next cookie, a token
 *                                for the peer's next start; MAC
 *   CONNECT     peer -> server   introduce me to NAME; MAC
 *   INTRODUCE   server -> peer   the other side's key and endpoints; MAC
 *   REFUSED     server -> peer   why a REGISTER or CONNECT failed; MAC
 *   RELAY       both ways        a peer-to-peer message through punchd (§3.1)
 *   TURN_ADDR   both ways        a relayed address at a standard TURN server (RFC
 *                                8656, issue 15): peer -> server, the sender's (the
 *                                server keeps it and answers with the same message as
 *                                the receipt); server -> peer, beside an INTRODUCE,
 *                                the introduced peer's, in that session; MAC.
 *                                A type of its own, so REGISTER and INTRODUCE keep
 *                                their layout: an older punchd or peer drops it as
 *                                an unknown type (counted) and works as before
 *                                (docs/protocol.md, "TURN_ADDR").
 *   RELAY_RATE  server -> peer   beside an INTRODUCE that offers the relay: the rates
 *                                (bytes and datagrams per second) the relay lets
 *                                the receiver send in that session, the least of
 *                                its limits per session, per source and per
 *                                destination peer, so the peer's streams pace
 *                                below them (docs/streams.md, "Pacing through the
 *                                relay"); MAC. A type of its own, as TURN_ADDR: an
 *                                older peer drops it (counted) and bursts as before.
 *   TCP_OFFER   peer -> peer     TCP endpoints for a TCP path (§3.5, §3.2), only ever
 *                                inside the encrypted session (never on the wire alone)
 * Between peers, the Noise messages of src/crypto (handshake and transport)
 * go under the types PUNCH_MSG_HANDSHAKE1/2 and PUNCH_MSG_DATA.
 *
 * Every multi-byte number is big-endian. An endpoint is 19 bytes: family (4
 * or 6), port, 16 address bytes (IPv4 in the first 4). The MAC (16 bytes,
 * last) is computed by src/crypto over everything before it; this module
 * only places it.
 */
#ifndef PUNCH_WIRE_MSG_H
#define PUNCH_WIRE_MSG_H

#include "punch/punch.h"

#define PUNCH_MSG_MAGIC 0x70
#define PUNCH_MSG_TXID_LEN 8
#define PUNCH_MSG_COOKIE_LEN 16
#define PUNCH_MSG_KEY_LEN 32
#define PUNCH_MSG_MAC_LEN 16
#define PUNCH_MSG_SESSION_LEN 8
#define PUNCH_MSG_ENDPOINT_LEN 19
#define PUNCH_MSG_NAME_MAX 63
#define PUNCH_MSG_MAX_PRIVATE 8
/* An address-validation token (src/crypto/auth.h, PUNCH_AUTH_TOKEN_LEN). */
#define PUNCH_MSG_TOKEN_LEN 24
/* HELLO is padded to this size, so COOKIE never amplifies (SPEC.md §4). */
#define PUNCH_MSG_HELLO_LEN 96

typedef enum punch_msg_type {
    PUNCH_MSG_HELLO = 0x01,
    PUNCH_MSG_COOKIE = 0x02,
    PUNCH_MSG_REGISTER = 0x03,
    PUNCH_MSG_REGISTERED = 0x04,
    PUNCH_MSG_CONNECT = 0x05,
    PUNCH_MSG_INTRODUCE = 0x06,
    PUNCH_MSG_REFUSED = 0x07,
    PUNCH_MSG_RELAY = 0x08,
    PUNCH_MSG_TURN_ADDR = 0x09,
    PUNCH_MSG_RELAY_RATE = 0x0a,
    PUNCH_MSG_HANDSHAKE1 = 0x10,
    PUNCH_MSG_HANDSHAKE2 = 0x11,
    PUNCH_MSG_DATA = 0x12,
    PUNCH_MSG_TCP_OFFER = 0x20,
} punch_msg_type;

/* Why the server refused (REFUSED.code). */
typedef enum punch_refusal {
    PUNCH_REFUSED_COOKIE = 1,      /* stale or wrong cookie: ask again */
    PUNCH_REFUSED_NAME_TAKEN = 2,  /* the name belongs to another key */
    PUNCH_REFUSED_NO_PEER = 3,     /* CONNECT: nobody by that name */
    PUNCH_REFUSED_KEY_MISMATCH = 4,/* CONNECT: the name has another key than pinned */
    PUNCH_REFUSED_FULL = 5,        /* the server's tables are full */
    PUNCH_REFUSED_NOT_REGISTERED = 6,
} punch_refusal;

/* REGISTER.nat_mapping / INTRODUCE.nat_mapping */
typedef enum punch_msg_nat {
    PUNCH_MSG_NAT_UNKNOWN = 0,
    PUNCH_MSG_NAT_EIM = 1,   /* one public endpoint for every destination */
    PUNCH_MSG_NAT_ADM = 2,   /* a new one per destination address */
    PUNCH_MSG_NAT_APDM = 3,  /* a new one per destination address and port */
} punch_msg_nat;

/* TCP_OFFER.flags (any other bit is malformed) */
enum {
    PUNCH_TCP_FLAG_ANSWER = 0x01,     /* an answer to the offer of the same attempt */
    PUNCH_TCP_FLAG_REACHABLE = 0x02,  /* the sender's TCP endpoint is not behind a NAT */
    PUNCH_TCP_FLAG_PREFER = 0x04,     /* the sender asked for a TCP path */
    PUNCH_TCP_FLAGS_ALL = 0x07,
};

/* INTRODUCE.flags */
enum {
    PUNCH_INTRO_INITIATOR = 0x01,  /* you asked for this connection */
    PUNCH_INTRO_RELAY = 0x02,      /* the server will relay this session */
};

typedef struct punch_msg {
    punch_msg_type type;
    uint8_t txid[PUNCH_MSG_TXID_LEN];
    uint8_t cookie[PUNCH_MSG_COOKIE_LEN];      /* COOKIE, REGISTER, REGISTERED (next) */
    uint8_t key[PUNCH_MSG_KEY_LEN];            /* COOKIE: server; REGISTER/CONNECT: sender;
                                                  CONNECT: also pinned peer key (peer_key);
                                                  INTRODUCE: the peer's; TURN_ADDR: whose
                                                  relayed address it is; RELAY_RATE: the
                                                  session's other peer */
    uint8_t peer_key[PUNCH_MSG_KEY_LEN];       /* CONNECT: pinned key, all zero if none */
    uint16_t second_port;                      /* COOKIE: another port of the same server
                                                  IP that answers STUN Binding (0: none) */
    uint8_t session[PUNCH_MSG_SESSION_LEN];    /* INTRODUCE, RELAY, TURN_ADDR (server ->
                                                  peer; all zero: the receipt), RELAY_RATE */
    char name[PUNCH_MSG_NAME_MAX + 1];         /* REGISTER: mine; CONNECT, INTRODUCE: peer's */
    punch_addr public_addr;                    /* REGISTERED: mine as seen; INTRODUCE: peer's;
                                                  TCP_OFFER: the sender's TCP endpoint */
    punch_addr relayed;                        /* TURN_ADDR: the relayed address */
    size_t n_private;
    punch_addr private_addr[PUNCH_MSG_MAX_PRIVATE];
    uint8_t n_mapped;                          /* REGISTER, INTRODUCE: the last n_mapped
                                                  private endpoints are ports the sender's
                                                  gateway mapped on request (portmap), not
                                                  interface addresses; at most n_private */
    uint16_t code;                             /* REFUSED: punch_refusal */
    uint16_t keepalive_s;                      /* REGISTERED: re-register this often */
    uint8_t flags;                             /* INTRODUCE, TCP_OFFER */
    uint16_t attempt;                          /* TCP_OFFER: 1, 2, ... (0 is malformed) */
    uint16_t delay_ms;                         /* TCP_OFFER: answer's connect delay */
    uint16_t rtt_ms;                           /* REGISTER: the sender's round trip to the
                                                  server; INTRODUCE: the peer's; 0 unknown */
    /* REGISTER: the sender's NAT as it found it (draft §3.4); INTRODUCE: the
     * peer's. nat_mapping: punch_msg_nat; nat_step: the allocation step
     * (two's complement, 0: none or unpredictable); nat_port: the public
     * port of its latest mapping, which the next one follows. */
    uint8_t nat_mapping;
    uint16_t nat_step;
    uint16_t nat_port;
    /* REGISTER: larger with every new REGISTER transaction of the sender
     * (its monotonic clock in ms, or more), so punchd can tell a replayed
     * old REGISTER from a new one and never lets one move a peer back to
     * an old address (issue 12, finding 8). */
    uint64_t sequence;
    /* REGISTER: a token from an earlier REGISTERED, standing for the cookie
     * (0 bytes: none); REGISTERED: a token for the next start. On the wire
     * a length byte, 0 or PUNCH_MSG_TOKEN_LEN, then the token. */
    uint8_t token_len;
    uint8_t token[PUNCH_MSG_TOKEN_LEN];
    /* RELAY_RATE: what the relay forwards from the receiver in the session,
     * per second; 0 is malformed (a relay without a limit tells none). */
    uint32_t relay_bytes_per_s;
    uint32_t relay_packets_per_s;
    const uint8_t *payload;                    /* RELAY, HANDSHAKE1/2, DATA: the rest */
    size_t payload_len;
    const uint8_t *mac;                        /* signalling messages that carry one */
    size_t mac_offset;                         /* bytes covered by the MAC */
} punch_msg;

/* True when name (NUL-terminated) is a valid peer name: 1 to 63 bytes of
 * printable ASCII without spaces, quotes or backslashes, as names end up in
 * logs and JSON events as they are. */
bool punch_msg_valid_name(const char *name);

/* True when buf starts like a punch message. */
bool punch_msg_is_msg(const uint8_t *buf, size_t len);

/* Decode buf into m (pointers point into buf). Checks every length and
 * value range; unknown types and trailing bytes are malformed.
 * Returns 0, PUNCH_ERR_MALFORMED or PUNCH_ERR_INVAL. */
int punch_msg_decode(const uint8_t *buf, size_t len, punch_msg *m);

/* One endpoint as the messages carry it (family, port, 16 address bytes).
 * Returns 0 or PUNCH_ERR_INVAL (no such family) / PUNCH_ERR_MALFORMED. */
int punch_msg_put_endpoint(uint8_t out[PUNCH_MSG_ENDPOINT_LEN], const punch_addr *a);
int punch_msg_get_endpoint(const uint8_t in[PUNCH_MSG_ENDPOINT_LEN], punch_addr *a);

/* Encode m (type-dependent fields) into buf. For messages with a MAC, the
 * MAC bytes are left zero at out[*len - 16 .. *len): compute it over
 * out[0 .. *len - 16) and write it there. Payload types copy m->payload.
 * Returns 0, PUNCH_ERR_NOBUFS or PUNCH_ERR_INVAL (name too long, too many
 * private endpoints, bad address family). */
int punch_msg_encode(const punch_msg *m, uint8_t *buf, size_t cap, size_t *len);

/* Whether a message type carries a MAC at its end. */
bool punch_msg_has_mac(punch_msg_type type);

#endif
