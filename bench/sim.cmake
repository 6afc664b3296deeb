# SPDX-License-Identifier: MIT
# NAT scenarios per second on the simulator, with a pass-through baseline
# measured in the same run (bench/sim_scenarios.c).
add_executable(sim_scenarios ${CMAKE_CURRENT_LIST_DIR}/sim_scenarios.c)
target_link_libraries(sim_scenarios PRIVATE punch_sim)
target_compile_definitions(sim_scenarios PRIVATE _POSIX_C_SOURCE=200809L)

# Which technique gets through which pair of NATs, how often, how fast
# (bench/nat_matrix.sh writes docs/nat-matrix.md from it).
add_executable(nat_matrix ${CMAKE_CURRENT_LIST_DIR}/nat_matrix.c)
target_link_libraries(nat_matrix PRIVATE punch_sim)

# One line per seeded run (trace hash, events): diff two builds' outputs to
# show a refactoring of the agent changed nothing (bench/agent_fingerprint.c).
add_executable(agent_fingerprint ${CMAKE_CURRENT_LIST_DIR}/agent_fingerprint.c)
target_link_libraries(agent_fingerprint PRIVATE punch_sim)

# The share of time a peer has a path when paths die, with loss
# (bench/path_uptime.c; issue 11's every_call question).
add_executable(path_uptime ${CMAKE_CURRENT_LIST_DIR}/path_uptime.c)
target_link_libraries(path_uptime PRIVATE punch_sim)
