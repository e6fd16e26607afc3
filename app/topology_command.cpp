// sagaflow topology apply: declares the broker topology of CONTRACT.md section 6 (idempotent).
#include <cstdio>

#include "app/commands.hpp"
#include "brokers/broker.hpp"

namespace sagaflow::app {

int run_topology_apply(const Config& config) {
  auto done = brokers::open_broker(config)->apply_topology();
  if (!done) {
    std::fprintf(stderr, "sagaflow topology apply: %s\n", done.error().detail.c_str());
    return 1;
  }
  std::fprintf(stderr, "%s\n", done->c_str());
  return 0;
}

}  // namespace sagaflow::app
