#!/usr/bin/env bash
# Runs every test of the project. Installs what the tests need (the npm
# packages of the real faye and CometD clients, pinned in
# compat/node/package-lock.json) when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './compat/node/*'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change: $unformatted" >&2
  exit 1
fi

step "go vet"
go vet ./...

step "staticcheck"
staticcheck="$(go env GOPATH)/bin/staticcheck"
case "$("$staticcheck" -version 2>/dev/null || true)" in
  *"(0.8.2)"*) ;;
  *) go install honnef.co/go/tools/cmd/staticcheck@v0.8.2 ;;
esac
"$staticcheck" ./...

step "npm packages for the compatibility suites"
./scripts/npm-install.sh

step "redis-server for the Redis engine's tests"
./scripts/redis-install.sh

step "nginx for the reverse-proxy test (compat/node/test/nginx.test.mjs)"
./scripts/nginx-install.sh

step "go build (static, as the Dockerfile builds it)"
mkdir -p bin
./scripts/build-static.sh bin/bayou

step "go test -race (unit tests and wire probes against the bayou binary)"
go test -race -count=1 -timeout 15m ./...

step "fuzzing: each target for ${FUZZTIME:-20s} on its committed corpus"
FUZZTIME=${FUZZTIME:-20s} ./scripts/fuzz.sh

step "faye and CometD Node clients against bayou"
(cd compat/node && BAYOU_BIN="$PWD/../../bin/bayou" node --test --test-concurrency=2 test/)

step "packaging: the Dockerfile's steps, make install, the systemd unit"
./scripts/packaging-test.sh

step "browser suite: faye and CometD browser clients in headless Chromium, and examples/chat"
./compat/browser/run.sh
