#!/bin/sh
# Builds the bayou binary as the container image ships it: static (no cgo,
# so no libc is needed at run time), without local file paths (-trimpath)
# and without symbol tables (-s -w). Usage: scripts/build-static.sh OUTPUT
# The Dockerfile's build stage runs this script, and so does
# scripts/docker-steps.sh (run by make test) where no image builder runs.
set -eu
out=${1:?usage: $0 OUTPUT}
cd "$(dirname "$0")/.."
CGO_ENABLED=0 exec go build -trimpath -ldflags "-s -w" -o "$out" ./cmd/bayou
