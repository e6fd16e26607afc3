// sagaflow webhook: the HTTP ingress of CONTRACT.md section 7 on SAGAFLOW_WEBHOOK_ADDR,
// publishing accepted events to sagaflow.events (routing key = type; on Kafka key = order_id)
// through the broker's Sink.
#include <cstdio>

#include "app/commands.hpp"
#include "app/impl/loop_runner.hpp"
#include "app/webhook/webhook_handler.hpp"
#include "brokers/broker.hpp"
#include "core/log.hpp"
#include "http/server.hpp"
#include "http/webhook_signature.hpp"
#include "topology/names.hpp"

namespace sagaflow::app {

int run_webhook(const Config& config) {
  if (config.webhook_secrets.empty()) {
    std::fprintf(stderr,
                 "sagaflow webhook: SAGAFLOW_WEBHOOK_SECRET is not set; refusing to start\n");
    return 2;
  }
  for (const auto& secret : config.webhook_secrets) {
    if (!http::secret_key(secret)) {
      std::fprintf(stderr,
                   "sagaflow webhook: SAGAFLOW_WEBHOOK_SECRET: a whsec_ secret is not base64\n");
      return 2;
    }
  }
  LoopRunner runner;
  std::unique_ptr<Sink> sink_owner =
      brokers::open_broker(config)->make_sink(runner.loop(), "sagaflow-webhook");
  Sink& sink = *sink_owner;
  SystemClock clock;
  WebhookHandler handler(
      config.webhook_secrets, clock,
      [&](OutgoingEvent e, std::function<void(Status)> done) {
        Message m;
        m.exchange = std::string(topology::kEventsExchange);
        m.routing_key = std::move(e.routing_key);
        m.key = std::move(e.key);
        m.message_id = std::move(e.message_id);
        m.body = std::move(e.body);
        sink.publish(std::move(m), std::move(done));
      },
      config.max_message_bytes, [&] { return sink.connected(); });
  http::Server server(
      runner.loop(),
      [&](const http::Request& r, http::Respond respond) { handler(r, std::move(respond)); },
      http::Limits{.max_body_bytes = config.max_message_bytes,
                   .header_timeout_ms = config.http_header_timeout_ms,
                   .max_connections = static_cast<unsigned>(config.http_max_connections)});
  if (auto st = server.listen(config.webhook_addr.host, config.webhook_addr.port); !st) {
    std::fprintf(stderr, "sagaflow webhook: %s\n", st.error().detail.c_str());
    return 1;
  }
  sink.start();
  // SIGTERM: no new requests; those already publishing get their real answer once the sink
  // has drained (a confirm, or its failure), then the listener closes.
  runner.on_signal([&] {
    server.drain();
    sink.stop([&] { server.stop(); });
  });
  log::info("webhook ingress listening",
            {{"addr", config.webhook_addr.host}, {"port", config.webhook_addr.port}});
  runner.run();
  return 0;
}

}  // namespace sagaflow::app
