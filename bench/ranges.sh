#!/usr/bin/env bash
# Side-by-side benchmark: automate-ports vs nmap on the same work, in network namespaces this
# script creates (client ns -> server ns over a veth pair; documentation addresses that exist only
# inside them). Runs the two tools alternately, RUNS times per scenario, checks every run's counts,
# and prints medians of wall time and peak RSS (/usr/bin/time) with the ratio automate-ports/nmap.
#
#   sudo bench/ranges.sh            # RUNS=5 by default; needs root, nmap, iptables, python3
#
# Scenarios:
#   a  16,384 TCP ports (49152-65535), nothing listening: every port answers RST
#   b  16,384 TCP ports open (`serve --full-ranges`): both tools connect-scan them; the row b+key is
#      automate-ports with --key, which completes the authenticated exchange on every port
#   c  16,384 TCP ports dropped by iptables, the same 1 s timeout and no retries for both tools
#   d  1,001 UDP ports (40000-41000): `serve` + `check --key` / plain UDP echo listeners + nmap -sU
#   e  the agent role on loopback, whole process (nmap: the same three ports on loopback)
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-5}
SCENARIOS=${SCENARIOS:-a b c d e}
[ "$(id -u)" = 0 ] || { echo "bench/ranges.sh: needs root (network namespaces)" >&2; exit 2; }
for tool in nmap iptables python3 /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "bench/ranges.sh: needs $tool (apt-get install nmap iptables time python3)" >&2; exit 2; }
done

cargo build --release --quiet
BIN=$PWD/target/release/automate-ports
KEY=bench-shared-key
C=apb-c-$$
S=apb-s-$$
WORK=$(mktemp -d)
PIDS=()

cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  ip netns del "$C" 2>/dev/null || true
  ip netns del "$S" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

ip netns add "$C"
ip netns add "$S"
ip link add "apbc$$" type veth peer name "apbs$$"
ip link set "apbc$$" netns "$C"
ip link set "apbs$$" netns "$S"
ip -n "$C" addr add 192.0.2.1/24 dev "apbc$$"
ip -n "$S" addr add 192.0.2.2/24 dev "apbs$$"
ip -n "$S" addr add 192.0.2.3/24 dev "apbs$$"
for ns in "$C" "$S"; do ip -n "$ns" link set lo up; done
ip -n "$C" link set "apbc$$" up
ip -n "$S" link set "apbs$$" up

profile() { # id protocol ports -> path
  cat > "$WORK/$1.toml" <<EOF
role = "bench"
description = "benchmark"
[targets.box]
description = "the server namespace"
[[check]]
id = "$1"
description = "$1"
protocol = "$2"
ports = "$3"
target = "box"
required = true
source = "bench"
EOF
  echo "$WORK/$1.toml"
}
TCP=$(profile tcp tcp 49152-65535)
UDP=$(profile udp udp 40000-41000)

in_c() { ip netns exec "$C" "$@"; }
in_s() { ip netns exec "$S" "$@"; }

# time_run OUT_PREFIX CMD... : runs CMD in the client namespace under /usr/bin/time.
time_run() {
  local out=$1; shift
  in_c /usr/bin/time -f "%e %M" -o "$out.time" "$@" > "$out.stdout" 2> "$out.stderr" || true
}

ap_counts() { python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); c=r["checks"][0]; print(",".join(f"{k}={v}" for k,v in sorted(c.get("counts",{c["state"]:1}).items())), r["duration_ms"])' "$1"; }
nmap_counts() { # grepable output -> state=count list
  python3 - "$1" <<'PY'
import re, sys, collections
text = open(sys.argv[1]).read()
counts = collections.Counter()
for m in re.finditer(r"Ignored State: ([a-z|]+) \((\d+)\)", text):
    counts[m.group(1)] += int(m.group(2))
for m in re.finditer(r"Ports: (.*?)(?:\t|$)", text, re.M):
    for entry in m.group(1).split(", "):
        parts = entry.split("/")
        if len(parts) > 1 and parts[1]:
            counts[parts[1]] += 1
print(",".join(f"{k}={v}" for k, v in sorted(counts.items())))
PY
}

RESULTS=$WORK/results.tsv
: > "$RESULTS"

# scenario LABEL EXPECT_AP EXPECT_NMAP "AP CMD" "NMAP CMD"
scenario() {
  local label=$1 want_ap=$2 want_nm=$3 ap_cmd=$4 nm_cmd=$5
  local runs=${RUNS}
  for run in $(seq 1 "$runs"); do
    # Alternate which tool goes first, so drift on a shared machine hits both alike.
    local order="ap nm"; [ $((run % 2)) = 0 ] && order="nm ap"
    for tool in $order; do
      local out=$WORK/$label-$tool-$run
      if [ "$tool" = ap ]; then
        # shellcheck disable=SC2086
        time_run "$out" $ap_cmd
        read -r got probe_ms < <(ap_counts "$out.stdout")
        want=$want_ap
      else
        # shellcheck disable=SC2086
        time_run "$out" $nm_cmd
        got=$(nmap_counts "$out.stdout"); probe_ms=-
        want=$want_nm
      fi
      # /usr/bin/time puts "Command exited with non-zero status" first when the tool exits 1.
      read -r wall rss < <(tail -n 1 "$out.time")
      local ok=yes; [ "$got" = "$want" ] || ok="NO (got $got, want $want)"
      printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$tool" "$wall" "$rss" "$probe_ms" "$ok" >> "$RESULTS"
      echo "bench: $label run $run $tool: ${wall}s ${rss}KB $got" >&2
      [ "$ok" = yes ] || echo "bench: $label $tool run $run: counts wrong: $ok" >&2
    done
  done
}

AP="$BIN check --format json --full-ranges --target box=192.0.2.2"
NMAP="nmap -n -Pn -oG -"

for s in $SCENARIOS; do
  case $s in
  a)
    scenario a "closed=16384" "closed=16384" \
      "$AP --profile $TCP --timeout 1s --retries 0" \
      "$NMAP -sT -p49152-65535 192.0.2.2"
    ;;
  b)
    # exec: $! is then serve itself, so cleanup can stop it.
    (export AUTOMATE_PORTS_KEY=$KEY; exec ip netns exec "$S" "$BIN" serve --profile "$TCP" --full-ranges --bind 192.0.2.2 --for 30m > "$WORK/serve-b.log") &
    PIDS+=($!)
    for _ in $(seq 100); do grep -q '^ready' "$WORK/serve-b.log" 2>/dev/null && break; sleep 0.1; done
    # The same work for both tools: a connect scan of 16,384 open ports...
    scenario b "open=16384" "open=16384" \
      "$AP --profile $TCP --timeout 1s --retries 0" \
      "$NMAP -sT -p49152-65535 192.0.2.2"
    # ...and automate-ports' verified exchange with serve on each port, which nmap cannot do.
    scenario b+key "open=16384" "open=16384" \
      "$AP --profile $TCP --timeout 1s --retries 0 --key $KEY" \
      "$NMAP -sT -p49152-65535 192.0.2.2"
    kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true
    ;;
  c)
    in_s iptables -A INPUT -p tcp --dport 49152:65535 -j DROP
    # nmap with the same 1 s timeout and no retries needs about 20 minutes here, so this
    # pair runs RUNS_C times (default 1).
    RUNS=${RUNS_C:-1} scenario c "filtered=16384" "filtered=16384" \
      "$AP --profile $TCP --timeout 1s --retries 0" \
      "$NMAP -sT -p49152-65535 --max-retries 0 --max-rtt-timeout 1000ms 192.0.2.2"
    # nmap told to keep as many connects in flight as automate-ports does by default.
    scenario c-wide "filtered=16384" "filtered=16384" \
      "$AP --profile $TCP --timeout 1s --retries 0" \
      "$NMAP -sT -p49152-65535 --max-retries 0 --max-rtt-timeout 1000ms --min-parallelism 16384 192.0.2.2"
    in_s iptables -D INPUT -p tcp --dport 49152:65535 -j DROP
    ;;
  d)
    (export AUTOMATE_PORTS_KEY=$KEY; exec ip netns exec "$S" "$BIN" serve --profile "$UDP" --full-ranges --bind 192.0.2.2 --for 30m > "$WORK/serve-d.log") &
    PIDS+=($!)
    # Plain UDP echo listeners for nmap, on the same ports of a second server address.
    (exec ip netns exec "$S" python3 -c '
import selectors, socket, sys
sel = selectors.DefaultSelector()
for port in range(40000, 41001):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("192.0.2.3", port)); s.setblocking(False)
    sel.register(s, selectors.EVENT_READ)
print("ready", flush=True)
while True:
    for key, _ in sel.select():
        data, peer = key.fileobj.recvfrom(2048)
        key.fileobj.sendto(data or b"pong", peer)
' > "$WORK/echo.log") &
    PIDS+=($!)
    for _ in $(seq 100); do grep -q '^ready' "$WORK/serve-d.log" 2>/dev/null && grep -q ready "$WORK/echo.log" && break; sleep 0.1; done
    scenario d "open=1001" "open=1001" \
      "$AP --profile $UDP --timeout 1s --retries 1 --key $KEY" \
      "$NMAP -sU -p40000-41000 192.0.2.3"
    ;;
  e)
    # automate-ports: 443 refused (the first check); nmap: 443, 75 and 42000 all closed.
    scenario e "closed=1" "closed=3" \
      "$BIN check --format json --role agent --server 127.0.0.1 --timeout 1s" \
      "$NMAP -sT -sU -p T:443,U:75,42000 127.0.0.1"
    ;;
  esac
done

# Whole-process time of the agent role at millisecond resolution (/usr/bin/time has 10 ms).
if [[ " $SCENARIOS " == *" e "* ]] && command -v hyperfine >/dev/null; then
  in_c hyperfine -N -i --warmup 3 --runs 30 --export-json "$WORK/e.json" \
    "$BIN check --format json --role agent --server 127.0.0.1 --timeout 1s" \
    "nmap -n -Pn -oG - -sT -sU -p T:443,U:75,42000 127.0.0.1" > /dev/null 2>&1 || true
fi

python3 - "$RESULTS" "$RUNS" <<'PY'
import statistics, sys, collections
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
runs = sys.argv[2]
by = collections.defaultdict(list)
for label, tool, wall, rss, probe, ok in rows:
    by[(label, tool)].append((float(wall), int(rss), probe, ok))
names = {"c-wide": "16,384 TCP dropped, nmap 16k wide", "a": "16,384 TCP closed (RST)", "b": "16,384 TCP open (serve)", "b+key": "16,384 TCP open, verified (--key)", "c": "16,384 TCP dropped, 1 s timeout",
         "d": "1,001 UDP open", "e": "agent role, loopback"}
print(f"medians of {runs} alternating runs; wall in seconds, peak RSS in MiB; ratio = automate-ports / nmap")
print(f"{'scenario':34} {'ap wall':>8} {'nmap wall':>9} {'ratio':>6} {'ap RSS':>7} {'nmap RSS':>8} {'ratio':>6} {'ap probe ms':>11} counts")
for label in sorted({l for l, _ in by}):
    ap, nm = by[(label, "ap")], by[(label, "nm")]
    aw = statistics.median(w for w, *_ in ap); nw = statistics.median(w for w, *_ in nm)
    ar = statistics.median(r for _, r, *_ in ap) / 1024; nr = statistics.median(r for _, r, *_ in nm) / 1024
    probe = statistics.median(float(p) for _, _, p, _ in ap)
    ok = ("exact in every run" if all(o == "yes" for *_, o in ap + nm) else "WRONG in some run") + f" ({len(ap)} runs)"
    ratio = f"{aw / nw:.2f}" if nw > 0 else "-"
    print(f"{names[label]:34} {aw:8.2f} {nw:9.2f} {ratio:>6} {ar:7.1f} {nr:8.1f} {ar / nr:6.2f} {probe:11.1f} {ok}")
PY
if [ -f "$WORK/e.json" ]; then
  python3 - "$WORK/e.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
ap, nm = r[0]["median"] * 1000, r[1]["median"] * 1000
print(f"agent role, loopback, whole process (hyperfine, 30 runs): automate-ports {ap:.1f} ms, nmap {nm:.1f} ms, ratio {ap / nm:.2f}")
PY
fi
