#!/usr/bin/env bash
# The fault soak of tests/e2e/soak.rs for a stated time (default 30 minutes): query load on UDP
# and TCP, the cluster churning behind a fake API server, and in turn, one every 1/20 of the run
# (at most 90 s apart): the API server down and back with a new history, every watch answered
# 410, every watch gone silent, a Corefile reload, a module swap. RSS sampled every second.
# Prints the `soak:` lines of figures; fails on any lost or wrong answer, a crash, or RSS growth
# beyond the test's bound.
#   bash scripts/soak-faults.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/peers.sh
KUBERNETAI_SOAK_SECONDS="${1:-1800}" cargo test --release --locked -p kubernetai --test e2e soak::faults -- --nocapture 2>&1 |
    grep -E '^soak:|^test |test result|panicked|lost|grew'
