#!/usr/bin/env bash
# Installs what sagaflow needs from Debian's packages (only what is missing), then builds.
#   scripts/setup.sh [build-dir] [extra cmake args...]
# Idempotent: a second run installs nothing and rebuilds only what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  g++ cmake ninja-build pkg-config git
  libuv1-dev libsimdjson-dev librdkafka-dev libhiredis-dev librabbitmq-dev libssl-dev
  catch2 libcli11-dev libfmt-dev libmicrohttpd-dev libcurl4-openssl-dev
  redis-server redis-tools rabbitmq-server
  clang libclang-rt-14-dev
  docker-compose
  chromium chromium-driver python3-selenium
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  echo "setup: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

build_dir="${1:-build}"
shift || true
jobs="$(nproc 2>/dev/null || echo 2)"
if [ ! -f "$build_dir/build.ninja" ]; then
  cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSAGAFLOW_WERROR=ON "$@" >&2
fi
cmake --build "$build_dir" -j "$jobs" ${SAGAFLOW_BUILD_TARGET:+--target "$SAGAFLOW_BUILD_TARGET"} >&2
