/* SPDX-License-Identifier: MIT */
/* NAT behaviour classification: see natcheck.h. */
#include "core/natcheck.h"

int punch_natcheck_mapping(const punch_addr *m1, const punch_addr *m2, const punch_addr *m3,
                           punch_nat_mapping *out)
{
    if (!m1 || !m2 || m1->family == PUNCH_AF_NONE || m2->family == PUNCH_AF_NONE)
        return PUNCH_ERR_NOTFOUND;
    if (punch_addr_equal(m1, m2)) {
        *out = PUNCH_NAT_EIM;
        return 0;
    }
    if (!m3 || m3->family == PUNCH_AF_NONE)
        return PUNCH_ERR_NOTFOUND;
    *out = punch_addr_equal(m2, m3) ? PUNCH_NAT_ADM : PUNCH_NAT_APDM;
    return 0;
}

punch_nat_filtering punch_natcheck_filtering(bool answered_other_ip_and_port,
                                             bool answered_other_port)
{
    if (answered_other_ip_and_port)
        return PUNCH_NAT_EIF;
    return answered_other_port ? PUNCH_NAT_ADF : PUNCH_NAT_APDF;
}

/* The difference b - a of two ports, as the shortest signed step (a port
 * counter wraps around at 65536). */
static int port_step(uint16_t a, uint16_t b)
{
    return (int16_t)(uint16_t)(b - a);
}

int punch_natcheck_steady_step(const uint16_t *mapped, size_t n)
{
    if (n < 2)
        return 0;
    int first = port_step(mapped[0], mapped[1]);
    if (first == 0 || first > PUNCH_NATCHECK_MAX_STEP || first < -PUNCH_NATCHECK_MAX_STEP)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (port_step(mapped[i - 1], mapped[i]) != first)
            return 0;
    return first;
}

static punch_nat_ports classify_ports(const uint16_t *local, const uint16_t *mapped, size_t n,
                                      int *step)
{
    bool preserved = true;
    for (size_t i = 0; i < n; i++)
        preserved = preserved && local[i] == mapped[i];
    if (preserved)
        return PUNCH_NAT_PRESERVE;
    int s = punch_natcheck_steady_step(mapped, n);
    if (s == 0)
        return PUNCH_NAT_RANDOM;
    *step = s;
    return PUNCH_NAT_SEQUENTIAL;
}

int punch_natcheck_ports(const uint16_t *local, const uint16_t *mapped, size_t n,
                         punch_nat_ports *out, int *step)
{
    *step = 0;
    if (!local || !mapped || n < 3)
        return PUNCH_ERR_NOTFOUND;
    *out = classify_ports(local, mapped, n, step);
    return 0;
}
