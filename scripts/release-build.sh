#!/usr/bin/env bash
# release-build.sh — the release binary, optimised with a profile of the gateway carrying
# traffic: profile-guided optimisation (PGO) of the compiled code, then BOLT's layout of the
# linked binary. Prints the binary's path on its last line.
#
#   sudo bash scripts/release-build.sh      # ~15 min; root: the training runs in namespaces
#   install -m 755 "$(sudo bash scripts/release-build.sh | tail -1)" /usr/local/bin/vpngw
#
# Why: on an idle tunnel every packet finds the engine's code and data cold, after ~20 ms in
# which other work ran, and each page the path touches then costs a TLB miss (in a VM, a
# two-dimensional page walk). `cargo build --release` lays the code out by LLVM's guesses,
# error paths beside hot ones; with the profile the hot paths are laid out together, their
# branches the way the traffic goes, cold code apart. PGO does that inside the Rust code;
# BOLT, on the linked binary, for all of it — the Rust code, std and AWS-LC's C — and moves
# the hot functions of every one next to each other. An idle round trip through two
# gateways is 3-9 % shorter with PGO than with `cargo build --release` of the same source,
# and 2-4 % shorter again with BOLT (docs/performance.md); bulk throughput is unchanged.
#
# 1. an instrumented build (`-Cprofile-generate`), in $TARGET/pgo-generate/<host triple>;
# 2. training: bench/throughput.sh runs two instrumented daemons in its lab topology (5,000
#    idle pings and bulk TCP, both ways, aes128gcm16 then chacha20poly1305), and each writes
#    its profile when it stops. The idle pings weigh in the profile beside the millions of
#    bulk packets: with 1,500 instead, idle RTT came out ~2 % longer;
# 3. llvm-profdata (rustup's llvm-tools component, added if missing) merges the profiles;
# 4. the optimised build (`-Cprofile-use`), $TARGET/pgo/<host triple>/release/vpngw, linked
#    with its relocations (`--emit-relocs`), which BOLT needs to move functions;
# 5. BOLT (llvm-bolt and merge-fdata, Debian's bolt-15, installed if missing): an
#    instrumented copy of that binary is trained as in 2, and the binary rewritten after its
#    profile (blocks in ext-TSP order, functions clustered with hfsort+, cold blocks split
#    off; debug line tables kept), $TARGET/bolt/vpngw. Where BOLT cannot be had, the script
#    says so and the PGO binary of step 4 is the result.
#
# The profiles belong to this source: they are made anew by every run, never kept.
# Env: CARGO_TARGET_DIR (default ./target; written as $TARGET above), NSP=vpgo (the training's
# namespace prefix, as bench/throughput.sh's), RUSTFLAGS is replaced (the profile flags only),
# BOLT=path of llvm-bolt (BOLT=0: stop after step 4).
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

echo "== 1/5 instrumented build"
RUSTFLAGS="-Cprofile-generate=$WORK/raw" \
  cargo build --release --locked -p vpngw --bin vpngw --target "$HOST" --target-dir "$TARGET/pgo-generate"

# Two instrumented daemons carry the lab's idle pings and bulk TCP (bench/throughput.sh).
train() { # binary log
  if ! IMPLS=vpngw QUICK=1 ROW_PINGS=5000 NSP="${NSP:-vpgo}" VPNGW="$1" \
    bash bench/throughput.sh >"$2" 2>&1; then
    tail -20 "$2" >&2
    echo "the training run failed" >&2
    exit 1
  fi
  grep -E '^vpngw ' "$2" | head -2 | sed 's/^/   /'
}

echo "== 2/5 training: two instrumented daemons carry idle pings and bulk TCP (bench/throughput.sh)"
train "$TARGET/pgo-generate/$HOST/release/vpngw" "$WORK/training.log"
ls "$WORK"/raw/*.profraw >/dev/null 2>&1 || { echo "the training run wrote no profile" >&2; exit 1; }

echo "== 3/5 merging the profiles"
"$profdata" merge -o "$WORK/vpngw.profdata" "$WORK"/raw/*.profraw

echo "== 4/5 optimised build"
RUSTFLAGS="-Cprofile-use=$WORK/vpngw.profdata -Clink-arg=-Wl,--emit-relocs" \
  cargo build --release --locked -p vpngw --bin vpngw --target "$HOST" --target-dir "$TARGET/pgo"
pgo="$TARGET/pgo/$HOST/release/vpngw"

bolt=${BOLT:-}
if [ "$bolt" = 0 ]; then
  echo "== 5/5 BOLT skipped (BOLT=0)"
  echo "$pgo"
  exit 0
fi
if [ -z "$bolt" ]; then
  find_bolt() { command -v llvm-bolt || ls /usr/lib/llvm-*/bin/llvm-bolt 2>/dev/null | tail -1; }
  bolt=$(find_bolt || true)
  if [ -z "$bolt" ]; then
    echo "== adding Debian's bolt-15 (llvm-bolt)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends bolt-15 >"$WORK/apt.log" 2>&1 || true
    bolt=$(find_bolt || true)
  fi
fi
if [ ! -x "$bolt" ] || [ ! -x "$(dirname "$bolt")/merge-fdata" ]; then
  echo "== 5/5 BOLT skipped: no llvm-bolt with merge-fdata beside it (Debian: bolt-15); the binary is step 4's"
  echo "$pgo"
  exit 0
fi
echo "== 5/5 BOLT ($bolt): instrumented binary, training, rewrite"
mkdir -p "$WORK/bolt" "$TARGET/bolt"
"$bolt" "$pgo" -instrument -o "$WORK/vpngw-instrumented" --instrumentation-file="$WORK/bolt/prof" \
  --instrumentation-file-append-pid >"$WORK/bolt-instrument.log" 2>&1 \
  || { tail -20 "$WORK/bolt-instrument.log" >&2; exit 1; }
train "$WORK/vpngw-instrumented" "$WORK/bolt-training.log"
ls "$WORK"/bolt/prof.*.fdata >/dev/null 2>&1 || { echo "the BOLT training run wrote no profile" >&2; exit 1; }
"$(dirname "$bolt")/merge-fdata" "$WORK"/bolt/prof.*.fdata >"$WORK/bolt.fdata" 2>"$WORK/merge-fdata.log"
# No -hugify (hot text on a huge page): BOLT 15's runtime for it crashed the daemon at start.
"$bolt" "$pgo" -o "$TARGET/bolt/vpngw" -data="$WORK/bolt.fdata" -reorder-blocks=ext-tsp \
  -reorder-functions=hfsort+ -split-functions -split-all-cold -split-eh -use-gnu-stack \
  -update-debug-sections -dyno-stats >"$WORK/bolt.log" 2>&1 || { tail -20 "$WORK/bolt.log" >&2; exit 1; }
grep -E 'BOLT-INFO: (basic block reordering|splitting separates|hfsort)' "$WORK/bolt.log" | sed 's/^/   /'
echo "$TARGET/bolt/vpngw"
