#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The pure layers (SPEC.md §2: wire, core, server, nat, crypto) never touch
# sockets, clocks or randomness. Two checks, so neither a macro nor a hidden
# call slips through: the sources may not include system headers for those,
# and the compiled libraries may not call the functions.
#
# usage: check_layers.sh [--dir SRC_DIR]... [--lib LIBRARY.a]...
set -u
dirs=() libs=()
while [ $# -gt 0 ]; do
    case "$1" in
        --dir) dirs+=("$2"); shift 2 ;;
        --lib) libs+=("$2"); shift 2 ;;
        *) echo "check_layers: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
fail=0

header_re='^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"](sys/socket\.h|sys/un\.h|sys/epoll\.h|sys/select\.h|sys/random\.h|sys/time\.h|sys/timerfd\.h|sys/signalfd\.h|netinet/[^>"]*|arpa/[^>"]*|net/[^>"]*|linux/[^>"]*|netdb\.h|poll\.h|time\.h|unistd\.h|fcntl\.h|ifaddrs\.h|io/[^>"]*|driver/[^>"]*|stream/[^>"]*)[>"]'
for d in "${dirs[@]}"; do
    while IFS= read -r hit; do
        echo "check_layers: forbidden include in a pure layer: $hit" >&2
        fail=1
    done < <(grep -nEH "$header_re" "$d"/*.c "$d"/*.h 2>/dev/null)
done

# Calls that reach the network, a clock, randomness or files. libsodium's
# key generators draw randomness themselves; only the *_seed_keypair forms are
# allowed.
symbol_re='^(socket|bind|connect|listen|accept4?|send|sendto|sendmsg|sendmmsg|recv|recvfrom|recvmsg|recvmmsg|poll|ppoll|select|pselect|epoll_[a-z_]+|clock_gettime|gettimeofday|time|clock|timespec_get|rand|rand_r|random|srand|srandom|[dl]rand48|getrandom|getentropy|arc4random[a-z_]*|randombytes[a-z_]*|crypto_[a-z0-9_]+_keygen|crypto_[a-z0-9_]+_keypair|open|openat|fopen|read|write|getaddrinfo|gethostbyname)$'
for lib in "${libs[@]}"; do
    if [ ! -f "$lib" ]; then
        echo "check_layers: no such library: $lib" >&2
        fail=1
        continue
    fi
    while IFS= read -r sym; do
        case "$sym" in *_seed_keypair) continue ;; esac
        echo "check_layers: $(basename "$lib") calls $sym" >&2
        fail=1
    done < <(nm -u --format=just-symbols "$lib" | sed 's/@.*//' | grep -E "$symbol_re" | sort -u)
done

if [ "$fail" = 0 ]; then
    echo "check_layers: ${#dirs[@]} source folders and ${#libs[@]} libraries are pure"
fi
exit "$fail"
