#pragma once
// Typed configuration (STYLE.md 10), validated once at start-up. Every key of CONTRACT.md
// section 1 plus a few operational ones. Precedence: flags, then environment, then the
// optional --config FILE (KEY=VALUE lines, # comments); flags win. A bad value or an unknown
// key in the file is an Error of code invalid_config whose detail names the key.
#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/log.hpp"
#include "core/result.hpp"

namespace sagaflow {

struct RatePlan {
  std::string name;
  std::int64_t rate = 0;       // tokens per period
  std::int64_t period_ms = 0;  // length of the period
  std::int64_t burst = 0;      // bucket size
};

struct AmqpEndpoint {
  std::string host = "127.0.0.1";
  int port = 5672;
  std::string user = "guest";
  std::string password = "guest";
  std::string vhost = "/";
};

struct HostPort {
  std::string host;
  int port = 0;
  bool disabled = false;  // the address "0"
};

struct RedisEndpoint {
  std::string host = "127.0.0.1";
  int port = 6379;
  int db = 0;
  std::string password;  // empty: no AUTH
  // redis-cluster://: the seed nodes (host and port above are the first of them; db is 0).
  std::vector<HostPort> cluster_seeds;
  bool cluster() const noexcept { return !cluster_seeds.empty(); }
};

enum class BrokerKind : std::uint8_t { rabbitmq, kafka };

// Every field is one key of config_keys(); Config{} holds the table's defaults (the table is
// their one source: --help, the README and this struct all follow it).
struct Config {
  Config();

  BrokerKind broker{};
  AmqpEndpoint amqp;
  std::string amqp_url;
  std::string kafka_brokers;
  RedisEndpoint redis;
  std::string redis_url;
  HostPort metrics_addr;
  std::int64_t step_timeout_ms{};
  std::int64_t dedup_ttl_s{};
  int max_attempts{};
  std::vector<RatePlan> plans;
  std::string default_plan;
  std::vector<std::string> webhook_secrets;  // empty: the webhook ingress refuses to start
  std::string saga_dir;                      // empty: built-in definitions
  log::Level log_level{};
  std::size_t max_message_bytes{};
  int prefetch{};
  HostPort webhook_addr;
  int redis_partitions{};
  int redis_wait_replicas{};  // > 0: a commit is acked to the broker after WAIT says so
  int kafka_partitions{};     // topology apply (Kafka): partitions per topic
  int kafka_replication{};    // topology apply (Kafka): replication factor
  std::int64_t http_header_timeout_ms{};
  int http_max_connections{};
  std::string delivery_schedule;
  std::int64_t delivery_timeout_ms{};
  int breaker_failures{};
  std::int64_t breaker_open_ms{};
  bool delivery_allow_private{};
  std::int64_t delivery_log_max{};
  HostPort console_addr;
  std::string console_token;  // empty: none (the console then listens on loopback only)

  const RatePlan* find_plan(std::string_view name) const noexcept;
};

struct ConfigKey {
  std::string_view env;            // SAGAFLOW_...
  std::string_view flag;           // --... (without dashes)
  std::string_view default_value;  // empty: none
  std::string_view help;           // one line
};

// Every key, in documentation order.
std::span<const ConfigKey> config_keys() noexcept;

using EnvLookup = std::function<const char*(const char*)>;

struct ConfigSources {
  std::map<std::string, std::string, std::less<>> flags;  // env name -> value, from the CLI
  std::string config_file;                                // empty: none
  EnvLookup env;                                          // default: ::getenv
};

Result<Config> load_config(const ConfigSources& sources);

// Parsers for single values, exposed for tests and for the CLI.
Result<AmqpEndpoint> parse_amqp_url(std::string_view url);
Result<RedisEndpoint> parse_redis_url(std::string_view url);
Result<std::vector<RatePlan>> parse_plans(std::string_view text);
Result<HostPort> parse_host_port(std::string_view text);

}  // namespace sagaflow
