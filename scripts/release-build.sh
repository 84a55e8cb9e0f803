#!/usr/bin/env bash
# release-build.sh — the release binary, optimised with a profile of the gateway carrying
# traffic (profile-guided optimisation, PGO). Prints the binary's path on its last line.
#
#   sudo bash scripts/release-build.sh      # ~11 min; root: the training runs in namespaces
#   install -m 755 "$(sudo bash scripts/release-build.sh | tail -1)" /usr/local/bin/vpngw
#
# Why: on an idle tunnel every packet finds the engine's code and data cold, after ~20 ms in
# which other work ran, and each page the path touches then costs a TLB miss (in a VM, a
# two-dimensional page walk). `cargo build --release` lays the code out by LLVM's guesses,
# error paths beside hot ones; with the profile the hot paths are laid out together, their
# branches the way the traffic goes, cold code apart. An idle round trip through two gateways
# is 3-9 % shorter than with `cargo build --release` of the same source (docs/performance.md),
# and bulk throughput is unchanged.
#
# 1. an instrumented build (`-Cprofile-generate`), in $TARGET/pgo-generate/<host triple>;
# 2. training: bench/throughput.sh runs two instrumented daemons in its lab topology (5,000
#    idle pings and bulk TCP, both ways, aes128gcm16 then chacha20poly1305), and each writes
#    its profile when it stops. The idle pings weigh in the profile beside the millions of
#    bulk packets: with 1,500 instead, idle RTT came out ~2 % longer;
# 3. llvm-profdata (rustup's llvm-tools component, added if missing) merges the profiles;
# 4. the optimised build (`-Cprofile-use`), $TARGET/pgo/<host triple>/release/vpngw.
#
# The profile belongs to this source: it is made anew by every run, never kept.
# Env: CARGO_TARGET_DIR (default ./target; written as $TARGET above), NSP=vpgo (the training's
# namespace prefix, as bench/throughput.sh's), RUSTFLAGS is replaced (the profile flags only).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "release-build.sh needs root: the training run creates network namespaces" >&2; exit 2; }
TARGET=$(realpath -m "${CARGO_TARGET_DIR:-target}")
WORK=$(mktemp -d /tmp/vpngw-pgo.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

profdata=$(find "$(rustc --print sysroot)" -name llvm-profdata -type f 2>/dev/null | head -1)
if [ -z "$profdata" ]; then
  echo "== adding rustup's llvm-tools component (llvm-profdata)"
  rustup component add llvm-tools
  profdata=$(find "$(rustc --print sysroot)" -name llvm-profdata -type f | head -1)
fi
[ -x "$profdata" ] || { echo "no llvm-profdata in $(rustc --print sysroot)" >&2; exit 1; }

# An explicit --target keeps RUSTFLAGS off the build scripts and proc macros, which would
# otherwise be instrumented and profiled too.
HOST=$(rustc -vV | sed -n 's/^host: //p')

echo "== 1/4 instrumented build"
RUSTFLAGS="-Cprofile-generate=$WORK/raw" \
  cargo build --release --locked -p vpngw --bin vpngw --target "$HOST" --target-dir "$TARGET/pgo-generate"

echo "== 2/4 training: two instrumented daemons carry idle pings and bulk TCP (bench/throughput.sh)"
if ! IMPLS=vpngw QUICK=1 ROW_PINGS=5000 NSP="${NSP:-vpgo}" VPNGW="$TARGET/pgo-generate/$HOST/release/vpngw" \
  bash bench/throughput.sh >"$WORK/training.log" 2>&1; then
  tail -20 "$WORK/training.log" >&2
  echo "the training run failed" >&2
  exit 1
fi
grep -E '^vpngw ' "$WORK/training.log" | head -2 | sed 's/^/   /'
ls "$WORK"/raw/*.profraw >/dev/null 2>&1 || { echo "the training run wrote no profile" >&2; exit 1; }

echo "== 3/4 merging the profiles"
"$profdata" merge -o "$WORK/vpngw.profdata" "$WORK"/raw/*.profraw

echo "== 4/4 optimised build"
RUSTFLAGS="-Cprofile-use=$WORK/vpngw.profdata" \
  cargo build --release --locked -p vpngw --bin vpngw --target "$HOST" --target-dir "$TARGET/pgo"
echo "$TARGET/pgo/$HOST/release/vpngw"
