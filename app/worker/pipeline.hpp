#pragma once
// The saga worker's data path, on one event loop:
//
//   delivery -> parse + validate -> per-order lane -> load saga -> engine step (pure) ->
//   commit (one atomic Redis script: dedup mark, version CAS, state, outbox, deadline) ->
//   settle -> publish the outbox -> clear it when confirmed.
//   An order.created skips the load: it is committed as a saga start, which the script itself
//   refuses when the order has a saga (a duplicate, or a conflict: then it is read and stepped
//   as any event), and on one Redis the script also admits it under its store's rate limit (on
//   a cluster the start is read, then admitted by a call of its own). The commits of one loop
//   turn go in one script call (store::SagaStore). A start over its store's limit is committed
//   as a parked saga and acked; the scheduler (background.hpp) later hands it back through
//   on_parked_start.
//
// Settlement contract (what the Source is told, and when):
// - ack: after the commit is durable in Redis (or the event was a duplicate, or changed
//   nothing). The commands are in the outbox by then; publishing them is the outbox's job.
// - dead_letter: content that can never succeed (malformed_json, invalid_event, unknown_type,
//   too_large, unknown_saga); at once, never retried.
// - retry: content the worker could not apply for a reason that may pass (a saga record it
//   cannot read); the Source retries with backoff and dead-letters after max attempts.
// - nothing, for now: a dependency failed (Redis down or slow). The job stays at the front of
//   its order's lane and is tried again with backoff; intake is paused until it succeeds.
//   Nothing is dead-lettered and nothing is lost; a worker killed meanwhile leaves the delivery
//   unacked, and the broker hands it to another worker.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "app/worker/ports.hpp"
#include "consumers/source.hpp"
#include "core/envelope.hpp"
#include "core/metrics.hpp"

namespace sagaflow {
struct SagaDefinition;
}

namespace sagaflow::app {

// Told once per delivery, with the Source's own verdict type.
using SettleFn = std::function<void(std::uint64_t tag, Verdict)>;

struct PipelineOptions {
  std::size_t max_message_bytes = kDefaultMaxMessageBytes;
  int max_conflicts = 50;  // CAS losses in a row before backing off as if Redis were slow
  // Ack and ignore outcome events (order.confirmed, order.failed): on Kafka the saga group
  // reads all of sagaflow.events, outcomes included; a RabbitMQ binding never routes them.
  bool skip_outcomes = false;
};

class Pipeline {
 public:
  Pipeline(const SagaDefinition& definition, SagaRepository& repo, StartAdmission& admission,
           MessageSink& sink, Timers& timers, const Clock& clock, metrics::Registry& metrics,
           SettleFn settle, PipelineOptions options = {});
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  // One broker delivery. The body is only read during the call.
  void on_delivery(std::uint64_t tag, std::string_view body);
  // A saga deadline claimed by the sweeper.
  void on_deadline(const OrderId& order);
  // A parked start leased by the scheduler: started if it is still parked.
  void on_parked_start(const OrderId& order);
  // Parked starts per store, as last read by the scheduler: a start of a store that has some
  // is parked behind them without taking a token.
  void set_parked_stores(std::map<std::string, std::int64_t, std::less<>> counts);

  // Deliveries taken and not yet settled, plus timeouts in progress.
  std::size_t in_flight() const noexcept;
  // True for an outbox entry (partition, stream id) this pipeline's sink is still publishing.
  bool holds(int partition, const std::string& outbox_id) const;
  // True while a dependency is failing: the caller pauses intake.
  bool degraded() const noexcept;
  // Called when degraded() changes.
  void on_degraded_change(std::function<void(bool)> fn);

  struct Job;
  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace sagaflow::app
