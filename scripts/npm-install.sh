#!/usr/bin/env bash
# Installs the npm packages of the compatibility suites (pinned by
# compat/node/package-lock.json) unless they are already installed.
set -euo pipefail
cd "$(dirname "$0")/../compat/node"
command -v node >/dev/null || { echo "node is required (Debian: apt-get install nodejs npm)" >&2; exit 1; }
if [ ! -d node_modules/faye ] || [ ! -d node_modules/cometd ] || [ ! -d node_modules/jsforce ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
