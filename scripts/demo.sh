#!/usr/bin/env bash
# The seed's scenarios in the lab: builds vpngw and runs `vpngw lab demo` as root.
# Extra arguments go to `vpngw lab demo` (e.g. --method 2).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p vpngw --locked
bin="${CARGO_TARGET_DIR:-target}/release/vpngw"
if [ "$(id -u)" = 0 ]; then
  exec "$bin" lab demo "$@"
fi
exec sudo "$bin" lab demo "$@"
