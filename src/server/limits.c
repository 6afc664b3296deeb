/* SPDX-License-Identifier: MIT */
/*
 * punchd's limits per source and per destination peer, on top of the per
 * session ones (issue 12, findings 5 and 7): their tables, and the checks
 * registry.c and relay.c make.
 *   - names registered from one source (IPv4 address or IPv6 /64), so one
 *     address cannot fill the registry;
 *   - introductions one source may ask for towards one target peer, so a
 *     crowd of keys behind one address cannot keep a listener's slots full;
 *   - relayed bytes and datagrams per source, over all the sessions it
 *     drives, and per destination peer, over all the sessions that reach it;
 *   - and what a peer is told of them (RELAY_RATE), so its streams pace
 *     below them instead of bursting into the drops.
 * Every default is in rendezvous.h, every reason in docs/security.md.
 */
#include "server/rendezvous_internal.h"

#include <string.h>

static uint32_t or_default(uint32_t v, uint32_t d)
{
    return v ? v : d;
}

static int new_limit(punch_ratelimit **rl, const punch_rendezvous *rv, uint32_t per_sec,
                     uint32_t burst)
{
    punch_ratelimit_cfg c = {.per_sec = per_sec, .burst = burst, .slots = rv->cfg.quota_slots};
    memcpy(c.hash_key, rv->cfg.hash_key, sizeof(c.hash_key));
    return punch_ratelimit_new(rl, &c);
}

int rv_limits_init(punch_rendezvous *rv)
{
    punch_rendezvous_cfg *c = &rv->cfg;
    c->names_per_source = or_default(c->names_per_source, PUNCH_RV_DEFAULT_NAMES_PER_SOURCE);
    if (!c->quota_slots)
        c->quota_slots = PUNCH_RV_QUOTA_SLOTS;
    c->connects_per_target_per_s =
        or_default(c->connects_per_target_per_s, PUNCH_RV_DEFAULT_CONNECTS_PER_TARGET_PER_S);
    c->connects_per_target_burst =
        or_default(c->connects_per_target_burst, PUNCH_RV_DEFAULT_CONNECTS_PER_TARGET_BURST);
    c->relay_source_bytes_per_s =
        or_default(c->relay_source_bytes_per_s, PUNCH_RV_DEFAULT_RELAY_SOURCE_BYTES_PER_S);
    c->relay_source_packets_per_s =
        or_default(c->relay_source_packets_per_s, PUNCH_RV_DEFAULT_RELAY_SOURCE_PACKETS_PER_S);
    c->relay_peer_bytes_per_s =
        or_default(c->relay_peer_bytes_per_s, PUNCH_RV_DEFAULT_RELAY_PEER_BYTES_PER_S);
    c->relay_peer_packets_per_s =
        or_default(c->relay_peer_packets_per_s, PUNCH_RV_DEFAULT_RELAY_PEER_PACKETS_PER_S);
    if (new_limit(&rv->connect_rate, rv, c->connects_per_target_per_s,
                  c->connects_per_target_burst) != 0 ||
        new_limit(&rv->relay_src_bytes, rv, c->relay_source_bytes_per_s, 0) != 0 ||
        new_limit(&rv->relay_src_packets, rv, c->relay_source_packets_per_s, 0) != 0 ||
        punch_counts_new(&rv->names, c->max_peers) != 0)
        return PUNCH_ERR_NOMEM;
    return 0;
}

void rv_limits_free(punch_rendezvous *rv)
{
    punch_ratelimit_free(rv->connect_rate);
    punch_ratelimit_free(rv->relay_src_bytes);
    punch_ratelimit_free(rv->relay_src_packets);
    punch_counts_free(rv->names);
}

void rv_limits_peer_init(const punch_rendezvous *rv, peer *p, uint64_t now)
{
    p->relay_in_bytes = (bucket){(uint64_t)rv->cfg.relay_peer_bytes_per_s * 1000, now};
    p->relay_in_packets = (bucket){(uint64_t)rv->cfg.relay_peer_packets_per_s * 1000, now};
}

/* The names table's hash of src's source (keyed: no sender aims at a bucket). */
static uint64_t source_hash(const punch_rendezvous *rv, const punch_addr *src)
{
    uint8_t in[9];
    uint64_t prefix = punch_source_prefix(src);
    in[0] = src->family;
    memcpy(in + 1, &prefix, sizeof(prefix));
    return rv_keyed_hash(rv, in, sizeof(in));
}

bool rv_names_room(punch_rendezvous *rv, const punch_addr *src)
{
    if (punch_counts_get(rv->names, src->family, punch_source_prefix(src),
                         source_hash(rv, src)) < rv->cfg.names_per_source)
        return true;
    rv->counters.names_per_source_full++;
    return false;
}

void rv_names_moved(punch_rendezvous *rv, const punch_addr *from, const punch_addr *to)
{
    if (from && from->family != PUNCH_AF_NONE)
        punch_counts_remove(rv->names, from->family, punch_source_prefix(from),
                            source_hash(rv, from));
    /* Never refused: a peer is counted once, and the table holds max_peers. */
    if (to && to->family != PUNCH_AF_NONE)
        (void)punch_counts_add(rv->names, to->family, punch_source_prefix(to),
                               source_hash(rv, to));
}

bool rv_connect_allowed(punch_rendezvous *rv, uint64_t now, const punch_addr *src,
                        const uint8_t target_key[PUNCH_KEY_LEN])
{
    if (punch_ratelimit_allow_pair(rv->connect_rate, src, target_key, PUNCH_KEY_LEN, now))
        return true;
    rv->counters.connects_limited++;
    return false;
}

/* Packets before bytes everywhere, so a datagram refused for its bytes
 * still costs a packet token. The source pays before the destination: a
 * source over its rate must not spend its victim's tokens. src NULL:
 * another member, which carries many peers' relays (their own member
 * charged their source); to NULL: to another member. */
bool rv_relay_allowed(punch_rendezvous *rv, uint64_t now, const punch_addr *src, peer *to,
                      size_t len)
{
    const punch_rendezvous_cfg *c = &rv->cfg;
    if (src && (!punch_ratelimit_allow(rv->relay_src_packets, src, now) ||
                !punch_ratelimit_take(rv->relay_src_bytes, src, len, now))) {
        rv->counters.relay_source_over++;
        return false;
    }
    if (to && (!rv_bucket_take(&to->relay_in_packets, c->relay_peer_packets_per_s,
                               c->relay_peer_packets_per_s, 1, now) ||
               !rv_bucket_take(&to->relay_in_bytes, c->relay_peer_bytes_per_s,
                               c->relay_peer_bytes_per_s, len, now))) {
        rv->counters.relay_peer_over++;
        return false;
    }
    return true;
}

static uint32_t least(uint32_t a, uint32_t b, uint32_t c)
{
    uint32_t m = a < b ? a : b;
    return m < c ? m : c;
}

/* What `to` may send in session id to the peer of other_key without a
 * drop when it sends alone: the least of the session's rate (both ways
 * together), its source's and the destination's. An older peer drops the
 * message as an unknown type. */
void rv_tell_relay_rate(punch_rendezvous *rv, const peer *to, const uint8_t *other_key,
                        const uint8_t *id)
{
    const punch_rendezvous_cfg *c = &rv->cfg;
    punch_msg m = {
        .type = PUNCH_MSG_RELAY_RATE,
        .relay_bytes_per_s =
            least(c->relay_bytes_per_s, c->relay_source_bytes_per_s, c->relay_peer_bytes_per_s),
        .relay_packets_per_s = least(c->relay_packets_per_s, c->relay_source_packets_per_s,
                                     c->relay_peer_packets_per_s),
    };
    memcpy(m.session, id, PUNCH_MSG_SESSION_LEN);
    memcpy(m.key, other_key, PUNCH_KEY_LEN);
    rv_send_to_peer(rv, to, &m);
}
