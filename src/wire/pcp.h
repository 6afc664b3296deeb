/* SPDX-License-Identifier: MIT */
/*
 * PCP, the Port Control Protocol (RFC 6887): the MAP and ANNOUNCE messages
 * a host sends to its gateway (UDP port 5351) to ask for a port mapping,
 * and the gateway's answers. Debian packages no PCP client library, so
 * this is a small codec of our own: bytes <-> structs, nothing else.
 *
 * Every address on the wire is 16 bytes: an IPv4 one IPv4-mapped
 * (::ffff:a.b.c.d, RFC 6887 §5). Options are skipped when read (each
 * checked for length) and never written.
 */
#ifndef PUNCH_WIRE_PCP_H
#define PUNCH_WIRE_PCP_H

#include "punch/punch.h"

#define PUNCH_PCP_PORT 5351         /* RFC 6887 §19.1 */
#define PUNCH_PCP_VERSION 2         /* RFC 6887 §7 */
#define PUNCH_PCP_MAX_LEN 1100      /* RFC 6887 §7: no PCP message is longer */
#define PUNCH_PCP_HEADER_LEN 24
#define PUNCH_PCP_MAP_LEN 36        /* the MAP opcode's body (§11.1) */
#define PUNCH_PCP_NONCE_LEN 12

enum { PUNCH_PCP_OP_ANNOUNCE = 0, PUNCH_PCP_OP_MAP = 1 };
enum { PUNCH_PCP_PROTO_TCP = 6, PUNCH_PCP_PROTO_UDP = 17 };

/* Result codes (RFC 6887 §7.4). */
enum {
    PUNCH_PCP_SUCCESS = 0,
    PUNCH_PCP_UNSUPP_VERSION = 1,
    PUNCH_PCP_NOT_AUTHORIZED = 2,
    PUNCH_PCP_MALFORMED_REQUEST = 3,
    PUNCH_PCP_UNSUPP_OPCODE = 4,
    PUNCH_PCP_UNSUPP_OPTION = 5,
    PUNCH_PCP_MALFORMED_OPTION = 6,
    PUNCH_PCP_NETWORK_FAILURE = 7,
    PUNCH_PCP_NO_RESOURCES = 8,
    PUNCH_PCP_UNSUPP_PROTOCOL = 9,
    PUNCH_PCP_USER_EX_QUOTA = 10,
    PUNCH_PCP_CANNOT_PROVIDE_EXTERNAL = 11,
    PUNCH_PCP_ADDRESS_MISMATCH = 12,
    PUNCH_PCP_EXCESSIVE_REMOTE_PEERS = 13,
};

/* A MAP request's or response's body. In a request, external is the
 * suggested external endpoint (family PUNCH_AF_NONE: no suggestion); in
 * a response, the one assigned. */
typedef struct punch_pcp_map {
    uint8_t nonce[PUNCH_PCP_NONCE_LEN];
    uint8_t protocol;           /* PUNCH_PCP_PROTO_*; 0: all (only with port 0) */
    uint16_t internal_port;
    punch_addr external;
} punch_pcp_map;

typedef struct punch_pcp_response {
    uint8_t opcode;             /* PUNCH_PCP_OP_* */
    uint8_t result;             /* PUNCH_PCP_SUCCESS or an error */
    uint32_t lifetime_s;        /* how long the mapping lasts (or an error stays) */
    uint32_t epoch_s;           /* the server's epoch (§8.5): a jump back means it lost state */
    punch_pcp_map map;          /* MAP only */
} punch_pcp_response;

/* A MAP request from client (our address as the gateway sees it, port
 * unused) for lifetime_s (0: delete the mapping, §15). Returns 0,
 * PUNCH_ERR_NOBUFS or PUNCH_ERR_INVAL (bad family). */
int punch_pcp_encode_map(const punch_addr *client, uint32_t lifetime_s, const punch_pcp_map *map,
                         uint8_t *buf, size_t cap, size_t *len);

/* An ANNOUNCE request (§14.1): does the gateway speak PCP? Returns as above. */
int punch_pcp_encode_announce(const punch_addr *client, uint8_t *buf, size_t cap, size_t *len);

/* Read a response (version 2, the R bit set, a known opcode, its body
 * complete, well-formed options, a length that is a multiple of 4 and at
 * most 1100). Returns 0, PUNCH_ERR_MALFORMED or PUNCH_ERR_INVAL (NULL). */
int punch_pcp_decode_response(const uint8_t *buf, size_t len, punch_pcp_response *out);

/* A result code's name in RFC 6887 (e.g. "NOT_AUTHORIZED"). */
const char *punch_pcp_result_name(uint8_t result);

#endif
