#!/usr/bin/env bash
# Builds the container image from the Dockerfile with buildah (Debian's
# package; no daemon needed), checks its configuration, runs it and posts a
# Bayeux handshake to it. Needs root (buildah's chroot isolation) and the
# base images: pulled from their registries, or, with --stand-in-bases,
# made here when no registry is reachable (as on the project's machines):
#   golang:<go.mod's Go>-bookworm   busybox-static (Debian) + this machine's
#                                   /usr/local/go + CA certificates, with
#                                   the official image's PATH and GOPATH;
#   gcr.io/distroless/static-debian12:nonroot
#                                   /etc/passwd and /etc/group with nonroot
#                                   (65532), CA certificates, /tmp.
# Stand-ins exercise the Dockerfile with a real image builder; they are not
# the real images, and are removed at the end (as is the image built), so
# that no later build takes them for the real ones. Not part of make test (a build takes minutes); make test
# runs scripts/docker-steps.sh instead.
# Usage: scripts/image-test.sh [--stand-in-bases]
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "image-test: $*" >&2; exit 1; }
say() { echo "image-test: $*"; }

command -v buildah >/dev/null || fail "buildah is missing: apt-get install -y buildah"
[ "$(id -u)" -eq 0 ] || fail "run as root (buildah --isolation chroot)"
stand_in=false
case "${1:-}" in
--stand-in-bases) stand_in=true ;;
"") ;;
*) fail "unknown argument $1" ;;
esac

go_version=$(sed -n 's/^go \([0-9.]*\)$/\1/p' go.mod)
golang_image="docker.io/library/golang:${go_version}-bookworm"
static_image="gcr.io/distroless/static-debian12:nonroot"
image="localhost/bayou:image-test"
work=$(mktemp -d)
ctr="" run_pid=""
made=() # images this run made, removed at the end
cleanup() {
  if [ -n "$run_pid" ]; then kill "$run_pid" 2>/dev/null || true; wait "$run_pid" 2>/dev/null || true; fi
  if [ -n "$ctr" ]; then buildah rm "$ctr" >/dev/null 2>&1 || true; fi
  if [ "${#made[@]}" -gt 0 ]; then buildah rmi "${made[@]}" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

has_image() { buildah inspect --type image "$1" >/dev/null 2>&1; }

if $stand_in && ! has_image "$golang_image"; then
  [ "$(go env GOVERSION)" = "go$go_version" ] || fail "this machine's Go is $(go env GOVERSION), go.mod's go$go_version"
  say "making a stand-in for $golang_image"
  (cd "$work" && apt-get -o APT::Sandbox::User=root download busybox-static >/dev/null) || fail "apt-get download busybox-static failed"
  dpkg-deb -x "$work"/busybox-static_*.deb "$work/busybox"
  c=$(buildah from scratch)
  m=$(buildah mount "$c")
  mkdir -p "$m/bin" "$m/usr/local" "$m/etc/ssl/certs" "$m/tmp" "$m/go" "$m/root"
  chmod 1777 "$m/tmp"
  cp "$work/busybox/bin/busybox" "$m/bin/busybox"
  for applet in $("$m/bin/busybox" --list); do [ -e "$m/bin/$applet" ] || ln -s busybox "$m/bin/$applet"; done
  cp -a "$(go env GOROOT)" "$m/usr/local/go"
  cp -L /etc/ssl/certs/ca-certificates.crt "$m/etc/ssl/certs/"
  echo 'root:x:0:0:root:/root:/bin/sh' >"$m/etc/passwd"
  buildah umount "$c" >/dev/null
  buildah config --env PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env GOLANG_VERSION="$go_version" --env GOPATH=/go --env GOTOOLCHAIN=local --workingdir /go "$c"
  buildah commit -q "$c" "$golang_image" >/dev/null
  made+=("$golang_image")
  buildah rm "$c" >/dev/null
fi
if $stand_in && ! has_image "$static_image"; then
  say "making a stand-in for $static_image"
  c=$(buildah from scratch)
  m=$(buildah mount "$c")
  mkdir -p "$m/etc/ssl/certs" "$m/tmp" "$m/home/nonroot"
  chmod 1777 "$m/tmp"
  chown 65532:65532 "$m/home/nonroot"
  printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' 'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' \
    'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' >"$m/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nobody:x:65534:' 'nonroot:x:65532:' >"$m/etc/group"
  cp -L /etc/ssl/certs/ca-certificates.crt "$m/etc/ssl/certs/"
  buildah umount "$c" >/dev/null
  buildah config --user 65532 --workingdir /home/nonroot "$c"
  buildah commit -q "$c" "$static_image" >/dev/null
  made+=("$static_image")
  buildah rm "$c" >/dev/null
fi

say "buildah build -t $image ."
pull=()
if $stand_in; then pull=(--pull=never); fi
start=$(date +%s)
made=("$image" "${made[@]}")
buildah build --isolation chroot "${pull[@]}" -t "$image" . >"$work/build.log" 2>&1 ||
  fail "build failed: $(tail -n 30 "$work/build.log")"
say "built in $(($(date +%s) - start)) s: $(buildah images --format '{{.Size}}' "$image")"

config=$(buildah inspect --type image --format \
  'user={{.OCIv1.Config.User}} entrypoint={{.OCIv1.Config.Entrypoint}} cmd={{.OCIv1.Config.Cmd}} ports={{.OCIv1.Config.ExposedPorts}}' "$image")
[ "$config" = 'user=65532:65532 entrypoint=[/bayou] cmd=[--addr :8000] ports=map[8000/tcp:{}]' ] ||
  fail "image configuration: $config"
say "$config"

# Run it with the host's network (chroot isolation), on a free loopback port.
ctr=$(buildah from "$image")
buildah run --isolation chroot "$ctr" -- /bayou --addr 127.0.0.1:0 >"$work/run.log" 2>&1 &
run_pid=$!
url=""
for _ in $(seq 100); do # up to 10 s
  url=$(sed -n 's/.*serving Bayeux at \([^ ]*\).*/\1/p' "$work/run.log" | head -n1)
  [ -z "$url" ] || break
  kill -0 "$run_pid" 2>/dev/null || break
  sleep 0.1
done
[ -n "$url" ] || fail "the image did not serve: $(cat "$work/run.log")"
port=${url##*:}; port=${port%%/*}
uid=$(ps -eo uid=,args= | awk -v a="/bayou --addr 127.0.0.1:0" 'index($0, a) && $2 == "/bayou" {print $1; exit}')
[ "$uid" = 65532 ] || fail "bayou runs as uid '$uid', not 65532"
reply=$(curl -sS --max-time 5 -H 'Content-Type: application/json' \
  -d '[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"]}]' "$url")
[[ "$reply" == *'"successful":true'* ]] || fail "handshake at $url answered: $reply"
say "the image serves $url (port $port) as uid $uid; handshake: $reply"
say "ok"
