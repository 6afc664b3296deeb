/* SPDX-License-Identifier: MIT */
/* libFuzzer target: what punch vpn takes from the peer (HELLOs, IPv4 and
 * IPv6 packets, whatever else a datagram holds) and from the TUN, for a
 * dual-stack tunnel with a route of each family. A packet delivered must
 * lie inside the datagram. */
#include <stdint.h>
#include <string.h>

#include "core/vpn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static punch_vpn tunnel(void)
{
    punch_vpn_prefix self4, self6, routes[2];
    punch_vpn v;
    if (punch_vpn_prefix_parse("10.99.0.1/24", &self4) != 0 ||
        punch_vpn_prefix_parse("fd99::1/64", &self6) != 0 ||
        punch_vpn_prefix_parse("10.50.0.0/16", &routes[0]) != 0 ||
        punch_vpn_prefix_parse("fd50::/48", &routes[1]) != 0 ||
        punch_vpn_init(&v, &self4, &self6, routes, 2, PUNCH_VPN_MAX_MTU) != 0)
        __builtin_trap();
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t buf[PUNCH_MAX_DATAGRAM_LARGE + 64];
    if (size > sizeof(buf))
        return 0;
    /* The first byte picks the way in; the rest is the datagram or packet. */
    punch_vpn v = tunnel();
    memcpy(buf, data, size);
    if (size > 0 && (data[0] & 1)) {
        punch_vpn_from_tun(&v, buf + 1, size - 1);
        return 0;
    }
    /* Twice: the second time the first (if a HELLO) made the peer known. */
    for (int round = 0; round < 2; round++) {
        memcpy(buf, data, size);
        size_t ip_len = 0;
        const uint8_t *in = size ? buf + 1 : buf;
        size_t len = size ? size - 1 : 0;
        if (punch_vpn_from_peer(&v, (uint8_t *)in, len, &ip_len) == PUNCH_VPN_DELIVER &&
            ip_len > len)
            __builtin_trap();
    }
    return 0;
}
