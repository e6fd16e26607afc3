#include "store/keyspace.hpp"

#include <charconv>

namespace sagaflow::store {

namespace {

// "sagaflow:{<p>}:<name><tail>" in one allocation (these are built for every apply).
std::string partition_key(int p, std::string_view name, std::string_view tail = {}) {
  constexpr std::string_view kHead = "sagaflow:{";
  char digits[16];
  const auto end = std::to_chars(digits, digits + sizeof digits, p).ptr;
  std::string key;
  key.reserve(kHead.size() + static_cast<std::size_t>(end - digits) + 2 + name.size() +
              tail.size());
  key.append(kHead).append(digits, end).append("}:").append(name).append(tail);
  return key;
}

}  // namespace

std::string Keyspace::partition_head(int p) {
  return partition_key(p, {});
}

std::string Keyspace::saga_key(int p, const OrderId& order) {
  return partition_key(p, kSagaName, order.view());
}
std::string Keyspace::dedup_key(int p, const EventId& event) {
  return partition_key(p, kDedupName, event.view());
}
std::string Keyspace::outbox_key(int p) {
  return partition_key(p, "outbox");
}
std::string Keyspace::outbox_relay_key(int p) {
  return partition_key(p, "outbox_relay");
}
std::string Keyspace::deadlines_key(int p) {
  return partition_key(p, "deadlines");
}
std::string Keyspace::stats_key(int p) {
  return partition_key(p, "stats");
}
std::string Keyspace::parked_key(int p, const StoreId& store) {
  return partition_key(p, kParkedName, store.view());
}
std::string Keyspace::parked_stores_key(int p) {
  return partition_key(p, "parked_stores");
}
std::string Keyspace::parked_leases_key(int p) {
  return partition_key(p, "parked_leases");
}
std::string Keyspace::status_index_key(int p, std::string_view status) {
  return partition_key(p, kStatusIndexName, status);
}
std::string Keyspace::reason_index_key(int p, std::string_view reason) {
  return partition_key(p, kReasonIndexName, reason);
}
std::string Keyspace::live_reason_index_key(int p, std::string_view reason) {
  return partition_key(p, kLiveReasonIndexName, reason);
}
std::string Keyspace::rate_key(const StoreId& store) {
  std::string key;
  key.reserve(kRateHead.size() + store.view().size() + kRateTail.size());
  key.append(kRateHead).append(store.view()).append(kRateTail);
  return key;
}

}  // namespace sagaflow::store
