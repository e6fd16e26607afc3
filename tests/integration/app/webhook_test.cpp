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
#include "support/raw_http.hpp"
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

namespace {

// A `sagaflow webhook` process on a fresh port, ready (its broker connection up).
struct Ingress {
  explicit Ingress(RabbitServer& rabbit, const std::string& secrets)
      : port(sagaflow::testing::free_port()),
        env{{"SAGAFLOW_AMQP_URL", rabbit.amqp_url()},
            {"SAGAFLOW_WEBHOOK_SECRET", secrets},
            {"SAGAFLOW_WEBHOOK_ADDR", "127.0.0.1:" + std::to_string(port)},
            {"SAGAFLOW_MAX_MESSAGE_BYTES", "4096"},
            {"SAGAFLOW_METRICS_ADDR", "0"}} {
    Process topo({sagaflow::testing::sagaflow_binary(), "topology", "apply"}, env);
    REQUIRE(topo.wait_for(30s) == 0);
    rabbit.purge("sagaflow.saga");
    process = std::make_unique<Process>(
        std::vector<std::string>{sagaflow::testing::sagaflow_binary(), "webhook"}, env);
    int ready = 0;
    for (int i = 0; i < 150 && ready != 200; ++i) {
      std::this_thread::sleep_for(100ms);
      ready = sagaflow::testing::http_request(port, "GET", "/readyz").status;
    }
    REQUIRE(ready == 200);
  }
  ~Ingress() {
    process->signal(SIGTERM);
    CHECK(process->wait_for(10s) == 0);
  }
  int port;
  std::vector<std::pair<std::string, std::string>> env;
  std::unique_ptr<Process> process;
};

std::string sagaflow_signed(const std::string& path, const std::string& body,
                            const std::string& secret, std::int64_t t) {
  return sagaflow::testing::raw_post(
      path, body, "X-Sagaflow-Signature: " + sagaflow::http::sign(secret, t, body) + "\r\n");
}

std::string standard_signed(const std::string& body, const std::vector<std::string>& secrets,
                            const std::string& id, std::int64_t t) {
  return sagaflow::testing::raw_post(
      "/webhooks/std", body,
      "webhook-id: " + id + "\r\nwebhook-timestamp: " + std::to_string(t) +
          "\r\nwebhook-signature: " + sagaflow::http::sign_standard(secrets, id, t, body) + "\r\n");
}

}  // namespace

TEST_CASE("webhook ingress under attack: pipelining, smuggled bodies, both signature schemes",
          "[webhook]") {
  RabbitServer& rabbit = sagaflow::testing::shared_rabbit();
  Ingress ingress(rabbit, "whsec_c2VjcmV0LW9uZQ==,plain-two");
  const auto now = static_cast<std::int64_t>(std::time(nullptr));
  using sagaflow::testing::RawConn;

  SECTION("three pipelined requests (valid, bad signature, valid): three answers, in order") {
    RawConn c(ingress.port);
    const std::string a = envelope("pipe1"), b = envelope("pipe2"), d = envelope("pipe3");
    REQUIRE(c.send(sagaflow_signed("/webhooks/shop", a, "plain-two", now) +
                   sagaflow_signed("/webhooks/shop", b, "guess", now) +
                   sagaflow_signed("/webhooks/shop", d, "secret-one", now)));
    const auto answers = c.read_answers(3, 10s);
    REQUIRE(answers.size() == 3);
    CHECK(answers[0].status == 202);
    CHECK(answers[0].body.find("pipe1") != std::string::npos);
    CHECK(answers[1].status == 401);
    CHECK(answers[2].status == 202);
    CHECK(answers[2].body.find("pipe3") != std::string::npos);
    CHECK(rabbit.queue_depth("sagaflow.saga") == 2);
  }

  SECTION("a body over the limit carrying a signed request: 413, nothing published") {
    RawConn c(ingress.port);
    std::string inner;
    for (int i = 0; inner.size() < 8192; ++i)
      inner += sagaflow_signed("/webhooks/shop", envelope("smuggled" + std::to_string(i)),
                               "plain-two", now);
    c.send("POST /webhooks/shop HTTP/1.1\r\nHost: t\r\nContent-Length: " +
           std::to_string(inner.size()) + "\r\n\r\n");
    c.send(inner);
    const auto answer = c.read_answer(10s);
    CHECK(answer.status == 413);
    CHECK(answer.body.find("too_large") != std::string::npos);
    std::this_thread::sleep_for(300ms);
    CHECK(rabbit.queue_depth("sagaflow.saga") == 0);
  }

  SECTION("Standard Webhooks: whsec_ and plain secrets, the 300 s window both ways") {
    RawConn c(ingress.port);
    const std::vector<std::string> old_only{"plain-two"};
    const std::vector<std::string> new_only{"whsec_c2VjcmV0LW9uZQ=="};
    std::string batch;
    batch += standard_signed(envelope("std1"), new_only, "msg_1", now);
    // (`now` is whole seconds and the ingress may read its clock a second later: the exact
    // 300 s edges are unit-tested with a manual clock)
    batch += standard_signed(envelope("std2"), old_only, "msg_2", now - 298);
    batch += standard_signed(envelope("std3"), old_only, "msg_3", now + 299);
    batch += standard_signed(envelope("std4"), new_only, "msg_4", now - 302);
    batch += standard_signed(envelope("std5"), new_only, "msg_5", now + 302);
    batch += standard_signed(envelope("std6"), {"guess"}, "msg_6", now);
    REQUIRE(c.send(batch));
    const auto answers = c.read_answers(6, 10s);
    REQUIRE(answers.size() == 6);
    CHECK(answers[0].status == 202);
    CHECK(answers[1].status == 202);
    CHECK(answers[2].status == 202);
    CHECK(answers[3].status == 401);
    CHECK(answers[4].status == 401);
    CHECK(answers[5].status == 401);
    CHECK(rabbit.queue_depth("sagaflow.saga") == 3);
  }

  SECTION("a client gone before its 202: the event is still published, the ingress serves on") {
    {
      RawConn c(ingress.port);
      c.send(sagaflow_signed("/webhooks/shop", envelope("gone1"), "plain-two", now));
    }  // closed at once
    std::this_thread::sleep_for(500ms);
    RawConn next(ingress.port);
    next.send(sagaflow_signed("/webhooks/shop", envelope("gone2"), "plain-two", now));
    CHECK(next.read_answer(10s).status == 202);
    // The first was in flight when its client left: published or not, never twice
    const auto depth = rabbit.queue_depth("sagaflow.saga");
    CHECK((depth == 1 || depth == 2));
  }
}
