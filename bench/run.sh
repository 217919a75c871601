#!/usr/bin/env bash
# The benchmark in one command: installs dnsperf, knot and NSD (Debian packages), builds the
# release binary, generates the clusters and runs bench/run.py. Flags go to run.py
# (--seconds, --services, --headless, --pods, --large-*); figures land in target/bench/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/peers.sh dnsperf:dnsperf nsd:nsd
cargo build --release --locked -p kubernetai --bin kubernetai --example fake_apiserver
exec python3 bench/run.py "$@"
