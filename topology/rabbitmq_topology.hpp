#pragma once
// `sagaflow topology apply` for RabbitMQ: declares every exchange, queue and binding of
// topology/names.hpp, the retry tiers and the dead-letter path. Synchronous (a short-lived
// blocking connection; for the CLI and tests, never on the worker's loop).
//
// Idempotent: applying twice changes nothing. A declaration that conflicts with what exists
// (PRECONDITION_FAILED) stops at once with one line naming the thing and what to do, e.g.
//   queue 'sagaflow.saga' exists with different arguments (inequivalent arg 'durable' ...);
//   delete it or apply the topology on a fresh vhost
// Errors: unavailable (cannot connect / log in / connection lost), invalid_config (conflict).
#include <cstdint>
#include <vector>

#include "core/config.hpp"
#include "core/result.hpp"
#include "topology/names.hpp"

namespace sagaflow {

struct TopologyOptions {
  // Retry delay tiers; the consumers' RetryPolicy must use the same list.
  std::vector<std::int64_t> retry_tiers_ms{topology::kDefaultRetryTiersMs.begin(),
                                           topology::kDefaultRetryTiersMs.end()};
  int connect_timeout_ms = 5000;
};

Status apply_rabbitmq_topology(const AmqpEndpoint& endpoint, const TopologyOptions& options = {});

// The outgoing webhooks' queue sagaflow.deliveries, bound to sagaflow.events with "#" (and the
// exchanges it needs). only_if_exists: only when the queue already exists (what `topology
// apply` does, so that a system without deliver workers does not collect every event).
Status apply_rabbitmq_deliveries(const AmqpEndpoint& endpoint, bool only_if_exists,
                                 int connect_timeout_ms = 5000);

}  // namespace sagaflow
