/* SPDX-License-Identifier: MIT */
/* Reliable streams on usrsctp: see stream.h and docs/protocol.md "Streams".
 * This file holds the streams (their messages, their file descriptors, the
 * public calls) and the stack's life; packets.c is usrsctp's side. */
#include "stream/stream_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <usrsctp.h>

#include "io/log.h"

/* Payload protocol identifiers: the one message type of each SCTP message. */
enum { PPID_OPEN = 1, PPID_DATA = 2, PPID_FIN = 3, PPID_DONE = 4, PPID_REFUSE = 5 };

static void on_driver_event(void *arg, const punch_event *ev);

/* ---- streams -------------------------------------------------------------- */

static int send_msg(punch_stream *st, uint32_t ppid, const void *data, size_t len)
{
    struct sctp_sndinfo si;
    memset(&si, 0, sizeof(si));
    si.snd_ppid = htonl(ppid);
    if (usrsctp_sendv(st->so, data, len, NULL, 0, &si, sizeof(si), SCTP_SENDV_SNDINFO, 0) >= 0)
        return 0;
    return errno == EWOULDBLOCK || errno == EAGAIN || errno == ENOBUFS ? 1 : -1;
}

static bool complete(const punch_stream *st)
{
    return st->fin_sent && st->fin_got && st->done_sent && st->done_got;
}

static void restore_fd(int fd, fd_kind kind, int flags)
{
    if (fd >= 0 && kind == FD_NONBLOCK)
        fcntl(fd, F_SETFL, flags);
}

/* The stream ends: result 0 or a PUNCH_ERR_*, why for the user. */
static void finish(punch_stream *st, int result, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void finish(punch_stream *st, int result, const char *fmt, ...)
{
    if (st->over)
        return;
    st->over = true;
    st->result = result;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->why, sizeof(st->why), fmt, ap);
    va_end(ap);
    punch_loop *loop = st->owner->cfg.loop;
    if (st->r_watched)
        punch_loop_unwatch(loop, st->rfd);
    if (st->w_watched && st->wfd != st->rfd)
        punch_loop_unwatch(loop, st->wfd);
    st->r_watched = st->w_watched = false;
    restore_fd(st->rfd, st->rkind, st->rflags);
    if (st->wfd != st->rfd)
        restore_fd(st->wfd, st->wkind, st->wflags);
    if (st->so) {
        usrsctp_set_upcall(st->so, NULL, NULL);
        if (result != 0 && result != PUNCH_ERR_UNSUPPORTED) {
            /* A failed stream is aborted, not drained. */
            struct linger l = {.l_onoff = 1, .l_linger = 0};
            usrsctp_setsockopt(st->so, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
        }
        usrsctp_close(st->so);
        st->so = NULL;
    }
    punch_stream_result r = {.result = result, .bytes_sent = st->sent,
                             .bytes_received = st->received};
    snprintf(r.why, sizeof(r.why), "%s", st->why);
    if (st->owner->cfg.on_done)
        st->owner->cfg.on_done(st->owner->cfg.arg, st, &r);
}

/* The association ended (SHUTDOWN complete, peer gone): clean only when
 * both directions were confirmed. */
static void ended(punch_stream *st, const char *what)
{
    if (st->refused_by_us)
        finish(st, PUNCH_ERR_UNSUPPORTED, "refused");
    else if (complete(st))
        finish(st, 0, "done");
    else if (!st->done_got && st->fin_sent)
        finish(st, PUNCH_ERR_IO, "%s before confirming our data (%llu bytes sent)", what,
               (unsigned long long)st->sent);
    else
        finish(st, PUNCH_ERR_IO, "%s before the stream ended", what);
}

static void protocol_error(punch_stream *st, const char *what)
{
    finish(st, PUNCH_ERR_MALFORMED, "the peer broke the stream protocol: %s", what);
}

static void on_notification(punch_stream *st, const uint8_t *buf, size_t len)
{
    union sctp_notification n;
    if (len < sizeof(n.sn_header))
        return;
    memcpy(&n, buf, len < sizeof(n) ? len : sizeof(n));
    if (n.sn_header.sn_type != SCTP_ASSOC_CHANGE || len < sizeof(n.sn_assoc_change))
        return;
    switch (n.sn_assoc_change.sac_state) {
    case SCTP_COMM_UP:
        if (!st->up) {
            st->up = true;
            stream_set_path_mtu(st);
            stream_set_data_rto(st);
            stream_set_cc(st);
        }
        break;
    case SCTP_COMM_LOST:
        ended(st, "the association was lost (peer unreachable or aborted)");
        break;
    case SCTP_CANT_STR_ASSOC:
        finish(st, PUNCH_ERR_IO, "could not set the stream up with the peer");
        break;
    case SCTP_SHUTDOWN_COMP:
        ended(st, "the peer closed the stream");
        break;
    default:
        break;
    }
}

static void on_message(punch_stream *st, uint32_t ppid, const uint8_t *buf, size_t n, bool eor)
{
    switch (ppid) {
    case PPID_DATA:
        if (st->opener ? !st->open_sent : !st->open_got)
            return protocol_error(st, "data before OPEN");
        if (st->fin_got)
            return protocol_error(st, "data after FIN");
        if (st->refused_by_us)
            return; /* what a refused opener sent before it knew */
        st->out_len += n;
        st->received += n;
        return;
    case PPID_OPEN:
        if (st->opener || st->open_got || n != 2 || !eor)
            return protocol_error(st, "unexpected OPEN");
        st->open_got = true;
        st->service = (uint16_t)(buf[0] << 8 | buf[1]);
        if (st->owner->cfg.on_open)
            st->owner->cfg.on_open(st->owner->cfg.arg, st, st->peer->id, st->service);
        if (!st->attached && !st->refused_by_us && !st->over)
            punch_stream_refuse(st, "not served");
        return;
    case PPID_FIN:
        if (st->fin_got || !eor)
            return protocol_error(st, "second FIN");
        st->fin_got = true;
        return;
    case PPID_DONE:
        if (!st->fin_sent || st->done_got || !eor)
            return protocol_error(st, "DONE before our FIN");
        st->done_got = true;
        return;
    case PPID_REFUSE:
        if (!st->opener || !eor)
            return protocol_error(st, "unexpected REFUSE");
        {
            char why[128];
            size_t k = 0;
            for (size_t i = 0; i < n && k + 1 < sizeof(why); i++)
                why[k++] = buf[i] >= 0x20 && buf[i] < 0x7f ? (char)buf[i] : '?';
            why[k] = '\0';
            finish(st, PUNCH_ERR_UNSUPPORTED, "%s", why);
        }
        return;
    default:
        return protocol_error(st, "unknown message type");
    }
}

/* Take what SCTP delivered, as far as there is room to keep it. */
static void read_sctp(punch_stream *st)
{
    while (!st->over && st->so) {
        if (OUT_BUF - st->out_off - st->out_len < OUT_ROOM && st->out_off > 0) {
            memmove(st->out, st->out + st->out_off, st->out_len);
            st->out_off = 0;
        }
        size_t room = OUT_BUF - st->out_off - st->out_len;
        if (room < OUT_ROOM)
            return; /* the peer waits: SCTP's window closes (flow control) */
        uint8_t *dst = st->out + st->out_off + st->out_len;
        struct sctp_rcvinfo ri;
        memset(&ri, 0, sizeof(ri));
        socklen_t infolen = sizeof(ri), fromlen = 0;
        unsigned infotype = 0;
        int flags = 0;
        ssize_t n = usrsctp_recvv(st->so, dst, room, NULL, &fromlen, &ri, &infolen, &infotype,
                                  &flags);
        if (n < 0) {
            if (errno == EWOULDBLOCK || errno == EAGAIN)
                return;
            if (errno == ENOTCONN && !st->up)
                return; /* still setting up */
            ended(st, "the stream broke");
            return;
        }
        if (n == 0) {
            ended(st, "the peer closed the stream");
            return;
        }
        if (flags & MSG_NOTIFICATION) {
            on_notification(st, dst, (size_t)n);
            continue;
        }
        if (infotype != SCTP_RECVV_RCVINFO)
            return protocol_error(st, "message without its header");
        on_message(st, ntohl(ri.rcv_ppid), dst, (size_t)n, (flags & MSG_EOR) != 0);
    }
}

/* The peer's bytes to wfd; at its FIN, wfd's end and our DONE. */
static void write_out(punch_stream *st)
{
    while (!st->over && st->out_len > 0 && st->wfd >= 0) {
        ssize_t n = write(st->wfd, st->out + st->out_off, st->out_len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            st->w_blocked = true;
            return;
        }
        if (n <= 0) {
            finish(st, PUNCH_ERR_IO, "cannot write the peer's data: %s",
                   n < 0 ? strerror(errno) : "nothing written");
            return;
        }
        st->out_off += (size_t)n;
        st->out_len -= (size_t)n;
    }
    if (st->out_len == 0)
        st->out_off = 0;
    if (st->over || !st->fin_got || st->out_len > 0 || st->done_sent)
        return;
    if (st->wfd >= 0 && !st->keep_wfd) {
        struct stat sb;
        if (shutdown(st->wfd, SHUT_WR) != 0 && fstat(st->wfd, &sb) == 0 && S_ISFIFO(sb.st_mode) &&
            st->wfd != st->rfd) {
            /* A pipe: its reader gets end of file when our end goes. */
            int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
            if (null >= 0) {
                dup2(null, st->wfd);
                close(null);
            }
        }
    }
    uint8_t z = 0;
    int rc = send_msg(st, PPID_DONE, &z, 1);
    if (rc < 0)
        ended(st, "the stream broke");
    else if (rc == 0)
        st->done_sent = true;
}

/* rfd to the peer, then FIN at its end. */
static void pump_in(punch_stream *st)
{
    while (!st->over && !st->fin_sent) {
        if (st->in_len == 0 && !st->r_eof) {
            if (st->rfd < 0) {
                st->r_eof = true;
                continue;
            }
            if (st->r_watched && !st->r_ready)
                return; /* epoll says when (level-triggered: again while data is left) */
            ssize_t n = read(st->rfd, st->in, sizeof(st->in));
            st->r_ready = false;
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                return;
            if (n < 0 && errno != ECONNRESET) {
                finish(st, PUNCH_ERR_IO, "cannot read our input: %s", strerror(errno));
                return;
            }
            if (n <= 0)
                st->r_eof = true;
            else
                st->in_len = (size_t)n;
            continue;
        }
        int rc;
        if (st->in_len > 0) {
            if ((rc = send_msg(st, PPID_DATA, st->in, st->in_len)) == 0) {
                st->sent += st->in_len;
                st->in_len = 0;
            }
        } else {
            uint8_t z = 0;
            if ((rc = send_msg(st, PPID_FIN, &z, 1)) == 0)
                st->fin_sent = true;
        }
        if (rc < 0)
            ended(st, "the stream broke");
        if (rc != 0)
            return; /* the send buffer is full: the stream_upcall brings us back */
    }
}

static void set_watch(punch_stream *st, int fd, bool *watched, unsigned *cur, unsigned want)
{
    if (*watched && *cur != want && punch_loop_set_events(st->owner->cfg.loop, fd, want) == 0)
        *cur = want;
}

static void update_watches(punch_stream *st)
{
    if (st->over)
        return;
    bool sending = st->opener ? st->open_sent : st->attached;
    unsigned r = sending && !st->r_eof && st->in_len == 0 && !st->fin_sent ? PUNCH_LOOP_IN : 0;
    unsigned w = st->out_len > 0 && st->w_blocked ? PUNCH_LOOP_OUT : 0;
    if (st->rfd >= 0 && st->rfd == st->wfd) {
        set_watch(st, st->rfd, &st->r_watched, &st->r_events, r | w);
        return;
    }
    if (st->rfd >= 0)
        set_watch(st, st->rfd, &st->r_watched, &st->r_events, r);
    if (st->wfd >= 0)
        set_watch(st, st->wfd, &st->w_watched, &st->w_events, w);
}

static void serve(punch_stream *st)
{
    if (st->over)
        return;
    read_sctp(st);
    if (st->over)
        return;
    if (st->opener && st->up && !st->open_sent) {
        uint8_t svc[2] = {(uint8_t)(st->service >> 8), (uint8_t)st->service};
        int rc = send_msg(st, PPID_OPEN, svc, sizeof(svc));
        if (rc < 0)
            return ended(st, "the stream broke");
        st->open_sent = rc == 0;
    }
    if (st->attached || st->opener) {
        write_out(st);
        /* SCTP holds more than out has room for: keep draining it while
         * wfd takes it, so the peer's window opens now, not a loop turn
         * (one batch of datagrams) later. */
        for (size_t budget = SERVE_BUDGET; !st->over && st->out_len == 0 && budget > 0;) {
            uint64_t before = st->received;
            read_sctp(st);
            if (st->over || st->received == before)
                break;
            budget -= st->received - before < budget ? st->received - before : budget;
            write_out(st);
        }
    }
    if ((st->opener && st->open_sent) || st->attached)
        pump_in(st);
    if (!st->over && complete(st) && !st->shut) {
        st->shut = true;
        usrsctp_shutdown(st->so, SHUT_WR); /* SCTP SHUTDOWN once everything is acknowledged */
    }
    update_watches(st);
}

static punch_stream *stream_new(punch_sctp *s, sctp_peer *p, struct socket *so, bool opener)
{
    punch_stream *st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    st->owner = s;
    st->peer = p;
    st->so = so;
    st->opener = opener;
    st->cc = SCTP_CC_HSTCP; /* the stack's default (punch_sctp_new) */
    st->rfd = st->wfd = -1;
    st->next = s->streams;
    s->streams = st;
    usrsctp_set_upcall(so, stream_upcall, s);
    return st;
}

static void accept_all(punch_sctp *s, sctp_peer *p)
{
    p->accept_pending = false;
    struct socket *so;
    while (p->listener && (so = usrsctp_accept(p->listener, NULL, NULL)) != NULL) {
        punch_stream *st = NULL;
        /* The rest of the options came from the listener. */
        if (usrsctp_set_non_blocking(so, 1) != 0 || !(st = stream_new(s, p, so, false))) {
            usrsctp_close(so);
            continue;
        }
        st->up = true;
        stream_set_path_mtu(st);
    }
}

static void reap(punch_sctp *s)
{
    for (punch_stream **pp = &s->streams; *pp;) {
        punch_stream *st = *pp;
        if (st->over) {
            *pp = st->next;
            free(st);
        } else {
            pp = &st->next;
        }
    }
}

/* Serve every stream until no stream_upcall asks for more: upcalls only mark work,
 * so usrsctp is never entered again from inside itself. */
void stream_serve_all(punch_sctp *s)
{
    for (int round = 0; round < 16; round++) {
        s->kick = false;
        for (int i = 0; i < MAX_PEERS; i++)
            if (s->peers[i].used && s->peers[i].accept_pending)
                accept_all(s, &s->peers[i]);
        for (punch_stream *st = s->streams; st; st = st->next)
            serve(st);
        reap(s);
        if (!s->kick)
            break;
    }
    s->since_flush = 0;
    punch_driver_flush(s->cfg.driver);
}

void stream_serve_deferred(void *arg)
{
    stream_serve_all(arg);
}

static void on_fd(void *arg, int fd)
{
    punch_stream *st = arg;
    if (fd == st->rfd)
        st->r_ready = true;
    if (fd == st->wfd)
        st->w_blocked = false;
    stream_serve_all(st->owner);
}

/* Make fd usable from the loop; see fd_kind. */
static int prepare_fd(punch_stream *st, int fd, fd_kind *kind, int *flags, bool *watched)
{
    struct stat sb;
    *watched = false;
    if (fd < 0)
        return 0;
    if (fstat(fd, &sb) != 0)
        return PUNCH_ERR_IO;
    *flags = fcntl(fd, F_GETFL);
    if (S_ISFIFO(sb.st_mode) || S_ISSOCK(sb.st_mode)) {
        *kind = FD_NONBLOCK;
        fcntl(fd, F_SETFL, *flags | O_NONBLOCK);
    } else {
        *kind = FD_POLLED;
    }
    int rc = punch_loop_watch(st->owner->cfg.loop, fd, on_fd, st);
    if (rc == PUNCH_ERR_IO && errno == EPERM) {
        *kind = FD_ALWAYS; /* epoll takes no regular files: they are always ready */
        return 0;
    }
    if (rc != 0) {
        restore_fd(fd, *kind, *flags);
        return rc;
    }
    *watched = true;
    return 0;
}

static int attach_fds(punch_stream *st, int rfd, int wfd, void *user)
{
    st->rfd = rfd;
    st->wfd = wfd;
    st->user = user;
    st->r_events = PUNCH_LOOP_IN;
    st->w_events = PUNCH_LOOP_IN;
    int rc = prepare_fd(st, rfd, &st->rkind, &st->rflags, &st->r_watched);
    if (rc == 0 && wfd >= 0 && wfd != rfd)
        rc = prepare_fd(st, wfd, &st->wkind, &st->wflags, &st->w_watched);
    else if (wfd == rfd)
        st->wkind = st->rkind;
    if (rc != 0) {
        if (st->r_watched)
            punch_loop_unwatch(st->owner->cfg.loop, rfd);
        restore_fd(rfd, st->rkind, st->rflags);
        st->r_watched = false;
        st->rfd = st->wfd = -1;
    }
    return rc;
}

int punch_stream_open(punch_sctp *s, int peer, uint16_t service, int rfd, int wfd, void *user,
                      punch_stream **out)
{
    sctp_peer *p = stream_peer_get(s, peer);
    if (!p)
        return PUNCH_ERR_LIMIT;
    struct socket *so = usrsctp_socket(AF_CONN, SOCK_STREAM, IPPROTO_SCTP, NULL, NULL, 0, NULL);
    if (!so)
        return PUNCH_ERR_NOMEM;
    struct sockaddr_conn local = stream_conn_addr(p, 0), remote = stream_conn_addr(p, ACCEPT_PORT);
    if (stream_set_options(so) != 0 || stream_set_setup_rto(so, p) != 0 ||
        usrsctp_bind(so, (struct sockaddr *)&local, sizeof(local)) != 0) {
        usrsctp_close(so);
        return PUNCH_ERR_IO;
    }
    punch_stream *st = stream_new(s, p, so, true);
    if (!st) {
        usrsctp_close(so);
        return PUNCH_ERR_NOMEM;
    }
    st->service = service;
    int rc = attach_fds(st, rfd, wfd, user);
    if (rc != 0) {
        st->over = true; /* reaped without on_done: the caller hears rc */
        usrsctp_set_upcall(so, NULL, NULL);
        usrsctp_close(so);
        st->so = NULL;
        reap(s);
        return rc;
    }
    if (usrsctp_connect(so, (struct sockaddr *)&remote, sizeof(remote)) != 0 &&
        errno != EINPROGRESS)
        finish(st, PUNCH_ERR_IO, "cannot start the stream: %s", strerror(errno));
    else
        stream_set_data_rto(st); /* the INIT is out with the setup's timer */
    *out = st;
    stream_serve_all(s);
    return 0;
}

int punch_stream_attach(punch_stream *st, int rfd, int wfd, void *user)
{
    int rc = attach_fds(st, rfd, wfd, user);
    if (rc == 0) {
        st->attached = true;
        st->owner->kick = true;
    }
    return rc;
}

void punch_stream_keep_output(punch_stream *st)
{
    st->keep_wfd = true;
}

void punch_stream_refuse(punch_stream *st, const char *why)
{
    if (st->over || st->attached || st->opener)
        return;
    st->refused_by_us = true;
    size_t n = strlen(why);
    send_msg(st, PPID_REFUSE, why, n > 120 ? 120 : n);
    st->shut = true;
    usrsctp_shutdown(st->so, SHUT_WR);
}

void *punch_stream_user(const punch_stream *st)
{
    return st->user;
}

int punch_stream_peer(const punch_stream *st)
{
    return st->peer->id;
}

void punch_stream_bytes(const punch_stream *st, uint64_t *sent, uint64_t *received)
{
    *sent = st->sent;
    *received = st->received;
}

/* The agent forgot peer (CLOSED): its streams end now, cleanly when they
 * were complete. */
static void peer_gone(punch_sctp *s, int peer, const char *why)
{
    if (peer < 0 || peer >= MAX_PEERS || !s->peers[peer].used)
        return;
    sctp_peer *p = &s->peers[peer];
    for (punch_stream *st = s->streams; st; st = st->next)
        if (st->peer == p && !st->over) {
            serve(st); /* what arrived before the goodbye still counts */
            if (!st->over) {
                char what[120];
                snprintf(what, sizeof(what), "the peer left (%s)", why);
                ended(st, what);
            }
        }
    reap(s);
    if (p->listener) {
        usrsctp_set_upcall(p->listener, NULL, NULL);
        usrsctp_close(p->listener);
    }
    usrsctp_deregister_address(p);
    stream_repair_drop(p);
    *p = (sctp_peer){.owner = s};
    punch_driver_flush(s->cfg.driver);
}

/* ---- the stack and its clock ---------------------------------------------- */

/* st's SCTP status into ss; false when st has no association up. */
static bool stream_status(const punch_stream *st, struct sctp_status *ss)
{
    memset(ss, 0, sizeof(*ss));
    socklen_t len = sizeof(*ss);
    return !st->over && st->so && st->up &&
           usrsctp_getsockopt(st->so, IPPROTO_SCTP, SCTP_STATUS, ss, &len) == 0;
}

/* One stream's SCTP and repair state at debug level: the sender's window,
 * the peer's, what is in flight and the timers, the repair's timing and
 * whether the peer's repair conceals losses: the figures that tell a
 * stalled sender's cause (docs/streams.md). */
static void trace_stream(const punch_stream *st, const struct sctp_status *ss,
                         const struct sctpstat *all, uint64_t now, const char *why)
{
    repair_state rs = {0};
    bool conceals = false;
    if (st->peer->repair) {
        rs = punch_repair_state(st->peer->repair, (st->peer->rtt_us + 999) / 1000);
        conceals = punch_repair_peer_conceals(st->peer->repair, now);
    }
    punch_log(PUNCH_LOG_DEBUG,
              "stream %s: t %llu peer %d sent %llu got %llu cwnd %u peer_rwnd %u unacked %u "
              "pending %u srtt %u rto %u; all streams: t3 %u fast_rtx %u rtx %u; repair: "
              "took %u ms hold %u ms loss %u/65536 waiting %u; the peer %s",
              why, (unsigned long long)now, st->peer->id, (unsigned long long)st->sent,
              (unsigned long long)st->received, ss->sstat_primary.spinfo_cwnd, ss->sstat_rwnd,
              ss->sstat_unackdata, ss->sstat_penddata, ss->sstat_primary.spinfo_srtt,
              ss->sstat_primary.spinfo_rto, all->sctps_timodata, all->sctps_sendfastretrans,
              all->sctps_sendretransdata, rs.repair_ms, rs.hold_ms, rs.loss, rs.waiting,
              conceals ? "conceals" : "leaves losses to SCTP");
}

/* usrsctp's T3-rtx timer runs out every RTO or two of a bulk transfer
 * whatever the SACKs say (its express SACK path never restarts it), and
 * then counts as lost what waited longer than srtt + 4 rttvar: a first
 * flight whose SACKs came late, packets held behind a repair or by a
 * receiver waiting for a CPU. Such a cut sets the window to one packet and
 * ssthresh to half the window it cut, four packets when that was already
 * small (RFC 9260 §7.2.3); a fast retransmit of a packet the repair gave up
 * on halves it. Every usrsctp module then grows by one packet per round
 * trip: lab.stream_loss moved 64 MiB at 0.10-0.21 of TCP BBR after one such
 * cut in slow start, 1 run in 10-15 in CI, 11 in 30 at load 10-24
 * (docs/streams.md "The second slow mode, under load"). While the peer's
 * repair conceals the path's losses (it NACKs, or nothing was lost yet: the
 * loss rate is random loss's, under REPAIR_LOSS_LIMIT, not congestion's)
 * such a cut is a timing's mistake: when it left the window under
 * RESTART_BELOW, start slow start over, from the initial window up to
 * ssthresh at the peer's window (what it has free, less what is in flight:
 * usrsctp's peers_rwnd), as after an idle period. The relay's losses are
 * its policer's, congestion: SCTP keeps its cuts there. Returns whether it
 * started over. */
static bool restart_if_cut(punch_sctp *s, punch_stream *st, const struct sctp_status *ss,
                           uint64_t now, bool fast_rtx)
{
    uint32_t cwnd = ss->sstat_primary.spinfo_cwnd, mtu = ss->sstat_primary.spinfo_mtu;
    /* A T3-rtx timeout that marked something sets the window to one packet
     * (net->mtu; spinfo_mtu is that less the common header), and nothing
     * else in usrsctp sets it under two; a fast retransmit sets it lower
     * than it was (st->cwnd_seen, at most TRACE_EVERY ticks old). */
    bool t3_cut = cwnd < 2 * mtu;
    bool fr_cut = fast_rtx && cwnd < st->cwnd_seen && cwnd < RESTART_BELOW;
    if ((!t3_cut && !fr_cut) || st->peer->relayed || !st->peer->repair ||
        !punch_repair_peer_conceals(st->peer->repair, now) || !stream_restart_window(st))
        return false;
    s->c.window_restarts++;
    punch_log(PUNCH_LOG_DEBUG, "stream: peer %d's window cut from %u to %u by a %s while its "
              "repair conceals losses: slow start over", st->peer->id, st->cwnd_seen, cwnd,
              t3_cut ? "T3-rtx timeout" : "fast retransmit");
    return true;
}

/* Every TRACE_EVERY ticks, and after a tick in which a T3-rtx timer ran
 * out (t3) or a fast retransmit went (fr): each stream's window, started
 * over when cut (restart_if_cut), and traced at debug level. */
static void watch_windows(punch_sctp *s, const struct sctpstat *all, uint64_t now, bool t3,
                          bool fr)
{
    bool traced = ++s->trace_ticks % TRACE_EVERY == 0;
    if (!traced && !t3 && !fr)
        return;
    for (punch_stream *st = s->streams; st; st = st->next) {
        struct sctp_status ss;
        if (!stream_status(st, &ss))
            continue;
        if (t3 || fr)
            restart_if_cut(s, st, &ss, now, fr);
        st->cwnd_seen = ss.sstat_primary.spinfo_cwnd;
        if (traced || t3)
            trace_stream(st, &ss, all, now, t3 ? "t3" : "trace");
    }
}

static void on_tick(void *arg, uint64_t now)
{
    punch_sctp *s = arg;
    punch_loop_timer_set(s->cfg.loop, s->tick, now + TICK_MS);
    uint64_t elapsed = now - s->last_tick;
    s->last_tick = now;
    stream_repair_tick(s, now);
    usrsctp_handle_timers(elapsed > UINT32_MAX ? UINT32_MAX : (uint32_t)elapsed);
    struct sctpstat all;
    memset(&all, 0, sizeof(all));
    usrsctp_get_stat(&all);
    bool t3 = all.sctps_timodata != s->seen_t3;
    bool fr = all.sctps_sendfastretrans != s->seen_fr;
    s->seen_t3 = all.sctps_timodata;
    s->seen_fr = all.sctps_sendfastretrans;
    watch_windows(s, &all, now, t3, fr);
    stream_serve_all(s);
    if (s->cfg.on_tick)
        s->cfg.on_tick(s->cfg.arg, now);
}

int punch_sctp_new(punch_sctp **out, const punch_sctp_cfg *cfg)
{
    punch_sctp *s = calloc(1, sizeof(*s));
    if (!s)
        return PUNCH_ERR_NOMEM;
    s->cfg = *cfg;
    for (int i = 0; i < MAX_PEERS; i++)
        s->peers[i].owner = s;
    int rc = punch_driver_add_consumer(cfg->driver, PUNCH_STREAM_TAG, on_driver_event, s);
    if (rc != 0) {
        free(s);
        return rc;
    }
    if (punch_loop_timer_add(cfg->loop, punch_clock_ms() + TICK_MS, on_tick, s, &s->tick) != 0) {
        punch_driver_remove_consumer(cfg->driver, PUNCH_STREAM_TAG);
        free(s);
        return PUNCH_ERR_NOMEM;
    }
    /* A write to a pipe or socket whose reader left must be an error we
     * report, not the death of the process. */
    signal(SIGPIPE, SIG_IGN);
    s->last_tick = punch_clock_ms();
    usrsctp_init_nothreads(0, stream_conn_output, NULL);
    usrsctp_enable_crc32c_offload(); /* none computed or checked: stream_conn_output */
    usrsctp_sysctl_set_sctp_sendspace(SOCKET_BUF);
    usrsctp_sysctl_set_sctp_recvspace(SOCKET_BUF);
    /* Noise already authenticates every byte: no SCTP-AUTH, hence no ASCONF. */
    usrsctp_sysctl_set_sctp_asconf_enable(0);
    usrsctp_sysctl_set_sctp_auth_enable(0);
    usrsctp_sysctl_set_sctp_ecn_enable(0);
    /* RFC 9260 §16: RTO.Initial 1 s; a lower RTO.Min (RFC 9260 says 1 s)
     * recovers losses on short paths sooner. It stays well above the delayed
     * SACK, 10 ms (DELAYED_SACK_MS says why) rather than usrsctp's 200 ms:
     * with 5 % loss on each lab link an 8 MiB stream took 21-34 s with
     * 300/200 ms, 6-9 s with 120/40 ms (lab.stream). A long path's RTO is
     * its own RTT's, above both. INIT retried every 2 s at most while a
     * path is found. */
    usrsctp_sysctl_set_sctp_rto_initial_default(RTO_INITIAL_MS);
    usrsctp_sysctl_set_sctp_rto_min_default(RTO_MIN_MS);
    usrsctp_sysctl_set_sctp_delayed_sack_time_default(DELAYED_SACK_MS);
    usrsctp_sysctl_set_sctp_rto_max_default(RTO_MAX_MS);
    usrsctp_sysctl_set_sctp_init_rto_max_default(2000);
    usrsctp_sysctl_set_sctp_init_rtx_max_default(30);
    /* usrsctp's default of 4 packets per burst also clamps cwnd to what is
     * in flight plus 4 packets (sctp_use_cwnd_based_maxburst): the window
     * then never opens beyond what SACK clocking gives, which halves bulk
     * throughput on a fast path (bench/stream_bench.sh). cwnd alone limits. */
    usrsctp_sysctl_set_sctp_max_burst_default(0);
    /* usrsctp refuses a send (EWOULDBLOCK) once 512 chunks wait in an
     * association's send and sent queues, whatever room the send buffer
     * has: with our 1132-byte packets that capped the data in flight at
     * 580 KB (measured: 531 chunks unacknowledged, 600 KB in the send
     * buffer of 1 MiB, every send refused), 14 MB/s on a 40 ms path with
     * no loss at all. The send buffer alone limits now. */
    usrsctp_sysctl_set_sctp_max_chunks_on_queue(MAX_CHUNKS_QUEUED);
    /* Ten packets, as Linux TCP (RFC 6928), not RFC 4960's 4380 bytes. */
    usrsctp_sysctl_set_sctp_initial_cwnd(INITIAL_CWND_PACKETS);
    /* HSTCP (usrsctp's module 1, RFC 3649) rather than RFC 4960's or
     * H-TCP: random loss is repaired below SCTP (repair.c), so a loss SCTP
     * sees is rare, but each costs the rest of a transfer, since every
     * usrsctp module grows the window by one packet per round trip after
     * it (usrsctp 0.9.5's H-TCP too: its alpha is forced to the base
     * value). HSTCP backs off by 27-33 % at windows of 1-4 MB, where H-TCP
     * halved (its beta is minRTT/maxRTT, and the repair's holds make SCTP's
     * round trip vary 40-150 ms), grows faster in slow start at large
     * windows, and starts at sctp_initial_cwnd (H-TCP ignores it: 3
     * packets). Through punchd's rate-limited relay (1 MiB/s per source,
     * excess dropped) it backs off too little, so a stream on a relayed
     * path takes H-TCP instead (stream_set_cc). H-TCP, in turn, crawled on
     * a 200 ms path after one early loss (0.24 MB/s, 1 run in 2).
     * docs/streams.md. */
    usrsctp_sysctl_set_sctp_default_cc_module(SCTP_CC_HSTCP);
    *out = s;
    return 0;
}

void punch_sctp_free(punch_sctp *s)
{
    if (!s)
        return;
    for (punch_stream *st = s->streams; st; st = st->next) {
        if (st->over)
            continue;
        st->owner->cfg.on_done = NULL;
        finish(st, PUNCH_ERR_IO, "stopped");
    }
    reap(s);
    for (int i = 0; i < MAX_PEERS; i++)
        if (s->peers[i].used) {
            if (s->peers[i].listener) {
                usrsctp_set_upcall(s->peers[i].listener, NULL, NULL);
                usrsctp_close(s->peers[i].listener);
            }
            usrsctp_deregister_address(&s->peers[i]);
            stream_repair_drop(&s->peers[i]);
        }
    punch_driver_flush(s->cfg.driver);
    punch_loop_undefer(s->cfg.loop, stream_serve_deferred, s);
    punch_loop_timer_del(s->cfg.loop, s->tick);
    punch_driver_remove_consumer(s->cfg.driver, PUNCH_STREAM_TAG);
    /* Aborted associations go at once; finish fails while any lingers. */
    for (int i = 0; i < 10 && usrsctp_finish() != 0; i++)
        usrsctp_handle_timers(1000);
    free(s);
}

/* The path to peer changed (PATH event). Losses on the old path (a relay's
 * rate limit, a path that died) may have backed the retransmission timer
 * off to RTO.Max (10 s): the data would wait that long although the new
 * path works now. usrsctp has no call to retransmit one association at
 * once, so: a HEARTBEAT on demand (its answer gives a fresh RTT, hence a
 * fresh RTO, and clears the error counts), and, when a stream of this peer
 * has data unacknowledged (or is still setting up), usrsctp's clock is
 * moved on by RTO.Max so the pending T3-rtx (or INIT) timer fires now:
 * what went the old way is sent again the new way at once (measured: the
 * relay -> direct switch in bench/stream_bench.sh waited 250 ms for RTO.Min
 * otherwise, lab.stream's switch case up to seconds). The price: timers of
 * the peer's other associations, and of other peers', fire early too, at
 * worst a spurious retransmission and a congestion window that starts
 * over; path changes are rare. */
static void path_changed(punch_sctp *s, int peer, uint32_t rtt_us, bool relayed)
{
    if (peer < 0 || peer >= MAX_PEERS)
        return;
    /* Streams opened from now on start with this path's round trip. */
    sctp_peer *p = stream_peer_get(s, peer);
    p->has_path = true;
    p->rtt_us = rtt_us;
    p->relayed = relayed;
    /* A setup is kicked only when its INIT found no path: one that went out
     * is answered or retried on its own (a kick would back its timer off). */
    bool stalled = false, unsent = p->unsent;
    p->unsent = false;
    for (punch_stream *st = s->streams; st; st = st->next) {
        if (st->over || !st->so || st->peer != &s->peers[peer])
            continue;
        struct sctp_status ss;
        memset(&ss, 0, sizeof(ss));
        socklen_t len = sizeof(ss);
        if (usrsctp_getsockopt(st->so, IPPROTO_SCTP, SCTP_STATUS, &ss, &len) != 0)
            continue;
        if ((!st->up && unsent) || ss.sstat_unackdata > 0)
            stalled = true;
        if (!st->up)
            continue;
        stream_set_cc(st);
        struct sctp_paddrparams pp;
        memset(&pp, 0, sizeof(pp));
        memcpy(&pp.spp_address, &ss.sstat_primary.spinfo_address, sizeof(pp.spp_address));
        pp.spp_assoc_id = ss.sstat_assoc_id;
        pp.spp_flags = SPP_HB_DEMAND;
        usrsctp_setsockopt(st->so, IPPROTO_SCTP, SCTP_PEER_ADDR_PARAMS, &pp, sizeof(pp));
    }
    if (stalled) {
        s->c.path_kicks++;
        usrsctp_handle_timers(RTO_MAX_MS);
    }
    stream_serve_all(s);
}

/* The driver's hook (punch_driver_add_consumer): our datagrams, and every
 * peer's path changes and end. */
static void on_driver_event(void *arg, const punch_event *ev)
{
    punch_sctp *s = arg;
    switch (ev->kind) {
    case PUNCH_EVENT_DATA:
        stream_take_packet(s, ev->peer, ev->data.bytes, ev->data.len);
        break;
    case PUNCH_EVENT_PATH:
        path_changed(s, ev->peer, ev->path.rtt_us, ev->path.kind == PUNCH_PATH_RELAY);
        break;
    case PUNCH_EVENT_RTT: /* streams opened from now on start with it */
        if (ev->peer >= 0 && ev->peer < MAX_PEERS)
            stream_peer_get(s, ev->peer)->rtt_us = ev->rtt.rtt_us;
        break;
    case PUNCH_EVENT_CLOSED:
        peer_gone(s, ev->peer, ev->closed.why);
        break;
    default:
        break;
    }
}

void punch_sctp_counters_get(const punch_sctp *s, punch_sctp_counters *c)
{
    *c = s->c;
    struct sctpstat st;
    memset(&st, 0, sizeof(st));
    usrsctp_get_stat(&st);
    c->bad_checksum = st.sctps_badsum;
    c->bad_vtag = st.sctps_badvtag;
    c->no_port = st.sctps_noport;
    c->too_short = st.sctps_hdrops;
    c->out_of_the_blue = st.sctps_outoftheblue;
    c->retransmits = st.sctps_sendretransdata;
    c->fast_retransmits = st.sctps_sendfastretrans;
    c->timeouts = st.sctps_timodata;
    c->sacks_out = st.sctps_sendsacks;
    c->window_probe_timeouts = st.sctps_timowindowprobe;
    c->window_probes = st.sctps_windowprobed;
    c->init_timeouts = st.sctps_timoinit;
    c->cookie_timeouts = st.sctps_timocookie;
    stream_repair_counters_add(s, c);
}
