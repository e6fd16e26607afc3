#pragma once
// Saga records in Redis, changed by ONE atomic Lua script per event (scripts/apply.lua):
// dedup check, version compare-and-set, new state + status + version, commands into the
// partition's outbox, the order's deadline, per-status counters and the dedup mark, all or
// nothing. A committed apply is durable as far as Redis is (AOF): the caller may then ack.
//
// Outcomes (ApplyOutcome::kind):
// - applied:   the change is recorded; stream_ids are the outbox entries of the commands, in
//              order, in the partition's outbox until Outbox::ack() deletes them.
// - duplicate: the event id was applied before (within the dedup TTL); nothing changed.
// - conflict:  the saga's version is not expected_version (another worker won); nothing
//              changed; `version` is the current one: re-load, re-run the step, re-apply.
//              For a start: the order has a saga that this event did not create.
// - limited:   a start admitted in the script (SagaStart::Admit::gcra) was over its store's
//              plan; nothing changed: commit it as parked (Admit::park).
// Errors: unavailable / timeout (Redis down, frozen or slow: transient; a timed-out apply may
// or may not have happened: re-delivery then finds it duplicate, and the outbox relay
// re-sends its commands); internal (a script failure: a bug).
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.hpp"
#include "core/ids.hpp"
#include "core/result.hpp"
#include "store/gcra.hpp"
#include "store/keyspace.hpp"
#include "store/redis_client.hpp"

struct uv_timer_s;

namespace sagaflow::store {

struct SagaRecord {
  std::int64_t version = 0;  // 0: no saga for this order
  std::string state;         // opaque blob (the engine's serialized state)
  std::string status;
  std::string order;  // the order facts, written once (empty: none, or a record from before)
};

struct OutboxCommand {
  std::string id;        // deterministic command / event id (message_id)
  std::string exchange;  // where to publish (exchange or topic)
  std::string route;     // routing key (the type)
  std::string body;      // the envelope, byte for byte
};

// An order.created for an order without a saga. The commit needs no load before it: its record
// says which event created it (a re-delivery is a duplicate, any other saga there a conflict),
// so it writes no dedup mark; and on one Redis its store's admission runs in the same script.
struct SagaStart {
  enum class Admit : std::uint8_t {
    given,  // admitted by the caller (a separate admission call: a cluster)
    park,   // parked by the caller (over the limit, or behind its store's parked starts)
    gcra,   // admitted here under `plan`; over it, nothing is written (ApplyKind::limited)
  };
  Admit admit = Admit::given;
  GcraParams plan;
};

struct ApplyRequest {
  OrderId order_id;
  EventId event_id;                   // dedup key; empty: no dedup check, no mark
  std::int64_t expected_version = 0;  // the version that was loaded (0: new saga)
  std::string new_state;
  std::string new_status;
  std::string old_status;  // the stored status (the version check makes sure); "" for new
  std::vector<OutboxCommand> commands;
  std::optional<Millis> deadline;  // absolute ms since the epoch; nullopt or <= 0: clear
  // The deadline was counted by this change from updated_at (not carried over): a call that
  // runs late on Redis' clock moves it by the lateness (apply.lua).
  bool fresh_deadline = true;
  bool finished = false;  // confirmed / failed: the record expires after the TTL
  StoreId store_id;       // the order's store: keeps the parked-starts index
  Millis parked_at = 0;   // when new_status is "parked": its place in the queue
  Millis updated_at = 0;  // the console's indexes (by status, by reason); 0: now
  std::string reason;     // the saga's failure reason, empty while none
  std::string order;      // not empty: written as the record's order facts (they never change:
                          // written once, at the start or the first commit that has them)
  std::optional<SagaStart> start;  // a saga start (expected_version 0, event_id its event)
};

enum class ApplyKind : std::uint8_t { applied, duplicate, conflict, limited };

struct ApplyOutcome {
  ApplyKind kind = ApplyKind::applied;
  std::int64_t version = 0;  // applied: the new version; otherwise the current one
  int partition = 0;
  std::vector<std::string> stream_ids;  // applied: one per command, same order
};

struct SagaStoreOptions {
  int partitions = kDefaultPartitions;  // SAGAFLOW Config::redis_partitions
  std::int64_t dedup_ttl_s = 86400;     // SAGAFLOW_DEDUP_TTL_S
  std::int64_t finished_ttl_s = 0;      // finished record TTL; < dedup TTL: the dedup TTL
  // Newest finished sagas kept per partition in each console index (by status, by reason).
  std::int64_t index_cap = 65536;
  Millis timeout_ms = 0;  // per call; 0: the client's default
  // SAGAFLOW_REDIS_WAIT_REPLICAS: > 0, an apply answers only after Redis WAIT reports that many
  // replicas have it (fewer within wait_timeout_ms: Errc::unavailable, nothing to ack); a
  // duplicate only after they have the first apply (its dedup mark is rewritten, then WAIT).
  int wait_replicas = 0;
  Millis wait_timeout_ms = 500;
  // Applies of one loop turn sent in one script call (one per partition on a cluster); more
  // go in further calls of this size, so one call's time (and p99) stays bounded.
  std::size_t max_batch = 64;
  // Script calls in flight at once (per partition on a cluster). Applies queued while they
  // run wait for the next answer and go together: the busier Redis, the larger the batch (a
  // lone apply on an idle connection still goes at the next loop turn).
  int max_calls_in_flight = 2;
};

class SagaStore final {
 public:
  using LoadCallback = std::function<void(Result<SagaRecord>)>;
  using ApplyCallback = std::function<void(Result<ApplyOutcome>)>;
  using StatsCallback = std::function<void(Result<std::map<std::string, std::int64_t>>)>;

  // Applies are queued and sent at the next loop turn, all of one turn in one script call (per
  // partition on a cluster, at most max_batch each; at most max_calls_in_flight calls at once,
  // later applies wait for an answer); every apply still answers on its own.
  // Destroying the store drops applies not yet sent (stop the client first, as for every
  // store: after stop() nothing is sent and every queued apply fails at the next turn).
  SagaStore(RedisClient& redis, SagaStoreOptions options);
  ~SagaStore();
  SagaStore(const SagaStore&) = delete;
  SagaStore& operator=(const SagaStore&) = delete;

  const Keyspace& keyspace() const noexcept { return keyspace_; }
  int partition_of(const OrderId& order) const noexcept { return keyspace_.partition_of(order); }

  void load(const OrderId& order, LoadCallback done);
  void apply(const ApplyRequest& request, ApplyCallback done);
  // Sagas per status, summed over all partitions (confirmed / failed are cumulative counts).
  void status_counts(StatsCallback done);

  struct Stats {
    std::uint64_t calls = 0;    // apply.lua calls
    std::uint64_t applies = 0;  // applies in them
  };
  Stats stats() const noexcept { return stats_; }

 private:
  struct Queued {
    int partition = 0;
    // With WAIT_REPLICAS: the write a duplicate repeats (its dedup mark, or a start's
    // created_by: apply.lua "touch", never creating a record) so that this connection's WAIT
    // covers the first apply.
    std::vector<std::string> rewrite;
    bool rewrite_by_script = false;
    ApplyCallback done;
  };
  // A script call being filled: its applies' keys and arguments in the wire format, written
  // as each apply comes (no buffer per apply), and what answers them.
  struct Batch {
    ScriptArgs call;
    std::vector<Queued> items;
  };
  static void on_flush(uv_timer_s* timer);
  void flush();
  struct Lane {
    std::deque<Batch> open;         // not sent yet, oldest first; each up to max_batch
    std::vector<ScriptArgs> spare;  // buffers of sent calls, for the next batches
    int calls = 0;                  // script calls in flight
  };
  static constexpr std::size_t kSpareBuffers = 4;
  static constexpr std::size_t kMaxSpareBytes = 256 * 1024;  // a larger one is freed
  Batch& open_batch(Lane& lane);
  void arm_flush();
  void send(Lane& lane, Batch batch);
  void answer(Queued& q, Result<Reply> r);

  RedisClient& redis_;
  SagaStoreOptions options_;
  Keyspace keyspace_;
  ScriptRef apply_script_;
  std::vector<Lane> lanes_;  // per partition on a cluster, else all in [0]
  // Each partition's keys that every apply names, encoded once.
  struct PartitionKeys {
    std::string outbox_deadlines_stats;
    std::string parked_stores_leases;
    std::string head;  // Keyspace::partition_head: the per-event keys are written from parts
  };
  std::vector<PartitionKeys> partition_keys_;
  // One apply's arguments, before their count goes into the batch. (An allocation failure
  // half-way through an apply ends the process, as anywhere in the worker: the open batch is
  // not rolled back.)
  ScriptArgs scratch_;
  uv_timer_s* flush_timer_;
  bool flush_armed_ = false;
  Stats stats_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace sagaflow::store
