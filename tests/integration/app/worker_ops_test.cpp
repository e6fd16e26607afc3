// Operating a worker (CONTRACT.md section 8): /metrics carries every required metric,
// /healthz answers, /readyz is 200 only while broker and Redis are connected, and the logs on
// stderr are one JSON object per line.
#include <catch2/catch.hpp>

#include <chrono>
#include <csignal>
#include <sstream>
#include <string>
#include <thread>

#include "http_client.hpp"
#include "support/servers.hpp"

using namespace std::chrono_literals;
using sagaflow::testing::http_request;
using sagaflow::testing::Process;

TEST_CASE("worker: metrics, health, readiness follow its dependencies; logs are JSON lines",
          "[ops]") {
  sagaflow::testing::RedisServer redis;
  auto& rabbit = sagaflow::testing::shared_rabbit();
  const int port = sagaflow::testing::free_port();
  const std::vector<std::pair<std::string, std::string>> env = {
      {"SAGAFLOW_AMQP_URL", rabbit.amqp_url()},
      {"SAGAFLOW_REDIS_URL", redis.url()},
      {"SAGAFLOW_METRICS_ADDR", "127.0.0.1:" + std::to_string(port)}};
  {
    Process topo({sagaflow::testing::sagaflow_binary(), "topology", "apply"}, env);
    REQUIRE(topo.wait_for(30s) == 0);
  }
  Process worker({sagaflow::testing::sagaflow_binary(), "worker"}, env);
  auto wait_ready = [&](int want) {
    int got = 0;
    for (int i = 0; i < 100 && got != want; ++i) {
      std::this_thread::sleep_for(100ms);
      got = http_request(port, "GET", "/readyz").status;
    }
    return got;
  };
  CHECK(wait_ready(200) == 200);
  CHECK(http_request(port, "GET", "/healthz").status == 200);

  // Given one order and one poison message through the worker
  rabbit.publish(
      "sagaflow.events", "order.created",
      R"({"id":"m1","type":"order.created","store_id":"s","data":{"order_id":"o_m1","customer_id":"c",)"
      R"("total":"5.00","currency":"EUR","items":[{"sku":"a","qty":1,"price":"5.00"}]}})");
  rabbit.publish("sagaflow.events", "order.created", "not json");
  std::string metrics;
  for (int i = 0; i < 100; ++i) {
    metrics = http_request(port, "GET", "/metrics").body;
    // Both settled: the order acked, the poison dead-lettered (they may finish in either order)
    if (metrics.find("sagaflow_events_acked_total 1") != std::string::npos &&
        metrics.find("sagaflow_event_processing_seconds_count 2") != std::string::npos) {
      break;
    }
    std::this_thread::sleep_for(100ms);
  }
  // Then every metric of the contract is exposed, with the values of what happened
  for (const char* name :
       {"sagaflow_events_consumed_total{type=\"order.created\"} 1", "sagaflow_events_acked_total 1",
        "sagaflow_events_dead_lettered_total{reason=\"malformed_json\"} 1",
        "sagaflow_events_retried_total", "sagaflow_dedup_hits_total", "sagaflow_rate_limited_total",
        "sagaflow_sagas_started_total 1", "sagaflow_sagas_finished_total", "sagaflow_sagas_stuck",
        "sagaflow_event_processing_seconds_bucket", "sagaflow_event_processing_seconds_count 2"}) {
    CAPTURE(name);
    CHECK_THAT(metrics, Catch::Contains(name));
  }

  // When Redis goes away, the worker is not ready; when it is back, ready again
  redis.stop();
  CHECK(wait_ready(503) == 503);
  CHECK(http_request(port, "GET", "/healthz").status == 200);  // alive all the same
  redis.start();
  CHECK(wait_ready(200) == 200);

  worker.signal(SIGTERM);
  CHECK(worker.wait_for(10s) == 0);
  // Every stderr line is one JSON object with ts, level, msg
  std::istringstream lines(worker.read_stderr());
  int n = 0;
  for (std::string line; std::getline(lines, line); ++n) {
    CAPTURE(line);
    CHECK(line.front() == '{');
    CHECK(line.back() == '}');
    CHECK_THAT(line, Catch::Contains("\"ts\":") && Catch::Contains("\"level\":") &&
                         Catch::Contains("\"msg\":"));
  }
  CHECK(n > 0);
}
