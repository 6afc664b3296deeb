/* SPDX-License-Identifier: MIT */
/*
 * Writes the seed corpus of fuzz_noise: a valid message 1, message 2 and a
 * few transport datagrams for the fixed keys of fuzz_noise.c, which it
 * includes so both always agree. Re-running it writes the same files.
 *
 *   cc -std=c11 -Iinclude -Isrc tests/fuzz/make_noise_corpus.c src/crypto/noise.c \
 *      src/crypto/transport.c src/crypto/identity.c -lsodium -o make_noise_corpus
 *   ./make_noise_corpus tests/fuzz/corpus/noise
 */
#include <stdio.h>

#include "fuzz_noise.c"

static int write_seed(const char *dir, const char *name, const uint8_t *p, size_t n)
{
    char path[4096];
    FILE *f;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "make_noise_corpus: cannot write %s\n", path);
        return 1;
    }
    return 0;
}

static int write_datagram(const char *dir, const char *name, const uint8_t *payload, size_t len)
{
    uint8_t dgram[512];
    size_t n = 0;

    if (punch_transport_encrypt(&fx.peer, 0, payload, len, dgram, sizeof dgram, &n) != 0)
        return 1;
    return write_seed(dir, name, dgram, n);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "tests/fuzz/corpus/noise";
    uint8_t big[200];
    int err = 0;

    get_fixture();
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)i;
    err |= write_seed(dir, "handshake-message-1", fx.msg1, fx.msg1_len);
    err |= write_seed(dir, "handshake-message-2", fx.msg2, fx.msg2_len);
    err |= write_datagram(dir, "transport-counter-0", (const uint8_t *)"data", 4);
    err |= write_datagram(dir, "transport-keepalive-counter-1", NULL, 0);
    err |= write_datagram(dir, "transport-200-bytes-counter-2", big, sizeof big);
    /* The same sender on AES-256-GCM from counter 3 on, for the AES reader. */
    if (fx.has_aes) {
        err |= punch_transport_use_cipher(&fx.peer, PUNCH_CIPHER_AES256_GCM) != 0;
        err |= write_datagram(dir, "transport-aes-counter-3", (const uint8_t *)"data", 4);
        err |= write_datagram(dir, "transport-aes-200-bytes-counter-4", big, sizeof big);
    }
    return err ? 1 : 0;
}
