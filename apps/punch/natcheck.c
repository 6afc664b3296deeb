/* SPDX-License-Identifier: MIT */
/*
 * punch natcheck: what kind of NAT is between us and the server (RFC 5780
 * §4), in RFC 4787 words. Works against punchd started with --alt or any
 * RFC 5780 server, and for the mapping against punchd on one address (its
 * second port, as the agent's discovery does). The verdicts come from src/core/natcheck.c; this file
 * only sends Binding requests and waits for answers.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/natcheck.h"
#include "common/cli.h"
#include "io/loop.h"
#include "io/net.h"
#include "driver/portmap.h"
#include "punch/driver.h"
#include "punch_cli.h"
#include "wire/msg.h"
#include "wire/stun.h"

#define DEFAULT_PORT 3478
#define PORT_SAMPLES 5              /* fresh mappings for the allocation pattern */
#define FIRST_RTO_MS 100            /* retransmit after 100, 200, 400 ... ms */
#define DEFAULT_WAIT_MS 2000        /* per question, before "no answer" */
#define DEFAULT_MAX_LIFETIME_S 300  /* RFC 4787 REQ-5 asks for >= 120 s */

static const char natcheck_help[] =
    "usage: punch [--server HOST[:PORT]] natcheck [--json] [--lifetime]\n"
    "             [--max-wait SECONDS] [--wait MS] [--other-family HOST[:PORT]]\n"
    "\n"
    "Find out how the NAT between here and the server behaves (RFC 5780):\n"
    "  mapping          eim, adm or apdm (endpoint-independent, address-dependent,\n"
    "                   address-and-port-dependent)\n"
    "  filtering        eif, adf or apdf\n"
    "  hairpin          whether a packet to our own public address comes back\n"
    "  port allocation  preserve, sequential (with its step) or random\n"
    "  lifetime         with --lifetime: how long an idle UDP binding lives,\n"
    "                   checked up to --max-wait seconds (default 300)\n"
    "With a server that answers from a second IP and port (punchd --alt, or another\n"
    "RFC 5780 server) all of them; with punchd on one address, the mapping from\n"
    "its second port (punchd --second-port, PORT+1 by default): apdm, or eim (an\n"
    "adm NAT looks the same there), and filtering stays unknown.\n"
    "--wait is how long to wait for each answer (default 2000).\n"
    "--json prints one JSON object instead of the table.\n"
    "--other-family names the server's address of the other family (IPv6 beside an\n"
    "IPv4 --server, or the reverse): that family is checked too and reported beside\n"
    "(\"other_family\" in JSON; unreachable: \"reachable\":false).\n"
    "It also asks the default gateway what port mapping it offers (PCP, NAT-PMP,\n"
    "UPnP IGD), unless --portmap off or the server is on loopback.\n";

typedef struct answer {
    punch_addr mapped, other, origin;
} answer;

typedef struct check {
    punch_addr server;
    int wait_ms;
    int family;
    punch_addr any;         /* 0.0.0.0:0 or [::]:0 */
    const punch_nat64_prefix *nat64; /* an IPv4 server through our NAT64: its prefix; NULL not */
} check;

static int open_socket(const check *c, punch_addr *local)
{
    int fd = punch_udp_bind(&c->any, local);
    if (fd < 0)
        fprintf(stderr, "punch: natcheck: cannot open a UDP socket: %s\n", strerror(errno));
    return fd;
}

static void new_txid(uint8_t txid[PUNCH_STUN_TXID_LEN])
{
    if (punch_random_bytes(txid, PUNCH_STUN_TXID_LEN) != 0)
        memset(txid, 0x5a, PUNCH_STUN_TXID_LEN);
}

static size_t build_request(uint8_t *buf, size_t cap, const uint8_t *txid, uint32_t change,
                            uint16_t response_port)
{
    punch_stun_writer w;
    size_t len = 0;
    punch_stun_writer_init(&w, buf, cap, PUNCH_STUN_BINDING, PUNCH_STUN_REQUEST, txid);
    if (change)
        punch_stun_put_u32(&w, PUNCH_STUN_ATTR_CHANGE_REQUEST, change);
    if (response_port)
        punch_stun_put_u16(&w, PUNCH_STUN_ATTR_RESPONSE_PORT, response_port);
    punch_stun_put_fingerprint(&w);
    punch_stun_finish(&w, &len);
    return len;
}

static void read_answer(const punch_stun_msg *m, answer *a)
{
    const punch_stun_attr *x;
    memset(a, 0, sizeof(*a));
    if ((x = punch_stun_find(m, PUNCH_STUN_ATTR_XOR_MAPPED_ADDRESS)) ||
        (x = punch_stun_find(m, PUNCH_STUN_ATTR_MAPPED_ADDRESS)))
        punch_stun_read_addr(m, x, &a->mapped);
    if ((x = punch_stun_find(m, PUNCH_STUN_ATTR_OTHER_ADDRESS)))
        punch_stun_read_addr(m, x, &a->other);
    if ((x = punch_stun_find(m, PUNCH_STUN_ATTR_RESPONSE_ORIGIN)))
        punch_stun_read_addr(m, x, &a->origin);
}

/* What a datagram that came in is to the exchange waiting: not its
 * answer (TAKE_NOT_OURS), an error answer (-1, reported), or the answer (1). */
#define TAKE_NOT_OURS (-2)
typedef int (*take_fn)(const uint8_t *buf, size_t len, void *ctx);

/* Wait on listen_fd for the answer `take` accepts, sending req from
 * send_fd to dst at 0, 100, 300, 700 ... ms until wait_ms have passed.
 * Returns take's 1 or -1, or 0 when nothing came. */
static int exchange_with(const check *c, int send_fd, int listen_fd, const punch_addr *dst,
                         const uint8_t *req, size_t req_len, take_fn take, void *ctx)
{
    struct sockaddr_storage ss;
    socklen_t sl = punch_addr_to_sockaddr(dst, &ss);
    uint64_t start = punch_clock_ms(), next_send = start;
    int rto = FIRST_RTO_MS;
    for (;;) {
        uint64_t now = punch_clock_ms();
        if (now >= start + (uint64_t)c->wait_ms)
            return 0;
        if (now >= next_send) {
            sendto(send_fd, req, req_len, 0, (struct sockaddr *)&ss, sl);
            next_send = now + (uint64_t)rto;
            rto *= 2;
        }
        uint64_t until = next_send < start + (uint64_t)c->wait_ms ? next_send
                                                                   : start + (uint64_t)c->wait_ms;
        struct pollfd pfd = {.fd = listen_fd, .events = POLLIN};
        if (poll(&pfd, 1, (int)(until - now)) <= 0)
            continue;
        uint8_t buf[PUNCH_UDP_MTU];
        ssize_t n = recv(listen_fd, buf, sizeof(buf), 0);
        int rc = n > 0 ? take(buf, (size_t)n, ctx) : TAKE_NOT_OURS;
        if (rc != TAKE_NOT_OURS)
            return rc;
    }
}

typedef struct stun_wait {
    const uint8_t *txid;
    answer *a;
} stun_wait;

/* A STUN message with our transaction id: a success answer fills *a (if
 * given); a request (the hairpin test receives its own) counts too. */
static int take_stun(const uint8_t *buf, size_t len, void *ctx)
{
    const stun_wait *w = ctx;
    punch_stun_msg m;
    if (punch_stun_decode(&m, buf, len) != 0 || m.classic ||
        memcmp(m.txid, w->txid, PUNCH_STUN_TXID_LEN) != 0)
        return TAKE_NOT_OURS;
    if (m.cls == PUNCH_STUN_ERROR) {
        int code = 0;
        const char *reason = "";
        size_t rlen = 0;
        const punch_stun_attr *e = punch_stun_find(&m, PUNCH_STUN_ATTR_ERROR_CODE);
        if (e)
            punch_stun_read_error(e, &code, &reason, &rlen);
        fprintf(stderr, "punch: natcheck: the server answered %d %.*s\n", code, (int)rlen,
                reason);
        return -1;
    }
    if (w->a && m.cls == PUNCH_STUN_SUCCESS)
        read_answer(&m, w->a);
    return 1;
}

/* A STUN exchange (exchange_with): returns 1 when the answer came, 0 when
 * not, -1 on an error answer (reported). */
static int exchange(const check *c, int send_fd, int listen_fd, const punch_addr *dst,
                    const uint8_t *req, size_t req_len, const uint8_t *txid, answer *a)
{
    stun_wait w = {.txid = txid, .a = a};
    return exchange_with(c, send_fd, listen_fd, dst, req, req_len, take_stun, &w);
}

typedef struct cookie_wait {
    uint8_t txid[PUNCH_MSG_TXID_LEN];
    uint16_t second_port;
} cookie_wait;

static int take_cookie(const uint8_t *buf, size_t len, void *ctx)
{
    cookie_wait *w = ctx;
    punch_msg m;
    if (punch_msg_decode(buf, len, &m) != 0 || m.type != PUNCH_MSG_COOKIE ||
        memcmp(m.txid, w->txid, PUNCH_MSG_TXID_LEN) != 0)
        return TAKE_NOT_OURS;
    w->second_port = m.second_port;
    return 1;
}

/* punchd's second STUN port on the same IP (punchd --second-port), as its
 * COOKIE names it: a HELLO from fd (stateless at the server, and answered
 * with fewer bytes). 0 when the server does not say: not punchd, or
 * --second-port off. */
static uint16_t ask_second_port(const check *c, int fd)
{
    cookie_wait w = {0};
    uint8_t req[PUNCH_MSG_HELLO_LEN + 16];
    size_t len;
    punch_msg hello = {.type = PUNCH_MSG_HELLO};
    if (punch_random_bytes(w.txid, sizeof(w.txid)) != 0)
        memset(w.txid, 0x5a, sizeof(w.txid));
    memcpy(hello.txid, w.txid, sizeof(w.txid));
    if (punch_msg_encode(&hello, req, sizeof(req), &len) != 0 ||
        exchange_with(c, fd, fd, &c->server, req, len, take_cookie, &w) != 1)
        return 0;
    return w.second_port != c->server.port ? w.second_port : 0;
}

/* One Binding request from fd to dst; the answer comes back to fd. */
static int ask(const check *c, int fd, const punch_addr *dst, uint32_t change, answer *a)
{
    uint8_t txid[PUNCH_STUN_TXID_LEN], req[128];
    new_txid(txid);
    size_t len = build_request(req, sizeof(req), txid, change, 0);
    return exchange(c, fd, fd, dst, req, len, txid, a);
}

typedef struct result {
    punch_addr local, public_addr, other;
    bool nat;
    punch_nat_mapping mapping;
    punch_nat_filtering filtering;
    bool filtering_known;   /* not with one server address */
    uint16_t second_port;   /* punchd's second port, when the mapping came from it */
    int hairpin;            /* 1, 0, or -1 unknown */
    punch_nat_ports ports;
    int port_step;
    long lifetime_s;        /* -1: not measured */
    long lifetime_gone_s;   /* the first check that found it gone, or -1 */
    bool portmap_asked;     /* the gateway was asked what it offers */
    punch_portmap_offer portmap;
} result;

/* RFC 5780 §4.3: the same socket asks the primary, then the alternate IP
 * (primary port), then the alternate IP and port. */
static int check_mapping(const check *c, int fd, result *r, const answer *first)
{
    punch_addr alt_ip_primary_port = r->other, none = {0};
    alt_ip_primary_port.port = c->server.port;
    answer a2, a3;
    if (ask(c, fd, &alt_ip_primary_port, 0, &a2) != 1)
        return -1;
    if (punch_natcheck_mapping(&first->mapped, &a2.mapped, &none, &r->mapping) == 0)
        return 0;
    if (ask(c, fd, &r->other, 0, &a3) != 1)
        return -1;
    return punch_natcheck_mapping(&first->mapped, &a2.mapped, &a3.mapped, &r->mapping);
}

/* RFC 5780 §4.4, on a fresh socket that has only talked to the primary. */
static int check_filtering(const check *c, result *r)
{
    punch_addr local;
    int fd = open_socket(c, &local), rc = -1;
    if (fd < 0)
        return -1;
    int both, port_only = 0;
    if (ask(c, fd, &c->server, 0, NULL) == 1 &&
        (both = ask(c, fd, &c->server, PUNCH_STUN_CHANGE_IP | PUNCH_STUN_CHANGE_PORT, NULL)) >= 0 &&
        (both || (port_only = ask(c, fd, &c->server, PUNCH_STUN_CHANGE_PORT, NULL)) >= 0)) {
        r->filtering = punch_natcheck_filtering(both == 1, port_only == 1);
        rc = 0;
    }
    close(fd);
    return rc;
}

/* With one server address (no OTHER-ADDRESS): the mapping from punchd's
 * second port on the same IP, which its COOKIE names. The same socket
 * asks it: another public endpoint than the first answer's means a new
 * mapping per destination port (apdm); the same one means eim, or adm,
 * which needs a second IP to tell apart. Filtering needs one too.
 * Returns 0, -1 (the server stopped answering) or 1 (no second port). */
static int check_mapping_second_port(const check *c, int fd, result *r, const answer *first)
{
    if ((r->second_port = ask_second_port(c, fd)) == 0)
        return 1;
    punch_addr second = c->server;
    second.port = r->second_port;
    answer a2;
    if (ask(c, fd, &second, 0, &a2) != 1)
        return -1;
    r->mapping = punch_addr_equal(&first->mapped, &a2.mapped) ? PUNCH_NAT_EIM : PUNCH_NAT_APDM;
    return 0;
}

/* Mapping and filtering (RFC 5780 §4.3, §4.4) when the server has a
 * second address, else the mapping alone from its second port. Returns 0,
 * -1 (stopped answering) or 1 (neither: reported). */
static int check_behaviour(const check *c, int fd, result *r, const answer *first)
{
    char text[PUNCH_ADDR_STRLEN];
    if (r->other.family != PUNCH_AF_NONE) {
        r->filtering_known = true;
        return check_mapping(c, fd, r, first) == 0 && check_filtering(c, r) == 0 ? 0 : -1;
    }
    int rc = check_mapping_second_port(c, fd, r, first);
    if (rc == 1)
        fprintf(stderr,
                "punch: natcheck: %s gives no OTHER-ADDRESS and names no second port, so it "
                "cannot tell mapping and filtering (start punchd with --alt or without "
                "--second-port off, or use an RFC 5780 server)\n",
                punch_addr_format(&c->server, text));
    return rc;
}

/* Hairpinning (RFC 5780 §4.5, RFC 4787 REQ-9): a request sent to our own
 * public address must come back to us. Sending it from the socket that owns
 * the mapping also opens that mapping's filter to it, so the answer tells
 * about hairpinning alone. */
static void check_hairpin(const check *c, int fd, result *r)
{
    uint8_t txid[PUNCH_STUN_TXID_LEN], req[128];
    new_txid(txid);
    size_t len = build_request(req, sizeof(req), txid, 0, 0);
    r->hairpin = exchange(c, fd, fd, &r->public_addr, req, len, txid, NULL) == 1;
}

/* Port allocation: PORT_SAMPLES fresh sockets, one after the other. */
static int check_ports(const check *c, result *r)
{
    uint16_t local_ports[PORT_SAMPLES], mapped_ports[PORT_SAMPLES];
    int fds[PORT_SAMPLES], n = 0, rc = 0;
    for (; n < PORT_SAMPLES; n++) {
        punch_addr local;
        answer a;
        if ((fds[n] = open_socket(c, &local)) < 0 || ask(c, fds[n], &c->server, 0, &a) != 1) {
            if (fds[n] >= 0)
                close(fds[n]);
            rc = -1;
            break;
        }
        local_ports[n] = local.port;
        mapped_ports[n] = a.mapped.port;
    }
    if (rc == 0)
        rc = punch_natcheck_ports(local_ports, mapped_ports, PORT_SAMPLES, &r->ports,
                                  &r->port_step);
    while (n-- > 0)
        close(fds[n]);
    return rc;
}

/* Binding lifetime (RFC 5780 §4.6): keep one mapping idle; at growing
 * intervals ask the server, from another socket, to answer to the idle
 * mapping's port (RESPONSE-PORT). The answer arrives while the binding lives.
 * Answers coming in may refresh the binding on NATs that refresh inbound
 * (RFC 4787 REQ-6 says they should not), so the figure is an upper view. */
static int check_lifetime(const check *c, int max_wait_s, result *r)
{
    static const int schedule[] = {5, 10, 20, 30, 45, 60, 90, 120, 180, 240, 300, 450, 600};
    punch_addr local;
    answer a;
    int idle = open_socket(c, &local), rc = -1;
    if (idle < 0)
        return -1;
    if (ask(c, idle, &c->server, 0, &a) != 1)
        goto done;
    uint64_t born = punch_clock_ms();
    r->lifetime_s = 0;
    for (size_t i = 0; i < sizeof(schedule) / sizeof(schedule[0]); i++) {
        int t = schedule[i] < max_wait_s ? schedule[i] : max_wait_s;
        uint64_t due = born + (uint64_t)t * 1000;
        fprintf(stderr, "punch: natcheck: binding alive after %ld s; next check at %d s\n",
                r->lifetime_s, t);
        for (uint64_t now; (now = punch_clock_ms()) < due;)
            poll(NULL, 0, (int)(due - now));
        int probe = open_socket(c, &local);
        if (probe < 0)
            goto done;
        uint8_t txid[PUNCH_STUN_TXID_LEN], req[128];
        new_txid(txid);
        size_t len = build_request(req, sizeof(req), txid, 0, a.mapped.port);
        int alive = exchange(c, probe, idle, &c->server, req, len, txid, NULL);
        close(probe);
        if (alive < 0)
            goto done;
        if (!alive) {
            r->lifetime_gone_s = t;
            break;
        }
        r->lifetime_s = t;
        if (t >= max_wait_s)
            break;
    }
    rc = 0;
done:
    close(idle);
    return rc;
}

/* An address without its port ("192.0.2.1", "2001:db8::1"). */
static const char *ip_only(const punch_addr *a, char buf[PUNCH_ADDR_STRLEN])
{
    punch_addr_format(a, buf);
    char *colon = strrchr(buf, ':');
    if (colon)
        *colon = '\0';
    if (buf[0] == '[') {
        memmove(buf, buf + 1, strlen(buf));
        buf[strlen(buf) - 1] = '\0';
    }
    return buf;
}

/* "pcp natpmp upnp", the protocols the gateway answered, or "none". */
static const char *offered(const punch_portmap_offer *o, char out[32])
{
    snprintf(out, 32, "%s%s%s", o->pcp ? " pcp" : "", o->natpmp ? " natpmp" : "",
             o->upnp ? " upnp" : "");
    return out[0] ? out + 1 : "none";
}

static void print_portmap_table(const result *r)
{
    char g[PUNCH_ADDR_STRLEN], e[PUNCH_ADDR_STRLEN], list[32];
    const punch_portmap_offer *o = &r->portmap;
    if (!r->portmap_asked) {
        printf("port mapping     not asked\n");
        return;
    }
    if (o->gateway.family == PUNCH_AF_NONE) {
        printf("port mapping     no default gateway\n");
        return;
    }
    printf("port mapping     %s (gateway %s", offered(o, list), ip_only(&o->gateway, g));
    if (o->external.family)
        printf(", external address %s", ip_only(&o->external, e));
    printf(")\n");
}

static void print_table(const check *c, const result *r, bool lifetime)
{
    char s[PUNCH_ADDR_STRLEN], o[PUNCH_ADDR_STRLEN];
    printf("family           %s\n", punch_family_name(c->server.family));
    printf("server           %s", punch_addr_format(&c->server, s));
    if (r->other.family)
        printf(" (other address %s)", punch_addr_format(&r->other, o));
    printf("\nlocal            %s\n", punch_addr_format(&r->local, s));
    printf("public           %s\n", punch_addr_format(&r->public_addr, s));
    printf("nat              %s\n", r->nat ? "yes" : "no (public address)");
    printf("mapping          %s", punch_nat_mapping_name(r->mapping));
    if (r->second_port)
        printf(" (from the server's second port %u%s)", r->second_port,
               r->mapping == PUNCH_NAT_EIM ? "; adm would look the same with one server IP" : "");
    printf("\nfiltering        %s\n",
           r->filtering_known ? punch_nat_filtering_name(r->filtering)
                              : "unknown (one server address: punchd --alt tells)");
    printf("hairpin          %s\n", r->hairpin < 0 ? "unknown" : r->hairpin ? "yes" : "no");
    printf("port allocation  %s", punch_nat_ports_name(r->ports));
    if (r->ports == PUNCH_NAT_SEQUENTIAL)
        printf(", step %+d", r->port_step);
    printf("\n");
    if (lifetime) {
        printf("lifetime         ");
        if (r->lifetime_gone_s >= 0)
            printf("%ld s (alive at %ld s, gone at %ld s)\n", r->lifetime_s, r->lifetime_s,
                   r->lifetime_gone_s);
        else
            printf("at least %ld s (still alive when the check stopped)\n", r->lifetime_s);
    }
}

static void print_portmap_json(const result *r)
{
    char g[PUNCH_ADDR_STRLEN], e[PUNCH_ADDR_STRLEN];
    const punch_portmap_offer *o = &r->portmap;
    if (!r->portmap_asked || o->gateway.family == PUNCH_AF_NONE) {
        printf(",\"portmap\":null");
        return;
    }
    printf(",\"portmap\":{\"gateway\":\"%s\",\"pcp\":%s,\"natpmp\":%s,\"upnp\":%s,"
           "\"external\":\"%s\",\"pcp_ms\":%u,\"natpmp_ms\":%u,\"upnp_ms\":%u}",
           ip_only(&o->gateway, g), o->pcp ? "true" : "false",
           o->natpmp ? "true" : "false", o->upnp ? "true" : "false",
           o->external.family ? ip_only(&o->external, e) : "", o->pcp_ms, o->natpmp_ms,
           o->upnp_ms);
}

/* One family's fields, without the braces. */
static void print_json_fields(const check *c, const result *r, bool lifetime)
{
    char s[PUNCH_ADDR_STRLEN], l[PUNCH_ADDR_STRLEN], p[PUNCH_ADDR_STRLEN], o[PUNCH_ADDR_STRLEN];
    printf("\"family\":\"%s\",\"server\":\"%s\",\"other\":\"%s\",\"local\":\"%s\","
           "\"public\":\"%s\",\"nat\":%s,"
           "\"mapping\":\"%s\",\"filtering\":\"%s\",\"hairpin\":%s,\"port_allocation\":\"%s\","
           "\"port_step\":%d",
           punch_family_name(c->server.family), punch_addr_format(&c->server, s),
           r->other.family ? punch_addr_format(&r->other, o) : "",
           punch_addr_format(&r->local, l), punch_addr_format(&r->public_addr, p),
           r->nat ? "true" : "false", punch_nat_mapping_name(r->mapping),
           r->filtering_known ? punch_nat_filtering_name(r->filtering) : "unknown",
           r->hairpin < 0 ? "null" : r->hairpin ? "true" : "false",
           punch_nat_ports_name(r->ports), r->port_step);
    if (r->second_port)
        printf(",\"second_port\":%u", r->second_port);
    if (lifetime)
        printf(",\"lifetime_s\":%ld,\"lifetime_at_least\":%s", r->lifetime_s,
               r->lifetime_gone_s < 0 ? "true" : "false");
}

/* The other family (--other-family): its check, or that it did not answer. */
typedef struct other_family {
    bool asked, reachable;
    check c;
    result r;
} other_family;

static void print_json(const check *c, const result *r, bool lifetime, const other_family *of)
{
    char s[PUNCH_ADDR_STRLEN];
    printf("{");
    print_json_fields(c, r, lifetime);
    print_portmap_json(r);
    if (!of->asked)
        printf(",\"other_family\":null");
    else if (!of->reachable)
        printf(",\"other_family\":{\"family\":\"%s\",\"server\":\"%s\",\"reachable\":false}",
               punch_family_name(of->c.server.family), punch_addr_format(&of->c.server, s));
    else {
        printf(",\"other_family\":{\"reachable\":true,");
        print_json_fields(&of->c, &of->r, false);
        printf("}");
    }
    printf("}\n");
}

static int run_checks(const check *c, bool lifetime, int max_wait_s, result *r)
{
    char text[PUNCH_ADDR_STRLEN];
    int fd = open_socket(c, &r->local), rc = 1;
    if (fd < 0)
        return 1;
    punch_addr route;
    if (punch_udp_route_source(&c->server, &route) == 0) {
        route.port = r->local.port;
        r->local = route;
    }
    answer first;
    int got = ask(c, fd, &c->server, 0, &first);
    if (got != 1) {
        if (got == 0)
            fprintf(stderr, "punch: natcheck: no answer from %s in %d ms\n",
                    punch_addr_format(&c->server, text), c->wait_ms);
        goto done;
    }
    r->public_addr = first.mapped;
    r->other = first.other;
    if (c->nat64 && r->other.family == PUNCH_AF_INET) /* the server's, through our NAT64 */
        punch_nat64_synthesize(c->nat64, &r->other, &r->other);
    r->nat = !punch_addr_equal(&r->public_addr, &r->local);
    int behaviour = check_behaviour(c, fd, r, &first);
    if (behaviour != 0) {
        if (behaviour < 0)
            fprintf(stderr, "punch: natcheck: %s stopped answering\n",
                    punch_addr_format(&c->server, text));
        goto done;
    }
    check_hairpin(c, fd, r);
    if (check_ports(c, r) != 0 || (lifetime && check_lifetime(c, max_wait_s, r) != 0)) {
        fprintf(stderr, "punch: natcheck: %s stopped answering\n",
                punch_addr_format(&c->server, text));
        goto done;
    }
    rc = 0;
done:
    close(fd);
    return rc;
}

static int parse_int(const char *text, int min, int max, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (*text == '\0' || *end || errno || v < min || v > max)
        return -1;
    *out = (int)v;
    return 0;
}

/* The server address `text` (of option `what`) into c, with the wildcard
 * of its family; an IPv4 one through the NAT64 on an IPv6-only host
 * (punch --nat64-prefix). Returns 0, 1 (does not resolve) or 2 (usage). */
static int server_of(const punch_cli *cli, const char *text, const char *what, check *c)
{
    int rc = punch_addr_resolve(text, DEFAULT_PORT, &c->server);
    if (rc == 0 && c->server.family == PUNCH_AF_INET && !cli->no_nat64 &&
        punch_local_ipv6_only() &&
        punch_nat64_synthesize(&cli->nat64_prefix, &c->server, &c->server) == 0)
        c->nat64 = &cli->nat64_prefix;
    if (rc == PUNCH_ERR_INVAL)
        return punch_cli_usage_error("punch natcheck", "%s: '%s' is not HOST[:PORT]", what, text);
    if (rc != 0) {
        fprintf(stderr, "punch: natcheck: cannot resolve '%s'\n", text);
        return 1;
    }
    punch_addr_parse(c->server.family == PUNCH_AF_INET ? "0.0.0.0" : "::", 0, &c->any);
    return 0;
}

int punch_cmd_natcheck(const punch_cli *cli, int argc, char **argv)
{
    static const struct option longs[] = {
        {"json", no_argument, NULL, 'j'},
        {"lifetime", no_argument, NULL, 'l'},
        {"max-wait", required_argument, NULL, 'm'},
        {"wait", required_argument, NULL, 'w'},
        {"other-family", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    bool json = false, lifetime = false;
    int max_wait_s = DEFAULT_MAX_LIFETIME_S, c;
    check chk = {.wait_ms = DEFAULT_WAIT_MS};
    const char *other = NULL;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", longs, NULL)) != -1) {
        switch (c) {
        case 'j': json = true; break;
        case 'l': lifetime = true; break;
        case 'm':
            if (parse_int(optarg, 1, 3600, &max_wait_s) != 0)
                return punch_cli_usage_error("punch natcheck",
                                             "--max-wait: '%s' is not 1 to 3600 seconds", optarg);
            break;
        case 'w':
            if (parse_int(optarg, 10, 60000, &chk.wait_ms) != 0)
                return punch_cli_usage_error("punch natcheck",
                                             "--wait: '%s' is not 10 to 60000 ms", optarg);
            break;
        case 'o': other = optarg; break;
        case 'h': fputs(natcheck_help, stdout); return 0;
        case ':':
            return punch_cli_usage_error("punch natcheck", "%s needs a value", argv[optind - 1]);
        default:
            return punch_cli_usage_error("punch natcheck", "unknown option '%s'",
                                         argv[optind - 1]);
        }
    }
    if (optind < argc)
        return punch_cli_usage_error("punch natcheck", "unexpected argument '%s'", argv[optind]);
    if (!cli->server || !cli->server[0])
        return punch_cli_usage_error("punch natcheck",
                                     "no server: give --server HOST[:PORT] or set PUNCH_SERVER");
    int rc = server_of(cli, cli->server, "--server", &chk);
    if (rc != 0)
        return rc;
    other_family of = {.asked = other != NULL, .c = chk};
    if (other && (rc = server_of(cli, other, "--other-family", &of.c)) != 0)
        return rc;
    if (other && of.c.server.family == chk.server.family)
        return punch_cli_usage_error("punch natcheck", "--other-family: '%s' is of --server's family",
                                     other);

    result r = {.hairpin = -1, .lifetime_s = -1, .lifetime_gone_s = -1};
    if (run_checks(&chk, lifetime, max_wait_s, &r) != 0)
        return 1;
    of.r = (result){.hairpin = -1, .lifetime_s = -1, .lifetime_gone_s = -1};
    of.reachable = other && run_checks(&of.c, false, 0, &of.r) == 0;
    /* Never the real gateway for a server on this machine (tests). */
    r.portmap_asked = cli->portmap != PUNCH_PORTMAP_OFF && !punch_portmap_pointless(&chk.server);
    if (r.portmap_asked)
        punch_portmap_probe(&r.portmap);
    if (json) {
        print_json(&chk, &r, lifetime, &of);
        return 0;
    }
    print_table(&chk, &r, lifetime);
    print_portmap_table(&r);
    if (of.reachable) {
        printf("\n");
        print_table(&of.c, &of.r, false);
    } else if (of.asked) {
        char s[PUNCH_ADDR_STRLEN];
        printf("\n%s: no answer from %s\n", punch_family_name(of.c.server.family),
               punch_addr_format(&of.c.server, s));
    }
    return 0;
}
