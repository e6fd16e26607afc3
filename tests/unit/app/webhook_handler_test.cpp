// The webhook ingress answers per CONTRACT.md section 7 and publishes nothing it refuses.
#include <catch2/catch.hpp>

#include <optional>
#include <string>
#include <vector>

#include "app/webhook/webhook_handler.hpp"
#include "http/webhook_signature.hpp"

using namespace sagaflow;
using namespace sagaflow::app;

namespace {

constexpr Millis kNow = 1'700'000'000'000;
const std::string kBody =
    R"({"id":"evt_9","type":"order.cancelled","store_id":"s1","data":{"order_id":"ord_9","reason":"customer"}})";

struct Harness {
  ManualClock clock{kNow};
  std::vector<OutgoingEvent> published;
  bool broker_up = true;
  WebhookHandler handler{{"new", "old"},
                         clock,
                         [this](OutgoingEvent e, std::function<void(Status)> done) {
                           if (!broker_up) {
                             done(make_error(Errc::unavailable, "broker down"));
                             return;
                           }
                           published.push_back(std::move(e));
                           done(Status::success());
                         },
                         1024 * 1024};

  http::Response post(const std::string& body, const std::string& signature,
                      std::string path = "/webhooks/shop",
                      std::vector<std::pair<std::string, std::string>> headers = {}) {
    http::Request req;
    req.method = "POST";
    req.path = std::move(path);
    req.body = body;
    req.headers = std::move(headers);
    if (!signature.empty()) req.headers.emplace_back("x-sagaflow-signature", signature);
    std::optional<http::Response> answer;
    handler(req, [&](http::Response r) { answer = std::move(r); });
    REQUIRE(answer);
    return *answer;
  }
};

}  // namespace

TEST_CASE("a signed envelope is published byte for byte and answered 202", "[webhook]") {
  Harness h;
  const auto r = h.post(kBody, http::sign("old", kNow / 1000, kBody));
  CHECK(r.status == 202);
  REQUIRE(h.published.size() == 1);
  CHECK(h.published[0].body == kBody);
  CHECK(h.published[0].routing_key == "order.cancelled");
  CHECK(h.published[0].message_id == "evt_9");
}

TEST_CASE("refusals publish nothing", "[webhook]") {
  Harness h;
  // Given a missing, a wrong, and a stale signature: 401
  CHECK(h.post(kBody, "").status == 401);
  CHECK(h.post(kBody, http::sign("guess", kNow / 1000, kBody)).status == 401);
  CHECK(h.post(kBody, http::sign("new", kNow / 1000 - 301, kBody)).status == 401);
  // Given a signed body that is not a valid envelope: 400 with the reason
  const std::string bad = R"({"id":"e1","type":"order.created","data":{}})";
  const auto r = h.post(bad, http::sign("new", kNow / 1000, bad));
  CHECK(r.status == 400);
  CHECK_THAT(r.body, Catch::Contains("invalid_event"));
  const std::string not_json = "{nope";
  CHECK(h.post(not_json, http::sign("new", kNow / 1000, not_json)).status == 400);
  // Given a wrong path: 404
  CHECK(h.post(kBody, http::sign("new", kNow / 1000, kBody), "/hooks").status == 404);
  // Then nothing was published
  CHECK(h.published.empty());
}

TEST_CASE("broker unavailable is 503 and nothing is published", "[webhook]") {
  Harness h;
  h.broker_up = false;
  CHECK(h.post(kBody, http::sign("new", kNow / 1000, kBody)).status == 503);
  CHECK(h.published.empty());
  CHECK(h.handler.accepted() == 0);
}

TEST_CASE("readiness follows the broker connection; health does not", "[webhook]") {
  ManualClock clock{kNow};
  bool broker = false;
  WebhookHandler handler(
      {"s"}, clock, [](OutgoingEvent, std::function<void(Status)> done) { done({}); }, 1024,
      [&] { return broker; });
  auto get = [&](const char* path) {
    http::Request req;
    req.method = "GET";
    req.path = path;
    int status = 0;
    handler(req, [&](http::Response r) { status = r.status; });
    return status;
  };
  CHECK(get("/readyz") == 503);
  CHECK(get("/healthz") == 200);
  broker = true;
  CHECK(get("/readyz") == 200);
}

TEST_CASE("Standard Webhooks headers are verified as well; either scheme is enough", "[webhook]") {
  Harness h;
  const std::vector<std::string> old_secret{"old"};
  const std::int64_t t = kNow / 1000;
  const auto standard = [&](const std::string& body, std::int64_t ts, const std::string& id) {
    return std::vector<std::pair<std::string, std::string>>{
        {"webhook-id", id},
        {"webhook-timestamp", std::to_string(ts)},
        {"webhook-signature", http::sign_standard(old_secret, id, ts, body)}};
  };
  // Given a Standard Webhooks request signed with the old secret: 202, published once
  CHECK(h.post(kBody, "", "/webhooks/shop", standard(kBody, t, "msg_1")).status == 202);
  CHECK(h.published.size() == 1);
  // Refused: another body, an old timestamp, a changed id
  CHECK(h.post(kBody + " ", "", "/webhooks/shop", standard(kBody, t, "msg_1")).status == 401);
  CHECK(h.post(kBody, "", "/webhooks/shop", standard(kBody, t - 301, "msg_1")).status == 401);
  auto changed = standard(kBody, t, "msg_1");
  changed[0].second = "msg_2";
  CHECK(h.post(kBody, "", "/webhooks/shop", changed).status == 401);
  // A wrong Standard signature beside a right X-Sagaflow-Signature: accepted
  auto wrong = standard(kBody, t, "msg_1");
  wrong[2].second = "v1,AAAA";
  CHECK(h.post(kBody, http::sign("new", t, kBody), "/webhooks/shop", wrong).status == 202);
  CHECK(h.published.size() == 2);
}
