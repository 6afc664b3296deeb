/*
 * punch — peer-to-peer connectivity across NATs and firewalls.
 *
 * The one public header of libpunch. Everything here is sans-I/O unless it
 * says otherwise: no function below opens a socket, reads a clock or draws
 * randomness; the caller passes time in and takes bytes out.
 */
#ifndef PUNCH_PUNCH_H
#define PUNCH_PUNCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Error codes: every function returning int gives 0 or one of these. */
enum {
    PUNCH_OK = 0,
    PUNCH_ERR_INVAL = -1,       /* a caller's argument is out of range */
    PUNCH_ERR_NOBUFS = -2,      /* the caller's buffer is too small */
    PUNCH_ERR_MALFORMED = -3,   /* input bytes are not well-formed */
    PUNCH_ERR_INTEGRITY = -4,   /* a MAC, checksum or signature did not verify */
    PUNCH_ERR_NOMEM = -5,       /* allocation failed */
    PUNCH_ERR_NOTFOUND = -6,    /* the thing asked for is not there */
    PUNCH_ERR_UNSUPPORTED = -7, /* understood, but not supported */
    PUNCH_ERR_LIMIT = -8,       /* a configured capacity or rate was reached */
    PUNCH_ERR_IO = -9,          /* a system call failed (src/io only); see errno */
};

/* A static, human-readable description of a PUNCH_ERR_* value. */
const char *punch_strerror(int err);

/* The library version, "MAJOR.MINOR.PATCH". */
const char *punch_version(void);

/* A transport address without socket headers, so the pure layers can use it.
 * family is PUNCH_AF_INET (ip[0..3] used) or PUNCH_AF_INET6 (ip[0..15]);
 * port is in host byte order. */
enum { PUNCH_AF_NONE = 0, PUNCH_AF_INET = 4, PUNCH_AF_INET6 = 6 };

typedef struct punch_addr {
    uint8_t family;
    uint16_t port;
    uint8_t ip[16];
} punch_addr;

/* True when both name the same family, IP and port. */
bool punch_addr_equal(const punch_addr *a, const punch_addr *b);
/* True when both name the same family and IP, whatever the ports. */
bool punch_addr_same_ip(const punch_addr *a, const punch_addr *b);
/* True for 0.0.0.0 and ::. */
bool punch_addr_is_any(const punch_addr *a);

#ifdef __cplusplus
}
#endif
#endif
