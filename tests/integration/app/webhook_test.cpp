// The webhook ingress end to end (CONTRACT.md section 7): real HTTP on loopback, a real
// RabbitMQ; 202 only when the event is in the broker, and every refusal publishes nothing.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <ctime>
#include <string>
#include <thread>

#include "http/webhook_signature.hpp"
#include "support/servers.hpp"

using namespace std::chrono_literals;
using sagaflow::testing::Process;
using sagaflow::testing::RabbitServer;

namespace {

// One HTTP/1.1 request on a fresh connection; returns the status code (0: no answer).
int http_post(int port, const std::string& path, const std::string& body,
              const std::string& signature, std::size_t declared_length = std::string::npos) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return 0;
  }
  std::string req =
      "POST " + path +
      " HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n";
  if (!signature.empty()) req += "X-Sagaflow-Signature: " + signature + "\r\n";
  req += "Content-Length: " +
         std::to_string(declared_length == std::string::npos ? body.size() : declared_length) +
         "\r\n\r\n";
  if (declared_length == std::string::npos) req += body;
  ::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  std::string answer;
  char buf[4096];
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;)
    answer.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  if (answer.size() < 12) return 0;
  return std::stoi(answer.substr(9, 3));
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
  for (int i = 0; i < 100 && http_post(port, "/healthz", "", "") == 0; ++i)
    std::this_thread::sleep_for(100ms);
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
