# The two commands a newcomer needs:
#   make run    start the server (in-memory engine) on http://127.0.0.1:8000/bayeux
#   make test   run every test: go vet, unit tests with the race detector, and the
#               compatibility suites with the real faye and CometD clients
.PHONY: run test build bench

run:
	go run ./cmd/bayou

test:
	./scripts/test.sh

# -buildvcs=auto records the VCS revision (bayou version) even where
# GOFLAGS turns it off.
build:
	go build -buildvcs=auto -o bin/bayou ./cmd/bayou

bench:
	go test -run '^$$' -bench . -benchmem ./channels/ ./bayeux/

# Bayou vs the npm faye 1.4.3 server vs a raw broadcast yardstick, on this
# machine: prints the comparison table, ratios and each target's pass/fail.
.PHONY: bench-compare
bench-compare:
	./scripts/bench.sh

# Run every fuzz target in turn from its committed corpus (testdata/fuzz).
# FUZZTIME sets the time per target (default 20s), e.g. make fuzz FUZZTIME=10m;
# FUZZ_PARALLEL the fuzzing workers per target (default 1).
.PHONY: fuzz
fuzz:
	FUZZTIME='$(FUZZTIME)' FUZZ_PARALLEL='$(FUZZ_PARALLEL)' ./scripts/fuzz.sh
