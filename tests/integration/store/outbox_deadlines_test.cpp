// Proves: outbox entries are pending for the writer until it acks them; entries of a writer
// that never acks (killed) are claimed by another worker after min idle and re-sent with the
// same ids; due deadlines are claimed by exactly one of four concurrent claimers per lease.
#include <catch2/catch.hpp>

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "loop.hpp"
#include "store/deadlines.hpp"
#include "store/outbox.hpp"
#include "store/saga_store.hpp"
#include "support/servers.hpp"

using namespace sagaflow;
using namespace sagaflow::store;
using namespace sagaflow::store::test;
using namespace std::chrono_literals;
using namespace std::string_literals;

namespace {

ApplyRequest created(const std::string& order, int commands) {
  ApplyRequest r;
  r.order_id = OrderId{order};
  r.event_id = EventId{order + ":created"};
  r.new_state = "s";
  r.new_status = "reserving";
  for (int i = 0; i < commands; ++i) {
    r.commands.push_back({fmt::format("{}:cmd{}", order, i), "sagaflow.commands",
                          fmt::format("type{}", i), fmt::format("{{\"n\":{}}}", i)});
  }
  return r;
}

}  // namespace

TEST_CASE("the fast path acks its own entries", "[store][outbox]") {
  auto& server = testing::shared_redis();
  server.command({"FLUSHALL"});
  Loop loop;
  auto c = connected_client(loop, client_options(server));
  SagaStore store(*c, SagaStoreOptions{16, 3600, 0, 0});
  Outbox outbox(*c, OutboxOptions{16, "w1", 5000, 100, 0});

  auto out = loop.await<ApplyOutcome>([&](auto cb) { store.apply(created("ord_f", 3), cb); });
  REQUIRE(out.ok());
  REQUIRE(out->stream_ids.size() == 3);
  const int p = out->partition;
  CHECK(server.command({"XLEN", Keyspace::outbox_key(p)}) == "3");

  // When the worker acks after publishing
  auto st = loop.await<Reply>([&](auto cb) {
    outbox.ack(p, out->stream_ids,
               [cb](Status s) { cb(s.ok() ? Result<Reply>(Reply{}) : Result<Reply>(s.error())); });
  });
  REQUIRE(st.ok());
  // Then the stream is empty
  CHECK(server.command({"XLEN", Keyspace::outbox_key(p)}) == "0");
  c->stop();
}

TEST_CASE("a killed writer's outbox entries are re-sent by another worker", "[store][outbox]") {
  auto& server = testing::shared_redis();
  server.command({"FLUSHALL"});
  Loop loop;
  auto dead = connected_client(loop, client_options(server));
  auto alive = connected_client(loop, client_options(server));

  // Given worker A committed two commands and died before publishing / acking them
  SagaStore store_a(*dead, SagaStoreOptions{16, 3600, 0, 0});
  auto out = loop.await<ApplyOutcome>([&](auto cb) { store_a.apply(created("ord_k", 2), cb); });
  REQUIRE(out.ok());
  const int p = out->partition;
  dead->stop();

  // And worker B claims stale entries with a 300 ms min idle
  Outbox relay(*alive, OutboxOptions{16, "worker-b", 300, 100, 0});
  auto claim = [&] {
    return loop.await<std::vector<OutboxEntry>>(
        [&](auto cb) { relay.claim_stale(p, std::move(cb)); });
  };
  // When B looks at once: nothing is stale yet
  auto got = claim();
  REQUIRE(got.ok());
  CHECK(got->empty());
  // When B looks after the min idle
  loop.run_for(400ms);
  got = claim();
  // Then it gets both commands with their ids, routes and bodies
  REQUIRE(got.ok());
  REQUIRE(got->size() == 2);
  CHECK((*got)[0].stream_id == out->stream_ids[0]);
  CHECK((*got)[0].command.id == "ord_k:cmd0");
  CHECK((*got)[0].command.exchange == "sagaflow.commands");
  CHECK((*got)[0].command.route == "type0");
  CHECK((*got)[1].command.body == "{\"n\":1}");
  // And a second claim at once gets nothing (B handed them out: once per min idle)
  got = claim();
  REQUIRE(got.ok());
  CHECK(got->empty());
  // And after B re-sent and acked, nothing is left
  std::optional<Status> acked;
  relay.ack(p, out->stream_ids, [&](Status s) { acked = s; });
  REQUIRE(loop.run_until([&] { return acked.has_value(); }));
  CHECK(acked->ok());
  CHECK(server.command({"XLEN", Keyspace::outbox_key(p)}) == "0");
  loop.run_for(400ms);
  got = claim();
  REQUIRE(got.ok());
  CHECK(got->empty());
  alive->stop();
}

TEST_CASE("one worker at a time relays a partition", "[store][outbox]") {
  auto& server = testing::shared_redis();
  server.command({"FLUSHALL"});
  Loop loop;
  auto ca = connected_client(loop, client_options(server));
  auto cb = connected_client(loop, client_options(server));
  // Given an entry left behind
  SagaStore store(*ca, SagaStoreOptions{16, 3600, 0, 0});
  auto out = loop.await<ApplyOutcome>([&](auto cb2) { store.apply(created("ord_r", 1), cb2); });
  REQUIRE(out.ok());
  const int p = out->partition;
  // And two relays with a 100 ms min idle and a 1 s hold
  Outbox a(*ca, OutboxOptions{16, "worker-a", 100, 100, 1000, 0});
  Outbox b(*cb, OutboxOptions{16, "worker-b", 100, 100, 1000, 0});
  auto claim = [&](Outbox& o) {
    return loop.await<std::vector<OutboxEntry>>([&](auto done) { o.claim_stale(p, done); });
  };
  loop.run_for(150ms);
  // When A claims first, it gets the entry and holds the partition
  auto got = claim(a);
  REQUIRE(got.ok());
  CHECK(got->size() == 1);
  CHECK(server.command({"GET", Keyspace::outbox_relay_key(p)}) == "worker-a");
  // Then B gets nothing while A renews its hold, even after the entry's min idle again
  for (int i = 0; i < 3; ++i) {
    loop.run_for(200ms);
    got = claim(b);
    REQUIRE(got.ok());
    CHECK(got->empty());
    got = claim(a);  // A's renewal; it handed the entry out 200 ms ago: again now
    REQUIRE(got.ok());
    CHECK(got->size() == 1);
  }
  // When A keeps its hold but the entry is still there after min idle + the hold (A's
  // re-sends do not get it out), B gets it too
  loop.run_for(500ms);
  REQUIRE(claim(a).ok());
  got = claim(b);
  REQUIRE(got.ok());
  REQUIRE(got->size() == 1);
  CHECK((*got)[0].command.id == "ord_r:cmd0");
  CHECK(server.command({"GET", Keyspace::outbox_relay_key(p)}) == "worker-a");
  // When A stops (died), B takes the partition over once A's hold ran out
  loop.run_for(1100ms);
  got = claim(b);
  REQUIRE(got.ok());
  CHECK(server.command({"GET", Keyspace::outbox_relay_key(p)}) == "worker-b");
  ca->stop();
  cb->stop();
}

TEST_CASE("claiming a partition that was never written returns nothing", "[store][outbox]") {
  auto& server = testing::shared_redis();
  server.command({"FLUSHALL"});
  Loop loop;
  auto c = connected_client(loop, client_options(server));
  Outbox relay(*c, OutboxOptions{16, "w", 0, 100, 0});
  auto got = loop.await<std::vector<OutboxEntry>>([&](auto cb) { relay.claim_stale(5, cb); });
  REQUIRE(got.ok());
  CHECK(got->empty());
  c->stop();
}

TEST_CASE("a due deadline is claimed once among four claimers", "[store][deadlines]") {
  auto& server = testing::shared_redis();
  server.command({"FLUSHALL"});
  Loop loop;
  auto writer = connected_client(loop, client_options(server));
  SagaStore store(*writer, SagaStoreOptions{1, 3600, 0, 0});  // one partition: all in p 0

  // Given 50 orders due in the past, and 5 due far in the future
  for (int i = 0; i < 55; ++i) {
    auto req = created(fmt::format("ord_d{}", i), 0);
    req.deadline = i < 50 ? 1000 : 4102444800000;
    REQUIRE(loop.await<ApplyOutcome>([&](auto cb) { store.apply(req, cb); })->kind ==
            ApplyKind::applied);
  }
  // When four claimers, each on its own connection, claim concurrently in small batches
  std::vector<std::unique_ptr<RedisClient>> clients;
  std::vector<std::unique_ptr<Deadlines>> claimers;
  for (int i = 0; i < 4; ++i) {
    clients.push_back(connected_client(loop, client_options(server)));
    claimers.push_back(std::make_unique<Deadlines>(*clients.back()));
  }
  std::map<std::string, int> claimed;
  int calls = 0;
  int failures = 0;
  for (int round = 0; round < 10; ++round) {
    for (auto& d : claimers) {
      ++calls;
      d->claim_due(0, 3, 60000, [&](Result<DueDeadlines> r) {
        --calls;
        if (!r.ok()) {
          ++failures;
          return;
        }
        CHECK(r->now_ms > 1'600'000'000'000);
        for (const auto& o : r->orders) ++claimed[o.str()];
      });
    }
  }
  REQUIRE(loop.run_until([&] { return calls == 0; }));
  // Then every due order was claimed exactly once, and no future one
  CHECK(failures == 0);
  CHECK(claimed.size() == 50);
  for (const auto& [order, n] : claimed) {
    INFO(order);
    CHECK(n == 1);
  }
  // And the lease pushed them a minute ahead
  const auto score = std::stoll(server.command({"ZSCORE", Keyspace::deadlines_key(0), "ord_d0"}));
  CHECK(score > 1'600'000'000'000);
  for (auto& c : clients) c->stop();
  writer->stop();
}

TEST_CASE("a lease that ends makes the deadline due again", "[store][deadlines]") {
  auto& server = testing::shared_redis();
  server.command({"FLUSHALL"});
  Loop loop;
  auto c = connected_client(loop, client_options(server));
  SagaStore store(*c, SagaStoreOptions{1, 3600, 0, 0});
  Deadlines deadlines(*c);
  auto req = created("ord_l", 0);
  req.deadline = 1000;
  REQUIRE(loop.await<ApplyOutcome>([&](auto cb) { store.apply(req, cb); }).ok());
  auto claim = [&] {
    return loop.await<DueDeadlines>([&](auto cb) { deadlines.claim_due(0, 10, 200, cb); });
  };
  CHECK(claim()->orders.size() == 1);
  CHECK(claim()->orders.empty());  // leased
  loop.run_for(300ms);
  CHECK(claim()->orders.size() == 1);  // the claimer never applied: due again
  c->stop();
}

TEST_CASE("extend moves a deadline later, never earlier, and never creates one",
          "[store][deadlines]") {
  auto& server = testing::shared_redis();
  server.command({"FLUSHALL"});
  Loop loop;
  auto c = connected_client(loop, client_options(server));
  SagaStore store(*c, SagaStoreOptions{1, 3600, 0, 0});
  Deadlines deadlines(*c);
  // Given an order whose step is due at t = 5000
  auto req = created("ord_x", 0);
  req.deadline = 5000;
  REQUIRE(loop.await<ApplyOutcome>([&](auto cb) { store.apply(req, cb); }).ok());
  auto extend = [&](const std::string& order, Millis due) {
    auto slot = std::make_shared<std::optional<Status>>();
    deadlines.extend(0, OrderId{order}, due, [slot](Status s) { slot->emplace(std::move(s)); });
    REQUIRE(loop.run_until([&] { return slot->has_value(); }));
    CHECK(slot->value().ok());
  };
  auto score = [&](const std::string& order) {
    return server.command({"ZSCORE", Keyspace::deadlines_key(0), order});
  };
  // When it is extended to 9000, then "extended" back to 7000
  extend("ord_x", 9000);
  CHECK(score("ord_x") == "9000");
  extend("ord_x", 7000);
  // Then it stays at the later time
  CHECK(score("ord_x") == "9000");
  // And an order without a deadline (finished, or never started) does not get one
  extend("ord_none", 9000);
  CHECK(server.command({"ZCARD", Keyspace::deadlines_key(0)}) == "1");
  c->stop();
}
