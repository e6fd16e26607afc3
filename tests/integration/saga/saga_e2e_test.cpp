// End-to-end: the sagaflow binary (topology apply, worker, simulate, publish, status, saga show,
// dlq list) against a real RabbitMQ and Redis, driven as a black box. Every test asserts the
// invariants of CONTRACT.md sections 2, 3, 4 and 6 over what an observer queue saw (every
// command, every reply, every outcome), never hard-coded results.
#include <signal.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <simdjson.h>

#include "e2e.hpp"
#include "harness.hpp"
#include "support/servers.hpp"

using namespace std::chrono_literals;
using sagaflow::e2e::check_limit;
using sagaflow::e2e::check_sagas;
using sagaflow::e2e::Clock;
using sagaflow::e2e::count_outcomes;
using sagaflow::e2e::GeneratedOrders;
using sagaflow::e2e::Observed;
using sagaflow::e2e::Observer;
using sagaflow::e2e::Orders;
using sagaflow::e2e::read_status;
using sagaflow::e2e::Report;
using sagaflow::e2e::require_invariants;
using sagaflow::e2e::run_cli;
using sagaflow::e2e::since;
using sagaflow::e2e::tail;
using sagaflow::e2e::TempFile;
using sagaflow::e2e::trace_bindings;
using sagaflow::e2e::wait_finished;
using sagaflow::e2e::wait_until;
using sagaflow::testing::Process;
using sagaflow::testing::RabbitServer;
using sagaflow::testing::RedisServer;
using sagaflow::testing::sagaflow_binary;

namespace {

constexpr const char* kGenerousPlans = "free=100000/s:100000";

// Fresh RabbitMQ + Redis, the topology, and the processes of one test.
struct Cluster : sagaflow::e2e::Processes {
  RabbitServer rabbit;
  RedisServer redis;

  explicit Cluster(const std::string& plans = kGenerousPlans,
                   const std::string& step_timeout_ms = "1500") {
    env = {{"SAGAFLOW_BROKER", "rabbitmq"},
           {"SAGAFLOW_AMQP_URL", rabbit.amqp_url()},
           {"SAGAFLOW_REDIS_URL", redis.url()},
           {"SAGAFLOW_METRICS_ADDR", "0"},
           {"SAGAFLOW_STEP_TIMEOUT_MS", step_timeout_ms},
           {"SAGAFLOW_MAX_ATTEMPTS", "8"},
           {"SAGAFLOW_PLANS", plans},
           {"SAGAFLOW_DEFAULT_PLAN", "free"},
           {"SAGAFLOW_LOG_LEVEL", "warn"}};
    const auto r = run_cli({"topology", "apply"}, env, 60s);
    INFO("topology apply stderr: " << tail(r.err, 2000));
    REQUIRE(r.code == 0);
    // Idempotent: a second apply succeeds too.
    const auto again = run_cli({"topology", "apply"}, env, 60s);
    INFO("second topology apply stderr: " << tail(again.err, 2000));
    REQUIRE(again.code == 0);
  }

  ~Cluster() override { kill_processes(); }  // before the servers stop
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  // Queue depths, then what every cluster shows.
  std::string diagnostics() override {
    return sagaflow::e2e::queue_depths(rabbit) + Processes::diagnostics();
  }
};

// After the run: nothing left running, compensating or stuck; status agrees with the trace.
void check_final_status(Cluster& c, const Report& r, long long expect_dead = 0) {
  sagaflow::e2e::check_status_counts(c.env, r, expect_dead);
  CHECK(c.rabbit.queue_depth("sagaflow.dead") == static_cast<std::uint32_t>(expect_dead));
}

std::string status_of(const std::string& json) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(json).get(root) != simdjson::SUCCESS) return "(not JSON)";
  std::string_view state;
  if (root["state"].get_string().get(state) != simdjson::SUCCESS) return "(no state)";
  return std::string(state);
}

// `saga show` for one confirmed and one failed order (their state), and for an unknown order.
void check_saga_show(Cluster& c, const std::vector<Observed>& trace, const Orders& orders) {
  const auto outs = sagaflow::e2e::outcome_types(trace);
  std::set<std::string> done;
  for (const auto& [order_id, type] : outs) {
    if (orders.count(order_id) == 0 || done.count(type) != 0) continue;
    done.insert(type);
    const auto r = run_cli({"saga", "show", order_id}, c.env, 20s);
    INFO("saga show " << order_id << " exit " << r.code << " stdout: " << tail(r.out, 1500)
                      << " stderr: " << r.err);
    REQUIRE(r.code == 0);
    const std::string want = type == "order.confirmed" ? "confirmed" : "failed";
    CHECK(status_of(r.out) == want);
    CHECK(r.out.find(order_id) != std::string::npos);
  }
  const auto none = run_cli({"saga", "show", "ord_does_not_exist"}, c.env, 20s);
  INFO("saga show of an unknown order: exit " << none.code << " stdout " << none.out << " stderr "
                                              << none.err);
  CHECK(none.code == 1);
}

const std::vector<std::string> kSimAllOutcomes = {
    "--seed",          "11",  "--fail-inventory", "0.1",  "--fail-payment", "0.1",
    "--fail-shipment", "0.1", "--no-answer",      "0.06", "--latency-ms",   "5"};

}  // namespace

TEST_CASE("saga e2e: hundreds of orders on two workers, every kind of outcome", "[saga][e2e]") {
  Cluster c;
  Observer obs(c.rabbit.port(), "test.trace", trace_bindings());
  obs.wait_bound();
  c.start_worker("w1");
  c.start_worker("w2");
  c.start_simulator(kSimAllOutcomes);

  constexpr int kOrders = 400;
  const auto pub =
      run_cli({"publish", "--generate", std::to_string(kOrders), "--stores", "8", "--seed", "42"},
              c.env, 120s);
  INFO("publish stderr: " << tail(pub.err, 1500));
  REQUIRE(pub.code == 0);
  // Every generated event reaches the events exchange, each with its own order id.
  REQUIRE(wait_until(
      [&] { return sagaflow::e2e::orders_from_trace(obs.snapshot()).size() >= kOrders; }, 30s));
  const Orders orders = sagaflow::e2e::orders_from_trace(obs.snapshot());
  REQUIRE(orders.size() == kOrders);
  for (const auto& [order_id, total] : orders) {
    INFO(order_id << " total " << total);
    CHECK(sagaflow::e2e::money_value(total).has_value());
  }

  wait_finished(c, obs, orders, 150s);
  std::this_thread::sleep_for(1s);  // late duplicates, if any, reach the observer
  const auto trace = obs.snapshot();
  Report r;
  require_invariants(trace, orders, &r);
  // The simulator's ratios produce every kind of outcome but cancelled (no order.cancelled sent).
  for (const char* kind :
       {"confirmed", "inventory_rejected", "payment_failed", "shipment_failed"}) {
    INFO(r.summary());
    CHECK(r.outcomes[kind] > 0);
  }
  INFO(r.summary());
  CHECK(r.outcomes["timeout:inventory"] + r.outcomes["timeout:payment"] +
            r.outcomes["timeout:shipment"] >
        0);
  check_final_status(c, r);
  check_saga_show(c, trace, orders);
  c.drain_workers();
}

TEST_CASE("saga e2e: workers SIGKILLed mid-run and another SIGTERMed lose nothing", "[saga][e2e]") {
  Cluster c;
  Observer obs(c.rabbit.port(), "test.trace", trace_bindings());
  obs.wait_bound();
  c.start_worker("w1");
  c.start_worker("w2");
  c.start_simulator(kSimAllOutcomes);

  const GeneratedOrders gen = sagaflow::e2e::generate_orders("kill", 300, 6);
  TempFile file(sagaflow::e2e::write_temp_file("orders.jsonl", gen.lines));
  Process publisher({sagaflow_binary(), "publish", "--file", file.path, "--rate", "100"}, c.env,
                    true);

  // A quarter done: SIGKILL w1 at whatever instant it is in, start w3.
  REQUIRE(wait_until([&] { return count_outcomes(obs, gen.orders) >= gen.orders.size() / 4; }, 120s,
                     50ms));
  c.worker("w1").signal(SIGKILL);
  REQUIRE(c.worker("w1").wait_for(5s).has_value());
  std::printf("w1 SIGKILLed at %zu outcomes\n", count_outcomes(obs, gen.orders));
  c.start_worker("w3");

  // More than half done: SIGTERM w2 while it is busy; it drains and exits 0 within 10 s.
  REQUIRE(wait_until([&] { return count_outcomes(obs, gen.orders) >= gen.orders.size() / 2; }, 120s,
                     50ms));
  std::printf("w2 SIGTERMed at %zu outcomes\n", count_outcomes(obs, gen.orders));
  c.worker("w2").signal(SIGTERM);
  const auto w2 = c.worker("w2").wait_for(10s);
  {
    INFO("w2 stderr: " << tail(c.worker("w2").read_stderr(), 2000));
    CHECK(w2.value_or(-1) == 0);
  }
  c.start_worker("w4");

  // Three quarters done: SIGKILL w3 too, start w5.
  REQUIRE(wait_until([&] { return count_outcomes(obs, gen.orders) >= gen.orders.size() * 3 / 4; },
                     120s, 50ms));
  c.worker("w3").signal(SIGKILL);
  REQUIRE(c.worker("w3").wait_for(5s).has_value());
  std::printf("w3 SIGKILLed at %zu outcomes\n", count_outcomes(obs, gen.orders));
  c.start_worker("w5");

  const auto pub = publisher.wait_for(60s);
  INFO("publish stderr: " << tail(publisher.read_stderr(), 1500));
  REQUIRE(pub.value_or(-1) == 0);

  wait_finished(c, obs, gen.orders, 180s);
  std::this_thread::sleep_for(1s);
  Report r;
  require_invariants(obs.snapshot(), gen.orders, &r);
  check_final_status(c, r);
  c.drain_workers();
}

TEST_CASE("saga e2e: Redis paused for 5 s mid-run", "[saga][e2e]") {
  Cluster c;
  Observer obs(c.rabbit.port(), "test.trace", trace_bindings());
  obs.wait_bound();
  c.start_worker("w1");
  c.start_worker("w2");
  c.start_simulator(kSimAllOutcomes);

  const GeneratedOrders gen = sagaflow::e2e::generate_orders("rpause", 300, 6);
  TempFile file(sagaflow::e2e::write_temp_file("orders.jsonl", gen.lines));
  Process publisher({sagaflow_binary(), "publish", "--file", file.path, "--rate", "100"}, c.env,
                    true);

  REQUIRE(wait_until([&] { return count_outcomes(obs, gen.orders) >= gen.orders.size() / 5; }, 120s,
                     50ms));
  const std::size_t at_pause = count_outcomes(obs, gen.orders);
  c.redis.pause();
  std::this_thread::sleep_for(5s);
  const std::size_t during = count_outcomes(obs, gen.orders);
  c.redis.resume();
  std::printf("redis paused at %zu outcomes, %zu when resumed\n", at_pause, during);

  const auto pub = publisher.wait_for(60s);
  INFO("publish stderr: " << tail(publisher.read_stderr(), 1500));
  REQUIRE(pub.value_or(-1) == 0);

  wait_finished(c, obs, gen.orders, 180s);
  std::this_thread::sleep_for(1s);
  Report r;
  require_invariants(obs.snapshot(), gen.orders, &r);
  // Transient failures never dead-letter.
  check_final_status(c, r, 0);
  for (auto& [name, p] : c.workers) {
    INFO("worker " << name << " stderr: " << tail(p->read_stderr(), 1500));
    CHECK_FALSE(
        p->wait_for(0ms).has_value());  // still running: a Redis outage does not kill a worker
  }
  c.drain_workers();
}

TEST_CASE("saga e2e: RabbitMQ restarted mid-run", "[saga][e2e]") {
  Cluster c;
  Observer obs(c.rabbit.port(), "test.trace", trace_bindings());
  obs.wait_bound();
  c.start_worker("w1");
  c.start_worker("w2");
  c.start_simulator(kSimAllOutcomes);

  const GeneratedOrders gen = sagaflow::e2e::generate_orders("rrestart", 300, 6);
  TempFile file(sagaflow::e2e::write_temp_file("orders.jsonl", gen.lines));
  const auto pub = run_cli({"publish", "--file", file.path}, c.env, 120s);
  INFO("publish stderr: " << tail(pub.err, 1500));
  REQUIRE(pub.code == 0);

  REQUIRE(wait_until([&] { return count_outcomes(obs, gen.orders) >= gen.orders.size() / 5; }, 120s,
                     50ms));
  const std::size_t before = count_outcomes(obs, gen.orders);
  const auto t0 = Clock::now();
  c.rabbit.restart();
  std::printf("rabbitmq restarted at %zu outcomes in %.1f s\n", before, since(t0));

  wait_finished(c, obs, gen.orders, 300s);
  std::this_thread::sleep_for(2s);
  std::printf("observer reconnects: %zu\n", obs.reconnects());
  Report r;
  require_invariants(obs.snapshot(), gen.orders, &r);
  check_final_status(c, r, 0);
  c.drain_workers();
}

TEST_CASE("saga e2e: duplicate order.created events and duplicate replies", "[saga][e2e]") {
  Cluster c;
  // The observer publishes every participant reply a second time, as it sees it.
  Observer obs(c.rabbit.port(), "test.trace", trace_bindings(), /*republish_replies=*/true);
  obs.wait_bound();
  c.start_worker("w1");
  c.start_worker("w2");
  c.start_simulator(kSimAllOutcomes);

  const GeneratedOrders gen = sagaflow::e2e::generate_orders("dup", 200, 5);
  TempFile file(sagaflow::e2e::write_temp_file("orders.jsonl", gen.lines));
  // The same orders under other event ids: still one saga per order_id.
  std::vector<std::string> renamed;
  for (std::size_t i = 0; i < 50; ++i) {
    std::string line = gen.lines[i];
    const std::string from = "\"id\":\"dup_evt_" + std::to_string(i) + "\"";
    line.replace(line.find(from), from.size(),
                 "\"id\":\"dup_evt_" + std::to_string(i) + "_again\"");
    renamed.push_back(line);
  }
  TempFile renamed_file(sagaflow::e2e::write_temp_file("renamed.jsonl", renamed));
  for (const std::string* path : {&file.path, &file.path, &renamed_file.path}) {
    const auto pub = run_cli({"publish", "--file", *path}, c.env, 120s);
    INFO("publish " << *path << " stderr: " << tail(pub.err, 1500));
    REQUIRE(pub.code == 0);
  }

  wait_finished(c, obs, gen.orders, 150s);
  std::this_thread::sleep_for(2s);
  std::printf("replies republished live: %zu\n", obs.republished());
  CHECK(obs.republished() > 0);
  Report r;
  require_invariants(obs.snapshot(), gen.orders, &r);
  check_final_status(c, r);

  // After the end: every order.created and every reply once more (late duplicates of finished
  // sagas are acknowledged and ignored, not dead-lettered), then nothing may change.
  auto command_ids = [](const std::vector<Observed>& trace) {
    std::set<std::string> ids;
    for (const auto& m : trace)
      if (m.exchange == "sagaflow.commands") ids.insert(m.message_id + "|" + m.routing_key);
    return ids;
  };
  const auto before = obs.snapshot();
  std::vector<std::string> replies;
  std::set<std::string> seen_reply_bodies;
  for (const auto& m : before) {
    if (m.exchange != "sagaflow.events") continue;
    if (m.routing_key.rfind("inventory.", 0) != 0 && m.routing_key.rfind("payment.", 0) != 0 &&
        m.routing_key.rfind("shipment.", 0) != 0)
      continue;
    if (seen_reply_bodies.insert(m.body).second) replies.push_back(m.body);
  }
  REQUIRE_FALSE(replies.empty());
  TempFile replies_file(sagaflow::e2e::write_temp_file("replies.jsonl", replies));
  for (const std::string* path : {&file.path, &replies_file.path}) {
    const auto pub = run_cli({"publish", "--file", *path}, c.env, 120s);
    INFO("late publish " << *path << " stderr: " << tail(pub.err, 1500));
    REQUIRE(pub.code == 0);
  }
  // Let the workers consume all of it.
  REQUIRE(wait_until([&] { return c.rabbit.queue_depth("sagaflow.saga") == 0; }, 60s, 250ms));
  std::this_thread::sleep_for(3s);
  const auto after = obs.snapshot();
  CHECK(command_ids(after) == command_ids(before));
  Report r2;
  require_invariants(after, gen.orders, &r2);
  CHECK(r2.outcomes == r.outcomes);
  check_final_status(c, r2);
  c.drain_workers();
}

TEST_CASE("saga e2e: poison messages are dead-lettered with their reason, body intact",
          "[saga][e2e]") {
  Cluster c;
  Observer obs(c.rabbit.port(), "test.trace", trace_bindings());
  obs.wait_bound();
  c.start_worker("w1");
  c.start_simulator({"--seed", "3", "--latency-ms", "2"});

  struct Poison {
    std::string route, body, reason;
  };
  std::vector<Poison> poison = {
      {"order.created", R"({"id":"poison_1","type":"order.created","data":{"order_id":)",
       "malformed_json"},
      {"order.created", "[1,2,3]", "malformed_json"},
      {"inventory.exploded",
       R"({"id":"poison_3","type":"inventory.exploded","data":{"order_id":"poison_ord_3"}})",
       "unknown_type"},
      {"order.created",
       R"({"id":"poison_4","type":"order.created","store_id":"store_p","data":{"order_id":"poison_ord_4","customer_id":"cus_1","total":10.999,"currency":"EUR","items":[{"sku":"a","qty":1,"price":10.999}]}})",
       "invalid_event"},
      {"inventory.reserved",
       R"({"id":"poison_5","type":"inventory.reserved","data":{"order_id":"ord_nope","reservation_id":"res_1"}})",
       "unknown_saga"},
      {"order.created",
       R"({"id":"poison_6","type":"order.created","store_id":"store_p","data":{"order_id":"poison_ord_6","customer_id":"cus_1","total":1,"currency":"EUR","items":[{"sku":")" +
           std::string(1100 * 1024, 'x') + R"(","qty":1,"price":1}]}})",
       "too_large"},
  };
  const GeneratedOrders gen = sagaflow::e2e::generate_orders("clean", 20, 2);
  TempFile file(sagaflow::e2e::write_temp_file("orders.jsonl", gen.lines));
  // Valid orders before, poison in the middle, so a stuck or crashed worker shows.
  const auto pub1 = run_cli({"publish", "--file", file.path}, c.env, 60s);
  REQUIRE(pub1.code == 0);
  for (const auto& p : poison) c.rabbit.publish("sagaflow.events", p.route, p.body);
  // publish --file refuses a bad line: reported with its line number, not sent, exit 1.
  {
    TempFile bad(sagaflow::e2e::write_temp_file("bad.jsonl",
                                                {R"({"id":"badline_1","type":"order.created",)"}));
    const auto r = run_cli({"publish", "--file", bad.path}, c.env, 60s);
    INFO("publish of a bad line: exit " << r.code << " stderr: " << r.err);
    CHECK(r.code == 1);
    CHECK(r.err.find('1') != std::string::npos);
  }

  wait_finished(c, obs, gen.orders, 60s);
  REQUIRE(wait_until([&] { return c.rabbit.queue_depth("sagaflow.dead") >= poison.size(); }, 30s));
  REQUIRE(wait_until([&] { return c.rabbit.queue_depth("sagaflow.saga") == 0; }, 30s));
  std::this_thread::sleep_for(2s);
  {
    INFO(c.diagnostics());
    REQUIRE_FALSE(c.worker("w1").wait_for(0ms).has_value());  // the worker survived all of it
  }
  Report r;
  require_invariants(obs.snapshot(), gen.orders, &r);
  check_final_status(c, r, static_cast<long long>(poison.size()));

  // dlq list: one JSON object per line, non-destructive.
  const auto list = run_cli({"dlq", "list", "--limit", "100"}, c.env, 60s);
  INFO("dlq list exit " << list.code << " stderr: " << tail(list.err, 1000));
  REQUIRE(list.code == 0);
  std::multiset<std::string> listed_reasons;
  std::size_t lines = 0;
  {
    std::size_t pos = 0;
    simdjson::dom::parser parser;
    while (pos < list.out.size()) {
      std::size_t nl = list.out.find('\n', pos);
      if (nl == std::string::npos) nl = list.out.size();
      const std::string line = list.out.substr(pos, nl - pos);
      pos = nl + 1;
      if (line.empty()) continue;
      ++lines;
      simdjson::dom::element e;
      INFO("dlq list line: " << tail(line, 300));
      REQUIRE(parser.parse(line).get(e) == simdjson::SUCCESS);
      std::string_view reason, body, route;
      REQUIRE(e["reason"].get_string().get(reason) == simdjson::SUCCESS);
      CHECK(e["detail"].get_string().error() == simdjson::SUCCESS);
      CHECK(e["route"].get_string().get(route) == simdjson::SUCCESS);
      CHECK(e["body"].get_string().get(body) == simdjson::SUCCESS);
      CHECK(e["attempts"].error() == simdjson::SUCCESS);
      listed_reasons.insert(std::string(reason));
      bool matched = false;
      for (const auto& p : poison)
        if (p.body == body && p.reason == reason && p.route == route) matched = true;
      CHECK(matched);
    }
  }
  CHECK(lines == poison.size());
  std::multiset<std::string> expected_reasons;
  for (const auto& p : poison) expected_reasons.insert(p.reason);
  CHECK(listed_reasons == expected_reasons);
  CHECK(wait_until([&] { return c.rabbit.queue_depth("sagaflow.dead") == poison.size(); }, 10s));

  // The dead letters themselves: body byte for byte, reason and route headers.
  std::vector<bool> found(poison.size(), false);
  for (std::size_t i = 0; i < poison.size(); ++i) {
    auto m = c.rabbit.get("sagaflow.dead");
    REQUIRE(m.has_value());
    std::map<std::string, std::string> h(m->headers.begin(), m->headers.end());
    INFO("dead letter " << tail(m->body, 200) << " headers:" << [&] {
      std::string s;
      for (const auto& [k, v] : h) s += " " + k + "=" + v;
      return s;
    }());
    bool matched = false;
    for (std::size_t j = 0; j < poison.size(); ++j) {
      if (found[j] || poison[j].body != m->body) continue;
      found[j] = matched = true;
      CHECK(h["x-sagaflow-error"] == poison[j].reason);
      CHECK(h["x-sagaflow-original-route"] == poison[j].route);
      CHECK_FALSE(h["x-sagaflow-detail"].empty());
      CHECK(h.count("x-sagaflow-attempts") == 1);
      break;
    }
    CHECK(matched);
  }
  CHECK_FALSE(c.rabbit.get("sagaflow.dead").has_value());
  c.drain_workers();
}

TEST_CASE("saga e2e: a store on a tight plan is delayed, never dropped, and never over its limit",
          "[saga][e2e]") {
  constexpr double kRate = 5;  // per second
  constexpr double kBurst = 5;
  Cluster c("free=100000/s:100000,tight=5/s:5");
  REQUIRE(c.redis.command({"HSET", "sagaflow:store_plans", "rl_tight_store", "tight"}) == "1");
  Observer obs(c.rabbit.port(), "test.trace", trace_bindings());
  obs.wait_bound();
  c.start_worker("w1");
  c.start_worker("w2");
  c.start_simulator({"--seed", "5"});

  const GeneratedOrders tight = sagaflow::e2e::generate_orders("rltight", 40, 1, "rl_tight_store");
  const GeneratedOrders loose = sagaflow::e2e::generate_orders("rlfree", 40, 4);
  TempFile tight_file(sagaflow::e2e::write_temp_file("tight.jsonl", tight.lines));
  TempFile loose_file(sagaflow::e2e::write_temp_file("loose.jsonl", loose.lines));
  Orders all = tight.orders;
  all.insert(loose.orders.begin(), loose.orders.end());

  const auto t0 = Clock::now();
  for (const std::string* path : {&tight_file.path, &loose_file.path}) {
    const auto pub = run_cli({"publish", "--file", *path}, c.env, 60s);
    INFO("publish stderr: " << tail(pub.err, 1500));
    REQUIRE(pub.code == 0);
  }
  long long max_rate_limited = 0;
  const bool loose_done = wait_until(
      [&] {
        if (auto s = read_status(c.env))
          max_rate_limited = std::max(max_rate_limited, s->rate_limited);
        return count_outcomes(obs, loose.orders) >= loose.orders.size();
      },
      60s, 300ms);
  const double loose_s = since(t0);
  wait_until(
      [&] {
        if (auto s = read_status(c.env))
          max_rate_limited = std::max(max_rate_limited, s->rate_limited);
        return count_outcomes(obs, tight.orders) >= tight.orders.size();
      },
      60s, 300ms);
  wait_finished(c, obs, all, 120s);
  std::printf(
      "other stores done after %.1f s (%s), all after %.1f s, status rate_limited max %lld\n",
      loose_s, loose_done ? "ok" : "late", since(t0), max_rate_limited);
  std::this_thread::sleep_for(1s);
  const auto trace = obs.snapshot();
  Report r;
  require_invariants(trace, all, &r);
  check_final_status(c, r, 0);
  CHECK(max_rate_limited > 0);

  check_limit(trace, tight.orders, kRate, kBurst);
  c.drain_workers();
}

TEST_CASE("saga e2e: one store's flood of parked starts holds up no other store and no reply",
          "[saga][e2e]") {
  // The case of issue 10: 400 starts of a store on 20/s, then 20 orders of other stores, two
  // workers with a small prefetch, every participant answering at once.
  constexpr double kRate = 20;
  constexpr double kBurst = 20;
  Cluster c("free=100000/s:100000,tight=20/s:20", "3000");
  c.env.emplace_back("SAGAFLOW_PREFETCH", "32");
  REQUIRE(c.redis.command({"HSET", "sagaflow:store_plans", "flood_store", "tight"}) == "1");
  Observer obs(c.rabbit.port(), "test.trace", trace_bindings());
  obs.wait_bound();
  c.start_ready_worker("w1");
  c.start_ready_worker("w2");
  c.start_simulator(
      {"--seed", "7", "--fail-inventory", "0", "--fail-payment", "0", "--fail-shipment", "0"});

  const GeneratedOrders flood = sagaflow::e2e::generate_orders("flood", 400, 1, "flood_store");
  const GeneratedOrders calm = sagaflow::e2e::generate_orders("calm", 20, 2);
  TempFile flood_file(sagaflow::e2e::write_temp_file("flood.jsonl", flood.lines));
  TempFile calm_file(sagaflow::e2e::write_temp_file("calm.jsonl", calm.lines));
  Orders all = flood.orders;
  all.insert(calm.orders.begin(), calm.orders.end());
  for (const std::string* path : {&flood_file.path, &calm_file.path}) {
    const auto pub = run_cli({"publish", "--file", *path}, c.env, 60s);
    INFO("publish stderr: " << tail(pub.err, 1500));
    REQUIRE(pub.code == 0);
  }
  // While the flood is parked: status shows it, and the other stores are done
  long long max_parked = 0;
  wait_until(
      [&] {
        if (auto st = read_status(c.env)) max_parked = std::max(max_parked, st->parked);
        return count_outcomes(obs, calm.orders) >= calm.orders.size();
      },
      30s, 200ms);
  wait_finished(c, obs, all, 120s);
  std::this_thread::sleep_for(1s);
  const auto trace = obs.snapshot();
  Report r;
  require_invariants(trace, all, &r);
  check_final_status(c, r, 0);
  // Every saga confirmed: none timed out, although 400 starts waited up to 20 s
  CHECK(r.outcomes["confirmed"] == static_cast<int>(all.size()));
  CHECK(max_parked > 0);
  // Each calm order confirmed within 2 s of its order.created reaching the broker
  std::map<std::string, Clock::time_point> created_at;
  double worst_calm = 0;
  for (const auto& m : trace) {
    auto e = sagaflow::e2e::parse_envelope(m.body);
    if (!e || calm.orders.count(e->order_id) == 0) continue;
    if (m.routing_key == "order.created") created_at.emplace(e->order_id, m.at);
    if (m.routing_key == "order.confirmed" && created_at.count(e->order_id) != 0) {
      worst_calm = std::max(worst_calm,
                            std::chrono::duration<double>(m.at - created_at[e->order_id]).count());
    }
  }
  std::printf("calm stores: worst publish -> confirmed %.2f s; flood parked at most %lld\n",
              worst_calm, max_parked);
  CHECK(worst_calm < 2.0);
  check_limit(trace, flood.orders, kRate, kBurst);
  c.drain_workers();
}

TEST_CASE("saga e2e: workers SIGKILLed while hundreds of starts are parked: none lost, none twice",
          "[saga][e2e]") {
  Cluster c("free=100000/s:100000,tight=40/s:10", "3000");
  REQUIRE(c.redis.command({"HSET", "sagaflow:store_plans", "park_store", "tight"}) == "1");
  Observer obs(c.rabbit.port(), "test.trace", trace_bindings());
  obs.wait_bound();
  c.start_worker("w1");
  c.start_worker("w2");
  c.start_simulator(kSimAllOutcomes);
  const GeneratedOrders gen = sagaflow::e2e::generate_orders("pkill", 400, 1, "park_store");
  TempFile file(sagaflow::e2e::write_temp_file("parked.jsonl", gen.lines));
  const auto pub = run_cli({"publish", "--file", file.path}, c.env, 60s);
  REQUIRE(pub.code == 0);
  // Parked and starting: SIGKILL one worker at whatever instant it is in (maybe between a
  // lease and its start), then the other; fresh workers take over.
  REQUIRE(wait_until([&] { return count_outcomes(obs, gen.orders) >= 80; }, 60s, 20ms));
  c.worker("w1").signal(SIGKILL);
  REQUIRE(c.worker("w1").wait_for(5s).has_value());
  c.start_worker("w3");
  REQUIRE(wait_until([&] { return count_outcomes(obs, gen.orders) >= 200; }, 60s, 20ms));
  c.worker("w2").signal(SIGKILL);
  REQUIRE(c.worker("w2").wait_for(5s).has_value());
  c.start_worker("w4");
  // Leases of the killed workers run out (10 s) and their starts are taken over.
  wait_finished(c, obs, gen.orders, 120s);
  std::this_thread::sleep_for(1s);
  const auto trace = obs.snapshot();
  Report r;
  // Every order has its one outcome and the rules of section 3 hold (a start run twice would
  // show as a second saga's commands or outcome); status counts agree, nothing left parked.
  require_invariants(trace, gen.orders, &r);
  check_final_status(c, r, 0);
  const auto st = read_status(c.env);
  REQUIRE(st);
  CHECK(st->parked == 0);
  c.drain_workers();
}

namespace {
// The peak resident memory of a running process (VmHWM), in bytes; 0 if unreadable.
std::uint64_t peak_rss_bytes(pid_t pid) {
  std::FILE* f = std::fopen(("/proc/" + std::to_string(pid) + "/status").c_str(), "r");
  if (f == nullptr) return 0;
  char line[256];
  std::uint64_t kb = 0;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::sscanf(line, "VmHWM: %lu kB", &kb) == 1) break;
  }
  std::fclose(f);
  return kb * 1024;
}
}  // namespace

TEST_CASE("saga e2e: a flood of 20 MiB messages is dead-lettered intact in bounded memory",
          "[saga][e2e]") {
  Cluster c;
  Observer obs(c.rabbit.port(), "test.trace", trace_bindings());
  obs.wait_bound();
  constexpr int kHuge = 24;
  constexpr std::size_t kSize = 20u << 20;
  // Given 24 order.created of 20 MiB each (480 MiB in all; the limit is 1 MiB), queued before
  // the worker starts, then ordinary orders behind them
  for (int i = 0; i < kHuge; ++i) {
    std::string body = R"({"id":"huge_)" + std::to_string(i) +
                       R"(","type":"order.created","store_id":"s","data":{"order_id":"huge_ord_)" +
                       std::to_string(i) + R"(","note":")";
    body.append(kSize - body.size() - 3, static_cast<char>('a' + i % 26));
    body += "\"}}";
    c.rabbit.publish("sagaflow.events", "order.created", body);
  }
  const GeneratedOrders gen = sagaflow::e2e::generate_orders("after_huge", 20, 2);
  TempFile file(sagaflow::e2e::write_temp_file("orders.jsonl", gen.lines));
  REQUIRE(run_cli({"publish", "--file", file.path}, c.env, 60s).code == 0);

  auto& w = c.start_worker("w1");
  c.start_simulator({"--seed", "5", "--latency-ms", "2"});
  // Then every huge one ends in sagaflow.dead as too_large, the orders behind them finish, and
  // the worker's memory stays near its 64 MiB read budget, not 256 (prefetch) x 20 MiB
  wait_finished(c, obs, gen.orders, 180s);
  REQUIRE(wait_until([&] { return c.rabbit.queue_depth("sagaflow.dead") == kHuge; }, 60s));
  const std::uint64_t peak = peak_rss_bytes(w.pid());
  std::printf("worker peak RSS %.0f MiB for %d x 20 MiB dead-lettered\n",
              static_cast<double>(peak) / (1 << 20), kHuge);
#if !defined(__SANITIZE_ADDRESS__)  // ASan's quarantine keeps freed blocks resident
  CHECK(peak > 0);
  CHECK(peak < std::uint64_t{350} << 20);
#endif
  require_invariants(obs.snapshot(), gen.orders);
  for (int i = 0; i < kHuge; ++i) {
    auto dead = c.rabbit.get("sagaflow.dead");
    REQUIRE(dead);
    CHECK(dead->body.size() == kSize);
    std::string reason;
    for (const auto& [k, v] : dead->headers)
      if (k == "x-sagaflow-error") reason = v;
    CHECK(reason == "too_large");
  }
  c.drain_workers();
}

TEST_CASE("saga e2e: a step times out on Redis' clock, however far off the worker's clock is",
          "[saga][e2e]") {
  for (const char* skew : {"-2000", "2000"}) {
    DYNAMIC_SECTION("worker clock off by " << skew << " ms") {
      Cluster c;  // step timeout 1.5 s; no participant answers
      Observer obs(c.rabbit.port(), "test.trace", trace_bindings());
      obs.wait_bound();
      c.env.emplace_back("SAGAFLOW_TEST_CLOCK_SKEW_MS", skew);
      c.start_worker("w1");
      c.env.pop_back();
      const GeneratedOrders gen = sagaflow::e2e::generate_orders("skew", 5, 1);
      TempFile file(sagaflow::e2e::write_temp_file("orders.jsonl", gen.lines));
      REQUIRE(run_cli({"publish", "--file", file.path}, c.env, 60s).code == 0);

      // Then each order's inventory.reserve is followed by what its timeout causes (a
      // compensation or the outcome) no sooner than the step timeout and at most 1 s after it
      const auto order_of = [](const Observed& m) {
        const auto e = sagaflow::e2e::parse_envelope(m.body);
        return e ? e->order_id : std::string();
      };
      REQUIRE(wait_until(
          [&] {
            std::map<std::string, int> after_reserve;
            for (const auto& m : obs.snapshot())
              if (m.exchange == "sagaflow.commands" || m.routing_key.rfind("order.", 0) == 0)
                after_reserve[order_of(m)]++;
            std::size_t n = 0;
            for (const auto& [order, count] : after_reserve)
              n += gen.orders.count(order) && count >= 3;
            return n == gen.orders.size();
          },
          30s));
      std::map<std::string, Clock::time_point> reserved;
      std::map<std::string, double> waited;
      for (const auto& m : obs.snapshot()) {
        const std::string order = order_of(m);
        if (gen.orders.count(order) == 0) continue;
        if (m.routing_key == "inventory.reserve") {
          reserved.emplace(order, m.at);
        } else if (reserved.count(order) != 0 && waited.count(order) == 0 &&
                   m.routing_key != "order.created") {
          waited[order] = std::chrono::duration<double>(m.at - reserved[order]).count();
        }
      }
      REQUIRE(waited.size() == gen.orders.size());
      for (const auto& [order, s] : waited) {
        INFO(order << " timed out " << s << " s after its inventory.reserve");
        CHECK(s >= 1.4);
        CHECK(s <= 2.5);
      }
    }
  }
}

namespace {
// Start times (inventory.reserve on the broker) of the given orders, sorted.
std::vector<Clock::time_point> start_times(const std::vector<Observed>& trace,
                                           const Orders& orders) {
  std::map<std::string, Clock::time_point> starts;
  for (const auto& m : trace) {
    if (m.exchange != "sagaflow.commands" || m.routing_key != "inventory.reserve") continue;
    auto e = sagaflow::e2e::parse_envelope(m.body);
    if (e && orders.count(e->order_id) != 0) starts.emplace(e->order_id, m.at);
  }
  std::vector<Clock::time_point> times;
  for (const auto& [order, at] : starts) times.push_back(at);
  std::sort(times.begin(), times.end());
  return times;
}

// Starts per second after the burst: (n - burst) over the time from the burst's end to the
// last start.
double rate_after_burst(const std::vector<Clock::time_point>& times, std::size_t burst) {
  if (times.size() <= burst + 1) return 0;
  const double s = std::chrono::duration<double>(times.back() - times[burst - 1]).count();
  return s > 0 ? static_cast<double>(times.size() - burst) / s : 0;
}
}  // namespace

TEST_CASE(
    "saga e2e: fairness: every store over its limit gets its plan's rate, a store under "
    "its limit starts at once",
    "[saga][e2e]") {
  // Given a store with 1,500 parked starts on 150/s and one with 60 on 20/s, two workers
  Cluster c("free=100000/s:100000,big=150/s:10,small=20/s:5", "5000");
  REQUIRE(c.redis.command({"HSET", "sagaflow:store_plans", "fair_big", "big"}) == "1");
  REQUIRE(c.redis.command({"HSET", "sagaflow:store_plans", "fair_small", "small"}) == "1");
  Observer obs(c.rabbit.port(), "test.trace", trace_bindings());
  obs.wait_bound();
  c.start_ready_worker("w1");
  c.start_ready_worker("w2");
  c.start_simulator(
      {"--seed", "9", "--fail-inventory", "0", "--fail-payment", "0", "--fail-shipment", "0"});
  const GeneratedOrders big = sagaflow::e2e::generate_orders("big", 1500, 1, "fair_big");
  const GeneratedOrders small = sagaflow::e2e::generate_orders("small", 60, 1, "fair_small");
  TempFile big_file(sagaflow::e2e::write_temp_file("big.jsonl", big.lines));
  TempFile small_file(sagaflow::e2e::write_temp_file("small.jsonl", small.lines));
  REQUIRE(run_cli({"publish", "--file", big_file.path}, c.env, 60s).code == 0);
  REQUIRE(run_cli({"publish", "--file", small_file.path}, c.env, 60s).code == 0);
  // And, while both are parked, orders of free-plan stores published one at a time
  Orders calm;
  for (int i = 0; i < 10; ++i) {
    const GeneratedOrders one = sagaflow::e2e::generate_orders("calm" + std::to_string(i), 1, 1);
    TempFile f(sagaflow::e2e::write_temp_file("calm.jsonl", one.lines));
    REQUIRE(run_cli({"publish", "--file", f.path}, c.env, 60s).code == 0);
    calm.insert(one.orders.begin(), one.orders.end());
    std::this_thread::sleep_for(300ms);
  }
  Orders all = big.orders;
  all.insert(small.orders.begin(), small.orders.end());
  all.insert(calm.begin(), calm.end());
  wait_finished(c, obs, all, 120s);
  const auto trace = obs.snapshot();
  require_invariants(trace, all);

  // Then each limited store started at its plan's rate (within 10 %), whatever the other's
  // backlog, and never above burst + rate x window. The floor is the workers' throughput:
  // under AddressSanitizer on a loaded 2-core machine they reached 107/s of the 150 (free-plan
  // starts took 58 ms there instead of 5), so there it is 60 %; the ceiling is the limit and
  // holds everywhere.
#if defined(__SANITIZE_ADDRESS__)
  constexpr double kFloor = 0.6;
#else
  constexpr double kFloor = 0.9;
#endif
  const double big_rate = rate_after_burst(start_times(trace, big.orders), 10);
  const double small_rate = rate_after_burst(start_times(trace, small.orders), 5);
  std::printf("fairness: big store %.1f/s (plan 150), small store %.1f/s (plan 20)\n", big_rate,
              small_rate);
  CHECK(big_rate >= 150 * kFloor);
  CHECK(big_rate <= 150 * 1.1);
  CHECK(small_rate >= 20 * kFloor);
  CHECK(small_rate <= 20 * 1.1);
  check_limit(trace, big.orders, 150, 10);
  check_limit(trace, small.orders, 20, 5);
  // And each free-plan order started right after it reached the broker (the contract's
  // 100 ms; the figure is printed, the check leaves room for a loaded test machine)
  std::map<std::string, Clock::time_point> created;
  std::vector<double> waits;
  for (const auto& m : trace) {
    auto e = sagaflow::e2e::parse_envelope(m.body);
    if (!e || calm.count(e->order_id) == 0) continue;
    if (m.routing_key == "order.created") created.emplace(e->order_id, m.at);
    if (m.routing_key == "inventory.reserve" && created.count(e->order_id) != 0) {
      waits.push_back(std::chrono::duration<double>(m.at - created[e->order_id]).count());
    }
  }
  REQUIRE(waits.size() == calm.size());
  std::sort(waits.begin(), waits.end());
  std::printf("free-plan stores: order.created -> inventory.reserve median %.1f ms, max %.1f ms\n",
              waits[waits.size() / 2] * 1000, waits.back() * 1000);
  // Under AddressSanitizer on a loaded 2-core machine a free-plan start takes ~50 ms (median)
  // and the slowest of ten reached 0.41 s in a clean CI run: there the bound on the slowest
  // is 1 s. It stays 0.3 s everywhere else.
#if defined(__SANITIZE_ADDRESS__)
  constexpr double kSlowest = 1.0;
#else
  constexpr double kSlowest = 0.3;
#endif
  CHECK(waits[waits.size() / 2] < 0.1);
  CHECK(waits.back() < kSlowest);
  c.drain_workers();
}

TEST_CASE("saga e2e: SIGTERM while Redis is paused still exits 0 within 10 s; nothing is lost",
          "[saga][e2e]") {
  Cluster c;
  Observer obs(c.rabbit.port(), "test.trace", trace_bindings());
  obs.wait_bound();
  c.start_ready_worker("w1");
  c.start_simulator({"--seed", "4", "--latency-ms", "2"});
  const GeneratedOrders gen = sagaflow::e2e::generate_orders("term", 60, 3);
  TempFile file(sagaflow::e2e::write_temp_file("orders.jsonl", gen.lines));
  // When Redis stops answering, orders arrive (in flight: they cannot be applied), and the
  // worker is told to stop
  c.redis.pause();
  REQUIRE(run_cli({"publish", "--file", file.path}, c.env, 60s).code == 0);
  std::this_thread::sleep_for(500ms);
  auto& w = c.worker("w1");
  w.signal(SIGTERM);
  const auto t0 = Clock::now();
  const auto code = w.wait_for(11s);
  const double took = since(t0);
  c.redis.resume();
  // Then it exits 0 within 10 s, and a new worker finishes every order (nothing was lost)
  INFO("stderr: " << tail(w.read_stderr(), 2000));
  REQUIRE(code.has_value());
  CHECK(*code == 0);
  CHECK(took < 10.0);
  std::printf("SIGTERM with Redis paused: exit %d after %.2f s\n", code.value_or(-1), took);
  c.start_worker("w2");
  wait_finished(c, obs, gen.orders, 90s);
  require_invariants(obs.snapshot(), gen.orders);
  c.drain_workers();
}
