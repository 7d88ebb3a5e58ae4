#!/usr/bin/env bash
# Where a connect sweep's time goes: 16,384 closed TCP ports (49152-65535) across a veth pair
# between two namespaces (bench/ranges.sh scenario a), for automate-ports, nmap -sT -T5 and the
# floor (bench/floor.c: non-blocking connects over epoll, nothing else). Per tool: wall, user
# and system CPU per 1,000 ports and peak RSS (medians of RUNS alternating runs,
# /usr/bin/time), system calls per port (one run under strace -c -f), and each tool's ratio to
# the floor and to nmap. Root; traffic stays in the two namespaces it creates.
#
#   RUNS=5 bash bench/costs.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
PORTS=16384
for p in nmap strace gcc /usr/bin/time; do
  command -v "$p" >/dev/null || { echo "bench/costs.sh: $p is missing (apt-get install nmap strace gcc time)" >&2; exit 2; }
done
cargo build --release --quiet
BIN=$PWD/target/release/automate-ports
WORK=$(mktemp -d)
C=apc-c-$$ S=apc-s-$$
cleanup() { ip netns del "$C" 2>/dev/null || true; ip netns del "$S" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
gcc -O2 -o "$WORK/floor" bench/floor.c
ip netns add "$C"; ip netns add "$S"
ip link add "apcc$$" type veth peer name "apcs$$"
ip link set "apcc$$" netns "$C"; ip link set "apcs$$" netns "$S"
ip -n "$C" addr add 192.0.2.1/24 dev "apcc$$"; ip -n "$S" addr add 192.0.2.2/24 dev "apcs$$"
for ns in "$C" "$S"; do ip -n "$ns" link set lo up; done
ip -n "$C" link set "apcc$$" up; ip -n "$S" link set "apcs$$" up
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
declare -A CMD=(
  [ap]="$BIN check --format json --full-ranges --target box=192.0.2.2 --profile $WORK/tcp.toml --timeout 1s --retries 0"
  [nmap]="nmap -n -Pn -oG - -T5 -sT -p49152-65535 192.0.2.2"
  [floor]="$WORK/floor 192.0.2.2 49152 65535 1024"
)
TOOLS=(ap nmap floor)
for run in $(seq 1 "$RUNS"); do
  # Rotate the order, so drift on a shared machine hits every tool alike.
  for i in 0 1 2; do
    t=${TOOLS[$(( (i + run) % 3 ))]}
    # shellcheck disable=SC2086
    ip netns exec "$C" /usr/bin/time -f "%e %U %S %M" -o "$WORK/$t.$run" ${CMD[$t]} > "$WORK/$t.out.$run" 2>/dev/null || true
  done
done
for t in "${TOOLS[@]}"; do
  # shellcheck disable=SC2086
  ip netns exec "$C" strace -c -f -o "$WORK/$t.strace" ${CMD[$t]} > /dev/null 2>&1 || true
done
python3 - "$WORK" "$RUNS" "$PORTS" <<'PY'
import statistics, sys
work, runs, ports = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
tools = ["ap", "nmap", "floor"]
names = {"ap": "automate-ports", "nmap": "nmap -sT -T5", "floor": "floor (epoll)"}
rows = {}
for t in tools:
    runs_ = [list(map(float, open(f"{work}/{t}.{r}").read().split()[-4:])) for r in range(1, runs + 1)]
    wall, user, sys_, rss = (statistics.median(x[i] for x in runs_) for i in range(4))
    calls, top = 0, []
    for line in open(f"{work}/{t}.strace"):
        f = line.split()
        if len(f) >= 5 and f[0][0].isdigit() and f[-1] not in ("total",):
            n = int(f[3]); calls += n; top.append((n, f[-1]))
    top = ", ".join(f"{name} {n / ports:.2f}" for n, name in sorted(top, reverse=True)[:5])
    rows[t] = (wall, user, sys_, rss, calls, top)
print(f"16,384 closed TCP ports over veth, medians of {runs} rotating runs; CPU in ms per 1,000 ports")
print(f"{'tool':16} {'wall s':>7} {'user':>6} {'sys':>6} {'RSS MiB':>8} {'calls/port':>10} {'wall/floor':>10} {'wall/nmap':>9}  top calls per port")
for t in tools:
    wall, user, sys_, rss, calls, top = rows[t]
    k = ports / 1000
    print(f"{names[t]:16} {wall:7.3f} {user * 1000 / k:6.1f} {sys_ * 1000 / k:6.1f} {rss / 1024:8.1f} {calls / ports:10.2f} "
          f"{wall / rows['floor'][0]:10.2f} {wall / rows['nmap'][0]:9.2f}  {top}")
PY
# Every tool must have found every port closed, or its figures mean nothing.
python3 - "$WORK" "$RUNS" <<'PY'
import glob, json, re, sys
work, runs = sys.argv[1], int(sys.argv[2])
for run in range(1, runs + 1):
    ap = json.load(open(f"{work}/ap.out.{run}"))
    ap_closed = sum(c.get("counts", {}).get("closed", 0) for c in ap["checks"])
    nm = open(f"{work}/nmap.out.{run}").read()
    nm_closed = sum(int(n) for n in re.findall(r"Ignored State: closed \((\d+)\)", nm)) + nm.count("/closed/")
    fl = re.search(r"closed=(\d+)", open(f"{work}/floor.out.{run}").read())
    got = (ap_closed, nm_closed, int(fl.group(1)) if fl else 0)
    print(f"run {run}: closed ap={got[0]} nmap={got[1]} floor={got[2]}" + ("" if got == (16384,) * 3 else "  WRONG"))
PY
