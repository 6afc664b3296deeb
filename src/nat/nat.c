/* SPDX-License-Identifier: MIT */
/* NAT behaviour model: see nat.h.
 *
 * Layout: two fixed pools (mappings, sessions) with free lists; three
 * intrusive hash indexes (mapping by inside key, mapping by public address,
 * session by remote endpoint and by remote IP); one binary min-heap of
 * deadlines over both pools. Refreshing only moves an entry's deadline
 * later, so the heap is updated lazily: a heap key may be earlier than the
 * entry's deadline and is corrected when it reaches the top. */
#include "nat/nat_hash.h"
#include "nat/nat_internal.h"
#include "wire/counts.h"

#include <stdlib.h>
#include <string.h>

/* ---- intrusive hash index ------------------------------------------- */

static hlink *hx_link(const hindex *h, uint32_t id)
{
    return (hlink *)(h->base + (size_t)id * h->stride + h->off);
}

static int hx_init(hindex *h, size_t capacity, void *base, size_t stride, size_t off)
{
    size_t n = 16;
    while (n < capacity * 2)
        n <<= 1;
    h->heads = malloc(n * sizeof(*h->heads));
    if (!h->heads)
        return PUNCH_ERR_NOMEM;
    memset(h->heads, 0xff, n * sizeof(*h->heads));
    h->mask = (uint32_t)(n - 1);
    h->base = base;
    h->stride = stride;
    h->off = off;
    return 0;
}

static uint32_t hx_first(const hindex *h, uint64_t hash)
{
    return h->heads[hash & h->mask];
}

static uint32_t hx_next(const hindex *h, uint32_t id)
{
    return hx_link(h, id)->next;
}

static void hx_insert(hindex *h, uint32_t id, uint64_t hash)
{
    uint32_t b = (uint32_t)(hash & h->mask);
    hlink *l = hx_link(h, id);
    l->bucket = b;
    l->prev = NIL;
    l->next = h->heads[b];
    if (l->next != NIL)
        hx_link(h, l->next)->prev = id;
    h->heads[b] = id;
}

static void hx_remove(hindex *h, uint32_t id)
{
    hlink *l = hx_link(h, id);
    if (l->prev != NIL)
        hx_link(h, l->prev)->next = l->next;
    else
        h->heads[l->bucket] = l->next;
    if (l->next != NIL)
        hx_link(h, l->next)->prev = l->prev;
}

/* ---- deadline heap -------------------------------------------------- */

static uint32_t *heap_pos_of(punch_nat *n, uint32_t ref)
{
    return ref & SESSION_BIT ? &n->sess[ref & ~SESSION_BIT].heap_pos : &n->maps[ref].heap_pos;
}

static uint64_t deadline_of(const punch_nat *n, uint32_t ref)
{
    return ref & SESSION_BIT ? n->sess[ref & ~SESSION_BIT].expires : n->maps[ref].expires;
}

static void heap_set(punch_nat *n, size_t pos, heap_item it)
{
    n->heap[pos] = it;
    *heap_pos_of(n, it.ref) = (uint32_t)pos;
}

static void heap_up(punch_nat *n, size_t pos)
{
    heap_item it = n->heap[pos];
    while (pos > 0) {
        size_t parent = (pos - 1) / 2;
        if (n->heap[parent].deadline <= it.deadline)
            break;
        heap_set(n, pos, n->heap[parent]);
        pos = parent;
    }
    heap_set(n, pos, it);
}

static void heap_down(punch_nat *n, size_t pos)
{
    heap_item it = n->heap[pos];
    for (;;) {
        size_t c = pos * 2 + 1;
        if (c >= n->heap_len)
            break;
        if (c + 1 < n->heap_len && n->heap[c + 1].deadline < n->heap[c].deadline)
            c++;
        if (n->heap[c].deadline >= it.deadline)
            break;
        heap_set(n, pos, n->heap[c]);
        pos = c;
    }
    heap_set(n, pos, it);
}

static void heap_push(punch_nat *n, uint32_t ref, uint64_t deadline)
{
    n->heap[n->heap_len] = (heap_item){deadline, ref};
    heap_up(n, n->heap_len++);
}

static void heap_remove(punch_nat *n, uint32_t pos)
{
    n->heap_len--;
    if (pos == n->heap_len)
        return;
    uint32_t ref = n->heap[n->heap_len].ref;
    heap_set(n, pos, n->heap[n->heap_len]);
    heap_up(n, pos);
    heap_down(n, *heap_pos_of(n, ref));
}

/* Move an entry's deadline; the heap key only follows when it gets earlier. */
static void set_deadline(punch_nat *n, uint32_t ref, uint64_t deadline)
{
    if (ref & SESSION_BIT)
        n->sess[ref & ~SESSION_BIT].expires = deadline;
    else
        n->maps[ref].expires = deadline;
    uint32_t pos = *heap_pos_of(n, ref);
    if (deadline < n->heap[pos].deadline) {
        n->heap[pos].deadline = deadline;
        heap_up(n, pos);
    }
}

/* ---- events --------------------------------------------------------- */

static void push_event(punch_nat *n, punch_nat_event_kind kind, uint64_t t, const mapping *m)
{
    if (n->cfg.max_events == 0)
        return;
    if (n->ev_len == n->cfg.max_events) {
        n->counters.events_lost++;
        return;
    }
    punch_nat_event *ev = &n->events[(n->ev_head + n->ev_len++) % n->cfg.max_events];
    ev->kind = kind;
    ev->t_ms = t;
    ev->proto = m->proto;
    ev->inside = m->inside;
    ev->public_ = m->pub;
    ev->remote = m->remote;
}

int punch_nat_poll_event(punch_nat *n, punch_nat_event *ev)
{
    if (!n || !ev || n->ev_len == 0)
        return 0;
    *ev = n->events[n->ev_head];
    n->ev_head = (n->ev_head + 1) % n->cfg.max_events;
    n->ev_len--;
    return 1;
}

/* ---- keys ----------------------------------------------------------- */

/* The part of the remote endpoint a mapping depends on (RFC 4787 §4.1). */
static punch_addr remote_key(const punch_nat *n, const punch_addr *remote)
{
    punch_addr k = {0};
    punch_nat_mapping m = n->cfg.mode == PUNCH_NAT_NAPT ? n->cfg.mapping : PUNCH_NAT_EIM;
    if (m == PUNCH_NAT_EIM)
        return k;
    k.family = remote->family;
    memcpy(k.ip, remote->ip, sizeof(k.ip));
    if (m == PUNCH_NAT_APDM)
        k.port = remote->port;
    return k;
}

static uint64_t key_hash(const punch_nat *n, uint8_t proto, const punch_addr *inside,
                         const punch_addr *rkey)
{
    return fmix(hash_addr(hash_addr(mix(n->key0, proto), inside), rkey));
}

static uint64_t pub_hash(const punch_nat *n, uint8_t proto, const punch_addr *pub)
{
    return fmix(hash_addr(mix(n->key1, proto), pub));
}

static uint64_t ep_hash(const punch_nat *n, uint32_t m, const punch_addr *remote)
{
    return fmix(hash_addr(mix(n->key0 ^ 0x5e55, m), remote));
}

static uint64_t ip_hash(const punch_nat *n, uint32_t m, const punch_addr *remote)
{
    return fmix(hash_ip(mix(n->key1 ^ 0x1b, m), remote));
}

static uint64_t host_hash(const punch_nat *n, const punch_addr *inside)
{
    return fmix(mix(mix(n->key1 ^ 0x4057, inside->family), punch_source_prefix(inside)));
}

static uint32_t find_by_key(const punch_nat *n, uint8_t proto, const punch_addr *inside,
                            const punch_addr *rkey)
{
    for (uint32_t id = hx_first(&n->by_key, key_hash(n, proto, inside, rkey)); id != NIL;
         id = hx_next(&n->by_key, id)) {
        const mapping *m = &n->maps[id];
        if (m->proto == proto && punch_addr_equal(&m->inside, inside) && punch_addr_equal(&m->remote, rkey))
            return id;
    }
    return NIL;
}

static uint32_t find_by_pub(const punch_nat *n, uint8_t proto, const punch_addr *pub)
{
    for (uint32_t id = hx_first(&n->by_pub, pub_hash(n, proto, pub)); id != NIL;
         id = hx_next(&n->by_pub, id)) {
        const mapping *m = &n->maps[id];
        if (m->proto == proto && punch_addr_equal(&m->pub, pub))
            return id;
    }
    return NIL;
}

static uint32_t find_session(const punch_nat *n, uint32_t m, const punch_addr *remote)
{
    for (uint32_t id = hx_first(&n->by_ep, ep_hash(n, m, remote)); id != NIL;
         id = hx_next(&n->by_ep, id)) {
        const session *s = &n->sess[id];
        if (s->mapping == m && punch_addr_equal(&s->remote, remote))
            return id;
    }
    return NIL;
}

/* Is there a live session of m with this remote IP? (address-dependent filtering) */
static bool has_session_ip(const punch_nat *n, uint32_t m, const punch_addr *remote,
                           uint64_t now)
{
    for (uint32_t id = hx_first(&n->by_ip, ip_hash(n, m, remote)); id != NIL;
         id = hx_next(&n->by_ip, id)) {
        const session *s = &n->sess[id];
        if (s->mapping == m && punch_addr_same_ip(&s->remote, remote) && s->expires > now)
            return true;
    }
    return false;
}

/* ---- removal -------------------------------------------------------- */

static void remove_session(punch_nat *n, uint32_t id)
{
    session *s = &n->sess[id];
    mapping *m = &n->maps[s->mapping];
    hx_remove(&n->by_ep, id);
    hx_remove(&n->by_ip, id);
    if (s->list_prev != NIL)
        n->sess[s->list_prev].list_next = s->list_next;
    else
        m->sessions = s->list_next;
    if (s->list_next != NIL)
        n->sess[s->list_next].list_prev = s->list_prev;
    heap_remove(n, s->heap_pos);
    s->used = false;
    s->next_free = n->free_sess;
    n->free_sess = id;
    n->n_sess--;
    n->counters.sessions_expired++;
}

static void remove_mapping(punch_nat *n, uint32_t id)
{
    mapping *m = &n->maps[id];
    while (m->sessions != NIL)
        remove_session(n, m->sessions);
    hx_remove(&n->by_key, id);
    hx_remove(&n->by_pub, id);
    punch_counts_remove(n->hosts, m->inside.family, punch_source_prefix(&m->inside),
                        host_hash(n, &m->inside));
    heap_remove(n, m->heap_pos);
    if (m->addr_slot >= 0)
        n->slots[m->addr_slot].refs--;
    push_event(n, PUNCH_NAT_EV_MAPPING_EXPIRED, m->expires, m);
    m->used = false;
    m->next_free = n->free_map;
    n->free_map = id;
    n->n_maps--;
    n->counters.mappings_expired++;
}

/* A mapping found by a lookup, or NIL when it is past its deadline (and
 * then removed, so its port is free again). */
static uint32_t live_mapping(punch_nat *n, uint32_t id, uint64_t now)
{
    if (id != NIL && n->maps[id].expires <= now) {
        remove_mapping(n, id);
        return NIL;
    }
    return id;
}

static uint32_t live_session(punch_nat *n, uint32_t id, uint64_t now)
{
    if (id != NIL && n->sess[id].expires <= now) {
        remove_session(n, id);
        return NIL;
    }
    return id;
}

size_t punch_nat_expire(punch_nat *n, uint64_t now)
{
    if (!n)
        return 0;
    uint64_t before = n->counters.mappings_expired;
    while (n->heap_len > 0 && n->heap[0].deadline <= now) {
        uint32_t ref = n->heap[0].ref;
        uint64_t real = deadline_of(n, ref);
        if (real > now) { /* refreshed since it was keyed */
            n->heap[0].deadline = real;
            heap_down(n, 0);
        } else if (ref & SESSION_BIT) {
            remove_session(n, ref & ~SESSION_BIT);
        } else {
            remove_mapping(n, ref);
        }
    }
    return (size_t)(n->counters.mappings_expired - before);
}

uint64_t punch_nat_next_expiry(const punch_nat *n)
{
    return n && n->heap_len ? n->heap[0].deadline : UINT64_MAX;
}

/* ---- creation ------------------------------------------------------- */

static bool port_free(punch_nat *n, uint8_t proto, const punch_addr *ip, uint16_t port,
                      uint64_t now)
{
    punch_addr a = *ip;
    a.port = port;
    return live_mapping(n, find_by_pub(n, proto, &a), now) == NIL;
}

/* Free, and no conntrack trap for a flow to dst (trap.c). */
static bool port_usable(punch_nat *n, uint8_t proto, const punch_addr *ip, uint16_t port,
                        uint64_t now, const punch_addr *dst)
{
    punch_addr a = *ip;
    a.port = port;
    return port_free(n, proto, ip, port, now) && !trap_holds(n, now, proto, dst, &a);
}

static uint64_t draw(punch_nat *n)
{
    return n->cfg.random(n->cfg.random_ctx);
}

/* Choose a free public port on ip. Returns 0 or PUNCH_ERR_LIMIT. */
static int pick_port(punch_nat *n, uint64_t now, uint8_t proto, int slot, uint16_t want,
                     const punch_addr *dst, uint16_t *port)
{
    const punch_addr *ip = &n->cfg.public_ip[slot];
    uint32_t lo = n->cfg.port_min, range = (uint32_t)n->cfg.port_max - lo + 1;
    uint32_t start = lo, step = 1, tries = 0;
    punch_addr wanted = *ip;
    wanted.port = want;
    /* A trapped port: Linux draws another at random (trap.c); without
     * randomness, the next usable one. */
    punch_nat_ports how = trap_holds(n, now, proto, dst, &wanted) && n->cfg.random
                              ? PUNCH_NAT_RANDOM
                              : n->cfg.ports;
    switch (how) {
    case PUNCH_NAT_PRESERVE:
        /* draft §5.3.1: preserve when free; otherwise the next free one */
        start = want >= lo && want <= n->cfg.port_max ? want : lo;
        break;
    case PUNCH_NAT_SEQUENTIAL:
        start = n->next_port[slot];
        step = n->cfg.port_step ? n->cfg.port_step : 1;
        tries = range / step + 1;
        break;
    case PUNCH_NAT_RANDOM:
        for (int i = 0; i < 16; i++) {
            uint16_t p = (uint16_t)(lo + draw(n) % range);
            if (port_usable(n, proto, ip, p, now, dst)) {
                *port = p;
                return 0;
            }
        }
        start = (uint32_t)(lo + draw(n) % range);
        break;
    }
    /* sequential: walk by step first; then (all modes) every port once */
    for (uint32_t i = 0; i < tries; i++) {
        uint16_t p = (uint16_t)(lo + (start - lo + (uint64_t)i * step) % range);
        if (port_usable(n, proto, ip, p, now, dst)) {
            *port = p;
            n->next_port[slot] = (uint16_t)(lo + (p - lo + step) % range);
            return 0;
        }
    }
    for (uint32_t i = 0; i < range; i++) {
        uint16_t p = (uint16_t)(lo + (start - lo + i) % range);
        if (port_usable(n, proto, ip, p, now, dst)) {
            *port = p;
            if (n->cfg.ports == PUNCH_NAT_SEQUENTIAL)
                n->next_port[slot] = (uint16_t)(lo + (p - lo + step) % range);
            return 0;
        }
    }
    return PUNCH_ERR_LIMIT;
}

/* The public IP for a new mapping of inside (RFC 4787 REQ-2 "paired": the
 * same inside IP always gets the same public IP). Returns the slot or -1. */
static int pick_ip(punch_nat *n, const punch_addr *inside)
{
    if (n->cfg.mode == PUNCH_NAT_BASIC) {
        int free_slot = -1;
        for (size_t i = 0; i < n->cfg.n_public; i++) {
            if (n->slots[i].refs && punch_addr_same_ip(&n->slots[i].inside, inside))
                return (int)i;
            if (!n->slots[i].refs && free_slot < 0)
                free_slot = (int)i;
        }
        if (free_slot >= 0)
            n->slots[free_slot].inside = *inside;
        return free_slot;
    }
    if (n->cfg.n_public == 1)
        return 0;
    if (n->cfg.pooling_arbitrary)
        return (int)(draw(n) % n->cfg.n_public);
    return (int)(fmix(hash_ip(n->key1, inside)) % n->cfg.n_public);
}

/* Create the mapping for a first outbound packet. Returns its index or NIL
 * (counted: table full, no public address or port). */
static uint32_t create_mapping(punch_nat *n, uint64_t now, uint8_t proto,
                               const punch_addr *inside, const punch_addr *rkey,
                               const punch_addr *dst)
{
    if (n->free_map == NIL || n->free_sess == NIL) {
        n->counters.refused_table_full++;
        return NIL;
    }
    /* One inside host cannot take the whole table (issue 12, finding 10). */
    uint64_t hh = host_hash(n, inside), host = punch_source_prefix(inside);
    if (punch_counts_get(n->hosts, inside->family, host, hh) >= n->cfg.max_mappings_per_host) {
        n->counters.refused_host_quota++;
        return NIL;
    }
    punch_addr pub = *inside;
    int slot = -1;
    if (n->cfg.mode != PUNCH_NAT_FIREWALL) {
        slot = pick_ip(n, inside);
        if (slot < 0) {
            n->counters.refused_no_port++;
            return NIL;
        }
        memcpy(pub.ip, n->cfg.public_ip[slot].ip, sizeof(pub.ip));
        if (n->cfg.mode == PUNCH_NAT_BASIC) {
            if (!port_free(n, proto, &pub, inside->port, now)) {
                n->counters.refused_no_port++;
                return NIL;
            }
        } else if (pick_port(n, now, proto, slot, inside->port, dst, &pub.port) != 0) {
            n->counters.refused_no_port++;
            return NIL;
        }
    }
    uint32_t id = n->free_map;
    mapping *m = &n->maps[id];
    n->free_map = m->next_free;
    n->n_maps++;
    m->used = true;
    m->proto = proto;
    m->inside = *inside;
    m->remote = *rkey;
    m->pub = pub;
    m->sessions = NIL;
    m->escape = NIL;
    m->expires = now; /* raised by the session that comes with it */
    m->addr_slot = n->cfg.mode == PUNCH_NAT_BASIC ? (int16_t)slot : -1;
    if (m->addr_slot >= 0)
        n->slots[slot].refs++;
    hx_insert(&n->by_key, id, key_hash(n, proto, inside, rkey));
    hx_insert(&n->by_pub, id, pub_hash(n, proto, &pub));
    (void)punch_counts_add(n->hosts, inside->family, host, hh); /* room: one per mapping */
    heap_push(n, id, UINT64_MAX);
    n->counters.mappings_created++;
    push_event(n, PUNCH_NAT_EV_MAPPING_CREATED, now, m);
    return id;
}

static uint32_t create_session(punch_nat *n, uint32_t mi, const punch_addr *remote)
{
    if (n->free_sess == NIL) {
        n->counters.refused_table_full++;
        return NIL;
    }
    uint32_t id = n->free_sess;
    session *s = &n->sess[id];
    mapping *m = &n->maps[mi];
    n->free_sess = s->next_free;
    n->n_sess++;
    s->used = true;
    s->mapping = mi;
    s->remote = *remote;
    s->tcp = 0;
    s->expires = 0;
    s->list_prev = NIL;
    s->list_next = m->sessions;
    if (m->sessions != NIL)
        n->sess[m->sessions].list_prev = id;
    m->sessions = id;
    hx_insert(&n->by_ep, id, ep_hash(n, mi, remote));
    hx_insert(&n->by_ip, id, ip_hash(n, mi, remote));
    heap_push(n, id | SESSION_BIT, UINT64_MAX);
    n->counters.sessions_created++;
    return id;
}

/* ---- timeouts and TCP state ------------------------------------------ */

/* Restart the session's timer and keep the mapping alive at least as long.
 * A TCP session that moved to a shorter timeout may shorten its mapping:
 * the mapping then lives as long as its longest session (RFC 5382 REQ-5). */
static void refresh(punch_nat *n, uint64_t now, uint32_t mi, uint32_t si)
{
    mapping *m = &n->maps[mi];
    session *s = &n->sess[si];
    uint64_t t = now + nat_session_timeout(n, m->proto, s->tcp);
    bool shorter = t < s->expires;
    set_deadline(n, si | SESSION_BIT, t);
    if (t > m->expires) {
        set_deadline(n, mi, t);
    } else if (shorter && m->proto == PUNCH_IP_TCP) {
        uint64_t longest = t;
        for (uint32_t i = m->sessions; i != NIL; i = n->sess[i].list_next)
            if (n->sess[i].expires > longest)
                longest = n->sess[i].expires;
        set_deadline(n, mi, longest);
    }
}

/* ---- packet paths --------------------------------------------------- */

static bool is_public_ip(const punch_nat *n, const punch_addr *a)
{
    if (n->cfg.mode == PUNCH_NAT_FIREWALL)
        return false;
    for (size_t i = 0; i < n->cfg.n_public; i++)
        if (punch_addr_same_ip(&n->cfg.public_ip[i], a))
            return true;
    return false;
}

static bool tuple_ok(const punch_nat *n, const punch_nat_tuple *t)
{
    if (t->proto != PUNCH_IP_UDP && t->proto != PUNCH_IP_TCP && t->proto != PUNCH_IP_ICMP)
        return false;
    if (t->src.family == PUNCH_AF_NONE || t->src.family != t->dst.family)
        return false;
    return n->cfg.mode == PUNCH_NAT_FIREWALL || t->src.family == n->cfg.public_ip[0].family;
}

/* Translate the source of an inside packet: find or make its mapping and
 * the session to dst. Sets *pub. Returns the verdict for the outbound leg. */
/* A new flow from inside to dst on mapping *mi whose public endpoint a
 * conntrack trap holds for dst gets a mapping of its own, keyed by dst,
 * on another port (trap.c); later packets of the flow find it first.
 * Linux gives a later new flow from the same inside endpoint the source
 * port of the newest flow from it that it can (find_appropriate_src), so
 * after an escape, flows to new destinations leave from the escape's port
 * too (seen with conntrack -L). Returns false when the escape mapping
 * cannot be made (counted). */
static bool escape_trap(punch_nat *n, uint64_t now, const punch_nat_tuple *in, uint32_t *mi)
{
    uint32_t own = live_mapping(n, find_by_key(n, in->proto, &in->src, &in->dst), now);
    if (own != NIL) {
        *mi = own;
        return true;
    }
    if (*mi == NIL || live_session(n, find_session(n, *mi, &in->dst), now) != NIL)
        return true;
    uint32_t esc = n->maps[*mi].escape;
    esc = esc != NIL && n->maps[esc].used ? live_mapping(n, esc, now) : NIL;
    if (esc != NIL && punch_addr_equal(&n->maps[esc].inside, &in->src) &&
        !trap_holds(n, now, in->proto, &in->dst, &n->maps[esc].pub)) {
        *mi = esc;
        return true;
    }
    if (!trap_holds(n, now, in->proto, &in->dst, &n->maps[*mi].pub))
        return true;
    uint32_t from = *mi;
    *mi = create_mapping(n, now, in->proto, &in->src, &in->dst, &in->dst);
    if (*mi == NIL)
        return false;
    n->maps[from].escape = *mi;
    n->counters.trap_escapes++;
    return true;
}

static punch_nat_verdict translate_out(punch_nat *n, uint64_t now, const punch_nat_tuple *in,
                                       uint8_t flags, punch_addr *pub)
{
    punch_addr rkey = remote_key(n, &in->dst);
    uint32_t mi = live_mapping(n, find_by_key(n, in->proto, &in->src, &rkey), now);
    if (n->traps && n->cfg.mode == PUNCH_NAT_NAPT && !escape_trap(n, now, in, &mi))
        return PUNCH_NAT_DROP;
    uint32_t si = NIL;
    if (mi != NIL)
        si = live_session(n, find_session(n, mi, &in->dst), now);
    if (si == NIL && in->proto == PUNCH_IP_TCP && !(flags & PUNCH_TCP_SYN)) {
        n->counters.dropped_tcp_invalid++;
        return PUNCH_NAT_DROP;
    }
    if (si != NIL && in->proto == PUNCH_IP_TCP &&
        nat_tcp_closed_refuses(n, &n->sess[si], flags, true)) {
        n->counters.refused_closed++;
        return PUNCH_NAT_DROP;
    }
    if (si != NIL && in->proto == PUNCH_IP_TCP &&
        nat_tcp_isn_refuses(n, &n->sess[si], flags, in->seq, true)) {
        n->counters.dropped_tcp_isn++;
        return PUNCH_NAT_DROP;
    }
    bool created = si == NIL;
    if (mi == NIL && (mi = create_mapping(n, now, in->proto, &in->src, &rkey, &in->dst)) == NIL)
        return PUNCH_NAT_DROP;
    /* create_mapping() made sure a session is free for a new mapping */
    if (si == NIL && (si = create_session(n, mi, &in->dst)) == NIL)
        return PUNCH_NAT_DROP;
    if (in->proto == PUNCH_IP_TCP)
        nat_tcp_track(n, &n->sess[si], flags, in->seq, true, created);
    refresh(n, now, mi, si); /* RFC 4787 REQ-6: outbound always refreshes */
    *pub = n->maps[mi].pub;
    return PUNCH_NAT_FORWARD;
}

/* Deliver a packet from remote to mapping mi, applying filtering (RFC 4787
 * §5) and TCP tracking. Returns FORWARD, RST or DROP. */
/* Whether filtering lets in a packet from remote to mapping mi (RFC 4787
 * §5), a session of mi with remote aside (that one always may). */
static bool filter_allows(const punch_nat *n, uint64_t now, uint32_t mi, const punch_addr *remote)
{
    switch (n->cfg.filtering) {
    case PUNCH_NAT_EIF: return true;
    case PUNCH_NAT_ADF: return has_session_ip(n, mi, remote, now);
    default: return false;
    }
}

static punch_nat_verdict admit_in(punch_nat *n, uint64_t now, uint32_t mi, uint8_t proto,
                                  const punch_addr *remote, uint8_t flags, uint32_t seq)
{
    uint32_t si = live_session(n, find_session(n, mi, remote), now);
    if (si == NIL) {
        bool allowed = filter_allows(n, now, mi, remote);
        bool syn = proto == PUNCH_IP_TCP && (flags & PUNCH_TCP_SYN) && !(flags & PUNCH_TCP_ACK);
        if (!allowed) {
            n->counters.dropped_filtered++;
            if (syn && n->cfg.syn_rst) {
                n->counters.rst++;
                return PUNCH_NAT_RST;
            }
            return PUNCH_NAT_DROP;
        }
        if (proto != PUNCH_IP_TCP) {
            if (n->cfg.refresh_inbound) {
                uint64_t t = now + nat_session_timeout(n, proto, 0);
                if (t > n->maps[mi].expires)
                    set_deadline(n, mi, t);
            }
            return PUNCH_NAT_FORWARD;
        }
        if (!(flags & PUNCH_TCP_SYN)) {
            n->counters.dropped_tcp_invalid++;
            return PUNCH_NAT_DROP;
        }
        if ((si = create_session(n, mi, remote)) == NIL)
            return PUNCH_NAT_DROP;
        nat_tcp_track(n, &n->sess[si], flags, seq, false, true);
        refresh(n, now, mi, si);
        return PUNCH_NAT_FORWARD;
    }
    if (proto == PUNCH_IP_TCP) {
        if (nat_tcp_closed_refuses(n, &n->sess[si], flags, false)) {
            n->counters.refused_closed++;
            if (!n->cfg.syn_rst)
                return PUNCH_NAT_DROP;
            n->counters.rst++;
            return PUNCH_NAT_RST;
        }
        if (nat_tcp_isn_refuses(n, &n->sess[si], flags, seq, false)) {
            n->counters.dropped_tcp_isn++;
            return PUNCH_NAT_DROP;
        }
        /* TCP: both directions keep a connection alive (RFC 5382 REQ-5 is
         * about idle connections, whichever side is talking). */
        nat_tcp_track(n, &n->sess[si], flags, seq, false, false);
        refresh(n, now, mi, si);
    } else if (n->cfg.refresh_inbound) {
        refresh(n, now, mi, si);
    }
    return PUNCH_NAT_FORWARD;
}

punch_nat_verdict punch_nat_outbound(punch_nat *n, uint64_t now, const punch_nat_tuple *in,
                                     uint8_t flags, punch_nat_tuple *out)
{
    if (!n || !in || !out)
        return PUNCH_NAT_DROP;
    n->counters.outbound++;
    if (!tuple_ok(n, in)) {
        n->counters.dropped_bad++;
        return PUNCH_NAT_DROP;
    }
    if (!is_public_ip(n, &in->dst)) {
        punch_nat_tuple t = *in;
        if (t.proto == PUNCH_IP_ICMP)
            t.dst.port = 0; /* the query id is ours to translate, not the remote's */
        punch_addr pub;
        punch_nat_verdict v = translate_out(n, now, &t, flags, &pub);
        if (v != PUNCH_NAT_FORWARD)
            return v;
        out->proto = in->proto;
        out->src = pub;
        out->dst = in->dst;
        if (in->proto == PUNCH_IP_ICMP)
            out->dst.port = pub.port;
        n->counters.forwarded++;
        return PUNCH_NAT_FORWARD;
    }
    /* RFC 4787 §6 hairpinning: to one of our own public endpoints. An ICMP
     * query to our public address is for the NAT itself, not looped back. */
    if (!n->cfg.hairpin || in->proto == PUNCH_IP_ICMP) {
        n->counters.dropped_hairpin_off++;
        return PUNCH_NAT_DROP;
    }
    uint32_t target = live_mapping(n, find_by_pub(n, in->proto, &in->dst), now);
    if (target == NIL) {
        n->counters.dropped_no_mapping++;
        return PUNCH_NAT_DROP;
    }
    punch_addr pub;
    punch_nat_verdict v = translate_out(n, now, in, flags, &pub);
    if (v != PUNCH_NAT_FORWARD)
        return v;
    /* translate_out may have reused target's slot only if target expired,
     * which live_mapping() ruled out; re-check in case a port was recycled. */
    if (!n->maps[target].used || n->maps[target].proto != in->proto ||
        !punch_addr_equal(&n->maps[target].pub, &in->dst)) {
        n->counters.dropped_no_mapping++;
        return PUNCH_NAT_DROP;
    }
    /* REQ-9 a: the looped-back packet carries the sender's public endpoint. */
    v = admit_in(n, now, target, in->proto, &pub, flags, in->seq);
    if (v != PUNCH_NAT_FORWARD)
        return v;
    out->proto = in->proto;
    out->src = pub;
    out->dst = n->maps[target].inside;
    n->counters.hairpinned++;
    return PUNCH_NAT_HAIRPIN;
}

punch_nat_verdict punch_nat_inbound(punch_nat *n, uint64_t now, const punch_nat_tuple *in,
                                    uint8_t flags, punch_nat_tuple *out)
{
    if (!n || !in || !out)
        return PUNCH_NAT_DROP;
    n->counters.inbound++;
    if (!tuple_ok(n, in)) {
        n->counters.dropped_bad++;
        return PUNCH_NAT_DROP;
    }
    uint32_t mi = live_mapping(n, find_by_pub(n, in->proto, &in->dst), now);
    if (mi == NIL) {
        n->counters.dropped_no_mapping++;
        trap_note(n, now, in->proto, &in->src, &in->dst);
        if (in->proto == PUNCH_IP_TCP && (flags & PUNCH_TCP_SYN) &&
            !(flags & PUNCH_TCP_ACK) && n->cfg.syn_rst) {
            n->counters.rst++;
            return PUNCH_NAT_RST;
        }
        return PUNCH_NAT_DROP;
    }
    punch_addr remote = in->src;
    if (in->proto == PUNCH_IP_ICMP)
        remote.port = 0;
    punch_nat_verdict v = admit_in(n, now, mi, in->proto, &remote, flags, in->seq);
    if (v != PUNCH_NAT_FORWARD) {
        trap_note(n, now, in->proto, &in->src, &in->dst);
        return v;
    }
    out->proto = in->proto;
    out->src = in->src;
    out->dst = n->maps[mi].inside;
    if (in->proto == PUNCH_IP_ICMP)
        out->src.port = out->dst.port;
    n->counters.forwarded++;
    return PUNCH_NAT_FORWARD;
}

int punch_nat_lookup(const punch_nat *n, uint64_t now, uint8_t proto, const punch_addr *inside,
                     const punch_addr *remote, punch_addr *pub)
{
    if (!n || !inside || !remote || !pub)
        return PUNCH_ERR_INVAL;
    punch_addr rkey = remote_key(n, remote);
    uint32_t id = find_by_key(n, proto, inside, &rkey);
    if (id == NIL || n->maps[id].expires <= now)
        return PUNCH_ERR_NOTFOUND;
    *pub = n->maps[id].pub;
    return 0;
}

int punch_nat_lookup_public(const punch_nat *n, uint64_t now, uint8_t proto,
                            const punch_addr *pub, punch_addr *inside)
{
    if (!n || !pub || !inside)
        return PUNCH_ERR_INVAL;
    uint32_t id = find_by_pub(n, proto, pub);
    if (id == NIL || n->maps[id].expires <= now)
        return PUNCH_ERR_NOTFOUND;
    *inside = n->maps[id].inside;
    return 0;
}

int punch_nat_icmp_error_in(const punch_nat *n, uint64_t now, uint8_t proto,
                            const punch_addr *pub, const punch_addr *remote,
                            const punch_addr *from, punch_addr *inside)
{
    if (!n || !pub || !remote || !from || !inside)
        return PUNCH_ERR_INVAL;
    uint32_t id = find_by_pub(n, proto, pub);
    if (id == NIL || n->maps[id].expires <= now)
        return PUNCH_ERR_NOTFOUND;
    punch_addr r = *remote;
    if (proto == PUNCH_IP_ICMP)
        r.port = 0; /* sessions of ICMP queries do not key the remote's id */
    uint32_t si = find_session(n, id, &r);
    bool live = si != NIL && n->sess[si].expires > now;
    if (!live && !filter_allows(n, now, id, &r))
        return PUNCH_ERR_NOTFOUND; /* the quoted flow never went there */
    if (n->cfg.filtering != PUNCH_NAT_EIF && !punch_addr_same_ip(from, &r))
        return PUNCH_ERR_NOTFOUND; /* a third host speaking for the flow's remote */
    *inside = n->maps[id].inside;
    return 0;
}

/* ---- lifetime ------------------------------------------------------- */

static bool cfg_valid(const punch_nat_cfg *c)
{
    if (c->max_mappings == 0 || c->max_mappings > MAX_CAPACITY ||
        c->max_sessions > MAX_CAPACITY || c->max_events > MAX_CAPACITY)
        return false;
    if (c->udp_timeout_ms == 0 || c->tcp_established_ms == 0 || c->tcp_transitory_ms == 0 ||
        c->icmp_timeout_ms == 0)
        return false;
    if (c->n_public > PUNCH_NAT_MAX_PUBLIC)
        return false;
    if (c->mode != PUNCH_NAT_FIREWALL) {
        if (c->n_public == 0 || c->port_min == 0 || c->port_min > c->port_max)
            return false;
        for (size_t i = 0; i < c->n_public; i++)
            if (c->public_ip[i].family != c->public_ip[0].family ||
                c->public_ip[0].family == PUNCH_AF_NONE)
                return false;
        if (c->mode == PUNCH_NAT_BASIC && c->mapping != PUNCH_NAT_EIM)
            return false;
        bool needs_random = (c->mode == PUNCH_NAT_NAPT && c->ports == PUNCH_NAT_RANDOM) ||
                            (c->pooling_arbitrary && c->n_public > 1);
        if (needs_random && !c->random)
            return false;
    }
    return true;
}

int punch_nat_new(punch_nat **out, const punch_nat_cfg *cfg)
{
    if (!out || !cfg || !cfg_valid(cfg))
        return PUNCH_ERR_INVAL;
    punch_nat *n = calloc(1, sizeof(*n));
    if (!n)
        return PUNCH_ERR_NOMEM;
    n->cfg = *cfg;
    if (n->cfg.max_sessions == 0)
        n->cfg.max_sessions = n->cfg.max_mappings * 4 > MAX_CAPACITY ? MAX_CAPACITY
                                                                     : n->cfg.max_mappings * 4;
    size_t nm = n->cfg.max_mappings, ns = n->cfg.max_sessions;
    n->maps = calloc(nm, sizeof(*n->maps));
    n->sess = calloc(ns, sizeof(*n->sess));
    n->heap = calloc(nm + ns, sizeof(*n->heap));
    if (n->cfg.max_events)
        n->events = calloc(n->cfg.max_events, sizeof(*n->events));
    if (!n->maps || !n->sess || !n->heap || (n->cfg.max_events && !n->events) ||
        hx_init(&n->by_key, nm, n->maps, sizeof(mapping), offsetof(mapping, by_key)) ||
        hx_init(&n->by_pub, nm, n->maps, sizeof(mapping), offsetof(mapping, by_pub)) ||
        hx_init(&n->by_ep, ns, n->sess, sizeof(session), offsetof(session, by_ep)) ||
        hx_init(&n->by_ip, ns, n->sess, sizeof(session), offsetof(session, by_ip))) {
        punch_nat_free(n);
        return PUNCH_ERR_NOMEM;
    }
    for (size_t i = 0; i < nm; i++)
        n->maps[i].next_free = i + 1 < nm ? (uint32_t)(i + 1) : NIL;
    for (size_t i = 0; i < ns; i++)
        n->sess[i].next_free = i + 1 < ns ? (uint32_t)(i + 1) : NIL;
    n->free_map = 0;
    n->free_sess = 0;
    /* The hash key comes from the caller's randomness so that a sender
     * cannot aim at one bucket; without randomness the model is still
     * correct, only predictable. */
    if (cfg->random) {
        n->key0 = cfg->random(cfg->random_ctx);
        n->key1 = cfg->random(cfg->random_ctx);
    } else {
        n->key0 = 0x243f6a8885a308d3ull;
        n->key1 = 0x13198a2e03707344ull;
    }
    for (size_t i = 0; i < PUNCH_NAT_MAX_PUBLIC; i++)
        n->next_port[i] = cfg->port_min;
    if (!n->cfg.max_mappings_per_host || n->cfg.max_mappings_per_host > nm)
        n->cfg.max_mappings_per_host = n->cfg.max_mappings_per_host ? nm : (nm + 1) / 2;
    if (punch_counts_new(&n->hosts, nm) != 0 || trap_table_new(n) != 0) {
        punch_nat_free(n);
        return PUNCH_ERR_NOMEM;
    }
    *out = n;
    return 0;
}

void punch_nat_free(punch_nat *n)
{
    if (!n)
        return;
    free(n->by_key.heads);
    free(n->by_pub.heads);
    free(n->by_ep.heads);
    free(n->by_ip.heads);
    free(n->events);
    free(n->heap);
    free(n->sess);
    free(n->maps);
    punch_counts_free(n->hosts);
    free(n->traps);
    free(n);
}

size_t punch_nat_mapping_count(const punch_nat *n)
{
    return n ? n->n_maps : 0;
}

size_t punch_nat_session_count(const punch_nat *n)
{
    return n ? n->n_sess : 0;
}

const punch_nat_counters *punch_nat_counters_get(const punch_nat *n)
{
    return n ? &n->counters : NULL;
}

const punch_nat_cfg *punch_nat_cfg_get(const punch_nat *n)
{
    return n ? &n->cfg : NULL;
}
