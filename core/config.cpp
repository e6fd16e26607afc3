#include "core/config.hpp"

#include <cstdlib>
#include <fstream>
#include <limits>
#include <stdexcept>

#include <fmt/format.h>

#include "core/impl/config_text.hpp"

namespace sagaflow {
namespace {

using core_impl::bad;
using core_impl::parse_int;
using core_impl::trim;

constexpr ConfigKey kKeys[] = {
    {"SAGAFLOW_BROKER", "broker", "rabbitmq", "message broker: rabbitmq or kafka"},
    {"SAGAFLOW_AMQP_URL", "amqp-url", "amqp://guest:guest@127.0.0.1:5672/", "RabbitMQ URL"},
    {"SAGAFLOW_KAFKA_BROKERS", "kafka-brokers", "127.0.0.1:9092", "Kafka bootstrap servers"},
    {"SAGAFLOW_REDIS_URL", "redis-url", "redis://127.0.0.1:6379/0",
     "Redis URL: redis://[:pw@]host:port/db or redis-cluster://[:pw@]host:port[,host:port...]/"},
    {"SAGAFLOW_REDIS_WAIT_REPLICAS", "redis-wait-replicas", "0",
     "replicas that must have a commit (Redis WAIT) before it is acknowledged to the broker"},
    {"SAGAFLOW_METRICS_ADDR", "metrics-addr", "127.0.0.1:9464",
     "host:port of /metrics, /healthz, /readyz (0 disables)"},
    {"SAGAFLOW_STEP_TIMEOUT_MS", "step-timeout-ms", "30000", "default per-step timeout"},
    {"SAGAFLOW_DEDUP_TTL_S", "dedup-ttl-s", "86400", "how long an event id deduplicates"},
    {"SAGAFLOW_MAX_ATTEMPTS", "max-attempts", "8", "deliveries of one message before dead-letter"},
    {"SAGAFLOW_PLANS", "plans", "free=60/min:100,pro=300/min:500,enterprise=1000/min:2000",
     "rate-limit plans, name=rate/period:burst"},
    {"SAGAFLOW_DEFAULT_PLAN", "default-plan", "free",
     "plan of a store not in sagaflow:store_plans"},
    {"SAGAFLOW_WEBHOOK_SECRET", "webhook-secret", "",
     "HMAC secret(s) of the webhook ingress, comma-separated"},
    {"SAGAFLOW_SAGA_DIR", "saga-dir", "", "folder of saga definitions replacing the built-in ones"},
    {"SAGAFLOW_LOG_LEVEL", "log-level", "info", "debug, info, warn, error or off"},
    {"SAGAFLOW_MAX_MESSAGE_BYTES", "max-message-bytes", "1048576", "largest accepted message body"},
    {"SAGAFLOW_PREFETCH", "prefetch", "256", "unacknowledged deliveries a worker holds"},
    {"SAGAFLOW_WEBHOOK_ADDR", "webhook-addr", "127.0.0.1:8080", "host:port of the webhook ingress"},
    {"SAGAFLOW_REDIS_PARTITIONS", "redis-partitions", "16",
     "saga keyspace partitions (hash tags); the same for every worker"},
    {"SAGAFLOW_KAFKA_PARTITIONS", "kafka-partitions", "8",
     "partitions of each topic that topology apply creates (Kafka)"},
    {"SAGAFLOW_KAFKA_REPLICATION", "kafka-replication", "1",
     "replication factor of the topics that topology apply creates (Kafka)"},
    {"SAGAFLOW_HTTP_HEADER_TIMEOUT_MS", "http-header-timeout-ms", "10000",
     "an HTTP request head not complete by then: the connection is closed"},
    {"SAGAFLOW_HTTP_MAX_CONNECTIONS", "http-max-connections", "1024",
     "open connections per HTTP listener (more wait in the backlog)"},
    {"SAGAFLOW_DELIVERY_SCHEDULE", "delivery-schedule", "5s,5m,30m,2h,5h,10h,10h",
     "outgoing webhooks: delays before attempts 2, 3, ... (ms, s, m, h, d)"},
    {"SAGAFLOW_DELIVERY_TIMEOUT_MS", "delivery-timeout-ms", "15000",
     "outgoing webhooks: one attempt, connect + answer"},
    {"SAGAFLOW_BREAKER_FAILURES", "breaker-failures", "5",
     "consecutive failed attempts that open an endpoint's circuit"},
    {"SAGAFLOW_BREAKER_OPEN_MS", "breaker-open-ms", "30000",
     "how long an open circuit stays open before one probe"},
    {"SAGAFLOW_DELIVERY_ALLOW_PRIVATE", "delivery-allow-private", "0",
     "1 allows endpoint URLs on loopback and private addresses"},
    {"SAGAFLOW_DELIVERY_LOG_MAX", "delivery-log-max", "1000000",
     "deliveries kept in the attempts log"},
    {"SAGAFLOW_CONSOLE_ADDR", "console-addr", "127.0.0.1:8090", "host:port of the console"},
    {"SAGAFLOW_CONSOLE_TOKEN", "console-token", "",
     "the console's access token (required beyond loopback)"},
};

}  // namespace

const RatePlan* Config::find_plan(std::string_view name) const noexcept {
  for (const auto& p : plans) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

std::span<const ConfigKey> config_keys() noexcept {
  return kKeys;
}
namespace {

Status read_config_file(const std::string& path,
                        std::map<std::string, std::string, std::less<>>& out) {
  std::ifstream in(path);
  if (!in)
    return make_error(Errc::invalid_config, fmt::format("--config {}: cannot be read", path));
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    std::string_view l = trim(line);
    if (l.empty() || l.front() == '#') continue;
    if (l.substr(0, 7) == "export ") l = trim(l.substr(7));
    const auto eq = l.find('=');
    if (eq == std::string_view::npos) {
      return make_error(Errc::invalid_config,
                        fmt::format("{}:{}: expected KEY=VALUE", path, lineno));
    }
    const std::string key(trim(l.substr(0, eq)));
    std::string_view value = trim(l.substr(eq + 1));
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') &&
        value.back() == value.front()) {
      value = value.substr(1, value.size() - 2);
    }
    bool known = false;
    for (const auto& k : kKeys) known = known || k.env == key;
    if (!known) {
      return make_error(Errc::invalid_config,
                        fmt::format("{}:{}: unknown key {}", path, lineno, key));
    }
    out[key] = std::string(value);
  }
  return Status::success();
}

}  // namespace

namespace {

// Sets the field of `key` from its text; the one place that knows how each key is read.
Status apply_key(Config& c, std::string_view key, const std::string& v) {
  auto int_of = [&](std::int64_t min, std::int64_t max) { return parse_int(key, v, min, max); };
  if (key == "SAGAFLOW_BROKER") {
    if (v == "rabbitmq")
      c.broker = BrokerKind::rabbitmq;
    else if (v == "kafka")
      c.broker = BrokerKind::kafka;
    else
      return bad(key, fmt::format("'{}' is not rabbitmq or kafka", v));
  } else if (key == "SAGAFLOW_AMQP_URL") {
    auto ep = parse_amqp_url(v);
    if (!ep) return bad(key, ep.error().detail);
    c.amqp = std::move(ep.value());
    c.amqp_url = v;
  } else if (key == "SAGAFLOW_KAFKA_BROKERS") {
    if (trim(v).empty()) return bad(key, "must list at least one host:port");
    c.kafka_brokers = v;
  } else if (key == "SAGAFLOW_REDIS_URL") {
    auto ep = parse_redis_url(v);
    if (!ep) return bad(key, ep.error().detail);
    c.redis = std::move(ep.value());
    c.redis_url = v;
  } else if (key == "SAGAFLOW_METRICS_ADDR" || key == "SAGAFLOW_WEBHOOK_ADDR" ||
             key == "SAGAFLOW_CONSOLE_ADDR") {
    auto hp = parse_host_port(v);
    if (!hp) return bad(key, hp.error().detail);
    if (key == "SAGAFLOW_METRICS_ADDR") {
      c.metrics_addr = std::move(hp.value());
    } else if (key == "SAGAFLOW_WEBHOOK_ADDR") {
      c.webhook_addr = std::move(hp.value());
    } else {
      if (hp->disabled) return bad(key, "the console needs an address");
      c.console_addr = std::move(hp.value());
    }
  } else if (key == "SAGAFLOW_CONSOLE_TOKEN") {
    c.console_token = v;
  } else if (key == "SAGAFLOW_STEP_TIMEOUT_MS") {
    auto n = int_of(1, 7LL * 24 * 3600 * 1000);
    if (!n) return n.error();
    c.step_timeout_ms = n.value();
  } else if (key == "SAGAFLOW_DEDUP_TTL_S") {
    auto n = int_of(1, 365LL * 24 * 3600);
    if (!n) return n.error();
    c.dedup_ttl_s = n.value();
  } else if (key == "SAGAFLOW_MAX_ATTEMPTS") {
    auto n = int_of(1, 1000);
    if (!n) return n.error();
    c.max_attempts = static_cast<int>(n.value());
  } else if (key == "SAGAFLOW_PLANS") {
    auto plans = parse_plans(v);
    if (!plans) return bad(key, plans.error().detail);
    c.plans = std::move(plans.value());
  } else if (key == "SAGAFLOW_DEFAULT_PLAN") {
    c.default_plan = v;
  } else if (key == "SAGAFLOW_WEBHOOK_SECRET") {
    c.webhook_secrets.clear();
    std::string_view rest = v;
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      const auto secret = trim(rest.substr(0, comma));
      if (!secret.empty()) c.webhook_secrets.emplace_back(secret);
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    }
  } else if (key == "SAGAFLOW_SAGA_DIR") {
    c.saga_dir = v;
  } else if (key == "SAGAFLOW_LOG_LEVEL") {
    auto level = log::parse_level(v);
    if (!level) return bad(key, fmt::format("'{}' is not debug, info, warn, error or off", v));
    c.log_level = *level;
  } else if (key == "SAGAFLOW_MAX_MESSAGE_BYTES") {
    auto n = int_of(256, 64LL * 1024 * 1024);
    if (!n) return n.error();
    c.max_message_bytes = static_cast<std::size_t>(n.value());
  } else if (key == "SAGAFLOW_PREFETCH") {
    auto n = int_of(1, 65535);
    if (!n) return n.error();
    c.prefetch = static_cast<int>(n.value());
  } else if (key == "SAGAFLOW_REDIS_WAIT_REPLICAS") {
    auto n = int_of(0, 16);
    if (!n) return n.error();
    c.redis_wait_replicas = static_cast<int>(n.value());
  } else if (key == "SAGAFLOW_REDIS_PARTITIONS") {
    auto n = int_of(1, 16384);
    if (!n) return n.error();
    c.redis_partitions = static_cast<int>(n.value());
  } else if (key == "SAGAFLOW_KAFKA_PARTITIONS") {
    auto n = int_of(1, 10000);
    if (!n) return n.error();
    c.kafka_partitions = static_cast<int>(n.value());
  } else if (key == "SAGAFLOW_KAFKA_REPLICATION") {
    auto n = int_of(1, 32);
    if (!n) return n.error();
    c.kafka_replication = static_cast<int>(n.value());
  } else if (key == "SAGAFLOW_HTTP_HEADER_TIMEOUT_MS") {
    auto n = int_of(100, 3600LL * 1000);
    if (!n) return n.error();
    c.http_header_timeout_ms = n.value();
  } else if (key == "SAGAFLOW_HTTP_MAX_CONNECTIONS") {
    auto n = int_of(1, 1000000);
    if (!n) return n.error();
    c.http_max_connections = static_cast<int>(n.value());
  } else if (key == "SAGAFLOW_DELIVERY_SCHEDULE") {
    c.delivery_schedule = v;  // checked by the deliver command
  } else if (key == "SAGAFLOW_DELIVERY_TIMEOUT_MS") {
    auto n = int_of(100, 3600LL * 1000);
    if (!n) return n.error();
    c.delivery_timeout_ms = n.value();
  } else if (key == "SAGAFLOW_BREAKER_FAILURES") {
    auto n = int_of(1, 1000000);
    if (!n) return n.error();
    c.breaker_failures = static_cast<int>(n.value());
  } else if (key == "SAGAFLOW_BREAKER_OPEN_MS") {
    auto n = int_of(1, 7LL * 24 * 3600 * 1000);
    if (!n) return n.error();
    c.breaker_open_ms = n.value();
  } else if (key == "SAGAFLOW_DELIVERY_ALLOW_PRIVATE") {
    auto n = int_of(0, 1);
    if (!n) return n.error();
    c.delivery_allow_private = n.value() == 1;
  } else if (key == "SAGAFLOW_DELIVERY_LOG_MAX") {
    auto n = int_of(1, 1000000000);
    if (!n) return n.error();
    c.delivery_log_max = n.value();
  }
  return Status::success();
}

}  // namespace

// The table's defaults, read as any other value: kKeys is their one source.
Config::Config() {
  for (const auto& k : kKeys) {
    if (Status st = apply_key(*this, k.env, std::string(k.default_value)); !st)
      throw std::logic_error("bad default of " + st.error().detail);
  }
}

Result<Config> load_config(const ConfigSources& sources) {
  std::map<std::string, std::string, std::less<>> file_values;
  if (!sources.config_file.empty()) {
    if (auto st = read_config_file(sources.config_file, file_values); !st) return st.error();
  }
  const EnvLookup env =
      sources.env ? sources.env : EnvLookup([](const char* k) { return std::getenv(k); });

  // The effective text of every key: flag, then environment, then file, then default.
  auto value_of = [&](const ConfigKey& k) -> std::string {
    if (auto it = sources.flags.find(k.env); it != sources.flags.end()) return it->second;
    const std::string name(k.env);
    if (const char* v = env(name.c_str()); v != nullptr) return v;
    if (auto it = file_values.find(k.env); it != file_values.end()) return it->second;
    return std::string(k.default_value);
  };
  for (const auto& [key, value] : sources.flags) {
    bool known = false;
    for (const auto& k : kKeys) known = known || k.env == key;
    if (!known) return bad(key, "unknown configuration key");
  }

  Config c;
  for (const auto& k : kKeys) {
    if (Status st = apply_key(c, k.env, value_of(k)); !st) return st.error();
  }
  if (c.find_plan(c.default_plan) == nullptr) {
    return bad("SAGAFLOW_DEFAULT_PLAN",
               fmt::format("'{}' is not one of the plans in SAGAFLOW_PLANS", c.default_plan));
  }
  return c;
}

}  // namespace sagaflow
