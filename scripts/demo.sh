#!/usr/bin/env bash
# The sagaflow demo, on this machine only (loopback):
#   redis-server and rabbitmq-server on free ports -> topology apply -> several workers and the
#   participant simulator (with some failures and unanswered commands) -> a few thousand
#   generated orders -> a live progress line -> a final summary. Stops everything it started.
# Knobs: DEMO_ORDERS (3000), DEMO_WORKERS (3), DEMO_STORES (8), DEMO_TIMEOUT_S (180),
# DEMO_BROKER (rabbitmq, or kafka: the embedded Kafka-protocol broker `sagaflow kafka-mock`),
# DEMO_HOLD=1 (after the summary, keep everything running, the console included, until Ctrl-C).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh build
BIN="$PWD/build/app/sagaflow"
ORDERS="${DEMO_ORDERS:-3000}"
WORKERS="${DEMO_WORKERS:-3}"
STORES="${DEMO_STORES:-8}"
TIMEOUT_S="${DEMO_TIMEOUT_S:-180}"
BROKER="${DEMO_BROKER:-rabbitmq}"
case "$BROKER" in
  rabbitmq | kafka) ;;
  *) echo "demo: DEMO_BROKER must be rabbitmq or kafka, not '$BROKER'" >&2; exit 2 ;;
esac
export SAGAFLOW_BROKER="$BROKER"

# shellcheck source=lib/servers.sh
source scripts/lib/servers.sh
LOGS="$SERVERS_DIR/logs"
mkdir -p "$LOGS"
CHILDREN=()
cleanup() {
  local pid
  for pid in "${CHILDREN[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${CHILDREN[@]}"; do wait "$pid" 2>/dev/null || true; done
  stop_servers
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '\033[1m== %s\033[0m\n' "$*"; }

say "starting redis-server and $([ "$BROKER" = kafka ] && echo "the Kafka mock broker" || echo rabbitmq-server) on loopback"
start_redis
echo "   redis:    $SAGAFLOW_REDIS_URL"
if [ "$BROKER" = kafka ]; then
  start_kafka_mock "$BIN"
  echo "   kafka:    $SAGAFLOW_KAFKA_BROKERS (sagaflow kafka-mock)"
else
  start_rabbit
  echo "   rabbitmq: $SAGAFLOW_AMQP_URL"
fi

export SAGAFLOW_LOG_LEVEL="${SAGAFLOW_LOG_LEVEL:-warn}"
export SAGAFLOW_STEP_TIMEOUT_MS="${SAGAFLOW_STEP_TIMEOUT_MS:-2000}"
export SAGAFLOW_METRICS_ADDR=0  # the workers get their own metrics ports below

say "applying the topology"
for _ in $(seq 1 30); do "$BIN" topology apply 2>"$LOGS/topology.err" && break; sleep 1; done
cat "$LOGS/topology.err" >&2

# Store plans: store_001 stays on the default plan (free) to show the rate limiter; the others
# are enterprise. The plans are scaled down from the defaults (per second instead of per
# minute) so that the demo's rate-limited tail lasts seconds, not minutes.
export SAGAFLOW_PLANS="${SAGAFLOW_PLANS:-free=10/s:50,pro=50/s:200,enterprise=1000/s:2000}"
for i in $(seq 2 "$STORES"); do
  redis-cli -p "$REDIS_PORT" HSET sagaflow:store_plans "$(printf 'store_%03d' "$i")" enterprise >/dev/null
done

say "starting $WORKERS workers and the participant simulator"
METRICS_PORTS=()
for i in $(seq 1 "$WORKERS"); do
  port=$(free_port)
  METRICS_PORTS+=("$port")
  SAGAFLOW_METRICS_ADDR="127.0.0.1:$port" "$BIN" worker 2>"$LOGS/worker-$i.log" &
  CHILDREN+=($!)
done
"$BIN" simulate --seed 42 --fail-inventory 0.03 --fail-payment 0.05 --fail-shipment 0.03 --no-answer 0.01 \
  2>"$LOGS/simulator.log" &
CHILDREN+=($!)
CONSOLE_PORT=$(free_port)
SAGAFLOW_CONSOLE_ADDR="127.0.0.1:$CONSOLE_PORT" "$BIN" console 2>"$LOGS/console.log" &
CHILDREN+=($!)
echo "   console:  http://127.0.0.1:$CONSOLE_PORT/ (open it to watch the run)"

say "publishing $ORDERS orders across $STORES stores, plus a few poison messages"
start_ns=$(date +%s%N)
"$BIN" publish --generate "$ORDERS" --stores "$STORES" --seed 7
# Poison messages, sent raw (unvalidated): each must land in sagaflow.dead with its reason.
printf '%s\n' 'this is not json' '{"id":"poison-1","type":"order.shipped","data":{"order_id":"x"}}' \
  '{"id":"poison-2","type":"order.created","store_id":"store_1","data":{"order_id":"p2","customer_id":"c","total":"9.999","currency":"EUR","items":[{"sku":"a","qty":1,"price":1}]}}' |
  "$BIN" publish --file - --raw --route order.created 2>/dev/null
echo '{"id":"poison-3","type":"inventory.reserved","data":{"order_id":"no_such_order","reservation_id":"r"}}' |
  "$BIN" publish --file - --raw --route inventory.reserved 2>/dev/null

json_field() {  # json_field NAME JSON -> the number after "NAME":
  [[ $2 =~ \"$1\":([0-9]+) ]] && echo "${BASH_REMATCH[1]}" || echo 0
}

say "running (Ctrl-C stops everything)"
deadline=$((SECONDS + TIMEOUT_S))
status=""
while :; do
  status=$("$BIN" status --json 2>/dev/null || true)
  confirmed=$(json_field confirmed "$status")
  failed=$(json_field failed "$status")
  running=$(json_field running "$status")
  compensating=$(json_field compensating "$status")
  stuck=$(json_field stuck "$status")
  dead=$(json_field dead_letter_depth "$status")
  limited=$(json_field rate_limited "$status")
  done_count=$((confirmed + failed))
  pct=$((done_count * 100 / ORDERS))
  printf '\r   %3d%%  confirmed %-6d failed %-5d in flight %-5d stuck %-3d rate-limited %-5d dead letters %-3d' \
    "$pct" "$confirmed" "$failed" "$((running + compensating))" "$stuck" "$limited" "$dead"
  if ((done_count + stuck >= ORDERS)) && ((running + compensating == 0)); then break; fi
  if ((SECONDS >= deadline)); then echo; echo "   (stopped waiting after ${TIMEOUT_S}s)"; break; fi
  sleep 1
done
echo
elapsed_ms=$((($(date +%s%N) - start_ns) / 1000000))

scrape_all() {  # every worker's /metrics, concatenated (bash's /dev/tcp: no curl needed)
  local port
  for port in "${METRICS_PORTS[@]}"; do
    (exec 3<>"/dev/tcp/127.0.0.1/$port" && printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3 && cat <&3) 2>/dev/null
  done
}

say "summary"
"$BIN" status
metrics=$(scrape_all)
echo "failed sagas by reason:"
awk -F'[{}" ]+' '/^sagaflow_sagas_failed_total\{/ {n[$3]+=$NF} END {for (r in n) printf "  %-22s %d\n", r, n[r]}' \
  <<<"$metrics" | sort
acked=$(awk '/^sagaflow_events_acked_total / {s+=$2} END {printf "%d", s}' <<<"$metrics")
compensations=$(awk '/^sagaflow_compensations_sent_total / {s+=$2} END {printf "%d", s}' <<<"$metrics")
echo "compensation commands sent: $compensations"
echo "events acked by the workers: $acked ($((acked * 1000 / (elapsed_ms > 0 ? elapsed_ms : 1))) events/s over the run)"
echo "   orders: $ORDERS in $((elapsed_ms / 1000)).$(((elapsed_ms % 1000) / 100)) s" \
  "($((done_count * 1000 / (elapsed_ms > 0 ? elapsed_ms : 1))) sagas/s end to end, rate limits included)"
echo "   dead-letter queue (first 3):"
"$BIN" dlq list --limit 3 2>/dev/null | sed 's/^/     /' | cut -c1-160
echo "   console:  http://127.0.0.1:$CONSOLE_PORT/"
if [ "${DEMO_HOLD:-0}" = 1 ]; then
  say "holding: everything keeps running (the console too) until Ctrl-C"
  while :; do sleep 3600; done
fi
