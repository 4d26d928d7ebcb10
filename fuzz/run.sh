#!/usr/bin/env bash
# Runs every fuzz target for a bounded time, from its corpus in fuzz/corpus/<target>.
#
#   bash fuzz/run.sh [seconds per target, default 30] [target...]
#
# New inputs the fuzzer finds go to a scratch dir, not the corpus; set FUZZ_KEEP=1 to merge those that reach new
# code into the corpus afterwards. A crash fails the run and leaves its input in fuzz/artifacts/<target>/: fix
# it, then add that input to the target's corpus as a regression case.
#
# Built on stable Rust without a sanitizer (the targets are safe Rust; what they look for is a panic, an
# overflow with debug assertions on, a broken invariant, or a hang).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
shift || true
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --version 0.13.2
# Beside catwalk's own build (CARGO_TARGET_DIR or target/), apart: the fuzz build's flags differ.
flags=(--sanitizer none --debug-assertions --fuzz-dir fuzz --target-dir "${CARGO_TARGET_DIR:-$PWD/target}/fuzz")
cargo fuzz build "${flags[@]}"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list --fuzz-dir fuzz)
declare -A dict=([jsonrpc]=json [headers]=json [admin]=json [tenants]=toml [catalog]=toml)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for target in "${targets[@]}"; do
  mkdir -p "$scratch/$target" "fuzz/corpus/$target"
  options=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1)
  [ -z "${dict[$target]:-}" ] || options+=(-dict="fuzz/dict/${dict[$target]}.dict")
  log="$scratch/$target.log"
  if ! cargo fuzz run "${flags[@]}" "$target" "$scratch/$target" "fuzz/corpus/$target" -- "${options[@]}" >"$log" 2>&1; then
    tail -40 "$log"
    echo "fuzz: $target failed; its input is in fuzz/artifacts/$target/" >&2
    exit 1
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
  echo "fuzz: $target: $runs runs in ${seconds}s, $cov, no crash"
  if [ "${FUZZ_KEEP:-0}" = 1 ]; then
    cargo fuzz run "${flags[@]}" "$target" "fuzz/corpus/$target" "$scratch/$target" -- -merge=1 >/dev/null 2>&1
  fi
done
