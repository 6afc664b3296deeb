/* SPDX-License-Identifier: MIT */
/*
 * The core's TURN client (src/core/turn.c) against a real TURN server
 * (interop.turn_relay runs coturn): two clients on UDP sockets of their
 * own allocate with long-term credentials, each lets the other's relayed
 * address in (CreatePermission, ChannelBind), and a datagram goes each way
 * relay to relay: first as a Send indication (before the channels are
 * bound), then as ChannelData. A wrong password must be refused.
 *
 * usage: turn_relay SERVER_IP:PORT USER PASSWORD [--expect-refusal]
 * Prints what happened; exits 0 when all of it did, 1 otherwise.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/turn.h"
#include "io/net.h"
#include "punch/io.h"

typedef struct client {
    const char *name;
    int fd;
    punch_turn t;
    char got[64]; /* the last datagram from the peer */
    bool got_any;
} client;

static punch_addr server;

static uint64_t now_ms(void)
{
    return punch_clock_ms();
}

static void os_random(void *ctx, uint8_t *buf, size_t len)
{
    (void)ctx;
    if (getrandom(buf, len, 0) != (ssize_t)len)
        abort();
}

static void send_to_server(const client *c, const uint8_t *buf, size_t len)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(server.port)};
    memcpy(&sa.sin_addr, server.ip, 4);
    if (sendto(c->fd, buf, len, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        perror("sendto");
}

static void flush(client *c)
{
    uint8_t buf[PUNCH_TURN_MSG_MAX];
    size_t len;
    while (punch_turn_poll_transmit(&c->t, buf, sizeof(buf), &len) == 1)
        send_to_server(c, buf, len);
}

static void receive(client *c, uint64_t now)
{
    uint8_t buf[1500];
    ssize_t n;
    while ((n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
        punch_addr peer;
        const uint8_t *data;
        size_t len;
        if (punch_turn_handle(&c->t, now, buf, (size_t)n, &peer, &data, &len) == 1) {
            snprintf(c->got, sizeof(c->got), "%.*s", (int)(len < 63 ? len : 63), data);
            c->got_any = true;
        }
    }
}

/* Run both clients until done(a, b) or limit_ms. */
static bool run_until(client *a, client *b, bool (*done)(const client *, const client *),
                      uint64_t limit_ms)
{
    uint64_t end = now_ms() + limit_ms;
    while (!done(a, b) && now_ms() < end) {
        client *cs[2] = {a, b};
        struct pollfd p[2] = {{.fd = a->fd, .events = POLLIN}, {.fd = b->fd, .events = POLLIN}};
        uint64_t next = end;
        for (int i = 0; i < 2; i++) {
            uint64_t t = punch_turn_next_timeout(&cs[i]->t);
            next = t < next ? t : next;
        }
        uint64_t now = now_ms();
        poll(p, 2, next > now ? (int)(next - now < 50 ? next - now : 50) : 0);
        now = now_ms();
        for (int i = 0; i < 2; i++) {
            receive(cs[i], now);
            punch_turn_handle_timeout(&cs[i]->t, now);
            flush(cs[i]);
        }
    }
    return done(a, b);
}

static bool both_settled(const client *a, const client *b)
{
    return a->t.state != PUNCH_TURN_ALLOCATING && b->t.state != PUNCH_TURN_ALLOCATING;
}

static bool both_bound(const client *a, const client *b)
{
    return a->t.peers[0].bound && b->t.peers[0].bound;
}

static bool both_got(const client *a, const client *b)
{
    return a->got_any && b->got_any;
}

static int open_client(client *c, const char *name, const char *user, const char *pass)
{
    c->name = name;
    c->fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in any = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (c->fd < 0 || bind(c->fd, (struct sockaddr *)&any, sizeof(any)) != 0)
        return -1;
    punch_turn_cfg cfg = {.server = server, .username = user, .password = pass,
                          .random = os_random};
    if (punch_turn_init(&c->t, &cfg, now_ms()) != 0)
        return -1;
    flush(c);
    return 0;
}

/* A datagram from each to the other's relayed address, until both have one. */
static bool exchange(client *a, client *b, const char *how)
{
    a->got_any = b->got_any = false;
    char ma[32], mb[32];
    snprintf(ma, sizeof(ma), "from %s by %s", a->name, how);
    snprintf(mb, sizeof(mb), "from %s by %s", b->name, how);
    uint8_t out[128];
    size_t len;
    if (punch_turn_wrap(&a->t, &b->t.relayed, (const uint8_t *)ma, strlen(ma), out, sizeof(out),
                        &len) != 0)
        return false;
    send_to_server(a, out, len);
    if (punch_turn_wrap(&b->t, &a->t.relayed, (const uint8_t *)mb, strlen(mb), out, sizeof(out),
                        &len) != 0)
        return false;
    send_to_server(b, out, len);
    if (!run_until(a, b, both_got, 3000))
        return false;
    printf("%s: %s got '%s', %s got '%s'\n", how, b->name, b->got, a->name, a->got);
    return strcmp(b->got, ma) == 0 && strcmp(a->got, mb) == 0;
}

static int refused(const char *user, const char *pass)
{
    client a = {0}, b = {0};
    if (open_client(&a, "a", user, pass) != 0 || open_client(&b, "b", user, pass) != 0)
        return 1;
    run_until(&a, &b, both_settled, 10000);
    printf("wrong password: %s\n", a.t.why);
    return a.t.state == PUNCH_TURN_FAILED && strstr(a.t.why, "401") ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc < 4 || punch_addr_parse(argv[1], 3478, &server) != 0 ||
        server.family != PUNCH_AF_INET) {
        fprintf(stderr, "usage: turn_relay SERVER_IP:PORT USER PASSWORD [--expect-refusal]\n");
        return 2;
    }
    if (argc > 4 && strcmp(argv[4], "--expect-refusal") == 0)
        return refused(argv[2], argv[3]);
    client a = {0}, b = {0};
    uint64_t t0 = now_ms();
    if (open_client(&a, "alice", argv[2], argv[3]) != 0 ||
        open_client(&b, "bob", argv[2], argv[3]) != 0) {
        perror("client");
        return 1;
    }
    if (!run_until(&a, &b, both_settled, 10000) || a.t.state != PUNCH_TURN_ALLOCATED ||
        b.t.state != PUNCH_TURN_ALLOCATED) {
        printf("not allocated: alice '%s', bob '%s'\n", a.t.why, b.t.why);
        return 1;
    }
    char ra[PUNCH_ADDR_STRLEN], rb[PUNCH_ADDR_STRLEN];
    printf("allocated in %llu ms: alice relayed %s, bob relayed %s\n",
           (unsigned long long)(now_ms() - t0), punch_addr_format(&a.t.relayed, ra),
           punch_addr_format(&b.t.relayed, rb));
    uint64_t now = now_ms();
    if (punch_turn_permit(&a.t, now, &b.t.relayed) != 0 ||
        punch_turn_permit(&b.t, now, &a.t.relayed) != 0)
        return 1;
    flush(&a);
    flush(&b);
    /* Before the channels are bound: Send indications (the permissions
     * reach the server first, on the same path). */
    if (!exchange(&a, &b, "send-indication")) {
        printf("no data by Send indication\n");
        return 1;
    }
    if (!run_until(&a, &b, both_bound, 3000)) {
        printf("channels not bound\n");
        return 1;
    }
    printf("channels bound: alice 0x%04x, bob 0x%04x\n", a.t.peers[0].channel,
           b.t.peers[0].channel);
    if (!exchange(&a, &b, "channeldata"))
        return 1;
    printf("dropped: alice %llu, bob %llu\n", (unsigned long long)a.t.dropped,
           (unsigned long long)b.t.dropped);
    return a.t.dropped || b.t.dropped ? 1 : 0;
}
