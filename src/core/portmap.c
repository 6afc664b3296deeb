/* SPDX-License-Identifier: MIT */
/* Port mapping, the sans-I/O half: see portmap.h. */
#include <stdio.h>
#include <string.h>

#include "core/portmap.h"

const char *punch_portmap_proto_name(punch_portmap_proto p)
{
    switch (p) {
    case PUNCH_PORTMAP_OFF: return "off";
    case PUNCH_PORTMAP_AUTO: return "auto";
    case PUNCH_PORTMAP_PCP: return "pcp";
    case PUNCH_PORTMAP_NATPMP: return "natpmp";
    case PUNCH_PORTMAP_UPNP: return "upnp";
    }
    return "unknown";
}

int punch_portmap_proto_parse(const char *name)
{
    for (int p = PUNCH_PORTMAP_OFF; p <= PUNCH_PORTMAP_UPNP; p++)
        if (name && strcmp(name, punch_portmap_proto_name((punch_portmap_proto)p)) == 0)
            return p;
    return -1;
}

/* The protocol a round starts with. */
static punch_portmap_proto first_proto(punch_portmap_proto mode)
{
    return mode == PUNCH_PORTMAP_AUTO ? PUNCH_PORTMAP_PCP : mode;
}

static void new_round(punch_portmap *pm, uint64_t now)
{
    pm->state = PUNCH_PM_WANT;
    pm->trying = first_proto(pm->mode);
    pm->renewing = false;
    pm->started_ms = now;
    pm->why[0] = '\0';
}

void punch_portmap_init(punch_portmap *pm, uint8_t mode, const uint8_t nonce[12], uint64_t now)
{
    memset(pm, 0, sizeof(*pm));
    pm->mode = mode <= PUNCH_PORTMAP_UPNP ? (punch_portmap_proto)mode : PUNCH_PORTMAP_OFF;
    memcpy(pm->nonce, nonce, sizeof(pm->nonce));
    if (pm->mode != PUNCH_PORTMAP_OFF)
        new_round(pm, now);
}

int punch_portmap_poll(punch_portmap *pm, uint64_t now, punch_portmap_request *req)
{
    bool due = pm->state == PUNCH_PM_WANT ||
               ((pm->state == PUNCH_PM_MAPPED || pm->state == PUNCH_PM_NONE) &&
                now >= pm->next_ms);
    if (!due)
        return 0;
    if (pm->state == PUNCH_PM_NONE)
        new_round(pm, now);
    else if (pm->state == PUNCH_PM_MAPPED)
        pm->renewing = true;
    memset(req, 0, sizeof(*req));
    req->proto = pm->trying;
    req->external = pm->external;
    req->lifetime_s = PUNCH_PORTMAP_LIFETIME_S;
    memcpy(req->nonce, pm->nonce, sizeof(req->nonce));
    pm->state = PUNCH_PM_ASKED;
    return 1;
}

static void drop_mapping(punch_portmap *pm)
{
    memset(&pm->external, 0, sizeof(pm->external));
    pm->lifetime_s = 0;
}

static unsigned mapped(punch_portmap *pm, uint64_t now, const punch_portmap_result *res,
                       punch_event *out)
{
    bool same = punch_addr_equal(&pm->external, &res->external);
    uint32_t life = res->lifetime_s ? res->lifetime_s : 1;
    pm->external = res->external;
    pm->lifetime_s = life;
    pm->state = PUNCH_PM_MAPPED;
    pm->next_ms = now + (uint64_t)life * 500u;
    pm->expires_ms = now + (uint64_t)life * 1000u;
    pm->renewing = false;
    if (same)
        return 0;
    memset(out, 0, sizeof(*out));
    out->kind = PUNCH_EVENT_PORTMAP;
    out->peer = -1;
    out->portmap.external = res->external;
    out->portmap.proto = punch_portmap_proto_name(res->proto);
    out->portmap.lifetime_s = life;
    out->portmap.took_ms = (uint32_t)(now - pm->started_ms);
    return PUNCH_PM_TELL | PUNCH_PM_READVERTISE;
}

/* Nothing this round: say why once, and wait. */
static unsigned none_on_offer(punch_portmap *pm, uint64_t now, punch_event *out)
{
    unsigned flags = PUNCH_PM_TELL;
    if (pm->external.family != PUNCH_AF_NONE) {
        drop_mapping(pm);
        flags |= PUNCH_PM_READVERTISE;
    }
    pm->state = PUNCH_PM_NONE;
    pm->next_ms = now + PUNCH_PORTMAP_RETRY_MS;
    memset(out, 0, sizeof(*out));
    out->kind = PUNCH_EVENT_ATTEMPT;
    out->peer = -1;
    out->attempt.technique = PUNCH_TECH_PORTMAP;
    out->attempt.kind = PUNCH_PATH_DIRECT;
    /* The details may be cut short; the summary never is. */
    static const char summary[] = "no UPnP/NAT-PMP/PCP on the gateway";
    if (pm->mode == PUNCH_PORTMAP_AUTO)
        snprintf(out->attempt.why, sizeof(out->attempt.why), "%s (%.*s)", summary,
                 (int)(sizeof(out->attempt.why) - sizeof(summary) - 3), pm->why);
    else
        memcpy(out->attempt.why, pm->why, sizeof(out->attempt.why));
    _Static_assert(sizeof(pm->why) == sizeof(out->attempt.why), "why: one size");
    return flags;
}

unsigned punch_portmap_take(punch_portmap *pm, uint64_t now, const punch_portmap_result *res,
                            punch_event *out)
{
    if (pm->state != PUNCH_PM_ASKED || res->proto != pm->trying)
        return 0;
    if (res->ok && res->external.family != PUNCH_AF_NONE && res->external.port != 0)
        return mapped(pm, now, res, out);
    size_t used = strlen(pm->why);
    snprintf(pm->why + used, sizeof(pm->why) - used, "%s%s: %s", used ? "; " : "",
             punch_portmap_proto_name(res->proto), res->ok ? "no endpoint" : res->why);
    if (pm->renewing) {
        /* The gateway forgot us or went away: start over. */
        unsigned flags = PUNCH_PM_READVERTISE;
        drop_mapping(pm);
        new_round(pm, now);
        return flags;
    }
    if (pm->mode == PUNCH_PORTMAP_AUTO && pm->trying != PUNCH_PORTMAP_UPNP) {
        pm->trying = pm->trying == PUNCH_PORTMAP_PCP ? PUNCH_PORTMAP_NATPMP : PUNCH_PORTMAP_UPNP;
        pm->state = PUNCH_PM_WANT;
        return 0;
    }
    return none_on_offer(pm, now, out);
}

unsigned punch_portmap_timeout(punch_portmap *pm, uint64_t now)
{
    if (pm->external.family == PUNCH_AF_NONE || now < pm->expires_ms)
        return 0;
    drop_mapping(pm);
    if (pm->state == PUNCH_PM_MAPPED)
        new_round(pm, now);
    return PUNCH_PM_READVERTISE;
}

uint64_t punch_portmap_next_timeout(const punch_portmap *pm)
{
    uint64_t t = UINT64_MAX;
    if (pm->state == PUNCH_PM_MAPPED || pm->state == PUNCH_PM_NONE)
        t = pm->next_ms;
    if (pm->external.family != PUNCH_AF_NONE && pm->expires_ms < t)
        t = pm->expires_ms;
    return t;
}

uint8_t punch_portmap_advertise(const punch_portmap *pm, punch_addr *list, size_t *n, size_t cap)
{
    if (pm->external.family == PUNCH_AF_NONE || cap == 0)
        return 0;
    if (*n == cap)
        (*n)--;
    list[(*n)++] = pm->external;
    return 1;
}

bool punch_portmap_held(const punch_portmap *pm)
{
    return pm->external.family != PUNCH_AF_NONE;
}

int punch_portmap_release(punch_portmap *pm, punch_portmap_request *req)
{
    if (pm->external.family == PUNCH_AF_NONE)
        return 0;
    memset(req, 0, sizeof(*req));
    req->proto = pm->trying;
    req->remove = true;
    req->external = pm->external;
    memcpy(req->nonce, pm->nonce, sizeof(req->nonce));
    drop_mapping(pm);
    pm->state = PUNCH_PM_OFF;
    return 1;
}
