#!/usr/bin/env bash
# What a build of catwalk with every part needs on a fresh Debian machine, installed only where missing:
# - the WASI Rust targets (the built-in demo guest, the test guests);
# - Debian's clang, lld, llvm (llvm-ar) and wasi-libc, which build QuickJS-ng's C sources for catwalk-js, the JavaScript runtime that
#   `catwalk pack` and `--sandbox wasi` for npm packages need (see .cargo/config.toml);
# - Node.js 24 and npm 11 where there is no Node 20 or later (scripts/node.sh, into /opt/node, linked from
#   /usr/local/bin): npm installs the packages catwalk serves and packs, and node bundles them.
#
#   bash scripts/deps.sh
set -euo pipefail
# A toolchain without rustup (one copied in whole, as the image test's fresh machine has) brings its targets.
if command -v rustup >/dev/null; then rustup target add wasm32-wasip1 wasm32-wasip2 >/dev/null; fi
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
if ! command -v clang >/dev/null || ! command -v llvm-ar >/dev/null || [ ! -d /usr/include/wasm32-wasi ] \
  || ! ls /usr/lib/llvm-*/lib/clang/*/lib/wasi/libclang_rt.builtins-wasm32.a >/dev/null 2>&1; then
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq clang lld llvm wasi-libc libclang-rt-dev-wasm32 >/dev/null
fi
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ] || ! command -v npm >/dev/null; then
  command -v curl >/dev/null || { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq curl ca-certificates >/dev/null; }
  $sudo bash "$(dirname "$0")/node.sh" /opt/node
  for tool in node npm npx; do $sudo ln -sf "/opt/node/bin/$tool" "/usr/local/bin/$tool"; done
fi
