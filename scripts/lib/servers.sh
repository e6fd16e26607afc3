# Local redis-server and rabbitmq-server on loopback, on free ports, each with its own data
# directory, for the demo and the benchmarks. Source this file; call start_redis / start_rabbit;
# stop_servers stops exactly the processes started here, by pid (and process group).
# Nothing here touches a server that was already running (e.g. a system RabbitMQ on 5672).

SERVERS_DIR="${SERVERS_DIR:-$(mktemp -d /tmp/sagaflow-servers.XXXXXX)}"
STARTED_PIDS=()

free_port() {  # a port nobody answers on (random in 20000-59999)
  local p
  while :; do
    p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}

wait_port() {  # wait_port PORT SECONDS
  local port=$1 deadline=$((SECONDS + $2))
  until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

start_redis() {
  REDIS_PORT=$(free_port)
  mkdir -p "$SERVERS_DIR/redis"
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$SERVERS_DIR/redis" \
    --appendonly yes --save "" --daemonize no --logfile "$SERVERS_DIR/redis/redis.log" &
  STARTED_PIDS+=($!)
  wait_port "$REDIS_PORT" 20 || { echo "redis-server did not start (see $SERVERS_DIR/redis/redis.log)" >&2; return 1; }
  until redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; do sleep 0.1; done
  export SAGAFLOW_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
}

start_rabbit() {
  local dir="$SERVERS_DIR/rabbit" epmd_port dist_port
  mkdir -p "$dir/mnesia" "$dir/log" "$dir/home"
  RABBIT_PORT=$(free_port)
  epmd_port=$(free_port)
  dist_port=$(free_port)
  echo "[]." > "$dir/enabled_plugins"
  printf 'loopback_users = none\nlisteners.tcp.default = 127.0.0.1:%s\n' "$RABBIT_PORT" > "$dir/rabbitmq.conf"
  local epmd_bin
  epmd_bin=$(command -v epmd || ls /usr/lib/erlang/erts-*/bin/epmd 2>/dev/null | head -n 1)
  setsid "$epmd_bin" -port "$epmd_port" -address 127.0.0.1 &
  STARTED_PIDS+=($!)
  (
    export HOME="$dir/home" ERL_EPMD_PORT="$epmd_port"
    export RABBITMQ_NODENAME="sagaflow_demo_$$@localhost" RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
    export RABBITMQ_NODE_PORT="$RABBIT_PORT" RABBITMQ_DIST_PORT="$dist_port"
    export RABBITMQ_MNESIA_BASE="$dir/mnesia" RABBITMQ_LOG_BASE="$dir/log"
    export RABBITMQ_CONFIG_FILE="$dir/rabbitmq.conf" RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins"
    export RABBITMQ_PID_FILE="$dir/rabbit.pid"
    cd "$dir"  # an erl_crash.dump, if any, lands here
    exec setsid /usr/lib/rabbitmq/bin/rabbitmq-server > "$dir/log/stdout.log" 2>&1
  ) &
  STARTED_PIDS+=($!)
  wait_port "$RABBIT_PORT" 90 || { echo "rabbitmq-server did not start (see $dir/log)" >&2; return 1; }
  export SAGAFLOW_AMQP_URL="amqp://guest:guest@127.0.0.1:$RABBIT_PORT/"
}

start_kafka_mock() {  # start_kafka_mock BIN: `sagaflow kafka-mock`, bootstrap from its first line
  local bin=$1 dir="$SERVERS_DIR/kafka"
  mkdir -p "$dir"
  setsid "$bin" kafka-mock > "$dir/bootstrap" 2> "$dir/kafka.log" &
  STARTED_PIDS+=($!)
  local deadline=$((SECONDS + 20))
  until [ -s "$dir/bootstrap" ]; do
    ((SECONDS < deadline)) || { echo "sagaflow kafka-mock did not start (see $dir/kafka.log)" >&2; return 1; }
    sleep 0.1
  done
  export SAGAFLOW_KAFKA_BROKERS
  SAGAFLOW_KAFKA_BROKERS=$(head -n 1 "$dir/bootstrap")
}

stop_servers() {
  local pid
  for pid in "${STARTED_PIDS[@]}"; do
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${STARTED_PIDS[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  STARTED_PIDS=()
  rm -rf "$SERVERS_DIR"
}
