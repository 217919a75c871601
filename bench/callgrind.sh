#!/usr/bin/env bash
# User-space instructions per answered query (the host and the native library), counted by callgrind (repeatable on a noisy machine,
# where CPU time is not): the server with the native module (`-module native`, so callgrind
# sees every instruction; a wasm module's JIT code would be counted too but run slowly) and
# `prometheus` on, answering the same name N and 6N times; the difference over 5N queries
# leaves out the start. Usage: bash bench/callgrind.sh [BINARY] [N]
# MODULE=builtin counts the wasm module instead (its compiled code included, and the host's
# heap calls around it: the contract's `host.answer` path).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/peers.sh valgrind:valgrind dnsperf:dnsperf
BIN=${1:-target/release/kubernetai}
N=${2:-2000}
MODULE=${MODULE:-native}
MODULE_ARGS=(-module "$MODULE")
[ "$MODULE" != builtin ] || MODULE_ARGS=()
[ -x "$BIN" ] || cargo build --release --locked -p kubernetai --bin kubernetai
WORK=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$WORK"' EXIT

# Instructions of one run answering $1 queries.
count() {
    local queries=$1 port
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    cat > "$WORK/Corefile" <<EOC
.:$port {
    bind 127.0.0.1
    prometheus 127.0.0.1:0
    kubernetai cluster.local {
        manifests $PWD/examples/clusters/local.json
    }
}
EOC
    valgrind --tool=callgrind --callgrind-out-file="$WORK/out" "$BIN" -conf "$WORK/Corefile" -admin none \
        "${MODULE_ARGS[@]}" > "$WORK/log" 2>&1 &
    local pid=$!
    for _ in $(seq 120); do
        dig +short +tries=1 +time=1 @127.0.0.1 -p "$port" kubernetes.default.svc.cluster.local > /dev/null 2>&1 && break
        sleep 0.5
    done
    yes "kubernetes.default.svc.cluster.local A" | head -n "$queries" > "$WORK/queries"
    dnsperf -s 127.0.0.1 -p "$port" -d "$WORK/queries" -c 1 -q 10 > "$WORK/perf" 2>&1
    kill -INT "$pid"
    wait "$pid" || true
    grep -q "Queries completed: *$queries " "$WORK/perf" || { echo "not every query answered:"; cat "$WORK/perf"; exit 1; }
    local instructions
    instructions=$(callgrind_annotate "$WORK/out" 2> /dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
    echo "$instructions $(heap_calls "$WORK/out")"
}

# Calls to malloc, calloc and realloc in a callgrind profile (its call edges, names compressed).
heap_calls() {
    python3 - "$1" <<'EOP'
import re, sys
names, total, target = {}, 0, None
for line in open(sys.argv[1]):
    m = re.match(r"c?fn=\((\d+)\)(?: (.*))?", line)
    if m:
        if m.group(2):
            names[m.group(1)] = m.group(2).strip()
        target = names.get(m.group(1)) if line.startswith("cfn=") else None
    elif line.startswith("calls=") and target in ("malloc", "calloc", "realloc"):
        total += int(line.split()[0][6:])
print(total)
EOP
}

read -r small small_heap <<< "$(count "$N")"
read -r large large_heap <<< "$(count $((6 * N)))"
echo "user-space instructions per answered query: $(((large - small) / (5 * N))) ($BIN, $MODULE module, prometheus on)"
echo "heap allocations per answered query: $(python3 -c "print(f'{max(0.0, ($large_heap - $small_heap) / (5 * $N)):.2f}')")"
