/* SPDX-License-Identifier: MIT */
/* Port forwards in front of a NAT: see portfwd.h. A home router holds a
 * handful of forwards, so the tables are scanned, not hashed. */
#include "nat/portfwd.h"

#include <stdlib.h>
#include <string.h>

typedef struct forward {
    uint8_t proto;
    uint32_t gen;        /* bumped when the slot is freed: its flows die with it */
    punch_addr inside, external;
    uint64_t expires;    /* dead when <= now; 0: free */
} forward;

typedef struct flow {
    uint32_t fwd, gen;   /* the forward it came through, and that forward's gen */
    punch_addr remote;
    uint64_t expires;
} flow;

struct punch_nat_fwd {
    forward *fwds;
    flow *flows;
    size_t n_fwds, n_flows;
};

#define MAX_CAPACITY 65536u

int punch_nat_fwd_new(punch_nat_fwd **out, size_t max_forwards, size_t max_flows)
{
    if (!out || !max_forwards || !max_flows || max_forwards > MAX_CAPACITY ||
        max_flows > MAX_CAPACITY)
        return PUNCH_ERR_INVAL;
    punch_nat_fwd *f = calloc(1, sizeof(*f));
    if (!f)
        return PUNCH_ERR_NOMEM;
    f->fwds = calloc(max_forwards, sizeof(*f->fwds));
    f->flows = calloc(max_flows, sizeof(*f->flows));
    if (!f->fwds || !f->flows) {
        punch_nat_fwd_free(f);
        return PUNCH_ERR_NOMEM;
    }
    f->n_fwds = max_forwards;
    f->n_flows = max_flows;
    *out = f;
    return 0;
}

void punch_nat_fwd_free(punch_nat_fwd *f)
{
    if (!f)
        return;
    free(f->fwds);
    free(f->flows);
    free(f);
}

static bool fwd_live(const forward *w, uint64_t now)
{
    return w->expires > now;
}

static bool flow_live(const punch_nat_fwd *f, const flow *l, uint64_t now)
{
    return l->expires > now && fwd_live(&f->fwds[l->fwd], now) && f->fwds[l->fwd].gen == l->gen;
}

static void fwd_clear(forward *w)
{
    w->expires = 0;
    w->gen++;
}

/* The live forward of proto whose `external` (or, by_inside, `inside`) is a. */
static forward *fwd_find(punch_nat_fwd *f, uint64_t now, uint8_t proto, const punch_addr *a,
                         bool by_inside)
{
    for (size_t i = 0; i < f->n_fwds; i++) {
        forward *w = &f->fwds[i];
        if (fwd_live(w, now) && w->proto == proto &&
            punch_addr_equal(by_inside ? &w->inside : &w->external, a))
            return w;
    }
    return NULL;
}

/* Is port p of ip free: no live NAT mapping and no forward on it? */
static bool port_free(punch_nat_fwd *f, const punch_nat *nat, uint64_t now, uint8_t proto,
                      const punch_addr *ip, uint16_t p)
{
    punch_addr a = *ip, inside;
    a.port = p;
    return fwd_find(f, now, proto, &a, false) == NULL &&
           punch_nat_lookup_public(nat, now, proto, &a, &inside) == PUNCH_ERR_NOTFOUND;
}

int punch_nat_fwd_add(punch_nat_fwd *f, const punch_nat *nat, uint64_t now, uint8_t proto,
                      const punch_addr *inside, uint16_t want, uint64_t lifetime_ms,
                      punch_addr *external)
{
    if (!f || !nat || !inside || !external || !lifetime_ms || want == 0)
        return PUNCH_ERR_INVAL;
    const punch_nat_cfg *cfg = punch_nat_cfg_get(nat);
    if (cfg->mode == PUNCH_NAT_FIREWALL || cfg->n_public == 0)
        return PUNCH_ERR_INVAL;
    forward *w = fwd_find(f, now, proto, inside, true);
    if (w) { /* a renewal keeps the port (RFC 6886 §3.3, RFC 6887 §11.2.1) */
        w->expires = now + lifetime_ms;
        *external = w->external;
        return 0;
    }
    for (size_t i = 0; i < f->n_fwds && !w; i++)
        if (!fwd_live(&f->fwds[i], now))
            w = &f->fwds[i];
    if (!w)
        return PUNCH_ERR_LIMIT;
    uint32_t p = want;
    while (p <= 65535 && !port_free(f, nat, now, proto, &cfg->public_ip[0], (uint16_t)p))
        p++;
    if (p > 65535)
        return PUNCH_ERR_NOTFOUND;
    fwd_clear(w); /* flows of an expired forward in this slot die */
    w->proto = proto;
    w->inside = *inside;
    w->external = cfg->public_ip[0];
    w->external.port = (uint16_t)p;
    w->expires = now + lifetime_ms;
    *external = w->external;
    return 0;
}

int punch_nat_fwd_remove(punch_nat_fwd *f, uint8_t proto, const punch_addr *external)
{
    if (!f || !external)
        return PUNCH_ERR_NOTFOUND;
    for (size_t i = 0; i < f->n_fwds; i++) {
        forward *w = &f->fwds[i];
        if (w->expires && w->proto == proto && punch_addr_equal(&w->external, external)) {
            fwd_clear(w);
            return 0;
        }
    }
    return PUNCH_ERR_NOTFOUND;
}

static flow *flow_find(punch_nat_fwd *f, uint64_t now, uint32_t fi, const punch_addr *remote)
{
    for (size_t i = 0; i < f->n_flows; i++) {
        flow *l = &f->flows[i];
        if (l->fwd == fi && flow_live(f, l, now) && punch_addr_equal(&l->remote, remote))
            return l;
    }
    return NULL;
}

/* Remember remote as a flow of forward fi (no room: the packet still goes
 * in; the answer is then the NAT's to map, as with a full conntrack). */
static void flow_note(punch_nat_fwd *f, uint64_t now, uint32_t fi, const punch_addr *remote,
                      uint64_t flow_ms)
{
    flow *l = flow_find(f, now, fi, remote);
    for (size_t i = 0; i < f->n_flows && !l; i++)
        if (!flow_live(f, &f->flows[i], now)) {
            l = &f->flows[i];
            l->fwd = fi;
            l->gen = f->fwds[fi].gen;
            l->remote = *remote;
        }
    if (l)
        l->expires = now + flow_ms;
}

bool punch_nat_fwd_inbound(punch_nat_fwd *f, uint64_t now, const punch_nat_tuple *in,
                           uint64_t flow_ms, punch_nat_tuple *out)
{
    if (!f || !in || !out)
        return false;
    forward *w = fwd_find(f, now, in->proto, &in->dst, false);
    if (!w)
        return false;
    flow_note(f, now, (uint32_t)(w - f->fwds), &in->src, flow_ms);
    *out = *in;
    out->dst = w->inside;
    return true;
}

bool punch_nat_fwd_outbound(punch_nat_fwd *f, uint64_t now, const punch_nat_tuple *in,
                            uint64_t flow_ms, punch_nat_tuple *out)
{
    if (!f || !in || !out)
        return false;
    forward *w = fwd_find(f, now, in->proto, &in->src, true);
    if (!w)
        return false;
    flow *l = flow_find(f, now, (uint32_t)(w - f->fwds), &in->dst);
    if (!l)
        return false;
    l->expires = now + flow_ms;
    *out = *in;
    out->src = w->external;
    return true;
}

size_t punch_nat_fwd_count(const punch_nat_fwd *f, uint64_t now)
{
    size_t n = 0;
    for (size_t i = 0; f && i < f->n_fwds; i++)
        n += fwd_live(&f->fwds[i], now);
    return n;
}

size_t punch_nat_fwd_flow_count(const punch_nat_fwd *f, uint64_t now)
{
    size_t n = 0;
    for (size_t i = 0; f && i < f->n_flows; i++)
        n += flow_live(f, &f->flows[i], now);
    return n;
}
