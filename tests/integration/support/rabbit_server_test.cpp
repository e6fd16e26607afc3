// Proves RabbitServer: a private node on free ports, durable data across restart, two at once.
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>

#include "support/servers.hpp"

using sagaflow::testing::RabbitServer;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

TEST_CASE("RabbitServer keeps a durable queue and a persistent message across a restart") {
  // Given a fresh node
  const auto t0 = std::chrono::steady_clock::now();
  RabbitServer rabbit;
  std::printf("rabbit start: %.1f s\n", seconds_since(t0));
  REQUIRE(rabbit.port() != 5672);
  REQUIRE(rabbit.amqp_url() ==
          "amqp://guest:guest@127.0.0.1:" + std::to_string(rabbit.port()) + "/");
  CHECK(rabbit.queue_depth("does.not.exist") == 0);

  // When a durable queue gets a persistent message (with headers) and the node restarts
  rabbit.declare_queue("sagaflow.test.durable");
  rabbit.publish("", "sagaflow.test.durable", R"({"id":"evt_1"})", true, {{"x-attempt", "1"}});
  REQUIRE(rabbit.queue_depth("sagaflow.test.durable") == 1);
  const auto t1 = std::chrono::steady_clock::now();
  rabbit.restart();
  std::printf("rabbit restart: %.1f s\n", seconds_since(t1));

  // Then the message is still there, body and headers intact
  CHECK(rabbit.queue_depth("sagaflow.test.durable") == 1);
  auto message = rabbit.get("sagaflow.test.durable");
  REQUIRE(message.has_value());
  CHECK(message->body == R"({"id":"evt_1"})");
  CHECK(message->routing_key == "sagaflow.test.durable");
  REQUIRE(message->headers.size() == 1);
  CHECK(message->headers[0] == std::pair<std::string, std::string>{"x-attempt", "1"});
  CHECK(message->remaining == 0);
  CHECK_FALSE(rabbit.get("sagaflow.test.durable").has_value());
  CHECK_FALSE(rabbit.get("does.not.exist").has_value());

  // And purge empties a queue
  rabbit.publish("", "sagaflow.test.durable", "a");
  rabbit.publish("", "sagaflow.test.durable", "b");
  CHECK(rabbit.queue_depth("sagaflow.test.durable") == 2);
  rabbit.purge("sagaflow.test.durable");
  CHECK(rabbit.queue_depth("sagaflow.test.durable") == 0);
  rabbit.purge("does.not.exist");
}

TEST_CASE("Two RabbitServers run at once, independently") {
  RabbitServer a;
  RabbitServer b;
  REQUIRE(a.port() != b.port());
  a.declare_queue("only.in.a");
  a.publish("", "only.in.a", "x");
  CHECK(a.queue_depth("only.in.a") == 1);
  CHECK(b.queue_depth("only.in.a") == 0);
}

TEST_CASE("RabbitServer stop refuses connections; shared_rabbit is one per process") {
  auto& shared = sagaflow::testing::shared_rabbit();
  CHECK(&shared == &sagaflow::testing::shared_rabbit());
  shared.declare_queue("q");
  CHECK(shared.queue_depth("q") == 0);
  shared.stop();
  CHECK(shared.pid() == 0);
  CHECK_THROWS(shared.queue_depth("q"));
  shared.start();
  CHECK(shared.queue_depth("q") == 0);
}
