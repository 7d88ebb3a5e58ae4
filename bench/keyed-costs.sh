#!/usr/bin/env bash
# The floor of a verified sweep: what proving 16,384 ports through an answer from user space
# costs on this kernel and these cores, next to automate-ports and nmap's connect scan on the
# same ports (bench/ranges.sh scenarios f and g). bench/keyed-floor.c does the same five-segment
# exchange as check against serve (TCP_DEFER_ACCEPT, quick-ACK off, MSG_MORE) with nothing else:
# no key, no HMAC, no retries, no report. Per tool: wall, its CPU, the server's CPU (from
# /proc/PID/stat around each run), medians of RUNS rotating runs, and counts checked every run.
#
#   f-ap      automate-ports check --key, 16,384 ports, against serve (one family)
#   f-nmap    nmap -sT -T5 on the same ports of the same serve
#   f-floor   the floor, one thread, against the floor's server
#   f-floor2  the floor, two threads (half the ports each)
#   g-ap      automate-ports on a dual-stack name: 2 x 16,384 against serve on [::]
#   g-floor   the floor, both families one after the other, against the floor's server on [::]
#   g-floor2  the floor, both families at once (two processes)
#   f-uring2, g-uring2  the same floors with an io_uring client (bench/keyed-floor-uring.c;
#             only where liburing-dev is installed)
#
# Root; traffic stays in the three namespaces it creates (serve and the floor's server in two,
# so their listeners do not meet).
#
#   RUNS=5 bash bench/keyed-costs.sh
#   RUNS=5 AP_BASE=/tmp/automate-ports-before bash bench/keyed-costs.sh   # also f-base, g-base
#   RUNS=5 SERVE_BIN=/tmp/automate-ports-before bash bench/keyed-costs.sh # serve of another build
#   RUNS=5 AP_WIDTHS="512 1024" bash bench/keyed-costs.sh  # also f-ap-wN, g-ap-wN: --concurrency N
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
[ "$(id -u)" = 0 ] || { echo "bench/keyed-costs.sh: needs root (network namespaces)" >&2; exit 2; }
for p in nmap gcc python3 /usr/bin/time; do
  command -v "$p" >/dev/null || { echo "bench/keyed-costs.sh: $p is missing (apt-get install nmap gcc python3 time)" >&2; exit 2; }
done
cargo build --release --quiet
BIN=$PWD/target/release/automate-ports
KEY=bench-shared-key
WORK=$(mktemp -d)
C=apk-c-$$ S=apk-s-$$ F=apk-f-$$
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for ns in "$C" "$S" "$F"; do ip netns del "$ns" 2>/dev/null || true; done
  rm -f "/etc/netns/$C/hosts"; rmdir "/etc/netns/$C" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
gcc -O2 -pthread -o "$WORK/floor" bench/keyed-floor.c
URING=
if [ -e /usr/include/liburing.h ]; then
  gcc -O2 -pthread -o "$WORK/floor-uring" bench/keyed-floor-uring.c -luring && URING=1
else
  echo "bench/keyed-costs.sh: liburing-dev is missing, so no io_uring floor (apt-get install liburing-dev)" >&2
fi
for ns in "$C" "$S" "$F"; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
# client <-> serve: 192.0.2.0/24, 2001:db8:77::/64; client <-> the floor's server: 198.51.100.0/24,
# 2001:db8:78::/64 (documentation addresses, inside these namespaces only).
pair() { # client-end server-end server-ns v4-prefix v6-prefix
  ip link add "$1" type veth peer name "$2"
  ip link set "$1" netns "$C"; ip link set "$2" netns "$3"
  ip -n "$C" addr add "$4.1/24" dev "$1"; ip -n "$3" addr add "$4.2/24" dev "$2"
  ip -n "$C" addr add "$5::1/64" dev "$1" nodad; ip -n "$3" addr add "$5::2/64" dev "$2" nodad
  ip -n "$C" link set "$1" up; ip -n "$3" link set "$2" up
}
pair "apkc$$" "apks$$" "$S" 192.0.2 2001:db8:77
pair "apkd$$" "apkf$$" "$F" 198.51.100 2001:db8:78
mkdir -p "/etc/netns/$C"
printf '127.0.0.1 localhost\n192.0.2.2 bench-server\n2001:db8:77::2 bench-server\n' > "/etc/netns/$C/hosts"
cat > "$WORK/tcp.toml" <<TOML
role = "bench"
description = "benchmark"
[targets.box]
description = "the server namespace"
[[check]]
id = "tcp"
description = "tcp"
protocol = "tcp"
ports = "49152-65535"
target = "box"
required = true
source = "bench"
TOML
(export AUTOMATE_PORTS_KEY=$KEY; exec ip netns exec "$S" "${SERVE_BIN:-$BIN}" serve --profile "$WORK/tcp.toml" --full-ranges --for 30m > "$WORK/serve.log") &
PIDS+=($!)
(exec ip netns exec "$F" "$WORK/floor" serve :: 49152 65535 > "$WORK/floor-serve.log") &
PIDS+=($!)
for _ in $(seq 100); do
  grep -q '^ready' "$WORK/serve.log" 2>/dev/null && grep -q '^ready' "$WORK/floor-serve.log" 2>/dev/null && break
  sleep 0.1
done
SERVE=${PIDS[0]} FLOOR=${PIDS[1]}
AP="$BIN check --format json --full-ranges --profile $WORK/tcp.toml"
FL="$WORK/floor check"
declare -A CMD=(
  [f-ap]="$AP --target box=192.0.2.2"
  [f-nmap]="nmap -n -Pn -oG - -T5 -sT -p49152-65535 192.0.2.2"
  [f-floor]="$FL 198.51.100.2 49152 65535 1024 1"
  [f-floor2]="$FL 198.51.100.2 49152 65535 1024 2"
  [f-floor2r]="$FL 198.51.100.2 49152 65535 1024 2 reuse"
  [g-ap]="$AP --target box=bench-server"
  [g-floor]="sh -c '$FL 198.51.100.2 49152 65535 1024 1; $FL 2001:db8:78::2 49152 65535 1024 1'"
  [g-floor2]="sh -c '$FL 198.51.100.2 49152 65535 1024 1 & $FL 2001:db8:78::2 49152 65535 1024 1; wait'"
  [g-floor2r]="sh -c '$FL 198.51.100.2 49152 65535 1024 1 reuse & $FL 2001:db8:78::2 49152 65535 1024 1 reuse; wait'"
)
declare -A SERVER=([f-ap]=$SERVE [f-nmap]=$SERVE [g-ap]=$SERVE [f-floor]=$FLOOR [f-floor2]=$FLOOR [f-floor2r]=$FLOOR [g-floor]=$FLOOR [g-floor2]=$FLOOR [g-floor2r]=$FLOOR)
TOOLS=(f-ap f-nmap f-floor f-floor2 f-floor2r g-ap g-floor g-floor2 g-floor2r)
if [ -n "$URING" ]; then
  UR="$WORK/floor-uring"
  CMD[f-uring2]="$UR 198.51.100.2 49152 65535 1024 2"
  CMD[g-uring2]="sh -c '$UR 198.51.100.2 49152 65535 1024 1 & $UR 2001:db8:78::2 49152 65535 1024 1; wait'"
  SERVER[f-uring2]=$FLOOR SERVER[g-uring2]=$FLOOR
  TOOLS+=(f-uring2 g-uring2)
fi
# AP_BASE=PATH: another automate-ports build (before a change) in the same rotation, as f-base
# and g-base, against the same serve.
if [ -n "${AP_BASE:-}" ]; then
  BASE="$AP_BASE check --format json --full-ranges --profile $WORK/tcp.toml"
  CMD[f-base]="$BASE --target box=192.0.2.2"
  CMD[g-base]="$BASE --target box=bench-server"
  SERVER[f-base]=$SERVE SERVER[g-base]=$SERVE
  TOOLS+=(f-base g-base)
fi
# AP_WIDTHS="N ...": the same check with a fixed window (--concurrency N), as f-ap-wN and g-ap-wN.
for w in ${AP_WIDTHS:-}; do
  CMD[f-ap-w$w]="$AP --target box=192.0.2.2 --concurrency $w"
  CMD[g-ap-w$w]="$AP --target box=bench-server --concurrency $w"
  SERVER[f-ap-w$w]=$SERVE SERVER[g-ap-w$w]=$SERVE
  TOOLS+=("f-ap-w$w" "g-ap-w$w")
done
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
for run in $(seq 1 "$RUNS"); do
  # Rotate the order, so drift on a shared machine hits every tool alike.
  for i in "${!TOOLS[@]}"; do
    t=${TOOLS[$(( (i + run) % ${#TOOLS[@]} ))]}
    before=$(ticks "${SERVER[$t]}")
    start=$(date +%s%N)
    eval "AUTOMATE_PORTS_KEY=$KEY ip netns exec $C /usr/bin/time -f '%U %S' -o $WORK/$t.$run.cpu ${CMD[$t]}" > "$WORK/$t.$run.out" 2>/dev/null || true
    end=$(date +%s%N)
    echo "$(( end - start )) $(( $(ticks "${SERVER[$t]}") - before ))" > "$WORK/$t.$run.wall"
  done
done
python3 - "$WORK" "$RUNS" "$(getconf CLK_TCK)" "${TOOLS[@]}" <<'PY'
import json, re, statistics, sys
work, runs, hz, tools = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
want = {"f": 16384, "g": 32768}
rows, wrong = {}, []
for t in tools:
    walls, cpus, servers = [], [], []
    for r in range(1, runs + 1):
        ns, ticks = map(int, open(f"{work}/{t}.{r}.wall").read().split())
        user, sys_ = map(float, open(f"{work}/{t}.{r}.cpu").read().split()[-2:])
        walls.append(ns / 1e9); cpus.append(user + sys_); servers.append(ticks / hz)
        out = open(f"{work}/{t}.{r}.out").read()
        if t.endswith(("-ap", "-base")) or "-ap-w" in t:
            # Open and verified: every port answered by serve with a valid reply.
            got = sum(c.get("counts", {}).get("open", 0) for c in json.loads(out)["checks"] if c.get("verified"))
        elif t.endswith("-nmap"):
            got = sum(int(n) for n in re.findall(r"Ignored State: open \((\d+)\)", out)) + out.count("/open/")
        else:
            got = sum(int(n) for n in re.findall(r"verified=(\d+)", out))
        expected = 16384 if t.endswith("-nmap") else want[t[0]]
        if got != expected:
            wrong.append(f"{t} run {r}: {got} (expected {expected})")
    rows[t] = (statistics.median(walls), statistics.median(cpus), statistics.median(servers))
nmap = rows["f-nmap"][0]
print(f"Verified sweeps, medians of {runs} rotating runs; CPU in s, per exchange in microseconds")
print(f"{'tool':11} {'wall s':>7} {'CPU s':>6} {'server CPU s':>12} {'us/exch (both)':>14} {'wall/nmap':>9}")
for t in tools:
    wall, cpu, server = rows[t]
    n = 16384 if t.startswith("f") else 32768
    print(f"{t:11} {wall:7.3f} {cpu:6.2f} {server:12.2f} {(cpu + server) * 1e6 / n:14.1f} {wall / nmap:9.2f}")
print("counts: " + ("exact in every run" if not wrong else "WRONG: " + "; ".join(wrong)))
PY
