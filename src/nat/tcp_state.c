/* SPDX-License-Identifier: MIT */
/*
 * TCP state of a NAT session (RFC 5382) and Linux conntrack's CLOSE
 * (issue 10, cfg.rst_closes). A RST that passes the NAT either way ends the
 * entry (nf_conntrack_proto_tcp): one that never saw a reply is destroyed
 * at once (seen on Linux 6.18 with conntrack -E on the lab's NATs, 0 ms:
 * [NEW] SYN_SENT, the peer NAT's RST, [DESTROY] CLOSE within 0.2 ms); one
 * that did goes to CLOSE, where a SYN the reply way is INVALID (sCL + SYN
 * in reply = sIV). Either way the peer's SYN is not translated and reaches
 * the router's own stack, which answers RST when nothing filters its
 * input, while a new SYN from inside makes the entry again, on the same
 * public port (seen: [NEW] 90 us after the [DESTROY]). So after the peer's
 * NAT answered our early SYN with RST, the peer's own SYN meets a RST from
 * ours until we SYN again. Modelled as one CLOSE state; the original
 * direction is the side whose SYN made the session.
 */
#include "nat/nat_internal.h"

static bool pure_syn(uint8_t flags)
{
    return (flags & PUNCH_TCP_SYN) && !(flags & PUNCH_TCP_ACK);
}

uint64_t nat_session_timeout(const punch_nat *n, uint8_t proto, uint16_t tcp)
{
    if (proto == PUNCH_IP_UDP)
        return n->cfg.udp_timeout_ms;
    if (proto == PUNCH_IP_ICMP)
        return n->cfg.icmp_timeout_ms;
    /* RFC 5382 REQ-5: established once SYNs crossed both ways; any FIN or
     * RST puts it back in a transitory state. */
    bool established = (tcp & (T_SYN_OUT | T_SYN_IN)) == (T_SYN_OUT | T_SYN_IN) &&
                       !(tcp & (T_FIN_OUT | T_FIN_IN | T_RST));
    return established ? n->cfg.tcp_established_ms : n->cfg.tcp_transitory_ms;
}

/* Whether the session is CLOSE and this SYN comes the reply way: conntrack
 * calls it INVALID, and it is not let through. */
bool nat_tcp_closed_refuses(const punch_nat *n, const session *s, uint8_t flags, bool outbound)
{
    if (!n->cfg.rst_closes || !(s->tcp & T_CLOSED) || !pure_syn(flags))
        return false;
    bool opened_in = s->tcp & T_OPENED_IN;
    return outbound == opened_in;
}

/* Linux conntrack checks a segment's sequence number against the window
 * it learned (tcp_in_window). At the handshake a SYN with a later ISN
 * starts its side anew only while the session is SYN_SENT (our SYNs
 * only) or SYN_RECV (a SYN-ACK passed); in SYN_SENT2 (pure SYNs passed
 * both ways) a SYN or SYN-ACK whose ISN is not the last SYN's of its side
 * is INVALID and leaves untranslated (seen on Linux 6.18 with conntrack -E
 * and tcpdump on the lab's NATs: a socket opened again on the same 4-tuple
 * after the peer's SYN passed, its SYN and SYN-ACK out with the private
 * source). So in a simultaneous open the socket that answers the peer's
 * SYN must be the one whose SYN last went out. */
bool nat_tcp_isn_refuses(const punch_nat *n, const session *s, uint8_t flags, uint32_t seq,
                         bool outbound)
{
    uint16_t seen = outbound ? T_PSYN_OUT : T_PSYN_IN;
    if (!n->cfg.isn_check || !(flags & PUNCH_TCP_SYN) || !(s->tcp & seen) ||
        s->isn[outbound ? 0 : 1] == seq)
        return false;
    return (s->tcp & (T_PSYN_OUT | T_PSYN_IN)) == (T_PSYN_OUT | T_PSYN_IN) &&
           !(s->tcp & T_SYNACK);
}

void nat_tcp_track(const punch_nat *n, session *s, uint8_t flags, uint32_t seq, bool outbound,
                   bool created)
{
    if (created && !outbound)
        s->tcp |= T_OPENED_IN;
    /* a SYN the original way starts a closed session again, as new */
    if ((s->tcp & T_CLOSED) && pure_syn(flags))
        s->tcp &= T_OPENED_IN;
    if (n->cfg.isn_check && (flags & PUNCH_TCP_SYN)) {
        s->isn[outbound ? 0 : 1] = seq; /* nat_tcp_isn_refuses let it by */
        s->tcp |= !pure_syn(flags) ? T_SYNACK : outbound ? T_PSYN_OUT : T_PSYN_IN;
    }
    if (flags & PUNCH_TCP_SYN)
        s->tcp |= outbound ? T_SYN_OUT : T_SYN_IN;
    if (flags & PUNCH_TCP_FIN)
        s->tcp |= outbound ? T_FIN_OUT : T_FIN_IN;
    if (flags & PUNCH_TCP_RST)
        s->tcp |= n->cfg.rst_closes ? T_RST | T_CLOSED : T_RST;
}
