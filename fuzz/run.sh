#!/usr/bin/env bash
# Runs every fuzz target in turn, each for a bounded time, one process at a time (no -fork,
# no -jobs): fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]   (default 60 s, all targets).
# Prints executions and crashes per target; exits 1 if any target crashed or failed.
# FUZZ_TOOLCHAIN names the toolchain (default nightly); FUZZ_BUILD_ONLY=1 builds and stops.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"

secs="${1:-60}"
shift || true
case "$secs" in '' | *[!0-9]*) echo "usage: $0 [SECONDS_PER_TARGET] [TARGET...]" >&2; exit 2 ;; esac

# target:max_len (a profile may be long TOML; MySQL/HTTP reads stop at 16 KiB, the HTTP
# cap is crossed on purpose; probes and replies are at most 66 bytes).
all=(probe:256 profile:65536 mysql:4096 http:20480 agent:8192 fleet:65536)
if (($# > 0)); then
    wanted=("$@")
    targets=()
    for w in "${wanted[@]}"; do
        found=
        for t in "${all[@]}"; do [[ "${t%%:*}" == "$w" ]] && targets+=("$t") && found=1; done
        [[ -n "$found" ]] || { echo "unknown target '$w'" >&2; exit 2; }
    done
else
    targets=("${all[@]}")
fi

command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz missing: cargo install cargo-fuzz --locked" >&2; exit 2; }

# FUZZ_TOOLCHAIN: a pinned nightly instead of the latest (CI uses the legacy build's).
toolchain="${FUZZ_TOOLCHAIN:-nightly}"
echo "building fuzz targets ($toolchain, release, ASan)..."
build_start=$SECONDS
cargo "+$toolchain" fuzz build -O
echo "built in $((SECONDS - build_start)) s"
# FUZZ_BUILD_ONLY=1: build and stop (CI builds beside the tests and runs the targets later).
[[ -z "${FUZZ_BUILD_ONLY:-}" ]] || exit 0

mkdir -p artifacts
failed=0
summary=()
for entry in "${targets[@]}"; do
    t="${entry%%:*}"
    max_len="${entry##*:}"
    mkdir -p "corpus/$t" "artifacts/$t"
    cp -n "seeds/$t/"* "corpus/$t/" 2>/dev/null || true
    before=$(find "artifacts/$t" -type f | wc -l)
    log="artifacts/$t.log"
    echo "== $t: ${secs}s, max_len $max_len (log: fuzz/$log)"
    rc=0
    cargo "+$toolchain" fuzz run -O "$t" "corpus/$t" -- \
        -max_total_time="$secs" -rss_limit_mb=1024 -max_len="$max_len" \
        -timeout=10 -print_final_stats=1 >"$log" 2>&1 || rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
    after=$(find "artifacts/$t" -type f | wc -l)
    new=$((after - before))
    corpus=$(find "corpus/$t" -type f | wc -l)
    if ((rc != 0 || new > 0)); then
        failed=1
        status="CRASH (exit $rc, $new new artifact(s) in fuzz/artifacts/$t)"
        grep -m1 -E "panicked at|ERROR: (libFuzzer|AddressSanitizer)" "$log" || true
    else
        status="ok"
    fi
    line=$(printf '%-8s %6ss  %12s execs  corpus %5s  %s' "$t" "$secs" "${execs:-?}" "$corpus" "$status")
    echo "$line"
    summary+=("$line")
done

echo
echo "== summary ($(date -u +%Y-%m-%dT%H:%M:%SZ))"
printf '%s\n' "${summary[@]}"
exit "$failed"
