#pragma once
// sagaflow deliver: outgoing webhooks (CONTRACT.md section 9) on one libuv loop.
//
// Intake: events from the broker (queue sagaflow.deliveries / group sagaflow-deliver). For each
// event, every enabled endpoint whose patterns and store filter match gets a delivery; all of
// them are recorded in Redis in one step with the event's dedup mark (store/deliveries.hpp),
// and only then is the event acked. An event that is not a JSON object with an id and a type
// is dead-lettered with its reason; a Redis failure keeps the event unsettled and retries.
//
// Sending: every 50 ms each partition's due deliveries are claimed for a lease (any worker
// continues any delivery; a dead worker's claims come due again). For each: the endpoint must
// exist (removed: dropped), be enabled (else it waits), have room in its own pool of the HTTP
// client (else it waits: one slow endpoint never takes another's capacity), be under its plan's
// rate (GCRA, shared) and be allowed by its circuit breaker (shared through Redis by
// compare-and-set; exactly one probe when an open circuit's time is up). The attempt is signed
// anew (both schemes, every current secret) and POSTed; its outcome is written back with the
// next due time from the schedule (plus jitter, or Retry-After), `delivered`, or `dead`.
#include <memory>

#include "core/config.hpp"
#include "core/result.hpp"
#include "delivery/schedule.hpp"

struct uv_loop_s;

namespace sagaflow::app {

class Deliverer {
 public:
  Deliverer(uv_loop_s* loop, const Config& config, delivery::Schedule schedule);
  ~Deliverer();
  Deliverer(const Deliverer&) = delete;
  Deliverer& operator=(const Deliverer&) = delete;

  Status start();
  // SIGTERM: stop intake, let attempts in flight finish (at most a few seconds), close.
  void shutdown() noexcept;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace sagaflow::app
