/* SPDX-License-Identifier: MIT */
/* An HTTP/1.x request head for the metrics endpoint: see http_request.h. */
#include "http_request.h"

#include <stdbool.h>
#include <string.h>

/* The offset of needle in data[0, len), or len. */
static size_t find(const char *data, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= len; i++)
        if (memcmp(data + i, needle, n) == 0)
            return i;
    return len;
}

/* The request line's three parts: METHOD SP TARGET SP HTTP/1.x (RFC 9112
 * §3), line the bytes before its end. */
static punchd_http_request request_line(const char *line, size_t len)
{
    size_t m = 0;
    while (m < len && line[m] >= 'A' && line[m] <= 'Z')
        m++;
    if (m == 0 || m > 16 || m == len || line[m] != ' ')
        return PUNCHD_HTTP_BAD;
    const char *target = line + m + 1;
    size_t rest = len - m - 1;
    size_t t = find(target, rest, " ");
    if (t == 0 || t == rest || target[0] != '/')
        return PUNCHD_HTTP_BAD;
    const char *version = target + t + 1;
    size_t vlen = rest - t - 1;
    if (vlen != 8 || memcmp(version, "HTTP/1.", 7) != 0 || version[7] < '0' || version[7] > '9')
        return PUNCHD_HTTP_BAD;
    if (m != 3 || memcmp(line, "GET", 3) != 0)
        return PUNCHD_HTTP_BAD_METHOD;
    size_t path = find(target, t, "?");
    return path == 8 && memcmp(target, "/metrics", 8) == 0 ? PUNCHD_HTTP_METRICS
                                                           : PUNCHD_HTTP_NOT_FOUND;
}

punchd_http_request punchd_http_parse(const char *data, size_t len, size_t cap)
{
    if (memchr(data, '\0', len))
        return PUNCHD_HTTP_BAD;
    bool whole = find(data, len, "\r\n\r\n") < len || find(data, len, "\n\n") < len;
    if (!whole)
        return len >= cap ? PUNCHD_HTTP_BAD : PUNCHD_HTTP_INCOMPLETE;
    size_t end = find(data, len, "\n");
    if (end > 0 && data[end - 1] == '\r')
        end--;
    return request_line(data, end);
}
