/* The I/O driver: see driver.h. */
#include "io/driver.h"

#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/net.h"

struct punch_driver {
    punch_loop *loop;
    punch_agent *agent;
    int fd;
    punch_addr local;
    punch_udp_batch *rx, *tx;
    punch_driver_event_fn on_event;
    void *arg;
};

static void kernel_random(void *ctx, uint8_t *buf, size_t len)
{
    (void)ctx;
    if (punch_random_bytes(buf, len) != 0)
        abort(); /* no randomness, no keys: nothing safe left to do */
}

size_t punch_local_addresses(uint8_t family, uint16_t port, punch_addr *out, size_t cap)
{
    struct ifaddrs *ifs = NULL;
    size_t n = 0;
    if (getifaddrs(&ifs) != 0)
        return 0;
    for (struct ifaddrs *i = ifs; i && n < cap; i = i->ifa_next) {
        if (!i->ifa_addr || !(i->ifa_flags & IFF_UP) || (i->ifa_flags & IFF_LOOPBACK))
            continue;
        punch_addr a;
        punch_addr_from_sockaddr(i->ifa_addr, &a);
        /* IPv6 link-local addresses need a scope: not usable as candidates. */
        if (a.family != family || (family == PUNCH_AF_INET6 && a.ip[0] == 0xfe &&
                                   (a.ip[1] & 0xc0) == 0x80))
            continue;
        a.port = port;
        bool seen = false;
        for (size_t k = 0; k < n; k++)
            seen = seen || punch_addr_equal(&out[k], &a);
        if (!seen)
            out[n++] = a;
    }
    freeifaddrs(ifs);
    return n;
}

static void drain(punch_driver *d)
{
    punch_event ev;
    while (punch_agent_poll_event(d->agent, &ev) == 1)
        if (d->on_event)
            d->on_event(d->arg, d, &ev);
}

static void on_timer(void *arg, uint64_t now_ms);

void punch_driver_flush(punch_driver *d)
{
    uint8_t buf[PUNCH_UDP_MTU], ttl;
    punch_addr dst;
    size_t len;
    while (punch_agent_poll_transmit(d->agent, &dst, &ttl, buf, sizeof(buf), &len) == 1) {
        uint8_t *slot = punch_udp_queue(d->tx, &dst, NULL, ttl);
        if (!slot) {
            punch_udp_send(d->fd, d->tx);
            slot = punch_udp_queue(d->tx, &dst, NULL, ttl);
        }
        memcpy(slot, buf, len);
        punch_udp_queue_len(d->tx, len);
    }
    if (punch_udp_queued(d->tx))
        punch_udp_send(d->fd, d->tx);
    punch_loop_set_timeout(d->loop, punch_agent_next_timeout(d->agent), on_timer, d);
}

static void on_timer(void *arg, uint64_t now_ms)
{
    punch_driver *d = arg;
    punch_agent_handle_timeout(d->agent, now_ms);
    drain(d);
    punch_driver_flush(d);
}

static void on_readable(void *arg, int fd)
{
    punch_driver *d = arg;
    int n;
    while ((n = punch_udp_recv(fd, d->rx, &d->local)) > 0) {
        uint64_t now = punch_clock_ms();
        for (unsigned i = 0; i < (unsigned)n; i++) {
            const uint8_t *data;
            size_t len;
            punch_addr src, dst;
            punch_udp_received(d->rx, i, &data, &len, &src, &dst);
            punch_agent_handle_datagram(d->agent, now, &src, data, len);
        }
        drain(d);
        punch_driver_flush(d);
        if (n < PUNCH_UDP_BATCH)
            break;
    }
}

int punch_driver_new(punch_driver **out, punch_loop *loop, const punch_driver_cfg *cfg)
{
    punch_driver *d = calloc(1, sizeof(*d));
    if (!d)
        return PUNCH_ERR_NOMEM;
    d->loop = loop;
    d->fd = -1;
    d->on_event = cfg->on_event;
    d->arg = cfg->arg;
    punch_agent_cfg ac = cfg->agent;
    punch_addr bind = cfg->bind;
    if (bind.family == PUNCH_AF_NONE)
        bind.family = ac.server.family;
    int rc = PUNCH_ERR_NOMEM;
    if (!(d->rx = punch_udp_batch_new()) || !(d->tx = punch_udp_batch_new()))
        goto fail;
    if ((d->fd = punch_udp_bind(&bind, &d->local)) < 0) {
        rc = PUNCH_ERR_IO;
        goto fail;
    }
    if (ac.n_local == 0)
        ac.n_local = punch_local_addresses(d->local.family, d->local.port, ac.local,
                                           PUNCH_MAX_LOCAL);
    if (!ac.random)
        ac.random = kernel_random;
    if ((rc = punch_agent_new(&d->agent, &ac, punch_clock_ms())) != 0)
        goto fail;
    memset(&ac.secret_key, 0, sizeof(ac.secret_key));
    if (punch_loop_watch(loop, d->fd, on_readable, d) != 0) {
        rc = PUNCH_ERR_IO;
        goto fail;
    }
    *out = d;
    punch_driver_flush(d);
    return 0;
fail:
    memset(&ac.secret_key, 0, sizeof(ac.secret_key));
    punch_driver_free(d);
    return rc;
}

void punch_driver_free(punch_driver *d)
{
    if (!d)
        return;
    if (d->fd >= 0)
        close(d->fd);
    punch_agent_free(d->agent);
    punch_udp_batch_free(d->rx);
    punch_udp_batch_free(d->tx);
    free(d);
}

punch_agent *punch_driver_agent(punch_driver *d)
{
    return d->agent;
}

const punch_addr *punch_driver_local(const punch_driver *d)
{
    return &d->local;
}
