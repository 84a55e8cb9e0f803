#!/usr/bin/env bash
# tunnels.sh — the control plane at scale: N (default 1,000) route-based IPsec tunnels between
# two vpngw daemons, then between two strongSwan charon instances (kernel-libipsec), in the
# same run on the same machine; then a rekey of every vpngw child SA while a ping runs through
# one sampled tunnel.
#
#   vcp-a  "initiator": N outer addresses 10.200.I/16 on lo (one per tunnel), wan 10.99.0.1/30,
#          LAN 10.1.0.1/32 on lo (behind the sampled tunnel)
#   vcp-b  "responder": one outer address 10.99.0.2/30 on wan (the N peers' gateway),
#          LAN 10.2.0.1/32 on lo; 10.200.0.0/16 routed via 10.99.0.1
#
# Tunnel i (0-based) has its own inside /30, 169.254.(10 + i/64).(4 * (i % 64))/30 (outside
# 169.254.0.0-169.254.6.255 and 169.254.169.252/30), a at .1, b at .2. Proposals
# aes128gcm16-prfsha256-x25519 / aes128gcm16 on both stacks; PSK authentication with the outer
# addresses as identities. Every identity pair is distinct.
#
# Measured:
#   establish  time from starting the initiating daemon (vpngw) / charon (strongSwan, its
#              connections loaded with start_action = start) until N child SAs are up, polled
#              with `vpngw conn list --json` / `swanctl --list-sas --raw`; peak RSS (VmHWM) of
#              each daemon, and per tunnel (VmHWM / N)
#   rekey      vpngw only: a's child_lifetime is short (REKEY_LIFE, rekey at
#              REKEY_LIFE - REKEY_MARGIN - random(0..REKEY_MARGIN)), b's is 1h so only a
#              initiates; the run waits until every connection's child SA has a new inbound SPI
#              (`vpngw sa list --json`) while `ping -i PING_INTERVAL` runs LAN-to-LAN through
#              the sampled tunnel ([[route]] 10.2.0.1/32 / 10.1.0.1/32); reports the rekeys
#              (vpngw_child_sa_rekeys_total) and the pings lost.
# Floors (exit 1 when missed): vpngw establishes at least as fast as strongSwan, with less
# peak memory per tunnel on each side; every child SA rekeyed; no ping lost.
#
# The vpngw daemons run with `ulimit -Sn 1024` (systemd's default soft limit; hard 524288), as they would as a
# service: the side with N addresses needs 2N outer sockets.
#
# Usage:  bash bench/tunnels.sh                # N=1000, ~5 min
#         N=100 bash bench/tunnels.sh          # quick
# Env:    N=1000  SKIP_SWAN=0  SKIP_REKEY=0  REKEY_LIFE=120  REKEY_MARGIN=40  PING_INTERVAL=0.05
#         TIMEOUT=300 (s, per phase)  VPNGW=path of the binary (default: release build of this
#         tree, built with cargo --locked)  KEEP_DIR=1 (keep the work dir with configs and logs)  SWAN_LOG=0 (charon's log level)
#         RMEM=4194304 (net.core.rmem_default for the run, restored on exit)
#         PERF=1 (perf record -g of vpngw a while it establishes; top symbols printed)
# Needs:  root, iproute2, jq, curl, strongSwan (installed with apt-get when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-1000}
SKIP_SWAN=${SKIP_SWAN:-0}
SKIP_REKEY=${SKIP_REKEY:-0}
REKEY_LIFE=${REKEY_LIFE:-120}
REKEY_MARGIN=${REKEY_MARGIN:-40}
PING_INTERVAL=${PING_INTERVAL:-0.05}
TIMEOUT=${TIMEOUT:-300}
SAMPLE=$((N / 2))
NSA=vcp-a
NSB=vcp-b
B_ADDR=10.99.0.2
PSK=bench-tunnels-psk-0123456789abcdef
W=$(mktemp -d /tmp/vcp-tunnels.XXXXXX)
PIDS=()

[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces, TUN)" >&2; exit 1; }
if [ "$N" -lt 1 ] || [ "$N" -gt 16000 ]; then echo "N must be 1-16000" >&2; exit 1; fi

# shellcheck disable=SC2317 # invoked by the trap
cleanup() {
  set +e
  if [ -n "${RMEM_OLD:-}" ]; then sysctl -qw net.core.rmem_default="$RMEM_OLD"; fi
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null
  done
  for ns in $NSA $NSB; do ip netns del "$ns" 2>/dev/null; done
  if [ "${KEEP_DIR:-0}" = 1 ]; then echo "work dir kept: $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

need() { # command package...
  command -v "$1" >/dev/null 2>&1 && return 0
  shift
  echo "== installing $*"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
need jq jq
need curl curl
need ping iputils-ping
if [ "$SKIP_SWAN" != 1 ] && { [ ! -x /usr/lib/ipsec/charon ] || ! command -v swanctl >/dev/null 2>&1; }; then
  need /nonexistent/charon strongswan-charon strongswan-swanctl libstrongswan-standard-plugins \
    libstrongswan-extra-plugins libcharon-extra-plugins
fi
if [ -z "${VPNGW:-}" ]; then
  cargo build --release -p vpngw --locked -q
  VPNGW=${CARGO_TARGET_DIR:-target}/release/vpngw
fi
VPNGW=$(realpath "$VPNGW")

# shellcheck disable=SC2016 # awk program
rcvbuf_errs() { ip netns exec "$1" awk '/^Udp:/ {n++; if (n == 2) print $6}' /proc/net/snmp; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
a_addr() { echo "10.200.$(($1 / 250)).$(($1 % 250 + 1))"; }
inside() { # i -> the /30's network address, without the length
  echo "169.254.$((10 + $1 / 64)).$((4 * ($1 % 64)))"
}
host() { # network-address offset -> address
  local n=$1 o=$2
  echo "${n%.*}.$((${n##*.} + o))"
}

topo_up() {
  for ns in $NSA $NSB; do
    ip netns del "$ns" 2>/dev/null || true
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  done
  ip link add wan netns $NSA type veth peer name wan netns $NSB
  ip -n $NSA addr add 10.99.0.1/30 dev wan
  ip -n $NSB addr add $B_ADDR/30 dev wan
  ip -n $NSA link set wan up
  ip -n $NSB link set wan up
  ip -n $NSB route add 10.200.0.0/16 via 10.99.0.1
  ip -n $NSA addr add 10.1.0.1/32 dev lo
  ip -n $NSB addr add 10.2.0.1/32 dev lo
  for i in $(seq 0 $((N - 1))); do echo "addr add $(a_addr "$i")/32 dev lo"; done | ip -n $NSA -batch -
}

# ---------------------------------------------------------------- vpngw

vpngw_conf() { # side(a|b) -> $W/S/vpngw.toml
  local s=$1 d=$W/$1 i net me
  mkdir -p "$d"
  printf '%s\n' "$PSK" >"$d/psk"
  chmod 600 "$d/psk"
  {
    cat <<EOF
[gateway]
name = "bench-$s"
tun = "vcp$s"
state_dir = "$d/state"
# 2.5 s to give up on an exchange: a lost message does not stall a tunnel for minutes.
retransmit_timeout = "1s"
retransmit_tries = 2
retransmit_base = 1.5

[api]
socket = "$d/api.sock"
EOF
    for i in $(seq 0 $((N - 1))); do
      net=$(inside "$i")
      if [ "$s" = a ]; then
        me=(1 2 "$(a_addr "$i")" "$B_ADDR" true "child_lifetime = \"${REKEY_LIFE}s\"
rekey_margin = \"${REKEY_MARGIN}s\"
rand_jitter = \"${REKEY_MARGIN}s\"")
      else
        me=(2 1 "$B_ADDR" "$(a_addr "$i")" false 'child_lifetime = "1h"')
      fi
      cat <<EOF

[[connection]]
name = "t$i"
local_address = "${me[2]}"
peer_address = "${me[3]}"
psk_file = "$d/psk"
ike_proposals = ["aes128gcm16-prfsha256-x25519"]
esp_proposals = ["aes128gcm16"]
mode = "route"
tunnel_cidr = "$net/30"
local_inside = "$(host "$net" "${me[0]}")"
peer_inside = "$(host "$net" "${me[1]}")"
initiate = ${me[4]}
${me[5]}
EOF
    done
    if [ "$s" = a ]; then lan=10.2.0.1/32; else lan=10.1.0.1/32; fi
    cat <<EOF

[[route]]
prefix = "$lan"
connection = "t$SAMPLE"
EOF
  } >"$d/vpngw.toml"
  local t0
  t0=$(now_ms)
  "$VPNGW" check --config "$d/vpngw.toml" >/dev/null
  echo "   vpngw check --config ($s, $N connections): $(($(now_ms) - t0)) ms"
}

vpngw_start() { # side ns -> pid in $STARTED
  local d=$W/$1
  (
    ulimit -Sn 1024
    exec ip netns exec "$2" env RUST_LOG=warn "$VPNGW" run --config "$d/vpngw.toml"
  ) >"$d/daemon.log" 2>&1 &
  STARTED=$!
  PIDS+=("$STARTED")
}

api() { local s=$1; shift; "$VPNGW" "$@" --api "$W/$s/api.sock"; }
vpngw_up_count() { api "$1" conn list --json 2>/dev/null | jq '[.[] | select(.state == "up")] | length' 2>/dev/null || echo 0; }
metric() { # side name -> the sum of the family's samples
  curl -s --unix-socket "$W/$1/api.sock" http://vpngw/metrics | awk -v m="$2" '$1 == m || index($1, m "{") == 1 {s += $2} END {print s + 0}' ||
    echo 0
}

wait_api() { # side pid
  for _ in $(seq 300); do
    api "$1" status >/dev/null 2>&1 && return 0
    kill -0 "$2" 2>/dev/null || break
    sleep 0.1
  done
  echo "vpngw $1 did not start:" >&2
  tail -20 "$W/$1/daemon.log" >&2
  exit 1
}

vpngw_phase() {
  echo "== vpngw: $N tunnels ($VPNGW)"
  vpngw_conf a
  vpngw_conf b
  vpngw_start b $NSB
  VB=$STARTED
  wait_api b "$VB"
  local t0 up=0 last=-1
  t0=$(now_ms)
  vpngw_start a $NSA
  VA=$STARTED
  if [ "${PERF:-0}" = 1 ]; then
    perf record -q -F 499 -g -o "$W/perf.a.data" -p "$VA" >/dev/null 2>&1 &
    PERF_PID=$!
    PIDS+=("$PERF_PID")
  fi
  while :; do
    up=$(vpngw_up_count a)
    [ "$up" -ge "$N" ] && break
    kill -0 "$VA" 2>/dev/null || { echo "vpngw a exited:" >&2; tail -5 "$W/a/daemon.log" >&2; exit 1; }
    if [ $(($(now_ms) - t0)) -gt $((TIMEOUT * 1000)) ]; then
      echo "   only $up/$N up after ${TIMEOUT}s" >&2
      tail -20 "$W/a/daemon.log" >&2
      exit 1
    fi
    [ "$up" != "$last" ] && [ $((up / 100)) != $((last / 100)) ] && echo "   $(($(now_ms) - t0)) ms: $up up"
    last=$up
    sleep 0.1
  done
  V_MS=$(($(now_ms) - t0))
  if [ -n "${PERF_PID:-}" ]; then
    kill -INT "$PERF_PID"
    wait "$PERF_PID" 2>/dev/null || true
    perf report -i "$W/perf.a.data" --no-children --percent-limit 1.5 --stdio 2>/dev/null |
      grep -E '^ +[0-9]' >"$W/perf.a.txt" || true
    echo "   perf (a, while establishing): top self-time symbols"
    head -15 "$W/perf.a.txt" | sed 's/^/     /'
  fi
  V_HWM_A=$(hwm_kb "$VA")
  V_HWM_B=$(hwm_kb "$VB")
  echo "   all $N up in $V_MS ms; VmHWM a $V_HWM_A kB, b $V_HWM_B kB (VmRSS a $(rss_kb "$VA"), b $(rss_kb "$VB"));" \
    "b reports $(vpngw_up_count b) up; fds: a $(find /proc/"$VA"/fd | wc -l), b $(find /proc/"$VB"/fd | wc -l);" \
    "UDP receive-buffer drops: a $(rcvbuf_errs $NSA), b $(rcvbuf_errs $NSB)"
}

rekey_phase() {
  echo "== vpngw: rekey of every child SA (a: child_lifetime ${REKEY_LIFE}s, margin and jitter ${REKEY_MARGIN}s), ping through t$SAMPLE"
  ip netns exec $NSA ping -c 3 -i 0.2 -W 1 -I 10.1.0.1 10.2.0.1 >/dev/null ||
    { echo "   no ping through the sampled tunnel" >&2; exit 1; }
  # The snapshot behind `sa list` is refreshed every second.
  sleep 1.2
  api a sa list --json | jq -r '.[] | "\(.connection) \(.spi_in)"' >"$W/spis.before"
  local r0 i0 t0 left
  r0=$(metric a vpngw_child_sa_rekeys_total)
  i0=$(metric a vpngw_child_sas_installed_total)
  ip netns exec $NSA ping -i "$PING_INTERVAL" -W 1 -I 10.1.0.1 10.2.0.1 >"$W/ping.log" 2>&1 &
  local pp=$!
  PIDS+=("$pp")
  t0=$(now_ms)
  while :; do
    sleep 1
    api a sa list --json | jq -r '.[] | "\(.connection) \(.spi_in)"' | sort >"$W/spis.now"
    # Connections that still have an SA from before (sorted join on "conn spi").
    left=$(sort "$W/spis.before" | comm -12 - "$W/spis.now" | wc -l)
    [ "$left" = 0 ] && break
    if [ $(($(now_ms) - t0)) -gt $(((TIMEOUT + 2 * REKEY_LIFE) * 1000)) ]; then
      echo "   $left child SAs never rekeyed" >&2
      exit 1
    fi
  done
  local rekey_ms=$(($(now_ms) - t0))
  sleep 2
  kill -INT "$pp"
  wait "$pp" 2>/dev/null || true
  R_REKEYS=$(($(metric a vpngw_child_sa_rekeys_total) - r0))
  R_INSTALLED=$(($(metric a vpngw_child_sas_installed_total) - i0))
  R_RESP=$(metric b vpngw_child_sa_rekeys_total)
  R_UP=$(vpngw_up_count a)
  read -r R_TX R_RX < <(awk '/packets transmitted/ {print $1, $4}' "$W/ping.log")
  R_LOST=$((R_TX - R_RX))
  V_HWM_A2=$(hwm_kb "$VA")
  V_HWM_B2=$(hwm_kb "$VB")
  echo "   every child SA replaced within $rekey_ms ms of the start; rekeys a $R_REKEYS (b $R_RESP)," \
    "children installed $R_INSTALLED; still up $R_UP/$N; ping $R_TX sent, $R_LOST lost;" \
    "VmHWM a $V_HWM_A2 kB, b $V_HWM_B2 kB"
}

vpngw_stop() {
  for p in ${VA:-} ${VB:-}; do
    kill "$p" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  done
}

# ---------------------------------------------------------------- strongSwan

swan_conf() { # side
  local s=$1 d=$W/sw-$1 i net l r lts rts
  mkdir -p "$d"
  cat >"$d/strongswan.conf" <<EOF
charon {
  load_modular = no
  load = random nonce openssl aes gcm sha1 sha2 hmac pem pkcs1 x509 curve25519 gmp kdf kernel-libipsec kernel-netlink socket-default vici
  install_routes = yes
  # the same retransmission schedule as the vpngw daemons
  retransmit_timeout = 1.0
  retransmit_tries = 2
  retransmit_base = 1.5
  # no COOKIE round trip or half-open refusal for the N simultaneous IKE_SA_INITs
  cookie_threshold = 100000
  block_threshold = 100000
  init_limit_half_open = 0
  plugins {
    vici { socket = unix://$d/charon.vici }
  }
  filelog {
    main {
      path = $d/charon.log
      default = ${SWAN_LOG:-0}
      ike = ${SWAN_LOG:-0}
    }
  }
  syslog { daemon { default = -1 } }
}
EOF
  {
    echo "connections {"
    for i in $(seq 0 $((N - 1))); do
      net=$(inside "$i")
      if [ "$s" = a ]; then
        l=$(a_addr "$i") r=$B_ADDR lts=$(host "$net" 1) rts=$(host "$net" 2) start=start
      else
        l=$B_ADDR r=$(a_addr "$i") lts=$(host "$net" 2) rts=$(host "$net" 1) start=none
      fi
      cat <<EOF
  t$i {
    version = 2
    local_addrs = $l
    remote_addrs = $r
    proposals = aes128gcm16-prfsha256-x25519
    encap = yes
    local { auth = psk }
    remote { auth = psk }
    children {
      c$i {
        local_ts = $lts/32
        remote_ts = $rts/32
        esp_proposals = aes128gcm16
        start_action = $start
      }
    }
  }
EOF
    done
    echo "}"
    echo "secrets { ike-all { secret = \"$PSK\" } }"
  } >"$d/swanctl.conf"
}

swan_start() { # side ns -> pid in $STARTED
  local d=$W/sw-$1
  ip netns exec "$2" sh -c "mount -t tmpfs -o size=8m tmpfs /run && \
      exec env STRONGSWAN_CONF=$d/strongswan.conf /usr/lib/ipsec/charon" >"$d/charon.stdout" 2>&1 &
  STARTED=$!
  PIDS+=("$STARTED")
  for _ in $(seq 100); do [ -S "$d/charon.vici" ] && break; sleep 0.05; done
  [ -S "$d/charon.vici" ] || { echo "charon $1 did not start" >&2; cat "$d/charon.stdout" >&2; exit 1; }
  swanctl --load-all --noprompt --file "$d/swanctl.conf" --uri "unix://$d/charon.vici" >"$d/load.log" 2>&1 ||
    { echo "swanctl --load-all ($1) failed" >&2; tail "$d/load.log" >&2; exit 1; }
}

swan_up_count() { # side
  swanctl --list-sas --raw --uri "unix://$W/sw-$1/charon.vici" 2>/dev/null | { grep -o 'state=INSTALLED' || true; } | wc -l
}

swan_phase() {
  echo "== strongSwan $(/usr/lib/ipsec/charon --version 2>/dev/null | head -1 || true) kernel-libipsec: $N tunnels"
  swan_conf a
  swan_conf b
  # The inside addresses, which vpngw puts on its TUN device as it starts, are on lo before
  # charon starts (not timed): the source of the routes charon installs into ipsec0.
  local i
  for i in $(seq 0 $((N - 1))); do echo "addr add $(host "$(inside "$i")" 1)/32 dev lo"; done | ip -n $NSA -batch -
  for i in $(seq 0 $((N - 1))); do echo "addr add $(host "$(inside "$i")" 2)/32 dev lo"; done | ip -n $NSB -batch -
  swan_start b $NSB
  SB=$STARTED
  local t0 up=0 last=-1
  t0=$(now_ms)
  swan_start a $NSA
  SA=$STARTED
  while :; do
    up=$(swan_up_count a)
    [ "$up" -ge "$N" ] && break
    kill -0 "$SA" 2>/dev/null || { echo "charon a exited" >&2; exit 1; }
    if [ $(($(now_ms) - t0)) -gt $((TIMEOUT * 1000)) ]; then
      echo "   only $up/$N up after ${TIMEOUT}s" >&2
      S_MS=""
      break
    fi
    [ $((up / 100)) != $((last / 100)) ] && echo "   $(($(now_ms) - t0)) ms: $up up"
    last=$up
    sleep 0.1
  done
  [ "$up" -ge "$N" ] && S_MS=$(($(now_ms) - t0))
  S_HWM_A=$(hwm_kb "$SA")
  S_HWM_B=$(hwm_kb "$SB")
  echo "   $up/$N up${S_MS:+ in $S_MS ms}; VmHWM a $S_HWM_A kB, b $S_HWM_B kB; b: $(swan_up_count b) installed;" \
    "UDP receive-buffer drops (since the namespaces were made): a $(rcvbuf_errs $NSA), b $(rcvbuf_errs $NSB)"
  for p in $SA $SB; do kill "$p" 2>/dev/null || true; done
  for p in $SA $SB; do for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done; done
}

# ---------------------------------------------------------------- run

echo "== $(nproc) CPUs, $(uname -r), N=$N, sampled tunnel t$SAMPLE"
if [ -n "${RMEM:-}" ]; then
  # Neither daemon sizes its UDP receive buffers; net.core.rmem_default is not per namespace
  # on this kernel, so it is set globally for the run and restored on exit.
  RMEM_OLD=$(sysctl -n net.core.rmem_default)
  sysctl -qw net.core.rmem_default="$RMEM"
  echo "== net.core.rmem_default temporarily $RMEM (was $RMEM_OLD)"
fi
topo_up
vpngw_phase
[ "$SKIP_REKEY" = 1 ] || rekey_phase
vpngw_stop
[ "$SKIP_SWAN" = 1 ] || swan_phase

fail=0
per() { awk -v k="$1" -v n="$N" 'BEGIN {printf "%.1f", k / n}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "-"}'; }
echo
echo "| N=$N | establish (ms) | VmHWM a (kB) | VmHWM b (kB) | per tunnel a (kB) | per tunnel b (kB) |"
echo "|---|---|---|---|---|---|"
echo "| vpngw | $V_MS | $V_HWM_A | $V_HWM_B | $(per "$V_HWM_A") | $(per "$V_HWM_B") |"
if [ "$SKIP_SWAN" != 1 ]; then
  echo "| strongSwan kernel-libipsec | ${S_MS:-timeout} | $S_HWM_A | $S_HWM_B | $(per "$S_HWM_A") | $(per "$S_HWM_B") |"
  echo "| strongSwan / vpngw | $(ratio "${S_MS:-0}" "$V_MS") | $(ratio "$S_HWM_A" "$V_HWM_A") | $(ratio "$S_HWM_B" "$V_HWM_B") | | |"
  if [ -z "${S_MS:-}" ] || [ "$V_MS" -gt "$S_MS" ]; then [ -z "${S_MS:-}" ] || { echo "FLOOR: vpngw slower than strongSwan"; fail=1; }; fi
  [ "$V_HWM_A" -lt "$S_HWM_A" ] || { echo "FLOOR: vpngw a uses more memory per tunnel than charon a"; fail=1; }
  [ "$V_HWM_B" -lt "$S_HWM_B" ] || { echo "FLOOR: vpngw b uses more memory per tunnel than charon b"; fail=1; }
fi
if [ "$SKIP_REKEY" != 1 ]; then
  echo
  echo "| rekey (vpngw) | child SAs rekeyed | children installed | still up | pings sent | pings lost | VmHWM a / b after (kB) |"
  echo "|---|---|---|---|---|---|---|"
  echo "| N=$N | $R_REKEYS | $R_INSTALLED | $R_UP | $R_TX | $R_LOST | $V_HWM_A2 / $V_HWM_B2 |"
  [ "$R_REKEYS" -ge "$N" ] || { echo "FLOOR: only $R_REKEYS rekeys"; fail=1; }
  [ "$R_LOST" = 0 ] || { echo "FLOOR: $R_LOST pings lost on the sampled tunnel"; fail=1; }
fi
exit "$fail"
