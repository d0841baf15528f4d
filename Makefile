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

# Installs bin/bayou as $(DESTDIR)$(PREFIX)/bin/bayou and the systemd unit
# deploy/bayou.service as $(DESTDIR)$(UNITDIR)/bayou.service, its ExecStart
# set to $(PREFIX)/bin/bayou. DESTDIR stages the files for a package; PREFIX
# defaults to /usr/local, whose lib/systemd/system systemd reads too. bin/bayou
# is built first unless it is newer than every Go file, go.mod and go.sum
# (make test builds it static, as the Dockerfile does).
PREFIX ?= /usr/local
UNITDIR ?= $(PREFIX)/lib/systemd/system
GO_SOURCES := $(shell find . -path ./compat/node/node_modules -prune -o -name '*.go' ! -name '*_test.go' -print)
.PHONY: install
install: bin/bayou
	install -d '$(DESTDIR)$(PREFIX)/bin' '$(DESTDIR)$(UNITDIR)'
	install -m 0755 bin/bayou '$(DESTDIR)$(PREFIX)/bin/bayou'
	sed 's|^ExecStart=/usr/local/bin/bayou$$|ExecStart=$(PREFIX)/bin/bayou|' deploy/bayou.service >'$(DESTDIR)$(UNITDIR)/bayou.service'
	chmod 0644 '$(DESTDIR)$(UNITDIR)/bayou.service'

bin/bayou: $(GO_SOURCES) go.mod go.sum
	go build -o bin/bayou ./cmd/bayou
