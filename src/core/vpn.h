/*
 * punch vpn's packet rules, sans-I/O (docs/vpn.md): which IPv4 packets read
 * from the TUN go to the peer, which of the peer's datagrams are written to
 * the TUN, and the HELLO by which each side learns the other's tunnel
 * address. The rule is WireGuard's allowed-ips: the peer may send only from
 * its own tunnel address and from the networks configured as behind it
 * (--route), and only packets for those go to it. Everything else is
 * dropped and counted, never logged per packet.
 *
 * A punch datagram of the tunnel is either a whole IPv4 packet (its first
 * byte 0x45..0x4F) or a control message, whose first byte is 0 (no IP
 * version): so the tunnel adds no header of its own and the TUN's MTU is the
 * largest punch datagram, PUNCH_MAX_DATAGRAM.
 */
#ifndef PUNCH_CORE_VPN_H
#define PUNCH_CORE_VPN_H

#include "punch/punch.h"

#define PUNCH_VPN_MAX_ROUTES 16
/* HELLO: 0x00 (control), 0x01 (HELLO), flags, prefix length, IPv4 tunnel
 * address, MTU (big-endian). Longer ones are taken (room to grow). */
#define PUNCH_VPN_HELLO_LEN 10
#define PUNCH_VPN_HELLO_SEEN 0x01 /* flag: the sender has the receiver's HELLO */
/* "255.255.255.255/32" and its NUL, with room for any uint8_t length. */
#define PUNCH_VPN_PREFIX_STRLEN 20

typedef struct punch_vpn_prefix {
    uint8_t ip[4];
    uint8_t len; /* 0..32 */
} punch_vpn_prefix;

/* Parse "A.B.C.D/N" (decimal octets without leading zeros, N 0..32). Returns
 * 0 or PUNCH_ERR_INVAL. */
int punch_vpn_prefix_parse(const char *text, punch_vpn_prefix *out);
void punch_vpn_prefix_format(const punch_vpn_prefix *p, char buf[PUNCH_VPN_PREFIX_STRLEN]);
bool punch_vpn_prefix_contains(const punch_vpn_prefix *p, const uint8_t ip[4]);
/* p with its host bits cleared (the network it names). */
punch_vpn_prefix punch_vpn_prefix_network(const punch_vpn_prefix *p);

typedef struct punch_vpn_counters {
    uint64_t tun_packets, tun_bytes;   /* read from the TUN and passed for the peer */
    uint64_t peer_packets, peer_bytes; /* from the peer, passed for the TUN */
    uint64_t hellos;                   /* HELLOs taken from the peer */
    /* Drops, from the TUN: */
    uint64_t tun_not_ipv4, tun_malformed, tun_oversize, tun_no_route;
    /* ...and from the peer: a source outside its allowed range, a HELLO
     * whose address is outside ours (or is ours), an unknown control message. */
    uint64_t peer_not_ipv4, peer_malformed, peer_source, peer_hello_refused, peer_control;
} punch_vpn_counters;

typedef struct punch_vpn {
    punch_vpn_prefix self;  /* our tunnel address and its network */
    punch_vpn_prefix routes[PUNCH_VPN_MAX_ROUTES]; /* networks behind the peer */
    size_t n_routes;
    uint16_t mtu;
    /* The peer, from its last HELLO: */
    bool peer_known;
    punch_vpn_prefix peer;  /* its tunnel address and prefix length */
    uint16_t peer_mtu;
    bool peer_has_ours;     /* its last HELLO said it has ours */
    /* Set by the last punch_vpn_from_peer that returned HELLO: */
    bool answer_due;        /* send our HELLO now: the peer lacks it, or thinks we lack its */
    bool peer_changed;      /* its address is new */
    punch_vpn_prefix refused; /* the address of the last HELLO_REFUSED */
    punch_vpn_counters c;
} punch_vpn;

/* Returns 0, or PUNCH_ERR_INVAL (more than PUNCH_VPN_MAX_ROUTES routes, mtu
 * over PUNCH_MAX_DATAGRAM or under 68, RFC 791's minimum). */
int punch_vpn_init(punch_vpn *v, const punch_vpn_prefix *self, const punch_vpn_prefix *routes,
                   size_t n_routes, uint16_t mtu);
/* A new session with the peer: its HELLO must come again. */
void punch_vpn_peer_reset(punch_vpn *v);

/* A packet read from the TUN (at most cap bytes of it are in pkt; len is
 * what the read returned). True: send pkt[0..len) to the peer. False: dropped
 * and counted (not IPv4, malformed, over PUNCH_MAX_DATAGRAM, or for an
 * address that is not the peer's nor behind it). */
bool punch_vpn_from_tun(punch_vpn *v, uint8_t *pkt, size_t len);

typedef enum punch_vpn_verdict {
    PUNCH_VPN_DROP = 0,       /* counted */
    PUNCH_VPN_DELIVER,        /* write data[0..*ip_len) to the TUN */
    PUNCH_VPN_HELLO,          /* the peer's HELLO, taken: see answer_due, peer_changed */
    PUNCH_VPN_HELLO_REFUSED,  /* a HELLO with an address outside our networks (counted) */
} punch_vpn_verdict;

/* A datagram from the peer. */
punch_vpn_verdict punch_vpn_from_peer(punch_vpn *v, uint8_t *data, size_t len, size_t *ip_len);

/* Whether a HELLO should still be sent now and then: we lack the peer's,
 * or it lacks ours. */
bool punch_vpn_hello_needed(const punch_vpn *v);
/* Our HELLO (PUNCH_VPN_HELLO_LEN bytes). */
void punch_vpn_hello_write(const punch_vpn *v, uint8_t out[PUNCH_VPN_HELLO_LEN]);

#endif
