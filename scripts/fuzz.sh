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

ran=0
failed=()
for pkg in $packages; do
  listed=$(go test -list '^Fuzz' "$pkg")
  for target in $(grep '^Fuzz' <<<"$listed" || true); do
    printf '\n--> %s %s for %s\n' "$pkg" "$target" "$fuzztime"
    ran=$((ran + 1))
    if ! go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" \
      -fuzzminimizetime "$minimize" -parallel "$parallel" "$pkg"; then
      failed+=("$pkg $target")
    fi
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
