#!/usr/bin/env bash
# User-space instructions per answered query (the host and the native library), counted by callgrind (repeatable on a noisy machine,
# where CPU time is not): the server with the native module (`-module native`, so callgrind
# sees every instruction; a wasm module's JIT code would be counted too but run slowly) and
# `prometheus` on, answering the same name N and 6N times; the difference over 5N queries
# leaves out the start. Usage: bash bench/callgrind.sh [BINARY] [N]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/peers.sh valgrind:valgrind dnsperf:dnsperf
BIN=${1:-target/release/kubernetai}
N=${2:-2000}
[ -x "$BIN" ] || cargo build --release --locked -p kubernetai --bin kubernetai
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

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
        -module native > "$WORK/log" 2>&1 &
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
    callgrind_annotate "$WORK/out" 2> /dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}'
}

small=$(count "$N")
large=$(count $((6 * N)))
echo "user-space instructions per answered query: $(((large - small) / (5 * N))) ($BIN, native module, prometheus on)"
