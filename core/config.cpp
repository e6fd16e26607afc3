#include "core/config.hpp"

#include <charconv>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <stdexcept>

#include <fmt/format.h>

namespace sagaflow {
namespace {

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

Error bad(std::string_view key, std::string_view why) {
  return make_error(Errc::invalid_config, fmt::format("{}: {}", key, why));
}

Result<std::int64_t> parse_int(std::string_view key, std::string_view text, std::int64_t min,
                               std::int64_t max) {
  std::int64_t v = 0;
  const auto* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, v);
  if (text.empty() || ec != std::errc{} || ptr != end) {
    return bad(key, fmt::format("'{}' is not an integer", text));
  }
  if (v < min || v > max) {
    return bad(key, fmt::format("{} is out of range [{}, {}]", v, min, max));
  }
  return v;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

// Percent-decoding for URL user info and paths.
Result<std::string> url_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) return make_error(Errc::invalid_config, "bad %-escape");
    int v = 0;
    auto [p, ec] = std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16);
    if (ec != std::errc{} || p != s.data() + i + 3)
      return make_error(Errc::invalid_config, "bad %-escape");
    out.push_back(static_cast<char>(v));
    i += 2;
  }
  return out;
}

struct UrlParts {
  std::string user, password, host, path;
  int port = 0;
  bool has_user = false;
};

// scheme://[user[:password]@]host[:port][/path]
Result<UrlParts> split_url(std::string_view url, std::string_view scheme, int default_port) {
  const std::string prefix = std::string(scheme) + "://";
  if (url.substr(0, prefix.size()) != prefix) {
    return make_error(Errc::invalid_config, fmt::format("must start with {}", prefix));
  }
  std::string_view rest = url.substr(prefix.size());
  UrlParts parts;
  const auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos) {
    auto path = url_decode(rest.substr(slash + 1));
    if (!path) return path.error();
    parts.path = std::move(path.value());
  }
  if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
    std::string_view info = authority.substr(0, at);
    authority = authority.substr(at + 1);
    const auto colon = info.find(':');
    auto user = url_decode(info.substr(0, colon));
    if (!user) return user.error();
    parts.user = std::move(user.value());
    if (colon != std::string_view::npos) {
      auto pw = url_decode(info.substr(colon + 1));
      if (!pw) return pw.error();
      parts.password = std::move(pw.value());
    }
    parts.has_user = true;
  }
  auto hp = parse_host_port(authority.find(':') == std::string_view::npos
                                ? std::string(authority) + ":" + std::to_string(default_port)
                                : std::string(authority));
  if (!hp) return hp.error();
  parts.host = hp->host;
  parts.port = hp->port;
  return parts;
}

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

Result<HostPort> parse_host_port(std::string_view text) {
  HostPort hp;
  if (text == "0") {
    hp.disabled = true;
    return hp;
  }
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    return make_error(Errc::invalid_config, fmt::format("'{}' is not host:port", text));
  }
  hp.host = std::string(text.substr(0, colon));
  if (hp.host.size() > 2 && hp.host.front() == '[' && hp.host.back() == ']') {
    hp.host = hp.host.substr(1, hp.host.size() - 2);
  }
  auto port = parse_int("port", text.substr(colon + 1), 0, 65535);
  if (!port) return make_error(Errc::invalid_config, fmt::format("'{}' has no valid port", text));
  hp.port = static_cast<int>(port.value());
  return hp;
}

Result<AmqpEndpoint> parse_amqp_url(std::string_view url) {
  auto parts = split_url(url, "amqp", 5672);
  if (!parts) return parts.error();
  AmqpEndpoint ep;
  ep.host = parts->host;
  ep.port = parts->port;
  if (parts->has_user) {
    ep.user = parts->user;
    ep.password = parts->password;
  }
  // amqp://host/ means the vhost "/", amqp://host/%2f too, amqp://host/prod means "prod".
  ep.vhost = parts->path.empty() ? "/" : parts->path;
  return ep;
}

// redis-cluster://[:password@]host:port[,host:port...][/]
Result<RedisEndpoint> parse_redis_cluster_url(std::string_view url) {
  std::string_view rest = url.substr(std::string_view("redis-cluster://").size());
  const auto slash = rest.find('/');
  if (slash != std::string_view::npos && slash + 1 != rest.size()) {
    return make_error(Errc::invalid_config,
                      "a redis-cluster:// URL has no database path (a cluster has only db 0)");
  }
  std::string_view authority = rest.substr(0, slash);
  if (authority.empty() || authority.back() == '@') {
    return make_error(Errc::invalid_config, "a redis-cluster:// URL names at least one node");
  }
  RedisEndpoint ep;
  if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
    const std::string_view info = authority.substr(0, at);
    authority = authority.substr(at + 1);
    if (info.empty() || info.front() != ':') {
      return make_error(
          Errc::invalid_config,
          "a redis-cluster:// URL takes a password only: redis-cluster://:pw@host:port");
    }
    auto pw = url_decode(info.substr(1));
    if (!pw) return pw.error();
    ep.password = std::move(pw.value());
  }
  while (true) {
    const auto comma = authority.find(',');
    const std::string_view node = authority.substr(0, comma);
    const bool has_port =
        node.find(':') != std::string_view::npos && !(node.front() == '[' && node.back() == ']');
    auto hp = parse_host_port(has_port ? std::string(node) : std::string(node) + ":6379");
    if (!hp) return hp.error();
    if (hp->disabled || hp->host.empty() || hp->port == 0) {
      return make_error(Errc::invalid_config, fmt::format("'{}' is not a cluster node", node));
    }
    ep.cluster_seeds.push_back(std::move(hp.value()));
    if (comma == std::string_view::npos) break;
    authority = authority.substr(comma + 1);
  }
  ep.host = ep.cluster_seeds.front().host;
  ep.port = ep.cluster_seeds.front().port;
  return ep;
}

Result<RedisEndpoint> parse_redis_url(std::string_view url) {
  if (url.substr(0, 16) == "redis-cluster://") return parse_redis_cluster_url(url);
  if (url.substr(0, 8) != "redis://") {
    return make_error(Errc::invalid_config, "must start with redis:// or redis-cluster://");
  }
  auto parts = split_url(url, "redis", 6379);
  if (!parts) return parts.error();
  RedisEndpoint ep;
  ep.host = parts->host;
  ep.port = parts->port;
  ep.password = parts->password;  // redis://:secret@host:6379/0
  if (!parts->path.empty()) {
    auto db = parse_int("db", parts->path, 0, 15);
    if (!db)
      return make_error(Errc::invalid_config,
                        fmt::format("database '{}' is not 0..15", parts->path));
    ep.db = static_cast<int>(db.value());
  }
  return ep;
}

Result<std::vector<RatePlan>> parse_plans(std::string_view text) {
  std::vector<RatePlan> plans;
  while (!text.empty()) {
    const auto comma = text.find(',');
    const std::string_view item = trim(text.substr(0, comma));
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    if (item.empty()) continue;
    // name=rate/period:burst
    const auto eq = item.find('=');
    const auto sl = item.find('/');
    const auto co = item.rfind(':');
    if (eq == std::string_view::npos || sl == std::string_view::npos ||
        co == std::string_view::npos || !(eq < sl && sl < co) || eq == 0) {
      return make_error(
          Errc::invalid_config,
          fmt::format("plan '{}' is not name=rate/period:burst (e.g. free=60/min:100)", item));
    }
    RatePlan p;
    p.name = std::string(item.substr(0, eq));
    auto rate = parse_int("rate", item.substr(eq + 1, sl - eq - 1), 1, 1'000'000'000);
    auto burst = parse_int("burst", item.substr(co + 1), 1, 1'000'000'000);
    if (!rate || !burst) {
      return make_error(Errc::invalid_config,
                        fmt::format("plan '{}': rate and burst must be positive integers", item));
    }
    const std::string_view period = item.substr(sl + 1, co - sl - 1);
    if (period == "s" || period == "sec" || period == "second")
      p.period_ms = 1000;
    else if (period == "min" || period == "minute" || period == "m")
      p.period_ms = 60'000;
    else if (period == "h" || period == "hour")
      p.period_ms = 3'600'000;
    else if (period == "d" || period == "day")
      p.period_ms = 86'400'000;
    else {
      return make_error(
          Errc::invalid_config,
          fmt::format("plan '{}': period '{}' is not one of s, min, h, day", item, period));
    }
    p.rate = rate.value();
    p.burst = burst.value();
    for (const auto& other : plans) {
      if (other.name == p.name)
        return make_error(Errc::invalid_config, fmt::format("plan '{}' is listed twice", p.name));
    }
    plans.push_back(std::move(p));
  }
  if (plans.empty()) return make_error(Errc::invalid_config, "no plan given");
  return plans;
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
