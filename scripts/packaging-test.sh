#!/usr/bin/env bash
# Tests the packaging (make test runs it once bin/bayou is built):
#   1. the Dockerfile, through scripts/docker-steps.sh;
#   2. make install into a staging DESTDIR, with the default PREFIX and with
#      PREFIX=/usr: the binary and the systemd unit land where they should,
#      the unit's ExecStart names the installed binary;
#   3. the unit passes systemd-analyze verify without a word (it checks the
#      keys and values and that ExecStart and ExecReload are executables).
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "packaging-test: $*" >&2; exit 1; }

./scripts/docker-steps.sh

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
verify=true
if ! command -v systemd-analyze >/dev/null; then
  verify=false
  echo "packaging-test: systemd-analyze is missing (Debian's systemd package): the unit is NOT verified" >&2
fi

for prefix in /usr/local /usr; do
  dest="$stage/dest$prefix"
  make --no-print-directory install DESTDIR="$dest" PREFIX="$prefix" >/dev/null
  bin="$dest$prefix/bin/bayou"
  unit="$dest$prefix/lib/systemd/system/bayou.service"
  [ -x "$bin" ] || fail "PREFIX=$prefix: no executable $bin"
  cmp -s bin/bayou "$bin" || fail "PREFIX=$prefix: $bin differs from bin/bayou"
  [ -f "$unit" ] || fail "PREFIX=$prefix: no unit at $unit"
  [ "$(stat -c %a "$unit")" = 644 ] || fail "PREFIX=$prefix: $unit is not mode 644"
  exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
  [ "$exec_start" = "$prefix/bin/bayou" ] || fail "PREFIX=$prefix: ExecStart=$exec_start"
  help=$("$bin" --help 2>&1 || true)
  [[ "$help" == *--addr* ]] || fail "PREFIX=$prefix: $bin --help does not list --addr"
  if $verify; then
    # The unit as installed, but pointing at the staged binary, for
    # systemd-analyze checks that ExecStart exists on this machine.
    mkdir -p "$stage/verify$prefix"
    sed "s|^ExecStart=$prefix/bin/bayou\$|ExecStart=$bin|" "$unit" >"$stage/verify$prefix/bayou.service"
    out=$(systemd-analyze verify "$stage/verify$prefix/bayou.service" 2>&1) ||
      fail "systemd-analyze verify failed: $out"
    [ -z "$out" ] || fail "systemd-analyze verify complains: $out"
  fi
  echo "packaging-test: make install PREFIX=$prefix: $prefix/bin/bayou and $prefix/lib/systemd/system/bayou.service (verified: $verify)"
done
echo "packaging-test: ok"
