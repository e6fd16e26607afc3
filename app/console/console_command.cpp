// sagaflow console: the operator console (CONTRACT.md section 10) on SAGAFLOW_CONSOLE_ADDR,
// until SIGTERM / SIGINT. One libuv loop holds the HTTP server (the webhook ingress's library)
// and one Redis client; the page and its script are embedded in the binary.
#include <cstdio>

#include "app/commands.hpp"
#include "app/console/access.hpp"
#include "app/console/console_api.hpp"
#include "app/impl/loop_runner.hpp"
#include "core/log.hpp"
#include "http/server.hpp"
#include "sagas/definition.hpp"
#include "store/redis_client.hpp"

namespace sagaflow::app {

int run_console(const Config& config) {
  const HostPort& addr = config.console_addr;
  if (config.console_token.empty() && !console::is_loopback_address(addr.host)) {
    std::fprintf(stderr,
                 "sagaflow console: refusing to listen on %s without SAGAFLOW_CONSOLE_TOKEN "
                 "(set it, or listen on 127.0.0.1)\n",
                 addr.host.c_str());
    return 2;
  }
  auto definitions = load_definitions(config.saga_dir, config.step_timeout_ms);
  if (!definitions) {
    std::fprintf(stderr, "sagaflow console: %s\n", definitions.error().detail.c_str());
    return 2;
  }
  LoopRunner runner;
  store::RedisClientOptions redis_options;
  redis_options.endpoint = config.redis;
  redis_options.name = "sagaflow-console";
  store::RedisClient redis(runner.loop(), redis_options);
  console::Access access(config.console_token, addr.host, addr.port, console::random_hex(16));
  console::ConsoleApi api(runner.loop(), redis, config, std::move(definitions.value()), access);
  http::Server server(
      runner.loop(),
      [&](const http::Request& r, http::Respond respond) { api(r, std::move(respond)); },
      http::Limits{.max_body_bytes = 64 * 1024,
                   .header_timeout_ms = config.http_header_timeout_ms,
                   .max_connections = static_cast<unsigned>(config.http_max_connections),
                   // A replay scans the whole dead-letter queue.
                   .handler_timeout_ms = 300000});
  if (auto st = server.listen(addr.host, addr.port); !st) {
    std::fprintf(stderr, "sagaflow console: %s\n", st.error().detail.c_str());
    return 1;
  }
  access.set_port(server.port());
  redis.start();
  runner.on_signal([&] {
    server.drain();
    server.stop();
    redis.stop();
  });
  log::info("console listening", {{"addr", addr.host},
                                  {"port", server.port()},
                                  {"token", config.console_token.empty() ? "none" : "set"}});
  runner.run();
  return 0;
}

}  // namespace sagaflow::app
