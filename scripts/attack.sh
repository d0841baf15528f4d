#!/usr/bin/env bash
# Measures issue 10's acceptance criterion: under every hostile-input attack
# (bayou-bench attack --kind all: invalid UTF-8 publishes, huge channels,
# deep nesting, slow bodies, subscribe floods, idle sockets, huge batches,
# handshake floods; each from one address), a normal client's handshake
# latency p99 stays under 1 s and the server's RSS comes back near its
# baseline afterwards.
#
#   ./scripts/attack.sh
#
# Two passes, each on a fresh bin/bayou: with the default settings, then
# with the per-address limits on (LIMITS; skipped with a note when
# bin/bayou --help does not list those flags: that pass then runs with the
# defaults too). Everything listens and connects on loopback only: the
# server on 127.0.0.1, the attacker from 127.0.0.1, the probe client and the
# utf8 attack's subscribers from PROBE_SOURCE (127.0.0.2), so that the
# per-address limits count them apart from the attacker, as they would a
# normal client elsewhere.
#
# Every run is bounded: each attack lasts DURATION seconds and waits at
# most RECOVER_WAIT seconds for the RSS; each pass is killed after
# 8 x (DURATION + RECOVER_WAIT + 15) seconds at the most. The servers are
# stopped on exit, whatever happens.
#
# Tunables (environment): DURATION (10), RECOVER_WAIT (30), WORKERS (8),
# KINDS (all), PROBE_SOURCE (127.0.0.2), LIMITS (--handshake-rate 50
# --max-connections-per-ip 200 --publish-rate 100), ATTACK_DIR (results
# and server logs; default a new temp dir).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
RECOVER_WAIT=${RECOVER_WAIT:-30}
WORKERS=${WORKERS:-8}
KINDS=${KINDS:-all}
PROBE_SOURCE=${PROBE_SOURCE:-127.0.0.2}
LIMITS=${LIMITS:---handshake-rate 50 --max-connections-per-ip 200 --publish-rate 100}
ATTACK_DIR=${ATTACK_DIR:-$(mktemp -d /tmp/bayou-attack.XXXXXX)}
mkdir -p "$ATTACK_DIR"
START=$SECONDS

say() { printf '\n==> %s\n' "$*"; }

say "building bin/bayou and bin/bayou-bench (results and logs in $ATTACK_DIR)"
mkdir -p bin
go build -o bin/bayou ./cmd/bayou
go build -o bin/bayou-bench ./cmd/bayou-bench
echo "machine: $(nproc) CPUs, $(uname -r); load average: $(cut -d' ' -f1-3 /proc/loadavg)"

SERVER_PID=""
SERVER_URL=""

# stop_server stops the running server, if any: TERM, then KILL after 5 s.
stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  for _ in $(seq 50); do
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}
trap stop_server EXIT
trap 'exit 130' INT TERM

# start_server LOG FLAGS...: starts bin/bayou on a free port of 127.0.0.1;
# sets SERVER_PID (the server process itself, for its RSS and CPU) and
# SERVER_URL, read from its "serving Bayeux at" line.
start_server() {
  local log=$1
  shift
  bin/bayou --addr 127.0.0.1:0 --log-level warn "$@" >"$log" 2>&1 &
  SERVER_PID=$!
  SERVER_URL=""
  for _ in $(seq 150); do
    SERVER_URL=$(sed -n 's/.*serving Bayeux at \(http:[^ ]*\).*/\1/p' "$log" | head -1)
    [ -n "$SERVER_URL" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$SERVER_URL" ]; then
    echo "bayou did not start:" >&2
    cat "$log" >&2
    stop_server
    return 1
  fi
}

# run_pass NAME FLAGS...: every attack against a fresh server started with FLAGS.
run_pass() {
  local name=$1
  shift
  local log="$ATTACK_DIR/$name.server.log"
  local limit=$((8 * (DURATION + RECOVER_WAIT + 15)))
  say "pass $name: bin/bayou $* (each attack ${DURATION}s, RSS wait up to ${RECOVER_WAIT}s)"
  start_server "$log" "$@"
  echo "   server $SERVER_URL, PID $SERVER_PID"
  sleep 1 # let the server settle before its baseline is read
  timeout --kill-after=10 "$limit" bin/bayou-bench attack --url "$SERVER_URL" --server-pid "$SERVER_PID" \
    --kind "$KINDS" --duration "${DURATION}s" --recover-wait "${RECOVER_WAIT}s" --workers "$WORKERS" \
    --probe-source "$PROBE_SOURCE" --server bayou --label "$name" --json "$ATTACK_DIR/results.jsonl" |
    tee "$ATTACK_DIR/$name.txt" || echo "!! pass $name: bayou-bench attack exited with status ${PIPESTATUS[0]}"
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "!! pass $name: the server died; its log:"
    tail -n 20 "$log" | sed 's/^/   | /'
  fi
  stop_server
  if grep -qv 'serving ' "$log"; then
    echo "   server log ($log), last lines:"
    grep -v 'serving ' "$log" | tail -n 5 | sed 's/^/   | /'
  fi
}

run_pass defaults

# shellcheck disable=SC2086 # LIMITS is a list of flags
if bin/bayou --help 2>&1 | grep -q -- '--handshake-rate' &&
  bin/bayou --help 2>&1 | grep -q -- '--max-connections-per-ip' &&
  bin/bayou --help 2>&1 | grep -q -- '--publish-rate'; then
  run_pass limits $LIMITS
else
  echo
  echo "!! bin/bayou --help does not list --handshake-rate, --max-connections-per-ip and --publish-rate yet:"
  echo "!! the second pass runs with the defaults too"
  run_pass defaults-again
fi

say "summary ($((SECONDS - START))s in all; JSON lines in $ATTACK_DIR/results.jsonl)"
for f in "$ATTACK_DIR"/*.txt; do
  echo
  echo "pass $(basename "$f" .txt):"
  sed -n '/^attack  *probe p50/,$p' "$f"
done
