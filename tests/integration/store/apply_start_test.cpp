// Proves saga starts in apply.lua against a real Redis: a start is deduplicated by the record it
// creates (no dedup mark), refused as a conflict when the order has another saga, admitted
// under its store's plan inside the same call (over the plan: refused, nothing written; then
// committed as parked, indexed as parked), and a record written before created_by existed (the
// previous format, with its dedup mark) is still found duplicate. The batch's shared writes are
// folded: a call of many starts runs a few commands per start, counted from INFO commandstats.
#include <catch2/catch.hpp>

#include <map>
#include <string>
#include <vector>

#include "loop.hpp"
#include "store/saga_store.hpp"
#include "support/servers.hpp"

using namespace sagaflow;
using namespace sagaflow::store;
using namespace sagaflow::store::test;
using namespace std::chrono_literals;

namespace {

ApplyRequest start(const std::string& order, const std::string& event, SagaStart::Admit admit,
                   GcraParams plan = {}) {
  ApplyRequest r;
  r.order_id = OrderId{order};
  r.event_id = EventId{event};
  r.store_id = StoreId(std::string("s1"));
  r.new_state = "{\"started\":\"" + event + "\"}";
  r.new_status = admit == SagaStart::Admit::park ? "parked" : "running";
  if (admit != SagaStart::Admit::park) {
    r.commands.push_back(
        {order + ":inventory.reserve", "sagaflow.commands", "inventory.reserve", "{}"});
    r.deadline = 4'000'000'000'000;
  }
  r.parked_at = 1'000;
  r.updated_at = 2'000;
  SagaStart& s = r.start.emplace();
  s.admit = admit;
  s.plan = plan;
  return r;
}

SagaStoreOptions options() {
  SagaStoreOptions o;
  o.partitions = 16;
  o.dedup_ttl_s = 3600;
  return o;
}

std::string field(testing::RedisServer& server, SagaStore& store, const std::string& order,
                  const std::string& name) {
  const OrderId id{order};
  return server.command({"HGET", Keyspace::saga_key(store.partition_of(id), id), name});
}

// The shared Redis, flushed, with a connected client and a store on a loop; the client is
// stopped at the end whatever the test's outcome.
struct Fixture {
  explicit Fixture(SagaStoreOptions o = options())
      : server(flushed(testing::shared_redis())),
        client(connected_client(loop, client_options(server))),
        store(*client, o) {}
  ~Fixture() { client->stop(); }
  Fixture(const Fixture&) = delete;
  Fixture& operator=(const Fixture&) = delete;

  Result<ApplyOutcome> apply(const ApplyRequest& r) {
    return loop.await<ApplyOutcome>([&](auto done) { store.apply(r, std::move(done)); });
  }
  // Redis' clock (TIME: seconds, then microseconds), in ms.
  Millis redis_now_ms() {
    const std::string time = server.command({"TIME"});
    const std::size_t nl = time.find('\n');
    return std::stoll(time.substr(0, nl)) * 1000 + std::stoll(time.substr(nl + 1)) / 1000;
  }
  static testing::RedisServer& flushed(testing::RedisServer& s) {
    s.command({"FLUSHALL"});
    return s;
  }

  testing::RedisServer& server;
  Loop loop;
  std::unique_ptr<RedisClient> client;
  SagaStore store;
};

// One partition: one outbox, one deadline set, one index, the most folding.
SagaStoreOptions one_partition() {
  SagaStoreOptions o = options();
  o.partitions = 1;
  o.max_batch = 64;
  return o;
}
struct OnePartition : Fixture {
  OnePartition() : Fixture(one_partition()) {}
};

}  // namespace

TEST_CASE_METHOD(Fixture,
                 "a start is deduplicated by its record, and another saga there is a conflict",
                 "[store][start]") {
  // When a start is applied
  const auto first = apply(start("o1", "evt_1", SagaStart::Admit::given));
  REQUIRE(first.ok());
  CHECK(first->kind == ApplyKind::applied);
  CHECK(first->stream_ids.size() == 1);
  // Then its record names the event that created it, and no dedup mark was written
  CHECK(field(server, store, "o1", "created_by") == "evt_1");
  const OrderId o1(std::string("o1"));
  CHECK(server.command({"EXISTS", Keyspace::dedup_key(store.partition_of(o1),
                                                      EventId(std::string("evt_1")))}) == "0");
  // And the same event again is a duplicate, another order.created of the order a conflict
  const auto again = apply(start("o1", "evt_1", SagaStart::Admit::given));
  REQUIRE(again.ok());
  CHECK(again->kind == ApplyKind::duplicate);
  CHECK(again->version == 1);
  const auto other = apply(start("o1", "evt_other", SagaStart::Admit::given));
  REQUIRE(other.ok());
  CHECK(other->kind == ApplyKind::conflict);
  CHECK(field(server, store, "o1", "version") == "1");
  CHECK(server.command({"XLEN", Keyspace::outbox_key(store.partition_of(o1))}) == "1");

  // And a record of the previous format (no created_by; the start's dedup mark) is a
  // duplicate too: records written before the upgrade keep their marks
  const OrderId o2(std::string("o2"));
  const int p2 = store.partition_of(o2);
  server.command(
      {"HSET", Keyspace::saga_key(p2, o2), "version", "3", "state", "{}", "status", "running"});
  server.command({"SET", Keyspace::dedup_key(p2, EventId(std::string("evt_2"))), "1", "EX", "60"});
  const auto old = apply(start("o2", "evt_2", SagaStart::Admit::given));
  REQUIRE(old.ok());
  CHECK(old->kind == ApplyKind::duplicate);
  CHECK(old->version == 3);
}

TEST_CASE_METHOD(
    Fixture, "starts admitted in the call: the plan's burst starts, the rest is refused unwritten",
    "[store][start]") {
  // Given a plan of 1 per hour with a burst of 3, and 10 starts of its store in one loop turn
  const GcraParams plan{3'600'000'000, 2 * 3'600'000'000LL};
  std::map<std::string, Result<ApplyOutcome>> out;
  for (int i = 0; i < 10; ++i) {
    const std::string order = "g" + std::to_string(i);
    store.apply(start(order, "evt_" + order, SagaStart::Admit::gcra, plan),
                [&out, order](Result<ApplyOutcome> r) { out.emplace(order, std::move(r)); });
  }
  REQUIRE(loop.run_until([&] { return out.size() == 10; }));
  CHECK(store.stats().calls == 1);

  // Then the first 3 started (a command each); the other 7 are limited and wrote nothing
  for (int i = 0; i < 10; ++i) {
    const std::string order = "g" + std::to_string(i);
    CAPTURE(order);
    const auto& r = out.at(order);
    REQUIRE(r.ok());
    CHECK(r->kind == (i < 3 ? ApplyKind::applied : ApplyKind::limited));
    CHECK(r->stream_ids.size() == (i < 3 ? 1U : 0U));
    CHECK(field(server, store, order, "status") == (i < 3 ? "running" : "(nil)"));
  }
  // When the 7 are committed as parked (as the worker does)
  int parked_answers = 0;
  for (int i = 3; i < 10; ++i) {
    const std::string order = "g" + std::to_string(i);
    store.apply(start(order, "evt_" + order, SagaStart::Admit::park),
                [&parked_answers](Result<ApplyOutcome> r) {
                  CHECK(r.ok());
                  CHECK(r->kind == ApplyKind::applied);
                  ++parked_answers;
                });
  }
  REQUIRE(loop.run_until([&] { return parked_answers == 7; }));
  // Then they are in the parked-starts index, the counts and the console's index
  long parked = 0;
  long parked_listed = 0;
  long running_listed = 0;
  long deadlines = 0;
  for (int p = 0; p < 16; ++p) {
    const std::string count = server.command({"HGET", Keyspace::parked_stores_key(p), "s1"});
    if (count != "(nil)") parked += std::stol(count);
    parked_listed += std::stol(server.command({"ZCARD", Keyspace::status_index_key(p, "parked")}));
    running_listed +=
        std::stol(server.command({"ZCARD", Keyspace::status_index_key(p, "running")}));
    deadlines += std::stol(server.command({"ZCARD", Keyspace::deadlines_key(p)}));
  }
  CHECK(parked == 7);
  CHECK(parked_listed == 7);
  CHECK(running_listed == 3);
  CHECK(deadlines == 3);
  // And the bucket holds the 3 tokens taken, so the next start is refused as well
  CHECK(server.command({"PTTL", Keyspace::rate_key(StoreId(std::string("s1")))}) != "-2");
  const auto next = apply(start("g10", "evt_g10", SagaStart::Admit::gcra, plan));
  REQUIRE(next.ok());
  CHECK(next->kind == ApplyKind::limited);
}

TEST_CASE_METHOD(OnePartition,
                 "a call of many starts folds its shared writes: a few commands per start",
                 "[store][start][batch]") {
  server.command({"CONFIG", "RESETSTAT"});

  int answered = 0;
  for (int i = 0; i < 64; ++i) {
    const std::string order = "f" + std::to_string(i);
    store.apply(start(order, "evt_" + order, SagaStart::Admit::gcra, GcraParams{1, 1'000'000}),
                [&answered](Result<ApplyOutcome> r) {
                  CHECK(r.ok());
                  CHECK(r->kind == ApplyKind::applied);
                  ++answered;
                });
  }
  REQUIRE(loop.run_until([&] { return answered == 64; }));
  REQUIRE(store.stats().calls == 1);
  const auto calls = server.command_calls();
  // Per start: its record read and written and its command added...
  CHECK(calls.at("hmget") == 64);
  CHECK(calls.at("hset") == 64);
  CHECK(calls.at("xadd") == 64);
  // ...and, for all 64 together: one deadline and one index ZADD, one counter, one bucket
  // read and write, one TIME; no dedup mark
  CHECK(calls.at("zadd") == 2);
  CHECK(calls.at("hincrby") == 1);
  CHECK(calls.at("get") == 1);
  CHECK(calls.at("set") == 1);
  CHECK(calls.at("time") == 1);
  CHECK(calls.count("exists") == 0);
}

TEST_CASE_METHOD(Fixture, "a commit that runs late still gives its step the whole timeout",
                 "[store][saga]") {
  // Given a step taken 10 s ago with a 1.5 s timeout, committed only now (Redis was paused)
  const Millis now = redis_now_ms();
  ApplyRequest r = start("late", "evt_late", SagaStart::Admit::given);
  r.updated_at = now - 10'000;
  r.deadline = r.updated_at + 1'500;
  const auto out = apply(r);
  REQUIRE(out.ok());
  // Then the deadline counts from the commit, on Redis' clock: not already past
  const OrderId id(std::string("late"));
  const Millis due = std::stoll(
      server.command({"ZSCORE", Keyspace::deadlines_key(store.partition_of(id)), "late"}));
  CHECK(due >= now + 1'500);
  CHECK(due <= now + 1'500 + 2'000);
}

TEST_CASE_METHOD(Fixture, "a record's order facts are written once and kept by later changes",
                 "[store][saga]") {
  // When a start writes its order facts, and the next step writes none
  ApplyRequest first = start("o1", "evt_1", SagaStart::Admit::given);
  first.order = R"({"customer_id":"c1","total":"9.99","currency":"EUR","items":[]})";
  REQUIRE(apply(first).ok());
  ApplyRequest next;
  next.order_id = OrderId(std::string("o1"));
  next.event_id = EventId(std::string("evt_2"));
  next.expected_version = 1;
  next.new_state = "{\"step\":2}";
  next.new_status = "running";
  next.old_status = "running";
  next.store_id = StoreId(std::string("s1"));
  const auto second = apply(next);
  REQUIRE(second.ok());
  CHECK(second->kind == ApplyKind::applied);
  // Then the record has the new state and still the order facts; a load returns both
  const auto loaded = loop.await<SagaRecord>(
      [&](auto done) { store.load(OrderId(std::string("o1")), std::move(done)); });
  REQUIRE(loaded.ok());
  CHECK(loaded->version == 2);
  CHECK(loaded->state == "{\"step\":2}");
  CHECK(loaded->order == first.order);
}

TEST_CASE_METHOD(Fixture, "a start refused as a duplicate or a conflict takes no token",
                 "[store][start]") {
  const GcraParams plan{3'600'000'000, 0};  // one start per hour
  const auto first = apply(start("t1", "evt_t1", SagaStart::Admit::given));
  REQUIRE(first.ok());
  // When the same event and another order.created come again, admitted in the call
  const auto dup = apply(start("t1", "evt_t1", SagaStart::Admit::gcra, plan));
  const auto other = apply(start("t1", "evt_t1b", SagaStart::Admit::gcra, plan));
  REQUIRE(dup.ok());
  REQUIRE(other.ok());
  CHECK(dup->kind == ApplyKind::duplicate);
  CHECK(other->kind == ApplyKind::conflict);
  // Then the store's bucket was never touched: the next real start still gets its token
  CHECK(server.command({"EXISTS", Keyspace::rate_key(StoreId(std::string("s1")))}) == "0");
  const auto real = apply(start("t2", "evt_t2", SagaStart::Admit::gcra, plan));
  REQUIRE(real.ok());
  CHECK(real->kind == ApplyKind::applied);
}

TEST_CASE_METHOD(Fixture, "only a late call moves a deadline, and only one its change counted",
                 "[store][saga]") {
  const Millis now = redis_now_ms();
  auto due_of = [&](const ApplyRequest& r) {
    REQUIRE(apply(r).ok());
    const int p = store.partition_of(r.order_id);
    return std::stoll(server.command({"ZSCORE", Keyspace::deadlines_key(p), r.order_id.str()}));
  };
  // A call on time keeps its deadline exactly
  ApplyRequest on_time = start("d1", "evt_d1", SagaStart::Admit::given);
  on_time.updated_at = now;
  on_time.deadline = now + 1'500;
  CHECK(due_of(on_time) == now + 1'500);
  // A deadline carried over from an earlier step is not moved, however late the call
  ApplyRequest carried = start("d2", "evt_d2", SagaStart::Admit::given);
  carried.updated_at = now - 10'000;
  carried.deadline = now - 8'500;
  carried.fresh_deadline = false;
  CHECK(due_of(carried) == now - 8'500);
}
