/* SPDX-License-Identifier: MIT */
/* punch vpn's packet rules: see vpn.h. */
#include "core/vpn.h"

#include <stdio.h>
#include <string.h>

#include "wire/bytes.h"
#include "wire/hex.h"
#include "wire/ipv4.h"

#define CONTROL 0x00
#define CONTROL_HELLO 0x01
#define IPV6_HEADER 40 /* RFC 8200 §3 */

/* ---- prefixes ---- */

static size_t addr_size(uint8_t family)
{
    return family == PUNCH_AF_INET6 ? 16 : 4;
}

static unsigned max_len(uint8_t family)
{
    return 8 * (unsigned)addr_size(family);
}

/* One decimal number of 1..max_digits digits, no leading zero, at most max. */
static const char *parse_number(const char *s, unsigned max, int max_digits, unsigned *out)
{
    unsigned v = 0;
    int n = 0;
    while (*s >= '0' && *s <= '9' && n < max_digits + 1) {
        if (n == 1 && v == 0)
            return NULL; /* "010": octal to inet_aton, decimal to others; refuse */
        v = v * 10 + (unsigned)(*s++ - '0');
        n++;
    }
    if (n == 0 || n > max_digits || v > max)
        return NULL;
    *out = v;
    return s;
}

/* One group of an IPv6 address: 1 to 4 hex digits. */
static const char *parse_group(const char *s, unsigned *out)
{
    unsigned v = 0;
    int n = 0, d;
    while ((d = punch_hex_digit(s[n])) >= 0) {
        if (++n > 4)
            return NULL;
        v = v * 16 + (unsigned)d;
    }
    *out = v;
    return n ? s + n : NULL;
}

/* "A.B.C.D": returns the end, or NULL. */
static const char *parse_ipv4(const char *s, uint8_t ip[4])
{
    unsigned v;
    for (int i = 0; i < 4; i++) {
        if (i && *s++ != '.')
            return NULL;
        if (!(s = parse_number(s, 255, 3, &v)))
            return NULL;
        ip[i] = (uint8_t)v;
    }
    return s;
}

/* RFC 4291 §2.2 forms 1 and 2: eight groups, or fewer with one "::"
 * standing for one or more groups of zeros. Returns the end, or NULL. */
static const char *parse_ipv6(const char *s, uint8_t ip[16])
{
    unsigned groups[8], n = 0, gap = 9, g; /* gap: where "::" stands; 9: nowhere */
    if (s[0] == ':' && s[1] == ':') {
        gap = 0;
        s += 2;
    }
    for (;;) {
        const char *end = parse_group(s, &g);
        if (!end) {
            if (gap == n) /* "::" just before: nothing must follow it */
                break;
            return NULL;
        }
        if (n == 8)
            return NULL;
        groups[n++] = g;
        s = end;
        if (s[0] != ':')
            break;
        if (s[1] == ':') {
            if (gap != 9)
                return NULL;
            gap = n;
            s += 2;
        } else {
            s++;
        }
    }
    if (gap == 9 ? n != 8 : n > 7)
        return NULL;
    memset(ip, 0, 16);
    for (unsigned i = 0; i < n; i++) {
        unsigned at = gap == 9 || i < gap ? i : 8 - n + i;
        punch_put16(ip + 2 * at, (uint16_t)groups[i]);
    }
    return s;
}

int punch_vpn_prefix_parse(const char *text, punch_vpn_prefix *out)
{
    punch_vpn_prefix p = {0};
    const char *s = text;
    unsigned v;
    if (!s || !out)
        return PUNCH_ERR_INVAL;
    p.family = strchr(s, ':') ? PUNCH_AF_INET6 : PUNCH_AF_INET;
    s = p.family == PUNCH_AF_INET6 ? parse_ipv6(s, p.ip) : parse_ipv4(s, p.ip);
    if (!s || *s++ != '/' || !(s = parse_number(s, max_len(p.family), 3, &v)) || *s)
        return PUNCH_ERR_INVAL;
    p.len = (uint8_t)v;
    *out = p;
    return 0;
}

/* RFC 5952 §4: leading zeros of a group left out, the longest run of two
 * or more zero groups (the first of equals) as "::", lower case. */
static int format_ipv6(const uint8_t ip[16], char *buf, size_t cap)
{
    int best = -1, best_run = 1, off = 0;
    for (int i = 0, run; i < 8; i += run + 1) {
        for (run = 0; i + run < 8 && punch_get16(ip + 2 * (i + run)) == 0; run++)
            ;
        if (run > best_run) {
            best = i;
            best_run = run;
        }
    }
    for (int i = 0; i < 8; i++) {
        if (i == best) {
            off += snprintf(buf + off, cap - (size_t)off, "::");
            i += best_run - 1;
            continue;
        }
        off += snprintf(buf + off, cap - (size_t)off, "%s%x",
                        i == 0 || i == best + best_run ? "" : ":", punch_get16(ip + 2 * i));
    }
    return off;
}

void punch_vpn_prefix_format(const punch_vpn_prefix *p, char buf[PUNCH_VPN_PREFIX_STRLEN])
{
    int off = 0;
    if (p->family == PUNCH_AF_INET6)
        off = format_ipv6(p->ip, buf, PUNCH_VPN_PREFIX_STRLEN);
    else
        off = snprintf(buf, PUNCH_VPN_PREFIX_STRLEN, "%u.%u.%u.%u", p->ip[0], p->ip[1], p->ip[2],
                       p->ip[3]);
    snprintf(buf + off, PUNCH_VPN_PREFIX_STRLEN - (size_t)off, "/%u", p->len);
}

/* Whether the first `bits` bits of a and b are the same. */
static bool same_bits(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned whole = bits / 8, rest = bits % 8;
    return memcmp(a, b, whole) == 0 &&
           (rest == 0 || ((a[whole] ^ b[whole]) & (uint8_t)(0xFF << (8 - rest))) == 0);
}

bool punch_vpn_prefix_contains(const punch_vpn_prefix *p, uint8_t family, const uint8_t *ip)
{
    return p->family == family && family != PUNCH_AF_NONE && p->len <= max_len(family) &&
           same_bits(p->ip, ip, p->len);
}

punch_vpn_prefix punch_vpn_prefix_network(const punch_vpn_prefix *p)
{
    punch_vpn_prefix n = *p;
    for (unsigned i = 0; i < addr_size(p->family); i++) {
        unsigned kept = p->len > 8 * i ? p->len - 8 * i : 0; /* bits of this byte kept */
        if (kept < 8)
            n.ip[i] &= (uint8_t)(0xFF << (8 - kept));
    }
    return n;
}

/* Whether every bit of p's address after its prefix length is `one`. */
static bool host_bits_are(const punch_vpn_prefix *p, unsigned one)
{
    for (unsigned bit = p->len; bit < max_len(p->family); bit++)
        if (((p->ip[bit / 8] >> (7 - bit % 8)) & 1u) != one)
            return false;
    return true;
}

bool punch_vpn_prefix_is_host(const punch_vpn_prefix *p)
{
    if (p->len == 0 || p->len > max_len(p->family))
        return false;
    if (p->len >= max_len(p->family) - 1) /* point-to-point and single-host networks */
        return p->family != PUNCH_AF_INET6 || p->ip[0] != 0xFF;
    if (p->family == PUNCH_AF_INET6)
        return p->ip[0] != 0xFF && !host_bits_are(p, 0);
    return !host_bits_are(p, 0) && !host_bits_are(p, 1);
}

/* ---- the tunnel ---- */

static bool valid_self(const punch_vpn_prefix *p, uint8_t family)
{
    return !p || (p->family == family && p->len <= max_len(family));
}

static const punch_vpn_prefix *self_of(const punch_vpn *v, uint8_t family)
{
    return family == PUNCH_AF_INET6 ? &v->self6 : &v->self4;
}

static const punch_vpn_prefix *peer_of(const punch_vpn *v, uint8_t family)
{
    return family == PUNCH_AF_INET6 ? &v->peer6 : &v->peer4;
}

int punch_vpn_init(punch_vpn *v, const punch_vpn_prefix *self4, const punch_vpn_prefix *self6,
                   const punch_vpn_prefix *routes, size_t n_routes, uint16_t mtu)
{
    if (!v || (!self4 && !self6) || !valid_self(self4, PUNCH_AF_INET) ||
        !valid_self(self6, PUNCH_AF_INET6) || n_routes > PUNCH_VPN_MAX_ROUTES ||
        (n_routes && !routes) || mtu > PUNCH_VPN_MAX_MTU ||
        mtu < (self6 ? PUNCH_VPN_IPV6_MIN_MTU : PUNCH_VPN_IPV4_MIN_MTU))
        return PUNCH_ERR_INVAL;
    memset(v, 0, sizeof(*v));
    if (self4)
        v->self4 = *self4;
    if (self6)
        v->self6 = *self6;
    for (size_t i = 0; i < n_routes; i++)
        if (self_of(v, routes[i].family)->family != routes[i].family ||
            routes[i].len > max_len(routes[i].family))
            return PUNCH_ERR_INVAL; /* a route of a family we have no address of */
    if (n_routes)
        memcpy(v->routes, routes, n_routes * sizeof(*routes));
    v->n_routes = n_routes;
    v->mtu = mtu;
    return 0;
}

void punch_vpn_peer_reset(punch_vpn *v)
{
    v->peer_known = v->peer_has_ours = false;
}

static bool behind_peer(const punch_vpn *v, uint8_t family, const uint8_t *ip)
{
    for (size_t i = 0; i < v->n_routes; i++)
        if (punch_vpn_prefix_contains(&v->routes[i], family, ip))
            return true;
    return false;
}

/* The peer's own address, or a network behind it: its allowed range. */
static bool peer_range(const punch_vpn *v, uint8_t family, const uint8_t *ip)
{
    const punch_vpn_prefix *peer = peer_of(v, family);
    return (v->peer_known && peer->family == family &&
            memcmp(ip, peer->ip, addr_size(family)) == 0) ||
           behind_peer(v, family, ip);
}

/* The family of an IP packet the tunnel carries (one we have an address
 * of), or PUNCH_AF_NONE. */
static uint8_t carried_family(const punch_vpn *v, const uint8_t *pkt, size_t len)
{
    uint8_t version = len ? pkt[0] >> 4 : 0;
    if (version == 4 && v->self4.family)
        return PUNCH_AF_INET;
    if (version == 6 && v->self6.family)
        return PUNCH_AF_INET6;
    return PUNCH_AF_NONE;
}

/* RFC 8200 §3: version 6, the payload length within the datagram. *ip_len
 * is the packet's length: bytes after it are not the packet's. (A payload
 * length of 0 announces a jumbogram, RFC 2675, which no 1280-byte packet
 * is: such a packet is its 40-byte header.) */
static bool ipv6_parse(const uint8_t *pkt, size_t len, size_t *ip_len)
{
    if (len < IPV6_HEADER || (pkt[0] >> 4) != 6)
        return false;
    size_t total = IPV6_HEADER + punch_get16(pkt + 4);
    if (total > len)
        return false;
    *ip_len = total;
    return true;
}

static bool ipv4_from_tun(punch_vpn *v, uint8_t *pkt, size_t len)
{
    punch_ipv4 p;
    if (punch_ipv4_parse(pkt, len, &p) != 0 || p.len != len) {
        v->c.tun_malformed++;
        return false;
    }
    if (!peer_range(v, PUNCH_AF_INET, p.dst.ip)) {
        v->c.tun_no_route++; /* broadcast, multicast, or a host that is not the peer */
        return false;
    }
    return true;
}

static bool ipv6_from_tun(punch_vpn *v, const uint8_t *pkt, size_t len)
{
    size_t ip_len;
    if (!ipv6_parse(pkt, len, &ip_len) || ip_len != len) {
        v->c.tun_ipv6_malformed++;
        return false;
    }
    if (!peer_range(v, PUNCH_AF_INET6, pkt + 24)) {
        v->c.tun_ipv6_no_route++; /* multicast (neighbour discovery, MLD), or not the peer */
        return false;
    }
    return true;
}

bool punch_vpn_from_tun(punch_vpn *v, uint8_t *pkt, size_t len)
{
    bool pass;
    if (len > PUNCH_VPN_MAX_MTU) {
        v->c.tun_oversize++;
        return false;
    }
    switch (carried_family(v, pkt, len)) {
    case PUNCH_AF_INET: pass = ipv4_from_tun(v, pkt, len); break;
    case PUNCH_AF_INET6: pass = ipv6_from_tun(v, pkt, len); break;
    default:
        v->c.tun_not_ip++; /* a stray, or a family the kernel should not send us */
        return false;
    }
    if (pass) {
        v->c.tun_packets++;
        v->c.tun_bytes += len;
    }
    return pass;
}

/* One of the HELLO's addresses, when we carry its family (a dual-stack
 * peer may talk to a single-stack side: the other family is left out);
 * family NONE when not, or when the peer has none (prefix length 0). */
static punch_vpn_prefix announced(const punch_vpn *v, uint8_t family, const uint8_t *ip,
                                  uint8_t len)
{
    punch_vpn_prefix a = {0};
    if (len == 0 || self_of(v, family)->family != family)
        return a;
    a.family = family;
    memcpy(a.ip, ip, addr_size(family));
    a.len = len;
    return a;
}

/* An announced address must be one we would route to the peer: in our
 * network (or behind it), and not ours. */
static bool acceptable(const punch_vpn *v, const punch_vpn_prefix *a)
{
    const punch_vpn_prefix *self = self_of(v, a->family);
    return a->family == PUNCH_AF_NONE ||
           ((punch_vpn_prefix_contains(self, a->family, a->ip) ||
             behind_peer(v, a->family, a->ip)) &&
            memcmp(a->ip, self->ip, addr_size(a->family)) != 0);
}

static punch_vpn_verdict take_hello(punch_vpn *v, const uint8_t *d, size_t len)
{
    bool has6 = len >= PUNCH_VPN_HELLO6_LEN;
    if (len < PUNCH_VPN_HELLO_LEN || d[1] != CONTROL_HELLO || d[3] > 32 || (has6 && d[10] > 128)) {
        v->c.peer_control++;
        return PUNCH_VPN_DROP;
    }
    punch_vpn_prefix a4 = announced(v, PUNCH_AF_INET, d + 4, d[3]);
    punch_vpn_prefix a6 = announced(v, PUNCH_AF_INET6, d + 11, has6 ? d[10] : 0);
    uint16_t mtu = punch_get16(d + 8);
    if (!acceptable(v, &a4) || !acceptable(v, &a6) || mtu < PUNCH_VPN_IPV4_MIN_MTU) {
        v->c.peer_hello_refused++;
        v->refused = acceptable(v, &a4) && a6.family ? a6 : a4;
        return PUNCH_VPN_HELLO_REFUSED;
    }
    v->peer_changed = !v->peer_known || memcmp(&v->peer4, &a4, sizeof(a4)) != 0 ||
                      memcmp(&v->peer6, &a6, sizeof(a6)) != 0 || v->peer_mtu != mtu;
    v->peer4 = a4;
    v->peer6 = a6;
    v->peer_mtu = mtu;
    v->peer_known = true;
    v->peer_has_ours = (d[2] & PUNCH_VPN_HELLO_SEEN) != 0;
    /* Answer when it lacks ours, or when we just learnt it: our earlier
     * HELLOs said we had not, so it would keep sending. */
    v->answer_due = !v->peer_has_ours || v->peer_changed;
    v->c.hellos++;
    return PUNCH_VPN_HELLO;
}

static punch_vpn_verdict ipv4_from_peer(punch_vpn *v, uint8_t *data, size_t len, size_t *ip_len)
{
    punch_ipv4 p;
    if (punch_ipv4_parse(data, len, &p) != 0) {
        v->c.peer_malformed++;
        return PUNCH_VPN_DROP;
    }
    if (!peer_range(v, PUNCH_AF_INET, p.src.ip)) {
        v->c.peer_source++;
        return PUNCH_VPN_DROP;
    }
    *ip_len = p.len;
    return PUNCH_VPN_DELIVER;
}

static punch_vpn_verdict ipv6_from_peer(punch_vpn *v, const uint8_t *data, size_t len,
                                        size_t *ip_len)
{
    if (!ipv6_parse(data, len, ip_len)) {
        v->c.peer_ipv6_malformed++;
        return PUNCH_VPN_DROP;
    }
    if (!peer_range(v, PUNCH_AF_INET6, data + 8)) {
        v->c.peer_ipv6_source++;
        return PUNCH_VPN_DROP;
    }
    return PUNCH_VPN_DELIVER;
}

punch_vpn_verdict punch_vpn_from_peer(punch_vpn *v, uint8_t *data, size_t len, size_t *ip_len)
{
    punch_vpn_verdict verdict;
    v->answer_due = v->peer_changed = false;
    if (len == 0 || len > PUNCH_VPN_MAX_MTU) {
        v->c.peer_malformed++;
        return PUNCH_VPN_DROP;
    }
    if (data[0] == CONTROL)
        return take_hello(v, data, len);
    switch (carried_family(v, data, len)) {
    case PUNCH_AF_INET: verdict = ipv4_from_peer(v, data, len, ip_len); break;
    case PUNCH_AF_INET6: verdict = ipv6_from_peer(v, data, len, ip_len); break;
    default:
        v->c.peer_not_ip++;
        return PUNCH_VPN_DROP;
    }
    if (verdict == PUNCH_VPN_DELIVER) {
        /* Bytes after the IP packet's own length are not the packet's: left out. */
        v->c.peer_packets++;
        v->c.peer_bytes += *ip_len;
    }
    return verdict;
}

bool punch_vpn_hello_needed(const punch_vpn *v)
{
    return !v->peer_known || !v->peer_has_ours;
}

size_t punch_vpn_hello_write(const punch_vpn *v, uint8_t out[PUNCH_VPN_HELLO_MAX])
{
    memset(out, 0, PUNCH_VPN_HELLO_MAX);
    out[0] = CONTROL;
    out[1] = CONTROL_HELLO;
    out[2] = v->peer_known ? PUNCH_VPN_HELLO_SEEN : 0;
    out[3] = v->self4.len; /* 0 without an IPv4 address */
    memcpy(out + 4, v->self4.ip, 4);
    punch_put16(out + 8, v->mtu);
    if (!v->self6.family)
        return PUNCH_VPN_HELLO_LEN; /* as before IPv6: what every version takes */
    out[10] = v->self6.len;
    memcpy(out + 11, v->self6.ip, 16);
    return PUNCH_VPN_HELLO6_LEN;
}
