#!/usr/bin/env bash
# Builds the images of tipsv2 with Docker's classic builder (DOCKER_BUILDKIT=0: no BuildKit frontend to pull), on a
# base made of Debian packages, so no container registry is needed. `make images` runs it; tests/stack uses them.
#
#   scripts/build_images.sh                       every image, tag :local (compose's default tags)
#   IMAGE_TAG=ci scripts/build_images.sh gateway redis  some of: base gateway trainer triton-cpu redis prometheus
#
# Images: tipsv2-base:bookworm (Debian bookworm minbase + python3.11, venv, libpython3.11, ca-certificates: mmdebstrap
# then `docker import`; built once, REBUILD_BASE=1 rebuilds it), then FROM it: tipsv2-gateway, tipsv2-trainer,
# tipsv2-triton-cpu (this repository's Dockerfiles), tipsv2-redis and tipsv2-prometheus (Debian's packages, standing in
# for the registry images compose names by default).
#
# Environment:
#   IMAGE_TAG        tag of the images built here (default: local; tests/stack reads it too)
#   BASE_IMAGE       base of every image instead of tipsv2-base:bookworm (e.g. python:3.11-slim-bookworm where a
#                    registry is reachable; redis and prometheus need a Debian one)
#   CA_CERTS         PEM file(s), space-separated, of extra CAs the builds' downloads must trust: a TLS-inspecting
#                    proxy's. Passed as the EXTRA_CA_CERTS build argument, trusted by the build steps only. Default:
#                    the CAs added to this machine (/usr/local/share/ca-certificates/**/*.crt); CA_CERTS= for none.
#   TORCH_PIP_ARGS   where the trainer's torch (TORCH_SPEC, default torch==2.13.0+cpu) comes from. Default: this
#                    machine's pip fetches that wheel (from its configured indexes, e.g. a local wheel directory) and
#                    it is served to the build on a loopback port. The image build fails on a CUDA torch.
#   DOCKER_HOST      the daemon to use, as for `docker`.
# Needs: docker (a running daemon), and for the base image mmdebstrap (Debian package; run as root).
set -euo pipefail
cd "$(dirname "$0")/.."

TAG=${IMAGE_TAG:-local}
PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || command -v python3 )}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0+cpu}
export DOCKER_BUILDKIT=0
ALL=(base gateway triton-cpu redis prometheus trainer)
if [ $# -gt 0 ]; then WANTED=("$@"); else WANTED=("${ALL[@]}"); fi

LOGS=build/image-logs
mkdir -p "$LOGS"

log() { printf '[build_images %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
wanted() { local w; for w in "${WANTED[@]}"; do [ "$w" = "$1" ] && return 0; done; return 1; }
timed() {  # timed NAME COMMAND...: runs it, its output in $LOGS/NAME.log; prints its duration, or the log's tail
  local name=$1 start=$SECONDS log
  log="$LOGS/$(printf '%s' "$1" | tr -c 'A-Za-z0-9.-' '_').log"
  shift
  log "building $name (log: $log)"
  if "$@" >"$log" 2>&1; then
    log "built $name in $((SECONDS - start)) s"
  else
    log "FAILED: $name after $((SECONDS - start)) s; the end of $log:"
    tail -n 40 "$log"
    return 1
  fi
}

for w in "${WANTED[@]}"; do
  case " ${ALL[*]} " in *" $w "*) ;; *) echo "unknown image '$w' (choose from: ${ALL[*]})" >&2; exit 2 ;; esac
done
docker info >/dev/null 2>&1 || { echo "error: no Docker daemon answers (DOCKER_HOST=${DOCKER_HOST:-default})" >&2; exit 1; }

# Extra CAs: the PEM text of every file, as one build argument.
if [ -z "${CA_CERTS+set}" ]; then
  CA_CERTS=$(find /usr/local/share/ca-certificates -name '*.crt' 2>/dev/null | sort | tr '\n' ' ')
fi
EXTRA_CA_CERTS=""
for f in $CA_CERTS; do EXTRA_CA_CERTS+="$(cat "$f")"$'\n'; done
[ -n "$CA_CERTS" ] && log "extra CA certificates for the builds: $CA_CERTS"

build() {  # build IMAGE DOCKERFILE [ARGS...]: the repository as context, host network (loopback wheel server, proxy)
  local image=$1 dockerfile=$2
  shift 2
  docker build --network host --file "$dockerfile" --tag "$image" \
    --build-arg BASE_IMAGE="$BASE" --build-arg EXTRA_CA_CERTS="$EXTRA_CA_CERTS" "$@" .
}

debian_base() {
  local tar
  tar=$(mktemp --suffix=.tar)
  # minbase + what every image needs; the CPU Triton stub links libpython3.11. Docs, man pages and locales left out.
  mmdebstrap --variant=minbase --include=python3,python3-venv,python-is-python3,libpython3.11,ca-certificates \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --aptopt='Acquire::Languages "none"' \
    bookworm "$tar" ${DEBIAN_MIRROR:-} \
    && docker import --change 'CMD ["/bin/bash"]' "$tar" tipsv2-base:bookworm
  local rc=$?
  rm -f "$tar"
  return $rc
}

if [ -n "${BASE_IMAGE:-}" ]; then
  BASE=$BASE_IMAGE
else
  BASE=tipsv2-base:bookworm
  if wanted base && { [ -n "${REBUILD_BASE:-}" ] || ! docker image inspect "$BASE" >/dev/null 2>&1; }; then
    command -v mmdebstrap >/dev/null || { echo "error: mmdebstrap is needed for the base image (apt-get install mmdebstrap)" >&2; exit 1; }
    timed "$BASE (mmdebstrap)" debian_base
  elif ! docker image inspect "$BASE" >/dev/null 2>&1; then
    echo "error: no base image $BASE: build it (scripts/build_images.sh base) or set BASE_IMAGE" >&2
    exit 1
  fi
fi
log "base image: $BASE"

trainer() {  # the trainer image, torch from TORCH_PIP_ARGS or this machine's pip over a loopback server
  local server_pid="" port wheels=build/wheels rc=0
  if [ -z "${TORCH_PIP_ARGS:-}" ]; then
    # This machine's pip knows where the CPU wheel is (pip config debug); the build's pip gets it over loopback.
    mkdir -p "$wheels"
    "$PYTHON" -m pip download -qq --no-deps --dest "$wheels" "$TORCH_SPEC" || return 1
    port=$("$PYTHON" -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
    "$PYTHON" -m http.server --bind 127.0.0.1 --directory "$wheels" "$port" >/dev/null 2>&1 &
    server_pid=$!
    for _ in $(seq 50); do
      "$PYTHON" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/')" 2>/dev/null && break
      sleep 0.1
    done
    TORCH_PIP_ARGS="--find-links http://127.0.0.1:$port/"
    log "torch for the trainer: $(cd "$wheels" && ls torch-*) served on 127.0.0.1:$port"
  fi
  timed "tipsv2-trainer:$TAG" build "tipsv2-trainer:$TAG" Dockerfile --target trainer \
    --build-arg TORCH_SPEC="$TORCH_SPEC" --build-arg TORCH_PIP_ARGS="$TORCH_PIP_ARGS" || rc=1
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi
  return $rc
}

# Two lines of builds at once (each mostly waits on downloads): the gateway then the trainer (which starts from the
# gateway's build stage), beside the CPU Triton, Redis and Prometheus.
start=$SECONDS
(
  if wanted gateway || wanted trainer; then
    timed "tipsv2-gateway:$TAG" build "tipsv2-gateway:$TAG" Dockerfile --target gateway || exit 1
  fi
  if wanted trainer; then trainer || exit 1; fi
) &
first=$!
(
  if wanted triton-cpu; then
    timed "tipsv2-triton-cpu:$TAG" build "tipsv2-triton-cpu:$TAG" deploy/triton/cpu.Dockerfile || exit 1
  fi
  if wanted redis; then timed "tipsv2-redis:$TAG" build "tipsv2-redis:$TAG" deploy/redis/Dockerfile || exit 1; fi
  if wanted prometheus; then
    timed "tipsv2-prometheus:$TAG" build "tipsv2-prometheus:$TAG" deploy/prometheus/Dockerfile || exit 1
  fi
) &
second=$!
failed=0
wait "$first" || failed=1
wait "$second" || failed=1
[ "$failed" = 0 ] || { log "image builds failed"; exit 1; }

log "images built in $((SECONDS - start)) s:"
docker image ls --format '{{.Repository}}:{{.Tag}}  {{.Size}}' | grep -E "^tipsv2-[a-z-]+:($TAG|bookworm) " | sed 's/^/  /'
