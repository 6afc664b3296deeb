/* SPDX-License-Identifier: MIT */
/* libFuzzer target: PCP answers from the gateway (src/wire/pcp.c). Any
 * bytes: refused, or read into a response whose fields come from the
 * input; a MAP answer's body, written back as a request, keeps its nonce,
 * protocol, ports and external address. */
#include <stdint.h>
#include <string.h>

#include "punch/punch.h"
#include "wire/pcp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    punch_pcp_response r;
    int rc = punch_pcp_decode_response(data, size, &r);
    if (rc != 0) {
        if (rc != PUNCH_ERR_MALFORMED)
            __builtin_trap();
        return 0;
    }
    if (size < PUNCH_PCP_HEADER_LEN || size > PUNCH_PCP_MAX_LEN || size % 4 ||
        data[0] != PUNCH_PCP_VERSION || r.result != data[3])
        __builtin_trap();
    if (r.opcode != PUNCH_PCP_OP_MAP || size < PUNCH_PCP_HEADER_LEN + PUNCH_PCP_MAP_LEN)
        return 0;
    static const punch_addr client = {.family = PUNCH_AF_INET, .ip = {10, 0, 0, 1}};
    uint8_t out[PUNCH_PCP_MAX_LEN];
    size_t len;
    if (punch_pcp_encode_map(&client, r.lifetime_s, &r.map, out, sizeof(out), &len) != 0 ||
        len != PUNCH_PCP_HEADER_LEN + PUNCH_PCP_MAP_LEN)
        __builtin_trap();
    const uint8_t *in = data + PUNCH_PCP_HEADER_LEN, *body = out + PUNCH_PCP_HEADER_LEN;
    /* Nonce, protocol, internal and external port, external address. */
    if (memcmp(body, in, 13) != 0 || memcmp(body + 16, in + 16, 20) != 0)
        __builtin_trap();
    return 0;
}
