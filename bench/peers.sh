#!/usr/bin/env bash
# bench/peers.sh: catwalk and its peers side by side, in one run, on the same stdio servers.
#
#   bash bench/peers.sh                      # everything: RUNS=3 rounds of the whole matrix, then the report
#   RUNS=1 DURATION=5 bash bench/peers.sh    # quicker, noisier
#   BRIDGES='catwalk|ts' SERVERS=echo RUNS=1 bash bench/peers.sh
#
# 1. builds catwalk and catwalk-bench in release, and the WASI demo guest;
# 2. copies the harness of ../shared/bench into a scratch dir ($PEERS_DIR, default /var/tmp/catwalk-peers) and
#    installs the peers there at the baseline's versions (its setup.sh);
# 3. each round: the harness's whole matrix (the stdio floor, every bridge of bench/bridges.conf x every server),
#    then the new-session time of every bridge (catwalk-bench new-sessions), then the WASI rows (catwalk-bench wasi);
# 4. prints one table of medians over the rounds, with catwalk's ratio to the best peer (catwalk-bench report), and
#    writes it to $PEERS_DIR/results/<stamp>/report.md.
# Every server binds 127.0.0.1 and is stopped by its process group.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SHARED="${SHARED_BENCH:-$ROOT/../shared/bench}"
PEERS_DIR="${PEERS_DIR:-/var/tmp/catwalk-peers}"
RUNS="${RUNS:-3}"
PACKAGE="@modelcontextprotocol/server-everything@2026.8.31"   # the version the harness installs
# The harness's knobs (run-all.sh): 10 s per load phase; npx cold starts with a warm npm cache only.
export DURATION="${DURATION:-10}" BRIDGES="${BRIDGES:-.}" SERVERS="${SERVERS:-.}" NPX_COLD="${NPX_COLD:-0}"
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

cd "$ROOT"
cargo build --release -q -p catwalk -p catwalk-bench
cargo build --release -q --target wasm32-wasip1 -p catwalk-guest --example echo
TARGET="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
CATWALK="$TARGET/release/catwalk"
BENCH="$TARGET/release/catwalk-bench"

# The harness in a scratch copy, so that nothing is written into ../shared; it builds into its own target dir.
mkdir -p "$PEERS_DIR"
cp -a "$SHARED/." "$PEERS_DIR/"
chmod -R u+w "$PEERS_DIR"
(unset CARGO_TARGET_DIR; bash "$PEERS_DIR/setup.sh")
STATE="$PEERS_DIR/catwalk-state"
mkdir -p "$STATE"
sed -e "s|{CATWALK}|$CATWALK|g" -e "s|{STATE}|$STATE|g" "$ROOT/bench/bridges.conf" > "$PEERS_DIR/bridges-catwalk.conf"

STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
OUT="$PEERS_DIR/results/$STAMP"
mkdir -p "$OUT"
for round in $(seq 1 "$RUNS"); do
  echo "# round $round of $RUNS" >&2
  (unset CARGO_TARGET_DIR; RUN="$STAMP/round$round" BRIDGES_CONF="$PEERS_DIR/bridges-catwalk.conf" \
    bash "$PEERS_DIR/run-all.sh") >&2
  "$BENCH" new-sessions --bridges "$PEERS_DIR/bridges-catwalk.conf" --servers "$PEERS_DIR/servers.conf" \
    --dir "$PEERS_DIR" --filter "$BRIDGES" --server-filter "$SERVERS" --catwalk "$CATWALK" --package "$PACKAGE" \
    --json "$OUT/round$round/sessions.jsonl"
  "$BENCH" --catwalk "$CATWALK" wasi --json "$OUT/round$round/wasi.json"
done
"$BENCH" report --versions "$OUT/round1/versions.txt" "$OUT"/round*/ | tee "$OUT/report.md"
echo "report: $OUT/report.md" >&2
