#pragma once
// The side effects of the saga pipeline, as narrow interfaces (STYLE.md 4). The worker wires
// them to Redis (store/) and the broker (producers/, consumers/); the unit tests wire fakes, so
// the whole apply path is tested without a network and with an injected clock.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.hpp"
#include "core/ids.hpp"
#include "core/result.hpp"

namespace sagaflow::app {

struct StoredSaga {
  std::int64_t version = 0;  // 0: no saga for this order
  std::string state;         // the engine's serialized state
};

struct OutgoingMessage {
  std::string exchange;     // sagaflow.commands or sagaflow.events
  std::string routing_key;  // the type
  std::string message_id;   // the envelope id (deterministic)
  std::string body;
};

// One atomic change of one saga: dedup mark + CAS on the version + state + outbox + deadline.
struct Commit {
  OrderId order_id;
  std::string event_id;  // dedup key
  std::int64_t expected_version = 0;
  std::string state;
  std::string status;      // new status, for the per-status counts
  std::string old_status;  // empty when the saga is new
  bool finished = false;   // confirmed or failed: the record gets a TTL
  std::vector<OutgoingMessage> messages;
  std::optional<Millis> deadline;  // nullopt: clear
  StoreId store_id;                // keeps the parked-starts index with the status
  Millis parked_at = 0;            // status "parked": its place in the store's queue
  Millis updated_at = 0;           // the console's indexes: when this change happened
  std::string reason;              // the saga's failure reason, empty while none
};

enum class CommitOutcome : std::uint8_t { applied, duplicate, conflict };

struct CommitResult {
  CommitOutcome outcome = CommitOutcome::applied;
  int partition = 0;
  std::vector<std::string> outbox_ids;  // one per message, same order
};

class SagaRepository {
 public:
  virtual ~SagaRepository() = default;
  virtual void load(const OrderId& order, std::function<void(Result<StoredSaga>)> done) = 0;
  // The commit is only read during the call (the request is serialized at once).
  virtual void commit(const Commit& commit, std::function<void(Result<CommitResult>)> done) = 0;
  // The messages of a commit were confirmed by the broker: clear them from the outbox.
  virtual void outbox_done(int partition, std::vector<std::string> ids) = 0;
};

struct Admission {
  bool allowed = true;
  std::int64_t retry_after_ms = 0;
};

class StartAdmission {
 public:
  virtual ~StartAdmission() = default;
  virtual void admit(const StoreId& store, std::function<void(Result<Admission>)> done) = 0;
  // Up to n starts at once: done(k), 0 <= k <= n admitted (with peek: would be; none taken).
  virtual void admit_up_to(const StoreId& store, std::int64_t n, bool peek,
                           std::function<void(Result<std::int64_t>)> done) = 0;
  // A saga start was delayed by its store's limit (called once per delayed order).
  virtual void note_delayed(const StoreId& store) = 0;
};

class MessageSink {
 public:
  virtual ~MessageSink() = default;
  // done(ok) once the broker confirmed; an error is transient (the outbox re-sends later).
  virtual void publish(const OutgoingMessage& message, std::function<void(Status)> done) = 0;
};

class Timers {
 public:
  virtual ~Timers() = default;
  virtual void after(Millis delay, std::function<void()> fn) = 0;
};

}  // namespace sagaflow::app
