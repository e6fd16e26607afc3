// Subcommands whose implementation has not landed yet say so plainly and exit 1.
#include <cstdio>

#include "app/commands.hpp"

namespace sagaflow::app {

int not_built(const char* name) {
  std::fprintf(stderr, "sagaflow %s: not available in this build yet\n", name);
  return 1;
}

int run_worker(const Config&) { return not_built("worker"); }
int run_topology_apply(const Config&) { return not_built("topology apply"); }
int run_publish(const Config&, const PublishArgs&) { return not_built("publish"); }
int run_simulate(const Config&, const SimulateArgs&) { return not_built("simulate"); }
int run_saga_show(const Config&, const std::string&) { return not_built("saga show"); }
int run_status(const Config&) { return not_built("status"); }
int run_webhook(const Config&) { return not_built("webhook"); }
int run_kafka_mock(const Config&) { return not_built("kafka-mock"); }

}  // namespace sagaflow::app
