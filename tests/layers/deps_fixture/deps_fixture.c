/* SPDX-License-Identifier: MIT */
/* A "layer" that declares it uses wire only, and includes and calls core:
 * check_deps.sh must reject it. This is the test that shows the dependency
 * check can fail. */
#include "core/natcheck.h"
#include "punch/punch.h"

int deps_fixture(void);

int deps_fixture(void)
{
    punch_agent *a = NULL;
    return punch_agent_new(&a, NULL, 0);
}
