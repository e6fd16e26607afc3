// Proves: partitioning is stable (a fixed function of the order id, not std::hash), spreads
// orders over all partitions, and every key of one order's script carries the same hash tag.
#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "store/keyspace.hpp"

using namespace sagaflow;
using namespace sagaflow::store;
using namespace std::string_literals;

namespace {
// The Redis Cluster hash tag of a key: the text between the first '{' and the next '}'.
std::string hash_tag(const std::string& key) {
  const auto open = key.find('{');
  const auto close = key.find('}', open + 1);
  REQUIRE(open != std::string::npos);
  REQUIRE(close != std::string::npos);
  REQUIRE(close > open + 1);
  return key.substr(open + 1, close - open - 1);
}
}  // namespace

TEST_CASE("fnv1a64 matches the published FNV-1a test vectors", "[store][keyspace]") {
  STATIC_REQUIRE(fnv1a64("") == 0xcbf29ce484222325ULL);
  STATIC_REQUIRE(fnv1a64("a") == 0xaf63dc4c8601ec8cULL);
  STATIC_REQUIRE(fnv1a64("foobar") == 0x85944171f73967e8ULL);
}

TEST_CASE("an order's partition is stable and in range", "[store][keyspace]") {
  // Given a keyspace of 16 partitions
  Keyspace ks(16);
  // Then the partition is a fixed function of the id (pinned values: changing the hash would
  // move every saga of a running system to another key)
  CHECK(ks.partition_of(OrderId{"ord_456"s}) == static_cast<int>(fnv1a64("ord_456") % 16));
  CHECK(ks.partition_of(OrderId{"ord_456"s}) == ks.partition_of(OrderId{std::string("ord_456")}));
  // And every partition gets orders
  std::vector<int> counts(16, 0);
  for (int i = 0; i < 16000; ++i) {
    const int p = ks.partition_of(OrderId{fmt::format("ord_{}", i)});
    REQUIRE(p >= 0);
    REQUIRE(p < 16);
    ++counts[static_cast<std::size_t>(p)];
  }
  for (int c : counts) CHECK(c > 800);  // ~1000 each
}

TEST_CASE("partitions below one are treated as one", "[store][keyspace]") {
  CHECK(Keyspace(0).partitions() == 1);
  CHECK(Keyspace(-3).partition_of(OrderId{"x"s}) == 0);
}

TEST_CASE("keys of one apply share the partition's hash tag", "[store][keyspace]") {
  // Given an order and an event of that order
  Keyspace ks(16);
  const OrderId order{"ord_456"s};
  const int p = ks.partition_of(order);
  // When the apply script's keys are built
  const std::vector<std::string> keys{
      Keyspace::saga_key(p, order), Keyspace::dedup_key(p, EventId{"evt_123"s}),
      Keyspace::outbox_key(p), Keyspace::deadlines_key(p), Keyspace::stats_key(p)};
  // Then they all hash to the same cluster slot
  std::set<std::string> tags;
  for (const auto& k : keys) tags.insert(hash_tag(k));
  CHECK(tags == std::set<std::string>{std::to_string(p)});
  // And the names are the documented ones
  CHECK(Keyspace::saga_key(3, order) == "sagaflow:{3}:saga:ord_456");
  CHECK(Keyspace::dedup_key(3, EventId{"evt_1"s}) == "sagaflow:{3}:dedup:evt_1");
  CHECK(Keyspace::outbox_key(3) == "sagaflow:{3}:outbox");
  CHECK(Keyspace::deadlines_key(3) == "sagaflow:{3}:deadlines");
  CHECK(Keyspace::stats_key(3) == "sagaflow:{3}:stats");
  CHECK(Keyspace::rate_key(StoreId{"store_789"s}) == "sagaflow:rl:{store_789}");
  CHECK(std::string(kStorePlansKey) == "sagaflow:store_plans");
}

TEST_CASE("key names are the documented ones (store/README.md, Keyspace)", "[keyspace]") {
  const OrderId order(std::string("ord_1"));
  CHECK(Keyspace::saga_key(3, order) == "sagaflow:{3}:saga:ord_1");
  CHECK(Keyspace::dedup_key(12, EventId(std::string("evt_1"))) == "sagaflow:{12}:dedup:evt_1");
  CHECK(Keyspace::outbox_key(0) == "sagaflow:{0}:outbox");
  CHECK(Keyspace::outbox_relay_key(7) == "sagaflow:{7}:outbox_relay");
  CHECK(Keyspace::deadlines_key(15) == "sagaflow:{15}:deadlines");
  CHECK(Keyspace::stats_key(1) == "sagaflow:{1}:stats");
  CHECK(Keyspace::parked_key(2, StoreId(std::string("s1"))) == "sagaflow:{2}:parked:s1");
  CHECK(Keyspace::parked_stores_key(2) == "sagaflow:{2}:parked_stores");
  CHECK(Keyspace::parked_leases_key(2) == "sagaflow:{2}:parked_leases");
  CHECK(Keyspace::status_index_key(4, "running") == "sagaflow:{4}:by_status:running");
  CHECK(Keyspace::reason_index_key(4, "timeout:payment") ==
        "sagaflow:{4}:by_reason:timeout:payment");
  CHECK(Keyspace::live_reason_index_key(4, "x") == "sagaflow:{4}:by_reason_live:x");
  CHECK(Keyspace::rate_key(StoreId(std::string("s1"))) == "sagaflow:rl:{s1}");
  CHECK(Keyspace::saga_key(123456, order) == "sagaflow:{123456}:saga:ord_1");
  // The parts a writer encodes a key from (SagaStore) make the same names
  CHECK(Keyspace::partition_head(4) == "sagaflow:{4}:");
  const std::string head = Keyspace::partition_head(4);
  CHECK(head + std::string(Keyspace::kSagaName) + "ord_1" == Keyspace::saga_key(4, order));
  CHECK(head + std::string(Keyspace::kDedupName) + "e1" ==
        Keyspace::dedup_key(4, EventId(std::string("e1"))));
  CHECK(head + std::string(Keyspace::kParkedName) + "s1" ==
        Keyspace::parked_key(4, StoreId(std::string("s1"))));
  CHECK(head + std::string(Keyspace::kStatusIndexName) + "running" ==
        Keyspace::status_index_key(4, "running"));
  CHECK(head + std::string(Keyspace::kReasonIndexName) == Keyspace::reason_index_key(4, ""));
  CHECK(head + std::string(Keyspace::kLiveReasonIndexName) + "x" ==
        Keyspace::live_reason_index_key(4, "x"));
  CHECK(std::string(Keyspace::kRateHead) + "s1" + std::string(Keyspace::kRateTail) ==
        Keyspace::rate_key(StoreId(std::string("s1"))));
}
