// http::Client (CONTRACT.md section 9, the attempt itself) against a real HTTP/1.1 receiver on
// loopback: what arrives, which answers are reported how, keep-alive, timeouts, refused and
// reset connections, redirects not followed, allow_address, per-pool isolation, the global cap,
// stop() in flight and oversized response bodies.
#include <uv.h>
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "http/client.hpp"
#include "support/uv_loop.hpp"
#include "support/webhook_receiver.hpp"

using namespace std::chrono_literals;
using sagaflow::http::Client;
using sagaflow::http::ClientOptions;
using sagaflow::http::ClientRequest;
using sagaflow::http::ClientResponse;
using sagaflow::testing::Behaviour;
using sagaflow::testing::UvLoop;
using sagaflow::testing::WebhookReceiver;

namespace {

bool is_loopback_v4(const sockaddr* sa) {
  if (sa->sa_family != AF_INET) return false;
  sockaddr_in v4{};
  std::memcpy(&v4, sa, sizeof v4);
  return ntohl(v4.sin_addr.s_addr) == INADDR_LOOPBACK;
}

// A client on a test loop, stopped (and its handles closed) at the end of the test.
struct Fixture {
  explicit Fixture(ClientOptions options = {})
      : client(std::make_unique<Client>(loop.get(), std::move(options))) {}
  ~Fixture() {
    if (!closed) {
      client->stop([this] { closed = true; });
      loop.run_until([this] { return closed; }, 10s);
    }
    if (closed) client.reset();
    // else: the Client frees its state when its handles close (the loop's destructor runs them)
  }

  // Posts and runs the loop until the answer comes (at most `limit`).
  ClientResponse post(ClientRequest request, std::chrono::milliseconds limit = 10s) {
    std::optional<ClientResponse> got;
    bool in_post = true;
    bool called_inside_post = false;
    client->post(std::move(request), [&](ClientResponse r) {
      called_inside_post = in_post;
      got = std::move(r);
    });
    in_post = false;
    REQUIRE(loop.run_until([&] { return got.has_value(); }, limit));
    REQUIRE_FALSE(called_inside_post);
    return std::move(*got);
  }

  ClientRequest request(const std::string& path, std::string body = "{}",
                        std::string pool = "ep_test") const {
    ClientRequest r;
    r.pool = std::move(pool);
    r.url = rx.url(path);
    r.body = std::move(body);
    r.headers = {{"Content-Type", "application/json"}};
    r.timeout_ms = 5000;
    return r;
  }

  UvLoop loop;
  WebhookReceiver rx;
  std::unique_ptr<Client> client;
  bool closed = false;
};

}  // namespace

TEST_CASE("client: a POST arrives with its body byte for byte and the caller's headers") {
  Fixture f;
  // 2 MiB of every byte value: curl would send "Expect: 100-continue" for it by default.
  std::string body;
  for (std::size_t i = 0; i < 2 * 1024 * 1024; ++i) body.push_back(static_cast<char>(i * 7 % 256));
  ClientRequest req = f.request("/hooks/in?x=1", body);
  req.headers = {{"Content-Type", "application/json"},
                 {"webhook-id", "evt_123"},
                 {"webhook-timestamp", "1700000000"},
                 {"X-Sagaflow-Signature", "t=1700000000,v1=abcdef"}};
  const ClientResponse r = f.post(req);
  CHECK(r.status == 200);
  CHECK(r.error.empty());
  CHECK_FALSE(r.timed_out);
  CHECK_FALSE(r.refused_address);

  const auto got = f.rx.requests();
  REQUIRE(got.size() == 1);
  CHECK(got[0].method == "POST");
  CHECK(got[0].path == "/hooks/in?x=1");
  CHECK(got[0].body.size() == body.size());
  CHECK(got[0].body == body);
  CHECK(got[0].header("content-type") == "application/json");
  CHECK(got[0].header("webhook-id") == "evt_123");
  CHECK(got[0].header("webhook-timestamp") == "1700000000");
  CHECK(got[0].header("x-sagaflow-signature") == "t=1700000000,v1=abcdef");
  CHECK(got[0].header("content-length") == std::to_string(body.size()));
  CHECK(got[0].header("user-agent") == "sagaflow-webhooks/1");
  CHECK_FALSE(got[0].has_header("expect"));
  CHECK_FALSE(got[0].has_header("transfer-encoding"));

  SECTION("without a Content-Type from the caller, none is sent (not curl's form default)") {
    ClientRequest bare = f.request("/bare", "a=b");
    bare.headers = {{"webhook-id", "evt_9"}};
    CHECK(f.post(bare).status == 200);
    const auto all = f.rx.requests();
    REQUIRE(all.size() == 2);
    CHECK(all[1].body == "a=b");
    CHECK(all[1].header("webhook-id") == "evt_9");
    CHECK_FALSE(all[1].has_header("content-type"));
    CHECK_FALSE(all[1].has_header("expect"));
  }
}

TEST_CASE("client: answers' statuses are reported as they came") {
  Fixture f;
  f.rx.respond(500, "", "/fail");
  f.rx.respond(410, "", "/gone");
  f.rx.respond(204, "", "/empty");
  const ClientResponse ok = f.post(f.request("/ok"));
  const ClientResponse fail = f.post(f.request("/fail"));
  const ClientResponse gone = f.post(f.request("/gone"));
  const ClientResponse empty = f.post(f.request("/empty"));
  CHECK(ok.status == 200);
  CHECK(fail.status == 500);
  CHECK(gone.status == 410);
  CHECK(empty.status == 204);
  for (const auto* r : {&ok, &fail, &gone, &empty}) {
    CHECK(r->error.empty());
    CHECK_FALSE(r->timed_out);
    CHECK(r->retry_after.empty());
  }
  CHECK(f.rx.count() == 4);
}

TEST_CASE("client: Retry-After of 429 and 503 answers is captured") {
  Fixture f;
  f.rx.respond(429, "120", "/limited");
  f.rx.respond(503, "Wed, 21 Oct 2037 07:28:00 GMT", "/down");
  const ClientResponse limited = f.post(f.request("/limited"));
  const ClientResponse down = f.post(f.request("/down"));
  const ClientResponse ok = f.post(f.request("/ok"));
  CHECK(limited.status == 429);
  CHECK(limited.retry_after == "120");
  CHECK(down.status == 503);
  CHECK(down.retry_after == "Wed, 21 Oct 2037 07:28:00 GMT");
  CHECK(ok.status == 200);
  CHECK(ok.retry_after.empty());  // none sent: none reported (same connection as the 503)
}

TEST_CASE("client: sequential posts reuse a keep-alive connection") {
  Fixture f;
  int done = 0;
  int ok = 0;
  std::function<void()> next = [&] {
    f.client->post(f.request("/seq", "{\"n\":" + std::to_string(done) + "}"),
                   [&](ClientResponse r) {
                     ++done;
                     if (r.status == 200 && r.error.empty()) ++ok;
                     if (done < 100) next();
                   });
  };
  next();
  REQUIRE(f.loop.run_until([&] { return done == 100; }, 30s));
  CHECK(ok == 100);
  CHECK(f.rx.count() == 100);
  CHECK(f.rx.connections() <= 2);
  const auto got = f.rx.requests();
  CHECK(got.back().body == "{\"n\":99}");
}

TEST_CASE("client: a receiver that never answers times out after timeout_ms") {
  Fixture f;
  f.rx.hang();
  ClientRequest req = f.request("/hang");
  req.timeout_ms = 400;
  const auto t0 = std::chrono::steady_clock::now();
  const ClientResponse r = f.post(req, 5s);
  const auto took = std::chrono::steady_clock::now() - t0;
  CHECK(r.timed_out);
  CHECK(r.status == 0);
  CHECK_FALSE(r.error.empty());
  CHECK(r.error.find('\n') == std::string::npos);
  CHECK(r.elapsed_ms >= 400);
  CHECK(r.elapsed_ms < 400 + 500);
  CHECK(took >= 400ms);
  CHECK(took < 400ms + 600ms);
  CHECK(f.rx.count() == 1);  // it did arrive
}

TEST_CASE("client: a refused connection is an error, and the same URL works once it listens") {
  Fixture f;
  f.rx.refuse_connections();
  const ClientResponse r = f.post(f.request("/x"));
  CHECK(r.status == 0);
  CHECK_FALSE(r.error.empty());
  CHECK(r.error.find('\n') == std::string::npos);
  CHECK_FALSE(r.timed_out);
  CHECK_FALSE(r.refused_address);
  CHECK(r.elapsed_ms < 2000);
  CHECK(f.rx.connections() == 0);
  CHECK(f.rx.count() == 0);

  f.rx.accept_connections();
  const ClientResponse again = f.post(f.request("/x"));
  CHECK(again.status == 200);
  CHECK(again.error.empty());
  CHECK(f.rx.count() == 1);
}

TEST_CASE("client: a connection reset instead of an answer is an error") {
  Fixture f;
  f.rx.reset();
  const ClientResponse r = f.post(f.request("/reset"));
  CHECK(r.status == 0);
  CHECK_FALSE(r.error.empty());
  CHECK_FALSE(r.timed_out);
  CHECK(f.rx.count() >= 1);  // the request arrived; the connection was then reset

  // The client is still fine afterwards.
  f.rx.clear_rules();
  CHECK(f.post(f.request("/ok")).status == 200);
}

TEST_CASE("client: redirects are not followed, the 3xx is the answer") {
  Fixture f;
  Behaviour redirect;
  redirect.status = 302;
  redirect.headers = {{"Location", f.rx.url("/elsewhere")}};
  f.rx.set(redirect, "/moved");
  const ClientResponse r = f.post(f.request("/moved"));
  CHECK(r.status == 302);
  CHECK(r.error.empty());
  f.loop.run_for(200ms);
  CHECK(f.rx.count() == 1);
  CHECK(f.rx.count("/elsewhere") == 0);
}

TEST_CASE("client: allow_address sees the address connected to and can refuse it") {
  SECTION("refused: no connection is made") {
    int asked = 0;
    ClientOptions options;
    options.allow_address = [&](const sockaddr* sa) {
      ++asked;
      return !is_loopback_v4(sa);
    };
    Fixture f(std::move(options));
    const ClientResponse r = f.post(f.request("/private"));
    CHECK(r.refused_address);
    CHECK(r.status == 0);
    CHECK(r.error == "address refused: 127.0.0.1");
    CHECK_FALSE(r.timed_out);
    CHECK(asked >= 1);
    f.loop.run_for(100ms);
    CHECK(f.rx.connections() == 0);
    CHECK(f.rx.count() == 0);
  }
  SECTION("allowed: the callback got the receiver's address and port") {
    int asked = 0;
    int port_seen = 0;
    ClientOptions options;
    options.allow_address = [&](const sockaddr* sa) {
      ++asked;
      if (is_loopback_v4(sa)) {
        sockaddr_in v4{};
        std::memcpy(&v4, sa, sizeof v4);
        port_seen = ntohs(v4.sin_port);
      }
      return true;
    };
    Fixture f(std::move(options));
    const ClientResponse r = f.post(f.request("/public"));
    CHECK(r.status == 200);
    CHECK_FALSE(r.refused_address);
    CHECK(asked == 1);
    CHECK(port_seen == f.rx.port());
    CHECK(f.rx.count() == 1);
  }
}

TEST_CASE("client: a hanging pool holds only its own slots; another pool is not delayed") {
  ClientOptions options;
  options.max_per_pool = 2;
  Fixture f(std::move(options));
  f.rx.hang("/a");

  int a_done = 0;
  std::vector<std::string> a_errors;
  for (int i = 0; i < 10; ++i) {
    ClientRequest req = f.request("/a", "{}", "A");
    req.timeout_ms = 30000;
    f.client->post(std::move(req), [&](ClientResponse r) {
      ++a_done;
      a_errors.push_back(r.error);
    });
  }
  REQUIRE(f.loop.run_until([&] { return f.rx.count("/a") == 2; }, 5s));
  CHECK(f.client->in_flight("A") == 2);
  CHECK(f.client->queued() == 8);

  int b_done = 0;
  int b_ok = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 200; ++i) {
    f.client->post(f.request("/b", "{}", "B"), [&](ClientResponse r) {
      ++b_done;
      if (r.status == 200) ++b_ok;
    });
  }
  CHECK(f.client->in_flight("B") == 2);  // B's own cap
  REQUIRE(f.loop.run_until([&] { return b_done == 200; }, 10s));
  const auto took = std::chrono::steady_clock::now() - t0;
  CHECK(b_ok == 200);
  CHECK(took < 5s);
  CHECK(f.rx.count("/b") == 200);
  CHECK(f.rx.count("/a") == 2);  // no third A started meanwhile
  CHECK(f.client->in_flight("A") == 2);
  CHECK(f.client->in_flight("B") == 0);
  CHECK(a_done == 0);

  f.client->stop([&] { f.closed = true; });
  REQUIRE(f.loop.run_until([&] { return f.closed; }, 5s));
  CHECK(a_done == 10);
  CHECK(std::count(a_errors.begin(), a_errors.end(), "stopped") == 10);
}

TEST_CASE("client: the global cap serves waiting pools round-robin") {
  ClientOptions options;
  options.max_total = 1;
  options.max_per_pool = 4;
  Fixture f(std::move(options));
  f.rx.slow(30ms);
  std::vector<std::string> order;
  for (int i = 0; i < 5; ++i) {
    f.client->post(f.request("/a" + std::to_string(i), "{}", "A"),
                   [&, i](ClientResponse) { order.push_back("A" + std::to_string(i)); });
  }
  f.client->post(f.request("/b0", "{}", "B"), [&](ClientResponse) { order.push_back("B0"); });
  CHECK(f.client->in_flight() == 1);
  CHECK(f.client->queued() == 5);
  REQUIRE(f.loop.run_until([&] { return order.size() == 6; }, 10s));
  // FIFO over all pools would put B0 last; round-robin serves B right after A's next turn.
  const auto b = std::find(order.begin(), order.end(), "B0") - order.begin();
  CHECK(b <= 2);
  const auto got = f.rx.requests();
  REQUIRE(got.size() == 6);
  CHECK((got[1].path == "/b0" || got[2].path == "/b0"));
}

TEST_CASE("client: stop() with transfers in flight answers every one \"stopped\", then closed") {
  ClientOptions options;
  options.max_per_pool = 2;
  Fixture f(std::move(options));
  f.rx.hang();
  std::vector<ClientResponse> answers;
  for (int i = 0; i < 5; ++i) {
    f.client->post(f.request("/h" + std::to_string(i)),
                   [&](ClientResponse r) { answers.push_back(std::move(r)); });
  }
  f.client->post(f.request("/other", "{}", "other_pool"),
                 [&](ClientResponse r) { answers.push_back(std::move(r)); });
  REQUIRE(f.loop.run_until([&] { return f.rx.count() == 3; }, 5s));
  REQUIRE(f.rx.wait_for_count(3, 1s));
  CHECK(f.client->in_flight() == 3);
  CHECK(f.client->queued() == 3);
  REQUIRE(f.rx.open_connections() == 3);

  std::size_t answers_when_closed = 0;
  int closed_calls = 0;
  f.client->stop([&] {
    ++closed_calls;
    answers_when_closed = answers.size();
    f.closed = true;
  });
  CHECK(answers.empty());                   // never inside stop()
  f.client->stop([&] { ++closed_calls; });  // ignored
  bool late_done = false;
  f.client->post(f.request("/late"), [&](ClientResponse r) {
    late_done = true;
    CHECK(r.error == "stopped");
  });
  CHECK_FALSE(late_done);  // never inside post()
  REQUIRE(f.loop.run_until([&] { return f.closed; }, 5s));
  f.loop.run_for(50ms);
  CHECK(closed_calls == 1);
  CHECK(late_done);
  CHECK(answers.size() == 6);
  CHECK(answers_when_closed == 6);
  for (const auto& r : answers) {
    CHECK(r.error == "stopped");
    CHECK(r.status == 0);
  }
  CHECK(f.client->in_flight() == 0);
  CHECK(f.client->queued() == 0);
  // Every connection was closed: the receiver sees them go.
  for (int i = 0; i < 100 && f.rx.open_connections() != 0; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  CHECK(f.rx.open_connections() == 0);
  CHECK(f.rx.count() == 3);
}

TEST_CASE("client: a body over max_response_bytes is cut short and the status still counts") {
  ClientOptions options;
  options.max_response_bytes = 1024;
  Fixture f(std::move(options));
  Behaviour small;
  small.body_bytes = 1000;
  f.rx.set(small, "/small");
  Behaviour big;
  big.status = 200;
  big.body_bytes = 4 * 1024 * 1024;
  f.rx.set(big, "/big");
  Behaviour big_fail = big;
  big_fail.status = 500;
  f.rx.set(big_fail, "/bigfail");

  CHECK(f.post(f.request("/small")).status == 200);
  CHECK(f.post(f.request("/small")).status == 200);
  CHECK(f.rx.connections() == 1);  // bodies under the limit keep the connection

  const ClientResponse r = f.post(f.request("/big"));
  CHECK(r.status == 200);
  CHECK(r.error.empty());
  const ClientResponse r500 = f.post(f.request("/bigfail"));
  CHECK(r500.status == 500);
  CHECK(r500.error.empty());

  // Each cut closed its connection: the next attempt needs a new one.
  CHECK(f.post(f.request("/small")).status == 200);
  CHECK(f.rx.connections() == 3);
}
