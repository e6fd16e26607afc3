#pragma once
// Shared helpers of the RabbitMQ integration tests: the harness's node with the topology
// applied (short retry tiers), a libuv loop, and run_until.
#include <uv.h>

#include <chrono>
#include <functional>
#include <stdexcept>
#include <string>

#include "consumers/retry_policy.hpp"
#include "core/config.hpp"
#include "support/servers.hpp"
#include "topology/rabbitmq_topology.hpp"

namespace sagaflow::testing {

// Retry tiers short enough for tests: 100 ms .. 800 ms.
inline const std::vector<std::int64_t> kTestTiers = {100, 200, 400, 800};

inline RetryPolicy test_retry_policy(int max_attempts = 4) {
  RetryPolicy p;
  p.max_attempts = max_attempts;
  p.base_ms = 100;
  p.cap_ms = 800;
  p.tiers_ms = kTestTiers;
  return p;
}

inline AmqpEndpoint endpoint_of(const RabbitServer& rabbit) {
  auto ep = parse_amqp_url(rabbit.amqp_url());
  if (!ep) throw std::runtime_error("bad amqp url " + rabbit.amqp_url());
  return ep.value();
}

// The shared node, topology applied once (default and test tiers).
inline RabbitServer& rabbit_with_topology() {
  static bool applied = false;
  RabbitServer& rabbit = shared_rabbit();
  if (!applied) {
    TopologyOptions o;
    o.retry_tiers_ms = kTestTiers;
    if (Status s = apply_rabbitmq_topology(endpoint_of(rabbit), o); !s)
      throw std::runtime_error(s.error().detail);
    applied = true;
  }
  return rabbit;
}

class Loop {
 public:
  Loop() { uv_loop_init(&loop_); }
  ~Loop() {
    // Let close callbacks run; then close (handles of leaked objects would keep it busy).
    for (int i = 0; i < 100 && uv_loop_alive(&loop_) != 0; ++i) uv_run(&loop_, UV_RUN_NOWAIT);
    uv_loop_close(&loop_);
  }
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;
  uv_loop_t* get() { return &loop_; }

  // Runs the loop until pred() is true (checked every 5 ms) or the timeout; returns pred().
  bool run_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
    struct Ctx {
      const std::function<bool()>* pred;
      std::chrono::steady_clock::time_point deadline;
      bool result = false;
    } ctx{&pred, std::chrono::steady_clock::now() + timeout};
    if (pred()) return true;
    uv_timer_t timer;
    uv_timer_init(&loop_, &timer);
    timer.data = &ctx;
    uv_timer_start(
        &timer,
        [](uv_timer_t* t) {
          auto* c = static_cast<Ctx*>(t->data);
          if ((*c->pred)()) {
            c->result = true;
            uv_stop(t->loop);
          } else if (std::chrono::steady_clock::now() > c->deadline) {
            uv_stop(t->loop);
          }
        },
        5, 5);
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_timer_stop(&timer);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer), nullptr);
    uv_run(&loop_, UV_RUN_NOWAIT);
    return ctx.result || pred();
  }

  // Runs the loop for a while, whatever happens.
  void run_for(std::chrono::milliseconds d) {
    run_until([] { return false; }, d);
  }

 private:
  uv_loop_t loop_;
};

}  // namespace sagaflow::testing
