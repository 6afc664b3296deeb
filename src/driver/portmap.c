/* SPDX-License-Identifier: MIT */
/* Port mapping, the I/O half: see portmap.h. */
#include "driver/portmap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#define ENABLE_STRNATPMPERR 1 /* declares strnatpmperr, which Debian builds in */
#include <natpmp.h>
#include <miniupnpc/miniupnpc.h>
#include <miniupnpc/upnpcommands.h>
#include <miniupnpc/upnperrors.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "io/net.h"
#include "wire/pcp.h"

/* PCP: 250 ms, doubling, 3 tries (1.75 s). RFC 6887 §8.1.1 starts at 3 s;
 * a gateway on the LAN answers in milliseconds, and a connect waits for
 * this, so a gateway without PCP must not cost seconds. */
#define PCP_RTO_MS 250
#define PCP_TRIES 3
/* NAT-PMP: libnatpmp retransmits from 250 ms, doubling (RFC 6886 §3.1),
 * for up to a minute; we stop after this. */
#define NATPMP_GIVE_UP_MS 1750
/* UPnP: SSDP discovery waits this long for the gateway's answer to each
 * search, and as long again for more after the first (miniupnpc's way; it
 * waits whole seconds, as M-SEARCH's MX counts them). */
#define UPNP_DISCOVER_MS 1000
/* At exit (punch_portmap_io_free): how long a request under way may take
 * to notice it should stop, and how long the mapping's removal may take.
 * A gateway on the LAN answers in milliseconds; punch exits within 100 ms
 * whatever the gateway does (issue 10). */
#define EXIT_WAIT_MS 30
#define EXIT_RELEASE_MS 60
/* Waits are cut in slices this long to notice a stop. */
#define SLICE_MS 10

/* How long a request may take: until deadline_ms, and no longer once *stop
 * is set (NULL: never). */
typedef struct budget {
    uint64_t deadline_ms;
    const atomic_bool *stop;
} budget;

static const budget NO_LIMIT = {UINT64_MAX, NULL};

/* ---- the gateway ---- */

/* The default route's gateway, from /proc/net/route (IPv4). */
static bool default_gateway(punch_addr *gw)
{
    FILE *f = fopen("/proc/net/route", "r");
    char line[256], ifname[64];
    unsigned dest, gateway, flags;
    bool found = false;
    memset(gw, 0, sizeof(*gw));
    if (!f)
        return false;
    while (!found && fgets(line, sizeof(line), f))
        if (sscanf(line, "%63s %x %x %x", ifname, &dest, &gateway, &flags) == 4 && dest == 0 &&
            gateway != 0 && (flags & 0x2 /* RTF_GATEWAY */)) {
            gw->family = PUNCH_AF_INET;
            memcpy(gw->ip, &gateway, 4); /* the file holds it in network order */
            found = true;
        }
    fclose(f);
    return found;
}

static uint64_t elapsed_since(uint64_t t0)
{
    return punch_clock_ms() - t0;
}

/* How long to wait now for something due at `until` (clock ms): no more
 * than a slice, and 0 once it is due, the budget spent or a stop asked
 * for. */
static int slice(const budget *b, uint64_t until)
{
    uint64_t now = punch_clock_ms(), end = until < b->deadline_ms ? until : b->deadline_ms;
    if ((b->stop && atomic_load(b->stop)) || now >= end)
        return 0;
    return end - now < SLICE_MS ? (int)(end - now) : SLICE_MS;
}

/* A "why" safe inside a JSON string: no quotes or backslashes. */
__attribute__((format(printf, 2, 3))) static void set_why(punch_portmap_result *res,
                                                          const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->why, sizeof(res->why), fmt, ap);
    va_end(ap);
    for (char *c = res->why; *c; c++)
        if (*c == '"' || *c == '\\' || (unsigned char)*c < 0x20)
            *c = '\'';
}

/* ---- PCP (RFC 6887) ---- */

/* A UDP socket connected to the gateway's PCP port, and our address on it. */
static int pcp_socket(const punch_addr *gw, punch_addr *client)
{
    punch_addr to = *gw;
    to.port = PUNCH_PCP_PORT;
    struct sockaddr_storage ss;
    socklen_t sl = punch_addr_to_sockaddr(&to, &ss);
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&ss, sl) != 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &(socklen_t){sizeof(ss)}) != 0) {
        close(fd);
        return -1;
    }
    punch_addr_from_sockaddr((struct sockaddr *)&ss, client);
    return fd;
}

/* Send req[0..len) until an answer of the opcode comes (nonce checked for
 * MAP). Returns 0 with *out, or -1 with res->why. */
static int pcp_exchange(int fd, const uint8_t *req, size_t len, const uint8_t *nonce,
                        punch_pcp_response *out, punch_portmap_result *res, const budget *b)
{
    uint8_t buf[PUNCH_PCP_MAX_LEN];
    for (int tries = 0, rto = PCP_RTO_MS; tries < PCP_TRIES && slice(b, UINT64_MAX);
         tries++, rto *= 2) {
        if (send(fd, req, len, 0) < 0 && errno != ECONNREFUSED)
            break;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        uint64_t until = punch_clock_ms() + (uint64_t)rto;
        for (int ms; (ms = slice(b, until)) > 0;) {
            if (poll(&p, 1, ms) != 1)
                continue;
            ssize_t n = recv(fd, buf, sizeof(buf), 0);
            if (n < 0 && errno == ECONNREFUSED) {
                set_why(res, "unreachable"); /* ICMP: nothing listens on 5351 */
                return -1;
            }
            if (n >= 4 && buf[0] == 0) {
                set_why(res, "NAT-PMP only");
                return -1;
            }
            if (n > 0 && punch_pcp_decode_response(buf, (size_t)n, out) == 0 &&
                out->opcode == req[1] &&
                (!nonce || memcmp(out->map.nonce, nonce, PUNCH_PCP_NONCE_LEN) == 0))
                return 0;
        }
    }
    set_why(res, "no answer");
    return -1;
}

static void pcp_map(const punch_addr *gw, const punch_portmap_request *req, uint16_t port,
                    punch_portmap_result *res, const budget *b)
{
    punch_addr client;
    int fd = pcp_socket(gw, &client);
    if (fd < 0) {
        set_why(res, "cannot reach the gateway: %s", strerror(errno));
        return;
    }
    punch_pcp_map map = {.protocol = PUNCH_PCP_PROTO_UDP, .internal_port = port};
    memcpy(map.nonce, req->nonce, sizeof(map.nonce));
    /* No address wanted (::ffff:0.0.0.0, §11.1); the port we hold, or ours. */
    map.external.family = PUNCH_AF_INET;
    map.external.port = req->external.port ? req->external.port : port;
    uint8_t buf[PUNCH_PCP_MAX_LEN];
    size_t len;
    punch_pcp_response r;
    if (punch_pcp_encode_map(&client, req->remove ? 0 : req->lifetime_s, &map, buf, sizeof(buf),
                             &len) == 0 &&
        pcp_exchange(fd, buf, len, map.nonce, &r, res, b) == 0) {
        if (r.result != PUNCH_PCP_SUCCESS) {
            set_why(res, "refused: %s", punch_pcp_result_name(r.result));
        } else {
            res->ok = true;
            res->external = r.map.external;
            res->lifetime_s = r.lifetime_s;
        }
    }
    close(fd);
}

static bool pcp_offered(const punch_addr *gw)
{
    punch_addr client;
    punch_portmap_result ignored;
    int fd = pcp_socket(gw, &client);
    uint8_t buf[PUNCH_PCP_HEADER_LEN];
    size_t len;
    punch_pcp_response r;
    bool ok = fd >= 0 && punch_pcp_encode_announce(&client, buf, sizeof(buf), &len) == 0 &&
              pcp_exchange(fd, buf, len, NULL, &r, &ignored, &NO_LIMIT) == 0 &&
              r.result == PUNCH_PCP_SUCCESS;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* ---- NAT-PMP (RFC 6886, libnatpmp) ---- */

/* Wait for the answer to what was sent, retransmitting as libnatpmp says,
 * until NATPMP_GIVE_UP_MS. Returns 0 with *r, or -1 with res->why. */
static int natpmp_wait(natpmp_t *n, uint64_t t0, natpmpresp_t *r, punch_portmap_result *res,
                       const budget *b)
{
    int rc = NATPMP_TRYAGAIN;
    for (int ms; rc == NATPMP_TRYAGAIN && (ms = slice(b, t0 + NATPMP_GIVE_UP_MS)) > 0;) {
        struct timeval tv;
        getnatpmprequesttimeout(n, &tv);
        int retry = (int)(tv.tv_sec * 1000 + tv.tv_usec / 1000);
        struct pollfd p = {.fd = n->s, .events = POLLIN};
        poll(&p, 1, retry < 1 ? 1 : retry < ms ? retry : ms);
        rc = readnatpmpresponseorretry(n, r);
    }
    if (rc == 0 && r->resultcode == 0)
        return 0;
    if (rc == 0)
        set_why(res, "refused: result %u", r->resultcode);
    else if (rc == NATPMP_TRYAGAIN)
        set_why(res, "no answer");
    else if (rc == NATPMP_ERR_NOGATEWAYSUPPORT)
        set_why(res, "unreachable"); /* ICMP: nothing listens on 5351 */
    else
        set_why(res, "%s", strnatpmperr(rc));
    return -1;
}

/* The public address (opcode 0), then the mapping (opcode 1). */
static void natpmp_map(const punch_addr *gw, const punch_portmap_request *req, uint16_t port,
                       punch_portmap_result *res, const budget *b)
{
    natpmp_t n;
    natpmpresp_t r;
    in_addr_t g;
    memcpy(&g, gw->ip, 4);
    uint64_t t0 = punch_clock_ms();
    if (initnatpmp(&n, 1, g) < 0) {
        set_why(res, "cannot open a socket: %s", strerror(errno));
        return;
    }
    if (sendpublicaddressrequest(&n) >= 0 && natpmp_wait(&n, t0, &r, res, b) == 0) {
        punch_addr ext = {.family = PUNCH_AF_INET};
        memcpy(ext.ip, &r.pnu.publicaddress.addr, 4);
        /* RFC 6886 §3.4: a removal asks for external port 0. */
        uint16_t want = req->remove ? 0 : req->external.port ? req->external.port : port;
        if (sendnewportmappingrequest(&n, NATPMP_PROTOCOL_UDP, port, want,
                                      req->remove ? 0 : req->lifetime_s) >= 0 &&
            natpmp_wait(&n, punch_clock_ms(), &r, res, b) == 0) {
            ext.port = r.pnu.newportmapping.mappedpublicport;
            res->ok = true;
            res->external = ext;
            res->lifetime_s = r.pnu.newportmapping.lifetime;
        }
    }
    closenatpmp(&n);
}

/* ---- UPnP IGD (libminiupnpc) ---- */

typedef struct igd {
    struct UPNPUrls urls;
    struct IGDdatas data;
    char lan[64];      /* our address towards the gateway */
    char ext[64];      /* its external address */
} igd;

/* Find a connected IGD and its external address. Returns 0, or -1 with why. */
static int igd_find(igd *g, punch_portmap_result *res)
{
    /* Only Internet gateways (IGD v1, then v2), not every device type
     * miniupnpc knows: a network without one costs 2 s, not 4. */
    static const char *const igd_types[] = {
        "urn:schemas-upnp-org:device:InternetGatewayDevice:1",
        "urn:schemas-upnp-org:device:InternetGatewayDevice:2", NULL};
    int err = 0;
    struct UPNPDev *devs = upnpDiscoverDevices(igd_types, UPNP_DISCOVER_MS, NULL, NULL,
                                               UPNP_LOCAL_PORT_ANY, 0, 2, &err, 0);
    memset(g, 0, sizeof(*g));
    if (!devs) {
        set_why(res, "no answer");
        return -1;
    }
    int found = UPNP_GetValidIGD(devs, &g->urls, &g->data, g->lan, sizeof(g->lan));
    freeUPNPDevlist(devs);
    if (found != 1) {
        if (found)
            FreeUPNPUrls(&g->urls);
        set_why(res, "no connected IGD");
        return -1;
    }
    if (UPNP_GetExternalIPAddress(g->urls.controlURL, g->data.first.servicetype, g->ext) != 0) {
        FreeUPNPUrls(&g->urls);
        set_why(res, "no external address");
        return -1;
    }
    return 0;
}

/* With cache (NULL: none), the gateway found before is asked again, and
 * one found now is kept there: a removal at exit cannot wait for SSDP. */
static void upnp_map(const punch_portmap_request *req, uint16_t port, punch_portmap_result *res,
                     igd *cache)
{
    igd g;
    if (cache && cache->urls.controlURL) {
        g = *cache;
    } else if (igd_find(&g, res) != 0) {
        return;
    }
    char in[8], ext[8], life[12];
    uint16_t want = req->external.port ? req->external.port : port;
    snprintf(in, sizeof(in), "%u", port);
    snprintf(ext, sizeof(ext), "%u", want);
    snprintf(life, sizeof(life), "%u", req->lifetime_s);
    const char *ctl = g.urls.controlURL, *st = g.data.first.servicetype;
    int rc = req->remove ? UPNP_DeletePortMapping(ctl, st, ext, "UDP", NULL)
                         : UPNP_AddPortMapping(ctl, st, ext, in, g.lan, "punch", "UDP", NULL,
                                               life);
    if (rc != 0) {
        set_why(res, "refused: %d %s", rc, strupnperror(rc));
    } else if (punch_addr_parse(g.ext, want, &res->external) != 0) {
        set_why(res, "bad external address");
    } else {
        res->ok = true;
        res->lifetime_s = req->lifetime_s;
    }
    if (cache)
        *cache = g;
    else
        FreeUPNPUrls(&g.urls);
}

/* ---- one request ---- */

bool punch_portmap_pointless(const punch_addr *server)
{
    static const uint8_t v6_loopback[16] = {[15] = 1};
    return (server->family == PUNCH_AF_INET && server->ip[0] == 127) ||
           (server->family == PUNCH_AF_INET6 && memcmp(server->ip, v6_loopback, 16) == 0);
}

static void run_request(const punch_portmap_request *req, uint16_t port,
                        punch_portmap_result *res, const budget *b, igd *cache)
{
    punch_addr gw;
    memset(res, 0, sizeof(*res));
    res->proto = req->proto;
    if (req->proto != PUNCH_PORTMAP_UPNP && !default_gateway(&gw)) {
        set_why(res, "no default gateway");
        return;
    }
    switch (req->proto) {
    case PUNCH_PORTMAP_PCP: pcp_map(&gw, req, port, res, b); break;
    case PUNCH_PORTMAP_NATPMP: natpmp_map(&gw, req, port, res, b); break;
    case PUNCH_PORTMAP_UPNP: upnp_map(req, port, res, cache); break;
    default: set_why(res, "no such protocol"); break;
    }
}

void punch_portmap_run(const punch_portmap_request *req, uint16_t port,
                       punch_portmap_result *res)
{
    run_request(req, port, res, &NO_LIMIT, NULL);
}

void punch_portmap_probe(punch_portmap_offer *out)
{
    memset(out, 0, sizeof(*out));
    if (!default_gateway(&out->gateway))
        return;
    uint64_t t0 = punch_clock_ms();
    out->pcp = pcp_offered(&out->gateway);
    out->pcp_ms = (uint32_t)elapsed_since(t0);
    t0 = punch_clock_ms();
    natpmp_t n;
    natpmpresp_t r;
    punch_portmap_result why;
    in_addr_t g;
    memcpy(&g, out->gateway.ip, 4);
    if (initnatpmp(&n, 1, g) >= 0) {
        out->natpmp =
            sendpublicaddressrequest(&n) >= 0 && natpmp_wait(&n, t0, &r, &why, &NO_LIMIT) == 0;
        if (out->natpmp) {
            out->external.family = PUNCH_AF_INET;
            memcpy(out->external.ip, &r.pnu.publicaddress.addr, 4);
        }
        closenatpmp(&n);
    }
    out->natpmp_ms = (uint32_t)elapsed_since(t0);
    t0 = punch_clock_ms();
    igd ig;
    if ((out->upnp = igd_find(&ig, &why) == 0)) {
        if (out->external.family == PUNCH_AF_NONE)
            punch_addr_parse(ig.ext, 0, &out->external);
        FreeUPNPUrls(&ig.urls);
    }
    out->upnp_ms = (uint32_t)elapsed_since(t0);
}

/* ---- the thread and the loop ---- */

struct punch_portmap_io {
    punch_loop *loop;
    punch_agent *agent;
    uint16_t port;
    void (*flush)(void *arg);
    void *arg;
    int pipe[2];
    bool busy;
    pthread_t thread;
    punch_portmap_request req;
    punch_portmap_result res;
    igd upnp;             /* the UPnP gateway found (urls.controlURL NULL: none) */
    atomic_bool stop;     /* exiting: a request under way gives up */
    pthread_mutex_t lock; /* done and orphaned */
    bool done;            /* the worker has its answer */
    bool orphaned;        /* the program left it running: it frees io */
};

static void io_destroy(punch_portmap_io *io)
{
    if (io->pipe[0] >= 0)
        close(io->pipe[0]);
    if (io->pipe[1] >= 0)
        close(io->pipe[1]);
    if (io->upnp.urls.controlURL)
        FreeUPNPUrls(&io->upnp.urls);
    pthread_mutex_destroy(&io->lock);
    free(io);
}

static void *worker(void *arg)
{
    punch_portmap_io *io = arg;
    run_request(&io->req, io->port, &io->res, &(budget){UINT64_MAX, &io->stop}, &io->upnp);
    pthread_mutex_lock(&io->lock);
    bool orphaned = io->orphaned;
    io->done = true;
    pthread_mutex_unlock(&io->lock);
    if (orphaned) {
        io_destroy(io);
        return NULL;
    }
    ssize_t w;
    do
        w = write(io->pipe[1], "", 1);
    while (w < 0 && errno == EINTR);
    return NULL;
}

static void on_answer(void *arg, int fd)
{
    punch_portmap_io *io = arg;
    char b;
    if (read(fd, &b, 1) != 1 || !io->busy)
        return;
    pthread_join(io->thread, NULL);
    io->busy = false;
    io->done = false;
    punch_agent_portmap_result(io->agent, punch_clock_ms(), &io->res);
    io->flush(io->arg);
}

void punch_portmap_io_kick(punch_portmap_io *io)
{
    if (!io || io->busy || punch_agent_poll_portmap(io->agent, punch_clock_ms(), &io->req) != 1)
        return;
    if (pthread_create(&io->thread, NULL, worker, io) != 0) {
        memset(&io->res, 0, sizeof(io->res));
        io->res.proto = io->req.proto;
        set_why(&io->res, "cannot start a thread: %s", strerror(errno));
        punch_agent_portmap_result(io->agent, punch_clock_ms(), &io->res);
        return;
    }
    io->busy = true;
}

int punch_portmap_io_new(punch_portmap_io **out, punch_loop *loop, punch_agent *agent,
                         uint16_t port, void (*flush)(void *arg), void *arg)
{
    punch_portmap_io *io = calloc(1, sizeof(*io));
    if (!io)
        return PUNCH_ERR_NOMEM;
    *io = (punch_portmap_io){.loop = loop, .agent = agent, .port = port, .flush = flush,
                             .arg = arg, .pipe = {-1, -1}};
    atomic_init(&io->stop, false);
    pthread_mutex_init(&io->lock, NULL);
    if (pipe2(io->pipe, O_CLOEXEC | O_NONBLOCK) != 0 ||
        punch_loop_watch(loop, io->pipe[0], on_answer, io) != 0) {
        punch_portmap_io_free(io);
        return PUNCH_ERR_IO;
    }
    *out = io;
    return 0;
}

/* At exit: tell the request under way to stop and wait for it a little.
 * Returns true when it ended (joined, its answer given to the agent);
 * false when it runs on (a UPnP exchange cannot be cut short): it is left
 * to free io itself. */
static bool finish_request(punch_portmap_io *io)
{
    atomic_store(&io->stop, true);
    struct pollfd p = {.fd = io->pipe[0], .events = POLLIN};
    uint64_t until = punch_clock_ms() + EXIT_WAIT_MS;
    for (int ms; (ms = slice(&NO_LIMIT, until)) > 0 && poll(&p, 1, ms) == 0;)
        ;
    pthread_mutex_lock(&io->lock);
    bool done = io->done;
    io->orphaned = !done;
    pthread_mutex_unlock(&io->lock);
    if (!done) {
        pthread_detach(io->thread);
        return false;
    }
    pthread_join(io->thread, NULL);
    punch_agent_portmap_result(io->agent, punch_clock_ms(), &io->res);
    return true;
}

void punch_portmap_io_free(punch_portmap_io *io)
{
    if (!io)
        return;
    if (io->pipe[0] >= 0)
        punch_loop_unwatch(io->loop, io->pipe[0]);
    if (io->busy && !finish_request(io))
        return; /* the worker frees io; a mapping it makes ends with its lifetime */
    /* The mapping held goes, if the gateway answers soon: a removal is one
     * datagram (PCP, NAT-PMP) or one request to the UPnP gateway found. */
    punch_portmap_request req;
    punch_portmap_result res;
    if (io->agent && punch_agent_portmap_release(io->agent, &req) == 1 &&
        (req.proto != PUNCH_PORTMAP_UPNP || io->upnp.urls.controlURL))
        run_request(&req, io->port, &res, &(budget){punch_clock_ms() + EXIT_RELEASE_MS, NULL},
                    &io->upnp);
    io_destroy(io);
}
