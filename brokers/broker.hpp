#pragma once
// The broker a process talks to, chosen once by SAGAFLOW_BROKER: the one switch between
// RabbitMQ and Kafka. Everything above (the worker, the deliverer, the webhook receiver, the
// simulator, publish, topology, dlq, status, the console) asks a Broker and never looks at
// Config::broker itself.
//
// A Broker is cheap to make and holds no connection; each call opens what it needs. Sources and
// sinks run on the caller's libuv loop; topology, probe and the dead-letter calls are blocking
// (the command-line tools; the console runs them on libuv's thread pool).
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "consumers/source.hpp"
#include "core/config.hpp"
#include "core/result.hpp"
#include "producers/publish_job.hpp"
#include "producers/sink.hpp"

struct uv_loop_s;

namespace sagaflow::brokers {

// The consuming roles of CONTRACT.md section 6.
enum class Role : std::uint8_t {
  saga,          // queue sagaflow.saga / group sagaflow-saga on sagaflow.events
  participants,  // queue sagaflow.participants / group sagaflow-participants on sagaflow.commands
  deliver,       // queue sagaflow.deliveries / group sagaflow-deliver on sagaflow.events
};

// One dead letter as the tools show it, the same on both brokers.
struct DeadLetter {
  std::string id;          // x-sagaflow-dead-letter-id ("" on copies made before it existed)
  std::string reason;      // x-sagaflow-error
  std::string detail;      // x-sagaflow-detail
  std::string attempts;    // x-sagaflow-attempts, as written
  std::string route;       // the original route
  std::string message_id;  // the original message id
  std::string body;        // the original body, byte for byte ("" when kept without it)
  // Kafka: where the record is in sagaflow.dead.
  std::optional<std::int32_t> partition;
  std::optional<std::int64_t> offset;
};

// Which dead letters a replay takes (the console's ids or reason), shown only their id and
// reason; empty: every one.
using DeadLetterSelect = std::function<bool(const DeadLetter&)>;

struct ReplayOutcome {
  std::int64_t replayed = 0;
  std::vector<std::string> ids;  // the replayed ones that carried an id
  std::int64_t passed = 0;       // Kafka: kept without their body, so not replayable; passed
  // Every dead letter the scan was to look at was looked at (not stopped by `limit` or an error).
  bool complete = false;
  // Set when the replay stopped on a failure; `replayed` and `ids` still say what went back
  // (and was acked or committed) before it.
  std::optional<Error> error;
  bool error_counts_replayed = false;  // the error's detail already says how many went back
};

class Broker {
 public:
  virtual ~Broker() = default;

  // "RabbitMQ" or "Kafka", for messages.
  virtual std::string_view name() const noexcept = 0;
  // Where, for messages: "127.0.0.1:5672" or the bootstrap servers.
  virtual std::string where() const = 0;

  // --- the data path, on the caller's loop ---
  // What a sink is for.
  enum class SinkUse : std::uint8_t {
    // A long-running process (worker, deliverer, webhook, simulator): a Kafka record not
    // confirmed within 5 s fails, so the caller (the outbox, a retry) sends it again instead of
    // waiting behind librdkafka's own retries, and the record limit has room for the largest
    // dead-letter copy.
    service,
    // `sagaflow publish`: the client library's own delivery timeouts.
    publish,
  };
  // window: unconfirmed messages in flight at most (0: the sink's default).
  virtual std::unique_ptr<Sink> make_sink(uv_loop_s* loop, const std::string& name,
                                          std::size_t window = 0,
                                          SinkUse use = SinkUse::service) const = 0;
  // Retry and dead-letter copies go through `copies` (not owned; started by the caller);
  // `on_dead_lettered` hears of each dead letter the broker confirmed (the dead-letter index).
  virtual std::unique_ptr<Source> make_source(uv_loop_s* loop, Role role, Sink& copies,
                                              const std::string& name,
                                              DeadLetterListener on_dead_lettered = {}) const = 0;
  // What the source of `role` consumes, for logs: "queue sagaflow.saga" / "group sagaflow-saga".
  virtual std::string describe_intake(Role role) const = 0;
  // True when the saga role's intake carries the outcome events too (Kafka: the group reads all
  // of sagaflow.events; a RabbitMQ binding never routes them to sagaflow.saga).
  virtual bool saga_intake_has_outcomes() const noexcept = 0;

  // --- blocking calls of the tools ---
  // Fails fast, with the reason, when the broker cannot be reached at all.
  virtual Status probe() const = 0;
  // `topology apply` (CONTRACT.md section 6, idempotent); one line saying what was done.
  virtual Result<std::string> apply_topology() const = 0;
  // What `sagaflow deliver` consumes, made ready (RabbitMQ: the deliveries queue and its
  // binding; Kafka: nothing, the group reads sagaflow.events).
  virtual Status prepare_deliveries() const = 0;

  // --- dead letters (CONTRACT.md sections 1 and 10) ---
  // Where they are, for messages: "sagaflow.dead".
  virtual std::string_view dead_letters_at() const noexcept = 0;
  // Dead letters not yet replayed (RabbitMQ: ready in sagaflow.dead; Kafka: past the replay
  // group's position, 0 while the topic does not exist).
  virtual Result<std::int64_t> dead_letter_depth() const = 0;
  // Up to `limit` of them, oldest first, each shown to `visit`; none is consumed or moved.
  // Returns how many were visited.
  virtual Result<std::int64_t> list_dead_letters(
      std::int64_t limit, const std::function<void(const DeadLetter&)>& visit) const = 0;
  // Re-publishes up to `limit` of them (those `select` accepts) to their original route, body
  // unchanged and attempts reset; each is acked (RabbitMQ) or committed past (Kafka) only
  // after the broker confirmed its re-publish: a crash in between re-publishes at worst
  // (same event id, deduplicated downstream), never loses.
  virtual ReplayOutcome replay_dead_letters(std::int64_t limit,
                                            const DeadLetterSelect& select = {}) const = 0;
  // True when a replayed dead letter stays readable (Kafka: records stay in the topic, and a
  // selective replay commits only past its first run of replayed ones), so a selection must
  // come from the dead-letter index to avoid publishing one twice; false on RabbitMQ (acked:
  // gone).
  virtual bool replayed_dead_letters_stay() const noexcept = 0;
};

// The one switch on Config::broker.
std::unique_ptr<Broker> open_broker(const Config& config);

// `sagaflow publish` on this broker (producers/publish_job.hpp); `broker` must outlive the job.
PublishTarget publish_target(const Broker& broker);

}  // namespace sagaflow::brokers
