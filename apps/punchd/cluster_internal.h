/* SPDX-License-Identifier: MIT */
/*
 * Inside punchd --cluster: what cluster_redis.c (hiredis on the loop, the
 * members' messages) and cluster_follow.c (halves that follow the peers of
 * a member that stopped) share. Not an interface: cluster_redis.h is.
 */
#ifndef PUNCH_PUNCHD_CLUSTER_INTERNAL_H
#define PUNCH_PUNCHD_CLUSTER_INTERNAL_H

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "cluster_redis.h"

#define CHANNEL_MAX 64

/* One hiredis connection on the loop: the adapter's state. */
typedef struct conn {
    punchd_cluster *cluster;
    redisAsyncContext *ac; /* NULL: none */
    int fd;
    bool watched, connected;
    bool freeing;          /* we are freeing it: its disconnection is no news */
    unsigned events;       /* PUNCH_LOOP_IN / OUT as hiredis asks */
} conn;

struct punchd_cluster {
    punchd_cluster_cfg cfg;
    punch_cluster core;
    conn cmd, sub;         /* commands; the subscription to our channel */
    punch_loop_timer reconnect;
    punch_loop_timer republish;   /* Redis is back: our peers' records again */
    punch_loop_timer no_answer;   /* commands waiting and no answer for ANSWER_TIMEOUT_MS */
    punch_loop_timer heartbeat;   /* up: punch:member:ID again */
    uint32_t republish_cursor;
    uint32_t follow_cursor;       /* the next half follow_halves looks at */
    /* The latest peers' records passed on to far members (their MACs'
     * first bytes): each is passed on once, so news cannot go round. */
    uint8_t passed[16][16];
    unsigned passed_next;
    uint32_t waiting;             /* commands sent and not answered yet */
    bool up, closing, said_down;
    bool ponged, subscribed;      /* Redis answered on each connection: up */
    char down_reason[96];         /* why the last connection was lost */
    punchd_cluster_stats stats;
    char self_hex[2 * PUNCH_CLUSTER_MEMBER_LEN + 1];
    char channel[CHANNEL_MAX];
};

/* KEYS[1] a name: its record and whether its member is alive, or nil. */
extern const char cluster_lookup_script[];

uint64_t cluster_wall_ms(void);
void cluster_hex(const uint8_t *p, size_t n, char *out);
/* A command on k (fn NULL: an answer that only counts as one), timed:
 * its callback calls cluster_answered when a reply came. Returns
 * REDIS_OK or REDIS_ERR. */
int cluster_command(punchd_cluster *c, conn *k, redisCallbackFn *fn, void *privdata,
                    const char *fmt, ...);
/* One answer came: the others have the answer timeout from now. */
void cluster_answered(punchd_cluster *c);
/* The record in cluster_lookup_script's answer, or NULL. */
const redisReply *cluster_record_of(const redisReply *r);
/* The far end of a relay session across members: peer (its key and name)
 * at member `member`, which takes relayed datagrams at hop. */
punch_rendezvous_far cluster_far_end(const punchd_cluster *c, const uint8_t *member,
                                     const punch_rendezvous_peer_info *peer,
                                     const punch_addr *hop, bool asked);
/* The INTRO of a session across members again, about our peer local, to
 * far's member (and its TURN beside it). Returns 0 with that member's id
 * in hex in member, or -1. */
int cluster_intro_again(punchd_cluster *c, const punch_rendezvous_far *far, bool relay,
                        const punch_rendezvous_peer_info *local, const uint8_t *session,
                        char *member);
/* A signed message onto the channel of member `to`; hex_out (unless
 * NULL) gets that member's id in hex. */
void cluster_publish(punchd_cluster *c, const uint8_t *to, const uint8_t *buf, size_t len,
                     char *hex_out);
/* cluster_follow.c: rec (bytes, len as they came on our channel) says its
 * peer registers at member rec->from now, though its former member is
 * alive: the halves held here toward that peer follow it there, and the
 * far members of the halves held here for it are told in turn. */
void cluster_peer_moved(punchd_cluster *c, const punch_cluster_msg *rec, const uint8_t *bytes,
                        size_t len);
/* cluster_follow.c: each second, whether the far members of the halves
 * held here are alive; the halves toward one that is gone follow its
 * peers to the members they register at next. */
void cluster_watch_far_members(punchd_cluster *c);

#endif
