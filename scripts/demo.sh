#!/usr/bin/env bash
# The seed's scenarios in the lab: builds vpngw and runs `vpngw lab demo` as root.
# Extra arguments go to `vpngw lab demo` (e.g. --method 2).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p vpngw --locked
if [ "$(id -u)" = 0 ]; then
  exec target/release/vpngw lab demo "$@"
fi
exec sudo target/release/vpngw lab demo "$@"
