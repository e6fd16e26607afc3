#include "store/keyspace.hpp"

#include <fmt/format.h>

namespace sagaflow::store {

std::string Keyspace::saga_key(int p, const OrderId& order) {
  return fmt::format("sagaflow:{{{}}}:saga:{}", p, order.view());
}
std::string Keyspace::dedup_key(int p, const EventId& event) {
  return fmt::format("sagaflow:{{{}}}:dedup:{}", p, event.view());
}
std::string Keyspace::outbox_key(int p) {
  return fmt::format("sagaflow:{{{}}}:outbox", p);
}
std::string Keyspace::outbox_relay_key(int p) {
  return fmt::format("sagaflow:{{{}}}:outbox_relay", p);
}
std::string Keyspace::deadlines_key(int p) {
  return fmt::format("sagaflow:{{{}}}:deadlines", p);
}
std::string Keyspace::stats_key(int p) {
  return fmt::format("sagaflow:{{{}}}:stats", p);
}
std::string Keyspace::parked_key(int p, const StoreId& store) {
  return fmt::format("sagaflow:{{{}}}:parked:{}", p, store.view());
}
std::string Keyspace::parked_stores_key(int p) {
  return fmt::format("sagaflow:{{{}}}:parked_stores", p);
}
std::string Keyspace::parked_leases_key(int p) {
  return fmt::format("sagaflow:{{{}}}:parked_leases", p);
}
std::string Keyspace::status_index_key(int p, std::string_view status) {
  return fmt::format("sagaflow:{{{}}}:by_status:{}", p, status);
}
std::string Keyspace::reason_index_key(int p, std::string_view reason) {
  return fmt::format("sagaflow:{{{}}}:by_reason:{}", p, reason);
}
std::string Keyspace::live_reason_index_key(int p, std::string_view reason) {
  return fmt::format("sagaflow:{{{}}}:by_reason_live:{}", p, reason);
}
std::string Keyspace::rate_key(const StoreId& store) {
  return fmt::format("sagaflow:rl:{{{}}}", store.view());
}

}  // namespace sagaflow::store
