/* SPDX-License-Identifier: MIT */
/* punchd --cluster: the halves of relays across members held here follow
 * their far peers when those peers register at another member: when
 * their member stops (its heartbeat gone in Redis), and when they leave
 * a member that is alive on their own (the member they register at next
 * tells the one they left, which passes it on). See cluster_internal.h. */
#include "cluster_internal.h"

#include <stdlib.h>
#include <string.h>

/* A member whose heartbeat is gone has its peers fail over elsewhere: the
 * halves held here toward it follow them, their far peers looked up each
 * second (up to FOLLOW_BATCH a second), the far members of up to
 * FOLLOW_MEMBERS checked. */
#define FOLLOW_MEMBERS 32
#define FOLLOW_BATCH 256u

/* A far member of the halves held here, asked whether it is alive. */
typedef struct watch {
    punchd_cluster *cluster;
    uint8_t member[PUNCH_CLUSTER_MEMBER_LEN];
} watch;

/* A half whose far member stopped: where its far peer is now. */
typedef struct follow {
    punchd_cluster *cluster;
    punch_rendezvous_half half;
} follow;

/* The far peer of half h is registered at another member now (its member
 * stopped and it failed over there): the half moves there and that
 * member gets the INTRO of the session, holds a half for its peer and
 * tells it, as when the asking peer asks again; but at once, not once
 * the asker's path died. */
static void move_half(punchd_cluster *c, const punch_rendezvous_half *h,
                      const punch_cluster_msg *rec)
{
    char from[2 * PUNCH_CLUSTER_MEMBER_LEN + 1], member[2 * PUNCH_CLUSTER_MEMBER_LEN + 1];
    char id[2 * PUNCH_MSG_SESSION_LEN + 1];
    punch_rendezvous_far far = cluster_far_end(c, rec->from, &rec->peer, &rec->member_addr, h->far.asked);
    if (far.hop.family == PUNCH_AF_NONE ||
        punch_rendezvous_relay_remote(c->cfg.rv, punch_clock_ms(), h->local.key, h->session,
                                      &far) != 0 ||
        cluster_intro_again(c, &far, true, &h->local, h->session, member) != 0)
        return;
    c->stats.halves_moved++;
    cluster_hex(h->far.member, PUNCH_CLUSTER_MEMBER_LEN, from);
    cluster_hex(h->session, PUNCH_MSG_SESSION_LEN, id);
    punch_events_emit(*c->cfg.events, "cluster-relay-moved",
                      "\"name\":\"%s\",\"peer\":\"%s\",\"from\":\"%s\",\"member\":\"%s\","
                      "\"session\":\"%s\"",
                      h->local.name, h->far.name, from, member, id);
}

static void on_follow(redisAsyncContext *ac, void *reply, void *privdata)
{
    follow *f = privdata;
    punchd_cluster *c = f->cluster;
    const redisReply *r = reply, *found = cluster_record_of(reply);
    const punch_rendezvous_far *far = &f->half.far;
    punch_cluster_msg rec;
    (void)ac;
    if (c->closing)
        goto cleanup;
    if (r)
        cluster_answered(c);
    /* Not registered at a live member yet: asked again next second. */
    if (found && r->element[1]->integer == 1 &&
        punch_cluster_read_record(&c->core, far->name, (const uint8_t *)found->str,
                                  (size_t)found->len, cluster_wall_ms(), &rec) == 0 &&
        memcmp(rec.peer.key, far->key, PUNCH_KEY_LEN) == 0 &&
        memcmp(rec.from, far->member, PUNCH_CLUSTER_MEMBER_LEN) != 0 &&
        memcmp(rec.from, c->core.self, PUNCH_CLUSTER_MEMBER_LEN) != 0)
        move_half(c, &f->half, &rec);
cleanup:
    free(f);
}

/* Look the far peer of half h up again in Redis; on_follow moves the
 * half when the peer is registered at another live member. Returns 0 or
 * -1 (no memory, no Redis). */
static int follow_half(punchd_cluster *c, const punch_rendezvous_half *h)
{
    follow *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    f->cluster = c;
    f->half = *h;
    if (cluster_command(c, &c->cmd, on_follow, f, "EVAL %s 1 punch:name:%s",
                        cluster_lookup_script, h->far.name) != REDIS_OK) {
        free(f);
        return -1;
    }
    return 0;
}

/* Member `member` stopped: look up again the far peers of the halves
 * held toward it, up to FOLLOW_BATCH a second (the next second goes on
 * from there). */
static void follow_halves(punchd_cluster *c, const uint8_t *member)
{
    punch_rendezvous_half h;
    unsigned n = 0;
    while (n < FOLLOW_BATCH) {
        if (punch_rendezvous_next_half(c->cfg.rv, &c->follow_cursor, &h) != 1) {
            c->follow_cursor = 0;
            return;
        }
        if (memcmp(h.far.member, member, PUNCH_CLUSTER_MEMBER_LEN) != 0 || !h.far.name[0])
            continue;
        if (follow_half(c, &h) != 0)
            return;
        n++;
    }
}

/* Whether the news whose MAC is mac was passed on before (and if not,
 * remember it now): a member passes each once, so it cannot go round. */
static bool passed_before(punchd_cluster *c, const uint8_t *mac)
{
    const size_t n = sizeof(c->passed) / sizeof(c->passed[0]);
    for (size_t i = 0; i < n; i++)
        if (memcmp(c->passed[i], mac, sizeof(c->passed[i])) == 0)
            return true;
    memcpy(c->passed[c->passed_next++ % n], mac, sizeof(c->passed[0]));
    return false;
}

/* Our half h is for the peer that moved to member `to`: its far member
 * holds the other half, toward us, and is told (the same signed record),
 * unless told already in this pass (seen[0..*n)). */
static void pass_on(punchd_cluster *c, const punch_rendezvous_half *h, const uint8_t *to,
                    uint8_t seen[][PUNCH_CLUSTER_MEMBER_LEN], size_t *n,
                    const uint8_t *bytes, size_t len)
{
    if (memcmp(h->far.member, to, PUNCH_CLUSTER_MEMBER_LEN) == 0)
        return; /* it is there already: that member knows */
    for (size_t i = 0; i < *n; i++)
        if (memcmp(seen[i], h->far.member, PUNCH_CLUSTER_MEMBER_LEN) == 0)
            return;
    if (*n == FOLLOW_MEMBERS)
        return;
    memcpy(seen[(*n)++], h->far.member, PUNCH_CLUSTER_MEMBER_LEN);
    cluster_publish(c, h->far.member, bytes, len, NULL);
    c->stats.left_passed++;
}

void cluster_peer_moved(punchd_cluster *c, const punch_cluster_msg *rec, const uint8_t *bytes,
                        size_t len)
{
    uint8_t seen[FOLLOW_MEMBERS][PUNCH_CLUSTER_MEMBER_LEN];
    size_t n = 0;
    punch_rendezvous_half h;
    uint32_t cursor = 0;
    const uint8_t *key = rec->peer.key;
    if (memcmp(rec->from, c->core.self, PUNCH_CLUSTER_MEMBER_LEN) == 0)
        return; /* our own peer's record: it is here */
    bool pass = !passed_before(c, bytes + len - PUNCH_CLUSTER_MAC_LEN);
    /* One look at every half: a peer moving on its own is rare news. */
    while (punch_rendezvous_next_half(c->cfg.rv, &cursor, &h) == 1) {
        if (memcmp(h.far.key, key, PUNCH_KEY_LEN) == 0 && h.far.name[0] &&
            memcmp(h.far.member, rec->from, PUNCH_CLUSTER_MEMBER_LEN) != 0)
            follow_half(c, &h); /* where it is counts in Redis, not in this news */
        else if (pass && memcmp(h.local.key, key, PUNCH_KEY_LEN) == 0)
            pass_on(c, &h, rec->from, seen, &n, bytes, len);
    }
}

static void on_member(redisAsyncContext *ac, void *reply, void *privdata)
{
    watch *w = privdata;
    punchd_cluster *c = w->cluster;
    const redisReply *r = reply;
    (void)ac;
    if (!c->closing && r) {
        cluster_answered(c);
        if (r->type == REDIS_REPLY_INTEGER && r->integer == 0)
            follow_halves(c, w->member); /* its heartbeat is gone */
    }
    free(w);
}

/* Each second: whether the far members of the halves held here are
 * alive (one EXISTS per member, up to FOLLOW_MEMBERS). */
void cluster_watch_far_members(punchd_cluster *c)
{
    uint8_t seen[FOLLOW_MEMBERS][PUNCH_CLUSTER_MEMBER_LEN];
    char id[2 * PUNCH_CLUSTER_MEMBER_LEN + 1];
    punch_rendezvous_half h;
    uint32_t cursor = 0;
    size_t n = 0;
    while (n < FOLLOW_MEMBERS && punch_rendezvous_next_half(c->cfg.rv, &cursor, &h) == 1) {
        size_t i = 0;
        while (i < n && memcmp(seen[i], h.far.member, PUNCH_CLUSTER_MEMBER_LEN) != 0)
            i++;
        if (i < n)
            continue;
        memcpy(seen[n++], h.far.member, PUNCH_CLUSTER_MEMBER_LEN);
        watch *w = calloc(1, sizeof(*w));
        if (!w)
            return;
        w->cluster = c;
        memcpy(w->member, h.far.member, PUNCH_CLUSTER_MEMBER_LEN);
        cluster_hex(h.far.member, PUNCH_CLUSTER_MEMBER_LEN, id);
        if (cluster_command(c, &c->cmd, on_member, w, "EXISTS punch:member:%s", id) != REDIS_OK) {
            free(w);
            return;
        }
    }
}
