#pragma once
// The outbox: commands written by the apply script into the partition's stream
// sagaflow:{p}:outbox, consumer group kOutboxGroup (README.md, "Outbox").
//
// Fast path: apply() returns the stream ids; the entries are already pending for this
// worker's consumer (the script delivered them to it). The worker publishes the commands
// itself, and once the broker confirmed them calls ack(p, ids) (XACK + XDEL).
// Slow path: entries that stay pending longer than min_idle_ms (the writer died, or its
// publish failed) are taken over by claim_stale(p) (XAUTOCLAIM) and re-sent by whoever claimed
// them, with the same command ids, then acked. An entry is re-sent at most once per min_idle
// by one claimer; re-sends are harmless duplicates (deterministic ids).
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/clock.hpp"
#include "core/result.hpp"
#include "store/keyspace.hpp"
#include "store/redis_client.hpp"
#include "store/saga_store.hpp"

namespace sagaflow::store {

struct OutboxEntry {
  std::string stream_id;  // for ack()
  OutboxCommand command;
};

struct OutboxOptions {
  int partitions = kDefaultPartitions;
  std::string consumer;       // this worker's consumer name (same as SagaStoreOptions)
  Millis min_idle_ms = 5000;  // an entry pending this long is considered abandoned
  int claim_batch = 100;      // entries per claim_stale() call
  Millis timeout_ms = 0;      // per call; 0: the client's default
};

class Outbox final {
 public:
  using AckCallback = std::function<void(Status)>;
  using ClaimCallback = std::function<void(Result<std::vector<OutboxEntry>>)>;

  Outbox(RedisClient& redis, OutboxOptions options);

  // The commands of these entries were published: remove them. done may be empty.
  void ack(int partition, std::vector<std::string> stream_ids, AckCallback done = {});
  // Take over up to claim_batch entries of the partition idle for min_idle_ms (any consumer,
  // this one included), and return them to be re-sent. Walks the pending list with a cursor
  // kept per partition, so repeated calls cover all of it.
  void claim_stale(int partition, ClaimCallback done);

  int partitions() const noexcept { return options_.partitions; }

 private:
  RedisClient& redis_;
  OutboxOptions options_;
  ScriptRef ack_script_;
  std::vector<std::string> cursors_;  // XAUTOCLAIM start id per partition
};

}  // namespace sagaflow::store
