#!/usr/bin/env bash
# wake.sh — what waiting costs a packet that arrives after ~20 ms of other work: a reader
# in `epoll_wait` then `read`/`recvmsg` (vpngw's engine loop, and boringtun's) against one
# blocked in the `read`/`recvmsg` itself, for a TUN device and a UDP socket
# (crates/vpngw/examples/wake.rs; the two ways alternate every 50 packets). The two cold
# hops of an idle round trip through two gateways start this way (docs/performance.md).
#
# Usage: sudo bash bench/wake.sh [PACKETS]    # default 600 per source and way; ~1 min
# Env:   NSP=vpw (the namespace's prefix), CARGO_TARGET_DIR
# Needs: root (a namespace and a TUN device of its own, removed on exit), iproute2, cargo.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "wake.sh needs root: it creates a network namespace and a TUN device" >&2; exit 2; }
NS=${NSP:-vpw}-wake-$$
cargo build --release --locked -q -p vpngw --example wake
bin=${CARGO_TARGET_DIR:-target}/release/examples/wake
ip netns add "$NS"
trap 'ip netns del "$NS" 2>/dev/null || true' EXIT
ip netns exec "$NS" ip link set lo up
echo "== $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), kernel $(uname -r)"
ip netns exec "$NS" "$bin" "${1:-600}"
