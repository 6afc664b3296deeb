#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Fresh `punch connect` runs under 10 % and 20 % loss each way on both lab
# access links (lab/tests/loss.sh), asserting issue 10's targets: 10 % ->
# >= 95 % direct within 2 s, 20 % -> >= 90 % within 5 s. Needs root.
# usage: bench/loss_bench.sh [RUNS per level, default 40]
# environment: LOSS_LEVELS ("10 20"), LOSS_ASSERT (target; 0: print only)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export PUNCH_BUILD_DIR=${PUNCH_BUILD_DIR:-$root/build}
export PUNCH_LAB=$root/lab/punch-lab
LOSS_RUNS=${1:-40} LOSS_ASSERT=${LOSS_ASSERT:-target} exec bash "$root/lab/tests/loss.sh"
