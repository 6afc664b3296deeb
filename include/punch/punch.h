/* SPDX-License-Identifier: MIT */
/*
 * punch — peer-to-peer connectivity across NATs and firewalls.
 *
 * punch/punch.h: the sans-I/O core of libpunch, the header every program
 * includes. Nothing here opens a socket, reads a clock or draws randomness;
 * the caller passes time in and takes bytes out. The optional I/O around
 * it: punch/io.h (the loop, key files, the log, the threading rule),
 * punch/driver.h (one agent on its sockets), punch/stream.h (reliable
 * streams). The reference: libpunch(3); the tutorial: docs/tutorial.md.
 */
#ifndef PUNCH_PUNCH_H
#define PUNCH_PUNCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Error codes: every function returning int gives 0 or one of these. */
enum {
    PUNCH_OK = 0,
    PUNCH_ERR_INVAL = -1,       /* a caller's argument is out of range */
    PUNCH_ERR_NOBUFS = -2,      /* the caller's buffer is too small */
    PUNCH_ERR_MALFORMED = -3,   /* input bytes are not well-formed */
    PUNCH_ERR_INTEGRITY = -4,   /* a MAC, checksum or signature did not verify */
    PUNCH_ERR_NOMEM = -5,       /* allocation failed */
    PUNCH_ERR_NOTFOUND = -6,    /* the thing asked for is not there */
    PUNCH_ERR_UNSUPPORTED = -7, /* understood, but not supported */
    PUNCH_ERR_LIMIT = -8,       /* a configured capacity or rate was reached */
    PUNCH_ERR_IO = -9,          /* a system call failed (src/io only); see errno */
};

/* A static, human-readable description of a PUNCH_ERR_* value. */
const char *punch_strerror(int err);

/* The library version, "MAJOR.MINOR.PATCH". */
const char *punch_version(void);

/* A transport address without socket headers, so the pure layers can use it.
 * family is PUNCH_AF_INET (ip[0..3] used) or PUNCH_AF_INET6 (ip[0..15]);
 * port is in host byte order. */
enum { PUNCH_AF_NONE = 0, PUNCH_AF_INET = 4, PUNCH_AF_INET6 = 6 };

typedef struct punch_addr {
    uint8_t family;
    uint16_t port;
    uint8_t ip[16];
} punch_addr;

/* True when both name the same family, IP and port. */
bool punch_addr_equal(const punch_addr *a, const punch_addr *b);
/* True when both name the same family and IP, whatever the ports. */
bool punch_addr_same_ip(const punch_addr *a, const punch_addr *b);
/* True for 0.0.0.0 and ::. */
bool punch_addr_is_any(const punch_addr *a);


/* ---- Identity keys ----------------------------------------------------------
 *
 * A node's identity is an X25519 key pair (SPEC.md §4): 32 secret bytes
 * from a CSPRNG (punch_random_bytes, punch/io.h), stored in a key file
 * (punch_key_file_save) and given to an agent (punch_agent_cfg.secret_key);
 * its public key is what peers pin and what `punch keygen` prints. */

#define PUNCH_KEY_BYTES 32
/* Standard base64 of 32 bytes with padding (44 characters), plus NUL. */
#define PUNCH_KEY_B64_LEN 45
/* The public key of a secret (any 32 bytes: X25519 clamps them). Returns
 * 0 or PUNCH_ERR_INVAL (a NULL pointer, or libsodium failed to start). */
int punch_key_public(const uint8_t secret[PUNCH_KEY_BYTES],
                     uint8_t public_key[PUNCH_KEY_BYTES]);
/* A key (public or secret) as text: standard base64 with padding. */
void punch_key_encode(const uint8_t key[PUNCH_KEY_BYTES], char out[PUNCH_KEY_B64_LEN]);
/* Text back to a key: exactly the 44 characters of punch_key_encode, with
 * optional trailing whitespace. Returns 0 or PUNCH_ERR_MALFORMED. */
int punch_key_decode(const char *text, uint8_t key[PUNCH_KEY_BYTES]);

/* ---- The peer agent (sans-I/O) --------------------------------------------
 *
 * One agent is one node: it registers with punchd, asks it for
 * introductions, punches holes to peers and keeps the best path to each one
 * (draft §3.3), with punchd's relay as the last resort (§3.1). Everything it
 * sends is authenticated; peers talk Noise IK (SPEC.md §4).
 *
 * It owns no socket, clock or randomness: the caller hands in datagrams
 * received on its one UDP socket (punch_agent_handle_datagram), calls
 * punch_agent_handle_timeout when punch_agent_next_timeout says, and drains
 * punch_agent_poll_transmit (datagrams to send) and punch_agent_poll_event.
 * Its queues are bounded (256 datagrams, 128 events) and drop the oldest
 * when full (counted: punch_agent_stats), so a caller with a large batch of
 * received datagrams drains both every few dozen of them, not once at the end.
 */
typedef struct punch_agent punch_agent;

#define PUNCH_NAME_MAX 63
#define PUNCH_MAX_LOCAL 8
#define PUNCH_NAT64_PREFIX_LEN 12 /* the bytes of the longest NAT64 prefix, /96 */

/* A NAT64 prefix (RFC 6052 §2.2): the first `bits` bits of ip, the rest
 * zero. bits is 32, 40, 48, 56, 64 or 96; 0 means the well-known prefix
 * 64:ff9b::/96 (RFC 6052 §2.1). Bits 64-71 (the u-octet) are zero. */
typedef struct punch_nat64_prefix {
    uint8_t ip[PUNCH_NAT64_PREFIX_LEN];
    uint8_t bits;
} punch_nat64_prefix;

/* Servers an agent knows (punch_agent_cfg.server and .more_servers). */
#define PUNCH_MAX_SERVERS 8
/* The largest application datagram punch_agent_send takes: what fits a
 * 1280-byte IPv6 minimum MTU path after IP, UDP, relay and crypto headers. */
#define PUNCH_MAX_DATAGRAM 1152
/* The largest with PUNCH_AGENT_LARGE_DATAGRAMS: a whole IPv6 packet of the
 * 1280-byte minimum link MTU (RFC 8200 §5), for tunnels that carry IPv6
 * (docs/vpn.md). Up to 1373 bytes on the wire (through the relay, over
 * IPv6): more than a 1280-byte path carries, so the outer packet may be
 * fragmented by the sender's kernel on such a path. */
#define PUNCH_MAX_DATAGRAM_LARGE 1280

enum {
    PUNCH_AGENT_NO_RELAY = 0x1,   /* never use the relay */
    PUNCH_AGENT_RELAY_ONLY = 0x2, /* only the relay (no direct probing) */
    PUNCH_AGENT_NO_DIRECT = 0x2,  /* the same, as `punch --no-direct` says it */
    PUNCH_AGENT_PEER_INTRODUCTIONS = 0x4, /* take introductions from connected peers
                                             (punch_agent_introduce), not only the server */
    PUNCH_AGENT_NO_BIRTHDAY = 0x8,        /* no many-port probing (it opens up to 256
                                             more sockets for a while) */
    PUNCH_AGENT_TCP = 0x10,               /* ask every peer we connect to for a TCP path
                                             and prefer it (`punch connect --tcp`; the
                                             I/O driver makes the connections) */
    PUNCH_AGENT_LARGE_DATAGRAMS = 0x20,   /* send and deliver datagrams up to
                                             PUNCH_MAX_DATAGRAM_LARGE bytes, not
                                             PUNCH_MAX_DATAGRAM (`punch vpn`); both
                                             sides must set it */
    PUNCH_AGENT_NO_AES = 0x40,            /* never offer AES-256-GCM: sessions use
                                             ChaCha20-Poly1305 (`punch --cipher
                                             chacha20-poly1305`) */
    PUNCH_AGENT_NO_NAT64 = 0x80,          /* never synthesize NAT64 addresses
                                             (`punch --nat64-prefix off`) */
};

/* The AEAD that seals a session's datagrams (docs/protocol.md): peers that
 * both have AES instructions (libsodium's crypto_aead_aes256gcm_is_available)
 * agree on AES-256-GCM, others on ChaCha20-Poly1305, the default. The offers
 * travel inside the Noise handshake, so nobody between them can change the
 * choice. */
typedef enum punch_cipher {
    PUNCH_CIPHER_CHACHA20_POLY1305 = 0,
    PUNCH_CIPHER_AES256_GCM = 1,
} punch_cipher;

/* An address-validation token from punchd (like QUIC's NEW_TOKEN; docs/
 * protocol.md, docs/security.md): the caller keeps the latest one between
 * runs (PUNCH_EVENT_TOKEN; `punch` keeps it in its config folder, per
 * server) and hands it back in punch_agent_cfg.token: the next start then
 * registers in one flight, without the cookie round trip, and a CONNECT
 * goes in the same flight when the NAT mapped endpoint-independently last
 * time. A token that no longer works costs nothing: a HELLO goes beside it. */
#define PUNCH_TOKEN_BYTES 24
typedef struct punch_server_token {
    uint8_t server_key[PUNCH_KEY_BYTES]; /* the server that made it */
    uint8_t token[PUNCH_TOKEN_BYTES];
    uint8_t nat; /* our NAT's mapping as discovery found it then: 0 unknown, 1 eim,
                    2 adm, 3 apdm */
    uint16_t rtt_ms; /* our round trip to the server then (0: unknown): the first
                        REGISTER tells it, for the peers' low-TTL guard */
} punch_server_token;

typedef struct punch_agent_cfg {
    uint8_t secret_key[PUNCH_KEY_BYTES];   /* our identity (X25519) */
    const char *name;                      /* register as NAME; NULL: don't register */
    punch_addr server;                     /* punchd (the first one tried) */
    /* More punchd serving the same peers (`punch --server A --server B`, or
     * a name with several addresses): the agent registers at the first
     * that answers, keeps a round trip to each, and moves to another
     * within seconds when the one in use stops answering (direct sessions
     * stay up; relayed ones are introduced again there). The REGISTERED
     * event names the server in use. 0: `server` only. */
    size_t n_more_servers;
    punch_addr more_servers[PUNCH_MAX_SERVERS - 1];
    bool pin_server;                       /* refuse a server with another key */
    uint8_t server_key[PUNCH_KEY_BYTES];
    size_t n_local;                        /* our private endpoints (draft §3.3.2, §4.2) */
    punch_addr local[PUNCH_MAX_LOCAL];
    uint32_t flags;                        /* PUNCH_AGENT_* */
    uint32_t keepalive_ms;                 /* registration refresh; 0: 25 s */
    /* Linux's conntrack trap: a peer's punch that reaches our NAT before we
     * sent anything makes the NAT give our own later packet another public
     * port. So the first probes to a peer's public endpoint, for a guard
     * time, carry a TTL of open_ttl: enough to open our own NAT, too few to
     * reach the peer's (ZeroTier's and n2n's answer). open_ttl 0: 2 hops.
     * open_guard_ms 0: the guard follows from both sides' round trips to
     * the server (how much later the peer can start: the difference, plus
     * a margin; 100 ms when a round trip is unknown); another value: that
     * many ms; UINT32_MAX: never low TTL. */
    uint8_t open_ttl;
    uint32_t open_guard_ms;
    void (*random)(void *ctx, uint8_t *buf, size_t len);
    void *random_ctx;
    /* Port mapping (punch_portmap_proto): ask the gateway to map our port,
     * and offer the mapped endpoint to peers. PUNCH_PORTMAP_OFF (0) by
     * default; the caller talks to the gateway (punch_agent_poll_portmap). */
    uint8_t portmap;
    /* A token from an earlier run with `server`, the first server
     * (has_token); the others' are not told (PUNCH_EVENT_TOKEN). */
    bool has_token;
    punch_server_token token;
    /* A standard TURN server (RFC 8656, `punch --turn`, issue 15) with
     * long-term credentials (copied at creation); turn_server.family 0:
     * none. The agent allocates a relayed address there at the start,
     * keeps it alive and tells it (PUNCH_EVENT_TURN), or why it has none
     * (PUNCH_EVENT_ATTEMPT, technique turn, peer -1). The relayed address
     * goes to the rendezvous server (TURN_ADDR), which passes it on with
     * introductions; peers then relay through the TURN server (path
     * technique turn, kind relay) when nothing better works, and move to
     * a direct path when one opens. punchd's relay comes first. */
    punch_addr turn_server;
    const char *turn_username, *turn_password;
    /* The TURN server is reached over a stream (TCP or TLS, which the
     * caller carries: the I/O driver's turns:// and ?transport=tcp): its
     * requests are not retransmitted (RFC 8489 §6.2.2), only timed out. */
    bool turn_stream;
    /* NAT64 (RFC 6146; issue 16): on a host with IPv6 and no IPv4 of its
     * own (no IPv4 among `local`), the agent reaches an IPv4 server or
     * peer endpoint at its IPv4-embedded IPv6 address under this prefix
     * (RFC 6052 §2.2, any of its lengths), through the network's NAT64,
     * which is a NAT like any other to hole punching. bits 0: the
     * well-known prefix 64:ff9b::/96 (RFC 6052 §2.1; no DNS64 is asked,
     * RFC 7050). Off with PUNCH_AGENT_NO_NAT64. */
    punch_nat64_prefix nat64_prefix;
} punch_agent_cfg;

/* NULL when prefix is one RFC 6052 §2.2 allows (NULL or bits 0: the
 * well-known one), else why not, in a few words. */
const char *punch_nat64_prefix_check(const punch_nat64_prefix *prefix);
/* The IPv4-embedded IPv6 address of v4 under prefix (RFC 6052 §2.2; NULL
 * or bits 0: 64:ff9b::/96), suffix zero, port kept. Returns 0, or
 * PUNCH_ERR_INVAL (v4 not IPv4, or the prefix not allowed). The agent
 * synthesizes global IPv4 addresses only (RFC 6052 §3.1). */
int punch_nat64_synthesize(const punch_nat64_prefix *prefix, const punch_addr *v4, punch_addr *out);
/* Whether addr lies in the prefix with its u-octet zero (an address
 * punch_nat64_synthesize could have made, whatever its suffix). */
bool punch_nat64_is_synthesized(const punch_nat64_prefix *prefix, const punch_addr *addr);
/* The IPv4 address embedded in v6 under the prefix (port kept). Returns 0,
 * or PUNCH_ERR_INVAL when v6 is not under it. */
int punch_nat64_extract(const punch_nat64_prefix *prefix, const punch_addr *v6, punch_addr *out);
/* The servers of cfg that are IPv4, as the NAT64 reaches them, when the
 * host has IPv6 and no IPv4 (have_v4, have_v6) and NAT64 is not off.
 * The I/O driver calls it before choosing its socket's family;
 * punch_agent_new does the same from cfg->local. Returns how many it
 * rewrote. */
size_t punch_agent_cfg_nat64(punch_agent_cfg *cfg, bool have_v4, bool have_v6);

/* What happened; each kind's details are the punch_event member named in
 * its comment. */
typedef enum punch_event_kind {
    PUNCH_EVENT_REGISTERED = 1, /* .registered: punchd took us; our public endpoint */
    PUNCH_EVENT_INTRODUCED,     /* .introduced: we were told of a peer (name, key, endpoint) */
    PUNCH_EVENT_PATH,           /* .path: the path to a peer changed */
    PUNCH_EVENT_ATTEMPT,        /* .attempt: a technique was given up on, and why */
    PUNCH_EVENT_DATA,           /* .data: a datagram from a peer */
    PUNCH_EVENT_CLOSED,         /* .closed: the peer is gone, and why */
    PUNCH_EVENT_REFUSED,        /* .refused: the server refused us, and why */
    PUNCH_EVENT_SOCKETS,        /* .sockets: many-port probing's extra sockets may close */
    PUNCH_EVENT_TCP_OFFER,      /* .tcp_offer: the peer offers or answers a TCP path */
    PUNCH_EVENT_PORTMAP,        /* .portmap: the gateway mapped a port for us, or another */
    PUNCH_EVENT_PONG,           /* .pong: the answer to punch_agent_ping */
    PUNCH_EVENT_TOKEN,          /* .token: a new token from the server, or our NAT learned
                                   since: keep it for the next start (punch_agent_cfg) */
    PUNCH_EVENT_TURN,           /* .turn: the TURN server gave us a relayed address */
    PUNCH_EVENT_RTT,            /* .rtt: the path in use timed, its PATH event untimed */
} punch_event_kind;

typedef enum punch_path_kind { PUNCH_PATH_DIRECT = 1, PUNCH_PATH_RELAY } punch_path_kind;

/* How a path was found (SPEC.md §3 events). */
typedef enum punch_technique {
    PUNCH_TECH_PRIVATE = 1,  /* §3.3.2: the peer's private endpoint */
    PUNCH_TECH_HAIRPIN,      /* §3.3.3: the public endpoint, through our own NAT */
    PUNCH_TECH_HOLE_PUNCH,   /* §3.3.1: the public endpoint */
    PUNCH_TECH_PEER_REFLEXIVE, /* an address the peer's packets came from */
    PUNCH_TECH_RELAY,        /* §3.1 */
    PUNCH_TECH_PORT_PREDICTION, /* §3.4: a symmetric NAT's next port, predicted */
    PUNCH_TECH_BIRTHDAY,     /* many-port probing of a NAT with random ports */
    PUNCH_TECH_TCP_SIMOPEN,  /* §3.5: TCP simultaneous open */
    PUNCH_TECH_REVERSAL,     /* §3.2: the peer that was asked connected out to us (TCP) */
    PUNCH_TECH_TCP_DIRECT,   /* a TCP connection to a publicly reachable peer */
    PUNCH_TECH_PORTMAP,      /* §4.5 midcom as today: a port our or the peer's gateway
                                mapped on request (UPnP IGD, NAT-PMP, PCP) */
    PUNCH_TECH_TURN,         /* a standard TURN server's relay (RFC 8656, cfg.turn_server) */
} punch_technique;

/* The caller's sockets. An agent talks through one UDP socket, the main
 * one; many-port probing (PUNCH_TECH_BIRTHDAY) adds extra UDP sockets for
 * a while, and TCP paths (draft §3.5, §3.2, §4.4) add TCP connections the
 * caller makes. A punch_socket says which one a datagram leaves from
 * (punch_agent_poll_transmit_from) or came in on
 * (punch_agent_handle_datagram_on), and which one a path uses. */
typedef enum punch_socket_kind {
    PUNCH_SOCKET_MAIN = 0, /* the main UDP socket (index 0) */
    PUNCH_SOCKET_EXTRA,    /* the index-th extra UDP socket, 1..PUNCH_MAX_SOCKETS: the
                              caller opens it (same family as the main one, any port)
                              the first time it sees it, and closes it when a
                              PUNCH_EVENT_SOCKETS says so */
    PUNCH_SOCKET_TCP,      /* the TCP connection handed to punch_agent_tcp_path with this
                              index, 0..PUNCH_TCP_MAX_SOCKETS-1; datagrams on it are
                              framed by the caller (RFC 4571) */
} punch_socket_kind;

typedef struct punch_socket {
    punch_socket_kind kind;
    uint16_t index;
} punch_socket;

#define PUNCH_MAX_SOCKETS 1024
#define PUNCH_TCP_MAX_SOCKETS 256

/* TCP paths: the agent carries the offers over the encrypted session and
 * validates a TCP connection like any other candidate (PING/PONG, then
 * Noise transport over it); the I/O driver makes the connections. */
#define PUNCH_TCP_MAX_PRIVATE 4

typedef struct punch_tcp_offer {
    bool answer;             /* an answer to the peer's offer of the same attempt */
    bool reachable;          /* the sender's TCP endpoint is public (no NAT on the way) */
    bool prefer;             /* the sender asked for a TCP path: both prefer it */
    uint16_t attempt;        /* 1, 2, ...: each try with new ports */
    uint16_t delay_ms;       /* answer: the answerer connects this long after sending it */
    punch_addr public_addr;  /* the sender's TCP endpoint as punchd saw it */
    size_t n_private;
    punch_addr private_addr[PUNCH_TCP_MAX_PRIVATE];
} punch_tcp_offer;

/* Each kind of event has a struct of its own, in the union of punch_event
 * under the kind's name: ev.path.remote, ev.data.bytes, ev.closed.why. */

/* PUNCH_EVENT_REGISTERED: punchd took our registration. */
typedef struct punch_event_registered {
    punch_addr public_addr;  /* our endpoint as the server saw it */
    /* Our NAT as discovery found it (draft §3.4): "unknown", "eim", "adm" or
     * "apdm"; the allocation step (0: none or random) and the public port
     * of the latest mapping. */
    const char *nat;
    int port_step;
    uint16_t nat_port;
    bool by_token;           /* in one flight, with a token from an earlier run */
    punch_addr server;       /* the server that took us: the one in use from now on */
    uint32_t server_rtt_ms;  /* our round trip to it (0: not measured yet) */
    /* The same for the other family (issue 16), when the agent knows a
     * server address of it and has an endpoint of its own there (or a
     * NAT64 to it): other_family PUNCH_AF_INET or PUNCH_AF_INET6, else
     * PUNCH_AF_NONE (and other_nat NULL). */
    uint8_t other_family;
    const char *other_nat;
    int other_port_step;
} punch_event_registered;

/* PUNCH_EVENT_INTRODUCED: the server (or a peer) told us of a peer; its
 * name and key are the event's peer_name and peer_key. */
typedef struct punch_event_introduced {
    punch_addr public_addr;  /* the peer's endpoint as the server saw it */
} punch_event_introduced;

/* PUNCH_EVENT_PATH: the path to the peer changed; this one is in use now.
 * timed: rtt_us is a round trip measured on it (a PING's PONG); a path
 * taken before one was (on a message the peer sent there) is told at
 * once untimed (rtt_us 0) and PINGed: a PUNCH_EVENT_RTT with the same
 * fields follows when the PONG comes, unless another PATH event is first. */
typedef struct punch_event_path {
    punch_path_kind kind;
    punch_technique technique;
    punch_addr local;        /* AF_NONE: the caller knows (the socket's address) */
    punch_addr remote;
    bool timed;
    uint32_t rtt_us;
    punch_socket socket;     /* the socket the path leaves from */
    punch_cipher cipher;     /* the session's AEAD */
} punch_event_path;

/* PUNCH_EVENT_PONG: a punch_agent_ping answered: the path it went on and
 * back (technique, remote, socket: the path's; rtt_us: this round trip). */
typedef punch_event_path punch_event_pong;

/* PUNCH_EVENT_RTT: the first round trip of the path in use, whose PATH
 * event was untimed (fields as its PATH event's, timed). */
typedef punch_event_path punch_event_rtt;

/* PUNCH_EVENT_ATTEMPT: a technique was given up on (peer -1: not about a
 * peer, such as port mapping). */
typedef struct punch_event_attempt {
    punch_path_kind kind;
    punch_technique technique;
    punch_addr remote;       /* the endpoint tried, AF_NONE when none */
    char why[96];
} punch_event_attempt;

/* PUNCH_EVENT_DATA: a datagram from the peer. */
typedef struct punch_event_data {
    const uint8_t *bytes;    /* valid until the next call into the agent */
    size_t len;
} punch_event_data;

/* PUNCH_EVENT_CLOSED: the peer is gone; PUNCH_EVENT_REFUSED: the server
 * refused us. */
typedef struct punch_event_reason {
    char why[96];            /* "peer closed" when the peer said goodbye */
} punch_event_reason;

/* PUNCH_EVENT_SOCKETS: many-port probing is over, or its peer is gone;
 * its extra sockets first .. last may be closed, all but keep (0: none,
 * else the extra socket a path uses now). A run's sockets may take more
 * than one event; an index closed may be used again later (a new socket). */
typedef struct punch_event_sockets {
    uint16_t first, last, keep;
} punch_event_sockets;

/* PUNCH_EVENT_PORTMAP: the gateway mapped a port for us, or another one. */
typedef struct punch_event_portmap {
    punch_addr external;     /* the mapped endpoint */
    const char *proto;       /* "pcp", "natpmp" or "upnp" */
    uint32_t lifetime_s;
    uint32_t took_ms;        /* since this round's first request */
} punch_event_portmap;

/* PUNCH_EVENT_TURN: cfg.turn_server allocated us a relayed address, or
 * another one (after a new allocation); told again with offered once the
 * rendezvous server took it (its TURN_ADDR receipt): peers introduced from
 * then on learn it and can relay to us through the TURN server. */
typedef struct punch_event_turn {
    punch_addr relayed;      /* our address at the TURN server, for peers */
    punch_addr mapped;       /* our endpoint as the TURN server saw it */
    punch_addr server;
    bool offered;            /* the rendezvous server passes it on to peers */
} punch_event_turn;

typedef struct punch_event {
    punch_event_kind kind;
    int peer;                           /* the peer's id (>= 0), or -1 */
    char peer_name[PUNCH_NAME_MAX + 1]; /* with peer >= 0: its name and key */
    uint8_t peer_key[PUNCH_KEY_BYTES];
    union {                             /* the member named after kind */
        punch_event_registered registered;
        punch_event_introduced introduced;
        punch_event_path path;
        punch_event_attempt attempt;
        punch_event_data data;
        punch_event_reason closed, refused;
        punch_event_sockets sockets;
        punch_tcp_offer tcp_offer;     /* PUNCH_EVENT_TCP_OFFER */
        punch_event_portmap portmap;
        punch_event_pong pong;
        punch_event_rtt rtt;
        punch_server_token token;      /* PUNCH_EVENT_TOKEN */
        punch_event_turn turn;
    };
} punch_event;

/* Returns 0, PUNCH_ERR_INVAL (bad config: no random, bad server address,
 * bad name, a NAT64 prefix RFC 6052 does not allow) or PUNCH_ERR_NOMEM. Registration starts at once. */
int punch_agent_new(punch_agent **agent, const punch_agent_cfg *cfg, uint64_t now_ms);
/* Free the agent (NULL-safe). It sends nothing: punch_agent_close each peer
 * and send what that queues first, for a goodbye the peers hear at once. */
void punch_agent_free(punch_agent *agent);

/* Ask punchd to introduce us to NAME; with pinned_key non-NULL, only a peer
 * holding that key is accepted. Returns the peer id (>= 0), or
 * PUNCH_ERR_LIMIT (too many peers), PUNCH_ERR_INVAL (bad name). */
int punch_agent_connect(punch_agent *agent, uint64_t now_ms, const char *name,
                        const uint8_t *pinned_key);

/* Send one datagram to a peer on its current path. Returns 0,
 * PUNCH_ERR_NOTFOUND (no such peer), PUNCH_ERR_LIMIT (no path yet),
 * PUNCH_ERR_INVAL (len over PUNCH_MAX_DATAGRAM, or PUNCH_MAX_DATAGRAM_LARGE with
 * PUNCH_AGENT_LARGE_DATAGRAMS). */
int punch_agent_send(punch_agent *agent, uint64_t now_ms, int peer, const uint8_t *data,
                     size_t len);

/* Introduce two connected peers to each other without the server (draft
 * §3.3.1): each gets the other's key, name and endpoints over its
 * encrypted session with us, and they punch as after the server's
 * introduction (no relay: the server knows nothing of it). x is told it
 * asked. They take it only with PUNCH_AGENT_PEER_INTRODUCTIONS. Returns 0,
 * PUNCH_ERR_NOTFOUND (no such peers, or the same twice) or PUNCH_ERR_LIMIT
 * (one has no path yet). */
int punch_agent_introduce(punch_agent *agent, uint64_t now_ms, int x, int y);

typedef struct punch_agent_stats {
    uint64_t received;  /* datagrams handed to punch_agent_handle_datagram */
    uint64_t sent;      /* datagrams taken by punch_agent_poll_transmit */
    uint64_t dropped;   /* received and thrown away: malformed, not for us, forged,
                           replayed, refused introductions */
    uint64_t unsent;    /* for many-port probing's extra sockets, thrown away by
                           punch_agent_poll_transmit (use ..._from to send them) */
    uint64_t overflowed; /* queued but never sent: the queue (256) was full, and the
                            oldest made room for a newer one; poll sooner */
    uint64_t events_lost; /* events (DATA among them) never polled: the queue (128) was
                             full; poll events after every few datagrams */
    /* Peer slots (docs/security.md): a peer introduced without our asking
     * holds one only until its handshake completes or 4.8 s pass. */
    uint64_t expired;   /* such peers forgotten at that deadline (a CLOSED event each) */
    uint64_t evicted;   /* such peers pushed out by a newer introduction */
    uint64_t probes_withheld; /* probes not sent: the budget for addresses not
                                 verified yet was spent (draft §6.2) */
    uint64_t turned_away; /* introductions of such peers that found no slot: the
                             others still in their answer windows, or sessions */
    uint64_t readmitted;  /* such introductions given a slot later, when one came
                             free within 2 s (the newest first) */
    uint64_t server_failovers; /* with several servers: times the one in use stopped
                                  answering and the agent registered anew elsewhere */
} punch_agent_stats;
void punch_agent_stats_get(const punch_agent *agent, punch_agent_stats *out);

/* Ask the peer for a round trip now, on the path in use (an encrypted
 * PING; every punch peer answers): a PUNCH_EVENT_PONG tells the path and
 * the round trip when the answer comes. One at a time per peer: a second
 * call before the answer replaces the first; a PING lost, or one whose
 * answer a keepalive's PING overtook, gets no event (time it out). Returns
 * 0, PUNCH_ERR_NOTFOUND (no such peer) or PUNCH_ERR_LIMIT (no path yet). */
int punch_agent_ping(punch_agent *agent, uint64_t now_ms, int peer);

/* What punchd's relay forwards from us to peer, per second, in their
 * session: the least of its limits per session, per source and per
 * destination, as the server told it beside the introduction (RELAY_RATE),
 * for a sender to pace below (docs/streams.md, "Pacing through the
 * relay"). *bytes_per_s and *packets_per_s are 0 when it told none (an
 * older punchd, or no relay offered). Returns 0 or PUNCH_ERR_NOTFOUND. */
int punch_agent_relay_rate(const punch_agent *agent, int peer, uint32_t *bytes_per_s,
                           uint32_t *packets_per_s);

/* Tell the peer we are done, and forget it. */
void punch_agent_close(punch_agent *agent, uint64_t now_ms, int peer);

/* A datagram arrived on our socket from src. Anything not for us is
 * dropped and counted. Returns 0 or PUNCH_ERR_INVAL. */
int punch_agent_handle_datagram(punch_agent *agent, uint64_t now_ms, const punch_addr *src,
                                const uint8_t *data, size_t len);
/* Time has come (>= punch_agent_next_timeout): retransmit, probe, keep alive. */
void punch_agent_handle_timeout(punch_agent *agent, uint64_t now_ms);
/* When to call punch_agent_handle_timeout next (UINT64_MAX: not needed). */
uint64_t punch_agent_next_timeout(const punch_agent *agent);

/* Take the next datagram to send: 1 with dst, buf[0..*len) and *ttl (the
 * IP TTL / hop limit to send it with; 0: the system's default), 0 when none,
 * PUNCH_ERR_NOBUFS when cap is too small (it stays queued). Datagrams of
 * many-port probing, for extra sockets, are dropped here: callers that do
 * it use the two calls below (or set PUNCH_AGENT_NO_BIRTHDAY). */
int punch_agent_poll_transmit(punch_agent *agent, punch_addr *dst, uint8_t *ttl, uint8_t *buf,
                              size_t cap, size_t *len);

/* punch_agent_poll_transmit with the socket to send from (*sock: the
 * main one, an extra one of many-port probing, or a TCP path's), for
 * callers that carry those. */
int punch_agent_poll_transmit_from(punch_agent *agent, punch_socket *sock, punch_addr *dst,
                                   uint8_t *ttl, uint8_t *buf, size_t cap, size_t *len);
/* punch_agent_poll_transmit_from without the copy: *data points at the
 * datagram (*len bytes) in the agent's queue, valid until the agent queues
 * another (any call but the poll functions). Returns 1, 0 when none is
 * queued, or PUNCH_ERR_INVAL. */
int punch_agent_poll_transmit_view(punch_agent *agent, punch_socket *sock, punch_addr *dst,
                                   uint8_t *ttl, const uint8_t **data, size_t *len);
/* punch_agent_handle_datagram for what arrived on sock (a TCP path's
 * frame: src is the connection's far end). Returns 0 or PUNCH_ERR_INVAL
 * (no such socket). */
int punch_agent_handle_datagram_on(punch_agent *agent, uint64_t now_ms, punch_socket sock,
                                   const punch_addr *src, const uint8_t *data, size_t len);
/* The caller lost its stream to cfg.turn_server (turn_stream), or never
 * had one: the allocation is given up and why told (PUNCH_EVENT_ATTEMPT,
 * technique turn, peer -1). NULL-safe; nothing when there is no TURN
 * server or it already failed. */
void punch_agent_turn_down(punch_agent *agent, uint64_t now_ms, const char *why);
/* The caller's stream to cfg.turn_server is (back) up: after
 * punch_agent_turn_down, a new allocation (an ATTEMPT saying so, then a
 * PUNCH_EVENT_TURN with its relayed address; peers through it permitted
 * anew). NULL-safe; nothing unless the allocation was given up. */
void punch_agent_turn_up(punch_agent *agent, uint64_t now_ms);
/* Send a TCP offer or answer to a peer over its session. Returns 0,
 * PUNCH_ERR_NOTFOUND (no such peer), PUNCH_ERR_LIMIT (no session yet) or
 * PUNCH_ERR_INVAL (bad endpoints). An offer with prefer set makes us
 * prefer TCP paths to that peer. */
int punch_agent_tcp_offer(punch_agent *agent, uint64_t now_ms, int peer,
                          const punch_tcp_offer *offer);
/* A TCP connection to the peer is up on sock (kind PUNCH_SOCKET_TCP, an
 * index of the caller's choice), remote its far end, technique one of the
 * TCP ones: it becomes a candidate, validated by PING/PONG. Returns 0,
 * PUNCH_ERR_NOTFOUND, PUNCH_ERR_LIMIT (no session, or no room) or
 * PUNCH_ERR_INVAL (sock is no TCP socket, technique no TCP one). */
int punch_agent_tcp_path(punch_agent *agent, uint64_t now_ms, int peer, punch_socket sock,
                         punch_technique technique, const punch_addr *remote);
/* A TCP attempt failed (sock NULL: no connection was up), or the
 * connection on sock is gone: an ATTEMPT event says why, and a path on it
 * gives way to the next best. */
void punch_agent_tcp_failed(punch_agent *agent, uint64_t now_ms, int peer,
                            const punch_socket *sock, punch_technique technique,
                            const punch_addr *remote, const char *why);

/* Take the next event: 1 with *ev, 0 when none. */
int punch_agent_poll_event(punch_agent *agent, punch_event *ev);

/* Port mapping (PUNCH_TECH_PORTMAP, draft §4.5): the agent decides, the
 * caller talks to the gateway. With cfg.portmap set, the agent asks for a
 * mapping of our UDP port (punch_agent_poll_portmap); the caller runs the
 * protocol it names (off the event loop: UPnP blocks) and hands the
 * answer back (punch_agent_portmap_result). A mapping is offered to peers
 * with our private endpoints (REGISTER; punchd passes it on in INTRODUCE)
 * and renewed at half its lifetime. In auto mode PCP, NAT-PMP and UPnP
 * are tried in turn; when none answers, an ATTEMPT event (peer -1,
 * technique portmap) says so, and the agent asks again every 10 minutes. */
typedef enum punch_portmap_proto {
    PUNCH_PORTMAP_OFF = 0,
    PUNCH_PORTMAP_AUTO,
    PUNCH_PORTMAP_PCP,      /* RFC 6887 */
    PUNCH_PORTMAP_NATPMP,   /* RFC 6886 */
    PUNCH_PORTMAP_UPNP,     /* UPnP IGD (WANIPConnection AddPortMapping) */
} punch_portmap_proto;

typedef struct punch_portmap_request {
    punch_portmap_proto proto;  /* PCP, NATPMP or UPNP (never AUTO or OFF) */
    bool remove;                /* delete the mapping we hold (external, lifetime 0) */
    punch_addr external;        /* the one we hold (renewal, removal); AF_NONE: none yet */
    uint32_t lifetime_s;        /* asked for */
    uint8_t nonce[12];          /* PCP's mapping nonce (RFC 6887 §11.1), kept per mapping */
} punch_portmap_request;

typedef struct punch_portmap_result {
    punch_portmap_proto proto;  /* as asked */
    bool ok;
    punch_addr external;        /* ok: the mapped endpoint (the gateway's address and port) */
    uint32_t lifetime_s;        /* ok: as granted */
    char why[80];               /* not ok: what the gateway said, or that none answered */
} punch_portmap_result;

/* Does the agent want the gateway asked (a mapping, a renewal)? 1 with
 * *req filled, 0 when not (or one is under way: one at a time). */
int punch_agent_poll_portmap(punch_agent *agent, uint64_t now_ms, punch_portmap_request *req);
/* The answer to the request polled last. */
void punch_agent_portmap_result(punch_agent *agent, uint64_t now_ms,
                                const punch_portmap_result *res);
/* On exit: 1 with *req the removal of the mapping we hold (send it before
 * freeing the agent), 0 when we hold none. */
int punch_agent_portmap_release(punch_agent *agent, punch_portmap_request *req);
/* punch_portmap_proto_name: "off", "auto", "pcp", "natpmp", "upnp";
 * punch_portmap_proto_parse: such a name back, or -1 for others. */
const char *punch_portmap_proto_name(punch_portmap_proto p);
int punch_portmap_proto_parse(const char *name);

/* Names for events and logs: punch_path_kind_name gives "direct" or
 * "relay"; punch_technique_name "private", "hairpin",
 * "hole-punch", "peer-reflexive", "relay", "port-prediction", "birthday",
 * "tcp-simultaneous-open", "reversal", "tcp-direct", "portmap". */
const char *punch_path_kind_name(punch_path_kind k);
const char *punch_technique_name(punch_technique t);
/* "chacha20-poly1305" or "aes-256-gcm". */
const char *punch_cipher_name(punch_cipher c);
/* An address family's name for events and logs: "ipv4", "ipv6", or "none"
 * (a path event's remote address says which family the path took). */
const char *punch_family_name(uint8_t family);

#ifdef __cplusplus
}
#endif
#endif
