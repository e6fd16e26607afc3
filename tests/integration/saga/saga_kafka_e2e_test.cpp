// End-to-end on Kafka: the sagaflow binary (topology apply, worker, simulate, publish, status)
// with SAGAFLOW_BROKER=kafka against librdkafka's mock cluster (a Kafka-protocol broker in
// this test process, on loopback) and a real Redis. The same invariant checker as the RabbitMQ
// tests (e2e.hpp) runs over what a Kafka observer saw on sagaflow.commands and sagaflow.events.
#include <signal.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "e2e.hpp"
#include "harness.hpp"
#include "kafka_trace.hpp"
#include "support/servers.hpp"

using namespace std::chrono_literals;
using sagaflow::e2e::check_status_counts;
using sagaflow::e2e::count_outcomes;
using sagaflow::e2e::GeneratedOrders;
using sagaflow::e2e::KafkaObserver;
using sagaflow::e2e::Orders;
using sagaflow::e2e::Report;
using sagaflow::e2e::require_invariants;
using sagaflow::e2e::run_cli;
using sagaflow::e2e::tail;
using sagaflow::e2e::TempFile;
using sagaflow::e2e::wait_finished;
using sagaflow::e2e::wait_until;
using sagaflow::testing::KafkaMock;
using sagaflow::testing::RedisServer;

namespace {

constexpr int kPartitions = 8;

// A fresh Kafka (mock cluster) and Redis, the topology, and the processes of one test.
struct KafkaCluster : sagaflow::e2e::Processes {
  KafkaMock kafka;
  RedisServer redis;

  explicit KafkaCluster(const std::string& step_timeout_ms = "4000") : kafka(1) {
    for (const char* t : {"sagaflow.events", "sagaflow.commands", "sagaflow.dead",
                          "sagaflow.retry.sagaflow-saga", "sagaflow.retry.sagaflow-participants"})
      kafka.create_topic(t, kPartitions);
    env = {{"SAGAFLOW_BROKER", "kafka"},
           {"SAGAFLOW_KAFKA_BROKERS", kafka.bootstrap()},
           {"SAGAFLOW_REDIS_URL", redis.url()},
           {"SAGAFLOW_METRICS_ADDR", "0"},
           {"SAGAFLOW_STEP_TIMEOUT_MS", step_timeout_ms},
           {"SAGAFLOW_MAX_ATTEMPTS", "8"},
           {"SAGAFLOW_PLANS", "free=100000/s:100000"},
           {"SAGAFLOW_LOG_LEVEL", "warn"}};
    const auto r = run_cli({"topology", "apply"}, env, 60s);
    INFO("topology apply stderr: " << tail(r.err, 2000));
    REQUIRE(r.code == 0);
  }

  ~KafkaCluster() override { kill_processes(); }  // before the broker and Redis stop
  KafkaCluster(const KafkaCluster&) = delete;
  KafkaCluster& operator=(const KafkaCluster&) = delete;
};

const std::vector<std::string> kSimAllOutcomes = {
    "--seed",          "11",  "--fail-inventory", "0.1",  "--fail-payment", "0.1",
    "--fail-shipment", "0.1", "--no-answer",      "0.06", "--latency-ms",   "5"};

const std::vector<std::string> kTraceTopics = {"sagaflow.commands", "sagaflow.events"};

// Two workers and the simulator (every kind of outcome), then 300 orders published.
GeneratedOrders start_run(KafkaCluster& c, const std::string& tag) {
  c.start_worker("w1");
  c.start_worker("w2");
  c.start_simulator(kSimAllOutcomes);
  GeneratedOrders gen = sagaflow::e2e::generate_orders(tag, 300, 6);
  TempFile file(sagaflow::e2e::write_temp_file("orders.jsonl", gen.lines));
  const auto pub = run_cli({"publish", "--file", file.path}, c.env, 120s);
  INFO("publish stderr: " << tail(pub.err, 1500));
  REQUIRE(pub.code == 0);
  return gen;
}

// Every order has its outcome, the invariants hold, status agrees, nothing dead-lettered.
Report finish_run(KafkaCluster& c, const KafkaObserver& obs, const GeneratedOrders& gen,
                  std::chrono::seconds timeout) {
  wait_finished(c, obs, gen.orders, timeout);
  std::this_thread::sleep_for(1s);
  const Report r = require_invariants(obs.snapshot(), gen.orders);
  check_status_counts(c.env, r, 0);
  return r;
}

}  // namespace

TEST_CASE("kafka e2e: hundreds of orders on two workers, every kind of outcome, broker errors",
          "[saga][e2e][kafka]") {
  KafkaCluster c;
  KafkaObserver obs(c.kafka.bootstrap(), kTraceTopics);
  const GeneratedOrders gen = start_run(c, "kbasic");
  // Transient broker errors on the produce and fetch paths mid-run (librdkafka retries them,
  // or a publish fails and the outbox re-sends it): they change no outcome.
  constexpr std::int16_t kProduce = 0, kFetch = 1;  // Kafka protocol API keys
  rd_kafka_mock_push_request_errors(
      c.kafka.cluster(), kProduce, 4, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
      RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
      RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION);
  rd_kafka_mock_push_request_errors(
      c.kafka.cluster(), kFetch, 3, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
      RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION);

  const Report r = finish_run(c, obs, gen, 180s);
  // Every kind of outcome happened (the simulator fails and ignores some commands).
  CHECK(r.outcomes.size() >= 4);
  c.drain_workers();
}

TEST_CASE("kafka e2e: a worker SIGKILLed mid-run and replaced loses nothing",
          "[saga][e2e][kafka]") {
  KafkaCluster c;
  KafkaObserver obs(c.kafka.bootstrap(), kTraceTopics);
  const GeneratedOrders gen = start_run(c, "kkill");

  REQUIRE(wait_until([&] { return count_outcomes(obs, gen.orders) >= gen.orders.size() / 4; }, 120s,
                     20ms));
  c.worker("w1").signal(SIGKILL);
  std::printf("kafka: w1 SIGKILLed at %zu outcomes\n", count_outcomes(obs, gen.orders));
  c.start_worker("w3");

  finish_run(c, obs, gen, 180s);
  c.drain_workers();
}

TEST_CASE("kafka e2e: the broker down for 3 s mid-run", "[saga][e2e][kafka]") {
  // Longer than the outage plus the consumer groups' rejoin (a session timeout), so that the
  // outage itself does not time steps out; the simulator's unanswered commands still do.
  KafkaCluster c("15000");
  KafkaObserver obs(c.kafka.bootstrap(), kTraceTopics);
  const GeneratedOrders gen = start_run(c, "kdown");

  REQUIRE(wait_until([&] { return count_outcomes(obs, gen.orders) >= gen.orders.size() / 4; }, 120s,
                     20ms));
  const std::size_t before = count_outcomes(obs, gen.orders);
  rd_kafka_mock_broker_set_down(c.kafka.cluster(), 1);
  std::this_thread::sleep_for(3s);
  rd_kafka_mock_broker_set_up(c.kafka.cluster(), 1);
  std::printf("kafka: broker down for 3 s at %zu outcomes\n", before);

  finish_run(c, obs, gen, 240s);
  for (auto& [name, p] : c.workers) {
    INFO("worker " << name << " stderr: " << tail(p->read_stderr(), 1500));
    CHECK_FALSE(p->wait_for(0ms).has_value());  // an outage does not kill a worker
  }
  c.drain_workers();
}

TEST_CASE("kafka e2e: poison messages are dead-lettered with their reason, value intact",
          "[saga][e2e][kafka]") {
  KafkaCluster c;
  KafkaObserver obs(c.kafka.bootstrap(), kTraceTopics);
  c.start_worker("w1");
  c.start_simulator({"--seed", "3", "--latency-ms", "2"});

  struct Poison {
    std::string route, body, reason;
  };
  const std::vector<Poison> poison = {
      {"order.created", R"({"id":"kpoison_1","type":"order.created","data":{"order_id":)",
       "malformed_json"},
      {"order.created", "[1,2,3]", "malformed_json"},
      {"inventory.exploded",
       R"({"id":"kpoison_3","type":"inventory.exploded","data":{"order_id":"kpoison_ord_3"}})",
       "unknown_type"},
      {"order.created",
       R"({"id":"kpoison_4","type":"order.created","store_id":"store_p","data":{"order_id":"kpoison_ord_4","customer_id":"cus_1","total":10.999,"currency":"EUR","items":[{"sku":"a","qty":1,"price":10.999}]}})",
       "invalid_event"},
      {"inventory.reserved",
       R"({"id":"kpoison_5","type":"inventory.reserved","data":{"order_id":"kord_nope","reservation_id":"res_1"}})",
       "unknown_saga"},
  };
  const GeneratedOrders gen = sagaflow::e2e::generate_orders("kclean", 20, 2);
  TempFile file(sagaflow::e2e::write_temp_file("orders.jsonl", gen.lines));
  REQUIRE(run_cli({"publish", "--file", file.path}, c.env, 60s).code == 0);
  for (const auto& p : poison) {
    TempFile one(sagaflow::e2e::write_temp_file("poison.jsonl", {p.body}));
    const auto r =
        run_cli({"publish", "--raw", "--route", p.route, "--file", one.path}, c.env, 60s);
    INFO("publish --raw stderr: " << r.err);
    REQUIRE(r.code == 0);
  }

  wait_finished(c, obs, gen.orders, 90s);
  std::vector<sagaflow::e2e::KafkaRecord> dead;
  const bool all_dead = wait_until(
      [&] {
        dead = sagaflow::e2e::read_topic(c.kafka.bootstrap(), "sagaflow.dead");
        return dead.size() >= poison.size();
      },
      60s, 500ms);
  if (!all_dead) {
    // Which poison is missing, and what the worker said about it
    std::string seen;
    for (const auto& d : dead) {
      const auto reason = d.headers.find("x-sagaflow-error");
      seen += tail(d.value, 120) + " (" +
              (reason == d.headers.end() ? std::string("no reason") : reason->second) + ")\n";
    }
    INFO("dead letters so far:\n" << seen << c.diagnostics());
    REQUIRE(all_dead);
  }
  std::this_thread::sleep_for(1s);
  dead = sagaflow::e2e::read_topic(c.kafka.bootstrap(), "sagaflow.dead");
  {
    INFO(c.diagnostics());
    REQUIRE_FALSE(c.worker("w1").wait_for(0ms).has_value());  // the worker survived all of it
  }
  CHECK(dead.size() == poison.size());  // the poison, and nothing else
  std::vector<bool> found(poison.size(), false);
  for (const auto& d : dead) {
    auto h = d.headers;
    bool matched = false;
    for (std::size_t j = 0; j < poison.size(); ++j) {
      if (found[j] || poison[j].body != d.value) continue;
      found[j] = matched = true;
      INFO("dead letter " << tail(d.value, 200));
      CHECK(h["x-sagaflow-error"] == poison[j].reason);
      CHECK(h["x-sagaflow-original-route"] == "sagaflow.events");
      CHECK_FALSE(h["x-sagaflow-detail"].empty());
      CHECK(h.count("x-sagaflow-attempts") == 1);
      CHECK(h["type"] == poison[j].route);
      break;
    }
    INFO("unexpected dead letter: " << tail(d.value, 200));
    CHECK(matched);
  }
  const Report r = require_invariants(obs.snapshot(), gen.orders);
  check_status_counts(c.env, r, static_cast<long long>(poison.size()));
  c.drain_workers();
}

TEST_CASE("kafka e2e: a dead letter the broker refuses as too large is kept without its body",
          "[saga][e2e][kafka]") {
  KafkaCluster c;
  const auto publish_env = c.env;
  c.env.emplace_back("SAGAFLOW_MAX_MESSAGE_BYTES", "20000");  // the worker's intake limit
  // An event over the worker's intake limit, queued before the worker starts...
  const std::string big =
      R"({"id":"kbig_1","type":"order.created","pad":")" + std::string(30000, 'x') + R"("})";
  TempFile one(sagaflow::e2e::write_temp_file("big.jsonl", {big}));
  auto r = run_cli({"publish", "--raw", "--route", "order.created", "--file", one.path},
                   publish_env, 60s);
  INFO("publish --raw stderr: " << r.err);
  REQUIRE(r.code == 0);
  // ...whose dead-letter copy the broker then refuses as too large (the worker's first produce)
  constexpr std::int16_t kProduce = 0;  // the Kafka protocol API key
  rd_kafka_mock_push_request_errors(c.kafka.cluster(), kProduce, 1,
                                    RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
  c.start_worker("w1");
  std::vector<sagaflow::e2e::KafkaRecord> dead;
  REQUIRE(wait_until(
      [&] {
        dead = sagaflow::e2e::read_topic(c.kafka.bootstrap(), "sagaflow.dead");
        return !dead.empty();
      },
      60s, 500ms));
  // Then one the broker takes: its dead letter keeps its body
  const std::string medium =
      R"({"id":"kbig_2","type":"order.created","pad":")" + std::string(200000, 'y') + R"("})";
  TempFile two(sagaflow::e2e::write_temp_file("medium.jsonl", {medium}));
  REQUIRE(run_cli({"publish", "--raw", "--route", "order.created", "--file", two.path}, publish_env,
                  60s)
              .code == 0);
  REQUIRE(wait_until(
      [&] {
        dead = sagaflow::e2e::read_topic(c.kafka.bootstrap(), "sagaflow.dead");
        return dead.size() >= 2;
      },
      60s, 500ms));
  REQUIRE(dead.size() == 2);
  if (dead[0].value == medium) std::swap(dead[0], dead[1]);
  CHECK(dead[1].value == medium);
  CHECK(dead[1].headers["x-sagaflow-error"] == "too_large");
  CHECK(dead[1].headers.count("x-sagaflow-body-size") == 0);
  auto h = dead[0].headers;
  CHECK(dead[0].value.empty());
  CHECK(h["x-sagaflow-error"] == "too_large");
  CHECK(h["x-sagaflow-body-size"] == std::to_string(big.size()));
  CHECK(h["x-sagaflow-body-sha256"].size() == 64);
  CHECK_THAT(h["x-sagaflow-detail"], Catch::Contains("kept without"));
  CHECK(h["x-sagaflow-original-route"] == "sagaflow.events");
  CHECK(h["x-sagaflow-attempts"] == "1");
  CHECK(h["type"] == "order.created");
  {
    INFO(c.diagnostics());
    REQUIRE_FALSE(c.worker("w1").wait_for(0ms).has_value());
  }
  c.drain_workers();
}

TEST_CASE(
    "kafka e2e: one store's flood is parked; other stores, replies and a joining worker "
    "are not held up",
    "[saga][e2e][kafka]") {
  // Given a store on 40/s with 600 starts (~15 s of them: longer than a rebalance on a loaded
  // machine, which took 11 s once), 20 orders of other stores, a small in-flight window,
  // and a step timeout above a rebalance's time
  KafkaCluster c("9000");
  for (auto& [k, v] : c.env)
    if (k == "SAGAFLOW_PLANS") v = "free=100000/s:100000,tight=40/s:20";
  c.env.emplace_back("SAGAFLOW_PREFETCH", "32");
  REQUIRE(c.redis.command({"HSET", "sagaflow:store_plans", "kflood_store", "tight"}) == "1");
  KafkaObserver obs(c.kafka.bootstrap(), kTraceTopics);
  c.start_worker("w1");
  c.start_simulator(
      {"--seed", "7", "--fail-inventory", "0", "--fail-payment", "0", "--fail-shipment", "0"});
  const GeneratedOrders flood = sagaflow::e2e::generate_orders("kflood", 600, 1, "kflood_store");
  const GeneratedOrders calm = sagaflow::e2e::generate_orders("kcalm", 20, 2);
  TempFile flood_file(sagaflow::e2e::write_temp_file("flood.jsonl", flood.lines));
  TempFile calm_file(sagaflow::e2e::write_temp_file("calm.jsonl", calm.lines));
  for (const std::string* path : {&flood_file.path, &calm_file.path}) {
    const auto pub = run_cli({"publish", "--file", *path}, c.env, 60s);
    INFO("publish stderr: " << tail(pub.err, 1500));
    REQUIRE(pub.code == 0);
  }
  // When a second worker joins while the flood is parked
  std::this_thread::sleep_for(1s);
  c.start_worker("w2");
  Orders all = flood.orders;
  all.insert(calm.orders.begin(), calm.orders.end());
  const auto t0 = sagaflow::e2e::Clock::now();
  wait_until([&] { return count_outcomes(obs, calm.orders) >= calm.orders.size(); }, 30s, 100ms);
  const double calm_s = sagaflow::e2e::since(t0);
  // Then every saga is confirmed (no step timed out during the rebalance), the other stores'
  // orders finished long before the flood, and the flood never went over its limit
  wait_finished(c, obs, all, 120s);
  std::this_thread::sleep_for(1s);
  const auto trace = obs.snapshot();
  Report all_r;
  require_invariants(trace, all, &all_r);
  check_status_counts(c.env, all_r, 0);
  // The other stores' last outcome came before the flood's last start: they did not wait for
  // it (the rebalance itself holds every store for a few seconds).
  sagaflow::e2e::Clock::time_point calm_last{}, flood_last{};
  for (const auto& m : trace) {
    const auto e = sagaflow::e2e::parse_envelope(m.body);
    if (!e) continue;
    if (calm.orders.count(e->order_id) && m.routing_key.rfind("order.", 0) == 0 &&
        m.routing_key != "order.created")
      calm_last = std::max(calm_last, m.at);
    if (flood.orders.count(e->order_id) && m.routing_key == "inventory.reserve")
      flood_last = std::max(flood_last, m.at);
  }
  std::printf(
      "kafka flood: other stores done %.1f s after the joining worker started, %.1f s "
      "before the flood's last start\n",
      calm_s, std::chrono::duration<double>(flood_last - calm_last).count());
  CHECK(all_r.outcomes["confirmed"] == static_cast<int>(all.size()));
  CHECK(calm_last < flood_last);
  sagaflow::e2e::check_limit(trace, flood.orders, 40, 20);
  c.drain_workers();
}
