/* NAT behaviour classification: see natcheck.h. */
#include "core/natcheck.h"

punch_mapping punch_natcheck_mapping(const punch_addr *m1, const punch_addr *m2,
                                     const punch_addr *m3)
{
    if (!m1 || !m2 || m1->family == PUNCH_AF_NONE || m2->family == PUNCH_AF_NONE)
        return PUNCH_MAPPING_UNKNOWN;
    if (punch_addr_equal(m1, m2))
        return PUNCH_MAPPING_EIM;
    if (!m3 || m3->family == PUNCH_AF_NONE)
        return PUNCH_MAPPING_UNKNOWN;
    return punch_addr_equal(m2, m3) ? PUNCH_MAPPING_ADM : PUNCH_MAPPING_APDM;
}

punch_filtering punch_natcheck_filtering(bool answered_other_ip_and_port,
                                         bool answered_other_port)
{
    if (answered_other_ip_and_port)
        return PUNCH_FILTERING_EIF;
    return answered_other_port ? PUNCH_FILTERING_ADF : PUNCH_FILTERING_APDF;
}

/* The difference b - a of two ports, as the shortest signed step (a port
 * counter wraps around at 65536). */
static int port_step(uint16_t a, uint16_t b)
{
    return (int16_t)(uint16_t)(b - a);
}

punch_port_allocation punch_natcheck_ports(const uint16_t *local, const uint16_t *mapped,
                                           size_t n, int *step)
{
    if (step)
        *step = 0;
    if (!local || !mapped || n < 3)
        return PUNCH_PORTS_UNKNOWN;
    bool preserved = true;
    for (size_t i = 0; i < n; i++)
        preserved = preserved && local[i] == mapped[i];
    if (preserved)
        return PUNCH_PORTS_PRESERVE;
    int first = port_step(mapped[0], mapped[1]);
    if (first == 0 || first > PUNCH_NATCHECK_MAX_STEP || first < -PUNCH_NATCHECK_MAX_STEP)
        return PUNCH_PORTS_RANDOM;
    for (size_t i = 2; i < n; i++)
        if (port_step(mapped[i - 1], mapped[i]) != first)
            return PUNCH_PORTS_RANDOM;
    if (step)
        *step = first;
    return PUNCH_PORTS_SEQUENTIAL;
}

const char *punch_mapping_name(punch_mapping m)
{
    switch (m) {
    case PUNCH_MAPPING_EIM: return "eim";
    case PUNCH_MAPPING_ADM: return "adm";
    case PUNCH_MAPPING_APDM: return "apdm";
    default: return "unknown";
    }
}

const char *punch_filtering_name(punch_filtering f)
{
    switch (f) {
    case PUNCH_FILTERING_EIF: return "eif";
    case PUNCH_FILTERING_ADF: return "adf";
    case PUNCH_FILTERING_APDF: return "apdf";
    default: return "unknown";
    }
}

const char *punch_port_allocation_name(punch_port_allocation p)
{
    switch (p) {
    case PUNCH_PORTS_PRESERVE: return "preserve";
    case PUNCH_PORTS_SEQUENTIAL: return "sequential";
    case PUNCH_PORTS_RANDOM: return "random";
    default: return "unknown";
    }
}
