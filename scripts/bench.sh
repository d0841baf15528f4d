#!/usr/bin/env bash
# Compares Bayou with the npm faye 1.4.3 server and with a raw broadcast
# "yardstick" (bayou-bench yardstick: pre-encoded, batched frames; the most
# this machine can do) under the same load generator (cmd/bayou-bench), and
# Bayou with channel history ("bayou-history") with Bayou without, then
# prints a side-by-side table with ratios and every target's pass/fail.
#
#   make bench-compare            # or: ./scripts/bench.sh
#
# Every scenario runs against each server in turn (faye, bayou[, yardstick]),
# each on a fresh server process, for ROUNDS rounds (A B A B ...). Results
# are combined as the median of the rounds; per-round values are printed
# too. Everything listens on 127.0.0.1 only. The whole run stays within
# BENCH_BUDGET seconds plus a minute: rounds beyond the second are skipped
# when the budget would not allow another one, each run's time limit is cut
# to what is left, and runs that would start after the deadline are skipped
# (and reported as missing).
#
# The machine may be shared: before each run the script waits (at most
# QUIET_WAIT seconds) for other processes to use less than QUIET_CORES of
# CPU, and every result records the CPU other processes used during its
# measured window ("other procs' CPU" in the table).
#
# BAYOU_BASE=<path of another bayou binary> adds it ("bayou-base") beside
# bayou in the fan-out and personal scenarios, for a before/after comparison
# of a change in one run (build it from the earlier commit in a worktree).
#
# Tunables (environment): ROUNDS (3), DURATION (8 s measured per run),
# WARMUP (3 s), IDLE_CLIENTS (10000), BENCH_BUDGET (1080 s), QUIET_WAIT
# (10 s), QUIET_CORES (0.5), BENCH_DIR (where results and server logs go;
# default a new temp dir).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-8}
WARMUP=${WARMUP:-3}
IDLE_CLIENTS=${IDLE_CLIENTS:-10000}
BENCH_BUDGET=${BENCH_BUDGET:-1080}
QUIET_WAIT=${QUIET_WAIT:-10}
QUIET_CORES=${QUIET_CORES:-0.5}
BENCH_DIR=${BENCH_DIR:-$(mktemp -d /tmp/bayou-bench.XXXXXX)}
mkdir -p "$BENCH_DIR"
RESULTS="$BENCH_DIR/results.jsonl"
: >"$RESULTS"
START=$SECONDS
# shellcheck source=scripts/lib.sh
. scripts/lib.sh # say, stop_server, wait_server

say "setup: npm faye server, bayou and bayou-bench binaries (results in $BENCH_DIR)"
./scripts/npm-install.sh
mkdir -p bin
go build -o bin/bayou ./cmd/bayou
go build -o bin/bayou-bench ./cmd/bayou-bench
node -e 'console.log("faye", require("./compat/node/node_modules/faye/package.json").version)'
echo "machine: $(nproc) CPUs, $(uname -r); load average: $(cut -d' ' -f1-3 /proc/loadavg)"

trap stop_server EXIT

# start_server NAME LOG: starts a fresh server on a free port; sets
# SERVER_PID (the server process itself, for RSS and CPU) and SERVER_URL.
start_server() {
  local name=$1 log=$2
  case $name in
    faye) (cd compat/node && exec node faye-server.mjs --port 0 --timeout 25) >"$log" 2>&1 & ;;
    bayou) bin/bayou --addr 127.0.0.1:0 --timeout 25 --log-level warn >"$log" 2>&1 & ;;
    # bayou keeping the last 100 publications of every channel (in memory).
    bayou-base) "$BAYOU_BASE" --addr 127.0.0.1:0 --timeout 25 --log-level warn >"$log" 2>&1 & ;;
    bayou-history) bin/bayou --addr 127.0.0.1:0 --timeout 25 --log-level warn --history '/**=100' >"$log" 2>&1 & ;;
    yardstick) bin/bayou-bench yardstick --addr 127.0.0.1:0 --timeout 25 >"$log" 2>&1 & ;;
    *) echo "unknown server $name" >&2; return 1 ;;
  esac
  SERVER_PID=$!
  wait_server "$name" "$log"
}

# busy_cores: CPU cores the whole machine keeps busy, over about a second.
busy_cores() {
  local a b
  a=$(head -1 /proc/stat)
  sleep 1
  b=$(head -1 /proc/stat)
  awk -v a="$a" -v b="$b" -v n="$(nproc)" 'BEGIN {
    k = split(a, x, " "); split(b, y, " "); busy = 0; all = 0
    for (i = 2; i <= k && i <= 9; i++) { d = y[i] - x[i]; all += d; if (i != 5 && i != 6) busy += d }
    printf "%.2f", (all > 0) ? n * busy / all : 0 }'
}

# wait_quiet: waits up to QUIET_WAIT seconds for other processes to calm down.
wait_quiet() {
  local waited=0 busy
  while :; do
    busy=$(busy_cores)
    awk -v b="$busy" -v q="$QUIET_CORES" 'BEGIN { exit !(b <= q) }' && return 0
    if [ "$waited" -ge "$QUIET_WAIT" ]; then
      echo "   (machine still busy: other processes use $busy cores; running anyway)"
      return 0
    fi
    waited=$((waited + 1))
  done
}

# run_case ROUND LABEL SERVER MODE ARGS...: one run on a fresh server.
run_case() {
  local round=$1 label=$2 server=$3 mode=$4
  shift 4
  local log="$BENCH_DIR/$label-$server-$round.server.log"
  local left=$((BENCH_BUDGET + 60 - (SECONDS - START)))
  if [ "$left" -lt 30 ]; then
    echo "!! $label $server round $round: skipped, out of time (BENCH_BUDGET=${BENCH_BUDGET}s)"
    return 0
  fi
  local limit=$((left < 150 ? left : 150))
  wait_quiet
  start_server "$server" "$log" || { echo "!! $label $server round $round: server failed to start"; return 0; }
  sleep 1 # let the server settle
  timeout --kill-after=10 "$limit" bin/bayou-bench "$mode" --url "$SERVER_URL" --server-pid "$SERVER_PID" \
    --server "$server" --round "$round" --label "$label" --json "$RESULTS" "$@" ||
    echo "!! $label $server round $round: bayou-bench exited with status $? (see above)"
  stop_server
  if [ -s "$log" ]; then
    echo "   server log ($log), last lines:"
    grep -v 'serving Bayeux at' "$log" | tail -n 5 | sed 's/^/   | /' || true
  fi
}

LOAD=(--duration "$DURATION" --warmup "$WARMUP")

BASE=()
if [ -n "${BAYOU_BASE:-}" ]; then BASE=(bayou-base); fi

round() {
  local r=$1
  say "round $r: fan-out, 1,000 WebSocket subscribers, max rate"
  for s in faye bayou "${BASE[@]}" bayou-history yardstick; do run_case "$r" fanout-ws "$s" fanout --subs 1000 "${LOAD[@]}"; done
  say "round $r: fan-out, 1,000 subscribers of which 20% long-polling, max rate"
  for s in faye bayou "${BASE[@]}"; do run_case "$r" fanout-lp20 "$s" fanout --subs 1000 --lp 0.2 "${LOAD[@]}"; done
  say "round $r: fan-out, 1,000 WebSocket subscribers, 20 publishes/s (latency)"
  for s in yardstick bayou; do run_case "$r" fanout-20ps "$s" fanout --subs 1000 --pubs 1 --rate 20 "${LOAD[@]}"; done
  say "round $r: personal channels, 2,000 WebSocket subscribers, max rate"
  for s in faye bayou "${BASE[@]}" yardstick; do run_case "$r" personal-2000 "$s" personal --subs 2000 "${LOAD[@]}"; done
  say "round $r: $IDLE_CLIENTS idle WebSocket clients"
  for s in faye bayou; do run_case "$r" idle-10k "$s" idle --clients "$IDLE_CLIENTS" --settle 5; done
}

last=0
for r in $(seq "$ROUNDS"); do
  elapsed=$((SECONDS - START))
  if [ "$r" -gt 2 ] && [ $((elapsed + last + 30)) -gt "$BENCH_BUDGET" ]; then
    say "skipping rounds $r..$ROUNDS: ${elapsed}s used, a round takes about ${last}s, budget ${BENCH_BUDGET}s"
    break
  fi
  t0=$SECONDS
  round "$r"
  last=$((SECONDS - t0))
  echo "   round $r took ${last}s"
done

say "results ($((SECONDS - START))s in all; raw JSON lines in $RESULTS)"
bin/bayou-bench report "$RESULTS"
