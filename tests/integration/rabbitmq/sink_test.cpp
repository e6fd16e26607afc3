// RabbitSink: publisher confirms under load, backpressure, failure while disconnected; its own
// framing against a real broker (every body size, a message that cannot be framed, a broker
// that stops reading mid-write).
#include <catch2/catch.hpp>

#include <signal.h>

#include <atomic>
#include <functional>
#include <string>
#include <thread>

#include "producers/rabbit_sink.hpp"
#include "rabbit_fixture.hpp"

using namespace sagaflow;
using namespace sagaflow::testing;
using namespace std::chrono_literals;

namespace {

// A sink on the shared broker, publishing to `queue` (declared and emptied first); `before`
// runs before start (to watch the state); connected() once up, stop() at the end.
struct QueueSink {
  RabbitServer& rabbit = rabbit_with_topology();
  std::string queue;
  Loop loop;
  RabbitSink sink;

  explicit QueueSink(std::string q, std::size_t window = 0,
                     const std::function<void(RabbitSink&)>& before = {})
      : queue(std::move(q)), sink(loop.get(), options(rabbit, window)) {
    rabbit.declare_queue(queue);
    rabbit.purge(queue);
    if (before) before(sink);
    sink.start();
  }
  static RabbitSinkOptions options(RabbitServer& rabbit, std::size_t window) {
    RabbitSinkOptions o;
    o.endpoint = endpoint_of(rabbit);
    if (window > 0) o.window = window;
    return o;
  }
  bool connected() {
    return loop.run_until([&] { return sink.connected(); }, 10s);
  }
  bool stop() {
    bool stopped = false;
    sink.stop([&] { stopped = true; });
    return loop.run_until([&] { return stopped; }, 5s);
  }
};

}  // namespace

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

TEST_CASE("publishes of every size arrive whole, with their headers, in order",
          "[rabbitmq][sink]") {
  // The sink writes a turn's publishes as frames of its own (clients/rabbitmq/publish_frames):
  // bodies around the frame size (131072, less 8 octets of framing), empty and several frames
  // long, in one turn, some over the 64 KiB at which a turn's output is written at once.
  QueueSink fx("sagaflow.test.sizes");
  RabbitServer& rabbit = fx.rabbit;
  Loop& loop = fx.loop;
  RabbitSink& sink = fx.sink;
  REQUIRE(fx.connected());

  const std::vector<std::size_t> sizes = {0, 1, 131063, 131064, 131065, 300001, 17, 70000, 5};
  int ok = 0, failed = 0;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    Message m;
    m.exchange = "";
    m.routing_key = "sagaflow.test.sizes";
    m.message_id = "size" + std::to_string(i);
    m.body.resize(sizes[i]);
    for (std::size_t b = 0; b < sizes[i]; ++b) m.body[b] = static_cast<char>('a' + (b + i) % 26);
    m.headers.push_back({"x-sagaflow-n", static_cast<std::int64_t>(i)});
    m.headers.push_back({"x-sagaflow-text", "message " + std::to_string(i)});
    m.expiration_ms = 600000;
    sink.publish(std::move(m), [&](Status s) { s ? ok++ : failed++; });
  }
  REQUIRE(loop.run_until([&] { return ok + failed == static_cast<int>(sizes.size()); }, 30s));
  CHECK(failed == 0);

  for (std::size_t i = 0; i < sizes.size(); ++i) {
    auto got = rabbit.get("sagaflow.test.sizes");
    REQUIRE(got);
    std::string body(sizes[i], '\0');
    for (std::size_t b = 0; b < sizes[i]; ++b) body[b] = static_cast<char>('a' + (b + i) % 26);
    CHECK(got->body.size() == sizes[i]);
    CHECK(got->body == body);
    const std::vector<std::pair<std::string, std::string>> headers = {
        {"x-sagaflow-n", std::to_string(i)}, {"x-sagaflow-text", "message " + std::to_string(i)}};
    CHECK(got->headers == headers);
  }
  CHECK_FALSE(rabbit.get("sagaflow.test.sizes"));

  CHECK(fx.stop());
}

TEST_CASE("a message that cannot be encoded fails alone; the connection and the others go on",
          "[rabbitmq][sink]") {
  std::vector<std::string> states;
  QueueSink fx("sagaflow.test.unencodable", 0, [&](RabbitSink& sink) {
    sink.on_state_change([&](bool up) { states.push_back(up ? "up" : "down"); });
  });
  RabbitServer& rabbit = fx.rabbit;
  Loop& loop = fx.loop;
  RabbitSink& sink = fx.sink;
  REQUIRE(fx.connected());

  // Given a message between two good ones whose routing key is over AMQP's 255 octets
  std::vector<Status> results(3);
  int answered = 0;
  for (int i = 0; i < 3; ++i) {
    Message m;
    m.exchange = "";
    m.routing_key = i == 1 ? std::string(300, 'k') : "sagaflow.test.unencodable";
    m.body = "{\"n\":" + std::to_string(i) + "}";
    sink.publish(std::move(m), [&, i](Status s) {
      results[static_cast<std::size_t>(i)] = std::move(s);
      answered++;
    });
  }
  REQUIRE(loop.run_until([&] { return answered == 3; }, 10s));

  // Then it alone failed, with the reason; the others were confirmed on the same connection
  CHECK(results[0].ok());
  REQUIRE_FALSE(results[1].ok());
  CHECK(results[1].error().detail.find("cannot encode") != std::string::npos);
  CHECK(results[2].ok());
  CHECK(states == std::vector<std::string>{"up"});
  CHECK(rabbit.queue_depth("sagaflow.test.unencodable") == 2);
  auto second = [&] {
    rabbit.get("sagaflow.test.unencodable");
    return rabbit.get("sagaflow.test.unencodable");
  }();
  REQUIRE(second);
  CHECK(second->body == "{\"n\":2}");

  CHECK(fx.stop());
}

TEST_CASE("a turn's output larger than the socket takes waits for the broker, frames intact",
          "[rabbitmq][sink]") {
  // The broker stops reading (its processes stopped) while 8 MiB of publishes are written: the
  // socket fills, the sink's send waits for room, and once the broker reads again every
  // publish arrives whole, in order, and is confirmed.
  QueueSink fx("sagaflow.test.stalled", 1024);
  RabbitServer& rabbit = fx.rabbit;
  Loop& loop = fx.loop;
  RabbitSink& sink = fx.sink;
  REQUIRE(fx.connected());

  constexpr int kCount = 80;
  constexpr std::size_t kSize = 100000;
  auto body_of = [&](int i) {
    std::string body(kSize, '\0');
    for (std::size_t b = 0; b < kSize; ++b) body[b] = static_cast<char>('a' + (b * 7 + i) % 26);
    return body;
  };
  REQUIRE(::kill(-rabbit.pid(), SIGSTOP) == 0);
  std::thread resume([&] {
    std::this_thread::sleep_for(1500ms);
    ::kill(-rabbit.pid(), SIGCONT);
  });
  int ok = 0, failed = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < kCount; ++i) {
    Message m;
    m.exchange = "";
    m.routing_key = "sagaflow.test.stalled";
    m.body = body_of(i);
    sink.publish(std::move(m), [&](Status s) { s ? ok++ : failed++; });
  }
  const bool all = loop.run_until([&] { return ok + failed == kCount; }, 30s);
  resume.join();
  const double waited =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  REQUIRE(all);
  CHECK(failed == 0);
  CHECK(waited >= 1.0);  // the writes did wait for the stopped broker
  CHECK(sink.connected());
  for (int i = 0; i < kCount; ++i) {
    auto got = rabbit.get("sagaflow.test.stalled");
    REQUIRE(got);
    CHECK(got->body == body_of(i));
  }
  CHECK_FALSE(rabbit.get("sagaflow.test.stalled"));

  CHECK(fx.stop());
}
