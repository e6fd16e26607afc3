#pragma once
// `sagaflow worker`: one process, one libuv loop. Owns the broker source and sink, the Redis
// client and stores, the saga pipeline, the deadline sweeper, the outbox relay and the
// metrics endpoint, and runs them until SIGTERM / SIGINT.
//
// Intake is paused while Redis is disconnected, while the pipeline is backing off after a
// dependency failure, or while the sink's window of unconfirmed publishes is full; it resumes
// when all three are clear. SIGTERM drains: stop taking deliveries, finish and settle the
// in-flight ones, publish what was committed, close, exit 0 (within 10 s; anything left
// unacked then is redelivered by the broker to another worker).
#include <memory>

#include "core/config.hpp"
#include "core/result.hpp"

struct uv_loop_s;

namespace sagaflow {
struct SagaDefinition;
}

namespace sagaflow::app {

class Worker {
 public:
  Worker(uv_loop_s* loop, const Config& config, const SagaDefinition& definition);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  Status start();
  // Begins the drain; the loop ends when everything is closed.
  void shutdown() noexcept;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace sagaflow::app
