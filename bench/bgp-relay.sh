#!/usr/bin/env bash
# bgp-relay.sh — relay of N IPv4 prefixes (100 000 by default) from one BIRD to another
# through a speaker in the middle: first vpngw's (`vpngw bgp-relay`: bgp::Speaker under the
# daemon's bgpd driver, one current-thread tokio runtime), then BIRD itself, in the same run.
#
#   A (BIRD, AS 65101, N static /24s) ── 10.98.1.0/24 ── M (AS 65100) ── 10.98.2.0/24 ── B (BIRD, AS 65102)
#
# Three network namespaces of our own. A and B are passive, so M opens both sessions and
# both middles are measured alike. A loads its N routes before M starts. Measured per run:
#   time   from A's session with M reaching Established (polled on A with birdc back to back,
#          a few ms apart) until B's table holds all N prefixes (birdc `show route count`
#          every 10 ms);
#   memory M's peak resident set (VmHWM in /proc/PID/status), read just before M stops;
#   CPU    M's user + system time (/proc/PID/stat), to tell work from waiting.
# Prints both (best and median time over the rounds), and the ratios. Exits non-zero if the
# speaker's best time is slower than BIRD's (the floor) or anything could not be measured.
#
# Usage: sudo bash bench/bgp-relay.sh
# Env:   QUICK=1         10 000 prefixes instead of 100 000
#        N=...           any number of prefixes (at most 1 000 000)
#        ROUNDS=1        runs of each middle, alternating; the best time of each is kept
#        NS_PREFIX=vbr   namespace names NS_PREFIX-{a,m,b}
#        VPNGW=...       the vpngw binary (default: built with `cargo build --release`)
#        TRACE=1         print B's count and every socket queue (ss) at each poll
#        MIDDLE_WRAP=... command put before vpngw (e.g. "strace -f -tt -o FILE", "perf record -g")
#        CARGO_TARGET_DIR  cargo's target dir
# Needs: root, iproute2, bird2 (bird, birdc), cargo. ~1 minute after the release build.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
if [ "${QUICK:-0}" = 1 ]; then N=${N:-10000}; else N=${N:-100000}; fi
ROUNDS=${ROUNDS:-1}
P=${NS_PREFIX:-vbr}
A=$P-a M=$P-m B=$P-b
[ "$N" -ge 1 ] && [ "$N" -le 1000000 ] || { echo "N must be 1..1000000" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "bgp-relay.sh: needs root (network namespaces)" >&2; exit 2; }
for t in ip bird birdc; do command -v $t >/dev/null || { echo "bgp-relay.sh: $t not found" >&2; exit 2; }; done

if [ -z "${VPNGW:-}" ]; then
  cargo build --release --locked -q -p vpngw
  VPNGW=$CARGO_TARGET_DIR/release/vpngw
fi
W=

cleanup() {
  set +e
  for ns in "$A" "$M" "$B"; do
    if ip netns list | grep -qw "^$ns"; then
      for p in $(ip netns pids "$ns" 2>/dev/null); do kill "$p" 2>/dev/null; done
      sleep 0.3
      for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
      ip netns del "$ns"
    fi
  done
  [ -z "$W" ] || [ -n "${KEEP_DIR:-}" ] || rm -rf "$W"
}
trap cleanup EXIT; trap 'exit 130' INT; trap 'exit 143' TERM

topo_up() {
  for ns in "$A" "$M" "$B"; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
  ip link add a0 netns "$A" type veth peer name m0 netns "$M"
  ip link add b0 netns "$B" type veth peer name m1 netns "$M"
  ip -n "$A" addr add 10.98.1.1/24 dev a0; ip -n "$M" addr add 10.98.1.2/24 dev m0
  ip -n "$B" addr add 10.98.2.1/24 dev b0; ip -n "$M" addr add 10.98.2.2/24 dev m1
  ip -n "$A" link set a0 up; ip -n "$B" link set b0 up
  ip -n "$M" link set m0 up; ip -n "$M" link set m1 up
}

# N distinct /24s from 16.0.0.0 up: enough room for a million.
gen_routes() {
  awk -v n="$N" 'BEGIN { print "protocol static originated {"; print "  ipv4;"
    for (i = 0; i < n; i++)
      printf "  route %d.%d.%d.0/24 unreachable;\n", 16 + int(i / 65536), int(i / 256) % 256, i % 256
    print "}" }' >"$W/routes.conf"
}

conf_edge() { # name local AS peer peerAS export
  cat >"$W/$1.conf" <<EOF
log "$W/$1.log" { warning, error, fatal, bug };
router id $2;
protocol device { }
$( [ "$1" = a ] && echo "include \"$W/routes.conf\";" )
protocol bgp middle {
  local $2 as $3;
  neighbor $4 as $5;
  passive on;
  ipv4 { import all; export $6; };
}
EOF
}

conf_middle() {
  cat >"$W/m.conf" <<EOF
log "$W/m.log" { warning, error, fatal, bug };
router id 10.98.1.2;
protocol device { }
protocol bgp from_a { local 10.98.1.2 as 65100; neighbor 10.98.1.1 as 65101; start delay time 1;
  connect retry time 1; ipv4 { import all; export all; }; }
protocol bgp to_b { local 10.98.2.2 as 65100; neighbor 10.98.2.1 as 65102; start delay time 1;
  connect retry time 1; ipv4 { import all; export all; }; }
EOF
}

bird_start() { # ns name -> pid in $BPID
  ip netns exec "$1" bird -f -c "$W/$2.conf" -s "$W/$2.ctl" >"$W/$2.stdout" 2>&1 &
  BPID=$!
  for _ in $(seq 100); do [ -S "$W/$2.ctl" ] && return 0; sleep 0.05; done
  echo "bird $2 did not start: $(cat "$W/$2.stdout" "$W/$2.log" 2>/dev/null)" >&2; return 1
}

count() { # ctl -> routes in master4
  birdc -s "$1" show route count 2>/dev/null | awk '/routes for/ { print $1; exit }'
}

stop_pid() {
  kill "$1" 2>/dev/null || true
  for _ in $(seq 60); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.05; done
  kill -9 "$1" 2>/dev/null || true
}

now_ns() { date +%s%N; }

# One run with middle $1 (vpngw|bird): prints "ms kib".
run_once() {
  local mid=$1 apid bpid mpid t0 t1 tb c hwm cpu
  bird_start "$A" a; apid=$BPID
  bird_start "$B" b; bpid=$BPID
  for _ in $(seq 600); do [ "$(count "$W/a.ctl")" = "$N" ] && break; sleep 0.1; done
  [ "$(count "$W/a.ctl")" = "$N" ] || { echo "A did not load its $N routes" >&2; return 1; }
  if [ "$mid" = vpngw ]; then
    RUST_LOG=warn ip netns exec "$M" ${MIDDLE_WRAP:-} "$VPNGW" bgp-relay --asn 65100 --router-id 10.98.1.2 \
      --neighbor 10.98.1.1,65101,10.98.1.2 --neighbor 10.98.2.1,65102,10.98.2.2 \
      >"$W/relay.log" 2>&1 &
    mpid=$!
  else
    rm -f "$W/m.ctl"; bird_start "$M" m; mpid=$BPID
  fi
  t0=
  for _ in $(seq 20000); do  # bounded: birdc takes a few ms, so about a minute
    # No sleep: each birdc round trip takes a few ms, which is the resolution of t0.
    if birdc -s "$W/a.ctl" show protocols middle 2>/dev/null | grep -q Established; then t0=$(now_ns); break; fi
  done
  [ -n "$t0" ] || { echo "$mid: no session with A" >&2; return 1; }
  t1= tb=
  for _ in $(seq 30000); do  # bounded: 300 s
    if [ -z "$tb" ] && birdc -s "$W/b.ctl" show protocols middle 2>/dev/null | grep -q Established; then
      tb=$(now_ns)
    fi
    # BIRD 2.0 can hold the tail of its export (here the last UPDATE, 160 prefixes) until
    # its event loop next wakes, up to 3 s later; a CLI request wakes it. Poking A at every
    # poll makes A's sending prompt for both middles (without it both runs end ~3.1 s).
    birdc -s "$W/a.ctl" show status >/dev/null 2>&1 || true
    c=$(count "$W/b.ctl")
    [ -z "${TRACE:-}" ] || echo "    $mid +$(( ($(now_ns) - t0) / 1000000 )) ms: B has ${c:-0}; queues $(for ns in "$A" "$M" "$B"; do ip netns exec "$ns" ss -Htn state established | awk -v ns="${ns##*-}" '{ printf "%s %s>%s r%s s%s  ", ns, $3, $4, $1, $2 }'; done)" >&2
    if [ "${c:-0}" -ge "$N" ]; then t1=$(now_ns); break; fi
    sleep 0.01
  done
  [ -n "$t1" ] || { echo "$mid: B has ${c:-0} of $N routes" >&2; return 1; }
  hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$mpid/status")
  # utime + stime, clock ticks: whether the middle was working or waiting.
  cpu=$(awk -v hz="$(getconf CLK_TCK)" '{ print int(($14 + $15) * 1000 / hz) }' "/proc/$mpid/stat")
  stop_pid "$mpid"; stop_pid "$apid"; stop_pid "$bpid"
  rm -f "$W"/*.ctl
  echo "$(( (t1 - t0) / 1000000 )) $hwm $(( (${tb:-$t1} - t0) / 1000000 )) $cpu"
}

cleanup; W=$(mktemp -d /tmp/bgp-relay.XXXXXX)
topo_up
gen_routes
conf_edge a 10.98.1.1 65101 10.98.1.2 65100 "where source = RTS_STATIC"
conf_edge b 10.98.2.1 65102 10.98.2.2 65100 none
conf_middle
echo "== relay of $N IPv4 prefixes A -> M -> B; $(bird --version 2>&1 | head -1); $(nproc) CPUs; $ROUNDS round(s)"
best_v= best_b= mem_v= mem_b= cpu_v= cpu_b= all_v= all_b=
for r in $(seq "$ROUNDS"); do
  read -r ms kib bup cpu < <(run_once vpngw || true)
  [ -n "${kib:-}" ] || { echo "vpngw run failed" >&2; exit 1; }
  echo "  round $r  vpngw bgp-relay: ${ms} ms, peak RSS ${kib} KiB, CPU ${cpu} ms (session with B up after ${bup} ms)"
  all_v="$all_v $ms"
  if [ -z "$best_v" ] || [ "$ms" -lt "$best_v" ]; then best_v=$ms; fi
  if [ -z "$mem_v" ] || [ "$kib" -gt "$mem_v" ]; then mem_v=$kib; fi
  if [ -z "$cpu_v" ] || [ "$cpu" -lt "$cpu_v" ]; then cpu_v=$cpu; fi
  ms= kib= bup= cpu=
  read -r ms kib bup cpu < <(run_once bird || true)
  [ -n "${kib:-}" ] || { echo "BIRD run failed" >&2; exit 1; }
  echo "  round $r  BIRD:            ${ms} ms, peak RSS ${kib} KiB, CPU ${cpu} ms (session with B up after ${bup} ms)"
  all_b="$all_b $ms"
  if [ -z "$best_b" ] || [ "$ms" -lt "$best_b" ]; then best_b=$ms; fi
  if [ -z "$mem_b" ] || [ "$kib" -gt "$mem_b" ]; then mem_b=$kib; fi
  if [ -z "$cpu_b" ] || [ "$cpu" -lt "$cpu_b" ]; then cpu_b=$cpu; fi
done
python3 - "$N" "$best_v" "$mem_v" "$cpu_v" "$best_b" "$mem_b" "$cpu_b" "$all_v" "$all_b" <<'EOF'
import statistics, sys
n, tv, mv, cv, tb, mb, cb = (int(x) for x in sys.argv[1:8])
medv = statistics.median(int(x) for x in sys.argv[8].split())
medb = statistics.median(int(x) for x in sys.argv[9].split())
print(f"| middle | {n} prefixes A→B, best (ms) | median (ms) | peak RSS, worst (MiB) | CPU, least (ms) |")
print("| --- | ---: | ---: | ---: | ---: |")
print(f"| vpngw bgp-relay | {tv} | {medv:.0f} | {mv / 1024:.1f} | {cv} |")
print(f"| BIRD | {tb} | {medb:.0f} | {mb / 1024:.1f} | {cb} |")
print(f"| vpngw / BIRD | {tv / max(tb, 1):.2f} | {medv / max(medb, 1):.2f} | {mv / max(mb, 1):.2f} | {cv / max(cb, 1):.1f} |")
if tv > tb:
    print(f"FLOOR MISSED: the speaker is slower than BIRD ({tv} ms > {tb} ms)")
    sys.exit(1)
print("floor met: no slower than BIRD")
EOF
