/* SPDX-License-Identifier: MIT */
/* Streams (punch/stream.h is the public part): what only libpunch uses. */
#ifndef PUNCH_STREAM_STREAM_H
#define PUNCH_STREAM_STREAM_H

#include "driver/driver.h"
#include "punch/stream.h"

/* CRC32c of n bytes as SCTP stores it in its common header (the value
 * usrsctp_crc32c returns), by the CPU's instruction where there is one. */
uint32_t punch_sctp_crc32c(const uint8_t *p, size_t n);
/* Fill in an SCTP packet's checksum (len >= 12, the common header). */
void punch_sctp_put_checksum(uint8_t *pkt, size_t len);

#endif
