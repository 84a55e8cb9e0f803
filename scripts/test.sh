#!/usr/bin/env bash
# Every test of vpngw: unit, property and integration tests of all crates, then the tests that
# need root (the lab's network namespaces). Run as root: `sudo -E scripts/test.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "scripts/test.sh: the lab tests create network namespaces; run as root (sudo -E $0)" >&2
  exit 1
fi
for tool in ip cargo bird gobgpd /usr/lib/frr/bgpd vtysh ping tcpdump swanctl; do
  command -v "$tool" >/dev/null || { echo "scripts/test.sh: '$tool' not found (see README: Requirements)" >&2; exit 1; }
done

echo "== unit, property and integration tests (no root needed)"
cargo test --workspace --all-targets --locked

echo "== lab tests against the kernel (root)"
cargo test -p vpngw --test lab --locked -- --ignored --test-threads 4 --skip demo_

echo "== the seed's scenarios measured: vpngw lab demo, one at a time (failover times need the CPU)"
cargo test -p vpngw --test lab --locked -- --ignored --test-threads 1 demo_

echo "== the daemon's BGP driver: two speakers in a network namespace of their own (root)"
cargo test -p vpngw --bin vpngw --locked -- --ignored bgpd::

echo "== the daemon's kernel routes over rtnetlink, in a network namespace of their own (root)"
cargo test -p vpngw --bin vpngw --locked -- --ignored daemon::tunnel::kernel::

echo "== the daemon in a network namespace: TUN, sockets, API, state, BGP over a tunnel (root)"
cargo test -p vpngw --test daemon --locked -- --ignored

echo "== IKEv2/ESP interop with strongSwan (kernel-libipsec), every proposal pair, both roles (root)"
cargo test -p vpngw --test strongswan --locked -- --ignored

echo "== BGP interop with real BIRD 2, GoBGP and FRR in network namespaces (root)"
cargo test -p bgp --test bird --test gobgp --test frr --locked -- --ignored

echo "== fuzz smoke: every cargo-fuzz target for ${FUZZ_SECONDS:=20} s from its seed corpus (nightly, else the default toolchain with RUSTC_BOOTSTRAP=1)"
FUZZ_SECONDS=$FUZZ_SECONDS bash fuzz/smoke.sh
