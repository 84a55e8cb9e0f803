#!/usr/bin/env bash
# The long runs that `.ci/run` keeps one short case of: issue 4's two-minute ping at 20
# packets/s across child and IKE rekeys initiated by both vpngw and strongSwan (zero loss),
# then every strongSwan interop case. Run as root, with the packages of README's requirements.
# Env: VPNGW_REKEY_SECS=120 (length of the rekey soak)
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "scripts/soak.sh: run as root (network namespaces)" >&2; exit 1; }
export VPNGW_REKEY_SECS=${VPNGW_REKEY_SECS:-120}
cargo test -p vpngw --test strongswan --locked -- --ignored --nocapture --test-threads 1
