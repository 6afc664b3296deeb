/* SPDX-License-Identifier: MIT */
/*
 * punch vpn's packet rules, sans-I/O (docs/vpn.md): which IPv4 and IPv6
 * packets read from the TUN go to the peer, which of the peer's datagrams
 * are written to the TUN, and the HELLO by which each side learns the
 * other's tunnel addresses. The rule is WireGuard's allowed-ips: the peer
 * may send only from its own tunnel addresses and from the networks
 * configured as behind it (--route), and only packets for those go to it.
 * Everything else is dropped and counted, never logged per packet.
 *
 * A punch datagram of the tunnel is either a whole IP packet (its first
 * byte's high nibble the version, 4 or 6) or a control message, whose first
 * byte is 0 (no IP version): so the tunnel adds no header of its own and
 * the TUN's MTU is the largest datagram the agent carries for it,
 * PUNCH_MAX_DATAGRAM_LARGE (1280: IPv6's minimum, RFC 8200 §5).
 */
#ifndef PUNCH_CORE_VPN_H
#define PUNCH_CORE_VPN_H

#include "punch/punch.h"

#define PUNCH_VPN_MAX_ROUTES 16
#define PUNCH_VPN_MAX_MTU PUNCH_MAX_DATAGRAM_LARGE
#define PUNCH_VPN_IPV4_MIN_MTU 68    /* RFC 791: every host takes 68-byte datagrams whole */
#define PUNCH_VPN_IPV6_MIN_MTU 1280  /* RFC 8200 §5: every link carries 1280 bytes whole */
/* HELLO: 0x00 (control), 0x01 (HELLO), flags, IPv4 prefix length, IPv4
 * tunnel address, MTU (big-endian): 10 bytes; then, when the sender has an
 * IPv6 address, its prefix length and the address: 27. A prefix length of
 * 0 says "no address of this family". Longer ones are taken (room to grow). */
#define PUNCH_VPN_HELLO_LEN 10
#define PUNCH_VPN_HELLO6_LEN 27
#define PUNCH_VPN_HELLO_MAX PUNCH_VPN_HELLO6_LEN
#define PUNCH_VPN_HELLO_SEEN 0x01 /* flag: the sender has the receiver's HELLO */
/* "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128" and its NUL, with room for
 * any uint8_t length. */
#define PUNCH_VPN_PREFIX_STRLEN 45

typedef struct punch_vpn_prefix {
    uint8_t family; /* PUNCH_AF_INET (ip[0..3]), PUNCH_AF_INET6; PUNCH_AF_NONE: none */
    uint8_t ip[16];
    uint8_t len;    /* 0..32, 0..128 */
} punch_vpn_prefix;

/* Parse "A.B.C.D/N" (decimal octets without leading zeros, N 0..32) or an
 * IPv6 address in RFC 4291 §2.2 text (hex groups, one "::"; no embedded
 * IPv4) with "/N", N 0..128. Returns 0 or PUNCH_ERR_INVAL. */
int punch_vpn_prefix_parse(const char *text, punch_vpn_prefix *out);
/* RFC 5952 form for IPv6 (lower case, the longest run of zeros as "::"). */
void punch_vpn_prefix_format(const punch_vpn_prefix *p, char buf[PUNCH_VPN_PREFIX_STRLEN]);
/* Whether ip, of this family, lies in p (never for another family). */
bool punch_vpn_prefix_contains(const punch_vpn_prefix *p, uint8_t family, const uint8_t *ip);
/* p with its host bits cleared (the network it names). */
punch_vpn_prefix punch_vpn_prefix_network(const punch_vpn_prefix *p);
/* Whether p is a host's address in its network, fit for --address: not
 * the network address (IPv4's, or IPv6's Subnet-Router anycast, RFC 4291
 * §2.6.1) nor IPv4's broadcast, except in /31, /32 (RFC 3021) and /127,
 * /128 (RFC 6164); not IPv6 multicast; prefix length not 0. */
bool punch_vpn_prefix_is_host(const punch_vpn_prefix *p);

typedef struct punch_vpn_counters {
    uint64_t tun_packets, tun_bytes;   /* read from the TUN and passed for the peer */
    uint64_t peer_packets, peer_bytes; /* from the peer, passed for the TUN */
    uint64_t hellos;                   /* HELLOs taken from the peer */
    /* Drops, from the TUN: not IP, or of a version the tunnel has no
     * address of; IPv4 malformed or to no one behind the tunnel; IPv6 the
     * same; larger than any datagram. */
    uint64_t tun_not_ip, tun_malformed, tun_no_route, tun_ipv6_malformed, tun_ipv6_no_route,
        tun_oversize;
    /* ...and from the peer: the same, a source outside its allowed range
     * (IPv4, IPv6), a HELLO whose address is outside ours (or is ours), an
     * unknown control message. */
    uint64_t peer_not_ip, peer_malformed, peer_source, peer_ipv6_malformed, peer_ipv6_source,
        peer_hello_refused, peer_control;
} punch_vpn_counters;

typedef struct punch_vpn {
    punch_vpn_prefix self4, self6; /* our tunnel addresses and networks (family NONE: none) */
    punch_vpn_prefix routes[PUNCH_VPN_MAX_ROUTES]; /* networks behind the peer */
    size_t n_routes;
    uint16_t mtu;
    /* The peer, from its last HELLO (family NONE: it gave none we carry): */
    bool peer_known;
    punch_vpn_prefix peer4, peer6;
    uint16_t peer_mtu;
    bool peer_has_ours;     /* its last HELLO said it has ours */
    /* Set by the last punch_vpn_from_peer that returned HELLO: */
    bool answer_due;        /* send our HELLO now: the peer lacks it, or thinks we lack its */
    bool peer_changed;      /* its addresses are new */
    punch_vpn_prefix refused; /* the address of the last HELLO_REFUSED */
    punch_vpn_counters c;
} punch_vpn;

/* self4 and self6 (either may be NULL, not both) are our addresses with
 * their networks. Returns 0, or PUNCH_ERR_INVAL: neither address, one of
 * the wrong family, more than PUNCH_VPN_MAX_ROUTES routes, a route of a
 * family we have no address of, mtu over PUNCH_VPN_MAX_MTU or under 68
 * (1280 with an IPv6 address). */
int punch_vpn_init(punch_vpn *v, const punch_vpn_prefix *self4, const punch_vpn_prefix *self6,
                   const punch_vpn_prefix *routes, size_t n_routes, uint16_t mtu);
/* A new session with the peer: its HELLO must come again. */
void punch_vpn_peer_reset(punch_vpn *v);

/* A packet read from the TUN (len is what the read returned). True: send
 * pkt[0..len) to the peer. False: dropped and counted (not IP of a family
 * we have, malformed, over PUNCH_VPN_MAX_MTU, or for an address that is
 * not the peer's nor behind it). */
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
/* Our HELLO; returns its length (PUNCH_VPN_HELLO_LEN, or
 * PUNCH_VPN_HELLO6_LEN with an IPv6 address). */
size_t punch_vpn_hello_write(const punch_vpn *v, uint8_t out[PUNCH_VPN_HELLO_MAX]);

#endif
