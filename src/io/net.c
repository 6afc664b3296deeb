/* SPDX-License-Identifier: MIT */
/* Sockets and addresses: see net.h. */
#include "io/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int punch_addr_parse(const char *text, uint16_t default_port, punch_addr *out)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *port_text = NULL;
    size_t host_len;
    if (!text || !out)
        return PUNCH_ERR_INVAL;
    memset(out, 0, sizeof(*out));
    if (text[0] == '[') {
        const char *end = strchr(text, ']');
        if (!end)
            return PUNCH_ERR_INVAL;
        host_len = (size_t)(end - text - 1);
        if (end[1] == ':')
            port_text = end + 2;
        else if (end[1] != '\0')
            return PUNCH_ERR_INVAL;
        text++;
    } else {
        const char *colon = strchr(text, ':');
        /* One colon: IPv4:PORT. More: a bare IPv6 address. */
        if (colon && !strchr(colon + 1, ':')) {
            host_len = (size_t)(colon - text);
            port_text = colon + 1;
        } else {
            host_len = strlen(text);
        }
    }
    if (host_len == 0 || host_len >= sizeof(host))
        return PUNCH_ERR_INVAL;
    memcpy(host, text, host_len);
    host[host_len] = '\0';
    if (inet_pton(AF_INET, host, out->ip) == 1)
        out->family = PUNCH_AF_INET;
    else if (inet_pton(AF_INET6, host, out->ip) == 1)
        out->family = PUNCH_AF_INET6;
    else
        return PUNCH_ERR_INVAL;
    out->port = default_port;
    if (port_text) {
        char *end;
        errno = 0;
        unsigned long p = strtoul(port_text, &end, 10);
        if (*port_text < '0' || *port_text > '9' || *end != '\0' || errno || p > 65535)
            return PUNCH_ERR_INVAL;
        out->port = (uint16_t)p;
    }
    return 0;
}

/* NAME[:PORT]'s port (default_port without one) into *port, its name
 * into host. Returns 0 or PUNCH_ERR_INVAL. */
static int split_host_port(const char *text, uint16_t default_port, char host[256], uint16_t *port)
{
    /* NAME or NAME:PORT: a name has no colon of its own. */
    const char *colon = strchr(text, ':');
    size_t host_len = colon ? (size_t)(colon - text) : strlen(text);
    if (host_len == 0 || host_len >= 256)
        return PUNCH_ERR_INVAL;
    memcpy(host, text, host_len);
    host[host_len] = '\0';
    *port = default_port;
    if (colon) {
        punch_addr probe;
        char with_port[32];
        snprintf(with_port, sizeof(with_port), "0.0.0.0:%s", colon + 1);
        if (strlen(colon + 1) > 5 || punch_addr_parse(with_port, 0, &probe) != 0)
            return PUNCH_ERR_INVAL;
        *port = probe.port;
    }
    return 0;
}

int punch_addr_resolve_all(const char *text, uint16_t default_port, punch_addr *out, size_t cap,
                           size_t *n)
{
    if (!text || !out || !n || cap == 0)
        return PUNCH_ERR_INVAL;
    *n = 0;
    if (punch_addr_parse(text, default_port, out) == 0) {
        *n = 1;
        return 0;
    }
    char host[256];
    uint16_t port;
    if (text[0] == '\0' || text[0] == '[' || split_host_port(text, default_port, host, &port) != 0)
        return PUNCH_ERR_INVAL;
    struct addrinfo hints = {.ai_socktype = SOCK_DGRAM}, *res = NULL;
    if (getaddrinfo(host, NULL, &hints, &res) != 0 || !res)
        return PUNCH_ERR_NOTFOUND;
    for (const struct addrinfo *ai = res; ai && *n < cap; ai = ai->ai_next) {
        punch_addr a;
        punch_addr_from_sockaddr(ai->ai_addr, &a);
        a.port = port;
        bool seen = a.family == PUNCH_AF_NONE;
        for (size_t i = 0; i < *n && !seen; i++)
            seen = punch_addr_equal(&out[i], &a);
        if (!seen)
            out[(*n)++] = a;
    }
    freeaddrinfo(res);
    return *n ? 0 : PUNCH_ERR_NOTFOUND;
}

int punch_addr_resolve(const char *text, uint16_t default_port, punch_addr *out)
{
    size_t n;
    return punch_addr_resolve_all(text, default_port, out, 1, &n);
}

int punch_udp_route_source(const punch_addr *dst, punch_addr *src_ip)
{
    struct sockaddr_storage ss;
    socklen_t sl = punch_addr_to_sockaddr(dst, &ss);
    int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return PUNCH_ERR_IO;
    int rc = connect(fd, (struct sockaddr *)&ss, sl);
    sl = sizeof(ss);
    if (rc == 0)
        rc = getsockname(fd, (struct sockaddr *)&ss, &sl);
    int saved = errno;
    close(fd);
    errno = saved;
    if (rc != 0)
        return PUNCH_ERR_IO;
    punch_addr_from_sockaddr((struct sockaddr *)&ss, src_ip);
    return 0;
}

const char *punch_addr_format(const punch_addr *a, char buf[PUNCH_ADDR_STRLEN])
{
    char ip[INET6_ADDRSTRLEN];
    if (a->family == PUNCH_AF_INET) {
        inet_ntop(AF_INET, a->ip, ip, sizeof(ip));
        snprintf(buf, PUNCH_ADDR_STRLEN, "%s:%u", ip, a->port);
    } else if (a->family == PUNCH_AF_INET6) {
        inet_ntop(AF_INET6, a->ip, ip, sizeof(ip));
        snprintf(buf, PUNCH_ADDR_STRLEN, "[%s]:%u", ip, a->port);
    } else {
        snprintf(buf, PUNCH_ADDR_STRLEN, "none");
    }
    return buf;
}

socklen_t punch_addr_to_sockaddr(const punch_addr *a, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (a->family == PUNCH_AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(a->port);
        memcpy(&sin->sin_addr, a->ip, 4);
        return sizeof(*sin);
    }
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(a->port);
    memcpy(&sin6->sin6_addr, a->ip, 16);
    return sizeof(*sin6);
}

void punch_addr_from_sockaddr(const struct sockaddr *sa, punch_addr *out)
{
    memset(out, 0, sizeof(*out));
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
        out->family = PUNCH_AF_INET;
        out->port = ntohs(sin->sin_port);
        memcpy(out->ip, &sin->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
        out->family = PUNCH_AF_INET6;
        out->port = ntohs(sin6->sin6_port);
        memcpy(out->ip, &sin6->sin6_addr, 16);
    }
}

int punch_socket_for(const punch_addr *a, int type)
{
    int v6 = a->family == PUNCH_AF_INET6, one = 1;
    int fd = socket(v6 ? AF_INET6 : AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return PUNCH_ERR_IO;
    if (v6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return PUNCH_ERR_IO;
    }
    return fd;
}

int punch_udp_bind(const punch_addr *a, punch_addr *bound)
{
    struct sockaddr_storage ss;
    socklen_t sl = punch_addr_to_sockaddr(a, &ss);
    int v6 = a->family == PUNCH_AF_INET6, one = 1;
    int fd = punch_socket_for(a, SOCK_DGRAM);
    if (fd < 0)
        return PUNCH_ERR_IO;
    if (punch_addr_is_any(a) &&
        (v6 ? setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one))
            : setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one))) != 0)
        goto fail;
    /* A burst must not overflow the default ~200 KiB buffers (three GSO
     * sends fill the send buffer; a full one drops what follows): ask for
     * 4 MiB each, beyond net.core.[rw]mem_max when allowed (CAP_NET_ADMIN). */
    int bufsize = 4 << 20;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bufsize, sizeof(bufsize)) != 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufsize, sizeof(bufsize));
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bufsize, sizeof(bufsize)) != 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bufsize, sizeof(bufsize));
    /* Runs of datagrams may arrive joined (see punch_udp_recv); a kernel
     * without UDP_GRO gives them one by one, which is fine too. */
    setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, sl) != 0)
        goto fail;
    sl = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
        goto fail;
    punch_addr_from_sockaddr((struct sockaddr *)&ss, bound);
    return fd;
fail:;
    int saved = errno;
    close(fd);
    errno = saved;
    return PUNCH_ERR_IO;
}

/* Room for an IP(V6)_PKTINFO and one int-sized control message (IP_TTL /
 * IPV6_HOPLIMIT when sending, UDP_GRO when receiving), and one spare. */
#define CTRL_LEN (CMSG_SPACE(sizeof(struct in6_pktinfo)) + 2 * CMSG_SPACE(sizeof(int)))

/* UDP GRO (UDP_GRO, Linux 5.0), the receiving half of GSO below: the kernel
 * may hand over a run of one sender's datagrams, all of one size but the
 * last, as one message of up to 64 KiB, and says the size. Each message slot
 * has room for that; a datagram is a segment of one. */
#define RX_SLOT 65536
#define GRO_MAX_SEGMENTS 128 /* the kernel's UDP_MAX_SEGMENTS, as high as it goes */

typedef struct {
    uint32_t offset; /* in rx_data */
    uint16_t len;
    uint16_t msg; /* which received message: its source and destination */
} rx_segment;

struct punch_udp_batch {
    struct mmsghdr msgs[PUNCH_UDP_BATCH];
    struct iovec iov[PUNCH_UDP_BATCH];
    struct sockaddr_storage peers[PUNCH_UDP_BATCH];
    punch_addr dst[PUNCH_UDP_BATCH];
    _Alignas(struct cmsghdr) uint8_t ctrl[PUNCH_UDP_BATCH][CTRL_LEN];
    uint8_t data[PUNCH_UDP_BATCH][PUNCH_UDP_MTU]; /* datagrams to send */
    uint8_t *rx_data;  /* PUNCH_UDP_BATCH slots of RX_SLOT bytes */
    rx_segment seg[PUNCH_UDP_BATCH * GRO_MAX_SEGMENTS];
    unsigned n;        /* datagrams received, or queued for sending */
    /* Sending: runs of queued datagrams merged into one message each (UDP
     * GSO), what sendmmsg gets; run k starts at datagram first[k]. */
    struct mmsghdr out[PUNCH_UDP_BATCH];
    unsigned first[PUNCH_UDP_BATCH + 1];
    _Alignas(struct cmsghdr) uint8_t gso_ctrl[PUNCH_UDP_BATCH][CMSG_SPACE(sizeof(uint16_t))];
    bool no_gso;       /* the kernel refused UDP_SEGMENT: one datagram per message */
};

punch_udp_batch *punch_udp_batch_new(void)
{
    punch_udp_batch *b = calloc(1, sizeof(*b));
    /* 4 MiB of address space; only what datagrams are written to is paged in. */
    if (b && !(b->rx_data = calloc(PUNCH_UDP_BATCH, RX_SLOT))) {
        free(b);
        return NULL;
    }
    return b;
}

void punch_udp_batch_free(punch_udp_batch *b)
{
    if (b)
        free(b->rx_data);
    free(b);
}

static void prepare_slot(punch_udp_batch *b, unsigned i, uint8_t *data, size_t len)
{
    b->iov[i].iov_base = data;
    b->iov[i].iov_len = len;
    b->msgs[i].msg_hdr = (struct msghdr){
        .msg_name = &b->peers[i],
        .msg_namelen = sizeof(b->peers[i]),
        .msg_iov = &b->iov[i],
        .msg_iovlen = 1,
        .msg_control = b->ctrl[i],
        .msg_controllen = CTRL_LEN,
    };
    b->msgs[i].msg_len = 0;
}

/* From a received message's control messages: its destination address
 * (IP(V6)_PKTINFO) and, when GRO joined several datagrams, their size. */
static void read_cmsgs(struct msghdr *h, punch_addr *dst, size_t *gro_size)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c)) {
        if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
            int size;
            memcpy(&size, CMSG_DATA(c), sizeof(size));
            *gro_size = size > 0 ? (size_t)size : 0;
        } else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
            struct in_pktinfo pi;
            memcpy(&pi, CMSG_DATA(c), sizeof(pi));
            memcpy(dst->ip, &pi.ipi_addr, 4);
        } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
            struct in6_pktinfo pi;
            memcpy(&pi, CMSG_DATA(c), sizeof(pi));
            memcpy(dst->ip, &pi.ipi6_addr, 16);
        }
    }
}

/* Message i of a receive as segments (datagrams) of gro_size bytes, or one
 * when the kernel joined nothing. */
static void split_message(punch_udp_batch *b, unsigned i, size_t gro_size)
{
    size_t len = b->msgs[i].msg_len < RX_SLOT ? b->msgs[i].msg_len : RX_SLOT;
    size_t size = gro_size ? gro_size : len;
    size_t off = 0;
    do {
        size_t seg = len - off < size ? len - off : size;
        b->seg[b->n++] = (rx_segment){.offset = (uint32_t)(i * RX_SLOT + off),
                                      .len = (uint16_t)(seg < PUNCH_UDP_MTU ? seg : PUNCH_UDP_MTU),
                                      .msg = (uint16_t)i};
        off += seg;
    } while (off < len && b->n < PUNCH_UDP_BATCH * GRO_MAX_SEGMENTS);
}

int punch_udp_recv(int fd, punch_udp_batch *b, const punch_addr *local)
{
    for (unsigned i = 0; i < PUNCH_UDP_BATCH; i++)
        prepare_slot(b, i, b->rx_data + (size_t)i * RX_SLOT, RX_SLOT);
    b->n = 0;
    int n = recvmmsg(fd, b->msgs, PUNCH_UDP_BATCH, MSG_DONTWAIT, NULL);
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : PUNCH_ERR_IO;
    for (int i = 0; i < n; i++) {
        size_t gro_size = 0;
        b->dst[i] = *local;
        read_cmsgs(&b->msgs[i].msg_hdr, &b->dst[i], &gro_size);
        split_message(b, (unsigned)i, gro_size);
    }
    return (int)b->n;
}

void punch_udp_received(const punch_udp_batch *b, unsigned i, const uint8_t **data,
                        size_t *len, punch_addr *src, punch_addr *dst)
{
    const rx_segment *s = &b->seg[i];
    *data = b->rx_data + s->offset;
    /* A datagram longer than PUNCH_UDP_MTU is given cut: its length is what
     * was kept, and the parser will find it malformed. */
    *len = s->len;
    punch_addr_from_sockaddr((const struct sockaddr *)&b->peers[s->msg], src);
    *dst = b->dst[s->msg];
}

/* A control message at `at` (aligned, room for CMSG_SPACE(len)); returns
 * the room it takes. */
static size_t put_cmsg(uint8_t *at, int level, int type, const void *data, size_t len)
{
    struct cmsghdr c = {.cmsg_level = level, .cmsg_type = type, .cmsg_len = CMSG_LEN(len)};
    memcpy(at, &c, sizeof(c));
    memcpy(at + CMSG_LEN(0), data, len);
    return CMSG_SPACE(len);
}

uint8_t *punch_udp_queue(punch_udp_batch *b, const punch_addr *dst, const punch_addr *src,
                         uint8_t ttl)
{
    if (b->n == PUNCH_UDP_BATCH)
        return NULL;
    unsigned i = b->n++;
    prepare_slot(b, i, b->data[i], 0);
    struct msghdr *h = &b->msgs[i].msg_hdr;
    h->msg_namelen = punch_addr_to_sockaddr(dst, &b->peers[i]);
    uint8_t *ctrl = b->ctrl[i];
    size_t used = 0;
    if (src || ttl) /* most datagrams have no control message to clear room for */
        memset(ctrl, 0, CTRL_LEN);
    /* Send from src's IP on a wildcard socket (IP_PKTINFO / IPV6_PKTINFO). */
    if (src && !punch_addr_is_any(src) && src->family == dst->family) {
        if (src->family == PUNCH_AF_INET) {
            struct in_pktinfo pi = {0};
            memcpy(&pi.ipi_spec_dst, src->ip, 4);
            used += put_cmsg(ctrl + used, IPPROTO_IP, IP_PKTINFO, &pi, sizeof(pi));
        } else {
            struct in6_pktinfo pi = {0};
            memcpy(&pi.ipi6_addr, src->ip, 16);
            used += put_cmsg(ctrl + used, IPPROTO_IPV6, IPV6_PKTINFO, &pi, sizeof(pi));
        }
    }
    /* This datagram's TTL / hop limit. */
    if (ttl) {
        int v = ttl;
        used += dst->family == PUNCH_AF_INET
                    ? put_cmsg(ctrl + used, IPPROTO_IP, IP_TTL, &v, sizeof(v))
                    : put_cmsg(ctrl + used, IPPROTO_IPV6, IPV6_HOPLIMIT, &v, sizeof(v));
    }
    h->msg_control = used ? ctrl : NULL;
    h->msg_controllen = used;
    return b->data[i];
}

bool punch_udp_queue_ref(punch_udp_batch *b, const punch_addr *dst, const punch_addr *src,
                         uint8_t ttl, const uint8_t *data, size_t len)
{
    if (!punch_udp_queue(b, dst, src, ttl))
        return false;
    /* The kernel only reads it: a const buffer is fine for sendmmsg. */
    b->iov[b->n - 1].iov_base = (void *)(uintptr_t)data;
    punch_udp_queue_len(b, len);
    return true;
}

void punch_udp_queue_len(punch_udp_batch *b, size_t len)
{
    if (b->n)
        b->iov[b->n - 1].iov_len = len < PUNCH_UDP_MTU ? len : PUNCH_UDP_MTU;
}

unsigned punch_udp_queued(const punch_udp_batch *b)
{
    return b->n;
}

/* UDP GSO (UDP_SEGMENT, Linux 4.18): a run of datagrams to one destination,
 * all of one size but the last (which may be shorter), goes down the stack
 * as one buffer and is cut into datagrams as late as possible (by the NIC,
 * or where a route needs it). The wire sees the same datagrams; the sender
 * saves the per-datagram cost of the IP stack, and so do routers and veths
 * on the way inside one host. The kernel takes at most 64 segments and one
 * UDP payload's worth (64 KiB) per send. */
#define GSO_MAX_SEGMENTS 64
#define GSO_MAX_BYTES 65000

static bool same_dst(const struct msghdr *a, const struct msghdr *b)
{
    return a->msg_namelen == b->msg_namelen && memcmp(a->msg_name, b->msg_name, a->msg_namelen) == 0;
}

/* Merge b's queued datagrams into b->out; returns how many messages. */
static unsigned merge_runs(punch_udp_batch *b)
{
    unsigned k = 0;
    for (unsigned i = 0; i < b->n;) {
        struct msghdr *h = &b->msgs[i].msg_hdr;
        size_t seg = b->iov[i].iov_len, total = seg;
        unsigned j = i + 1;
        /* Datagrams with control messages (source address, TTL) go alone. */
        if (!b->no_gso && h->msg_controllen == 0 && seg > 0)
            while (j < b->n && j - i < GSO_MAX_SEGMENTS && b->msgs[j].msg_hdr.msg_controllen == 0 &&
                   b->iov[j].iov_len > 0 && b->iov[j].iov_len <= seg &&
                   total + b->iov[j].iov_len <= GSO_MAX_BYTES && same_dst(h, &b->msgs[j].msg_hdr)) {
                total += b->iov[j].iov_len;
                if (b->iov[j++].iov_len < seg)
                    break; /* a shorter one ends the run */
            }
        b->first[k] = i;
        b->out[k].msg_len = 0;
        b->out[k].msg_hdr = *h;
        if (j - i > 1) {
            b->out[k].msg_hdr.msg_iov = &b->iov[i];
            b->out[k].msg_hdr.msg_iovlen = j - i;
            uint16_t gso = (uint16_t)seg;
            b->out[k].msg_hdr.msg_control = b->gso_ctrl[k];
            b->out[k].msg_hdr.msg_controllen = put_cmsg(b->gso_ctrl[k], SOL_UDP, UDP_SEGMENT, &gso,
                                                        sizeof(gso));
        }
        k++;
        i = j;
    }
    b->first[k] = b->n;
    return k;
}

/* One datagram per message for run k, after the kernel refused it merged.
 * Returns how many were not taken. */
static unsigned send_one_by_one(int fd, punch_udp_batch *b, unsigned k)
{
    unsigned dropped = 0;
    for (unsigned i = b->first[k]; i < b->first[k + 1]; i++) {
        ssize_t n;
        do
            n = sendmsg(fd, &b->msgs[i].msg_hdr, MSG_DONTWAIT);
        while (n < 0 && errno == EINTR);
        dropped += n < 0;
    }
    return dropped;
}

unsigned punch_udp_send(int fd, punch_udp_batch *b)
{
    unsigned n_out = merge_runs(b), done = 0, dropped = 0;
    while (done < n_out) {
        int n = sendmmsg(fd, b->out + done, n_out - done, MSG_DONTWAIT);
        if (n > 0) {
            done += (unsigned)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        unsigned count = b->first[done + 1] - b->first[done];
        if (count > 1 && errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS) {
            /* Merged and refused (no GSO on this kernel or route, or a
             * datagram over the route's MTU): each on its own. */
            if (errno == ENOPROTOOPT || errno == EOPNOTSUPP || errno == EIO)
                b->no_gso = true;
            dropped += send_one_by_one(fd, b, done);
        } else {
            /* Full buffer or a per-datagram error (e.g. unreachable): skip it. */
            dropped += count;
        }
        done++;
    }
    b->n = 0;
    return dropped;
}
