#!/usr/bin/env bash
# Runs the Dockerfile where no image builder can (no Docker daemon, no base
# images to pull), so that a broken Dockerfile fails make test:
#   - the build stage's COPY and RUN lines run in a scratch root, with its
#     WORKDIR and ENV, on a copy of the build context (the files git knows,
#     less the .dockerignore patterns), with this machine's Go;
#   - the final stage is checked: the file it copies from the build stage
#     exists, is a static, stripped binary built without cgo and with
#     -trimpath, its USER is not root, it EXPOSEs 8000, and ENTRYPOINT + CMD
#     are ["/bayou"] ["--addr", ":8000"];
#   - that binary is started as ENTRYPOINT + CMD say, as the image's USER,
#     with --addr 127.0.0.1:0 appended (a test binds loopback only), and a
#     Bayeux handshake is posted to it.
# It checks what an image build would do, not the base images themselves.
# Usage: scripts/docker-steps.sh [DOCKERFILE]
set -euo pipefail
cd "$(dirname "$0")/.."
dockerfile=${1:-Dockerfile}

fail() { echo "docker-steps: $*" >&2; exit 1; }
say() { echo "docker-steps: $*"; }

work=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# --- the Dockerfile as instructions: one per line, continuations joined,
# comments and blank lines dropped.
instructions=()
line=""
while IFS= read -r raw || [ -n "$raw" ]; do
  case "$raw" in \#*) continue ;; esac
  if [[ "$raw" == *\\ ]]; then line+="${raw%\\} "; continue; fi
  line+="$raw"
  if [[ "$line" =~ [^[:space:]] ]]; then instructions+=("$line"); fi
  line=""
done <"$dockerfile"
[ -z "$line" ] || fail "$dockerfile ends with a continued line"

# json_array '["a", "b"]' prints a, b one per line (plain strings only).
json_array() {
  local text=$1
  [[ "$text" =~ ^\[[[:space:]]*(\"[^\"\\]*\"[[:space:]]*,?[[:space:]]*)*\]$ ]] ||
    fail "expected a JSON array of plain strings, got: $text"
  grep -o '"[^"]*"' <<<"$text" | sed 's/^"//; s/"$//'
}

# --- build context: files git knows (tracked or new, not ignored), less
# .dockerignore's patterns (Docker's glob rules, approximately: * may also
# match a /, "**/" any leading directories, "!" lines are not supported).
ignores=()
if [ -f .dockerignore ]; then
  while IFS= read -r p || [ -n "$p" ]; do
    p=${p%%#*}; p=${p//[[:space:]]/}
    [ -n "$p" ] || continue
    [[ "$p" != !* ]] || fail ".dockerignore: \"!\" patterns are not supported here: $p"
    ignores+=("${p#/}")
  done <.dockerignore
fi
ignored() {
  local f=$1 p
  # shellcheck disable=SC2053 # the patterns are globs on purpose
  for p in "${ignores[@]}"; do
    if [[ "$f" == $p || "$f" == $p/* ]]; then return 0; fi
    if [[ "$p" == '**/'* ]]; then
      local q=${p#'**/'}
      if [[ "$f" == $q || "$f" == $q/* || "$f" == */$q || "$f" == */$q/* ]]; then return 0; fi
    fi
  done
  return 1
}
context="$work/context"
mkdir -p "$context"
while IFS= read -r -d '' f; do
  [ -e "$f" ] || continue # deleted in the work tree
  ignored "$f" && continue
  printf '%s\0' "$f"
done < <(git ls-files -z --cached --others --exclude-standard) >"$work/context.list"
tar -c --null -T "$work/context.list" -f - | tar -x -f - -C "$context"
count=$(tr -cd '\0' <"$work/context.list" | wc -c)
for f in go.mod go.sum scripts/build-static.sh cmd/bayou/main.go; do
  [ -e "$context/$f" ] || fail "the build context lacks $f (.dockerignore?)"
done
say "build context: $count files"

# --- stages
declare -A args=()
stage=-1
stage_name=()
stage_from=()
build_root="$work/build-root"
workdir=/
env_vars=()
final_copy_src="" final_copy_dst="" final_user="" final_expose="" final_entrypoint="" final_cmd=""

expand() { # expands ${NAME} and $NAME of the ARGs known
  local s=$1 k
  for k in "${!args[@]}"; do s=${s//\$\{$k\}/${args[$k]}}; s=${s//\$$k/${args[$k]}}; done
  printf '%s' "$s"
}

gomod_go=$(sed -n 's/^go \([0-9.]*\)$/\1/p' go.mod)
[ -n "$gomod_go" ] || fail "no go line in go.mod"

for ins in "${instructions[@]}"; do
  read -r keyword rest <<<"$ins"
  keyword=${keyword^^}
  case "$keyword" in
  ARG)
    name=${rest%%=*}
    if [[ "$rest" == *=* ]]; then args[$name]=${rest#*=}; else args[$name]=${args[$name]:-}; fi
    ;;
  FROM)
    stage=$((stage + 1))
    read -r image as name <<<"$rest"
    image=$(expand "$image")
    stage_from[stage]=$image
    stage_name[stage]=${name:-}
    [ -z "$as" ] || [ "${as^^}" = AS ] || fail "FROM $rest: expected FROM IMAGE [AS NAME]"
    workdir=/
    env_vars=()
    ;;
  *)
    [ "$stage" -ge 0 ] || fail "$keyword before the first FROM"
    if [ "$stage" -eq 0 ]; then
      case "$keyword" in
      WORKDIR)
        workdir=$(expand "$rest")
        [[ "$workdir" == /* ]] || fail "WORKDIR $workdir: use an absolute path"
        mkdir -p "$build_root$workdir"
        ;;
      ENV)
        [[ "$rest" == *=* ]] || fail "ENV $rest: use ENV NAME=VALUE"
        env_vars+=("$(expand "$rest")")
        ;;
      COPY)
        read -r -a parts <<<"$rest"
        [[ "${parts[0]}" != --* ]] || fail "COPY ${parts[0]} in the build stage is not supported here"
        n=${#parts[@]}
        [ "$n" -ge 2 ] || fail "COPY $rest: expected COPY SRC... DEST"
        dest=${parts[$((n - 1))]}
        [[ "$dest" == /* ]] || dest="$workdir/$dest"
        mkdir -p "$build_root$dest"
        for src in "${parts[@]:0:n-1}"; do
          if [ "$src" = . ]; then
            cp -a "$context/." "$build_root$dest/"
          else
            [ -e "$context/$src" ] || fail "COPY $src: not in the build context"
            cp -a "$context/$src" "$build_root$dest/"
          fi
        done
        ;;
      RUN)
        [[ "$rest" != \[* ]] || fail "RUN in exec form is not supported here: $rest"
        say "RUN $rest (in $workdir)"
        (cd "$build_root$workdir" && env "${env_vars[@]}" sh -ec "$rest") || fail "RUN $rest failed"
        ;;
      *) fail "build stage: $keyword is not supported by this script; teach it, or keep to FROM ARG ENV WORKDIR COPY RUN" ;;
      esac
    else
      case "$keyword" in
      COPY)
        read -r from src dst extra <<<"$rest"
        if [ "$from" != "--from=${stage_name[0]}" ] || [ -n "${extra:-}" ]; then
          fail "final stage: expected COPY --from=${stage_name[0]} SRC DEST, got COPY $rest"
        fi
        final_copy_src=$src final_copy_dst=$dst
        ;;
      USER) final_user=$rest ;;
      EXPOSE) final_expose=$rest ;;
      ENTRYPOINT) final_entrypoint=$rest ;;
      CMD) final_cmd=$rest ;;
      *) fail "final stage: $keyword is not supported by this script; teach it, or keep to FROM COPY USER EXPOSE ENTRYPOINT CMD" ;;
      esac
    fi
    ;;
  esac
done

# --- what the stages must be
[ "$stage" -eq 1 ] || fail "expected two stages (build, final), found $((stage + 1))"
[ -n "${stage_name[0]}" ] || fail "the build stage needs a name (FROM ... AS build)"
[[ "${stage_from[0]}" =~ ^golang:([0-9.]+)-bookworm$ ]] ||
  fail "build stage: expected FROM golang:VERSION-bookworm, got ${stage_from[0]}"
[ "${BASH_REMATCH[1]}" = "$gomod_go" ] ||
  fail "build stage: golang:${BASH_REMATCH[1]} but go.mod says go $gomod_go"
host_go=$(go env GOVERSION)
[ "$host_go" = "go$gomod_go" ] || say "note: this machine's Go is $host_go, the image's go$gomod_go"
case "${stage_from[1]}" in
gcr.io/distroless/static*:nonroot | gcr.io/distroless/static*:nonroot-* | scratch) ;;
*) fail "final stage: expected gcr.io/distroless/static...:nonroot or scratch, got ${stage_from[1]}" ;;
esac
[ -n "$final_copy_src" ] || fail "final stage copies nothing from the build stage"
[ -n "$final_user" ] || fail "final stage: no USER (it would run as root)"
uid=${final_user%%:*} gid=${final_user#*:}
[ "$gid" != "$final_user" ] || gid=$uid
[[ "$uid" =~ ^[0-9]+$ && "$gid" =~ ^[0-9]+$ ]] || fail "USER $final_user: use numeric UID:GID (runAsNonRoot checks need them)"
[ "$uid" -ne 0 ] || fail "USER $final_user is root"
[ "$final_expose" = 8000 ] || fail "final stage: expected EXPOSE 8000, got '$final_expose'"
mapfile -t entrypoint < <(json_array "$final_entrypoint")
mapfile -t cmd < <(json_array "$final_cmd")
if [ "${#entrypoint[@]}" -ne 1 ] || [ "${entrypoint[0]}" != "$final_copy_dst" ]; then
  fail "ENTRYPOINT $final_entrypoint: expected [\"$final_copy_dst\"]"
fi
[ "${cmd[*]}" = "--addr :8000" ] || fail "CMD $final_cmd: expected [\"--addr\", \":8000\"]"

# --- the binary the image would hold
bin="$build_root$final_copy_src"
[ -f "$bin" ] || fail "the build stage made no $final_copy_src"
if readelf -l "$bin" | grep -q INTERP; then fail "$final_copy_src is dynamically linked"; fi
if readelf -S "$bin" | grep -q '\.symtab'; then fail "$final_copy_src has a symbol table (-ldflags \"-s -w\"?)"; fi
settings=$(go version -m "$bin")
grep -q $'build\tCGO_ENABLED=0' <<<"$settings" || fail "$final_copy_src was built with cgo"
grep -q $'build\t-trimpath=true' <<<"$settings" || fail "$final_copy_src was built without -trimpath"
say "$final_copy_src: static, stripped, CGO_ENABLED=0, -trimpath, $(stat -c %s "$bin") bytes"

# --- run it as the image would: its USER, ENTRYPOINT + CMD, from /
image_root="$work/image"
mkdir -p "$image_root"
chmod 755 "$work" "$image_root"
cp "$bin" "$image_root/bayou"
chmod 755 "$image_root/bayou"
run=("$image_root/bayou" "${cmd[@]}" --addr 127.0.0.1:0)
if [ "$(id -u)" -eq 0 ]; then
  run=(setpriv --reuid="$uid" --regid="$gid" --clear-groups "${run[@]}")
elif [ "$(id -u)" -ne "$uid" ]; then
  say "note: not root, so it runs as $(id -u), not as the image's $uid"
fi
(cd / && exec "${run[@]}") >"$work/stdout" 2>"$work/stderr" &
server_pid=$!
url=""
for _ in $(seq 100); do # up to 10 s
  url=$(sed -n 's/.*serving Bayeux at \([^ ]*\).*/\1/p' "$work/stdout" | head -n1)
  [ -z "$url" ] || break
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
[ -n "$url" ] || fail "the binary did not serve: $(cat "$work/stdout" "$work/stderr")"
running_uid=$(awk '/^Uid:/ {print $2}' "/proc/$server_pid/status")
[ "$(id -u)" -ne 0 ] || [ "$running_uid" = "$uid" ] || fail "it runs as uid $running_uid, not $uid"
reply=$(curl -sS --max-time 5 -H 'Content-Type: application/json' \
  -d '[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"]}]' "$url")
[[ "$reply" == *'"successful":true'* && "$reply" == *'"clientId":"'* ]] ||
  fail "handshake at $url answered: $reply"
say "as uid $running_uid: $url answered a handshake: $reply"
say "ok"
