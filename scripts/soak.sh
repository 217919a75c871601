#!/usr/bin/env bash
# The soak of tests/e2e/soak.rs for a stated time (default 10 minutes): query load on UDP and
# TCP, the cluster churning behind a fake API server, the module swapped every 1/8 of the run
# (at most 30 s apart), RSS sampled every second. Prints the `soak:` lines of figures; fails on
# any lost or wrong answer, a crash, or RSS growth beyond the test's bound.
#   bash scripts/soak.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/peers.sh
KUBERNETAI_SOAK_SECONDS="${1:-600}" cargo test --release --locked -p kubernetai --test e2e soak::churn -- --nocapture 2>&1 |
    grep -E '^soak:|^test |test result|panicked|lost|grew' 
