#!/usr/bin/env bash
# Makes a machine with only rustup ready to build: the pinned toolchain (rust-toolchain.toml)
# and its wasm32-wasip2 target, which rustup does not install by itself here.
set -euo pipefail
cd "$(dirname "$0")/.."
toolchain=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)
if ! rustup run "$toolchain" rustc --version >/dev/null 2>&1; then
    rustup toolchain install "$toolchain" --profile minimal
fi
rustup target add --toolchain "$toolchain" wasm32-wasip2
