/* SPDX-License-Identifier: MIT */
/* turn:// and turns:// URLs as punch --turn takes them: see turn_url.h. */
#include "core/turn_url.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "wire/hex.h"

static int fail(char *why, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *why, size_t cap, const char *fmt, ...)
{
    if (cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, cap, fmt, ap);
        va_end(ap);
    }
    return PUNCH_ERR_INVAL;
}

/* The n bytes at s, %XX escapes undone, into out (cap bytes with the NUL).
 * Returns 0, or -1 for a bad escape, an escaped NUL or no room. */
static int unescape(const char *s, size_t n, char *out, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            int hi = i + 2 < n ? punch_hex_digit(s[i + 1]) : -1;
            int lo = i + 2 < n ? punch_hex_digit(s[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi | lo) == 0)
                return -1;
            c = hi << 4 | lo;
            i += 2;
        }
        if (k + 1 >= cap)
            return -1;
        out[k++] = (char)c;
    }
    out[k] = '\0';
    return 0;
}

/* USER:PASS, the n bytes at s, into url. */
static int userinfo(const char *s, size_t n, punch_turn_url *url, char *why, size_t cap)
{
    const char *colon = memchr(s, ':', n);
    if (!colon)
        return fail(why, cap, "no ':PASSWORD' after the user name");
    size_t ulen = (size_t)(colon - s), plen = n - ulen - 1;
    if (ulen == 0)
        return fail(why, cap, "the user name is empty");
    if (plen == 0)
        return fail(why, cap, "the password is empty");
    if (unescape(s, ulen, url->username, sizeof(url->username)) != 0)
        return fail(why, cap, "the user name has a bad %%XX escape or is over %d bytes",
                    PUNCH_TURN_CRED_MAX - 1);
    if (unescape(colon + 1, plen, url->password, sizeof(url->password)) != 0)
        return fail(why, cap, "the password has a bad %%XX escape or is over %d bytes",
                    PUNCH_TURN_CRED_MAX - 1);
    return 0;
}

/* ":PORT" (or nothing: the scheme's default) at s, n bytes. */
static int port(const char *s, size_t n, punch_turn_url *url, char *why, size_t cap)
{
    url->port = url->transport == PUNCH_TURN_TLS ? PUNCH_TURN_DEFAULT_TLS_PORT
                                                 : PUNCH_TURN_DEFAULT_PORT;
    if (n == 0)
        return 0;
    if (s[0] != ':')
        return fail(why, cap, "'%.*s' after the host", (int)n, s);
    unsigned v = 0;
    size_t i = 1;
    for (; i < n && i <= 5 && s[i] >= '0' && s[i] <= '9'; i++)
        v = v * 10 + (unsigned)(s[i] - '0');
    if (i == 1 || i != n || v == 0 || v > 65535)
        return fail(why, cap, "port '%.*s' is not 1 to 65535", (int)(n - 1), s + 1);
    url->port = (uint16_t)v;
    return 0;
}

/* HOST[:PORT], the n bytes at s: a name, an IPv4 address or [IPv6]. */
static int hostport(const char *s, size_t n, punch_turn_url *url, char *why, size_t cap)
{
    const char *host = s, *end;
    size_t hlen;
    if (n && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close)
            return fail(why, cap, "no ']' after the IPv6 address");
        host = s + 1;
        hlen = (size_t)(close - host);
        end = close + 1;
    } else {
        const char *colon = memchr(s, ':', n);
        hlen = colon ? (size_t)(colon - s) : n;
        end = s + hlen;
    }
    if (hlen == 0)
        return fail(why, cap, "no host");
    if (hlen >= sizeof(url->host))
        return fail(why, cap, "the host is over %d bytes", PUNCH_TURN_URL_HOST_MAX - 1);
    for (size_t i = 0; i < hlen; i++)
        if (host[i] <= ' ' || host[i] > '~' || strchr("/?#@[]", host[i]))
            return fail(why, cap, "host '%.*s' has a character hosts do not have", (int)hlen,
                        host);
    memcpy(url->host, host, hlen);
    url->host[hlen] = '\0';
    return port(end, n - (size_t)(end - s), url, why, cap);
}

/* The scheme and the ?transport= at the end (RFC 7065 §3.1): url->transport,
 * and *rest, *n the part between them. */
static int transport(const char *text, punch_turn_url *url, const char **rest, size_t *n,
                     char *why, size_t cap)
{
    bool tls = strncmp(text, "turns://", 8) == 0;
    if (!tls && strncmp(text, "turn://", 7) != 0)
        return fail(why, cap, "it does not start with turn:// or turns://");
    *rest = text + (tls ? 8 : 7);
    const char *query = strchr(*rest, '?');
    *n = query ? (size_t)(query - *rest) : strlen(*rest);
    url->transport = tls ? PUNCH_TURN_TLS : PUNCH_TURN_UDP;
    if (!query || strcmp(query, "?transport=tcp") == 0) {
        if (query && !tls)
            url->transport = PUNCH_TURN_TCP;
        return 0;
    }
    if (strcmp(query, "?transport=udp") == 0 && !tls)
        return 0;
    if (strcmp(query, "?transport=udp") == 0)
        return fail(why, cap, "turns:// over UDP is DTLS, which is not spoken: use "
                    "?transport=tcp or none");
    return fail(why, cap, "'%s': only ?transport=udp or ?transport=tcp is spoken", query);
}

int punch_turn_url_parse(const char *text, punch_turn_url *url, char *why, size_t cap)
{
    if (!text || !url)
        return fail(why, cap, "no URL");
    *url = (punch_turn_url){0};
    const char *rest = NULL;
    size_t n = 0;
    int rc = transport(text, url, &rest, &n, why, cap);
    if (rc != 0) {
        *url = (punch_turn_url){0};
        return rc;
    }
    const char *at = NULL; /* the last '@' before the host: a password may hold one escaped */
    for (size_t i = 0; i < n; i++)
        if (rest[i] == '@')
            at = rest + i;
    if (!at)
        rc = fail(why, cap, "no USER:PASS@ before the host (TURN needs credentials)");
    else if (memchr(at + 1, '/', n - (size_t)(at + 1 - rest)))
        rc = fail(why, cap, "a path after the host");
    if (rc == 0)
        rc = userinfo(rest, (size_t)(at - rest), url, why, cap);
    if (rc == 0)
        rc = hostport(at + 1, n - (size_t)(at + 1 - rest), url, why, cap);
    if (rc != 0)
        *url = (punch_turn_url){0}; /* no password left behind */
    return rc;
}

const char *punch_turn_transport_name(punch_turn_transport t)
{
    return t == PUNCH_TURN_TLS ? "tls" : t == PUNCH_TURN_TCP ? "tcp" : "udp";
}
