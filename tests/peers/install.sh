#!/usr/bin/env bash
# Install the real peers that integration tests start, only when they are missing: a Prometheus server
# and redis-server from Debian's packages (PEERS.md sections 2 and 1), Debian's chromium and
# chromium-driver (the admin page's browser test), and into .peers/ (git-ignored, or
# MIXERD_PEERS) the Etsy statsd daemon and @fluent-org/logger's FluentServer (a Fluentd forward-protocol
# server), both from npm at pinned versions (PEERS.md sections 3.A and 4).
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v prometheus >/dev/null; then
  command -v apt-get >/dev/null || { echo "tests/peers/install.sh: apt-get is needed to install prometheus" >&2; exit 1; }
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  # The package only installs the binary: its postinst cannot start a service here, and no test wants one.
  $sudo apt-get install -y --no-install-recommends prometheus >/dev/null 2>&1 \
    || { $sudo apt-get update >/dev/null && $sudo apt-get install -y --no-install-recommends prometheus >/dev/null; }
fi
if ! command -v redis-server >/dev/null; then
  command -v apt-get >/dev/null || { echo "tests/peers/install.sh: apt-get is needed to install redis-server" >&2; exit 1; }
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  # Its service is not started here (no systemd, policy-rc.d): tests start redis-server themselves.
  $sudo apt-get install -y --no-install-recommends redis-server >/dev/null 2>&1 \
    || { $sudo apt-get update >/dev/null && $sudo apt-get install -y --no-install-recommends redis-server >/dev/null; }
fi
# Headless Chromium and its WebDriver, for the browser test of the admin page (tests/integration/
# test_admin_browser.py drives /usr/bin/chromium through /usr/bin/chromedriver with selenium).
if ! [ -x /usr/bin/chromium ] || ! [ -x /usr/bin/chromedriver ]; then
  command -v apt-get >/dev/null || { echo "tests/peers/install.sh: apt-get is needed to install chromium" >&2; exit 1; }
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get install -y --no-install-recommends chromium chromium-driver >/dev/null 2>&1 \
    || { $sudo apt-get update >/dev/null && $sudo apt-get install -y --no-install-recommends chromium chromium-driver >/dev/null; }
fi
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
