#!/usr/bin/env bash
# Fuzz smoke: builds cargo-fuzz targets and runs each for FUZZ_SECONDS (default 30) from
# its committed seed corpus (corpus/<target>/, if present). Exits non-zero on a crash.
#
# Needs: cargo-fuzz (installed if missing) and the nightly toolchain, else the default one
# with RUSTC_BOOTSTRAP=1.
# New corpus entries go to a temporary directory, so the committed seeds stay as they are;
# a crashing input is left in artifacts/<target>/.
# Usage: bash fuzz/smoke.sh [target ...]     (default: every target in fuzz/Cargo.toml)
# Env:   FUZZ_SECONDS=30   CARGO_TARGET_DIR=... (optional; default fuzz/target)
set -euo pipefail
cd "$(dirname "$0")"
secs=${FUZZ_SECONDS:-30}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list)

# cargo-fuzz passes nightly-only flags (-Zsanitizer=address). Without a nightly toolchain
# (a fresh machine may have only the one rustup installed, and fetch no other), the default
# toolchain takes them with RUSTC_BOOTSTRAP=1, which unlocks them on a stable compiler.
toolchain=(+nightly)
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "fuzz smoke: no nightly toolchain; the default one with RUSTC_BOOTSTRAP=1" >&2
  toolchain=()
  export RUSTC_BOOTSTRAP=1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz smoke: installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
target_dir=${CARGO_TARGET_DIR:-$PWD/target}

for t in "${targets[@]}"; do
  cargo "${toolchain[@]}" fuzz build "$t" --target-dir "$target_dir"
  mkdir -p "$work/$t"
  seeds=()
  [ -d "corpus/$t" ] && seeds=("corpus/$t")
  # The first corpus dir receives new inputs ($work); the seed dir is only read.
  cargo "${toolchain[@]}" fuzz run "$t" --target-dir "$target_dir" "$work/$t" "${seeds[@]}" -- \
    -max_total_time="$secs" -print_final_stats=1
  echo "fuzz smoke: $t ran ${secs}s without a crash"
done
