// Proves: when Redis freezes (SIGSTOP) every call comes back fast as timeout or unavailable,
// the client reports the loss, and after SIGCONT it reconnects by itself and works; a restart
// with AOF on loses no committed state (record, dedup mark, outbox entry) and the client
// reconnects and loads its scripts again; stop() fails what is in flight.
#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <vector>

#include "loop.hpp"
#include "store/saga_store.hpp"
#include "support/servers.hpp"

using namespace sagaflow;
using namespace sagaflow::store;
using namespace sagaflow::store::test;
using namespace std::chrono_literals;
using namespace std::string_literals;

namespace {

RedisClientOptions fast_options(const testing::RedisServer& server) {
  auto o = client_options(server);
  o.command_timeout_ms = 500;
  o.connect_timeout_ms = 500;
  o.backoff_min_ms = 20;
  o.backoff_max_ms = 300;
  o.heartbeat_ms = 200;
  return o;
}

ApplyRequest request(const std::string& order, const std::string& event, std::int64_t expected) {
  ApplyRequest r;
  r.order_id = OrderId{order};
  r.event_id = EventId{event};
  r.expected_version = expected;
  r.new_state = "state-" + event;
  r.new_status = "reserving";
  r.commands.push_back(
      {order + ":inventory.reserve", "sagaflow.commands", "inventory.reserve", "{}"});
  return r;
}

}  // namespace

TEST_CASE("a frozen Redis (SIGSTOP) fails calls fast, SIGCONT brings it back",
          "[store][resilience]") {
  testing::RedisServer server;
  Loop loop;
  auto c = connected_client(loop, fast_options(server));
  std::vector<bool> events;
  c->on_connection([&](bool up) { events.push_back(up); });
  SagaStore store(*c, SagaStoreOptions{16, 3600, 0, 0});
  REQUIRE(
      loop.await<ApplyOutcome>([&](auto cb) { store.apply(request("o1", "e1", 0), cb); })->kind ==
      ApplyKind::applied);

  // Given the server frozen
  server.pause();
  // When 200 calls are made
  const auto t0 = std::chrono::steady_clock::now();
  int done = 0;
  int timeouts = 0;
  int unavailable = 0;
  int other = 0;
  for (int i = 0; i < 200; ++i) {
    store.load(OrderId{"o1"s}, [&](Result<SagaRecord> r) {
      ++done;
      if (r.ok()) {
        ++other;
      } else if (r.error().code == Errc::timeout) {
        ++timeouts;
      } else if (r.error().code == Errc::unavailable) {
        ++unavailable;
      } else {
        ++other;
      }
    });
  }
  // Then all fail within about the call timeout, as timeout
  REQUIRE(loop.run_until([&] { return done == 200; }, 5s));
  const auto took = std::chrono::steady_clock::now() - t0;
  CHECK(took < 1500ms);
  CHECK(timeouts == 200);
  CHECK(other == 0);
  CHECK_FALSE(c->connected());
  REQUIRE_FALSE(events.empty());
  CHECK(events.back() == false);
  // And calls made while it is down fail at once as unavailable
  const auto t1 = std::chrono::steady_clock::now();
  auto r = loop.await<SagaRecord>([&](auto cb) { store.load(OrderId{"o1"s}, cb); });
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == Errc::unavailable);
  CHECK(std::chrono::steady_clock::now() - t1 < 100ms);
  // While frozen for a while, reconnect attempts time out without a busy loop
  loop.run_for(1500ms);
  CHECK_FALSE(c->connected());

  // When the server continues
  server.resume();
  // Then the client reconnects by itself and works
  REQUIRE(loop.run_until([&] { return c->connected(); }, 5s));
  CHECK(events.back() == true);
  auto rec = loop.await<SagaRecord>([&](auto cb) { store.load(OrderId{"o1"s}, cb); });
  REQUIRE(rec.ok());
  CHECK(rec->version == 1);
  auto out = loop.await<ApplyOutcome>([&](auto cb) { store.apply(request("o1", "e2", 1), cb); });
  REQUIRE(out.ok());
  CHECK(out->kind == ApplyKind::applied);
  CHECK(c->stats().timeouts >= 1);
  c->stop();
}

TEST_CASE("an idle connection to a frozen Redis is detected by the heartbeat",
          "[store][resilience]") {
  testing::RedisServer server;
  Loop loop;
  auto c = connected_client(loop, fast_options(server));
  server.pause();
  // heartbeat 200 ms + timeout 500 ms
  CHECK(loop.run_until([&] { return !c->connected(); }, 2s));
  server.resume();
  CHECK(loop.run_until([&] { return c->connected(); }, 5s));
  c->stop();
}

TEST_CASE("a restart with AOF on loses no committed state", "[store][resilience]") {
  testing::RedisServer server(testing::RedisOptions{true});
  Loop loop;
  auto c = connected_client(loop, fast_options(server));
  SagaStore store(*c, SagaStoreOptions{16, 3600, 0, 0});
  auto first = loop.await<ApplyOutcome>([&](auto cb) { store.apply(request("o2", "e1", 0), cb); });
  REQUIRE(first.ok());
  REQUIRE(first->kind == ApplyKind::applied);
  const int p = first->partition;

  // When the server restarts (graceful stop flushes the AOF)
  server.restart();
  // Then the client notices, reconnects by itself
  REQUIRE(loop.run_until([&] { return c->stats().connects >= 2 && c->connected(); }, 10s));
  // And the record, the dedup mark and the outbox entry are all there
  auto rec = loop.await<SagaRecord>([&](auto cb) { store.load(OrderId{"o2"s}, cb); });
  REQUIRE(rec.ok());
  CHECK(rec->version == 1);
  CHECK(rec->state == "state-e1");
  auto dup = loop.await<ApplyOutcome>([&](auto cb) { store.apply(request("o2", "e1", 0), cb); });
  REQUIRE(dup.ok());
  CHECK(dup->kind == ApplyKind::duplicate);
  CHECK(server.command({"XLEN", Keyspace::outbox_key(p)}) == "1");
  // And the scripts, lost with the restart, are loaded again by the reconnect
  CHECK(server.command({"SCRIPT", "EXISTS", c->script_sha(ScriptRef{0})}) == "1");
  auto next = loop.await<ApplyOutcome>([&](auto cb) { store.apply(request("o2", "e2", 1), cb); });
  REQUIRE(next.ok());
  CHECK(next->kind == ApplyKind::applied);
  CHECK(next->version == 2);
  c->stop();
}

TEST_CASE("calls in flight when Redis is killed fail as unavailable", "[store][resilience]") {
  testing::RedisServer server;
  Loop loop;
  auto c = connected_client(loop, fast_options(server));
  server.stop();
  auto r = loop.await<Reply>([&](auto cb) { c->command({"PING"}, cb); });
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == Errc::unavailable);
  server.start();
  CHECK(loop.run_until([&] { return c->connected(); }, 5s));
  c->stop();
}

TEST_CASE("stop() fails everything in flight before it returns", "[store][resilience]") {
  testing::RedisServer server;
  Loop loop;
  auto c = connected_client(loop, fast_options(server));
  server.pause();
  int failed = 0;
  for (int i = 0; i < 10; ++i) {
    c->command({"PING"}, [&](Result<Reply> r) {
      if (!r.ok() && r.error().code == Errc::unavailable) ++failed;
    });
  }
  c->stop();
  CHECK(failed == 10);
  server.resume();
}
