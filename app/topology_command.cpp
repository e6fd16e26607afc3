// sagaflow topology apply: declares the broker topology of CONTRACT.md section 6 (idempotent).
#include <cstdio>

#include "app/commands.hpp"
#include "topology/rabbitmq_topology.hpp"

namespace sagaflow::app {

int run_topology_apply(const Config& config) {
  if (config.broker != BrokerKind::rabbitmq) {
    std::fprintf(
        stderr,
        "sagaflow topology apply: SAGAFLOW_BROKER=kafka is not available in this build yet\n");
    return 1;
  }
  if (auto st = apply_rabbitmq_topology(config.amqp); !st) {
    std::fprintf(stderr, "sagaflow topology apply: %s\n", st.error().detail.c_str());
    return 1;
  }
  std::fprintf(stderr, "topology applied on %s:%d\n", config.amqp.host.c_str(), config.amqp.port);
  return 0;
}

}  // namespace sagaflow::app
