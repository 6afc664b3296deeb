/* SPDX-License-Identifier: MIT */
/* PCP messages (RFC 6887): see pcp.h. */
#include <string.h>

#include "wire/bytes.h"
#include "wire/pcp.h"

#define PCP_RESPONSE_BIT 0x80
#define PCP_OPTION_HEADER_LEN 4

static const uint8_t v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* An address as PCP's 16 bytes (§5). */
static int put_address(uint8_t out[16], const punch_addr *a)
{
    if (a->family == PUNCH_AF_INET) {
        memcpy(out, v4_mapped_prefix, sizeof(v4_mapped_prefix));
        memcpy(out + 12, a->ip, 4);
    } else if (a->family == PUNCH_AF_INET6) {
        memcpy(out, a->ip, 16);
    } else if (a->family == PUNCH_AF_NONE) {
        memset(out, 0, 16);
    } else {
        return PUNCH_ERR_INVAL;
    }
    return 0;
}

static void get_address(const uint8_t in[16], uint16_t port, punch_addr *a)
{
    memset(a, 0, sizeof(*a));
    a->port = port;
    if (memcmp(in, v4_mapped_prefix, sizeof(v4_mapped_prefix)) == 0) {
        a->family = PUNCH_AF_INET;
        memcpy(a->ip, in + 12, 4);
    } else {
        a->family = PUNCH_AF_INET6;
        memcpy(a->ip, in, 16);
    }
}

static int put_header(uint8_t *buf, uint8_t opcode, uint32_t lifetime_s,
                      const punch_addr *client)
{
    memset(buf, 0, PUNCH_PCP_HEADER_LEN);
    buf[0] = PUNCH_PCP_VERSION;
    buf[1] = opcode;
    punch_put32(buf + 4, lifetime_s);
    if (client->family == PUNCH_AF_NONE)
        return PUNCH_ERR_INVAL;
    return put_address(buf + 8, client);
}

int punch_pcp_encode_announce(const punch_addr *client, uint8_t *buf, size_t cap, size_t *len)
{
    if (!client || !buf || !len)
        return PUNCH_ERR_INVAL;
    if (cap < PUNCH_PCP_HEADER_LEN)
        return PUNCH_ERR_NOBUFS;
    int rc = put_header(buf, PUNCH_PCP_OP_ANNOUNCE, 0, client);
    if (rc == 0)
        *len = PUNCH_PCP_HEADER_LEN;
    return rc;
}

int punch_pcp_encode_map(const punch_addr *client, uint32_t lifetime_s, const punch_pcp_map *map,
                         uint8_t *buf, size_t cap, size_t *len)
{
    if (!client || !map || !buf || !len)
        return PUNCH_ERR_INVAL;
    if (cap < PUNCH_PCP_HEADER_LEN + PUNCH_PCP_MAP_LEN)
        return PUNCH_ERR_NOBUFS;
    int rc = put_header(buf, PUNCH_PCP_OP_MAP, lifetime_s, client);
    if (rc != 0)
        return rc;
    uint8_t *b = buf + PUNCH_PCP_HEADER_LEN;
    memset(b, 0, PUNCH_PCP_MAP_LEN);
    memcpy(b, map->nonce, PUNCH_PCP_NONCE_LEN);
    b[12] = map->protocol;
    punch_put16(b + 16, map->internal_port);
    punch_put16(b + 18, map->external.port);
    if ((rc = put_address(b + 20, &map->external)) != 0)
        return rc;
    *len = PUNCH_PCP_HEADER_LEN + PUNCH_PCP_MAP_LEN;
    return 0;
}

/* Options after the body (§7.3): code, reserved, length, data padded to
 * 4 bytes; each must fit what is left. */
static bool options_ok(const uint8_t *p, size_t left)
{
    while (left > 0) {
        if (left < PCP_OPTION_HEADER_LEN)
            return false;
        size_t olen = punch_get16(p + 2);
        size_t padded = PCP_OPTION_HEADER_LEN + ((olen + 3) & ~(size_t)3);
        if (padded > left)
            return false;
        p += padded;
        left -= padded;
    }
    return true;
}

int punch_pcp_decode_response(const uint8_t *buf, size_t len, punch_pcp_response *out)
{
    if (!buf || !out)
        return PUNCH_ERR_INVAL;
    memset(out, 0, sizeof(*out));
    if (len < PUNCH_PCP_HEADER_LEN || len > PUNCH_PCP_MAX_LEN || len % 4 != 0 ||
        buf[0] != PUNCH_PCP_VERSION || !(buf[1] & PCP_RESPONSE_BIT))
        return PUNCH_ERR_MALFORMED;
    out->opcode = buf[1] & (uint8_t)~PCP_RESPONSE_BIT;
    out->result = buf[3];
    out->lifetime_s = punch_get32(buf + 4);
    out->epoch_s = punch_get32(buf + 8);
    size_t body = 0;
    if (out->opcode == PUNCH_PCP_OP_MAP)
        body = PUNCH_PCP_MAP_LEN;
    else if (out->opcode != PUNCH_PCP_OP_ANNOUNCE)
        return PUNCH_ERR_MALFORMED;
    /* An error answer may come without the body (§7.2 lets the server
     * copy the request's, but not every one does). */
    if (len == PUNCH_PCP_HEADER_LEN && out->result != PUNCH_PCP_SUCCESS)
        return 0;
    if (len < PUNCH_PCP_HEADER_LEN + body)
        return PUNCH_ERR_MALFORMED;
    if (body) {
        const uint8_t *b = buf + PUNCH_PCP_HEADER_LEN;
        memcpy(out->map.nonce, b, PUNCH_PCP_NONCE_LEN);
        out->map.protocol = b[12];
        out->map.internal_port = punch_get16(b + 16);
        get_address(b + 20, punch_get16(b + 18), &out->map.external);
    }
    size_t at = PUNCH_PCP_HEADER_LEN + body;
    return options_ok(buf + at, len - at) ? 0 : PUNCH_ERR_MALFORMED;
}

const char *punch_pcp_result_name(uint8_t result)
{
    static const char *const names[] = {
        "SUCCESS",        "UNSUPP_VERSION",  "NOT_AUTHORIZED",   "MALFORMED_REQUEST",
        "UNSUPP_OPCODE",  "UNSUPP_OPTION",   "MALFORMED_OPTION", "NETWORK_FAILURE",
        "NO_RESOURCES",   "UNSUPP_PROTOCOL", "USER_EX_QUOTA",    "CANNOT_PROVIDE_EXTERNAL",
        "ADDRESS_MISMATCH", "EXCESSIVE_REMOTE_PEERS",
    };
    return result < sizeof(names) / sizeof(names[0]) ? names[result] : "unknown result";
}
