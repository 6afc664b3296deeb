/* SPDX-License-Identifier: MIT */
/* Tokens as text: see token_line.h. */
#include "crypto/token_line.h"

#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "crypto/identity.h"

#define KEY_TEXT   (PUNCH_KEY_B64_LEN - 1)
#define TOKEN_TEXT (2 * PUNCH_TOKEN_BYTES)

static const char *const NAT_NAMES[] = {"unknown", "eim", "adm", "apdm"};
#define N_NAT (sizeof(NAT_NAMES) / sizeof(NAT_NAMES[0]))

size_t punch_token_line_format(const punch_server_token *t, char out[PUNCH_TOKEN_LINE_MAX])
{
    char key[PUNCH_KEY_B64_LEN], token[TOKEN_TEXT + 1];
    punch_key_encode(t->server_key, key);
    sodium_bin2hex(token, sizeof(token), t->token, PUNCH_TOKEN_BYTES);
    const char *nat = t->nat < N_NAT ? NAT_NAMES[t->nat] : NAT_NAMES[0];
    int n = snprintf(out, PUNCH_TOKEN_LINE_MAX, "%s %s %s %u\n", key, token, nat,
                     (unsigned)t->rtt_ms);
    return n > 0 ? (size_t)n : 0;
}

/* Lower-case hex only: one spelling of a token. */
static bool hex_digits(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
            return false;
    return true;
}

/* 0 to 65535, decimal, one spelling (no sign, no leading zero). */
static int parse_rtt(const char *p, size_t n, uint16_t *out)
{
    if (n == 0 || n > 5 || (n > 1 && p[0] == '0'))
        return -1;
    uint32_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (uint32_t)(p[i] - '0');
    }
    if (v > UINT16_MAX)
        return -1;
    *out = (uint16_t)v;
    return 0;
}

int punch_token_line_parse(const char *text, size_t len, punch_server_token *t)
{
    if (!text || !t)
        return PUNCH_ERR_MALFORMED;
    if (len && text[len - 1] == '\n')
        len--;
    const size_t head = KEY_TEXT + 1 + TOKEN_TEXT + 1;
    if (len <= head || len > head + 7 + 1 + 5 || text[KEY_TEXT] != ' ' ||
        text[head - 1] != ' ')
        return PUNCH_ERR_MALFORMED;
    char key[PUNCH_KEY_B64_LEN];
    memcpy(key, text, KEY_TEXT);
    key[KEY_TEXT] = '\0';
    memset(t, 0, sizeof(*t));
    size_t got = 0;
    const char *hex = text + KEY_TEXT + 1;
    if (punch_key_decode(key, t->server_key) != 0 || !hex_digits(hex, TOKEN_TEXT) ||
        sodium_hex2bin(t->token, PUNCH_TOKEN_BYTES, hex, TOKEN_TEXT, NULL, &got, NULL) != 0 ||
        got != PUNCH_TOKEN_BYTES)
        return PUNCH_ERR_MALFORMED;
    const char *nat = text + head, *space = memchr(nat, ' ', len - head);
    if (!space || parse_rtt(space + 1, (size_t)(text + len - space - 1), &t->rtt_ms) != 0)
        return PUNCH_ERR_MALFORMED;
    size_t nat_len = (size_t)(space - nat);
    for (size_t i = 0; i < N_NAT; i++)
        if (strlen(NAT_NAMES[i]) == nat_len && memcmp(nat, NAT_NAMES[i], nat_len) == 0) {
            t->nat = (uint8_t)i;
            return 0;
        }
    return PUNCH_ERR_MALFORMED;
}
