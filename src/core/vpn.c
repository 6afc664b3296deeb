/* punch vpn's packet rules: see vpn.h. */
#include "core/vpn.h"

#include <stdio.h>
#include <string.h>

#include "wire/bytes.h"
#include "wire/ipv4.h"

#define CONTROL 0x00
#define CONTROL_HELLO 0x01
#define IPV4_MIN_MTU 68 /* RFC 791: every host must take 68-byte datagrams whole */

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

int punch_vpn_prefix_parse(const char *text, punch_vpn_prefix *out)
{
    punch_vpn_prefix p;
    const char *s = text;
    unsigned v;
    if (!s || !out)
        return PUNCH_ERR_INVAL;
    for (int i = 0; i < 4; i++) {
        if (!(s = parse_number(s, 255, 3, &v)) || *s != (i < 3 ? '.' : '/'))
            return PUNCH_ERR_INVAL;
        p.ip[i] = (uint8_t)v;
        s++;
    }
    if (!(s = parse_number(s, 32, 2, &v)) || *s)
        return PUNCH_ERR_INVAL;
    p.len = (uint8_t)v;
    *out = p;
    return 0;
}

void punch_vpn_prefix_format(const punch_vpn_prefix *p, char buf[PUNCH_VPN_PREFIX_STRLEN])
{
    snprintf(buf, PUNCH_VPN_PREFIX_STRLEN, "%u.%u.%u.%u/%u", p->ip[0], p->ip[1], p->ip[2],
             p->ip[3], p->len);
}

static uint32_t mask(uint8_t len)
{
    return len == 0 ? 0 : ~(uint32_t)0 << (32 - len);
}

bool punch_vpn_prefix_contains(const punch_vpn_prefix *p, const uint8_t ip[4])
{
    return ((punch_get32(p->ip) ^ punch_get32(ip)) & mask(p->len)) == 0;
}

punch_vpn_prefix punch_vpn_prefix_network(const punch_vpn_prefix *p)
{
    punch_vpn_prefix n = *p;
    punch_put32(n.ip, punch_get32(p->ip) & mask(p->len));
    return n;
}

int punch_vpn_init(punch_vpn *v, const punch_vpn_prefix *self, const punch_vpn_prefix *routes,
                   size_t n_routes, uint16_t mtu)
{
    if (!v || !self || n_routes > PUNCH_VPN_MAX_ROUTES || (n_routes && !routes) ||
        mtu > PUNCH_MAX_DATAGRAM || mtu < IPV4_MIN_MTU || self->len > 32)
        return PUNCH_ERR_INVAL;
    memset(v, 0, sizeof(*v));
    v->self = *self;
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

static bool behind_peer(const punch_vpn *v, const uint8_t ip[4])
{
    for (size_t i = 0; i < v->n_routes; i++)
        if (punch_vpn_prefix_contains(&v->routes[i], ip))
            return true;
    return false;
}

/* The peer's own address, or a network behind it: its allowed range. */
static bool peer_range(const punch_vpn *v, const uint8_t ip[4])
{
    return (v->peer_known && memcmp(ip, v->peer.ip, 4) == 0) || behind_peer(v, ip);
}

bool punch_vpn_from_tun(punch_vpn *v, uint8_t *pkt, size_t len)
{
    punch_ipv4 p;
    if (len > PUNCH_MAX_DATAGRAM) {
        v->c.tun_oversize++;
        return false;
    }
    if (len == 0 || (pkt[0] >> 4) != 4) {
        v->c.tun_not_ipv4++; /* IPv6 from a TUN without IPv6, or a stray */
        return false;
    }
    if (punch_ipv4_parse(pkt, len, &p) != 0 || p.len != len) {
        v->c.tun_malformed++;
        return false;
    }
    if (!peer_range(v, p.dst.ip)) {
        v->c.tun_no_route++; /* broadcast, multicast, or a host that is not the peer */
        return false;
    }
    v->c.tun_packets++;
    v->c.tun_bytes += len;
    return true;
}

static punch_vpn_verdict take_hello(punch_vpn *v, const uint8_t *d, size_t len)
{
    punch_vpn_prefix a;
    if (len < PUNCH_VPN_HELLO_LEN || d[1] != CONTROL_HELLO || d[3] > 32) {
        v->c.peer_control++;
        return PUNCH_VPN_DROP;
    }
    memcpy(a.ip, d + 4, 4);
    a.len = d[3];
    uint16_t mtu = punch_get16(d + 8);
    /* Its address must be one we would route to it: in our network (or
     * behind it), and not ours. */
    if ((!punch_vpn_prefix_contains(&v->self, a.ip) && !behind_peer(v, a.ip)) ||
        memcmp(a.ip, v->self.ip, 4) == 0 || mtu < IPV4_MIN_MTU) {
        v->c.peer_hello_refused++;
        v->refused = a;
        return PUNCH_VPN_HELLO_REFUSED;
    }
    v->peer_changed = !v->peer_known || memcmp(v->peer.ip, a.ip, 4) != 0 ||
                      v->peer.len != a.len || v->peer_mtu != mtu;
    v->peer = a;
    v->peer_mtu = mtu;
    v->peer_known = true;
    v->peer_has_ours = (d[2] & PUNCH_VPN_HELLO_SEEN) != 0;
    /* Answer when it lacks ours, or when we just learnt it: our earlier
     * HELLOs said we had not, so it would keep sending. */
    v->answer_due = !v->peer_has_ours || v->peer_changed;
    v->c.hellos++;
    return PUNCH_VPN_HELLO;
}

punch_vpn_verdict punch_vpn_from_peer(punch_vpn *v, uint8_t *data, size_t len, size_t *ip_len)
{
    punch_ipv4 p;
    v->answer_due = v->peer_changed = false;
    if (len == 0 || len > PUNCH_MAX_DATAGRAM) {
        v->c.peer_malformed++;
        return PUNCH_VPN_DROP;
    }
    if (data[0] == CONTROL)
        return take_hello(v, data, len);
    if ((data[0] >> 4) != 4) {
        v->c.peer_not_ipv4++;
        return PUNCH_VPN_DROP;
    }
    if (punch_ipv4_parse(data, len, &p) != 0) {
        v->c.peer_malformed++;
        return PUNCH_VPN_DROP;
    }
    if (!peer_range(v, p.src.ip)) {
        v->c.peer_source++;
        return PUNCH_VPN_DROP;
    }
    /* Bytes after the IP total length are not the packet's: left out. */
    *ip_len = p.len;
    v->c.peer_packets++;
    v->c.peer_bytes += p.len;
    return PUNCH_VPN_DELIVER;
}

bool punch_vpn_hello_needed(const punch_vpn *v)
{
    return !v->peer_known || !v->peer_has_ours;
}

void punch_vpn_hello_write(const punch_vpn *v, uint8_t out[PUNCH_VPN_HELLO_LEN])
{
    out[0] = CONTROL;
    out[1] = CONTROL_HELLO;
    out[2] = v->peer_known ? PUNCH_VPN_HELLO_SEEN : 0;
    out[3] = v->self.len;
    memcpy(out + 4, v->self.ip, 4);
    punch_put16(out + 8, v->mtu);
}
