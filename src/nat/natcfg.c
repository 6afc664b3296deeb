/* SPDX-License-Identifier: MIT */
/* NAT presets and the "key=value" parser: see nat.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nat/nat.h"

#define SECOND 1000ull
#define MINUTE (60 * SECOND)
#define HOUR (60 * MINUTE)

const char *punch_nat_mapping_name(punch_nat_mapping m)
{
    switch (m) {
    case PUNCH_NAT_EIM: return "eim";
    case PUNCH_NAT_ADM: return "adm";
    case PUNCH_NAT_APDM: return "apdm";
    }
    return "?";
}

const char *punch_nat_filtering_name(punch_nat_filtering f)
{
    switch (f) {
    case PUNCH_NAT_EIF: return "eif";
    case PUNCH_NAT_ADF: return "adf";
    case PUNCH_NAT_APDF: return "apdf";
    }
    return "?";
}

const char *punch_nat_ports_name(punch_nat_ports p)
{
    switch (p) {
    case PUNCH_NAT_PRESERVE: return "preserve";
    case PUNCH_NAT_SEQUENTIAL: return "sequential";
    case PUNCH_NAT_RANDOM: return "random";
    }
    return "?";
}

/* The P2P-friendly NAT of the draft's §5, with RFC 4787/5382 where the
 * draft is silent. Every behaviour field is set here, so presets start
 * from it and change only what makes them differ. */
static void set_p2p(punch_nat_cfg *c)
{
    c->mode = PUNCH_NAT_NAPT;
    c->mapping = PUNCH_NAT_EIM;       /* draft §5.1, §5.3; RFC 4787 REQ-1 */
    c->filtering = PUNCH_NAT_EIF;     /* RFC 4787 REQ-8: for application transparency */
    c->ports = PUNCH_NAT_PRESERVE;    /* draft §5.3.1: allowed, never at the cost of §5.3 */
    c->port_step = 1;
    c->port_min = 1024;
    c->port_max = 65535;
    c->pooling_arbitrary = false;     /* RFC 4787 REQ-2: paired */
    c->hairpin = true;                /* draft §5.6; RFC 4787 REQ-9 */
    c->refresh_inbound = false;       /* RFC 4787 REQ-6 asks outbound; inbound is a MAY */
    c->syn_rst = false;               /* RFC 5382 REQ-4: no answer to an unsolicited SYN */
    c->conntrack_trap = false;        /* a NAT with an input firewall, or not Linux */
    c->rst_closes = false;            /* RFC 5382 is silent; Linux conntrack does */
    c->isn_check = false;             /* the same */
    c->udp_timeout_ms = 5 * MINUTE;   /* draft §5.5; RFC 4787 REQ-5 */
    c->tcp_established_ms = 2 * HOUR + 4 * MINUTE; /* RFC 5382 REQ-5 */
    c->tcp_transitory_ms = 4 * MINUTE;             /* RFC 5382 REQ-5 */
    c->icmp_timeout_ms = 60 * SECOND;              /* RFC 5508 REQ-1 */
    c->max_mappings = 4096;
    c->max_mappings_per_host = 0; /* half of max_mappings */
    c->max_sessions = 0;
}

void punch_nat_cfg_default(punch_nat_cfg *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->max_events = 64;
    set_p2p(cfg);
}

int punch_nat_cfg_preset(punch_nat_cfg *c, const char *name)
{
    if (!c || !name)
        return PUNCH_ERR_INVAL;
    static const char *const names[] = {"p2p", "full-cone", "restricted-cone",
                                        "port-restricted-cone", "symmetric-sequential",
                                        "symmetric-random", "firewall", "basic-nat", "cgnat"};
    size_t i = 0;
    while (i < sizeof(names) / sizeof(names[0]) && strcmp(names[i], name) != 0)
        i++;
    if (i == sizeof(names) / sizeof(names[0]))
        return PUNCH_ERR_NOTFOUND;
    set_p2p(c);
    if (i > 0)
        c->hairpin = false; /* the classic NATs; cgnat turns it back on */
    switch (i) {
    case 1: break; /* full-cone: eim/eif */
    case 2: c->filtering = PUNCH_NAT_ADF; break;
    case 3: c->filtering = PUNCH_NAT_APDF; break;
    case 4:
        c->mapping = PUNCH_NAT_APDM;
        c->filtering = PUNCH_NAT_APDF;
        c->ports = PUNCH_NAT_SEQUENTIAL;
        break;
    case 5:
        c->mapping = PUNCH_NAT_APDM;
        c->filtering = PUNCH_NAT_APDF;
        c->ports = PUNCH_NAT_RANDOM;
        break;
    case 6:
        c->mode = PUNCH_NAT_FIREWALL;
        c->filtering = PUNCH_NAT_APDF;
        break;
    case 7:
        c->mode = PUNCH_NAT_BASIC;
        break;
    case 8:
        /* RFC 6888: many subscribers share a few addresses; ports drawn at
         * random (RFC 6056) since preserving them collides constantly. */
        c->filtering = PUNCH_NAT_APDF;
        c->ports = PUNCH_NAT_RANDOM;
        c->hairpin = true; /* RFC 6888 REQ-9 */
        c->max_mappings = 65536;
        c->max_mappings_per_host = 4096; /* RFC 6888 REQ-4: a share per subscriber */
        break;
    }
    return 0;
}

__attribute__((format(printf, 3, 4)))
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Match value v (length n) against a list; returns the index or -1. */
static int pick(const char *v, size_t n, const char *const *words, int count)
{
    for (int i = 0; i < count; i++)
        if (strlen(words[i]) == n && memcmp(words[i], v, n) == 0)
            return i;
    return -1;
}

static bool parse_uint(const char *v, size_t n, uint64_t max, uint64_t *out)
{
    if (n == 0 || n > 19)
        return false;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return false;
        x = x * 10 + (uint64_t)(v[i] - '0');
    }
    if (x > max)
        return false;
    *out = x;
    return true;
}

/* "300", "300s", "5m", "1500ms", "2h" -> milliseconds; 0 is refused. */
static bool parse_duration(const char *v, size_t n, uint64_t *ms)
{
    size_t digits = 0;
    while (digits < n && v[digits] >= '0' && v[digits] <= '9')
        digits++;
    uint64_t x, unit;
    const char *u = v + digits;
    size_t un = n - digits;
    if (un == 0 || (un == 1 && *u == 's'))
        unit = SECOND;
    else if (un == 2 && memcmp(u, "ms", 2) == 0)
        unit = 1;
    else if (un == 1 && *u == 'm')
        unit = MINUTE;
    else if (un == 1 && *u == 'h')
        unit = HOUR;
    else
        return false;
    if (!parse_uint(v, digits, UINT32_MAX, &x) || x == 0)
        return false;
    *ms = x * unit;
    return true;
}

/* Dotted-quad IPv4 (the pure layers cannot use inet_pton). */
static bool parse_ipv4(const char *v, size_t n, punch_addr *a)
{
    memset(a, 0, sizeof(*a));
    a->family = PUNCH_AF_INET;
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        size_t start = i;
        while (i < n && v[i] != '.')
            i++;
        uint64_t x;
        if (!parse_uint(v + start, i - start, 255, &x) || i - start > 3)
            return false;
        a->ip[part] = (uint8_t)x;
        if (part < 3) {
            if (i == n)
                return false;
            i++;
        }
    }
    return i == n;
}

static bool parse_publics(punch_nat_cfg *c, const char *v, size_t n)
{
    size_t count = 0, i = 0;
    while (i <= n) {
        size_t start = i;
        while (i < n && v[i] != '+')
            i++;
        if (count == PUNCH_NAT_MAX_PUBLIC || !parse_ipv4(v + start, i - start, &c->public_ip[count]))
            return false;
        count++;
        i++;
    }
    c->n_public = count;
    return true;
}

static bool parse_range(punch_nat_cfg *c, const char *v, size_t n)
{
    const char *dash = memchr(v, '-', n);
    uint64_t lo, hi;
    if (!dash || !parse_uint(v, (size_t)(dash - v), 65535, &lo) ||
        !parse_uint(dash + 1, n - (size_t)(dash - v) - 1, 65535, &hi) || lo == 0 || lo > hi)
        return false;
    c->port_min = (uint16_t)lo;
    c->port_max = (uint16_t)hi;
    return true;
}

/* One key=value token. Returns false when the value is bad. */
static bool apply_kv(punch_nat_cfg *c, const char *k, size_t kn, const char *v, size_t vn,
                     bool *known)
{
    static const char *const onoff[] = {"off", "on"};
    static const char *const maps[] = {"eim", "adm", "apdm"};
    static const char *const filts[] = {"eif", "adf", "apdf"};
    static const char *const ports[] = {"preserve", "sequential", "random"};
    static const char *const modes[] = {"napt", "basic", "firewall"};
    static const char *const refresh[] = {"outbound", "both"};
    static const char *const syn[] = {"drop", "rst"};
    static const char *const pooling[] = {"paired", "arbitrary"};
    uint64_t x;
    int i;
    *known = true;
#define KEY(s) (kn == sizeof(s) - 1 && memcmp(k, s, kn) == 0)
#define PICK(list) ((i = pick(v, vn, list, (int)(sizeof(list) / sizeof(list[0])))) >= 0)
    if (KEY("preset")) {
        char name[32];
        if (vn >= sizeof(name))
            return false;
        memcpy(name, v, vn);
        name[vn] = 0;
        return punch_nat_cfg_preset(c, name) == 0;
    }
    if (KEY("mapping"))
        return PICK(maps) ? (c->mapping = (punch_nat_mapping)i, true) : false;
    if (KEY("filtering"))
        return PICK(filts) ? (c->filtering = (punch_nat_filtering)i, true) : false;
    if (KEY("ports"))
        return PICK(ports) ? (c->ports = (punch_nat_ports)i, true) : false;
    if (KEY("mode"))
        return PICK(modes) ? (c->mode = (punch_nat_mode)i, true) : false;
    if (KEY("hairpin"))
        return PICK(onoff) ? (c->hairpin = i, true) : false;
    if (KEY("refresh"))
        return PICK(refresh) ? (c->refresh_inbound = i, true) : false;
    if (KEY("syn"))
        return PICK(syn) ? (c->syn_rst = i, true) : false;
    if (KEY("trap"))
        return PICK(onoff) ? (c->conntrack_trap = i, true) : false;
    if (KEY("rst-close"))
        return PICK(onoff) ? (c->rst_closes = i, true) : false;
    if (KEY("isn-check"))
        return PICK(onoff) ? (c->isn_check = i, true) : false;
    if (KEY("pooling"))
        return PICK(pooling) ? (c->pooling_arbitrary = i, true) : false;
    if (KEY("step"))
        return parse_uint(v, vn, 32768, &x) && x > 0 ? (c->port_step = (uint16_t)x, true) : false;
    if (KEY("port-range"))
        return parse_range(c, v, vn);
    if (KEY("udp-timeout"))
        return parse_duration(v, vn, &c->udp_timeout_ms);
    if (KEY("tcp-timeout"))
        return parse_duration(v, vn, &c->tcp_established_ms);
    if (KEY("tcp-transitory-timeout"))
        return parse_duration(v, vn, &c->tcp_transitory_ms);
    if (KEY("icmp-timeout"))
        return parse_duration(v, vn, &c->icmp_timeout_ms);
    if (KEY("mappings"))
        return parse_uint(v, vn, 1u << 30, &x) && x > 0 ? (c->max_mappings = x, true) : false;
    if (KEY("host-mappings"))
        return parse_uint(v, vn, 1u << 30, &x) && x > 0 ? (c->max_mappings_per_host = x, true)
                                                        : false;
    if (KEY("sessions"))
        return parse_uint(v, vn, 1u << 30, &x) && x > 0 ? (c->max_sessions = x, true) : false;
    if (KEY("public"))
        return parse_publics(c, v, vn);
#undef KEY
#undef PICK
    *known = false;
    return false;
}

int punch_nat_cfg_parse(punch_nat_cfg *c, const char *spec, char *err, size_t errlen)
{
    if (!c || !spec) {
        set_err(err, errlen, "no NAT spec");
        return PUNCH_ERR_INVAL;
    }
    if (err && errlen)
        err[0] = 0;
    const char *p = spec;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', n);
        if (n == 0) {
            set_err(err, errlen, "empty item in NAT spec '%s'", spec);
            return PUNCH_ERR_INVAL;
        }
        if (!eq) {
            char name[32];
            if (n >= sizeof(name) || (memcpy(name, p, n), name[n] = 0,
                                      punch_nat_cfg_preset(c, name) != 0)) {
                set_err(err, errlen, "unknown NAT preset '%.*s'", (int)n, p);
                return PUNCH_ERR_INVAL;
            }
        } else {
            bool known;
            size_t kn = (size_t)(eq - p);
            if (!apply_kv(c, p, kn, eq + 1, n - kn - 1, &known)) {
                set_err(err, errlen, known ? "bad value in '%.*s'" : "unknown NAT key in '%.*s'",
                        (int)n, p);
                return PUNCH_ERR_INVAL;
            }
        }
        if (!end)
            return 0;
        p = end + 1;
    }
}
