# Shell functions shared by scripts/bench.sh and scripts/attack.sh, which
# source it from the repository's root. It sets SERVER_PID and SERVER_URL
# empty; the scripts set their own traps (stop_server on EXIT).
# shellcheck shell=bash

SERVER_PID=""
SERVER_URL=""

say() { printf '\n==> %s\n' "$*"; }

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

# wait_server NAME LOG: once a server writing to LOG was started in the
# background and SERVER_PID set to it, waits up to 15 s for its "serving
# Bayeux at" line and sets SERVER_URL from it. When none comes (or the
# server exits first), prints LOG, stops the server and fails.
wait_server() {
  local name=$1 log=$2
  SERVER_URL=""
  for _ in $(seq 150); do
    SERVER_URL=$(sed -n 's/.*serving Bayeux at \(http:[^ ]*\).*/\1/p' "$log" | head -1)
    [ -n "$SERVER_URL" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$SERVER_URL" ]; then
    echo "$name did not start:" >&2
    cat "$log" >&2
    stop_server
    return 1
  fi
}
