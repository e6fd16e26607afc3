// sagaflow deliver: outgoing webhooks (CONTRACT.md section 9) until SIGTERM / SIGINT.
#include <cstdio>

#include "app/commands.hpp"
#include "app/deliver/deliverer.hpp"
#include "app/impl/loop_runner.hpp"
#include "brokers/broker.hpp"
#include "delivery/schedule.hpp"

namespace sagaflow::app {

int run_deliver(const Config& config) {
  auto schedule = delivery::parse_schedule(config.delivery_schedule);
  if (!schedule) {
    std::fprintf(stderr, "sagaflow deliver: %s\n", schedule.error().detail.c_str());
    return 2;
  }
  if (auto st = brokers::open_broker(config)->prepare_deliveries(); !st) {
    std::fprintf(stderr, "sagaflow deliver: %s\n", st.error().detail.c_str());
    return 1;
  }
  LoopRunner runner;
  int rc = 0;
  {
    Deliverer deliverer(runner.loop(), config, std::move(schedule.value()));
    if (auto st = deliverer.start(); !st) {
      std::fprintf(stderr, "sagaflow deliver: %s\n", st.error().detail.c_str());
      rc = 1;
      deliverer.shutdown();
    } else {
      runner.on_signal([&] { deliverer.shutdown(); });
    }
    runner.run();
  }
  return rc;
}

}  // namespace sagaflow::app
