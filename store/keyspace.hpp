#pragma once
// The Redis keyspace of sagaflow, partitioned for Redis Cluster (README.md, "Keyspace").
//
// An order lives in partition p = fnv1a64(order_id) mod P. Every key that one script touches
// carries the hash tag {p}, so the keys of one atomic step share a cluster slot:
//   sagaflow:{p}:saga:<order_id>    hash   version, state, status
//   sagaflow:{p}:dedup:<event_id>   string "1", TTL = dedup TTL (tagged with the ORDER's p)
//   sagaflow:{p}:outbox             stream id, exchange, route, body
//   sagaflow:{p}:outbox_relay       string the worker relaying the partition (a lease)
//   sagaflow:{p}:deadlines          zset   member order_id, score = due time (ms)
//   sagaflow:{p}:stats              hash   status -> number of sagas that reached it
//   sagaflow:{p}:parked:<store_id>  zset   member order_id, score = parked at (ms)
//   sagaflow:{p}:parked_stores      hash   store_id -> parked starts in this partition
//   sagaflow:{p}:parked_leases      zset   member order_id, score = lease end (ms)
//   sagaflow:{p}:by_status:<status> zset   member order_id, score = last change (ms)
//   sagaflow:{p}:by_reason:<reason> zset   member order_id, score = last change (ms)
// (the console's indexes, kept by apply.lua; finished sagas bounded per partition)
// Dead letters are indexed under one tag of their own: sagaflow:{dlq}:* (store/dead_letters.hpp).
// Rate limits are per store and keyed by the store's own tag: sagaflow:rl:{<store_id>}.
#include <cstdint>
#include <string>
#include <string_view>

#include "core/ids.hpp"

namespace sagaflow::store {

inline constexpr int kDefaultPartitions = 16;
inline constexpr std::string_view kStorePlansKey = "sagaflow:store_plans";

// FNV-1a, 64 bits: stable across processes, platforms and releases (never std::hash).
constexpr std::uint64_t fnv1a64(std::string_view bytes) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (char c : bytes) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return h;
}

class Keyspace {
 public:
  // partitions < 1 is treated as 1.
  explicit Keyspace(int partitions = kDefaultPartitions) noexcept
      : partitions_(partitions < 1 ? 1 : partitions) {}

  int partitions() const noexcept { return partitions_; }
  int partition_of(const OrderId& order) const noexcept {
    return static_cast<int>(fnv1a64(order.view()) % static_cast<std::uint64_t>(partitions_));
  }

  static std::string saga_key(int p, const OrderId& order);
  static std::string dedup_key(int p, const EventId& event);
  static std::string outbox_key(int p);
  static std::string outbox_relay_key(int p);
  static std::string deadlines_key(int p);
  static std::string stats_key(int p);
  static std::string parked_key(int p, const StoreId& store);
  static std::string parked_stores_key(int p);
  static std::string parked_leases_key(int p);
  static std::string status_index_key(int p, std::string_view status);
  static std::string reason_index_key(int p, std::string_view reason);       // finished sagas
  static std::string live_reason_index_key(int p, std::string_view reason);  // compensating, stuck
  static std::string rate_key(const StoreId& store);

  // The parts the per-event keys are made of, for a writer that encodes a key without building
  // it (SagaStore, into a script call): partition_head(p) + name + tail is the *_key above,
  // e.g. saga_key(p, o) == partition_head(p) + kSagaName + o; rate_key(s) == kRateHead + s +
  // kRateTail. The *_key functions are built from these, so the two cannot drift apart.
  static std::string partition_head(int p);  // "sagaflow:{<p>}:"
  static constexpr std::string_view kSagaName = "saga:";
  static constexpr std::string_view kDedupName = "dedup:";
  static constexpr std::string_view kParkedName = "parked:";
  static constexpr std::string_view kStatusIndexName = "by_status:";
  static constexpr std::string_view kReasonIndexName = "by_reason:";
  static constexpr std::string_view kLiveReasonIndexName = "by_reason_live:";
  static constexpr std::string_view kRateHead = "sagaflow:rl:{";
  static constexpr std::string_view kRateTail = "}";

 private:
  int partitions_;
};

}  // namespace sagaflow::store
