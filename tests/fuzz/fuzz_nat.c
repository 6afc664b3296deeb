/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: punch-nat's packet path (src/nat/nat_packet.c, the
 * very code punch-nat runs), ICMP error translation included, on a
 * port-restricted NAT with hairpinning, the conntrack trap, RSTs and
 * conntrack's CLOSE after a RST (rst-close), its check of the handshake's
 * sequence numbers (isn-check), and a small
 * table. The input is a run of packets, each: a byte (bit 0: from the
 * outside; bit 1: a minute passes first), two bytes of length, the packet.
 *
 * Whatever the packets: what is sent on parses again as IPv4 (and an ICMP
 * error's quoted packet too); a packet from the outside reaches only an
 * inside host that sent something out; a RST parses.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "nat/nat_packet.h"
#include "wire/ipv4.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_HOSTS 32

typedef struct hosts {
    punch_addr ip[MAX_HOSTS]; /* inside hosts that sent something out */
    size_t n;
} hosts;

static bool sent_out(const hosts *h, const punch_addr *a)
{
    for (size_t i = 0; i < h->n; i++)
        if (punch_addr_same_ip(&h->ip[i], a))
            return true;
    return false;
}

static punch_nat *make_nat(void)
{
    punch_nat_cfg cfg;
    punch_nat_cfg_default(&cfg);
    if (punch_nat_cfg_parse(&cfg, "port-restricted-cone,hairpin=on,trap=on,syn=rst,rst-close=on,isn-check=on,"
                                  "mappings=64,host-mappings=16",
                            NULL, 0) != 0)
        __builtin_trap();
    cfg.n_public = 1;
    cfg.public_ip[0] = (punch_addr){.family = PUNCH_AF_INET, .ip = {203, 0, 113, 1}};
    punch_nat *nat = NULL;
    if (punch_nat_new(&nat, &cfg) != 0)
        __builtin_trap();
    return nat;
}

/* Check what leaves. */
static void check(const hosts *h, uint8_t *buf, size_t len, bool inbound)
{
    punch_ipv4 p, inner;
    if (punch_ipv4_parse(buf, len, &p) != 0)
        __builtin_trap(); /* a translated packet must parse again */
    bool error = p.proto == PUNCH_IP_ICMP && (p.icmp_type == PUNCH_ICMP_UNREACHABLE ||
                                             p.icmp_type == PUNCH_ICMP_TIME_EXCEEDED);
    if (error && punch_ipv4_icmp_inner(&p, &inner) != 0)
        __builtin_trap(); /* and so must the packet an error quotes */
    if (inbound && !sent_out(h, &p.dst))
        __builtin_trap(); /* delivered to an inside host that never spoke */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    punch_nat *nat = make_nat();
    hosts h = {.n = 0};
    uint64_t now = 1000;
    static uint8_t buf[65536];
    while (size >= 3) {
        uint8_t flags = data[0];
        size_t len = (size_t)data[1] << 8 | data[2];
        data += 3, size -= 3;
        if (len > size)
            len = size;
        memcpy(buf, data, len);
        data += len, size -= len;
        if (flags & 2) {
            now += 60000;
            punch_nat_expire(nat, now);
        }
        bool inbound = flags & 1;
        punch_ipv4 before;
        bool parsed = punch_ipv4_parse(buf, len, &before) == 0;
        punch_addr src = before.src;
        uint8_t rst[PUNCH_NAT_RST_MAX];
        size_t out_len = 0;
        punch_nat_action a = punch_nat_packet(nat, now, buf, len, inbound, rst, &out_len);
        if (a == PUNCH_NAT_PKT_SEND) {
            if (!parsed || out_len > len) /* the IP length; trailing bytes stay */
                __builtin_trap();
            if (!inbound && !sent_out(&h, &src) && h.n < MAX_HOSTS)
                h.ip[h.n++] = src; /* it spoke */
            check(&h, buf, out_len, inbound);
        } else if (a == PUNCH_NAT_PKT_RST) {
            punch_ipv4 r;
            if (out_len > PUNCH_NAT_RST_MAX || punch_ipv4_parse(rst, out_len, &r) != 0)
                __builtin_trap();
        }
    }
    punch_nat_free(nat);
    return 0;
}
