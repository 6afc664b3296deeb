/* SPDX-License-Identifier: MIT */
/* punchd --cluster: hiredis on punchd's loop, and what the members say to
 * each other through Redis. See cluster_redis.h. */
#include "cluster_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <sodium.h>

#include "io/log.h"
#include "io/net.h"

#define REDIS_DEFAULT_PORT 6379
#define RECONNECT_MS 1000u
/* A Redis that takes commands and answers none for this long (wedged,
 * stopped, or no Redis at all behind the port) is given up on as if it
 * had closed the connection: lookups must not wait on it for ever. */
#define ANSWER_TIMEOUT_MS 2000u
#define NAME_KEY_MAX (16 + PUNCH_MSG_NAME_MAX)
/* Records published again per turn of the loop after Redis came back. */
#define REPUBLISH_BATCH 1024
/* Each member says it is alive every second in punch:member:ID, which
 * lives 3 s: records of a member that stopped are ignored 3 s later, not
 * at their own expiry (90 s). */
#define HEARTBEAT_MS 1000u
#define HEARTBEAT_TTL_MS 3000u

/* Lua, run in Redis (one round trip, atomic). A record's member is bytes
 * 5..12 and its owner's key bytes 29..60 (1-based; cluster.h's
 * PUNCH_CLUSTER_FROM_AT and PUNCH_CLUSTER_OWNER_AT). */
_Static_assert(PUNCH_CLUSTER_FROM_AT == 4 && PUNCH_CLUSTER_MEMBER_LEN == 8 &&
               PUNCH_CLUSTER_OWNER_AT == 28 && PUNCH_KEY_LEN == 32, "the scripts' offsets");
#define LUA_ALIVE                                                                              \
    "local function alive(r) "                                                                 \
    "local id = string.gsub(string.sub(r, 5, 12), '.', function(ch) "                          \
    "return string.format('%02x', string.byte(ch)) end) "                                     \
    "return redis.call('EXISTS', 'punch:member:' .. id) == 1 end "
/* KEYS[1] the name; the record and whether its member is alive, or nil. */
const char cluster_lookup_script[] =
    LUA_ALIVE "local r = redis.call('GET', KEYS[1]) "
    "if not r then return nil end "
    "if string.len(r) < 60 then return {r, 1} end "
    "if alive(r) then return {r, 1} end return {r, 0}";
/* KEYS[1] the name; ARGV: our record, its TTL, its owner's key, our member
 * id. The name is ours unless another key holds it at a member that is
 * alive: then that record comes back and nothing is written. When the
 * same key was at another member that is alive (the peer moved here on
 * its own), its old record comes back in an array: that member is told. */
static const char claim_script[] =
    LUA_ALIVE "local r = redis.call('GET', KEYS[1]) "
    "local other = r and string.len(r) >= 60 and string.sub(r, 5, 12) ~= ARGV[4] "
    "and alive(r) "
    "if other and string.sub(r, 29, 60) ~= ARGV[3] then return r end "
    "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) "
    "if other then return {r} end return 0";

/* A registration here, its name claimed in Redis. */
typedef struct claim {
    punchd_cluster *cluster;
    char name[PUNCH_MSG_NAME_MAX + 1];
    uint8_t key[PUNCH_KEY_LEN];
    uint8_t txid[PUNCH_MSG_TXID_LEN];
    size_t len;
    uint8_t record[PUNCH_CLUSTER_MAX_MSG];
} claim;

/* A LOOKUP waiting for Redis' answer. */
typedef struct lookup {
    punchd_cluster *cluster;
    punch_rendezvous_peer_info asker;
    char name[PUNCH_MSG_NAME_MAX + 1];
    uint8_t pinned[PUNCH_KEY_LEN];
    uint8_t txid[PUNCH_MSG_TXID_LEN];
} lookup;

uint64_t cluster_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void cluster_hex(const uint8_t *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", p[i]);
}

/* ---- settings ---- */

int punchd_cluster_parse_url(const char *text, punch_addr *addr, unsigned *db)
{
    static const char scheme[] = "redis://";
    if (strncmp(text, scheme, sizeof(scheme) - 1) != 0)
        return -1;
    const char *host = text + sizeof(scheme) - 1;
    const char *slash = strrchr(host, '/');
    char buf[PUNCH_ADDR_STRLEN];
    size_t n = slash ? (size_t)(slash - host) : strlen(host);
    if (n == 0 || n >= sizeof(buf))
        return -1;
    memcpy(buf, host, n);
    buf[n] = '\0';
    *db = 0;
    if (slash) {
        char *end;
        errno = 0;
        unsigned long v = strtoul(slash + 1, &end, 10);
        if (!slash[1] || *end || errno || v > 65535)
            return -1;
        *db = (unsigned)v;
    }
    return punch_addr_parse(buf, REDIS_DEFAULT_PORT, addr) == 0 && addr->port ? 0 : -1;
}

int punchd_cluster_read_secret(const char *path, uint8_t secret[PUNCH_CLUSTER_SECRET_LEN])
{
    uint8_t buf[4096];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        punch_log(PUNCH_LOG_ERROR, "--cluster-secret-file: cannot open '%s': %s", path,
                  strerror(errno));
        return -1;
    }
    ssize_t n = read(fd, buf, sizeof(buf));
    close(fd);
    if (n < PUNCH_CLUSTER_SECRET_LEN) {
        punch_log(PUNCH_LOG_ERROR, "--cluster-secret-file: '%s' holds %zd bytes, fewer than "
                  "the 32 a secret needs", path, n < 0 ? (ssize_t)0 : n);
        return -1;
    }
    /* Any file of 32 bytes or more: a text passphrase works as well. */
    crypto_generichash(secret, PUNCH_CLUSTER_SECRET_LEN, buf, (size_t)n, NULL, 0);
    sodium_memzero(buf, sizeof(buf));
    return 0;
}

/* ---- hiredis on punch_loop ---- */

static void conn_on_fd(void *arg, int fd)
{
    conn *k = arg;
    (void)fd;
    /* Either call may free the context (cleanup then clears k->ac). */
    if (k->ac && (k->events & PUNCH_LOOP_OUT))
        redisAsyncHandleWrite(k->ac);
    if (k->ac && (k->events & PUNCH_LOOP_IN))
        redisAsyncHandleRead(k->ac);
}

static void conn_update(conn *k, unsigned events)
{
    punch_loop *loop = k->cluster->cfg.loop;
    k->events = events;
    if (!k->watched) {
        if (punch_loop_watch(loop, k->fd, conn_on_fd, k) != 0) {
            punch_log(PUNCH_LOG_ERROR, "cluster: cannot watch the Redis socket: %s",
                      strerror(errno));
            return;
        }
        k->watched = true;
    }
    punch_loop_set_events(loop, k->fd, events);
}

static void ev_add_read(void *p)
{
    conn *k = p;
    conn_update(k, k->events | PUNCH_LOOP_IN);
}

static void ev_del_read(void *p)
{
    conn *k = p;
    conn_update(k, k->events & ~(unsigned)PUNCH_LOOP_IN);
}

static void ev_add_write(void *p)
{
    conn *k = p;
    conn_update(k, k->events | PUNCH_LOOP_OUT);
}

static void ev_del_write(void *p)
{
    conn *k = p;
    conn_update(k, k->events & ~(unsigned)PUNCH_LOOP_OUT);
}

static void ev_cleanup(void *p)
{
    conn *k = p;
    if (k->watched)
        punch_loop_unwatch(k->cluster->cfg.loop, k->fd);
    k->watched = false;
    k->connected = false;
    k->events = 0;
    k->ac = NULL;
}

static void conn_attach(conn *k, redisAsyncContext *ac)
{
    k->ac = ac;
    k->fd = ac->c.fd;
    k->events = 0;
    ac->data = k;
    ac->ev.data = k;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
}

/* ---- the connections to Redis ---- */

static void emit_state(punchd_cluster *c, const char *state, const char *reason)
{
    char addr[PUNCH_ADDR_STRLEN];
    punch_addr_format(&c->cfg.redis, addr);
    punch_events_emit(*c->cfg.events, "cluster",
                      "\"state\":\"%s\",\"redis\":\"%s\",\"member\":\"%s\",\"reason\":\"%s\"",
                      state, addr, c->self_hex, reason);
}

/* One connection failed or closed: close the other too, and try again
 * in a second. Lookups waiting are refused as hiredis hands them back. */
static void conn_close(conn *k)
{
    redisAsyncContext *ac = k->ac;
    if (!ac)
        return;
    k->ac = NULL;
    k->freeing = true;
    redisAsyncFree(ac);
    k->freeing = false;
}

static void lost(punchd_cluster *c, const char *reason)
{
    snprintf(c->down_reason, sizeof(c->down_reason), "%s", reason);
    c->waiting = 0;
    c->ponged = c->subscribed = false;
    punch_loop_timer_set(c->cfg.loop, c->no_answer, PUNCH_LOOP_NEVER);
    punch_loop_timer_set(c->cfg.loop, c->heartbeat, PUNCH_LOOP_NEVER);
    conn_close(&c->cmd);
    conn_close(&c->sub);
    if (c->closing)
        return;
    if (c->up || !c->said_down) {
        punch_log(PUNCH_LOG_WARN, "cluster: Redis unavailable (%s); serving this member's "
                  "peers only, retrying every second", reason);
        emit_state(c, "down", reason);
        c->said_down = true;
    }
    c->up = false;
    punch_loop_timer_set(c->cfg.loop, c->reconnect, punch_clock_ms() + RECONNECT_MS);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    conn *k = ac->data;
    punchd_cluster *c = k->cluster;
    if (status != REDIS_OK) {
        k->ac = NULL; /* hiredis frees it after this */
        lost(c, ac->errstr[0] ? ac->errstr : "cannot connect");
        return;
    }
    k->connected = true;
}

static void heartbeat(void *arg, uint64_t now_ms);

/* Redis answered on both connections: up. */
static void answered_both(punchd_cluster *c)
{
    if (c->ponged && c->subscribed && !c->up) {
        c->up = true;
        c->said_down = false;
        punch_log(PUNCH_LOG_INFO, "cluster: connected to Redis as member %s", c->self_hex);
        emit_state(c, "up", "connected");
        heartbeat(c, punch_clock_ms()); /* before the records that name this member */
        c->republish_cursor = 0; /* a restarted Redis forgot them */
        punch_loop_timer_set(c->cfg.loop, c->republish, punch_clock_ms());
    }
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    conn *k = ac->data;
    punchd_cluster *c = k->cluster;
    (void)status;
    if (k->freeing)
        return; /* one we closed ourselves */
    k->ac = NULL; /* hiredis frees it after this */
    lost(c, ac->errstr[0] ? ac->errstr : "connection closed");
}


/* ---- commands, each answered within ANSWER_TIMEOUT_MS ---- */

static void no_answer(void *arg, uint64_t now_ms)
{
    punchd_cluster *c = arg;
    char reason[64];
    (void)now_ms;
    c->stats.timeouts++;
    snprintf(reason, sizeof(reason), "redis did not answer within %u ms", ANSWER_TIMEOUT_MS);
    lost(c, reason);
}

/* One answer came: the others have ANSWER_TIMEOUT_MS from now. */
void cluster_answered(punchd_cluster *c)
{
    if (c->closing || c->waiting == 0)
        return;
    c->waiting--;
    punch_loop_timer_set(c->cfg.loop, c->no_answer,
                         c->waiting ? punch_clock_ms() + ANSWER_TIMEOUT_MS : PUNCH_LOOP_NEVER);
}

static void waiting_for(punchd_cluster *c)
{
    if (c->waiting++ == 0)
        punch_loop_timer_set(c->cfg.loop, c->no_answer, punch_clock_ms() + ANSWER_TIMEOUT_MS);
}

/* A callback for commands whose answer only counts as one. */
static void on_answer(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    if (reply)
        cluster_answered(privdata);
}

static void on_pong(redisAsyncContext *ac, void *reply, void *privdata)
{
    punchd_cluster *c = privdata;
    on_answer(ac, reply, privdata);
    if (reply && !c->closing) {
        c->ponged = true;
        answered_both(c);
    }
}

/* A command on k (fn NULL: on_answer), timed. Returns REDIS_OK or REDIS_ERR. */
int cluster_command(punchd_cluster *c, conn *k, redisCallbackFn *fn, void *privdata,
                   const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = redisvAsyncCommand(k->ac, fn ? fn : on_answer, fn ? privdata : c, fmt, ap);
    va_end(ap);
    if (rc == REDIS_OK)
        waiting_for(c);
    return rc;
}

static void on_channel(redisAsyncContext *ac, void *reply, void *privdata);

static redisAsyncContext *conn_open(punchd_cluster *c, conn *k)
{
    char ip[PUNCH_ADDR_STRLEN];
    struct sockaddr_storage ss;
    socklen_t sl = punch_addr_to_sockaddr(&c->cfg.redis, &ss);
    if (getnameinfo((struct sockaddr *)&ss, sl, ip, sizeof(ip), NULL, 0, NI_NUMERICHOST) != 0)
        return NULL;
    redisAsyncContext *ac = redisAsyncConnect(ip, c->cfg.redis.port);
    if (!ac)
        return NULL;
    if (ac->err) {
        punch_log(PUNCH_LOG_DEBUG, "cluster: %s", ac->errstr);
        redisAsyncFree(ac);
        return NULL;
    }
    conn_attach(k, ac);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    return ac;
}

/* Connect both (non-blocking: the answers come through the loop). */
static void connect_redis(void *arg, uint64_t now_ms)
{
    punchd_cluster *c = arg;
    (void)now_ms;
    if (!conn_open(c, &c->cmd) || !conn_open(c, &c->sub)) {
        lost(c, "cannot connect");
        return;
    }
    if (c->cfg.db)
        cluster_command(c, &c->cmd, NULL, NULL, "SELECT %u", c->cfg.db);
    cluster_command(c, &c->cmd, on_pong, c, "PING");
    cluster_command(c, &c->sub, on_channel, c, "SUBSCRIBE %s", c->channel);
}

/* ---- what members say ---- */

/* This member is alive for HEARTBEAT_TTL_MS more. */
static void heartbeat(void *arg, uint64_t now_ms)
{
    punchd_cluster *c = arg;
    char stamp[24];
    if (!c->up)
        return;
    snprintf(stamp, sizeof(stamp), "%llu", (unsigned long long)cluster_wall_ms());
    cluster_command(c, &c->cmd, NULL, NULL, "SET punch:member:%s %s PX %u", c->self_hex, stamp,
            HEARTBEAT_TTL_MS);
    cluster_watch_far_members(c);
    punch_loop_timer_set(c->cfg.loop, c->heartbeat, now_ms + HEARTBEAT_MS);
}

/* Another key holds our peer's name at a live member: refuse it as one
 * server would (same REFUSED, same hint at the peer). */
static void name_taken(punchd_cluster *c, const claim *k, const punch_cluster_msg *rec)
{
    char member[2 * PUNCH_CLUSTER_MEMBER_LEN + 1];
    if (punch_rendezvous_refuse_name(c->cfg.rv, punch_clock_ms(), k->key, k->txid) != 0)
        return; /* refused already (a REGISTER's copy), or gone */
    c->stats.names_taken++;
    punch_loop_defer(c->cfg.loop, c->cfg.drain, c->cfg.drain_arg);
    cluster_hex(rec->from, PUNCH_CLUSTER_MEMBER_LEN, member);
    punch_events_emit(*c->cfg.events, "cluster-name-taken",
                      "\"name\":\"%s\",\"member\":\"%s\"", k->name, member);
}

/* Our peer's name was at another member that is alive, under the same
 * key: the peer left it for us on its own (that member unreachable from
 * the peer only). That member gets our record on its channel, and passes
 * it on to the far members of the peer's relay halves there, which follow
 * the peer here (cluster_follow.c). */
static void tell_member_left(punchd_cluster *c, const claim *k, const redisReply *old)
{
    punch_cluster_msg rec;
    if (punch_cluster_read_record(&c->core, k->name, (const uint8_t *)old->str,
                                  (size_t)old->len, cluster_wall_ms(), &rec) != 0 ||
        memcmp(rec.peer.key, k->key, PUNCH_KEY_LEN) != 0 ||
        memcmp(rec.from, c->core.self, PUNCH_CLUSTER_MEMBER_LEN) == 0)
        return;
    cluster_publish(c, rec.from, k->record, k->len, NULL);
    c->stats.left_told++;
}

static void on_claim(redisAsyncContext *ac, void *reply, void *privdata)
{
    claim *k = privdata;
    punchd_cluster *c = k->cluster;
    const redisReply *r = reply;
    punch_cluster_msg rec;
    (void)ac;
    if (c->closing || !r)
        goto cleanup;
    cluster_answered(c);
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
        r->element[0]->type == REDIS_REPLY_STRING)
        tell_member_left(c, k, r->element[0]);
    if (r->type != REDIS_REPLY_STRING)
        goto cleanup; /* claimed (or an error: the next keepalive claims again) */
    if (punch_cluster_read_record(&c->core, k->name, (const uint8_t *)r->str, (size_t)r->len,
                                  cluster_wall_ms(), &rec) == 0)
        name_taken(c, k, &rec);
    else /* a record no member made, or expired: ours goes over it */
        cluster_command(c, &c->cmd, NULL, NULL, "SET punch:name:%s %b PX %u", k->name, k->record,
                k->len, c->cfg.record_ttl_ms);
cleanup:
    free(k);
}

/* A registration here: the name's record, for as long as the peer lives,
 * unless another key holds the name at another member. */
static void publish_record(punchd_cluster *c, const punch_rendezvous_peer_info *p,
                           const uint8_t txid[PUNCH_MSG_TXID_LEN])
{
    claim *k = c->up ? calloc(1, sizeof(*k)) : NULL;
    if (!k)
        return; /* down: the peer's next keepalive publishes it */
    k->cluster = c;
    memcpy(k->name, p->name, sizeof(k->name));
    memcpy(k->key, p->key, PUNCH_KEY_LEN);
    memcpy(k->txid, txid, PUNCH_MSG_TXID_LEN);
    if (punch_cluster_record(&c->core, p, cluster_wall_ms() + c->cfg.record_ttl_ms, k->record,
                             sizeof(k->record), &k->len) != 0 ||
        cluster_command(c, &c->cmd, on_claim, k, "EVAL %s 1 punch:name:%s %b %u %b %b", claim_script,
                p->name, k->record, k->len, c->cfg.record_ttl_ms, p->key, (size_t)PUNCH_KEY_LEN,
                c->core.self, (size_t)PUNCH_CLUSTER_MEMBER_LEN) != REDIS_OK)
        free(k);
}

/* A batch of our peers' records, then the rest on the next turns. */
static void republish(void *arg, uint64_t now_ms)
{
    punchd_cluster *c = arg;
    punch_rendezvous_peer_info p;
    unsigned n = 0;
    while (c->up && n++ < REPUBLISH_BATCH &&
           punch_rendezvous_next_peer(c->cfg.rv, &c->republish_cursor, &p) == 1)
        publish_record(c, &p, (const uint8_t[PUNCH_MSG_TXID_LEN]){0});
    if (c->up && n > REPUBLISH_BATCH)
        punch_loop_timer_set(c->cfg.loop, c->republish, now_ms);
}

/* "redis unavailable: WHY", WHY the last connection's end. */
static const char *unavailable(punchd_cluster *c)
{
    static char text[sizeof(c->down_reason) + 24];
    snprintf(text, sizeof(text), "redis unavailable: %s",
             c->down_reason[0] ? c->down_reason : "not connected yet");
    return text;
}

static void lookup_failed(punchd_cluster *c, const lookup *l, punch_refusal code,
                          const char *reason)
{
    c->stats.lookups_failed++;
    punch_rendezvous_refuse(c->cfg.rv, punch_clock_ms(), l->asker.key, l->txid, code);
    punch_loop_defer(c->cfg.loop, c->cfg.drain, c->cfg.drain_arg);
    punch_log(PUNCH_LOG_DEBUG, "cluster: %s asked for %s: %s", l->asker.name, l->name, reason);
    punch_events_emit(*c->cfg.events, "cluster-lookup-failed",
                      "\"name\":\"%s\",\"peer\":\"%s\",\"reason\":\"%s\"", l->asker.name,
                      l->name, reason);
}

/* name: ours; peer: the one registered at member. */
static void emit_introduced(punchd_cluster *c, const char *name, const char *peer,
                            const char *member, const uint8_t *session, bool initiator)
{
    char id[2 * PUNCH_MSG_SESSION_LEN + 1];
    cluster_hex(session, PUNCH_MSG_SESSION_LEN, id);
    punch_events_emit(*c->cfg.events, "cluster-introduced",
                      "\"name\":\"%s\",\"peer\":\"%s\",\"member\":\"%s\",\"session\":\"%s\","
                      "\"initiator\":%s",
                      name, peer, member, id, initiator ? "true" : "false");
}

/* The far end of a relay session across members: the peer with key
 * `key` at member `member`, which takes relayed datagrams at hop. */
punch_rendezvous_far cluster_far_end(const punchd_cluster *c, const uint8_t *member,
                                    const punch_rendezvous_peer_info *peer,
                                    const punch_addr *hop, bool asked)
{
    punch_rendezvous_far far = {.hop = *hop, .via = c->core.self_addr, .asked = asked};
    memcpy(far.member, member, PUNCH_RV_MEMBER_LEN);
    memcpy(far.key, peer->key, PUNCH_KEY_LEN);
    memcpy(far.name, peer->name, sizeof(far.name));
    return far;
}

void cluster_publish(punchd_cluster *c, const uint8_t *to, const uint8_t *buf, size_t len,
                     char *hex_out)
{
    char member[2 * PUNCH_CLUSTER_MEMBER_LEN + 1], channel[CHANNEL_MAX];
    cluster_hex(to, PUNCH_CLUSTER_MEMBER_LEN, member);
    snprintf(channel, sizeof(channel), "punch:%u:member:%s", c->cfg.db, member);
    cluster_command(c, &c->cmd, NULL, NULL, "PUBLISH %s %b", channel, buf, len);
    if (hex_out)
        memcpy(hex_out, member, sizeof(member));
}

/* Beside an INTRO to member `to` about our peer p (or an introduction
 * that member asked for): p's relayed address at its TURN server, for
 * to's peer target_key, as one server sends TURN_ADDR beside INTRODUCE. */
static void pass_relayed(punchd_cluster *c, const uint8_t *to, const uint8_t *target_key,
                         const punch_rendezvous_peer_info *p, const uint8_t *session)
{
    uint8_t txid[PUNCH_MSG_TXID_LEN], buf[PUNCH_CLUSTER_MAX_MSG];
    size_t len;
    if (p->relayed.family == PUNCH_AF_NONE)
        return;
    punch_random_bytes(txid, sizeof(txid));
    if (punch_cluster_turn(&c->core, to, target_key, p, txid, session, cluster_wall_ms(), buf,
                           sizeof(buf), &len) != 0)
        return;
    cluster_publish(c, to, buf, len, NULL);
    c->stats.turn_sent++;
}

/* The record found: introduce the asker here and, through the member the
 * peer is registered at, the peer. */
static void introduce_across(punchd_cluster *c, const lookup *l, const punch_cluster_msg *rec)
{
    uint8_t session[PUNCH_MSG_SESSION_LEN], txid[PUNCH_MSG_TXID_LEN];
    uint8_t buf[PUNCH_CLUSTER_MAX_MSG];
    size_t len;
    char member[2 * PUNCH_CLUSTER_MEMBER_LEN + 1];
    punch_cluster_session_id(&c->core, l->asker.key, l->txid, session);
    punch_random_bytes(txid, sizeof(txid));
    /* Our half of a relay across members, if both have an address for it;
     * the INTRO offers the other member its half. */
    punch_rendezvous_far far =
        cluster_far_end(c, rec->from, &rec->peer, &rec->member_addr, false);
    uint8_t relay = c->core.self_addr.family != PUNCH_AF_NONE &&
                            rec->member_addr.family != PUNCH_AF_NONE &&
                            punch_rendezvous_relay_remote(c->cfg.rv, punch_clock_ms(), l->asker.key,
                                                          session, &far) == 0
                        ? PUNCH_INTRO_RELAY
                        : 0;
    if (punch_cluster_intro(&c->core, rec->from, rec->peer.key, &l->asker, txid, session, relay,
                            cluster_wall_ms(), buf, sizeof(buf), &len) != 0)
        return;
    /* draft §3.3.1: both at once; the PUBLISH leaves in this same turn. */
    cluster_publish(c, rec->from, buf, len, member);
    pass_relayed(c, rec->from, rec->peer.key, &l->asker, session);
    if (punch_rendezvous_introduce_remote(c->cfg.rv, punch_clock_ms(), l->asker.key, &rec->peer,
                                          l->txid, session, PUNCH_INTRO_INITIATOR | relay,
                                          NULL) != 0)
        return; /* the asker expired meanwhile */
    punch_rendezvous_met_remote(c->cfg.rv, punch_clock_ms(), l->asker.key, session, &far);
    punch_loop_defer(c->cfg.loop, c->cfg.drain, c->cfg.drain_arg);
    c->stats.introduced++;
    emit_introduced(c, l->asker.name, rec->peer.name, member, session, true);
}

/* The record in cluster_lookup_script's answer, or NULL (no such name, an error). */
const redisReply *cluster_record_of(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
                   r->element[0]->type == REDIS_REPLY_STRING &&
                   r->element[1]->type == REDIS_REPLY_INTEGER
               ? r->element[0]
               : NULL;
}

static void on_record(redisAsyncContext *ac, void *reply, void *privdata)
{
    lookup *l = privdata;
    punchd_cluster *c = l->cluster;
    const redisReply *r = reply;
    punch_cluster_msg rec;
    (void)ac;
    if (c->closing)
        goto cleanup;
    if (r)
        cluster_answered(c);
    const redisReply *found = cluster_record_of(r);
    if (!r || r->type == REDIS_REPLY_ERROR)
        lookup_failed(c, l, PUNCH_REFUSED_NO_PEER, unavailable(c));
    else if (!found)
        lookup_failed(c, l, PUNCH_REFUSED_NO_PEER, "no such name in the cluster");
    else if (punch_cluster_read_record(&c->core, l->name, (const uint8_t *)found->str,
                                       (size_t)found->len, cluster_wall_ms(), &rec) != 0)
        lookup_failed(c, l, PUNCH_REFUSED_NO_PEER, "record failed the cluster's checks");
    else if (memcmp(rec.from, c->core.self, PUNCH_CLUSTER_MEMBER_LEN) == 0)
        lookup_failed(c, l, PUNCH_REFUSED_NO_PEER, "no such name in the cluster");
    else if (r->element[1]->integer != 1)
        lookup_failed(c, l, PUNCH_REFUSED_NO_PEER, "the member it was registered at is gone");
    else if (sodium_is_zero(l->pinned, PUNCH_KEY_LEN) == 0 &&
             sodium_memcmp(l->pinned, rec.peer.key, PUNCH_KEY_LEN) != 0)
        lookup_failed(c, l, PUNCH_REFUSED_KEY_MISMATCH, "the name has another key than pinned");
    else if (memcmp(rec.peer.key, l->asker.key, PUNCH_KEY_LEN) == 0)
        lookup_failed(c, l, PUNCH_REFUSED_NO_PEER, "asked for itself");
    else
        introduce_across(c, l, &rec);
cleanup:
    free(l);
}

static void start_lookup(punchd_cluster *c, const punch_rendezvous_event *ev)
{
    lookup *l = calloc(1, sizeof(*l));
    if (!l)
        return; /* unanswered: the peer asks again */
    l->cluster = c;
    l->asker = ev->peer[0];
    memcpy(l->name, ev->peer[1].name, sizeof(l->name));
    memcpy(l->pinned, ev->peer[1].key, PUNCH_KEY_LEN);
    memcpy(l->txid, ev->txid, PUNCH_MSG_TXID_LEN);
    c->stats.lookups++;
    if (!c->up) {
        lookup_failed(c, l, PUNCH_REFUSED_NO_PEER, unavailable(c));
        free(l);
        return;
    }
    if (cluster_command(c, &c->cmd, on_record, l, "EVAL %s 1 punch:name:%s", cluster_lookup_script, l->name) !=
        REDIS_OK) {
        lookup_failed(c, l, PUNCH_REFUSED_NO_PEER, unavailable(c));
        free(l);
    }
}

/* A TURN from another member: the relayed address of its peer, for ours. */
static void carried_relayed(punchd_cluster *c, const punch_cluster_msg *m)
{
    if (punch_rendezvous_session_superseded(c->cfg.rv, punch_clock_ms(), m->target_key,
                                            m->session) ||
        punch_rendezvous_tell_relayed_remote(c->cfg.rv, punch_clock_ms(), m->target_key,
                                             &m->peer, m->txid, m->session) != 0)
        return; /* news of a session our peer left, or a peer gone from here */
    c->stats.turn_told++;
    punch_loop_defer(c->cfg.loop, c->cfg.drain, c->cfg.drain_arg);
}

/* An INTRO from another member: its peer is introduced to ours. */
static void carried_intro(punchd_cluster *c, const uint8_t *data, size_t len)
{
    punch_cluster_msg m;
    punch_rendezvous_peer_info local;
    uint8_t txid[PUNCH_MSG_TXID_LEN];
    char member[2 * PUNCH_CLUSTER_MEMBER_LEN + 1];
    if (punch_cluster_read_channel(&c->core, data, len, cluster_wall_ms(), &m) != 0)
        return; /* counted */
    if (m.type == PUNCH_CLUSTER_RECORD) {
        cluster_peer_moved(c, &m, data, len);
        return;
    }
    if (m.type == PUNCH_CLUSTER_TURN) {
        carried_relayed(c, &m);
        return;
    }
    if (punch_rendezvous_session_superseded(c->cfg.rv, punch_clock_ms(), m.target_key,
                                            m.session)) {
        c->stats.intro_superseded++; /* news of a session our peer has left */
        return;
    }
    punch_random_bytes(txid, sizeof(txid));
    /* The asker's member holds its half of the relay: ours, or none (a
     * member without a relay address of its own takes none). */
    punch_rendezvous_far far = cluster_far_end(c, m.from, &m.peer, &m.member_addr,
                                       !(m.flags & PUNCH_INTRO_INITIATOR));
    if ((m.flags & PUNCH_INTRO_RELAY) &&
        (m.member_addr.family == PUNCH_AF_NONE || c->core.self_addr.family == PUNCH_AF_NONE ||
         punch_rendezvous_relay_remote(c->cfg.rv, punch_clock_ms(), m.target_key, m.session,
                                       &far) != 0))
        m.flags &= (uint8_t)~PUNCH_INTRO_RELAY;
    if (punch_rendezvous_introduce_remote(c->cfg.rv, punch_clock_ms(), m.target_key, &m.peer,
                                          txid, m.session, m.flags, &local) != 0) {
        c->stats.intro_no_peer++;
        return;
    }
    punch_rendezvous_met_remote(c->cfg.rv, punch_clock_ms(), m.target_key, m.session, &far);
    punch_loop_defer(c->cfg.loop, c->cfg.drain, c->cfg.drain_arg);
    c->stats.introduced++;
    pass_relayed(c, m.from, m.peer.key, &local, m.session); /* the other way */
    cluster_hex(m.from, PUNCH_CLUSTER_MEMBER_LEN, member);
    emit_introduced(c, local.name, m.peer.name, member, m.session, false);
}

/* The INTRO of a session across members again (relayed through both
 * when relay is set), about our peer `local`, to the member far names
 * (the peer there asked when far says so): news for that member's peer,
 * in the same session. Returns 0 with
 * that member's id in hex, or -1. */
int cluster_intro_again(punchd_cluster *c, const punch_rendezvous_far *far, bool relay,
                       const punch_rendezvous_peer_info *local, const uint8_t *session,
                       char *member)
{
    uint8_t txid[PUNCH_MSG_TXID_LEN], buf[PUNCH_CLUSTER_MAX_MSG];
    size_t len;
    uint8_t flags = (uint8_t)((relay ? PUNCH_INTRO_RELAY : 0) |
                              (far->asked ? PUNCH_INTRO_INITIATOR : 0));
    punch_random_bytes(txid, sizeof(txid));
    if (punch_cluster_intro(&c->core, far->member, far->key, local, txid, session, flags,
                            cluster_wall_ms(), buf, sizeof(buf), &len) != 0)
        return -1;
    cluster_publish(c, far->member, buf, len, member);
    pass_relayed(c, far->member, far->key, local, session);
    return 0;
}

/* Our peer, introduced to a peer at another member, came back from a new
 * endpoint (its NAT rebound): the INTRO again, so that the other member
 * tells its peer where ours is now, in the same session (as one server
 * introduces both again). */
static void moved_across(punchd_cluster *c, const punch_rendezvous_event *ev)
{
    char member[2 * PUNCH_CLUSTER_MEMBER_LEN + 1];
    char id[2 * PUNCH_MSG_SESSION_LEN + 1];
    if (!c->up) {
        c->stats.moves_lost++; /* the far peer learns it when its path dies */
        return;
    }
    if (cluster_intro_again(c, &ev->far, ev->relay, &ev->peer[0], ev->session, member) != 0)
        return;
    c->stats.moves++;
    cluster_hex(ev->session, PUNCH_MSG_SESSION_LEN, id);
    punch_events_emit(*c->cfg.events, "cluster-moved",
                      "\"name\":\"%s\",\"member\":\"%s\",\"session\":\"%s\"",
                      ev->peer[0].name, member, id);
}

/* Our peer, introduced to a peer at another member, has a new relayed
 * address at its TURN server: a TURN to that member, which tells its
 * peer in a TURN_ADDR of the session (it permits and binds the new one). */
static void relayed_across(punchd_cluster *c, const punch_rendezvous_event *ev)
{
    if (!c->up) {
        c->stats.moves_lost++; /* the far peer learns it at the next introduction */
        return;
    }
    pass_relayed(c, ev->far.member, ev->far.key, &ev->peer[0], ev->session);
}

static void on_channel(redisAsyncContext *ac, void *reply, void *privdata)
{
    punchd_cluster *c = privdata;
    const redisReply *r = reply;
    (void)ac;
    if (!c->closing && r && r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
        r->element[0]->type == REDIS_REPLY_STRING &&
        strcmp(r->element[0]->str, "subscribe") == 0) {
        cluster_answered(c);
        c->subscribed = true;
        answered_both(c);
        return;
    }
    if (c->closing || !r || r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        r->element[0]->type != REDIS_REPLY_STRING || strcmp(r->element[0]->str, "message") != 0 ||
        r->element[2]->type != REDIS_REPLY_STRING)
        return; /* the subscription's confirmation, or a disconnection */
    carried_intro(c, (const uint8_t *)r->element[2]->str, (size_t)r->element[2]->len);
}

/* ---- the member ---- */

int punchd_cluster_new(punchd_cluster **out, const punchd_cluster_cfg *cfg)
{
    punchd_cluster *c = calloc(1, sizeof(*c));
    uint8_t self[PUNCH_CLUSTER_MEMBER_LEN];
    if (!c || punch_random_bytes(self, sizeof(self)) != 0) {
        free(c);
        punch_log(PUNCH_LOG_ERROR, "cluster: cannot set up: %s", strerror(errno));
        return -1;
    }
    c->cfg = *cfg;
    c->cmd.cluster = c->sub.cluster = c;
    punch_cluster_init(&c->core, cfg->secret, self);
    c->core.self_addr = cfg->relay_addr;
    sodium_memzero(c->cfg.secret, sizeof(c->cfg.secret));
    cluster_hex(self, sizeof(self), c->self_hex);
    snprintf(c->channel, sizeof(c->channel), "punch:%u:member:%s", cfg->db, c->self_hex);
    if (punch_loop_timer_add(cfg->loop, PUNCH_LOOP_NEVER, connect_redis, c, &c->reconnect) != 0 ||
        punch_loop_timer_add(cfg->loop, PUNCH_LOOP_NEVER, republish, c, &c->republish) != 0 ||
        punch_loop_timer_add(cfg->loop, PUNCH_LOOP_NEVER, no_answer, c, &c->no_answer) != 0 ||
        punch_loop_timer_add(cfg->loop, PUNCH_LOOP_NEVER, heartbeat, c, &c->heartbeat) != 0) {
        punchd_cluster_free(c);
        punch_log(PUNCH_LOG_ERROR, "cluster: cannot set up a timer");
        return -1;
    }
    if (punch_cluster_remember_intros(&c->core) != 0) {
        punchd_cluster_free(c);
        punch_log(PUNCH_LOG_ERROR, "cluster: no memory for the INTRO replay cache");
        return -1;
    }
    connect_redis(c, punch_clock_ms());
    *out = c;
    return 0;
}

void punchd_cluster_free(punchd_cluster *c)
{
    if (!c)
        return;
    c->closing = true;
    lost(c, "stopping");
    punch_loop_timer_del(c->cfg.loop, c->reconnect);
    punch_loop_timer_del(c->cfg.loop, c->republish);
    punch_loop_timer_del(c->cfg.loop, c->no_answer);
    punch_loop_timer_del(c->cfg.loop, c->heartbeat);
    punch_cluster_clear(&c->core);
    free(c);
}

bool punchd_cluster_on_event(punchd_cluster *c, const punch_rendezvous_event *ev)
{
    switch (ev->type) {
    case PUNCH_RV_EVENT_REGISTERED:
        publish_record(c, &ev->peer[0], ev->txid);
        return ev->refresh;
    case PUNCH_RV_EVENT_LOOKUP:
        start_lookup(c, ev);
        return true;
    case PUNCH_RV_EVENT_MOVED:
        moved_across(c, ev);
        return true;
    case PUNCH_RV_EVENT_RELAYED:
        relayed_across(c, ev);
        return true;
    default:
        return false;
    }
}

const punch_cluster_counters *punchd_cluster_counters(const punchd_cluster *c)
{
    return &c->core.counters;
}

const punchd_cluster_stats *punchd_cluster_stats_get(const punchd_cluster *c)
{
    return &c->stats;
}

bool punchd_cluster_up(const punchd_cluster *c)
{
    return c->up;
}

void punchd_cluster_format_counters(const punchd_cluster *c, char *buf, size_t cap)
{
    typedef unsigned long long ull;
    const punch_cluster_counters *k = &c->core.counters;
    snprintf(buf, cap,
             ",\"cluster_up\":%s,\"cluster_lookups\":%llu,\"cluster_lookups_failed\":%llu,"
             "\"cluster_introduced\":%llu,\"cluster_intro_no_peer\":%llu,\"cluster_sent\":%llu,"
             "\"cluster_accepted\":%llu,\"cluster_malformed\":%llu,\"cluster_bad_mac\":%llu,"
             "\"cluster_stale\":%llu,\"cluster_misdirected\":%llu,\"cluster_replayed\":%llu,"
             "\"cluster_timeouts\":%llu,\"cluster_names_taken\":%llu,\"cluster_moves\":%llu,"
             "\"cluster_moves_lost\":%llu,\"cluster_intro_superseded\":%llu,"
             "\"cluster_turn_sent\":%llu,\"cluster_turn_told\":%llu,\"cluster_relay_moves\":%llu,"
             "\"cluster_left_told\":%llu,\"cluster_left_passed\":%llu",
             c->up ? "true" : "false", (ull)c->stats.lookups, (ull)c->stats.lookups_failed,
             (ull)c->stats.introduced, (ull)c->stats.intro_no_peer, (ull)k->sent,
             (ull)k->accepted, (ull)k->malformed, (ull)k->bad_mac, (ull)k->stale,
             (ull)k->misdirected, (ull)k->replayed, (ull)c->stats.timeouts, (ull)c->stats.names_taken,
             (ull)c->stats.moves, (ull)c->stats.moves_lost, (ull)c->stats.intro_superseded,
             (ull)c->stats.turn_sent, (ull)c->stats.turn_told, (ull)c->stats.halves_moved,
             (ull)c->stats.left_told, (ull)c->stats.left_passed);
}
