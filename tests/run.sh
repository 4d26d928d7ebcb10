#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs the test dependencies (npm packages pinned by
# tests/package-lock.json), then lints, runs the Rust unit and end-to-end tests, the official TypeScript SDK
# clients against catwalk, and the MCP conformance suite through catwalk.
#
#   bash tests/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-$PWD/target}"

echo "== npm test dependencies"
npm ci --prefix tests --no-audit --no-fund --loglevel=error

echo "== format and lints"
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings

echo "== Rust unit and end-to-end tests"
cargo test --workspace

echo "== TypeScript SDK clients and the conformance suite"
cargo build -p catwalk
CATWALK_BIN="$target/debug/catwalk" CATWALK_STATE_DIR="$target/test-state" node --test tests/js/
