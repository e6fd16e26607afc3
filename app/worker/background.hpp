#pragma once
// The worker's background duties, each a tick on the loop:
// - DeadlineSweeper: claims due saga deadlines (each goes to one worker per lease) and feeds
//   them to the pipeline as timeout inputs.
// - OutboxRelay: re-sends the outbox entries left behind (a worker died between commit and
//   publish, or its publish failed) with the same ids, then clears them: those of the
//   partitions whose relay this worker holds, and any entry left far longer (store/outbox.hpp).
//   A command is re-sent only while its saga still waits for it (its step is still pending,
//   or its compensation still outstanding): a stale create after the step was compensated
//   would be a command for a step that must not run. Outcome events are always re-sent.
//   Once a re-sent command is confirmed, its step's deadline moves to now + the step timeout
//   (never earlier): the participant's time counts from when the command reached the broker,
//   so a broker outage longer than a step timeout does not fail sagas whose commands could
//   not be delivered.
// - ParkedStarter: starts parked sagas (CONTRACT.md section 5) as their stores' buckets allow:
//   per tick, every store with parked starts that is not still being served is served
//   independently (so one store's backlog never delays another's), each up to a bound per
//   tick (so a tick never starves intake), in one batch of a few Redis calls whatever its
//   size: count the tokens the store's bucket has now (taking none), lease that many of the
//   store's oldest parked starts, take tokens for the leases (the bucket may have fewer by
//   then: the newest leases are given back), hand the starts to the pipeline oldest first.
//   A store that got starts is served again 10 ms later, without waiting for the next tick,
//   so a bucket that refills faster than a tick (burst / rate under 50 ms) loses no tokens.
//   A token whose start then fails (a worker killed) is wasted: the limit admits fewer, never
//   more.
// All skip a tick while the previous one is still in flight, and do nothing while Redis is
// down (their calls fail fast as transient errors and the next tick tries again).
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <unordered_set>
#include <vector>

#include "app/worker/pipeline.hpp"
#include "app/worker/ports.hpp"
#include "store/deadlines.hpp"
#include "store/outbox.hpp"
#include "store/parking.hpp"
#include "store/saga_store.hpp"

namespace sagaflow {
struct SagaDefinition;
struct SagaState;
}  // namespace sagaflow

namespace sagaflow::app {

class DeadlineSweeper {
 public:
  DeadlineSweeper(store::Deadlines& deadlines, int partitions, Millis lease_ms, Pipeline& pipeline)
      : deadlines_(deadlines), partitions_(partitions), lease_ms_(lease_ms), pipeline_(pipeline) {}
  void tick();

 private:
  store::Deadlines& deadlines_;
  int partitions_;
  Millis lease_ms_;
  Pipeline& pipeline_;
  int outstanding_ = 0;
};

class ParkedStarter {
 public:
  ParkedStarter(store::Parking& parking, StartAdmission& admission, Millis lease_ms,
                Pipeline& pipeline, metrics::Gauge& parked, Timers& timers)
      : parking_(parking),
        admission_(admission),
        timers_(timers),
        lease_ms_(lease_ms),
        pipeline_(pipeline),
        parked_(parked) {}
  void tick();
  void stop() { stopped_ = true; }

 private:
  // Starts up to `budget` of the store's parked starts, as many as its bucket allows now.
  void serve(const std::string& store, int budget);

  store::Parking& parking_;
  StartAdmission& admission_;
  Timers& timers_;
  Millis lease_ms_;
  Pipeline& pipeline_;
  metrics::Gauge& parked_;
  // Starts per store and serve (every tick of 50 ms, or 10 ms after one that started some).
  static constexpr int kPerStoreBudget = 512;
  static constexpr Millis kReserveMs = 10;
  bool counting_ = false;
  bool stopped_ = false;
  std::set<std::string> busy_;  // stores whose chain of starts is still running
};

class OutboxRelay {
 public:
  OutboxRelay(store::Outbox& outbox, store::SagaStore& sagas, store::Deadlines& deadlines,
              const Clock& clock, const SagaDefinition& definition, MessageSink& sink,
              metrics::Counter& resent, metrics::Counter& dropped,
              std::function<bool(int, const std::string&)> held = {})
      : outbox_(outbox),
        sagas_(sagas),
        deadlines_(deadlines),
        clock_(clock),
        definition_(definition),
        sink_(sink),
        resent_(resent),
        dropped_(dropped),
        held_(std::move(held)) {}
  // Claims the outbox entries left behind past the idle time (store/outbox.hpp: the partitions
  // this worker relays) and re-sends them, except those that held() says this worker's own
  // sink is still publishing and those this relay is still re-sending.
  void tick();

 private:
  void resend(int partition, store::OutboxEntry entry);
  struct Extend {
    OrderId order;
    Millis timeout_ms = 0;
  };
  void publish(int partition, store::OutboxEntry entry, std::optional<Extend> extend = {});

  store::Outbox& outbox_;
  store::SagaStore& sagas_;
  store::Deadlines& deadlines_;
  const Clock& clock_;
  const SagaDefinition& definition_;
  MessageSink& sink_;
  metrics::Counter& resent_;
  metrics::Counter& dropped_;
  std::function<bool(int, const std::string&)> held_;
  std::unordered_set<std::string> resending_;  // "<partition>:<stream id>" this relay publishes
  int claiming_ = 0;
};

}  // namespace sagaflow::app
