/* SPDX-License-Identifier: MIT */
/* STUN Binding service: see binding.h. */
#include "server/binding.h"

#include <stdlib.h>
#include <string.h>

#include "wire/stun.h"

struct punch_binding_server {
    punch_binding_cfg cfg;
    punch_ratelimit *rate;
    punch_binding_counters counters;
};

static bool group_valid(const punch_binding_group *g)
{
    if (!g->has_alt)
        return g->local[0][0].family != PUNCH_AF_NONE &&
               (!g->has_second_port || (g->local[0][1].family == g->local[0][0].family &&
                                        g->local[0][1].port != g->local[0][0].port));
    /* RFC 5780 §4.1: answers from the other IP / port must come from a known,
     * concrete address so RESPONSE-ORIGIN and OTHER-ADDRESS can name it. */
    for (int i = 0; i < 2; i++)
        for (int p = 0; p < 2; p++)
            if (g->local[i][p].family != g->local[0][0].family ||
                punch_addr_is_any(&g->local[i][p]))
                return false;
    return !punch_addr_same_ip(&g->local[0][0], &g->local[1][0]) &&
           g->local[0][0].port != g->local[0][1].port;
}

int punch_binding_new(punch_binding_server **out, const punch_binding_cfg *cfg)
{
    if (!out || !cfg || cfg->n_groups == 0 || cfg->n_groups > PUNCH_BINDING_MAX_GROUPS)
        return PUNCH_ERR_INVAL;
    for (size_t i = 0; i < cfg->n_groups; i++)
        if (!group_valid(&cfg->groups[i]))
            return PUNCH_ERR_INVAL;
    punch_binding_server *srv = calloc(1, sizeof(*srv));
    if (!srv)
        return PUNCH_ERR_NOMEM;
    srv->cfg = *cfg;
    punch_ratelimit_cfg rate = cfg->rate;
    rate.sources_limited = &srv->counters.rate_limited_sources;
    int rc = punch_ratelimit_new(&srv->rate, &rate);
    if (rc != 0) {
        free(srv);
        return rc;
    }
    *out = srv;
    return 0;
}

void punch_binding_free(punch_binding_server *srv)
{
    if (!srv)
        return;
    punch_ratelimit_free(srv->rate);
    free(srv);
}

const punch_binding_counters *punch_binding_counters_get(const punch_binding_server *srv)
{
    return srv ? &srv->counters : NULL;
}

static int start_reply(punch_stun_writer *w, const punch_stun_msg *req, uint8_t *buf,
                       size_t cap, uint8_t cls)
{
    if (req->classic)
        return punch_stun_writer_init_classic(w, buf, cap, PUNCH_STUN_BINDING, cls,
                                              req->txid);
    return punch_stun_writer_init(w, buf, cap, PUNCH_STUN_BINDING, cls, req->txid);
}

/* An error answer (RFC 8489 §6.3.1.1): 400, or 420 listing what we do not
 * understand. Kept to the minimum (issue 12, finding 12): the code with an
 * empty reason phrase (RFC 8489 §14.8 asks fewer than 128 characters, and
 * the code says it all), the list. */
static int error_reply(punch_stun_writer *w, const punch_stun_msg *req, uint8_t *buf,
                       size_t cap, int code, const uint16_t *unknown, size_t n_unknown)
{
    start_reply(w, req, buf, cap, PUNCH_STUN_ERROR);
    punch_stun_put_error(w, code, "");
    if (n_unknown)
        punch_stun_put_unknown(w, unknown, n_unknown);
    if (req->fingerprint.value)
        punch_stun_put_fingerprint(w);
    return w->err;
}

/* Which socket answers: RFC 5780 §7.2 CHANGE-REQUEST flips the IP and/or
 * port index. Returns 0, 400 (bad value) or 420 (no alternate address). */
static int choose_origin(const punch_binding_group *g, const punch_stun_msg *req,
                         punch_binding_out *out)
{
    const punch_stun_attr *cr = punch_stun_find(req, PUNCH_STUN_ATTR_CHANGE_REQUEST);
    if (!cr)
        return 0;
    uint32_t flags;
    if (punch_stun_read_u32(cr, &flags) != 0)
        return 400;
    flags &= PUNCH_STUN_CHANGE_IP | PUNCH_STUN_CHANGE_PORT;
    if (flags && !g->has_alt)
        return 420; /* RFC 5780 §7.2: no alternate address to answer from */
    if (flags & PUNCH_STUN_CHANGE_IP)
        out->ip ^= 1;
    if (flags & PUNCH_STUN_CHANGE_PORT)
        out->port ^= 1;
    out->changed = flags != 0;
    return 0;
}

/* RFC 5780 §7.5: RESPONSE-PORT sends the answer to another port of the
 * same IP. Returns 0 or 400. */
static int choose_destination(const punch_stun_msg *req, punch_binding_out *out)
{
    const punch_stun_attr *rp = punch_stun_find(req, PUNCH_STUN_ATTR_RESPONSE_PORT);
    if (!rp)
        return 0;
    uint16_t port;
    if (punch_stun_read_port(rp, &port) != 0 || port == 0)
        return 400;
    out->dst.port = port;
    return 0;
}

static int success_reply(punch_stun_writer *w, const punch_binding_group *g,
                         const punch_binding_in *in, const punch_stun_msg *req,
                         const punch_binding_out *out, uint8_t *buf, size_t cap)
{
    const punch_addr *origin = out->changed ? &g->local[out->ip][out->port] : &in->dst;
    start_reply(w, req, buf, cap, PUNCH_STUN_SUCCESS);
    if (req->classic) {
        /* RFC 3489 §11.2: MAPPED-ADDRESS, SOURCE-ADDRESS, CHANGED-ADDRESS */
        punch_stun_put_addr(w, PUNCH_STUN_ATTR_MAPPED_ADDRESS, &in->src);
        if (g->has_alt) {
            punch_stun_put_addr(w, PUNCH_STUN_ATTR_SOURCE_ADDRESS, origin);
            punch_stun_put_addr(w, PUNCH_STUN_ATTR_CHANGED_ADDRESS, &g->local[1][1]);
        }
    } else {
        punch_stun_put_addr(w, PUNCH_STUN_ATTR_XOR_MAPPED_ADDRESS, &in->src);
        if (g->has_alt) {
            /* RFC 5780 §7.3, §7.4 */
            punch_stun_put_addr(w, PUNCH_STUN_ATTR_RESPONSE_ORIGIN, origin);
            punch_stun_put_addr(w, PUNCH_STUN_ATTR_OTHER_ADDRESS, &g->local[1][1]);
        }
    }
    /* RFC 5780 §7.6: echo PADDING's size so the client can test for
     * fragmentation; never more than the request itself carried. */
    const punch_stun_attr *pad = punch_stun_find(req, PUNCH_STUN_ATTR_PADDING);
    if (pad)
        punch_stun_put(w, PUNCH_STUN_ATTR_PADDING, pad->value, pad->len);
    if (req->fingerprint.value)
        punch_stun_put_fingerprint(w);
    return w->err;
}

int punch_binding_handle(punch_binding_server *srv, const punch_binding_in *in,
                         uint8_t *buf, size_t cap, punch_binding_out *out)
{
    if (!srv || !in || !buf || !out || in->group >= srv->cfg.n_groups ||
        in->ip < 0 || in->ip > 1 || in->port < 0 || in->port > 1)
        return PUNCH_ERR_INVAL;
    const punch_binding_group *g = &srv->cfg.groups[in->group];
    punch_binding_counters *c = &srv->counters;
    c->received++;

    punch_stun_msg req;
    if (punch_stun_decode(&req, in->data, in->len) != 0) {
        c->malformed++;
        return 0;
    }
    if (req.cls != PUNCH_STUN_REQUEST) {
        c->not_request++;
        return 0;
    }
    /* No error answers to other methods: a 400 would be larger than a bare
     * request, and punchd answers unauthenticated input with no more bytes
     * than it received except Binding answers (SPEC.md §4). */
    if (req.method != PUNCH_STUN_BINDING) {
        c->unsupported++;
        return 0;
    }
    if (!punch_ratelimit_allow(srv->rate, &in->src, in->now_ms)) {
        c->rate_limited++;
        return 0;
    }

    /* By default the answer leaves from where the request came in. */
    const punch_binding_out same_socket = {.ip = in->ip, .port = in->port, .dst = in->src};
    *out = same_socket;
    punch_stun_writer w;
    int code = 0, rc;
    uint16_t change_request = PUNCH_STUN_ATTR_CHANGE_REQUEST;
    if (req.n_unknown) {
        code = 420;
        rc = error_reply(&w, &req, buf, cap, 420, req.unknown, req.n_unknown);
    } else if ((code = choose_origin(g, &req, out)) != 0 ||
               (code = choose_destination(&req, out)) != 0) {
        /* An RFC 3489 client reads any answer to a CHANGE-REQUEST as coming
         * from the changed address (Debian's stun does), which would report
         * a NAT as open; silence is what it expects when no change happens. */
        if (req.classic && code == 420) {
            c->unsupported++;
            return 0;
        }
        *out = same_socket;
        rc = error_reply(&w, &req, buf, cap, code, &change_request, code == 420);
    } else {
        rc = success_reply(&w, g, in, &req, out, buf, cap);
    }
    if (rc != 0 || punch_stun_finish(&w, &out->len) != 0) {
        c->no_room++;
        return 0;
    }
    if (code)
        c->errors++;
    else
        c->answered++;
    return 1;
}
