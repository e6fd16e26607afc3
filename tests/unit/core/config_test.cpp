// Configuration: flags > environment > --config FILE > defaults, every value validated once,
// and a bad value is one line naming the key (CONTRACT.md section 1, STYLE.md 10).
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <string>

#include "core/config.hpp"
#include "core/envelope.hpp"

using namespace sagaflow;

namespace {

ConfigSources sources_with_env(std::map<std::string, std::string> env) {
  ConfigSources s;
  auto shared = std::make_shared<std::map<std::string, std::string>>(std::move(env));
  s.env = [shared](const char* key) -> const char* {
    auto it = shared->find(key);
    return it == shared->end() ? nullptr : it->second.c_str();
  };
  return s;
}

std::string temp_file(const std::string& text) {
  char path[] = "/tmp/sagaflow_config_XXXXXX";
  const int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  close(fd);
  std::ofstream(path) << text;
  return path;
}

}  // namespace

TEST_CASE("defaults match the contract", "[config]") {
  // Given no flags, no environment and no file
  auto c = load_config(sources_with_env({}));
  // Then every key has its documented default
  REQUIRE(c.ok());
  CHECK(c->broker == BrokerKind::rabbitmq);
  CHECK(c->amqp.host == "127.0.0.1");
  CHECK(c->amqp.port == 5672);
  CHECK(c->amqp.user == "guest");
  CHECK(c->amqp.vhost == "/");
  CHECK(c->kafka_brokers == "127.0.0.1:9092");
  CHECK(c->redis.port == 6379);
  CHECK(c->redis.db == 0);
  CHECK(c->metrics_addr.port == 9464);
  CHECK(c->step_timeout_ms == 30000);
  CHECK(c->dedup_ttl_s == 86400);
  CHECK(c->max_attempts == 8);
  REQUIRE(c->plans.size() == 3);
  CHECK(c->plans[0].name == "free");
  CHECK(c->plans[0].rate == 60);
  CHECK(c->plans[0].period_ms == 60000);
  CHECK(c->plans[0].burst == 100);
  CHECK(c->plans[2].name == "enterprise");
  CHECK(c->plans[2].burst == 2000);
  CHECK(c->default_plan == "free");
  CHECK(c->webhook_secrets.empty());
  CHECK(c->saga_dir.empty());
  CHECK(c->log_level == log::Level::info);
  CHECK(c->http_header_timeout_ms == 10000);
  CHECK(c->http_max_connections == 1024);
}

TEST_CASE("Config{} holds the table's defaults, the same as loading nothing", "[config]") {
  // Given a default-constructed Config and one loaded from no flags, environment or file
  const Config d;
  auto c = load_config(sources_with_env({}));
  REQUIRE(c.ok());
  // Then every field agrees (the table of keys is the one source of the defaults)
  CHECK(d.broker == c->broker);
  CHECK(d.amqp_url == c->amqp_url);
  CHECK(d.amqp.host == c->amqp.host);
  CHECK(d.amqp.port == c->amqp.port);
  CHECK(d.amqp.user == c->amqp.user);
  CHECK(d.amqp.password == c->amqp.password);
  CHECK(d.amqp.vhost == c->amqp.vhost);
  CHECK(d.kafka_brokers == c->kafka_brokers);
  CHECK(d.redis_url == c->redis_url);
  CHECK(d.redis.host == c->redis.host);
  CHECK(d.redis.port == c->redis.port);
  CHECK(d.redis.db == c->redis.db);
  CHECK(d.metrics_addr.host == c->metrics_addr.host);
  CHECK(d.metrics_addr.port == c->metrics_addr.port);
  CHECK(d.step_timeout_ms == c->step_timeout_ms);
  CHECK(d.dedup_ttl_s == c->dedup_ttl_s);
  CHECK(d.max_attempts == c->max_attempts);
  REQUIRE(d.plans.size() == c->plans.size());
  for (std::size_t i = 0; i < d.plans.size(); ++i) {
    CHECK(d.plans[i].name == c->plans[i].name);
    CHECK(d.plans[i].rate == c->plans[i].rate);
    CHECK(d.plans[i].period_ms == c->plans[i].period_ms);
    CHECK(d.plans[i].burst == c->plans[i].burst);
  }
  CHECK(d.default_plan == c->default_plan);
  CHECK(d.find_plan(d.default_plan) != nullptr);
  CHECK(d.webhook_secrets == c->webhook_secrets);
  CHECK(d.saga_dir == c->saga_dir);
  CHECK(d.log_level == c->log_level);
  CHECK(d.max_message_bytes == c->max_message_bytes);
  CHECK(d.max_message_bytes == kDefaultMaxMessageBytes);
  CHECK(d.prefetch == c->prefetch);
  CHECK(d.webhook_addr.port == c->webhook_addr.port);
  CHECK(d.redis_partitions == c->redis_partitions);
  CHECK(d.redis_wait_replicas == c->redis_wait_replicas);
  CHECK(d.kafka_partitions == c->kafka_partitions);
  CHECK(d.kafka_replication == c->kafka_replication);
  CHECK(d.http_header_timeout_ms == c->http_header_timeout_ms);
  CHECK(d.http_max_connections == c->http_max_connections);
  CHECK(d.delivery_schedule == c->delivery_schedule);
  CHECK(d.delivery_timeout_ms == c->delivery_timeout_ms);
  CHECK(d.breaker_failures == c->breaker_failures);
  CHECK(d.breaker_open_ms == c->breaker_open_ms);
  CHECK(d.delivery_allow_private == c->delivery_allow_private);
  CHECK(d.delivery_log_max == c->delivery_log_max);
  CHECK(d.console_addr.host == c->console_addr.host);
  CHECK(d.console_addr.port == c->console_addr.port);
  CHECK(d.console_token == c->console_token);
  // And the endpoint types' own defaults are the table's URLs
  const AmqpEndpoint amqp;
  CHECK(amqp.host == d.amqp.host);
  CHECK(amqp.port == d.amqp.port);
  CHECK(amqp.user == d.amqp.user);
  CHECK(amqp.password == d.amqp.password);
  CHECK(amqp.vhost == d.amqp.vhost);
  const RedisEndpoint redis;
  CHECK(redis.host == d.redis.host);
  CHECK(redis.port == d.redis.port);
  CHECK(redis.db == d.redis.db);
  CHECK(redis.password == d.redis.password);
}

TEST_CASE("every key of the table has a flag, a help line and a valid default", "[config]") {
  for (const auto& k : config_keys()) {
    INFO(k.env);
    CHECK(k.env.substr(0, 9) == "SAGAFLOW_");
    CHECK(!k.flag.empty());
    CHECK(!k.help.empty());
    // A default given alone (as a flag) is accepted
    ConfigSources s = sources_with_env({});
    s.flags[std::string(k.env)] = std::string(k.default_value);
    CHECK(load_config(s).ok());
  }
}

TEST_CASE("flags win over environment, environment over the file", "[config]") {
  // Given the same key in all three places
  const auto file = temp_file(
      "# comment\nSAGAFLOW_MAX_ATTEMPTS=3\nSAGAFLOW_DEDUP_TTL_S = 60\n"
      "SAGAFLOW_LOG_LEVEL=\"debug\"\n");
  auto s = sources_with_env({{"SAGAFLOW_MAX_ATTEMPTS", "5"}});
  s.config_file = file;
  s.flags["SAGAFLOW_MAX_ATTEMPTS"] = "7";
  // When loaded
  auto c = load_config(s);
  // Then the flag wins, and the file still fills what nobody else set
  REQUIRE(c.ok());
  CHECK(c->max_attempts == 7);
  CHECK(c->dedup_ttl_s == 60);
  CHECK(c->log_level == log::Level::debug);
  s.flags.clear();
  CHECK(load_config(s)->max_attempts == 5);
  std::remove(file.c_str());
}

TEST_CASE("a bad value is one line naming the key", "[config]") {
  struct Case {
    const char* key;
    const char* value;
    const char* needle;
  };
  const Case cases[] = {
      {"SAGAFLOW_MAX_ATTEMPTS", "many", "SAGAFLOW_MAX_ATTEMPTS: 'many' is not an integer"},
      {"SAGAFLOW_MAX_ATTEMPTS", "0", "SAGAFLOW_MAX_ATTEMPTS: 0 is out of range"},
      {"SAGAFLOW_BROKER", "nats", "SAGAFLOW_BROKER: 'nats' is not rabbitmq or kafka"},
      {"SAGAFLOW_AMQP_URL", "http://x", "SAGAFLOW_AMQP_URL: must start with amqp://"},
      {"SAGAFLOW_REDIS_URL", "redis://h:notaport/0", "SAGAFLOW_REDIS_URL"},
      {"SAGAFLOW_REDIS_URL", "redis://h:6379/99", "SAGAFLOW_REDIS_URL: database '99'"},
      {"SAGAFLOW_PLANS", "free=60/fortnight:100", "period 'fortnight'"},
      {"SAGAFLOW_PLANS", "free60", "is not name=rate/period:burst"},
      {"SAGAFLOW_PLANS", "a=1/s:1,a=2/s:2", "plan 'a' is listed twice"},
      {"SAGAFLOW_DEFAULT_PLAN", "gold", "SAGAFLOW_DEFAULT_PLAN: 'gold' is not one of the plans"},
      {"SAGAFLOW_LOG_LEVEL", "loud", "SAGAFLOW_LOG_LEVEL: 'loud'"},
      {"SAGAFLOW_METRICS_ADDR", "localhost", "SAGAFLOW_METRICS_ADDR: 'localhost' is not host:port"},
      {"SAGAFLOW_STEP_TIMEOUT_MS", "-5", "SAGAFLOW_STEP_TIMEOUT_MS"},
      {"SAGAFLOW_HTTP_HEADER_TIMEOUT_MS", "soon", "SAGAFLOW_HTTP_HEADER_TIMEOUT_MS: 'soon'"},
      {"SAGAFLOW_HTTP_MAX_CONNECTIONS", "0", "SAGAFLOW_HTTP_MAX_CONNECTIONS: 0 is out of range"},
  };
  for (const auto& tc : cases) {
    CAPTURE(tc.key, tc.value);
    auto c = load_config(sources_with_env({{tc.key, tc.value}}));
    REQUIRE_FALSE(c.ok());
    CHECK(c.error().code == Errc::invalid_config);
    CHECK_THAT(c.error().detail, Catch::Contains(tc.needle));
    CHECK(c.error().detail.find('\n') == std::string::npos);
  }
}

TEST_CASE("an unknown key in the config file is refused with its line", "[config]") {
  const auto file = temp_file("SAGAFLOW_MAX_ATTEMPTS=3\nSAGAFLOW_TYPO=1\n");
  auto s = sources_with_env({});
  s.config_file = file;
  auto c = load_config(s);
  REQUIRE_FALSE(c.ok());
  CHECK_THAT(c.error().detail, Catch::Contains(":2: unknown key SAGAFLOW_TYPO"));
  std::remove(file.c_str());
  s.config_file = "/nonexistent/sagaflow.env";
  CHECK_THAT(load_config(s).error().detail, Catch::Contains("cannot be read"));
}

TEST_CASE("URLs carry credentials, vhost, database", "[config]") {
  auto a = parse_amqp_url("amqp://user:p%40ss@broker.local:5673/prod");
  REQUIRE(a.ok());
  CHECK(a->user == "user");
  CHECK(a->password == "p@ss");
  CHECK(a->host == "broker.local");
  CHECK(a->port == 5673);
  CHECK(a->vhost == "prod");
  CHECK(parse_amqp_url("amqp://h/%2f")->vhost == "/");
  CHECK(parse_amqp_url("amqp://h")->port == 5672);
  auto r = parse_redis_url("redis://:secret@10.0.0.1:6380/3");
  REQUIRE(r.ok());
  CHECK(r->password == "secret");
  CHECK(r->port == 6380);
  CHECK(r->db == 3);
  CHECK(parse_host_port("0")->disabled);
  CHECK(parse_host_port("[::1]:9464")->host == "::1");
}

TEST_CASE("a redis-cluster:// URL names seed nodes and an optional password", "[config]") {
  auto r = parse_redis_url("redis-cluster://:p%40ss@10.0.0.1:7000,10.0.0.2,redis-3:7002/");
  REQUIRE(r.ok());
  CHECK(r->cluster());
  CHECK(r->password == "p@ss");
  REQUIRE(r->cluster_seeds.size() == 3);
  CHECK(r->cluster_seeds[0].host == "10.0.0.1");
  CHECK(r->cluster_seeds[0].port == 7000);
  CHECK(r->cluster_seeds[1].port == 6379);
  CHECK(r->cluster_seeds[2].host == "redis-3");
  CHECK(r->host == "10.0.0.1");
  CHECK(r->db == 0);
  CHECK(parse_redis_url("redis-cluster://127.0.0.1:7000")->cluster_seeds.size() == 1);
  CHECK_FALSE(parse_redis_url("redis://127.0.0.1:6379/0")->cluster());
  // Bad input: a clear error, never a half-parsed endpoint
  CHECK(parse_redis_url("redis-cluster:///").error().detail.find("at least one") !=
        std::string::npos);
  CHECK(parse_redis_url("redis-cluster://h:1/3").error().detail.find("database") !=
        std::string::npos);
  CHECK_FALSE(parse_redis_url("redis-cluster://h:1,,h:2/").ok());
  CHECK_FALSE(parse_redis_url("redis-cluster://h:1,/").ok());
  CHECK(parse_redis_url("redis-cluster://user:pw@h:1/").error().detail.find("password only") !=
        std::string::npos);
  CHECK_FALSE(parse_redis_url("redis-cluster://pw@h:1/").ok());
  CHECK(parse_redis_url("redis-cluster://:a%2Cb@h:1/")->password == "a,b");
  CHECK(parse_redis_url("redis-cluster://:a,b@h:1/")->password == "a,b");
  auto v6 = parse_redis_url("redis-cluster://[::1],[::1]:7001/");
  REQUIRE(v6.ok());
  CHECK(v6->cluster_seeds[0].host == "::1");
  CHECK(v6->cluster_seeds[0].port == 6379);
  CHECK(v6->cluster_seeds[1].port == 7001);
  CHECK_FALSE(parse_redis_url("redis-cluster://h:x/").ok());
  CHECK(parse_redis_url("rediss://h:1/").error().detail.find("redis-cluster://") !=
        std::string::npos);
  auto c = load_config(sources_with_env({{"SAGAFLOW_REDIS_WAIT_REPLICAS", "1"}}));
  REQUIRE(c.ok());
  CHECK(c->redis_wait_replicas == 1);
  CHECK_FALSE(load_config(sources_with_env({{"SAGAFLOW_REDIS_WAIT_REPLICAS", "-1"}})).ok());
}

TEST_CASE("webhook secrets are a comma-separated list (rotation)", "[config]") {
  auto c = load_config(sources_with_env({{"SAGAFLOW_WEBHOOK_SECRET", "new, old"}}));
  REQUIRE(c.ok());
  REQUIRE(c->webhook_secrets.size() == 2);
  CHECK(c->webhook_secrets[0] == "new");
  CHECK(c->webhook_secrets[1] == "old");
}

TEST_CASE("README's configuration table lists every key with its flag and default", "[config]") {
  const char* source_dir = std::getenv("SAGAFLOW_SOURCE_DIR");
  REQUIRE(source_dir != nullptr);  // set by CTest
  std::ifstream readme(std::string(source_dir) + "/README.md");
  REQUIRE(readme.good());
  // | `SAGAFLOW_X` | `--x` | `default` (notes) |   or   | ... | none (notes) |
  std::map<std::string, std::pair<std::string, std::string>> rows;  // env -> (flag cell, default)
  std::string line;
  while (std::getline(readme, line)) {
    if (line.rfind("| `SAGAFLOW_", 0) != 0) continue;
    std::vector<std::string> cells;
    std::size_t from = 1;
    for (std::size_t bar = line.find('|', from); bar != std::string::npos;
         from = bar + 1, bar = line.find('|', from)) {
      std::string cell = line.substr(from, bar - from);
      cell.erase(0, cell.find_first_not_of(' '));
      cell.erase(cell.find_last_not_of(' ') + 1);
      cells.push_back(cell);
    }
    REQUIRE(cells.size() >= 3);
    rows[cells[0].substr(1, cells[0].size() - 2)] = {cells[1], cells[2]};
  }
  for (const auto& key : sagaflow::config_keys()) {
    INFO(key.env);
    const auto row = rows.find(std::string(key.env));
    REQUIRE(row != rows.end());
    CHECK(row->second.first == "`--" + std::string(key.flag) + "`");
    const std::string& def = row->second.second;
    if (key.default_value.empty()) {
      CHECK(def.rfind("none", 0) == 0);
    } else {
      CHECK(def.rfind("`" + std::string(key.default_value) + "`", 0) == 0);
    }
    rows.erase(row);
  }
  // Every other row is a test-only knob, not a key of the table
  for (const auto& [env, cells] : rows) {
    INFO(env);
    CHECK(env.rfind("SAGAFLOW_TEST_", 0) == 0);
  }
}
