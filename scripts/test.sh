#!/usr/bin/env bash
# Sets up (installs what is missing, builds with -Werror) and runs every test:
#   1. unit and integration tests (CTest labels `unit`, `integration`) on real redis-server,
#      rabbitmq-server and librdkafka's mock cluster, started by the tests on loopback;
#   2. the same suite once more under AddressSanitizer + UndefinedBehaviorSanitizer;
#   3. a short libFuzzer run of the envelope parser (clang);
#   4. `docker-compose config` on docker-compose.yml.
# SAGAFLOW_TEST_QUICK=1 skips 2 and 3 (for a fast local loop).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh build
ctest --test-dir build --output-on-failure --no-tests=error -j 2

if [ "${SAGAFLOW_TEST_QUICK:-0}" != 1 ]; then
  echo "== ASan + UBSan build and suite" >&2
  scripts/setup.sh build-asan -DSAGAFLOW_SANITIZE=ON -DSAGAFLOW_BENCH=OFF -DCMAKE_BUILD_TYPE=Debug
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan --output-on-failure --no-tests=error -j 2

  echo "== libFuzzer: envelope parser, 20 s" >&2
  SAGAFLOW_BUILD_TARGET=envelope_fuzz scripts/setup.sh build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
    -DSAGAFLOW_FUZZ=ON -DSAGAFLOW_TESTS=OFF -DSAGAFLOW_BENCH=OFF
  corpus="$(mktemp -d)"
  trap 'rm -rf "$corpus"' EXIT
  cp fuzz/corpus/envelope/* "$corpus"/
  build-fuzz/fuzz/envelope_fuzz -max_total_time=20 -print_final_stats=1 "$corpus" 2>&1 | tail -n 3
fi

echo "== docker-compose config" >&2
docker-compose -f docker-compose.yml config -q
echo "docker-compose.yml: valid" >&2
