#!/usr/bin/env bash
# Side-by-side benchmark: automate-ports vs nmap on the same work, in network namespaces this
# script creates (client ns -> server ns over a veth pair; documentation addresses 192.0.2.x and
# 2001:db8:77::x that exist only inside them). Runs the two tools alternately, RUNS times per
# scenario, checks every run's counts, and prints medians of wall time (a nanosecond clock around
# each process) and peak RSS (/usr/bin/time's %M) with the ratio automate-ports/nmap.
#
#   sudo bench/ranges.sh            # RUNS=5 by default; needs root, nmap, iptables, ip6tables, python3
#   sudo SCENARIOS="e f g h i" RUNS=1 bench/ranges.sh
#   sudo AP_BIN=/tmp/automate-ports-before bench/ranges.sh  # another build (serve too), to compare
#
# Scenarios:
#   a   16,384 TCP ports (49152-65535), nothing listening: every port answers RST / nmap -sT -T5
#   b   16,384 TCP ports open (`serve --full-ranges`): both tools connect-scan them; the row b+key is
#       automate-ports with --key, which completes the authenticated exchange on every port
#   c   16,384 TCP ports dropped by iptables, the same 1 s timeout and no retries for both tools
#   d   1,001 UDP ports (40000-41000): `serve` + `check --key` / plain UDP echo listeners + nmap -sU
#   e0  the agent role on loopback, whole process (nmap: the same three ports on loopback); also
#       timed with hyperfine (30 runs) when it is installed
#   e   the whole server role with --full-ranges, default flags, against a server where nothing
#       listens (16,389 TCP ports refused, 75/udp ICMP unreachable) / nmap -sT -T5 on 49152-65535
#   f   keyed, verified sweep of 16,384 ports served by `serve --full-ranges`, default flags /
#       nmap -sT -T5 on the same ports
#   g   f dual-stack: serve on [::], check a name that resolves to 192.0.2.2 and 2001:db8:77::2
#       (2 x 16,384 verified) / nmap -sT -T5 on IPv4 only
#   h   2 % random loss each way (iptables/ip6tables statistic in both namespaces), 16,384 closed
#       TCP ports, default flags / nmap -sT -T4 (nmap's counts are printed, not required)
#   i   the same loss, keyed sweep of 16,384 served ports, default flags / nmap -sT -T4
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-5}
SCENARIOS=${SCENARIOS:-a b c d e0 e f g h i}
[ "$(id -u)" = 0 ] || { echo "bench/ranges.sh: needs root (network namespaces)" >&2; exit 2; }
for tool in nmap iptables ip6tables python3 /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "bench/ranges.sh: needs $tool (apt-get install nmap iptables time python3)" >&2; exit 2; }
done

if [ -z "${AP_BIN:-}" ]; then cargo build --release --quiet; fi
BIN=${AP_BIN:-$PWD/target/release/automate-ports}
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
  rm -f "/etc/netns/$C/hosts"; rmdir "/etc/netns/$C" 2>/dev/null || true
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
# IPv6 for the dual-stack scenario g; nodad: usable at once, no duplicate address detection.
ip -n "$C" addr add 2001:db8:77::1/64 dev "apbc$$" nodad
ip -n "$S" addr add 2001:db8:77::2/64 dev "apbs$$" nodad
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

# The timer: runs one process, its output to OUT.stdout and OUT.stderr, and writes
# "wall_ns peak_rss_kib exit_code" to OUT.time. The wall time is perf_counter_ns from just before
# the spawn to just after the process is reaped (a nanosecond clock: /usr/bin/time's %e has 10 ms
# ticks). The peak RSS is /usr/bin/time's %M: a child forked from python would start with
# python's own high-water mark, one forked from /usr/bin/time with that of a tiny process. Leading
# NAME=VALUE arguments go into the process's environment (the key, kept out of its command line).
cat > "$WORK/timer.py" <<'PY'
import os, re, subprocess, sys, time
out, args = sys.argv[1], sys.argv[2:]
env = dict(os.environ)
while args and re.match(r"[A-Z_][A-Z0-9_]*=", args[0]):
    name, value = args.pop(0).split("=", 1)
    env[name] = value
with open(out + ".stdout", "wb") as so, open(out + ".stderr", "wb") as se:
    start = time.perf_counter_ns()
    rc = subprocess.call(["/usr/bin/time", "-f", "%M", "-o", out + ".rss", *args], stdout=so, stderr=se, env=env)
    wall = time.perf_counter_ns() - start
# time writes "Command exited with non-zero status N" before %M when the tool exits non-zero.
rss = open(out + ".rss").read().split()[-1]
with open(out + ".time", "w") as f:
    f.write(f"{wall} {rss} {rc}\n")
PY

# time_run OUT_PREFIX [NAME=VALUE]... CMD... : runs CMD in the client namespace under the timer.
time_run() {
  local out=$1; shift
  in_c python3 "$WORK/timer.py" "$out" "$@" || true
}

# automate-ports' JSON report -> "counts<TAB>probing ms". Counts are summed over the report's rows
# (state=n, a single port counting 1), one group per address when there are several, and per
# protocol when there are several; a group with keyed results ends in "verified" (every open port
# proved the key) or "UNVERIFIED".
ap_counts() {
  python3 - "$1" <<'PY'
import collections, json, sys
try:
    r = json.load(open(sys.argv[1]))
except ValueError:
    print("no-report\t-"); sys.exit()
rows = [c for c in r["checks"] if c.get("state")]
many_addrs = len({c["address"] for c in rows}) > 1
many_protos = len({c["protocol"] for c in rows}) > 1
groups, verified = collections.defaultdict(collections.Counter), {}
for c in rows:
    key = " ".join(([c["address"]] if many_addrs else []) + ([c["protocol"]] if many_protos else []))
    for state, n in (c.get("counts") or {c["state"]: 1}).items():
        groups[key][state] += n
    if c["verified"] is not None:
        verified[key] = verified.get(key, True) and c["verified"]
text = []
for key in sorted(groups):
    group = ",".join(f"{s}={n}" for s, n in sorted(groups[key].items()))
    if key in verified:
        group += " verified" if verified[key] else " UNVERIFIED"
    text.append(f"{key} {group}".strip())
print(" | ".join(text) + f"\t{r['duration_ms']}")
PY
}
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
# EXPECT_NMAP "-": nmap's counts are recorded and printed but not required (loss scenarios).
scenario() {
  local label=$1 want_ap=$2 want_nm=$3 ap_cmd=$4 nm_cmd=$5
  local runs=${RUNS} run tool out got probe_ms want wall rss rc ok
  for run in $(seq 1 "$runs"); do
    # Alternate which tool goes first, so drift on a shared machine hits both alike.
    local order="ap nm"; [ $((run % 2)) = 0 ] && order="nm ap"
    for tool in $order; do
      out=$WORK/$label-$tool-$run
      if [ "$tool" = ap ]; then
        # shellcheck disable=SC2086
        time_run "$out" $ap_cmd
        IFS=$'\t' read -r got probe_ms < <(ap_counts "$out.stdout")
        want=$want_ap
      else
        # shellcheck disable=SC2086
        time_run "$out" $nm_cmd
        got=$(nmap_counts "$out.stdout"); probe_ms=-
        want=$want_nm
      fi
      [ -s "$out.time" ] || { echo "bench: $label $tool run $run did not run:" >&2; cat "$out.stderr" >&2; exit 1; }
      read -r wall rss rc < "$out.time"
      if [ "$want" = - ]; then ok=unchecked
      elif [ "$got" = "$want" ]; then ok=yes
      else ok="NO (got $got, want $want)"
      fi
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$tool" "$wall" "$rss" "$probe_ms" "$ok" "$got" >> "$RESULTS"
      echo "bench: $label run $run $tool: $((wall / 1000000)) ms ${rss} KiB exit $rc: $got" >&2
      case $ok in yes|unchecked) ;; *) echo "bench: $label $tool run $run: counts wrong: $ok" >&2 ;; esac
    done
  done
}

# start_serve NAME SERVE-ARGS... : serve in the server namespace with the key, until it is ready.
start_serve() {
  local name=$1; shift
  # exec: $! is then serve itself, so stop_serve and cleanup can stop it.
  (export AUTOMATE_PORTS_KEY=$KEY; exec ip netns exec "$S" "${SERVE_BIN:-$BIN}" serve "$@" --for 30m > "$WORK/serve-$name.log") &
  PIDS+=($!)
  for _ in $(seq 100); do grep -q '^ready' "$WORK/serve-$name.log" 2>/dev/null && return; sleep 0.1; done
  echo "bench: serve for $name not ready after 10 s:" >&2; cat "$WORK/serve-$name.log" >&2; exit 1
}
# stop_serve: stops the process started last (serve, or d's echo listeners).
stop_serve() { kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true; unset 'PIDS[-1]'; }

# loss -A|-D : adds or removes 2 % random loss on input in both namespaces (so each way), IPv4
# and IPv6; neighbour solicitations and advertisements are accepted first, so IPv6 neighbour
# discovery on the link is spared (ARP never passes iptables).
loss() {
  local ns nd
  for ns in "$C" "$S"; do
    for nd in neighbour-solicitation neighbour-advertisement; do
      ip netns exec "$ns" ip6tables "$1" INPUT -p icmpv6 --icmpv6-type "$nd" -j ACCEPT
    done
    ip netns exec "$ns" iptables "$1" INPUT -m statistic --mode random --probability 0.02 -j DROP
    ip netns exec "$ns" ip6tables "$1" INPUT -m statistic --mode random --probability 0.02 -j DROP
  done
}

AP="$BIN check --format json --full-ranges --target box=192.0.2.2"
NMAP="nmap -n -Pn -oG -"
# Default flags (no --timeout, --retries); the key from the environment, as a user would.
APK="AUTOMATE_PORTS_KEY=$KEY $BIN check --format json --full-ranges --profile $TCP"

for s in $SCENARIOS; do
  case $s in
  a)
    scenario a "closed=16384" "closed=16384" \
      "$AP --profile $TCP --timeout 1s --retries 0" \
      "$NMAP -sT -T5 -p49152-65535 192.0.2.2"
    ;;
  b)
    start_serve b --profile "$TCP" --full-ranges --bind 192.0.2.2
    # The same work for both tools: a connect scan of 16,384 open ports...
    scenario b "open=16384" "open=16384" \
      "$AP --profile $TCP --timeout 1s --retries 0" \
      "$NMAP -sT -p49152-65535 192.0.2.2"
    # ...and automate-ports' verified exchange with serve on each port, which nmap cannot do.
    scenario b+key "open=16384 verified" "open=16384" \
      "$AP --profile $TCP --timeout 1s --retries 0 --key $KEY" \
      "$NMAP -sT -p49152-65535 192.0.2.2"
    stop_serve
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
    start_serve d --profile "$UDP" --full-ranges --bind 192.0.2.2
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
    for _ in $(seq 100); do grep -q ready "$WORK/echo.log" && break; sleep 0.1; done
    scenario d "open=1001 verified" "open=1001" \
      "$AP --profile $UDP --timeout 1s --retries 1 --key $KEY" \
      "$NMAP -sU -p40000-41000 192.0.2.3"
    stop_serve; stop_serve # the echo listeners, then serve: later scenarios want a quiet server
    ;;
  e0)
    # The agent role's whole report (443/tcp refused, 75/udp unreachable, the tray's 42000/udp
    # exchanged over loopback); nmap: 443, 75 and 42000 all closed.
    scenario e0 "tcp closed=1 | udp closed=1,open=1" "closed=3" \
      "$BIN check --format json --role agent --server 127.0.0.1 --timeout 1s" \
      "$NMAP -sT -sU -p T:443,U:75,42000 127.0.0.1"
    ;;
  e)
    # The whole server role, default flags, nothing listening: 16,384 relay ports and 443, 80,
    # 8484, 8002, 70, 3306 refused; 75/udp answered by ICMP port unreachable.
    scenario e "tcp closed=16389 | udp closed=1" "closed=16384" \
      "$BIN check --role server --server 192.0.2.2 --full-ranges --format json" \
      "$NMAP -sT -T5 -p49152-65535 192.0.2.2"
    ;;
  f)
    start_serve f --profile "$TCP" --full-ranges --bind 192.0.2.2
    scenario f "open=16384 verified" "open=16384" \
      "$APK --target box=192.0.2.2" \
      "$NMAP -sT -T5 -p49152-65535 192.0.2.2"
    stop_serve
    ;;
  g)
    # serve on [::] (one dual-stack socket per port); the client resolves bench-server to both
    # addresses through its own hosts file (ip netns exec mounts /etc/netns/NS/hosts on /etc/hosts).
    start_serve g --profile "$TCP" --full-ranges
    mkdir -p "/etc/netns/$C"
    printf '127.0.0.1 localhost\n192.0.2.2 bench-server\n2001:db8:77::2 bench-server\n' > "/etc/netns/$C/hosts"
    scenario g "192.0.2.2 open=16384 verified | 2001:db8:77::2 open=16384 verified" "open=16384" \
      "$APK --target box=bench-server" \
      "$NMAP -sT -T5 -p49152-65535 192.0.2.2"
    rm -f "/etc/netns/$C/hosts"; rmdir "/etc/netns/$C" 2>/dev/null || true
    stop_serve
    ;;
  h)
    loss -A
    scenario h "closed=16384" - \
      "$AP --profile $TCP" \
      "$NMAP -sT -T4 -p49152-65535 192.0.2.2"
    loss -D
    ;;
  i)
    start_serve i --profile "$TCP" --full-ranges --bind 192.0.2.2
    loss -A
    scenario i "open=16384 verified" - \
      "$APK --target box=192.0.2.2" \
      "$NMAP -sT -T4 -p49152-65535 192.0.2.2"
    loss -D
    stop_serve
    ;;
  *)
    echo "bench/ranges.sh: unknown scenario '$s' (a b c d e0 e f g h i)" >&2; exit 2
    ;;
  esac
done

# Whole-process time of the agent role, 30 runs, with hyperfine.
if [[ " $SCENARIOS " == *" e0 "* ]] && command -v hyperfine >/dev/null; then
  in_c hyperfine -N -i --warmup 3 --runs 30 --export-json "$WORK/e0.json" \
    "$BIN check --format json --role agent --server 127.0.0.1 --timeout 1s" \
    "nmap -n -Pn -oG - -sT -sU -p T:443,U:75,42000 127.0.0.1" > /dev/null 2>&1 || true
fi

python3 - "$RESULTS" "$RUNS" <<'PY'
import collections, statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
runs = sys.argv[2]
by = collections.defaultdict(list)  # in the order the scenarios ran
for label, tool, wall, rss, probe, ok, got in rows:
    by[(label, tool)].append((int(wall) / 1e9, int(rss) / 1024, probe, ok, got))
names = {
    "a": "a: 16,384 TCP closed (RST), vs -T5",
    "b": "b: 16,384 TCP open (serve)",
    "b+key": "b+key: 16,384 TCP open, --key",
    "c": "c: 16,384 TCP dropped, 1 s timeout",
    "c-wide": "c-wide: same, nmap 16k wide",
    "d": "d: 1,001 UDP open, --key",
    "e0": "e0: agent role, loopback",
    "e": "e: server role, nothing listens",
    "f": "f: 16,384 TCP verified, vs -T5",
    "g": "g: dual-stack 2x16,384 verified",
    "h": "h: 2% loss, 16,384 closed, vs -T4",
    "i": "i: 2% loss, 16,384 verified, vs -T4",
}
# Wall-time targets (ratio automate-ports / nmap), issue 23.
targets = {"a": 0.8, "b": 1.0, "c": 0.15, "e": 0.8, "f": 1.0, "g": 1.8, "h": 0.3, "i": 0.8}
# Peak RSS targets: MiB above nmap's, or (g) an absolute ceiling.
rss_over_nmap = {"a": 8, "e": 8, "f": 8}
rss_ceiling = {"g": 32}
print(f"medians of {runs} alternating runs; wall in seconds (ns clock), peak RSS in MiB; ratio = automate-ports / nmap")
print(f"{'scenario':37} {'ap wall':>8} {'nmap wall':>9} {'ratio':>6} {'target':>11} {'ap RSS':>7} {'nmap RSS':>8} {'RSS target':>14} {'ap probe ms':>11}  counts")
for label in dict.fromkeys(l for l, _ in by):
    ap, nm = by[(label, "ap")], by[(label, "nm")]
    aw = statistics.median(r[0] for r in ap); nw = statistics.median(r[0] for r in nm)
    ar = statistics.median(r[1] for r in ap); nr = statistics.median(r[1] for r in nm)
    probes = [float(r[2]) for r in ap if r[2] != "-"]
    probe = f"{statistics.median(probes):11.1f}" if probes else f"{'-':>11}"
    ratio = aw / nw if nw > 0 else float("nan")
    target = "-"
    if label in targets:
        target = f"<={targets[label]} " + ("met" if ratio <= targets[label] else "NOT")
    rss_target = "-"
    if label in rss_over_nmap:
        limit = nr + rss_over_nmap[label]
        rss_target = f"<={limit:.0f} " + ("met" if ar <= limit else "NOT")
    elif label in rss_ceiling:
        rss_target = f"<={rss_ceiling[label]} " + ("met" if ar <= rss_ceiling[label] else "NOT")
    checked = [r for r in ap + nm if r[3] != "unchecked"]
    ok = ("exact in every run" if all(r[3] == "yes" for r in checked) else "WRONG in some run") + f" ({len(ap)} runs)"
    # A wrong run says what it counted and what the scenario expected, once per distinct miss.
    wrong = collections.Counter(r[3] for r in checked if r[3] != "yes")
    if wrong:
        ok += ": " + "; ".join(f"{w} x{n}" for w, n in wrong.items())
    unchecked = collections.Counter(r[4] for r in nm if r[3] == "unchecked")
    if unchecked:
        ok += "; nmap (not required): " + "; ".join(f"{g or 'nothing'} x{n}" for g, n in unchecked.items())
    print(f"{names.get(label, label):37} {aw:8.3f} {nw:9.3f} {ratio:6.2f} {target:>11} {ar:7.1f} {nr:8.1f} {rss_target:>14} {probe}  {ok}")
PY
if [ -f "$WORK/e0.json" ]; then
  python3 - "$WORK/e0.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
ap, nm = r[0]["median"] * 1000, r[1]["median"] * 1000
print(f"e0: agent role, loopback, whole process (hyperfine, 30 runs): automate-ports {ap:.1f} ms, nmap {nm:.1f} ms, ratio {ap / nm:.2f}")
PY
fi
