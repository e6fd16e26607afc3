// Parked starts on a real Redis: apply.lua keeps the per-store index with the status (park,
// start, cancel), counts sum over partitions, the oldest start across partitions is leased
// first, a live lease hides a start from other workers, and an expired one is taken over.
#include <catch2/catch.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "loop.hpp"
#include "store/parking.hpp"
#include "store/saga_store.hpp"
#include "support/servers.hpp"

using namespace sagaflow;
using namespace sagaflow::store;
using namespace sagaflow::store::test;

namespace {

ApplyRequest parked(const std::string& order, const std::string& store, Millis at) {
  ApplyRequest r;
  r.order_id = OrderId{order};
  r.event_id = EventId{"evt_" + order};
  r.expected_version = 0;
  r.new_state = "{}";
  r.new_status = "parked";
  r.store_id = StoreId{store};
  r.parked_at = at;
  return r;
}

ApplyRequest moved_on(const std::string& order, const std::string& store, std::int64_t version,
                      const std::string& status) {
  ApplyRequest r;
  r.order_id = OrderId{order};
  r.expected_version = version;
  r.new_state = "{}";
  r.new_status = status;
  r.store_id = StoreId{store};
  return r;
}

}  // namespace

TEST_CASE("parked starts: index, counts, oldest first, leases", "[store][parking]") {
  auto& server = testing::shared_redis();
  server.command({"FLUSHALL"});
  Loop loop;
  auto c = connected_client(loop, client_options(server));
  SagaStoreOptions o;
  o.partitions = 16;
  o.dedup_ttl_s = 3600;
  SagaStore sagas(*c, o);
  Parking parking(*c, 16);
  auto apply = [&](const ApplyRequest& r) {
    return loop.await<ApplyOutcome>([&](auto cb) { sagas.apply(r, std::move(cb)); });
  };
  auto counts = [&] {
    return loop.await<std::map<std::string, std::int64_t>>(
        [&](auto cb) { parking.counts(std::move(cb)); });
  };
  auto claim_n = [&](const std::string& store, int n, Millis lease) {
    return loop.await<std::vector<ParkedStart>>(
        [&](auto cb) { parking.claim_oldest(StoreId{store}, n, lease, std::move(cb)); });
  };
  auto claim = [&](const std::string& store, Millis lease) -> Result<std::optional<ParkedStart>> {
    auto r = claim_n(store, 1, lease);
    if (!r) return std::move(r).error();
    if (r->empty()) return std::optional<ParkedStart>{};
    REQUIRE(r->size() == 1);
    return std::optional<ParkedStart>(r->front());
  };

  // Given 30 starts of store A parked at times 1000 + i (spread over partitions) and 2 of B
  for (int i = 0; i < 30; ++i) {
    const auto r = apply(parked("a" + std::to_string(i), "A", 1000 + (29 - i)));
    REQUIRE(r.ok());
    REQUIRE(r->kind == ApplyKind::applied);
  }
  REQUIRE(apply(parked("b0", "B", 5))->kind == ApplyKind::applied);
  REQUIRE(apply(parked("b1", "B", 6))->kind == ApplyKind::applied);
  // A redelivered start parks once
  CHECK(apply(parked("b1", "B", 7))->kind == ApplyKind::duplicate);
  auto n = counts();
  REQUIRE(n.ok());
  CHECK(n.value() == std::map<std::string, std::int64_t>{{"A", 30}, {"B", 2}});

  // The oldest start of A is a29 (parked at 1000); its lease hides it, so the next is a28
  auto first = claim("A", 60000);
  REQUIRE(first.ok());
  REQUIRE(first.value());
  CHECK(first.value()->order_id.view() == "a29");
  auto second = claim("A", 60000);
  REQUIRE(second.value());
  CHECK(second.value()->order_id.view() == "a28");
  // A batch takes the next oldest across partitions, in the order they were parked
  auto batch = claim_n("A", 10, 60000);
  REQUIRE(batch.ok());
  REQUIRE(batch->size() == 10);
  for (int i = 0; i < 10; ++i)
    CHECK((*batch)[static_cast<std::size_t>(i)].order_id.str() == "a" + std::to_string(27 - i));
  // Given back (the bucket granted fewer), they are first in line again
  std::vector<OrderId> back;
  for (const auto& p : *batch) back.push_back(p.order_id);
  REQUIRE(loop.await<bool>([&](auto cb) {
                parking.release(back, [cb](Status st) {
                  if (st) return cb(true);
                  cb(st.error());
                });
              })
              .ok());
  auto next = claim("A", 60000);
  REQUIRE(next.value());
  CHECK(next.value()->order_id.view() == "a27");
  REQUIRE(loop.await<bool>([&](auto cb) {
                parking.release({OrderId{std::string("a27")}}, [cb](Status st) {
                  if (st) return cb(true);
                  cb(st.error());
                });
              })
              .ok());

  // Starting a29 (parked -> running) frees its place and its lease
  REQUIRE(apply(moved_on("a29", "A", 1, "running"))->kind == ApplyKind::applied);
  // Cancelling a0 (parked -> failed) too
  REQUIRE(apply(moved_on("a0", "A", 1, "failed"))->kind == ApplyKind::applied);
  n = counts();
  CHECK(n.value() == std::map<std::string, std::int64_t>{{"A", 28}, {"B", 2}});
  const std::string leases = "sagaflow:{" +
                             std::to_string(sagas.partition_of(OrderId{std::string("a29")})) +
                             "}:parked_leases";
  CHECK(server.command({"ZREM", leases, "a29"}) == "0");  // no lease left behind

  // A lease that runs out (its worker died) is taken over; one given back is at once
  auto b = claim("B", 60000);
  REQUIRE(b.value());
  CHECK(b.value()->order_id.view() == "b0");
  auto b1 = claim("B", 60000);
  REQUIRE(b1.value());
  CHECK(b1.value()->order_id.view() == "b1");
  CHECK_FALSE(claim("B", 60000).value());  // both held
  const std::string b0_leases = "sagaflow:{" +
                                std::to_string(sagas.partition_of(OrderId{std::string("b0")})) +
                                "}:parked_leases";
  server.command({"ZADD", b0_leases, "1", "b0"});  // its lease ran out long ago
  auto again = claim("B", 60000);
  REQUIRE(again.value());
  CHECK(again.value()->order_id.view() == "b0");
  REQUIRE(loop.await<bool>([&](auto cb) {
                parking.release({OrderId{std::string("b1")}}, [cb](Status st) {
                  if (st) return cb(true);
                  cb(st.error());
                });
              })
              .ok());
  auto given_back = claim("B", 60000);
  REQUIRE(given_back.value());
  CHECK(given_back.value()->order_id.view() == "b1");

  // The last start of B frees the store's entry altogether
  REQUIRE(apply(moved_on("b0", "B", 1, "running"))->kind == ApplyKind::applied);
  REQUIRE(apply(moved_on("b1", "B", 1, "running"))->kind == ApplyKind::applied);
  n = counts();
  CHECK(n.value() == std::map<std::string, std::int64_t>{{"A", 28}});
  CHECK_FALSE(claim("B", 50).value());
}
