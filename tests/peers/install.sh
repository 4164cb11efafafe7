#!/usr/bin/env bash
# Install the real receivers that integration tests start, into .peers/ (git-ignored), only when they are
# missing or not the pinned version: the Etsy statsd daemon and @fluent-org/logger's FluentServer (a
# Fluentd forward-protocol server), both from npm (../shared/reference/PEERS.md sections 3.A and 4).
# MIXERD_PEERS picks another folder.
set -euo pipefail
cd "$(dirname "$0")/../.."
NODE_DIR="${MIXERD_PEERS:-.peers}/node"
PACKAGES=("statsd@0.9.0" "@fluent-org/logger@1.0.10")

installed() {  # installed NAME VERSION: is that version in NODE_DIR?
  grep -qs "\"version\": \"$2\"" "$NODE_DIR/node_modules/$1/package.json"
}

missing=0
for package in "${PACKAGES[@]}"; do
  installed "${package%@*}" "${package##*@}" || missing=1
done
[ "$missing" = 0 ] && exit 0

command -v npm >/dev/null || { echo "tests/peers/install.sh: npm is needed to install ${PACKAGES[*]}" >&2; exit 1; }
mkdir -p "$NODE_DIR"
[ -f "$NODE_DIR/package.json" ] || echo '{"name": "mixerd-test-peers", "private": true}' >"$NODE_DIR/package.json"
# No install scripts: the only one (statsd's optional syslog logger) builds native code we do not use.
npm install --prefix "$NODE_DIR" --no-audit --no-fund --ignore-scripts --loglevel=error "${PACKAGES[@]}"
