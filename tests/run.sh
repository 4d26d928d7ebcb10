#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs the test dependencies (the WASI Rust targets, npm packages
# pinned by tests/package-lock.json), then lints, builds the WASI guests, runs the Rust unit and end-to-end tests,
# the official TypeScript SDK clients against catwalk, and the MCP conformance suite through catwalk (npm fixture
# and WASI guests), and the container image (podman; see images/test.sh).
#
#   bash tests/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-$PWD/target}"

echo "== toolchain targets and npm test dependencies"
rustup target add wasm32-wasip1 wasm32-wasip2 >/dev/null
npm ci --prefix tests --no-audit --no-fund --loglevel=error

echo "== format and lints"
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings

echo "== WASI guests (the conformance fixture and the hostile guests)"
hostile=""
for attack in fs-read fs-write env net spin memory flood recursion; do hostile="$hostile -p catwalk-hostile-$attack"; done
cargo build --release --target wasm32-wasip1 -p catwalk-conformance-guest $hostile
cargo build --release --target wasm32-wasip2 -p catwalk-conformance-guest -p catwalk-hostile-net
cargo build --target wasm32-wasip1 -p catwalk-guest --examples

echo "== Rust unit and end-to-end tests"
cargo test --workspace

echo "== TypeScript SDK clients and the conformance suite"
cargo build -p catwalk
CATWALK_BIN="$target/debug/catwalk" CATWALK_STATE_DIR="$target/test-state" node --test tests/js/

echo "== the container image: built with podman from the binary above, run, and spoken to over HTTP"
CATWALK_BIN="$target/debug/catwalk" bash images/test.sh
