#!/usr/bin/env bash
# Soak: C clients (80% WebSocket, 20% long-polling) with churn while
# publishes flow to shared and personal channels; bayou's RSS, goroutines,
# sessions and channels are sampled and judged flat (or not) after the
# warm-up; see `bayou-bench soak -h`.
#
#   ./scripts/soak.sh                          # 10,000 clients for 10 minutes
#   C=2000 DURATION=60s SAMPLE=5s ./scripts/soak.sh
#
# It builds bin/bayou and bin/bayou-bench, raises the open-file limit to the
# hard limit, starts bayou (with --api-addr and --pprof) on free loopback
# ports, runs the soak, prints the series and the verdicts, and stops bayou
# (trap), the whole bounded by the duration plus five minutes.
#
# Environment: C (10000), DURATION (10m; whole seconds, minutes or hours), SAMPLE (10s), SOAK_DIR (logs and
# the JSON line; default a new temp dir), EXTRA (more bayou-bench flags).
set -euo pipefail
cd "$(dirname "$0")/.."

C=${C:-10000}
DURATION=${DURATION:-10m}
SAMPLE=${SAMPLE:-10s}
SOAK_DIR=${SOAK_DIR:-$(mktemp -d /tmp/bayou-soak.XXXXXX)}
mkdir -p "$SOAK_DIR"
# shellcheck source=scripts/lib.sh
. scripts/lib.sh # say, stop_server, wait_server

say "setup: bin/bayou, bin/bayou-bench (logs in $SOAK_DIR)"
mkdir -p bin
go build -o bin/bayou ./cmd/bayou
go build -o bin/bayou-bench ./cmd/bayou-bench
ulimit -n "$(ulimit -Hn)"
echo "open-file limit: $(ulimit -n)"
trap stop_server EXIT

port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }
API_PORT=$(port)
PPROF_PORT=$(port)
log="$SOAK_DIR/bayou.log"
bin/bayou --addr 127.0.0.1:0 --api-addr "127.0.0.1:$API_PORT" --pprof "127.0.0.1:$PPROF_PORT" \
  --timeout 25 --log-level warn >"$log" 2>&1 &
SERVER_PID=$!
wait_server bayou "$log"

# The time limit: DURATION (a number with s, m or h) plus five minutes.
case $DURATION in
  *h) secs=$((${DURATION%h} * 3600)) ;;
  *m) secs=$((${DURATION%m} * 60)) ;;
  *s) secs=${DURATION%s} ;;
  *) secs=$DURATION ;;
esac
say "bayou-bench soak: $C clients for $DURATION"
# shellcheck disable=SC2086
timeout --kill-after=10 $((secs + 300)) bin/bayou-bench soak --url "$SERVER_URL" \
  --api-url "http://127.0.0.1:$API_PORT/" --pprof-url "http://127.0.0.1:$PPROF_PORT/debug/pprof/" \
  --server-pid "$SERVER_PID" --clients "$C" --duration "$DURATION" --sample "$SAMPLE" \
  --json "$SOAK_DIR/results.jsonl" ${EXTRA:-} || echo "!! bayou-bench exited with status $?"
if grep -qv 'serving' "$log"; then
  echo "   bayou log, last lines:"
  grep -v 'serving' "$log" | tail -n 5 | sed 's/^/   | /'
fi
echo "results: $SOAK_DIR/results.jsonl"
