#pragma once
// The worker's background duties, each a tick on the loop:
// - DeadlineSweeper: claims due saga deadlines (each goes to one worker per lease) and feeds
//   them to the pipeline as timeout inputs.
// - OutboxRelay: takes over outbox entries left pending too long (a worker died between commit
//   and publish, or its publish failed) and re-sends them with the same ids, then clears them.
// Both skip a tick while the previous one is still in flight, and do nothing while Redis is
// down (their calls fail fast as transient errors and the next tick tries again).
#include <functional>
#include <vector>

#include "app/worker/pipeline.hpp"
#include "app/worker/ports.hpp"
#include "store/deadlines.hpp"
#include "store/outbox.hpp"

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

class OutboxRelay {
 public:
  OutboxRelay(store::Outbox& outbox, MessageSink& sink, metrics::Counter& resent)
      : outbox_(outbox), sink_(sink), resent_(resent) {}
  void tick();

 private:
  store::Outbox& outbox_;
  MessageSink& sink_;
  metrics::Counter& resent_;
  int outstanding_ = 0;
};

}  // namespace sagaflow::app
