#!/usr/bin/env bash
# Runs the browser suite: the real faye and CometD browser clients in
# headless Chromium against Bayou, and the two-page test of examples/chat.
#
# Installs what it needs when it is missing: Debian's chromium (apt-get; no
# tool downloads a browser of its own) and the pinned npm packages (faye,
# cometd, playwright-core: compat/browser/package-lock.json). Builds
# compat/testserver, examples/chat and cmd/bayou into bin/.
#
# Usage: compat/browser/run.sh [extra node --test arguments, e.g. test/chat.test.mjs]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

if [ ! -x "$CHROMIUM" ]; then
  echo "installing Debian's chromium (missing: $CHROMIUM)"
  command -v apt-get >/dev/null || { echo "apt-get not found: install Chromium and set CHROMIUM=/path/to/it" >&2; exit 1; }
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
  [ -x "$CHROMIUM" ] || { echo "chromium was installed but $CHROMIUM is missing" >&2; exit 1; }
fi
"$CHROMIUM" --version 2>/dev/null || true

command -v node >/dev/null || { echo "node is required (Debian: apt-get install nodejs npm)" >&2; exit 1; }
cd "$here"
if [ ! -d node_modules/faye ] || [ ! -d node_modules/cometd ] || [ ! -d node_modules/playwright-core ] \
   || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  # playwright-core has no install step; the variable is belt and braces.
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
fi

mkdir -p "$root/bin"
(cd "$root" && go build -o bin/testserver ./compat/testserver && go build -o bin/chat ./examples/chat && go build -o bin/bayou ./cmd/bayou)
export BAYOU_TESTSERVER="$root/bin/testserver" BAYOU_CHAT="$root/bin/chat" BAYOU_BIN="$root/bin/bayou"

if [ "$#" -eq 0 ]; then set -- test/; fi
# Every wait in the suite is bounded; this bounds the whole run (it takes
# about half a minute).
exec timeout --kill-after=10 300 node --test --test-concurrency=2 --test-force-exit "$@"
