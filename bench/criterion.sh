#!/usr/bin/env bash
# criterion.sh — the hot-path criterion benches against a committed baseline, so that a
# regression shows in review.
#
#   rib    lookup-v4/{hit-random,same-address}          LPM in a 100 000-route rib::Table
#   ike    ike-{ike_sa_init,ike_auth_content}/{decode,encode}   IKE message codec
#   esp    pipeline/{lookup-seal-1400,batch-45x1400}     the engine's TUN→UDP work per packet
#   esp    seal-/open-{aes128gcm16,chacha20poly1305}/1400 ESP crypto (bench/esp-crypto.sh
#          compares it with OpenSSL)
#
# Prints each bench's criterion mean beside bench/baseline/criterion.txt and the ratio; exits
# non-zero if any is more than TOLERANCE slower (default 0.30: single runs on this shared
# 2-vCPU machine vary by up to ±30 %, so re-run a flagged line before believing it).
#
# Usage: bash bench/criterion.sh            # ~2 min after the bench build
#        UPDATE=1 bash bench/criterion.sh   # rewrite the baseline (commit it with the change)
# Env:   CARGO_TARGET_DIR, TOLERANCE=0.30
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
CRIT=$CARGO_TARGET_DIR/criterion
BASE=bench/baseline/criterion.txt
TOLERANCE=${TOLERANCE:-0.30}
log=$(mktemp); trap 'rm -f "$log"' EXIT

run() { # package bench [filter]
  echo "== cargo bench -p $1 --bench $2 ${3:-}"
  cargo bench --locked -p "$1" --bench "$2" -- ${3:+"$3"} >>"$log" 2>&1 || { tail -40 "$log" >&2; exit 2; }
}
rm -rf "$CRIT"/lookup-v4 "$CRIT"/ike-* "$CRIT"/pipeline "$CRIT"/seal-* "$CRIT"/open-*
run rib lookup
run ike message
run esp pipeline
run esp seal_open '^(seal|open)-(aes128gcm16|chacha20poly1305)/1400$'

python3 - "$CRIT" "$BASE" "$TOLERANCE" "${UPDATE:-0}" <<'PY'
import json, os, sys
crit, base_path, tol, update = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4] == "1"
now = {}
for group in sorted(os.listdir(crit)):
    if not group.startswith(("lookup-v4", "ike-", "pipeline", "seal-", "open-")):
        continue
    for bench in sorted(os.listdir(os.path.join(crit, group))):
        f = os.path.join(crit, group, bench, "new", "estimates.json")
        if os.path.exists(f):
            now[f"{group}/{bench}"] = json.load(open(f))["mean"]["point_estimate"]
if update:
    with open(base_path, "w") as out:
        out.write("# criterion means in ns, written by UPDATE=1 bash bench/criterion.sh\n")
        for k, v in now.items():
            out.write(f"{k} {v:.1f}\n")
    print(f"baseline written: {base_path} ({len(now)} benches)")
    sys.exit(0)
base = {}
for line in open(base_path):
    if line.strip() and not line.startswith("#"):
        k, v = line.split()
        base[k] = float(v)
fmt = "{:<42} {:>12} {:>12} {:>7}"
print(fmt.format("bench", "baseline ns", "now ns", "ratio"))
bad = []
for k in sorted(set(base) | set(now)):
    b, n = base.get(k), now.get(k)
    r = n / b if (b and n) else None
    flag = ""
    if r is None:
        flag = "  (missing)"
        bad.append(k)
    elif r > 1 + tol:
        flag = "  SLOWER"
        bad.append(k)
    print(fmt.format(k, f"{b:.1f}" if b else "-", f"{n:.1f}" if n else "-",
                     f"{r:.2f}" if r else "-") + flag)
if bad:
    print(f"FAIL: more than {tol:.0%} slower than the baseline, or missing: {', '.join(bad)}")
    sys.exit(1)
print(f"OK: every bench within {tol:.0%} of the baseline")
PY
