#!/usr/bin/env bash
# What a build of catwalk with every part needs on a fresh Debian machine, installed only where missing:
# - the WASI Rust targets (the built-in demo guest, the test guests);
# - Debian's clang, lld and wasi-libc, which build QuickJS-ng's C sources for catwalk-js, the JavaScript runtime that
#   `catwalk pack` and `--sandbox wasi` for npm packages need (see .cargo/config.toml).
#
#   bash scripts/deps.sh
set -euo pipefail
rustup target add wasm32-wasip1 wasm32-wasip2 >/dev/null
if ! command -v clang >/dev/null || [ ! -d /usr/include/wasm32-wasi ] \
  || ! ls /usr/lib/llvm-*/lib/clang/*/lib/wasi/libclang_rt.builtins-wasm32.a >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq clang lld wasi-libc libclang-rt-dev-wasm32 >/dev/null
fi
