#!/usr/bin/env bash
# Runs every Go fuzz target of the repository, one after another, each for
# FUZZTIME (default 20s) with FUZZ_PARALLEL workers (default 1). Each target
# starts from its seeds and its corpus committed under the package's
# testdata/fuzz/<Target>/; what it finds interesting is kept in Go's cache.
# Fails when any target fails, after running them all: the input that made
# a target fail is written to testdata/fuzz/<Target>/, where `go test`
# replays it (keep it there as a regression test once fixed).
#
#   FUZZTIME=10m ./scripts/fuzz.sh          every target for 10 minutes
#   FUZZ_PARALLEL=4 ./scripts/fuzz.sh       four fuzzing workers per target
#
# FUZZ_MINIMIZE_TIME (default 5s) bounds the minimizing of each new input:
# Go's default, 60s, can spend most of a short run shrinking one large
# input while nothing is fuzzed.
set -euo pipefail
cd "$(dirname "$0")/.."

fuzztime=${FUZZTIME:-20s}
parallel=${FUZZ_PARALLEL:-1}
minimize=${FUZZ_MINIMIZE_TIME:-5s}

# The packages whose tests declare a fuzz target; `go test -list` then names
# their targets (it builds the test binary, so only these are listed).
packages=$(go list -f '{{.ImportPath}} {{.Dir}}' ./... | while read -r pkg dir; do
  if grep -qs '^func Fuzz' "$dir"/*_test.go; then echo "$pkg"; fi
done)

# deadline_race reports whether the fuzzing log $1 failed only because of
# the Go 1.26 coordinator race at the end of -fuzztime: the bare error
# "context deadline exceeded" and no failing input written, no panic.
deadline_race() {
  grep -q '^    context deadline exceeded$' "$1" &&
    ! grep -q 'Failing input written to\|panic:' "$1"
}

ran=0
failed=()
for pkg in $packages; do
  listed=$(go test -list '^Fuzz' "$pkg")
  for target in $(grep '^Fuzz' <<<"$listed" || true); do
    printf '\n--> %s %s for %s\n' "$pkg" "$target" "$fuzztime"
    ran=$((ran + 1))
    log=$(mktemp)
    if ! go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" \
      -fuzzminimizetime "$minimize" -parallel "$parallel" "$pkg" 2>&1 | tee "$log"; then
      if deadline_race "$log"; then
        echo "fuzz: $target stopped on Go's fuzz-coordinator deadline race (go.dev/issue/75804, fixed in Go 1.27): no failing input, counted as passed"
      else
        failed+=("$pkg $target")
      fi
    fi
    rm -f "$log"
  done
done

if [ "$ran" -eq 0 ]; then
  echo "fuzz: no fuzz targets found" >&2
  exit 1
fi
if [ "${#failed[@]}" -gt 0 ]; then
  printf '\nfuzz: %d of %d targets failed:\n' "${#failed[@]}" "$ran" >&2
  printf '  %s\n' "${failed[@]}" >&2
  exit 1
fi
printf '\nfuzz: all %d targets passed (%s each)\n' "$ran" "$fuzztime"
