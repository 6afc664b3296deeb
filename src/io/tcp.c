/* SPDX-License-Identifier: MIT */
/* TCP sockets and framed datagrams: see tcp.h. */
#include "io/tcp.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "io/net.h"

static int fail_close(int fd)
{
    int saved = errno;
    close(fd);
    errno = saved;
    return PUNCH_ERR_IO;
}

static void set_nodelay(int fd)
{
    /* Frames are small datagrams that matter now: no Nagle delay. */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* A TCP socket bound to a (SO_REUSEADDR); shared: SO_REUSEPORT too and no
 * Nagle, for a TCP path's port that a listener and connectors share
 * (draft §4.4). Returns the fd or PUNCH_ERR_IO. */
static int bound_socket(const punch_addr *a, bool shared)
{
    struct sockaddr_storage ss;
    socklen_t sl = punch_addr_to_sockaddr(a, &ss);
    int one = 1;
    int fd = punch_socket_for(a, SOCK_STREAM);
    if (fd < 0)
        return PUNCH_ERR_IO;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        (shared && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) ||
        bind(fd, (struct sockaddr *)&ss, sl) != 0)
        return fail_close(fd);
    if (shared)
        set_nodelay(fd);
    return fd;
}

int punch_tcp_listen(const punch_addr *a, punch_addr *bound)
{
    int fd = bound_socket(a, false);
    if (fd < 0)
        return fd;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (listen(fd, 128) != 0 || getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
        return fail_close(fd);
    punch_addr_from_sockaddr((struct sockaddr *)&ss, bound);
    return fd;
}

int punch_tcp_listen_shared(const punch_addr *local, punch_addr *bound)
{
    int fd = bound_socket(local, true);
    if (fd < 0)
        return fd;
    if (listen(fd, 8) != 0)
        return fail_close(fd);
    if (bound) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
            return fail_close(fd);
        punch_addr_from_sockaddr((struct sockaddr *)&ss, bound);
    }
    return fd;
}

/* -1: the system's default again. */
static int set_ttl(int fd, uint8_t family, int ttl)
{
    return family == PUNCH_AF_INET6
               ? setsockopt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &ttl, sizeof(ttl))
               : setsockopt(fd, IPPROTO_IP, IP_TTL, &ttl, sizeof(ttl));
}

int punch_tcp_connect_from(const punch_addr *local, const punch_addr *dst)
{
    return punch_tcp_connect_from_ttl(local, dst, 0);
}

int punch_tcp_connect_from_ttl(const punch_addr *local, const punch_addr *dst, uint8_t ttl)
{
    struct sockaddr_storage ss;
    socklen_t sl = punch_addr_to_sockaddr(dst, &ss);
    int fd = bound_socket(local, true);
    if (fd < 0)
        return fd;
    if (ttl && set_ttl(fd, dst->family, ttl) != 0)
        return fail_close(fd);
    if (connect(fd, (struct sockaddr *)&ss, sl) != 0 && errno != EINPROGRESS)
        return fail_close(fd);
    /* connect() sent the SYN; what follows (a retransmission, the SYN-ACK
     * of a simultaneous open) goes with the system's TTL again. */
    if (ttl && set_ttl(fd, dst->family, -1) != 0)
        return fail_close(fd);
    return fd;
}

int punch_tcp_accept(int lfd, punch_addr *remote, punch_addr *local)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return PUNCH_ERR_IO;
    punch_addr_from_sockaddr((struct sockaddr *)&ss, remote);
    sl = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
        return fail_close(fd);
    punch_addr_from_sockaddr((struct sockaddr *)&ss, local);
    set_nodelay(fd);
    return fd;
}

int punch_tcp_connect(const punch_addr *dst)
{
    struct sockaddr_storage ss;
    socklen_t sl = punch_addr_to_sockaddr(dst, &ss);
    int fd = socket(dst->family == PUNCH_AF_INET6 ? AF_INET6 : AF_INET,
                    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return PUNCH_ERR_IO;
    set_nodelay(fd);
    if (connect(fd, (struct sockaddr *)&ss, sl) != 0 && errno != EINPROGRESS)
        return fail_close(fd);
    return fd;
}

int punch_tcp_connect_result(int fd)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        return PUNCH_ERR_IO;
    if (err != 0) {
        errno = err;
        return PUNCH_ERR_IO;
    }
    return 0;
}

int punch_tcp_out_init(punch_tcp_out *o, size_t cap)
{
    *o = (punch_tcp_out){.buf = malloc(cap), .cap = cap};
    return o->buf ? 0 : PUNCH_ERR_NOMEM;
}

void punch_tcp_out_free(punch_tcp_out *o)
{
    free(o->buf);
    *o = (punch_tcp_out){0};
}

void punch_tcp_out_clear(punch_tcp_out *o)
{
    o->start = o->end = 0;
}

/* Room for n more bytes at the end, moving what waits to the front if
 * needed. Returns false when it does not fit. */
static bool out_room(punch_tcp_out *o, size_t n)
{
    if (o->end - o->start + n > o->cap)
        return false;
    if (o->end + n > o->cap) {
        memmove(o->buf, o->buf + o->start, o->end - o->start);
        o->end -= o->start;
        o->start = 0;
    }
    return true;
}

int punch_tcp_out_frame(punch_tcp_out *o, const uint8_t *data, size_t len)
{
    uint8_t hdr[PUNCH_FRAME_HEADER];
    if (punch_frame_header(len, hdr) != 0)
        return PUNCH_ERR_INVAL;
    if (!out_room(o, sizeof(hdr) + len))
        return PUNCH_ERR_NOBUFS;
    memcpy(o->buf + o->end, hdr, sizeof(hdr));
    memcpy(o->buf + o->end + sizeof(hdr), data, len);
    o->end += sizeof(hdr) + len;
    return 0;
}

int punch_tcp_out_bytes(punch_tcp_out *o, const uint8_t *data, size_t len)
{
    if (!out_room(o, len))
        return PUNCH_ERR_NOBUFS;
    memcpy(o->buf + o->end, data, len);
    o->end += len;
    return 0;
}

size_t punch_tcp_out_room(const punch_tcp_out *o)
{
    return o->cap - (o->end - o->start);
}

int punch_tcp_out_flush(int fd, punch_tcp_out *o)
{
    while (o->start < o->end) {
        ssize_t n = send(fd, o->buf + o->start, o->end - o->start, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            return PUNCH_ERR_IO;
        }
        o->start += (size_t)n;
    }
    o->start = o->end = 0;
    return 0;
}

bool punch_tcp_out_pending(const punch_tcp_out *o)
{
    return o->start < o->end;
}

int punch_tcp_read_frames(int fd, punch_frame_reader *r, size_t max_bytes,
                          punch_tcp_frame_fn fn, void *arg)
{
    uint8_t buf[16384];
    size_t total = 0;
    while (total < max_bytes) {
        size_t want = max_bytes - total < sizeof(buf) ? max_bytes - total : sizeof(buf);
        ssize_t n = recv(fd, buf, want, MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return PUNCH_TCP_OPEN;
            return PUNCH_ERR_IO;
        }
        if (n == 0)
            return PUNCH_TCP_CLOSED;
        total += (size_t)n;
        size_t off = 0;
        while (off < (size_t)n) {
            const uint8_t *frame;
            size_t used, flen;
            int rc = punch_frame_read(r, buf + off, (size_t)n - off, &used, &frame, &flen);
            off += used;
            if (rc < 0)
                return rc;
            if (rc == 1 && !fn(arg, frame, flen))
                return PUNCH_TCP_OPEN;
        }
        if ((size_t)n < want)
            return PUNCH_TCP_OPEN; /* drained: no need for another recv to see EAGAIN */
    }
    return PUNCH_TCP_OPEN;
}
