// The webhook ingress end to end (CONTRACT.md section 7): real HTTP on loopback, a real
// RabbitMQ; 202 only when the event is in the broker, and every refusal publishes nothing.
#include <catch2/catch.hpp>

#include <chrono>
#include <csignal>
#include <ctime>
#include <string>
#include <thread>

#include "http/webhook_signature.hpp"
#include "http_client.hpp"
#include "support/servers.hpp"

using namespace std::chrono_literals;
using sagaflow::testing::Process;
using sagaflow::testing::RabbitServer;

namespace {

int http_post(int port, const std::string& path, const std::string& body,
              const std::string& signature, std::size_t declared_length = std::string::npos) {
  return sagaflow::testing::http_request(port, "POST", path, body, signature, declared_length)
      .status;
}

std::string envelope(const std::string& id) {
  return R"({"id":")" + id +
         R"(","type":"order.cancelled","store_id":"s1","data":{"order_id":"ord_)" + id + R"("}})";
}

}  // namespace

TEST_CASE("webhook ingress: 202 after the broker has it, 4xx and 503 publish nothing",
          "[webhook]") {
  RabbitServer& rabbit = sagaflow::testing::shared_rabbit();
  const int port = sagaflow::testing::free_port();
  const std::vector<std::pair<std::string, std::string>> env = {
      {"SAGAFLOW_AMQP_URL", rabbit.amqp_url()},
      {"SAGAFLOW_WEBHOOK_SECRET", "new-secret,old-secret"},
      {"SAGAFLOW_WEBHOOK_ADDR", "127.0.0.1:" + std::to_string(port)},
      {"SAGAFLOW_MAX_MESSAGE_BYTES", "4096"},
      {"SAGAFLOW_METRICS_ADDR", "0"}};
  {
    Process topo({sagaflow::testing::sagaflow_binary(), "topology", "apply"}, env);
    REQUIRE(topo.wait_for(30s) == 0);
  }
  rabbit.purge("sagaflow.saga");
  Process webhook({sagaflow::testing::sagaflow_binary(), "webhook"}, env);
  // Ready only once its broker connection is up (before that, a POST would rightly be 503)
  int ready = 0;
  for (int i = 0; i < 150 && ready != 200; ++i) {
    std::this_thread::sleep_for(100ms);
    ready = sagaflow::testing::http_request(port, "GET", "/readyz").status;
  }
  REQUIRE(ready == 200);
  CHECK(sagaflow::testing::http_request(port, "GET", "/healthz").status == 200);
  const auto now = static_cast<std::int64_t>(std::time(nullptr));

  // Given a body signed with the old secret (rotation): 202, and the event is in the queue
  const std::string body = envelope("wh1");
  CHECK(http_post(port, "/webhooks/shop", body, sagaflow::http::sign("old-secret", now, body)) ==
        202);
  CHECK(rabbit.queue_depth("sagaflow.saga") == 1);
  auto msg = rabbit.get("sagaflow.saga");
  REQUIRE(msg);
  CHECK(msg->body == body);  // byte for byte

  // Refusals: bad signature, replayed timestamp, invalid envelope, too large
  CHECK(http_post(port, "/webhooks/shop", body, sagaflow::http::sign("guess", now, body)) == 401);
  CHECK(http_post(port, "/webhooks/shop", body, "") == 401);
  CHECK(http_post(port, "/webhooks/shop", body,
                  sagaflow::http::sign("new-secret", now - 600, body)) == 401);
  const std::string invalid = R"({"id":"x","type":"order.created","data":{}})";
  CHECK(http_post(port, "/webhooks/shop", invalid,
                  sagaflow::http::sign("new-secret", now, invalid)) == 400);
  CHECK(http_post(port, "/webhooks/shop", "", "", 10 * 1024 * 1024) ==
        413);  // refused from the header
  CHECK(rabbit.queue_depth("sagaflow.saga") == 0);

  // Broker down: 503, nothing published; back up: 202 again
  rabbit.stop();
  const std::string later = envelope("wh2");
  CHECK(http_post(port, "/webhooks/shop", later, sagaflow::http::sign("new-secret", now, later)) ==
        503);
  rabbit.start();
  int code = 0;
  for (int i = 0; i < 100 && code != 202; ++i) {
    std::this_thread::sleep_for(200ms);
    code = http_post(port, "/webhooks/shop", later, sagaflow::http::sign("new-secret", now, later));
  }
  CHECK(code == 202);
  webhook.signal(SIGTERM);
  CHECK(webhook.wait_for(10s) == 0);
}
