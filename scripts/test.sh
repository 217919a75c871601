#!/usr/bin/env bash
# Runs every test: the guest library natively, the host's unit tests, and the end-to-end tests
# that start the real binary. Release profile: the embedded module compiles ~10x faster there.
set -euo pipefail
cd "$(dirname "$0")/.."
# A CI machine builds from clean once: incremental state (on for the release profile, for the
# edit-test loop) would only cost the time to write it.
if [ -n "${CI:-}" ]; then export CARGO_INCREMENTAL=0; fi
bash scripts/setup.sh
bash scripts/peers.sh
cargo test --release --workspace --locked
