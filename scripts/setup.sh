#!/usr/bin/env bash
# Makes a machine with only rustup ready to build: the pinned toolchain (rust-toolchain.toml)
# and its wasm32-wasip2 target, which rustup does not install by itself here.
set -euo pipefail
cd "$(dirname "$0")/.."
toolchain=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)
rustup toolchain install "$toolchain" --profile minimal >/dev/null 2>&1 || rustup toolchain install "$toolchain" --profile minimal
rustup target add --toolchain "$toolchain" wasm32-wasip2
