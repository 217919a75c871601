#!/usr/bin/env bash
# Runs every cargo-fuzz target (fuzz/) for a bounded time each, one after another, starting from
# the cases kept in tests/fuzz/<target>/ (seeds and every crash found so far). A new crash is
# copied into tests/fuzz/<target>/, where tests/fuzz/replay.rs replays it in every test run, and
# the script fails. Prints executions and crashes per target: the figures the README quotes.
#   bash scripts/fuzz.sh [SECONDS_PER_TARGET]     (default 120)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --version 0.13.2
# cargo-fuzz passes -Z flags (sanitizer coverage, ASan); this lets the pinned stable toolchain
# take them instead of a nightly one, which these machines cannot fetch.
export RUSTC_BOOTSTRAP=1
secs="${1:-120}"
targets=$(cd fuzz && cargo fuzz list)
(cd fuzz && cargo fuzz build -O)
status=0
report=()
for t in $targets; do
    mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
    cp tests/fuzz/"$t"/* "fuzz/corpus/$t/"
    log="fuzz/artifacts/$t.log"
    started=$SECONDS
    (cd fuzz && cargo fuzz run -O "$t" -- -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1) >"$log" 2>&1 || true
    took=$((SECONDS - started))
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
    found=0
    for f in "fuzz/artifacts/$t"/*; do
        [ -f "$f" ] || continue
        name=$(basename "$f")
        if [ ! -e "tests/fuzz/$t/$name" ]; then
            cp "$f" "tests/fuzz/$t/$name"
            found=$((found + 1))
        fi
    done
    if [ "$found" -gt 0 ]; then
        status=1
        echo "!! $t: $found new crash(es), kept in tests/fuzz/$t/; libFuzzer said:" >&2
        grep -E 'ERROR|panicked|SUMMARY' "$log" | head -5 >&2
    fi
    report+=("$(printf '%-18s %6s s %12s executions %3s new crashes' "$t" "$took" "$runs" "$found")")
done
echo "fuzz: rustc $(rustc --version | cut -d' ' -f2), cargo-fuzz $(cargo fuzz --version | cut -d' ' -f2)"
printf '%s\n' "${report[@]}"
exit "$status"
