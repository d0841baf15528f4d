#!/usr/bin/env bash
# Scale scenario: N WebSocket clients, each subscribed to its own channel
# (/users/<i>), then one publish to every channel; see `bayou-bench scale -h`.
#
#   N=10000 ./scripts/scale.sh                 # one bayou node
#   N=10000 CLUSTER=3 ./scripts/scale.sh       # three nodes on a Redis of their own,
#                                              # then node 1's kill -9 and restart
#
# It builds bin/bayou and bin/bayou-bench, raises the open-file limit (ulimit
# -n) of the servers and the tool to the hard limit (it cannot go past it;
# the tool says when the run needs more), starts the server(s) on free
# loopback ports, runs the tool, prints its summary, and stops everything it
# started (trap), the whole within SCALE_BUDGET seconds.
#
# One process (a node, or the tool) cannot have more sockets than the hard
# open-file limit allows (ulimit -Hn; raising it needs privileges): past it,
# the clients are spread over PROCS tool processes (bayou-bench scale
# --procs) and CLUSTER nodes. For example, on a machine whose hard limit is
# 20,000: N=100000 CLUSTER=6 PROCS=6 (about 16,700 sockets per process).
#
# Environment: N (10000 clients), CLUSTER (1, or 3 or more nodes over
# Redis), PROCS (tool processes; default: one per 18,000 clients), PUB (api: batches to the HTTP API; ws: WebSocket publishers),
# PUBS (4), RESTART (1 with CLUSTER=3: kill -9 node 1 after the first
# round and restart it), CONCURRENCY (64), SCALE_BUDGET (600 s), SCALE_DIR
# (logs and the JSON line; default a new temp dir), REDIS_SERVER
# (redis-server), EXTRA (more bayou-bench flags).
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-10000}
CLUSTER=${CLUSTER:-1}
PROCS=${PROCS:-$(((N + 17999) / 18000))}
PUB=${PUB:-api}
PUBS=${PUBS:-4}
RESTART=${RESTART:-1}
CONCURRENCY=${CONCURRENCY:-64}
SCALE_BUDGET=${SCALE_BUDGET:-600}
SCALE_DIR=${SCALE_DIR:-$(mktemp -d /tmp/bayou-scale.XXXXXX)}
REDIS_SERVER=${REDIS_SERVER:-redis-server}
mkdir -p "$SCALE_DIR"
# shellcheck source=scripts/lib.sh
. scripts/lib.sh # say

PIDS=() # children to reap; the nodes are not ours (see start_node)
cleanup() {
  local f p
  for f in "$SCALE_DIR"/*.pid; do
    [ -e "$f" ] || continue
    p=$(cat "$f")
    kill -TERM "$p" 2>/dev/null || true
  done
  sleep 0.5
  for f in "$SCALE_DIR"/*.pid; do
    [ -e "$f" ] || continue
    p=$(cat "$f")
    kill -KILL "$p" 2>/dev/null || true
    rm -f "$f"
  done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

say "setup: bin/bayou, bin/bayou-bench (logs in $SCALE_DIR)"
mkdir -p bin
go build -o bin/bayou ./cmd/bayou
go build -o bin/bayou-bench ./cmd/bayou-bench
hard=$(ulimit -Hn)
ulimit -n "$hard"
echo "open-file limit: $(ulimit -n) (hard $hard); clients per node: about $((N / CLUSTER)), per tool process: about $((N / PROCS))"
if [ "$hard" != unlimited ] && [ "$((N / CLUSTER + 200))" -gt "$hard" ]; then
  echo "!! the hard open-file limit ($hard) is below what a node needs for $((N / CLUSTER)) clients: expect failed set-ups" >&2
fi

# free_port: a TCP port nothing listens on now.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# wait_line FILE PATTERN PID: waits up to 15 s for PATTERN in FILE while PID lives.
wait_line() {
  for _ in $(seq 150); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    kill -0 "$3" 2>/dev/null || break
    sleep 0.1
  done
  echo "!! $1: no '$2' line:" >&2
  cat "$1" >&2
  return 1
}

# start_node I: starts bayou node I on its ports (BAYOU_PORT[I], API_PORT[I]).
start_node() {
  local i=$1 log="$SCALE_DIR/node$1.log"
  # Started from a subshell, so that the shell does not report its kill -9.
  # shellcheck disable=SC2086
  (bin/bayou --addr "127.0.0.1:${BAYOU_PORT[$i]}" --api-addr "127.0.0.1:${API_PORT[$i]}" --log-level warn \
    --timeout 25 $REDIS_FLAG >>"$log" 2>&1 &
    echo $! >"$SCALE_DIR/node$i.pid")
  wait_line "$log" "serving the HTTP API" "$(cat "$SCALE_DIR/node$i.pid")"
}

REDIS_FLAG=""
EXTRA_FLAGS=()
if [ "$CLUSTER" -gt 1 ]; then
  REDIS_PORT=$(free_port)
  "$REDIS_SERVER" --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --maxclients 1000 \
    >"$SCALE_DIR/redis.log" 2>&1 &
  echo $! >"$SCALE_DIR/redis.pid"
  PIDS+=($!)
  wait_line "$SCALE_DIR/redis.log" "Ready to accept connections" "$(cat "$SCALE_DIR/redis.pid")"
  REDIS_FLAG="--redis redis://127.0.0.1:$REDIS_PORT/0"
  EXTRA_FLAGS+=(--redis "127.0.0.1:$REDIS_PORT")
  echo "redis-server $("$REDIS_SERVER" --version | awk '{print $3}') on port $REDIS_PORT"
fi

BAYOU_PORT=()
API_PORT=()
URLS=""
NODE_PIDS=""
for i in $(seq 0 $((CLUSTER - 1))); do
  BAYOU_PORT[i]=$(free_port)
  API_PORT[i]=$(free_port)
  start_node "$i"
  URLS="$URLS${URLS:+,}http://127.0.0.1:${BAYOU_PORT[$i]}/bayeux"
  NODE_PIDS="$NODE_PIDS${NODE_PIDS:+,}$(cat "$SCALE_DIR/node$i.pid")"
done
echo "nodes: $URLS (pids $NODE_PIDS)"

if [ "$CLUSTER" -ge 3 ] && [ "$RESTART" = 1 ]; then
  # Node 0 holds a third of the clients: kill -9 it, start it again on the
  # same ports; the probe listens on node 1 and publishes through node 2.
  cat >"$SCALE_DIR/restart.sh" <<EOF
#!/usr/bin/env bash
set -eu
kill -KILL "\$(cat '$SCALE_DIR/node0.pid')"
while kill -0 "\$(cat '$SCALE_DIR/node0.pid')" 2>/dev/null; do sleep 0.01; done
bin/bayou --addr 127.0.0.1:${BAYOU_PORT[0]} --api-addr 127.0.0.1:${API_PORT[0]} --log-level warn --timeout 25 $REDIS_FLAG \
  >>'$SCALE_DIR/node0-restarted.log' 2>&1 &
echo \$! >'$SCALE_DIR/node0.pid'
for _ in \$(seq 150); do grep -q 'serving the HTTP API' '$SCALE_DIR/node0-restarted.log' && exit 0; sleep 0.1; done
echo 'node 0 did not come back' >&2
exit 1
EOF
  chmod +x "$SCALE_DIR/restart.sh"
  EXTRA_FLAGS+=(--restart-cmd "$SCALE_DIR/restart.sh"
    --probe-sub "http://127.0.0.1:${BAYOU_PORT[1]}/bayeux" --probe-pub "http://127.0.0.1:${BAYOU_PORT[2]}/bayeux")
fi

say "bayou-bench scale: $N clients, $CLUSTER node(s), $PROCS tool process(es), publishing via $PUB"
# shellcheck disable=SC2086
timeout --kill-after=10 "$SCALE_BUDGET" bin/bayou-bench scale --url "$URLS" --clients "$N" \
  --api-url "http://127.0.0.1:${API_PORT[1 % CLUSTER]}/" --pub "$PUB" --pubs "$PUBS" --concurrency "$CONCURRENCY" \
  --procs "$PROCS" --server-pid "$NODE_PIDS" --json "$SCALE_DIR/results.jsonl" "${EXTRA_FLAGS[@]}" ${EXTRA:-} ||
  echo "!! bayou-bench exited with status $?"
for f in "$SCALE_DIR"/node*.log; do
  if grep -qv 'serving' "$f"; then
    echo "   $f, last lines:"
    grep -v 'serving' "$f" | tail -n 5 | sed 's/^/   | /'
  fi
done
echo "results: $SCALE_DIR/results.jsonl"
