// RabbitSink: publisher confirms under load, backpressure, failure while disconnected.
#include <catch2/catch.hpp>

#include <atomic>

#include "producers/rabbit_sink.hpp"
#include "rabbit_fixture.hpp"

using namespace sagaflow;
using namespace sagaflow::testing;
using namespace std::chrono_literals;

TEST_CASE("20k publishes are all confirmed and all in the queue", "[rabbitmq][sink]") {
  RabbitServer& rabbit = rabbit_with_topology();
  rabbit.declare_queue("sagaflow.test.sink");
  rabbit.purge("sagaflow.test.sink");
  Loop loop;
  RabbitSinkOptions o;
  o.endpoint = endpoint_of(rabbit);
  o.window = 1024;
  RabbitSink sink(loop.get(), o);
  sink.start();
  REQUIRE(loop.run_until([&] { return sink.connected(); }, 10s));

  // Given 20k messages fed as fast as the window allows
  constexpr int kCount = 20000;
  int sent = 0, ok = 0, failed = 0;
  std::size_t max_unconfirmed = 0;
  std::function<void()> feed = [&] {
    while (sent < kCount && sink.can_publish()) {
      Message m;
      m.exchange = "";
      m.routing_key = "sagaflow.test.sink";
      m.message_id = "m" + std::to_string(sent);
      m.body = R"({"n":)" + std::to_string(sent) + "}";
      sent++;
      sink.publish(std::move(m), [&](Status s) { s ? ok++ : failed++; });
      max_unconfirmed = std::max(max_unconfirmed, sink.unconfirmed());
    }
  };
  sink.on_writable(feed);
  const auto t0 = std::chrono::steady_clock::now();
  feed();

  // When the loop runs
  REQUIRE(loop.run_until(
      [&] {
        feed();
        return ok + failed == kCount;
      },
      60s));
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("sink: %d confirmed in %.2f s (%.0f/s)\n", ok, secs, ok / secs);

  // Then every one was confirmed, the window held, and the queue has them all
  CHECK(ok == kCount);
  CHECK(failed == 0);
  CHECK(max_unconfirmed <= o.window);
  CHECK(rabbit.queue_depth("sagaflow.test.sink") == kCount);
  auto first = rabbit.get("sagaflow.test.sink");
  REQUIRE(first);
  CHECK(first->body == R"({"n":0})");

  bool stopped = false;
  sink.stop([&] { stopped = true; });
  CHECK(loop.run_until([&] { return stopped; }, 5s));
  rabbit.purge("sagaflow.test.sink");
}

TEST_CASE("publishing without a broker fails as unavailable, later, not inside publish",
          "[rabbitmq][sink]") {
  Loop loop;
  RabbitSinkOptions o;
  o.endpoint.port = free_port();
  RabbitSink sink(loop.get(), o);
  sink.start();
  bool called = false;
  Status result;
  Message m;
  m.exchange = "sagaflow.events";
  m.routing_key = "order.created";
  sink.publish(std::move(m), [&](Status s) {
    called = true;
    result = s;
  });
  CHECK_FALSE(called);
  REQUIRE(loop.run_until([&] { return called; }, 2s));
  CHECK_FALSE(result.ok());
  CHECK(result.error().code == Errc::unavailable);
  CHECK_FALSE(sink.connected());
  bool stopped = false;
  sink.stop([&] { stopped = true; });
  CHECK(loop.run_until([&] { return stopped; }, 2s));
}
