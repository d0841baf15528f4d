#!/usr/bin/env bash
# Installs nginx (Debian package) unless it is already there. The test
# compat/node/test/nginx.test.mjs runs its own nginx, on a free port of
# 127.0.0.1 with a prefix of its own, in front of bayou; without nginx that
# test fails.
set -euo pipefail
if command -v nginx >/dev/null || [ -x /usr/sbin/nginx ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "nginx is missing and apt-get is not available: install nginx by hand" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# nginx-light would do too; the package may start a system-wide nginx on
# port 80, which the test does not use.
$sudo apt-get install -y -qq --no-install-recommends nginx >/dev/null
nginx=$(command -v nginx || echo /usr/sbin/nginx)
"$nginx" -v
