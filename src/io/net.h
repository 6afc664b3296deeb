/* SPDX-License-Identifier: MIT */
/*
 * Sockets and addresses: the only place (with the rest of src/io) that
 * touches the kernel's network API.
 */
#ifndef PUNCH_IO_NET_H
#define PUNCH_IO_NET_H

#include <sys/socket.h>

#include "punch/punch.h"

/* "255.255.255.255:65535" / "[ffff:...:ffff]:65535" with room to spare. */
#define PUNCH_ADDR_STRLEN 64

/* Parse "IPv4", "IPv4:PORT", "[IPv6]:PORT", "[IPv6]" or bare "IPv6";
 * default_port is used when no port is written. Returns 0 or PUNCH_ERR_INVAL. */
int punch_addr_parse(const char *text, uint16_t default_port, punch_addr *out);
/* Write "IP:PORT" or "[IP]:PORT" into buf (PUNCH_ADDR_STRLEN bytes). */
const char *punch_addr_format(const punch_addr *a, char buf[PUNCH_ADDR_STRLEN]);

/* A NAT64 prefix "IPv6/LEN" (RFC 6052 §2.2: LEN 32, 40, 48, 56, 64 or
 * 96; bare IPv6: /96) into *out. Returns 0, or PUNCH_ERR_INVAL with why
 * (why_len bytes, NUL-terminated) saying what is wrong; *out untouched. */
int punch_nat64_prefix_parse(const char *text, punch_nat64_prefix *out, char *why, size_t why_len);

/* Like punch_addr_parse, but HOST may also be a name looked up with
 * getaddrinfo (the first answer is taken). Returns 0, PUNCH_ERR_INVAL (bad
 * syntax) or PUNCH_ERR_NOTFOUND (the name does not resolve). */
int punch_addr_resolve(const char *text, uint16_t default_port, punch_addr *out);
/* The same, every address the name has (a name with several addresses
 * names several servers), each once, in the resolver's order, up to cap,
 * into out[0..*n). Returns 0, PUNCH_ERR_INVAL or PUNCH_ERR_NOTFOUND. */
int punch_addr_resolve_all(const char *text, uint16_t default_port, punch_addr *out, size_t cap,
                           size_t *n);

/* The local IP the kernel would send from towards dst (a route lookup with a
 * connected UDP socket: nothing is sent). Returns 0 or PUNCH_ERR_IO. */
int punch_udp_route_source(const punch_addr *dst, punch_addr *src_ip);

socklen_t punch_addr_to_sockaddr(const punch_addr *a, struct sockaddr_storage *ss);
void punch_addr_from_sockaddr(const struct sockaddr *sa, punch_addr *out);

/* A non-blocking, close-on-exec socket of a's family and this type
 * (SOCK_DGRAM, SOCK_STREAM); an IPv6 one is v6-only, so 0.0.0.0 and :: can
 * both be bound. Returns the fd, or PUNCH_ERR_IO with errno set. */
int punch_socket_for(const punch_addr *a, int type);

/* A non-blocking UDP socket bound to a (IPv6 sockets are v6-only, so
 * 0.0.0.0 and :: can both be bound). With a wildcard address it also asks for
 * each datagram's destination (IP_PKTINFO) so answers can leave from the
 * address that was asked. *bound gets the address actually bound.
 * Returns the fd, or PUNCH_ERR_IO with errno set. */
int punch_udp_bind(const punch_addr *a, punch_addr *bound);

/* Batched datagram I/O with recvmmsg/sendmmsg. */
#define PUNCH_UDP_BATCH 64
#define PUNCH_UDP_MTU 2048

typedef struct punch_udp_batch punch_udp_batch;

/* Returns NULL when out of memory. */
punch_udp_batch *punch_udp_batch_new(void);
void punch_udp_batch_free(punch_udp_batch *b);

/* Receive up to PUNCH_UDP_BATCH datagrams. Returns how many (0 when none is
 * waiting) or PUNCH_ERR_IO. `local` is the socket's own bound address, used
 * as the destination when the kernel did not report one. */
int punch_udp_recv(int fd, punch_udp_batch *b, const punch_addr *local);
/* Datagram i of the last receive. */
void punch_udp_received(const punch_udp_batch *b, unsigned i, const uint8_t **data,
                        size_t *len, punch_addr *src, punch_addr *dst);

/* Queue a datagram for the next send; src (may be NULL) picks the source IP
 * on a wildcard socket; ttl, when not 0, is its IP TTL (IPv6 hop limit).
 * Returns a buffer of PUNCH_UDP_MTU bytes to fill, or NULL when the batch is
 * full (send it first). */
uint8_t *punch_udp_queue(punch_udp_batch *b, const punch_addr *dst, const punch_addr *src,
                         uint8_t ttl);
/* Queue len bytes at data as punch_udp_queue does, but not copied: data
 * must stay as it is until the batch is sent (punchd relaying what it just
 * received, before its next receive; the driver sending from the agent's
 * queue, before the agent queues more). Returns false when the batch is
 * full (send it first). */
bool punch_udp_queue_ref(punch_udp_batch *b, const punch_addr *dst, const punch_addr *src,
                         uint8_t ttl, const uint8_t *data, size_t len);
/* Set the length of the datagram last returned by punch_udp_queue. */
void punch_udp_queue_len(punch_udp_batch *b, size_t len);
/* Send everything queued, then empty the queue. Returns how many datagrams
 * the kernel did not take (dropped: full socket buffer or an error). */
unsigned punch_udp_send(int fd, punch_udp_batch *b);
unsigned punch_udp_queued(const punch_udp_batch *b);

#endif
