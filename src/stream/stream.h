/* SPDX-License-Identifier: MIT */
/* Streams as libpunch's own code sees them: the public part
 * (punch/stream.h) with the driver's internal calls it goes with. */
#ifndef PUNCH_STREAM_STREAM_H
#define PUNCH_STREAM_STREAM_H

#include "driver/driver.h"
#include "punch/stream.h"

#endif
