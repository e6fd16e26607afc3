// RabbitSource on a real node: ack only after settle, redelivery of what was not acked, retry
// with growing delays then dead-letter with headers and the body intact, malformed input
// dead-lettered at once, reconnect across a broker restart without losing a message, pause,
// and stop() draining.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <optional>
#include <set>
#include <thread>

#include "consumers/rabbit_source.hpp"
#include "producers/rabbit_sink.hpp"
#include "rabbit_fixture.hpp"

using namespace sagaflow;
using namespace sagaflow::testing;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

struct Got {
  std::uint64_t tag;
  std::string body;
  std::string route;
  std::string message_id;
  int attempt;
  bool redelivered;
  Clock::time_point at;
};

Got copy_of(const Delivery& d) {
  return Got{d.tag,
             std::string(d.body),
             std::string(d.routing_key),
             std::string(d.message_id),
             d.attempt,
             d.redelivered,
             Clock::now()};
}

RabbitSourceOptions source_options(RabbitServer& rabbit, int max_attempts = 4) {
  RabbitSourceOptions o;
  o.endpoint = endpoint_of(rabbit);
  o.queue = "sagaflow.saga";
  o.retry = test_retry_policy(max_attempts);
  o.drain_timeout_ms = 5000;
  return o;
}

// Production's wiring (app/impl/brokers.cpp): the source publishes its retry and dead-letter
// copies through a RabbitSink its owner starts before it and stops after it.
struct Wired {
  RabbitSink copies;
  RabbitSource source;
  Wired(Loop& loop, RabbitSourceOptions o)
      : copies(loop.get(), copies_options(o)), source(loop.get(), std::move(o), copies) {
    copies.start();
  }
  static RabbitSinkOptions copies_options(const RabbitSourceOptions& o) {
    RabbitSinkOptions so;
    so.endpoint = o.endpoint;
    so.name = o.name + " (copies)";
    return so;
  }
};

// Publishes messages (exchange sagaflow.events, routing key = route) with confirms.
void publish_all(Loop& loop, RabbitServer& rabbit,
                 const std::vector<std::pair<std::string, std::string>>& id_body,
                 const std::string& route = "order.created") {
  RabbitSinkOptions so;
  so.endpoint = endpoint_of(rabbit);
  RabbitSink sink(loop.get(), so);
  sink.start();
  REQUIRE(loop.run_until([&] { return sink.connected(); }, 10s));
  std::size_t next = 0, ok = 0;
  auto feed = [&] {
    while (next < id_body.size() && sink.can_publish()) {
      Message m;
      m.exchange = "sagaflow.events";
      m.routing_key = route;
      m.message_id = id_body[next].first;
      m.body = id_body[next].second;
      next++;
      sink.publish(std::move(m), [&](Status s) {
        REQUIRE(s.ok());
        ok++;
      });
    }
  };
  REQUIRE(loop.run_until(
      [&] {
        feed();
        return ok == id_body.size();
      },
      30s));
  bool stopped = false;
  sink.stop([&] { stopped = true; });
  REQUIRE(loop.run_until([&] { return stopped; }, 5s));
}

std::vector<std::pair<std::string, std::string>> events(int from, int count) {
  std::vector<std::pair<std::string, std::string>> v;
  for (int i = from; i < from + count; ++i) {
    const std::string id = "evt_" + std::to_string(i);
    v.emplace_back(id, R"({"id":")" + id + R"(","type":"order.created"})");
  }
  return v;
}

void wait_depth(RabbitServer& rabbit, const std::string& queue, std::uint32_t depth,
                std::chrono::seconds timeout = 10s) {
  const auto deadline = Clock::now() + timeout;
  while (rabbit.queue_depth(queue) != depth && Clock::now() < deadline)
    std::this_thread::sleep_for(20ms);
  REQUIRE(rabbit.queue_depth(queue) == depth);
}

std::string header(const RabbitServer::Message& m, const std::string& key) {
  for (const auto& [k, v] : m.headers) {
    if (k == key) return v;
  }
  return "<missing>";
}

void stop_and_wait(Loop& loop, RabbitSource& source) {
  bool stopped = false;
  source.stop([&] { stopped = true; });
  REQUIRE(loop.run_until([&] { return stopped; }, 10s));
}

}  // namespace

TEST_CASE("a delivery is acked only once settled; unsettled ones come back redelivered",
          "[rabbitmq][source]") {
  RabbitServer& rabbit = rabbit_with_topology();
  rabbit.purge("sagaflow.saga");
  Loop loop;
  publish_all(loop, rabbit, events(0, 10));

  {
    // Given a consumer whose handler never settles
    Wired wired_a(loop, source_options(rabbit));
    RabbitSource& a = wired_a.source;
    std::vector<Got> got;
    a.start([&](const Delivery& d) { got.push_back(copy_of(d)); });
    REQUIRE(loop.run_until([&] { return got.size() == 10; }, 10s));
    CHECK(got[0].attempt == 1);
    CHECK_FALSE(got[0].redelivered);
    CHECK(got[0].route == "order.created");
    CHECK(got[0].message_id == "evt_0");
    CHECK(a.in_flight() == 10);
    // Then nothing was acked: none is ready, all are held by this consumer
    CHECK(rabbit.queue_depth("sagaflow.saga") == 0);
    // When its connection dies without an ack (the object goes away, like a killed process)
  }
  wait_depth(rabbit, "sagaflow.saga", 10);

  // Then another consumer gets every message again, marked redelivered, and acks them
  Wired wired_b(loop, source_options(rabbit));
  RabbitSource& b = wired_b.source;
  std::vector<Got> again;
  b.start([&](const Delivery& d) {
    again.push_back(copy_of(d));
    b.settle(d.tag, Verdict::ack());
  });
  REQUIRE(loop.run_until([&] { return again.size() == 10; }, 10s));
  loop.run_for(100ms);
  for (const auto& g : again) CHECK(g.redelivered);
  CHECK(b.stats().acked == 10);
  CHECK(b.stats().ack_frames < 10);  // contiguous settled tags went as multiple-acks
  stop_and_wait(loop, b);
  CHECK(rabbit.queue_depth("sagaflow.saga") == 0);
}

TEST_CASE("a content failure is retried with growing delays, then dead-lettered intact",
          "[rabbitmq][source]") {
  RabbitServer& rabbit = rabbit_with_topology();
  rabbit.purge("sagaflow.saga");
  rabbit.purge("sagaflow.dead");
  Loop loop;
  // Given an event whose body has multi-byte UTF-8 and escapes
  const std::string body =
      "{\"id\":\"evt_r1\",\"type\":\"order.created\",\"note\":\"caf\xc3\xa9 \\u00e9 \\\"q\\\"\"}";

  // When the handler asks for a retry on every delivery (max 4 attempts)
  Wired wired_source(loop, source_options(rabbit, 4));
  RabbitSource& source = wired_source.source;
  std::vector<Got> got;
  source.start([&](const Delivery& d) {
    got.push_back(copy_of(d));
    source.settle(d.tag, Verdict::retry(Errc::rejected, "saga record unreadable\nsecond line"));
  });
  // (the event is published once the source and its copies' link are connected: a first copy
  // sent before would wait for the reconnect and skew the gaps measured below)
  REQUIRE(loop.run_until([&] { return source.connected(); }, 20s));
  publish_all(loop, rabbit, {{"evt_r1", body}});
  REQUIRE(loop.run_until(
      [&] { return source.stats().dead_lettered == 1 && source.in_flight() == 0; }, 20s));
  loop.run_for(100ms);
  stop_and_wait(loop, source);

  // Then it was delivered 4 times, attempts 1..4, body and route unchanged, delays growing
  REQUIRE(got.size() == 4);
  for (int i = 0; i < 4; ++i) {
    CHECK(got[static_cast<std::size_t>(i)].attempt == i + 1);
    CHECK(got[static_cast<std::size_t>(i)].body == body);
    CHECK(got[static_cast<std::size_t>(i)].route == "order.created");
    CHECK(got[static_cast<std::size_t>(i)].message_id == "evt_r1");
  }
  auto gap = [&](std::size_t i) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(got[i + 1].at - got[i].at).count();
  };
  std::printf("retry gaps: %lld ms, %lld ms, %lld ms\n", static_cast<long long>(gap(0)),
              static_cast<long long>(gap(1)), static_cast<long long>(gap(2)));
  CHECK(gap(0) >= 45);   // [50, 100] ms
  CHECK(gap(2) >= 190);  // [200, 400] ms
  CHECK(gap(2) > gap(0));

  // And the dead letter carries the headers and the body byte for byte
  wait_depth(rabbit, "sagaflow.dead", 1);
  auto dead = rabbit.get("sagaflow.dead");
  REQUIRE(dead);
  CHECK(dead->body == body);
  CHECK(header(*dead, "x-sagaflow-error") == "retries_exhausted");
  CHECK(header(*dead, "x-sagaflow-attempts") == "4");
  CHECK(header(*dead, "x-sagaflow-original-route") == "order.created");
  const std::string detail = header(*dead, "x-sagaflow-detail");
  INFO(detail);
  CHECK(detail.find("rejected after 4 attempts: saga record unreadable") == 0);
  CHECK(detail.find('\n') == std::string::npos);
  CHECK(rabbit.queue_depth("sagaflow.saga") == 0);
}

TEST_CASE("malformed input is dead-lettered at once, never retried", "[rabbitmq][source]") {
  RabbitServer& rabbit = rabbit_with_topology();
  rabbit.purge("sagaflow.saga");
  rabbit.purge("sagaflow.dead");
  Loop loop;
  const std::string body = "{not json \xff\xfe";
  publish_all(loop, rabbit, {{"", body}}, "payment.completed");

  Wired wired_source(loop, source_options(rabbit, 8));
  RabbitSource& source = wired_source.source;
  int deliveries = 0;
  source.start([&](const Delivery& d) {
    deliveries++;
    source.settle(d.tag, Verdict::dead_letter(Errc::malformed_json, "not JSON at byte 1"));
  });
  REQUIRE(loop.run_until(
      [&] { return source.stats().dead_lettered == 1 && source.in_flight() == 0; }, 10s));
  loop.run_for(300ms);
  stop_and_wait(loop, source);

  CHECK(deliveries == 1);
  wait_depth(rabbit, "sagaflow.dead", 1);
  auto dead = rabbit.get("sagaflow.dead");
  REQUIRE(dead);
  CHECK(dead->body == body);
  CHECK(header(*dead, "x-sagaflow-error") == "malformed_json");
  CHECK(header(*dead, "x-sagaflow-detail") == "not JSON at byte 1");
  CHECK(header(*dead, "x-sagaflow-attempts") == "1");
  CHECK(header(*dead, "x-sagaflow-original-route") == "payment.completed");
  CHECK(rabbit.queue_depth("sagaflow.saga") == 0);
}

TEST_CASE("the broker restarts mid-stream: the source reconnects and no message is lost",
          "[rabbitmq][source]") {
  RabbitServer& rabbit = rabbit_with_topology();
  rabbit.purge("sagaflow.saga");
  Loop loop;
  constexpr int kFirst = 3000;
  constexpr int kSecond = 1000;
  publish_all(loop, rabbit, events(0, kFirst));

  // Given a consumer that acks slowly (10 every 5 ms), so the stream is still flowing
  RabbitSourceOptions o = source_options(rabbit);
  o.prefetch = 50;
  Wired wired_source(loop, o);
  RabbitSource& source = wired_source.source;
  std::set<std::string> seen;
  std::size_t deliveries = 0;
  std::vector<std::uint64_t> pending;
  std::vector<bool> states;
  source.on_state_change([&](bool up) { states.push_back(up); });
  source.start([&](const Delivery& d) {
    deliveries++;
    seen.insert(std::string(d.message_id));
    pending.push_back(d.tag);
  });
  uv_timer_t acker;
  uv_timer_init(loop.get(), &acker);
  struct AckCtx {
    RabbitSource* source;
    std::vector<std::uint64_t>* pending;
  } ctx{&source, &pending};
  acker.data = &ctx;
  uv_timer_start(
      &acker,
      [](uv_timer_t* t) {
        auto* c = static_cast<AckCtx*>(t->data);
        const std::size_t n = std::min<std::size_t>(10, c->pending->size());
        for (std::size_t i = 0; i < n; ++i) c->source->settle((*c->pending)[i], Verdict::ack());
        c->pending->erase(c->pending->begin(),
                          c->pending->begin() + static_cast<std::ptrdiff_t>(n));
      },
      5, 5);
  REQUIRE(loop.run_until([&] { return seen.size() >= 500; }, 20s));

  // When the broker restarts (the loop is not running meanwhile, like a stalled process)
  pending.clear();  // those deliveries die with the connection
  rabbit.restart();

  // And more events are published after it came back
  publish_all(loop, rabbit, events(kFirst, kSecond));

  // Then every event is processed (some twice: at-least-once), none lost
  REQUIRE(loop.run_until([&] { return seen.size() == kFirst + kSecond && pending.empty(); }, 60s));
  loop.run_for(200ms);
  std::printf("restart: %zu deliveries for %zu events, %llu reconnects\n", deliveries, seen.size(),
              static_cast<unsigned long long>(source.stats().reconnects));
  CHECK(seen.size() == kFirst + kSecond);
  CHECK(source.stats().reconnects >= 1);
  REQUIRE(states.size() >= 3);
  CHECK(states[0] == true);
  CHECK(states[1] == false);
  CHECK(states.back() == true);
  uv_timer_stop(&acker);
  uv_close(reinterpret_cast<uv_handle_t*>(&acker), nullptr);
  stop_and_wait(loop, source);
  CHECK(rabbit.queue_depth("sagaflow.saga") == 0);
}

TEST_CASE("pause holds deliveries back until resume", "[rabbitmq][source]") {
  RabbitServer& rabbit = rabbit_with_topology();
  rabbit.purge("sagaflow.saga");
  Loop loop;
  publish_all(loop, rabbit, events(0, 20));
  Wired wired_source(loop, source_options(rabbit));
  RabbitSource& source = wired_source.source;
  int got = 0;
  source.start([&](const Delivery& d) {
    got++;
    source.settle(d.tag, Verdict::ack());
    if (got == 5) source.pause();
  });
  REQUIRE(loop.run_until([&] { return got == 5; }, 10s));
  loop.run_for(300ms);
  CHECK(got == 5);
  CHECK(source.paused());
  source.resume();
  REQUIRE(loop.run_until([&] { return got == 20; }, 10s));
  stop_and_wait(loop, source);
  CHECK(rabbit.queue_depth("sagaflow.saga") == 0);
}

TEST_CASE("stop() takes no new delivery, lets in-flight ones settle, acks them, then closes",
          "[rabbitmq][source]") {
  RabbitServer& rabbit = rabbit_with_topology();
  rabbit.purge("sagaflow.saga");
  Loop loop;
  publish_all(loop, rabbit, events(0, 40));

  Wired wired_source(loop, source_options(rabbit));
  RabbitSource& source = wired_source.source;
  std::vector<std::uint64_t> handed;
  bool stopping = false, stopped = false;
  int after_stop = 0;
  source.start([&](const Delivery& d) {
    if (stopping) after_stop++;
    handed.push_back(d.tag);
    if (handed.size() == 5) {
      stopping = true;
      source.stop([&] { stopped = true; });
    }
  });
  REQUIRE(loop.run_until([&] { return stopping; }, 10s));
  // In-flight deliveries settle later (as an asynchronous pipeline would)
  loop.run_for(200ms);
  CHECK_FALSE(stopped);
  CHECK(source.in_flight() == 5);
  for (auto tag : handed) source.settle(tag, Verdict::ack());
  REQUIRE(loop.run_until([&] { return stopped; }, 5s));
  CHECK(after_stop == 0);
  CHECK(source.stats().acked == 5);
  // The 35 never handed over go back to the queue; the 5 acked are gone
  wait_depth(rabbit, "sagaflow.saga", 35);
  rabbit.purge("sagaflow.saga");
}

TEST_CASE("settled deliveries behind an unsettled one leave the window at once",
          "[rabbitmq][source]") {
  RabbitServer& rabbit = rabbit_with_topology();
  rabbit.purge("sagaflow.saga");
  Loop loop;
  publish_all(loop, rabbit, events(0, 1500));

  // Given a prefetch of 32 and a first delivery that stays unsettled while all others are acked
  RabbitSourceOptions o = source_options(rabbit);
  o.prefetch = 32;
  Wired wired_source(loop, o);
  RabbitSource& source = wired_source.source;
  std::optional<std::uint64_t> first;
  std::size_t got = 0, largest_window = 0;
  source.start([&](const Delivery& d) {
    got++;
    largest_window = std::max(largest_window, source.window_size());
    if (!first) {
      first = d.tag;
      return;
    }
    source.settle(d.tag, Verdict::ack());
  });
  // Then every delivery arrives (single acks free the prefetch) and the window never holds
  // more than the prefetch: the 1,499 settled ones are not kept behind the first
  REQUIRE(loop.run_until([&] { return got == 1500; }, 30s));
  loop.run_for(100ms);
  CHECK(largest_window <= 32);
  CHECK(source.window_size() == 1);
  CHECK(source.window_bytes() == events(0, 1)[0].second.size());
  // When the first is settled, everything is acked
  source.settle(*first, Verdict::ack());
  REQUIRE(loop.run_until([&] { return source.window_size() == 0; }, 5s));
  stop_and_wait(loop, source);
  CHECK(rabbit.queue_depth("sagaflow.saga") == 0);
}

TEST_CASE("large bodies are read within the byte budget; reads resume as they settle",
          "[rabbitmq][source]") {
  RabbitServer& rabbit = rabbit_with_topology();
  rabbit.purge("sagaflow.saga");
  rabbit.purge("sagaflow.dead");
  Loop loop;
  constexpr std::size_t kBody = 1 << 20;
  std::vector<std::pair<std::string, std::string>> big;
  for (int i = 0; i < 12; ++i) {
    big.emplace_back("big_" + std::to_string(i), std::string(kBody, static_cast<char>('a' + i)));
  }
  publish_all(loop, rabbit, big);

  // Given a budget of 3 MiB, a prefetch of 256 and a short heartbeat
  RabbitSourceOptions o = source_options(rabbit);
  o.max_bytes_in_flight = 3 * kBody;
  o.heartbeat_s = 1;
  Wired wired_source(loop, o);
  RabbitSource& source = wired_source.source;
  std::vector<std::uint64_t> tags;
  std::size_t largest_bytes = 0;
  source.start([&](const Delivery& d) {
    tags.push_back(d.tag);
    largest_bytes = std::max(largest_bytes, source.window_bytes());
  });
  // Then reading stops at the budget, and the connection stays up while it is held (the
  // heartbeats still go out: 4 s is twice the broker's 2 x 1 s limit)
  REQUIRE(loop.run_until([&] { return tags.size() == 3; }, 10s));
  loop.run_for(4s);
  CHECK(tags.size() == 3);
  CHECK(source.stats().read_holds >= 1);
  CHECK(source.stats().reconnects == 0);
  CHECK(source.connected());
  CHECK(largest_bytes <= 3 * kBody);

  // When each one is dead-lettered (too large for the pipeline), reading resumes until all
  // twelve are in the dead-letter queue with their bodies intact
  std::size_t settled = 0;
  auto settle_all = [&] {
    for (; settled < tags.size(); ++settled) {
      source.settle(tags[settled], Verdict::dead_letter(Errc::too_large, "over the limit"));
    }
  };
  REQUIRE(loop.run_until(
      [&] {
        settle_all();
        return source.stats().dead_lettered == 12 && source.in_flight() == 0 &&
               source.window_size() == 0;
      },
      30s));
  CHECK(largest_bytes <= 3 * kBody);
  CHECK(source.stats().reconnects == 0);
  stop_and_wait(loop, source);
  wait_depth(rabbit, "sagaflow.dead", 12);
  for (int i = 0; i < 12; ++i) {
    auto dead = rabbit.get("sagaflow.dead");
    REQUIRE(dead);
    CHECK(dead->body.size() == kBody);
    CHECK(header(*dead, "x-sagaflow-error") == "too_large");
  }
}
