#!/usr/bin/env bash
# Installs redis-server (Debian package) unless it is already on PATH. The
# tests of bayeux/redis start their own redis-server processes on free
# ports of 127.0.0.1; without it they are skipped.
set -euo pipefail
if command -v redis-server >/dev/null; then
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "redis-server is missing and apt-get is not available: install Redis 7 by hand" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends redis-server >/dev/null
# The package may start a system-wide server on 6379; the tests do not use it.
command -v redis-server >/dev/null
redis-server --version
