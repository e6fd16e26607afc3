// sagaflow console (CONTRACT.md section 10) against real servers: Redis, RabbitMQ, a worker, and
// this test as the participants (it answers the commands in sagaflow.participants as each order
// needs: o-ok confirms, o-fail fails on payment, o-stuck fails on payment and its inventory
// release is never acknowledged, so it ends stuck). Two poison messages make dead letters. The
// API is checked as a script would use it, then a real browser (headless chromium driven by
// tests/browser/console_browser.py) loads the page, searches an order, opens its graph, re-sends
// the stuck compensation and replays a dead letter; the effects are then checked at the broker
// and in Redis.
#include <simdjson.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <thread>

#include "support/raw_http.hpp"
#include "support/servers.hpp"

using namespace std::chrono_literals;
using sagaflow::testing::Process;
using sagaflow::testing::RawAnswer;
using sagaflow::testing::RawConn;

namespace {

using Env = std::vector<std::pair<std::string, std::string>>;

struct Http {
  int port = 0;
  RawAnswer call(const std::string& method, const std::string& path, const std::string& body = {},
                 const std::string& extra_headers = {}, const std::string& host = {}) const {
    RawConn c(port);
    std::string req = method + " " + path + " HTTP/1.1\r\nHost: " +
                      (host.empty() ? "127.0.0.1:" + std::to_string(port) : host) +
                      "\r\nConnection: close\r\n" + extra_headers;
    if (method == "POST") req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    req += "\r\n" + body;
    REQUIRE(c.send(req));
    return c.read_answer(60s);
  }
  RawAnswer get(const std::string& path) const { return call("GET", path); }
};

std::string field(const std::string& json, const std::string& name) {
  const std::string key = "\"" + name + "\":\"";
  const auto at = json.find(key);
  if (at == std::string::npos) return {};
  const auto end = json.find('"', at + key.size());
  return json.substr(at + key.size(), end - at - key.size());
}

simdjson::dom::element parse(simdjson::dom::parser& parser, const std::string& text) {
  simdjson::dom::element e;
  INFO(text);
  REQUIRE(parser.parse(text).get(e) == simdjson::SUCCESS);
  return e;
}

std::string order_created(const std::string& order) {
  return R"({"id":"created-)" + order +
         R"(","type":"order.created","store_id":"s1","data":{"order_id":")" + order +
         R"(","customer_id":"c1","total":"1234567.89","currency":"EUR","items":[{"sku":"sku-1","qty":1,"price":"1234567.89"}]}})";
}

std::string reply(const std::string& type, const std::string& order, const std::string& extra) {
  return R"({"id":"reply-)" + order + "-" + type + R"(","type":")" + type +
         R"(","data":{"order_id":")" + order + "\"" + extra + "}}";
}

// This test as the participants: the answer to each command, by order.
std::optional<std::pair<std::string, std::string>> answer(const std::string& type,
                                                          const std::string& order) {
  const bool fail_payment = order != "o-ok";
  if (type == "inventory.reserve")
    return std::pair{"inventory.reserved",
                     reply("inventory.reserved", order, R"(,"reservation_id":"r1")")};
  if (type == "payment.charge") {
    if (fail_payment)
      return std::pair{"payment.failed",
                       reply("payment.failed", order, R"(,"reason":"card declined")")};
    return std::pair{"payment.completed", reply("payment.completed", order,
                                                R"(,"payment_id":"p1","amount":"1234567.89")")};
  }
  if (type == "shipment.create")
    return std::pair{"shipment.created",
                     reply("shipment.created", order, R"(,"shipment_id":"sh1")")};
  if (type == "inventory.release" && order == "o-fail")
    return std::pair{"inventory.released", reply("inventory.released", order, "")};
  return std::nullopt;  // o-stuck's release is withheld
}

}  // namespace

TEST_CASE("the console shows sagas of every outcome and dead letters, re-sends and replays",
          "[console]") {
  sagaflow::testing::RedisServer redis;
  auto& rabbit = sagaflow::testing::shared_rabbit();
  const int port = sagaflow::testing::free_port();
  const Env env = {{"SAGAFLOW_AMQP_URL", rabbit.amqp_url()},
                   {"SAGAFLOW_REDIS_URL", redis.url()},
                   {"SAGAFLOW_METRICS_ADDR", "0"},
                   {"SAGAFLOW_STEP_TIMEOUT_MS", "300"},
                   {"SAGAFLOW_CONSOLE_ADDR", "127.0.0.1:" + std::to_string(port)}};
  const std::string bin = sagaflow::testing::sagaflow_binary();
  {
    Process apply({bin, "topology", "apply"}, env);
    REQUIRE(apply.wait_for(30s) == 0);
  }
  for (const char* q : {"sagaflow.saga", "sagaflow.participants", "sagaflow.dead"}) rabbit.purge(q);

  Process worker({bin, "worker"}, env);
  Process console({bin, "console"}, env);
  Http http{port};
  REQUIRE(sagaflow::testing::wait_until_answers(port));
  REQUIRE(http.get("/healthz").status == 200);

  // An outgoing webhook endpoint that never answers (nothing listens on its port): every
  // delivery to it ends dead after two attempts.
  Env deliver_env = env;
  deliver_env.insert(deliver_env.end(), {{"SAGAFLOW_DELIVERY_ALLOW_PRIVATE", "1"},
                                         {"SAGAFLOW_DELIVERY_SCHEDULE", "50ms"},
                                         {"SAGAFLOW_DELIVERY_TIMEOUT_MS", "1000"},
                                         {"SAGAFLOW_BREAKER_FAILURES", "1000"}});
  std::string endpoint_id;
  {
    Process add({bin, "endpoints", "add", "--url",
                 "http://127.0.0.1:" + std::to_string(sagaflow::testing::free_port()) + "/hook",
                 "--events", "order.*"},
                deliver_env);
    REQUIRE(add.wait_for(30s) == 0);
    const std::string line = add.read_stdout();
    endpoint_id = line.substr(0, line.find(' '));
    REQUIRE(endpoint_id.rfind("ep_", 0) == 0);
  }
  rabbit.purge("sagaflow.deliveries");
  Process deliver({bin, "deliver"}, deliver_env);
  for (int i = 0; i < 100 && rabbit.queue_depth("sagaflow.deliveries") == 0; ++i) {
    // declared by deliver at start: wait until it exists (a publish before would not reach it)
    if (rabbit.get("sagaflow.deliveries")) break;
    std::this_thread::sleep_for(50ms);
  }
  std::this_thread::sleep_for(500ms);

  // Given three orders and two poison messages: three dead letters, as the worker dead-letters
  // both and the deliverer the one that is not JSON
  constexpr std::size_t kDeadLetters = 3;
  for (const char* order : {"o-ok", "o-fail", "o-stuck"})
    rabbit.publish("sagaflow.events", "order.created", order_created(order));
  rabbit.publish("sagaflow.events", "order.created", "{not json");
  rabbit.publish("sagaflow.events", "inventory.reserved",
                 reply("inventory.reserved", "o-ghost", R"(,"reservation_id":"r9")"));

  // The test answers as the participants until every saga has reached its end state.
  std::multiset<std::string> seen;  // "<order> <command>" as received
  auto participate = [&] {
    while (auto m = rabbit.get("sagaflow.participants")) {
      const std::string type = field(m->body, "type");
      const std::string order = field(m->body, "order_id");
      seen.insert(order + " " + type);
      if (auto a = answer(type, order)) rabbit.publish("sagaflow.events", a->first, a->second);
    }
  };
  simdjson::dom::parser parser;
  auto state_of = [&](const std::string& order) -> std::string {
    const RawAnswer a = http.get("/api/sagas/" + order);
    if (a.status != 200) return "";
    return field(a.body, "state");
  };
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < deadline) {
    participate();
    if (state_of("o-ok") == "confirmed" && state_of("o-fail") == "failed" &&
        state_of("o-stuck") == "stuck" && rabbit.queue_depth("sagaflow.dead") == kDeadLetters)
      break;
    std::this_thread::sleep_for(100ms);
  }
  INFO("worker: " << worker.read_stderr().substr(0, 4000));
  INFO("dead letters: " << rabbit.queue_depth("sagaflow.dead"));
  REQUIRE(state_of("o-ok") == "confirmed");
  REQUIRE(state_of("o-fail") == "failed");
  REQUIRE(state_of("o-stuck") == "stuck");
  REQUIRE(rabbit.queue_depth("sagaflow.dead") == kDeadLetters);
  // 1 send + 5 re-sends of the stuck release
  CHECK(seen.count("o-stuck inventory.release") == 6);

  {
    // Overview: the counts of each state and the dead letters by reason
    RawAnswer o;
    for (int i = 0; i < 50; ++i) {  // the index write follows the broker's confirm
      o = http.get("/api/overview");
      if (o.body.find("\"total\":" + std::to_string(kDeadLetters)) != std::string::npos) break;
      std::this_thread::sleep_for(100ms);
    }
    REQUIRE(o.status == 200);
    CHECK(o.headers["content-type"] == "application/json");
    auto ov = parse(parser, o.body);
    CHECK(int64_t(ov["sagas"]["confirmed"]) == 1);
    CHECK(int64_t(ov["sagas"]["failed"]) == 1);
    CHECK(int64_t(ov["sagas"]["stuck"]) == 1);
    CHECK(int64_t(ov["sagas"]["running"]) == 0);
    CHECK(int64_t(ov["parked"]) == 0);
    CHECK(int64_t(ov["dead_letters"]["total"]) == kDeadLetters);
    CHECK(int64_t(ov["dead_letters"]["by_reason"]["unknown_saga"]) == 1);
    CHECK(int64_t(ov["dead_letters"]["by_reason"]["malformed_json"]) == 2);
    CHECK(int64_t(ov["endpoints"]["total"]) == 1);
    CHECK(int64_t(ov["endpoints"]["circuit_open"]) == 0);
    CHECK(int64_t(ov["recent"]["confirmed"]) == 1);

    // Lists by state and by reason
    auto f = http.get("/api/sagas?state=failed");
    REQUIRE(f.status == 200);
    CHECK_THAT(f.body, Catch::Contains(
                           R"({"order_id":"o-fail","state":"failed","reason":"payment_failed")"));
    CHECK_THAT(f.body, Catch::Contains(R"("next_cursor":null)"));
    auto by_reason = http.get("/api/sagas?reason=payment_failed");
    CHECK_THAT(by_reason.body, Catch::Contains("o-fail"));
    CHECK_THAT(by_reason.body, Catch::Contains("o-stuck"));
    CHECK_THAT(by_reason.body, !Catch::Contains("o-ok"));

    // Paging one at a time walks every saga once, newest first
    std::vector<std::string> walked;
    std::string cursor;
    for (int guard = 0; guard < 10; ++guard) {
      auto page = http.get("/api/sagas?limit=1" + (cursor.empty() ? "" : "&cursor=" + cursor));
      REQUIRE(page.status == 200);
      auto p = parse(parser, page.body);
      for (auto s : p["sagas"].get_array()) walked.emplace_back(std::string_view(s["order_id"]));
      if (p["next_cursor"].is_null()) break;
      cursor = std::string(std::string_view(p["next_cursor"]));
      // the cursor is "<ms>:<order>": URL-safe for these ids
    }
    CHECK(std::set<std::string>(walked.begin(), walked.end()) ==
          std::set<std::string>{"o-ok", "o-fail", "o-stuck"});
    CHECK(walked.size() == 3);
    CHECK(walked.front() == "o-stuck");  // the last to change

    // Index entries whose records are gone (as an older worker could leave) are skipped, and
    // the answer still holds the next real saga: no empty page while there is more
    const std::string newer =
        std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count() +
                       10000);
    for (const char* ghost : {"ghost-1", "ghost-2", "ghost-3"})
      redis.command({"ZADD", "sagaflow:{0}:by_status:confirmed", newer, ghost});
    auto after_ghosts = http.get("/api/sagas?state=confirmed&limit=1");
    CHECK_THAT(after_ghosts.body, Catch::Contains(R"({"order_id":"o-ok","state":"confirmed")"));
    CHECK_THAT(after_ghosts.body, !Catch::Contains("ghost"));
    for (const char* ghost : {"ghost-1", "ghost-2", "ghost-3"})
      redis.command({"ZREM", "sagaflow:{0}:by_status:confirmed", ghost});

    // One saga: the saga show object and its definition as data; the exact money
    auto one = http.get("/api/sagas/o-fail");
    REQUIRE(one.status == 200);
    CHECK_THAT(one.body, Catch::Contains(R"("total":"1234567.89")"));  // as received
    auto detail = parse(parser, one.body);
    CHECK(std::string_view(detail["saga"]["state"]) == "failed");
    CHECK(std::string_view(detail["definition"]["name"]) == "order_fulfillment");
    CHECK(detail["definition"]["steps"].get_array().size() == 3);
    CHECK(std::string_view(detail["definition"]["steps"].at(1)["compensation"]) ==
          "payment.refund");

    // Bad input: 4xx with {"error","detail"}
    for (const char* bad : {"/api/sagas?limit=0", "/api/sagas?limit=abc", "/api/sagas?limit=501",
                            "/api/sagas?state=bogus", "/api/sagas?cursor=garbage",
                            "/api/dead-letters?cursor=1x", "/api/deliveries?state=maybe"}) {
      INFO(bad);
      auto a = http.get(bad);
      CHECK(a.status == 400);
      CHECK_THAT(a.body, Catch::Contains(R"("error":"bad_request","detail":)"));
    }
    CHECK(http.get("/api/sagas/no-such-order").status == 404);
    CHECK(http.get("/api/nothing-here").status == 404);

    // Access: another Host (DNS rebinding) and a POST without the page's CSRF token are refused
    CHECK(
        http.call("GET", "/api/overview", {}, {}, "evil.example:" + std::to_string(port)).status ==
        403);
    CHECK(http.call("POST", "/api/sagas/o-ok/resend").status == 403);
    RawAnswer page = http.get("/");
    REQUIRE(page.status == 200);
    const auto meta = page.body.find(R"(<meta name="csrf-token" content=")");
    REQUIRE(meta != std::string::npos);
    const std::string csrf = page.body.substr(meta + 33, 32);
    const std::string with_csrf = "X-CSRF-Token: " + csrf + "\r\n";
    CHECK(page.headers["content-security-policy"].find("script-src 'self'") != std::string::npos);

    // A saga that is not stuck cannot be re-sent; an empty replay is refused
    auto not_stuck = http.call("POST", "/api/sagas/o-ok/resend", "", with_csrf);
    CHECK(not_stuck.status == 409);
    CHECK_THAT(not_stuck.body, Catch::Contains("not_stuck"));
    CHECK(http.call("POST", "/api/dead-letters/replay", R"({"ids":[]})", with_csrf).status == 400);
    CHECK(http.call("POST", "/api/dead-letters/replay", "nonsense", with_csrf).status == 400);
    CHECK(http.call("POST", "/api/dead-letters/replay", R"({"reason":"no_such_reason"})", with_csrf)
              .status == 404);
    CHECK(rabbit.queue_depth("sagaflow.dead") == kDeadLetters);  // the scan put everything back

    // The dead letters, with their reason, detail, attempts, route, time and body preview
    auto dl = http.get("/api/dead-letters");
    REQUIRE(dl.status == 200);
    auto list = parse(parser, dl.body);
    REQUIRE(list["dead_letters"].get_array().size() == kDeadLetters);
    std::map<std::string, std::string> id_of;  // reason -> id
    for (auto d : list["dead_letters"].get_array()) {
      const std::string reason{std::string_view(d["reason"])};
      id_of[reason] = std::string(std::string_view(d["id"]));
      CHECK(int64_t(d["at"]) > 0);
      CHECK(int64_t(d["attempts"]) >= 1);
      CHECK_FALSE(std::string_view(d["detail"]).empty());
    }
    REQUIRE(id_of.size() == 2);
    CHECK_THAT(dl.body, Catch::Contains(R"("route":"inventory.reserved")"));
    CHECK_THAT(dl.body, Catch::Contains(R"("body_preview":"{not json")"));
    auto only = http.get("/api/dead-letters?reason=unknown_saga");
    CHECK_THAT(only.body, Catch::Contains(id_of["unknown_saga"]));
    CHECK_THAT(only.body, !Catch::Contains(id_of["malformed_json"]));
    // The same index from the command line
    {
      Process cli_list({bin, "dlq", "list", "--index", "--reason", "unknown_saga"}, env);
      REQUIRE(cli_list.wait_for(30s) == 0);
      const std::string out = cli_list.read_stdout();
      CHECK(std::count(out.begin(), out.end(), '\n') == 1);
      CHECK_THAT(out, Catch::Contains(R"("id":")" + id_of["unknown_saga"] + "\""));
      Process all({bin, "dlq", "list", "--index", "--limit", "2"}, env);
      REQUIRE(all.wait_for(30s) == 0);
      const std::string two = all.read_stdout();
      CHECK(std::count(two.begin(), two.end(), '\n') == 2);
      Process bad({bin, "dlq", "list", "--reason", "unknown_saga"}, env);
      CHECK(bad.wait_for(30s) == 2);  // --reason needs --index
    }

    // In a real browser: overview, search, graph, re-send of the stuck compensation, replay of
    // the unknown_saga dead letter (each confirmed in a dialog), screenshots of each page.
    const char* source = std::getenv("SAGAFLOW_SOURCE_DIR");
    REQUIRE(source != nullptr);
    const std::string out_dir = std::filesystem::absolute("console-screenshots").string();
    std::filesystem::create_directories(out_dir);
    const std::size_t releases_before = seen.count("o-stuck inventory.release");
    Process browser(
        {"/usr/bin/python3", std::string(source) + "/tests/browser/console_browser.py", "--url",
         "http://127.0.0.1:" + std::to_string(port), "--out", out_dir, "--dead-letter",
         id_of["unknown_saga"], "--dead-letters", std::to_string(kDeadLetters)},
        {});
    const auto code = browser.wait_for(180s);
    INFO("browser stdout: " << browser.read_stdout());
    INFO("browser stderr: " << browser.read_stderr());
    REQUIRE(code == 0);
    for (const char* png : {"overview.png", "saga-failed.png", "saga-stuck-resent.png",
                            "dead-letters-replayed.png"}) {
      INFO(png);
      CHECK(std::filesystem::file_size(out_dir + "/" + png) > 1000);
    }

    // The re-send went out through the outbox (same command id), and its ack ends the saga
    const auto until = std::chrono::steady_clock::now() + 30s;
    while (seen.count("o-stuck inventory.release") == releases_before &&
           std::chrono::steady_clock::now() < until) {
      participate();
      std::this_thread::sleep_for(100ms);
    }
    CHECK(seen.count("o-stuck inventory.release") == releases_before + 1);
    rabbit.publish("sagaflow.events", "inventory.released",
                   reply("inventory.released", "o-stuck", ""));
    for (int i = 0; i < 100 && state_of("o-stuck") != "failed"; ++i)
      std::this_thread::sleep_for(100ms);
    CHECK(state_of("o-stuck") == "failed");

    // The replayed dead letter went back to its route: the worker dead-letters it again (still no
    // saga for o-ghost) under a new id; the index no longer has the old one
    for (int i = 0; i < 100; ++i) {
      auto again = http.get("/api/dead-letters?reason=unknown_saga");
      if (again.body.find("\"id\"") != std::string::npos &&
          again.body.find(id_of["unknown_saga"]) == std::string::npos)
        break;
      std::this_thread::sleep_for(100ms);
    }
    auto again = http.get("/api/dead-letters?reason=unknown_saga");
    CHECK_THAT(again.body, !Catch::Contains(id_of["unknown_saga"]));
    CHECK_THAT(again.body, Catch::Contains(R"("reason":"unknown_saga")"));
    CHECK(rabbit.queue_depth("sagaflow.dead") == kDeadLetters);

    // Replay of all of a reason through the API
    auto all =
        http.call("POST", "/api/dead-letters/replay", R"({"reason":"malformed_json"})", with_csrf);
    CHECK(all.status == 200);
    CHECK(all.body == R"({"replayed":2})");

    // Endpoints and their dead deliveries (the orders' events could not be delivered)
    auto eps = http.get("/api/endpoints");
    REQUIRE(eps.status == 200);
    CHECK_THAT(eps.body, Catch::Contains(R"({"id":")" + endpoint_id + R"(")"));
    CHECK_THAT(eps.body, Catch::Contains(R"("state":"enabled","circuit":"closed")"));
    RawAnswer dead;
    for (int i = 0; i < 200; ++i) {
      dead = http.get("/api/deliveries?state=dead&endpoint=" + endpoint_id);
      if (dead.body.find("order.") != std::string::npos &&
          dead.body.find("o-stuck") != std::string::npos)
        break;
      std::this_thread::sleep_for(100ms);
    }
    REQUIRE(dead.status == 200);
    auto dead_list = parse(parser, dead.body);
    const std::size_t dead_count = dead_list["deliveries"].get_array().size();
    CHECK(dead_count >= 3);  // at least the three order.created events
    for (auto d : dead_list["deliveries"].get_array()) {
      CHECK(std::string_view(d["state"]) == "dead");
      CHECK(int64_t(d["attempts"]) == 2);
    }
    CHECK(http.call("POST", "/api/deliveries/replay", R"({"endpoint":"ep_nope"})", with_csrf)
              .status == 404);
    CHECK(http.get("/api/deliveries?endpoint=ep_nope").status == 404);
    CHECK(http.call("POST", "/api/deliveries/replay", R"({})", with_csrf).status == 400);
    auto again_dl = http.call("POST", "/api/deliveries/replay",
                              R"({"endpoint":")" + endpoint_id + R"("})", with_csrf);
    CHECK(again_dl.status == 200);
    auto replayed_dl = parse(parser, again_dl.body);
    CHECK(int64_t(replayed_dl["replayed"]) >= static_cast<int64_t>(dead_count));
    // Attempted again (and dead again after two more attempts: nothing listens)
    for (int i = 0; i < 200; ++i) {
      auto later = http.get("/api/deliveries?state=dead&endpoint=" + endpoint_id);
      if (later.body.find("\"attempts\":4") != std::string::npos) break;
      std::this_thread::sleep_for(100ms);
    }
    CHECK_THAT(http.get("/api/deliveries?state=dead&endpoint=" + endpoint_id).body,
               Catch::Contains("\"attempts\":4"));
  }
  deliver.signal(SIGTERM);
  CHECK(deliver.wait_for(30s) == 0);

  console.signal(SIGTERM);
  CHECK(console.wait_for(10s) == 0);
  worker.signal(SIGTERM);
  CHECK(worker.wait_for(30s) == 0);
  const std::string log = console.read_stdout() + console.read_stderr();
  CHECK_THAT(
      log,
      Catch::Contains(
          R"("msg":"console action","who":"local","action":"resend","target":"o-stuck","result":"ok")"));
  CHECK_THAT(log, Catch::Contains(R"("action":"replay")"));
}

TEST_CASE("with a token: 401 without it, Bearer for scripts, a login cookie and CSRF for pages",
          "[console]") {
  sagaflow::testing::RedisServer redis;
  const int port = sagaflow::testing::free_port();
  const std::string bin = sagaflow::testing::sagaflow_binary();
  Process console({bin, "console"},
                  {{"SAGAFLOW_REDIS_URL", redis.url()},
                   {"SAGAFLOW_CONSOLE_TOKEN", "t0ken-for-tests"},
                   {"SAGAFLOW_CONSOLE_ADDR", "127.0.0.1:" + std::to_string(port)}});
  Http http{port};
  REQUIRE(sagaflow::testing::wait_until_answers(port));
  CHECK(http.get("/api/overview").status == 401);
  CHECK(http.get("/").status == 401);  // the login form
  CHECK(http.call("GET", "/api/overview", {}, "Authorization: Bearer t0ken-for-tests\r\n").status ==
        200);
  CHECK(http.call("GET", "/api/overview", {}, "Authorization: Bearer t0ken-for-test\r\n").status ==
        401);
  // A Bearer POST needs no CSRF header (the saga does not exist: 404, not 403)
  CHECK(http.call("POST", "/api/sagas/x/resend", "", "Authorization: Bearer t0ken-for-tests\r\n")
            .status == 404);

  CHECK(http.call("POST", "/login", "token=wrong",
                  "Content-Type: application/x-www-form-urlencoded\r\n")
            .status == 401);
  auto login = http.call("POST", "/login", "token=t0ken-for-tests",
                         "Content-Type: application/x-www-form-urlencoded\r\n");
  REQUIRE(login.status == 303);
  const std::string set_cookie = login.headers["set-cookie"];
  CHECK_THAT(set_cookie, Catch::Contains("HttpOnly"));
  CHECK_THAT(set_cookie, Catch::Contains("SameSite=Strict"));
  const std::string cookie = "Cookie: " + set_cookie.substr(0, set_cookie.find(';')) + "\r\n";
  auto page = http.call("GET", "/", {}, cookie);
  REQUIRE(page.status == 200);
  const auto meta = page.body.find(R"(<meta name="csrf-token" content=")");
  REQUIRE(meta != std::string::npos);
  const std::string csrf = page.body.substr(meta + 33, 64);
  CHECK(http.call("GET", "/api/overview", {}, cookie).status == 200);
  CHECK(http.call("POST", "/api/sagas/x/resend", "", cookie).status == 403);
  CHECK(http.call("POST", "/api/sagas/x/resend", "", cookie + "X-CSRF-Token: " + csrf + "\r\n")
            .status == 404);
  // With a token any Host is fine (it may sit behind a proxy)
  CHECK(http.call("GET", "/api/overview", {}, "Authorization: Bearer t0ken-for-tests\r\n",
                  "console.example.com")
            .status == 200);
  console.signal(SIGTERM);
  CHECK(console.wait_for(10s) == 0);
}

TEST_CASE("the console refuses to listen beyond loopback without a token", "[console]") {
  Process console(
      {sagaflow::testing::sagaflow_binary(), "console"},
      {{"SAGAFLOW_CONSOLE_ADDR", "0.0.0.0:" + std::to_string(sagaflow::testing::free_port())}});
  CHECK(console.wait_for(10s) == 2);
  const std::string err = console.read_stderr();
  CHECK_THAT(err, Catch::Contains("SAGAFLOW_CONSOLE_TOKEN"));
  CHECK(std::count(err.begin(), err.end(), '\n') == 1);
}
