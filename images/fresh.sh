#!/usr/bin/env bash
# A fresh machine as README's set-up meets it, in podman: bare Debian bookworm (the image test's base) with what
# the `rust:1.95-slim-bookworm` image adds (gcc, libc6-dev, ca-certificates, curl, and Rust 1.95: here this
# machine's toolchain, mounted read-only, since no Rust release server can be reached), and nothing else: no
# clang, no wasi-libc, no Node.
#
# 1. `cargo build --release -p catwalk` before any set-up: the build warns that the JavaScript runtime could not
#    be built, and `catwalk pack` says so.
# 2. README's set-up, `bash scripts/deps.sh` (clang, lld, llvm-ar, wasi-libc; Node 24 and npm 11), then the same build:
#    build.rs notices that the runtime can now be built, and `catwalk pack @modelcontextprotocol/server-memory`
#    packs it and its smoke test answers. These are the image's source stage's steps (deps.sh, then the build).
#
# It builds catwalk cold, in release (about 20 minutes on 2 cores), so tests/run.sh does not run it.
#
#   bash images/fresh.sh          (root)
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
source images/podman.sh

toolchain=$(rustc --print sysroot)
work="$scratch/fresh"
rm -rf "$work"
mkdir -p "$work"
git clone -q . "$work/src"
ca=()
[ -f /etc/ssl/certs/ca-certificates.crt ] && ca=(-v /etc/ssl/certs/ca-certificates.crt:/etc/catwalk-ca.crt:ro
    -e SSL_CERT_FILE=/etc/catwalk-ca.crt -e CARGO_HTTP_CAINFO=/etc/catwalk-ca.crt
    -e NODE_EXTRA_CA_CERTS=/etc/catwalk-ca.crt -e npm_config_cafile=/etc/catwalk-ca.crt)
verify=signatures
registry=$(npm config get registry 2>/dev/null || echo https://registry.npmjs.org/)
# A registry that publishes no signing keys (this machine's mirror) cannot have its packages verified.
[ "$(curl -s -o /dev/null -w '%{http_code}' "${registry%/}/-/npm/v1/keys")" = 200 ] || verify=off

podman run --rm --network host -v "$toolchain:/opt/rust:ro" -v "$work:/work" "${ca[@]}" \
    -e CATWALK_VERIFY="$verify" -e CARGO_HOME=/work/cargo -e CARGO_TARGET_DIR=/work/target \
    -e PATH=/opt/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    -w /work/src docker.io/library/debian:bookworm-slim bash -euo pipefail -c '
apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    gcc libc6-dev ca-certificates curl >/dev/null
for tool in clang node npm; do ! command -v $tool >/dev/null || { echo "$tool is already here" >&2; exit 1; }; done
t0=$SECONDS
cargo build --release --locked -p catwalk 2> /work/build1.log || { tail -20 /work/build1.log; exit 1; }
grep -q "JavaScript runtime (catwalk-js) could not be built" /work/build1.log
echo "1. built without the set-up in $((SECONDS - t0)) s: the runtime is missing, and the build says so"
if /work/target/release/catwalk pack @modelcontextprotocol/server-memory --state-dir /work/state 2> /work/pack1.log; then
    echo "packed without a runtime?" >&2; exit 1
fi
grep -q "built without its JavaScript runtime" /work/pack1.log
echo "   catwalk pack: $(grep -o "this catwalk was built without its JavaScript runtime[^(]*" /work/pack1.log)"
t0=$SECONDS
bash scripts/deps.sh
echo "2. scripts/deps.sh in $((SECONDS - t0)) s: $(clang --version | head -1); node $(node --version); npm $(npm --version)"
t0=$SECONDS
cargo build --release --locked -p catwalk 2> /work/build2.log || { tail -20 /work/build2.log; exit 1; }
if grep -q "could not be built" /work/build2.log; then grep "could not be built" /work/build2.log >&2; exit 1; fi
echo "   built again in $((SECONDS - t0)) s, with the runtime"
/work/target/release/catwalk pack @modelcontextprotocol/server-memory --state-dir /work/state 2>&1 | head -3
'
echo "fresh machine: ok in $((SECONDS - started)) s"
# The release binary it built stays, for the image sizes (CATWALK_BIN=... bash images/test.sh).
cp "$work/target/release/catwalk" "$scratch/catwalk-fresh-release"
rm -rf "$work"
