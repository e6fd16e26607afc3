#pragma once
// The outbox: commands written by the apply script into the partition's stream
// sagaflow:{p}:outbox (README.md, "Outbox"). A plain stream: no consumer group.
//
// Fast path: apply() returns the stream ids. The worker publishes the commands itself, and
// once the broker confirmed them calls ack(p, ids) (one XDEL per partition and call).
// Slow path: entries still there after min_idle_ms (the writer died, or its publish failed)
// were left behind. One worker at a time relays a partition (a lease it renews with every
// claim_stale(p), outbox_claim.lua); claim_stale returns the entries older than min_idle_ms
// (any worker: older than min_idle_ms + the lease, should the holder not get them out), each
// at most once per min_idle_ms, to be re-sent with the same command ids, then acked.
// Re-sends are harmless duplicates (deterministic ids).
#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
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
  std::string consumer;       // this worker's name: who holds a partition's relay
  Millis min_idle_ms = 5000;  // an entry this old is considered left behind
  int claim_batch = 100;      // entries per claim_stale() call
  // A partition's relay is held this long after its holder's last claim_stale (0: min_idle_ms,
  // at least 200 ms): a dead holder's partitions are taken over after that. Claim at least
  // twice per hold. Entries older than min_idle_ms + the hold go to any claimer.
  Millis relay_lease_ms = 0;
  Millis timeout_ms = 0;  // per call; 0: the client's default
};

class Outbox final {
 public:
  using AckCallback = std::function<void(Status)>;
  using ClaimCallback = std::function<void(Result<std::vector<OutboxEntry>>)>;

  Outbox(RedisClient& redis, OutboxOptions options);

  // The commands of these entries were published: remove them. done may be empty.
  void ack(int partition, std::vector<std::string> stream_ids, AckCallback done = {});
  // Up to claim_batch entries of the partition older than min_idle_ms (whoever wrote them,
  // this worker included) to be re-sent, none handed out by this Outbox in the last
  // min_idle_ms; none while another worker holds the partition's relay. Walks the stream with
  // a cursor kept per partition, so repeated calls cover all of it.
  void claim_stale(int partition, ClaimCallback done);

  int partitions() const noexcept { return options_.partitions; }

 private:
  RedisClient& redis_;
  OutboxOptions options_;
  ScriptRef claim_script_;
  std::vector<std::string> cursors_;  // per partition: "-" or "(<last id returned>"
  // Per partition: stream id -> when it was last handed out (loop ms).
  std::vector<std::unordered_map<std::string, std::uint64_t>> handed_out_;
};

}  // namespace sagaflow::store
