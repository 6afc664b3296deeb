#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Every source file says its license (MIT, LICENSE) in an SPDX line near its
# top: C sources and headers, shell and Python scripts, CMake files.
# usage: check_spdx.sh REPO_DIR   (lists the files without one, fails if any)
set -u
cd "${1:?usage: check_spdx.sh REPO_DIR}" || exit 2
missing=0
while IFS= read -r f; do
    if ! head -n 3 "$f" | grep -q 'SPDX-License-Identifier: MIT'; then
        echo "check_spdx: $f has no 'SPDX-License-Identifier: MIT' in its first 3 lines"
        missing=$((missing + 1))
    fi
done < <(git ls-files -- '*.c' '*.h' '*.sh' '*.py' '*.cmake' '*.in' 'CMakeLists.txt' '*/CMakeLists.txt' \
             scripts .ci/run lab/punch-lab | sort -u | grep -v '^tests/fuzz/corpus/')
[ "$missing" = 0 ] && echo "check_spdx: every source file carries its SPDX line"
[ "$missing" = 0 ]
