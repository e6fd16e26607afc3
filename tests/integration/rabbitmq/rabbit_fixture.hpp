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
#include "support/uv_loop.hpp"
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

using Loop = sagaflow::testing::UvLoop;

}  // namespace sagaflow::testing
