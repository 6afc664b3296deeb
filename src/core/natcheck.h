/*
 * NAT behaviour discovery (RFC 5780 §4), the pure part: what the answers
 * observed by `punch natcheck` say about the NAT, in the vocabulary of
 * RFC 4787 (SPEC.md §5). The probing itself lives in apps/punch/natcheck.c.
 */
#ifndef PUNCH_CORE_NATCHECK_H
#define PUNCH_CORE_NATCHECK_H

#include "punch/punch.h"

typedef enum {
    PUNCH_MAPPING_UNKNOWN,
    PUNCH_MAPPING_EIM,   /* endpoint-independent */
    PUNCH_MAPPING_ADM,   /* address-dependent */
    PUNCH_MAPPING_APDM,  /* address-and-port-dependent */
} punch_mapping;

typedef enum {
    PUNCH_FILTERING_UNKNOWN,
    PUNCH_FILTERING_EIF,
    PUNCH_FILTERING_ADF,
    PUNCH_FILTERING_APDF,
} punch_filtering;

typedef enum {
    PUNCH_PORTS_UNKNOWN,
    PUNCH_PORTS_PRESERVE,    /* public port = local port */
    PUNCH_PORTS_SEQUENTIAL,  /* each new mapping = previous + step */
    PUNCH_PORTS_RANDOM,
} punch_port_allocation;

/* The largest step still called sequential: beyond it, consecutive
 * mappings are as good as unpredictable for port prediction (draft §3.4). */
#define PUNCH_NATCHECK_MAX_STEP 64

/* RFC 5780 §4.3: m1 = mapping seen by the primary address, m2 = by the
 * alternate IP with the primary port, m3 = by the alternate IP and port
 * (m3 only needed when m1 != m2). Returns UNKNOWN when a needed one is
 * missing (family PUNCH_AF_NONE). */
punch_mapping punch_natcheck_mapping(const punch_addr *m1, const punch_addr *m2,
                                     const punch_addr *m3);

/* RFC 5780 §4.4: did an answer come back when the server was asked to
 * answer from its other IP and port (test II), or its other port only
 * (test III)? */
punch_filtering punch_natcheck_filtering(bool answered_other_ip_and_port,
                                         bool answered_other_port);

/* From n fresh mappings made one after the other (local port, public port
 * pairs): preserve when every public port equals its local port; sequential
 * when each public port is the previous one plus the same non-zero step of at
 * most PUNCH_NATCHECK_MAX_STEP (either sign; *step gets it); else random.
 * Needs n >= 3 for a verdict. */
punch_port_allocation punch_natcheck_ports(const uint16_t *local, const uint16_t *mapped,
                                           size_t n, int *step);

const char *punch_mapping_name(punch_mapping m);       /* "eim", "adm", "apdm", "unknown" */
const char *punch_filtering_name(punch_filtering f);   /* "eif", "adf", "apdf", "unknown" */
const char *punch_port_allocation_name(punch_port_allocation p); /* "preserve", ... */

#endif
