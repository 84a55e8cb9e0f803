#!/usr/bin/env bash
# Fuzz smoke: builds cargo-fuzz targets and runs each for FUZZ_SECONDS (default 30) from
# its committed seed corpus (corpus/<target>/, if present). Exits non-zero on a crash.
#
# Needs: the nightly toolchain (rustup) and cargo-fuzz; installs cargo-fuzz if missing.
# New corpus entries go to a temporary directory, so the committed seeds stay as they are;
# a crashing input is left in artifacts/<target>/.
# Usage: bash fuzz/smoke.sh [target ...]     (default: every target in fuzz/Cargo.toml)
# Env:   FUZZ_SECONDS=30   CARGO_TARGET_DIR=... (optional; default fuzz/target)
set -euo pipefail
cd "$(dirname "$0")"
secs=${FUZZ_SECONDS:-30}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list)

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "fuzz smoke: no nightly toolchain; install one (rustup toolchain install nightly)" >&2
  exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz smoke: installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
target_dir=${CARGO_TARGET_DIR:-$PWD/target}

for t in "${targets[@]}"; do
  cargo +nightly fuzz build "$t" --target-dir "$target_dir"
  mkdir -p "$work/$t"
  seeds=()
  [ -d "corpus/$t" ] && seeds=("corpus/$t")
  # The first corpus dir receives new inputs ($work); the seed dir is only read.
  cargo +nightly fuzz run "$t" --target-dir "$target_dir" "$work/$t" "${seeds[@]}" -- \
    -max_total_time="$secs" -print_final_stats=1
  echo "fuzz smoke: $t ran ${secs}s without a crash"
done
