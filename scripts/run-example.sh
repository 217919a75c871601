#!/usr/bin/env bash
# Builds kubernetai and serves the example clusters of examples/ on port 1053 (and 1054 for the
# failover block). Query it with: dig @127.0.0.1 -p 1053 web.shop.svc.cluster.local
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec cargo run --release -p kubernetai -- -conf examples/Corefile -dns.port "${PORT:-1053}"
