// Proves: one apply is one atomic step (record, outbox, deadline, counters, dedup mark), a
// duplicate event id changes nothing, the version compare-and-set lets exactly one of two
// racing writers win (the loser re-reads and re-applies), and finished records expire.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include <fmt/format.h>

#include "loop.hpp"
#include "store/saga_store.hpp"
#include "support/servers.hpp"

using namespace sagaflow;
using namespace sagaflow::store;
using namespace sagaflow::store::test;
using namespace std::string_literals;

namespace {

ApplyRequest request(const std::string& order, const std::string& event, std::int64_t expected,
                     const std::string& state, const std::string& status) {
  ApplyRequest r;
  r.order_id = OrderId{order};
  r.event_id = EventId{event};
  r.expected_version = expected;
  r.new_state = state;
  r.new_status = status;
  return r;
}

Result<ApplyOutcome> apply(Loop& loop, SagaStore& store, const ApplyRequest& req) {
  return loop.await<ApplyOutcome>([&](auto cb) { store.apply(req, std::move(cb)); });
}

Result<SagaRecord> load(Loop& loop, SagaStore& store, const std::string& order) {
  return loop.await<SagaRecord>([&](auto cb) { store.load(OrderId{order}, std::move(cb)); });
}

SagaStoreOptions options() {
  SagaStoreOptions o;
  o.partitions = 16;
  o.dedup_ttl_s = 3600;
  return o;
}

}  // namespace

TEST_CASE("apply writes record, outbox, deadline and counters at once", "[store][saga]") {
  auto& server = testing::shared_redis();
  server.command({"FLUSHALL"});
  Loop loop;
  auto c = connected_client(loop, client_options(server));
  SagaStore store(*c, options());

  // Given no saga for the order
  auto rec = load(loop, store, "ord_1");
  REQUIRE(rec.ok());
  CHECK(rec->version == 0);

  // When order.created is applied with one command and a deadline
  auto req = request("ord_1", "evt_1", 0, "{\"s\":1}", "reserving");
  req.commands.push_back({"ord_1:inventory.reserve", "sagaflow.commands", "inventory.reserve",
                          "{\"id\":\"ord_1:inventory.reserve\"}"});
  req.deadline = 4102444800000;  // 2100-01-01
  auto out = apply(loop, store, req);

  // Then it is applied as version 1 with one outbox entry
  REQUIRE(out.ok());
  CHECK(out->kind == ApplyKind::applied);
  CHECK(out->version == 1);
  CHECK(out->partition == store.partition_of(OrderId{"ord_1"s}));
  REQUIRE(out->stream_ids.size() == 1);
  const int p = out->partition;

  rec = load(loop, store, "ord_1");
  REQUIRE(rec.ok());
  CHECK(rec->version == 1);
  CHECK(rec->state == "{\"s\":1}");
  CHECK(rec->status == "reserving");
  CHECK(server.command({"ZSCORE", Keyspace::deadlines_key(p), "ord_1"}) == "4102444800000");
  CHECK(server.command({"HGET", Keyspace::stats_key(p), "reserving"}) == "1");
  CHECK(server.command({"XLEN", Keyspace::outbox_key(p)}) == "1");
  // A plain stream: no consumer group to read the entry into (its id is the bookkeeping)
  CHECK(server.command({"XINFO", "GROUPS", Keyspace::outbox_key(p)}).empty());
  CHECK(server.command({"XRANGE", Keyspace::outbox_key(p), "-", "+"}).find("inventory.reserve") !=
        std::string::npos);
  CHECK(server.command({"TTL", Keyspace::dedup_key(p, EventId{"evt_1"s})}) != "-2");
  CHECK(server.command({"TTL", Keyspace::saga_key(p, OrderId{"ord_1"s})}) == "-1");

  // When the next step moves the status and clears the deadline
  auto next = request("ord_1", "evt_2", 1, "{\"s\":2}", "charging");
  out = apply(loop, store, next);
  REQUIRE(out.ok());
  CHECK(out->version == 2);
  CHECK(out->stream_ids.empty());
  CHECK(server.command({"ZSCORE", Keyspace::deadlines_key(p), "ord_1"}) == "(nil)");
  CHECK(server.command({"HGET", Keyspace::stats_key(p), "reserving"}) == "0");
  CHECK(server.command({"HGET", Keyspace::stats_key(p), "charging"}) == "1");

  auto counts = loop.await<std::map<std::string, std::int64_t>>(
      [&](auto cb) { store.status_counts(std::move(cb)); });
  REQUIRE(counts.ok());
  CHECK(counts.value()["charging"] == 1);
  c->stop();
}

TEST_CASE("a duplicate event id is refused and changes nothing", "[store][saga]") {
  auto& server = testing::shared_redis();
  server.command({"FLUSHALL"});
  Loop loop;
  auto c = connected_client(loop, client_options(server));
  SagaStore store(*c, options());

  REQUIRE(apply(loop, store, request("ord_2", "evt_a", 0, "s1", "reserving"))->kind ==
          ApplyKind::applied);
  // Given the same event id delivered again (even with a matching version)
  auto out = apply(loop, store, request("ord_2", "evt_a", 1, "s2", "charging"));
  // Then it is a duplicate and the record is unchanged
  REQUIRE(out.ok());
  CHECK(out->kind == ApplyKind::duplicate);
  CHECK(out->version == 1);
  auto rec = load(loop, store, "ord_2");
  CHECK(rec->state == "s1");
  CHECK(rec->status == "reserving");
  c->stop();
}

TEST_CASE("two writers race on one saga: exactly one wins", "[store][saga]") {
  auto& server = testing::shared_redis();
  server.command({"FLUSHALL"});
  Loop loop;
  auto ca = connected_client(loop, client_options(server));
  auto cb = connected_client(loop, client_options(server));
  SagaStore a(*ca, options());
  SagaStore b(*cb, options());
  REQUIRE(apply(loop, a, request("ord_3", "evt_0", 0, "s1", "reserving"))->kind ==
          ApplyKind::applied);

  for (int round = 0; round < 20; ++round) {
    // Given both writers loaded the same version
    const auto v = load(loop, a, "ord_3")->version;
    // When both apply a different event against it, concurrently
    std::optional<Result<ApplyOutcome>> ra, rb;
    a.apply(request("ord_3", fmt::format("evt_a{}", round), v, "a", "s"),
            [&](Result<ApplyOutcome> r) { ra.emplace(std::move(r)); });
    b.apply(request("ord_3", fmt::format("evt_b{}", round), v, "b", "s"),
            [&](Result<ApplyOutcome> r) { rb.emplace(std::move(r)); });
    REQUIRE(loop.run_until([&] { return ra && rb; }));
    REQUIRE(ra->ok());
    REQUIRE(rb->ok());
    // Then exactly one is applied, the other sees a conflict with the new version
    const bool a_won = (*ra)->kind == ApplyKind::applied;
    const bool b_won = (*rb)->kind == ApplyKind::applied;
    REQUIRE(a_won != b_won);
    SagaStore& loser = a_won ? b : a;
    const auto& lost = a_won ? **rb : **ra;
    CHECK(lost.kind == ApplyKind::conflict);
    CHECK(lost.version == v + 1);
    // And the loser re-reads and re-applies on top
    const auto fresh = load(loop, loser, "ord_3");
    REQUIRE(fresh->version == v + 1);
    auto again = apply(loop, loser,
                       request("ord_3", fmt::format("evt_{}{}", a_won ? 'b' : 'a', round),
                               fresh->version, "merged", "s"));
    REQUIRE(again.ok());
    CHECK(again->kind == ApplyKind::applied);
    CHECK(again->version == v + 2);
  }
  CHECK(load(loop, a, "ord_3")->version == 41);
  ca->stop();
  cb->stop();
}

TEST_CASE("a finished saga's record expires no sooner than the dedup TTL", "[store][saga]") {
  auto& server = testing::shared_redis();
  server.command({"FLUSHALL"});
  Loop loop;
  auto c = connected_client(loop, client_options(server));
  auto opts = options();
  opts.dedup_ttl_s = 600;
  opts.finished_ttl_s = 60;  // below the dedup TTL: raised to it
  SagaStore store(*c, opts);
  REQUIRE(apply(loop, store, request("ord_4", "e1", 0, "s", "charging"))->kind ==
          ApplyKind::applied);
  auto fin = request("ord_4", "e2", 1, "done", "confirmed");
  fin.finished = true;
  REQUIRE(apply(loop, store, fin)->kind == ApplyKind::applied);
  const int p = store.partition_of(OrderId{"ord_4"s});
  const auto ttl = std::stoll(server.command({"TTL", Keyspace::saga_key(p, OrderId{"ord_4"s})}));
  CHECK(ttl > 590);
  CHECK(ttl <= 600);
  CHECK(server.command({"HGET", Keyspace::stats_key(p), "confirmed"}) == "1");
  CHECK(server.command({"HGET", Keyspace::stats_key(p), "charging"}) == "0");
  c->stop();
}
