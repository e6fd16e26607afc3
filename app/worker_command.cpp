// sagaflow worker: load and validate the saga definitions, then run the Worker on a libuv loop
// until SIGTERM / SIGINT (drain, exit 0).
#include <uv.h>

#include <cstdio>

#include "app/commands.hpp"
#include "app/worker/worker.hpp"
#include "core/log.hpp"
#include "sagas/definition.hpp"

namespace sagaflow::app {

int run_worker(const Config& config) {
  auto definitions = load_definitions(config.saga_dir, config.step_timeout_ms);
  if (!definitions) {
    std::fprintf(stderr, "sagaflow worker: %s\n", definitions.error().detail.c_str());
    return 2;
  }
  const SagaDefinition* order_saga = find_definition(definitions.value(), kOrderSagaName);
  if (order_saga == nullptr) {
    std::fprintf(stderr, "sagaflow worker: no saga definition named %s in %s\n",
                 std::string(kOrderSagaName).c_str(),
                 config.saga_dir.empty() ? "the built-in definitions" : config.saga_dir.c_str());
    return 2;
  }
  uv_loop_t loop;
  uv_loop_init(&loop);
  int rc = 0;
  {
    Worker worker(&loop, config, *order_saga);
    if (auto st = worker.start(); !st) {
      std::fprintf(stderr, "sagaflow worker: %s\n", st.error().detail.c_str());
      rc = 1;
      worker.shutdown();
    }
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  // Close whatever handle is left (none, normally) so that the loop can be closed.
  uv_walk(
      &loop,
      [](uv_handle_t* h, void*) {
        if (!uv_is_closing(h)) uv_close(h, nullptr);
      },
      nullptr);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  return rc;
}

}  // namespace sagaflow::app
