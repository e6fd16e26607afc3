// http::Server as an attacker and a sender see it (CONTRACT.md section 7, HTTP behaviour): a
// real listener on loopback, its libuv loop on a thread of its own, and raw sockets that
// pipeline, overflow, half-send and disconnect. The handler answers asynchronously, as the
// webhook ingress does after the broker's confirm, and records every request it was handed,
// so a test can tell that no byte of a refused body was ever parsed as a request.
#include <uv.h>
#include <catch2/catch.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "http/server.hpp"
#include "support/raw_http.hpp"

using namespace std::chrono_literals;
using sagaflow::http::Limits;
using sagaflow::http::Request;
using sagaflow::http::Respond;
using sagaflow::http::Response;
using sagaflow::testing::raw_get;
using sagaflow::testing::raw_post;
using sagaflow::testing::RawConn;

namespace {

// The server under test on its own loop thread.
class LiveServer {
 public:
  explicit LiveServer(Limits limits) {
    uv_loop_init(&loop_);
    server_ = std::make_unique<sagaflow::http::Server>(
        &loop_, [this](const Request& r, Respond respond) { handle(r, std::move(respond)); },
        limits);
    REQUIRE(server_->listen("127.0.0.1", 0));
    uv_async_init(&loop_, &stop_, [](uv_async_t* a) {
      auto* self = static_cast<LiveServer*>(a->data);
      self->server_->stop();
      uv_close(reinterpret_cast<uv_handle_t*>(a), nullptr);
    });
    stop_.data = this;
    thread_ = std::thread([this] { uv_run(&loop_, UV_RUN_DEFAULT); });
  }
  ~LiveServer() {
    uv_async_send(&stop_);
    thread_.join();
    server_.reset();
    for (int i = 0; i < 10; ++i) uv_run(&loop_, UV_RUN_NOWAIT);
    uv_loop_close(&loop_);
  }

  int port() const { return server_->port(); }
  std::vector<std::string> seen() {
    std::lock_guard lock(mu_);
    return seen_;
  }
  std::size_t handled() {
    std::lock_guard lock(mu_);
    return seen_.size();
  }

 private:
  // /healthz at once; /echo echoes the body after 2 ms; /slow answers after 300 ms; /hang
  // never answers.
  void handle(const Request& r, Respond respond) {
    {
      std::lock_guard lock(mu_);
      seen_.push_back(r.method + " " + r.path);
    }
    if (r.path == "/healthz") {
      respond(Response{200, "text/plain", "ok"});
      return;
    }
    if (r.path == "/hang") {
      hung_.push_back(std::move(respond));  // kept, never called
      return;
    }
    const std::uint64_t delay = r.path == "/slow" ? 300 : 2;
    auto* timer = new uv_timer_t;
    uv_timer_init(&loop_, timer);
    timer->data = new std::pair<Respond, std::string>(std::move(respond), r.body);
    uv_timer_start(
        timer,
        [](uv_timer_t* t) {
          auto* p = static_cast<std::pair<Respond, std::string>*>(t->data);
          p->first(Response{200, "text/plain", p->second});
          delete p;
          uv_close(reinterpret_cast<uv_handle_t*>(t),
                   [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
        },
        delay, 0);
  }

  uv_loop_t loop_{};
  uv_async_t stop_{};
  std::unique_ptr<sagaflow::http::Server> server_;
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> seen_;
  std::vector<Respond> hung_;
};

Limits small_limits() {
  Limits l;
  l.max_body_bytes = 1024;
  l.header_timeout_ms = 2000;
  return l;
}

// A body that, if it were ever parsed as requests, would reach the handler.
std::string smuggled(std::size_t at_least) {
  std::string s;
  while (s.size() < at_least) s += raw_get("/healthz") + raw_post("/echo", "smuggled");
  return s;
}

std::string chunked(const std::string& body, std::size_t piece) {
  std::string out;
  for (std::size_t i = 0; i < body.size(); i += piece) {
    const std::string part = body.substr(i, piece);
    char size[32];
    std::snprintf(size, sizeof size, "%zx\r\n", part.size());
    out += size + part + "\r\n";
  }
  return out + "0\r\n\r\n";
}

}  // namespace

TEST_CASE("pipelined requests get one answer each, in request order", "[http]") {
  LiveServer server(small_limits());
  RawConn c(server.port());
  REQUIRE(c.connected());
  // Given three POSTs answered asynchronously and a GET answered at once, in one write
  REQUIRE(c.send(raw_post("/echo", "first") + raw_post("/echo", "second-") + raw_get("/healthz") +
                 raw_post("/echo", "third--!")));
  const auto answers = c.read_answers(4, 5s);
  REQUIRE(answers.size() == 4);
  CHECK(answers[0].body == "first");
  CHECK(answers[1].body == "second-");
  CHECK(answers[2].body == "ok");
  CHECK(answers[3].body == "third--!");
  for (const auto& a : answers) CHECK(a.status == 200);
  CHECK(server.handled() == 4);
}

TEST_CASE("a declared body over the limit: a readable 413, and none of it is parsed", "[http]") {
  LiveServer server(small_limits());
  RawConn c(server.port());
  // Given a head declaring 100 kB, followed by 16 kB of would-be requests
  const std::string head =
      "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n"
      "Content-Type: application/json\r\n\r\n";
  REQUIRE(c.send(head));
  c.send(smuggled(16 * 1024));  // may fail once the server has closed: that is fine
  // Then the client reads the 413, the connection closes, and no request reached the handler
  const auto a = c.read_answer(5s);
  CHECK(a.status == 413);
  CHECK(a.body.find("too_large") != std::string::npos);
  CHECK(c.closed_by_peer(5s));
  CHECK(server.handled() == 0);
  // And a Content-Length too large for any integer is refused the same way
  RawConn huge(server.port());
  huge.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999999999999999\r\n\r\n");
  const auto h = huge.read_answer(5s);
  CHECK((h.status == 413 || h.status == 400));
  CHECK(server.handled() == 0);
}

TEST_CASE("chunked bodies: under the limit joined, over it 413 and never parsed", "[http]") {
  LiveServer server(small_limits());
  const std::string te = "Transfer-Encoding: chunked\r\n";
  {
    RawConn c(server.port());
    const std::string body(900, 'x');
    REQUIRE(c.send("POST /echo HTTP/1.1\r\nHost: t\r\n" + te + "\r\n" + chunked(body, 100)));
    const auto a = c.read_answer(5s);
    CHECK(a.status == 200);
    CHECK(a.body == body);
  }
  {
    RawConn c(server.port());
    const std::string body = smuggled(5000);
    c.send("POST /echo HTTP/1.1\r\nHost: t\r\n" + te + "\r\n" + chunked(body, 700));
    const auto a = c.read_answer(5s);
    CHECK(a.status == 413);
    CHECK(c.closed_by_peer(5s));
  }
  {
    // A 2 MiB chunked body sent in one go: the 413 comes as soon as it passes the limit, and
    // survives the rest of the body arriving (read and thrown away, not a reset)
    RawConn c(server.port());
    REQUIRE(c.send("POST /echo HTTP/1.1\r\nHost: t\r\n" + te + "\r\n" +
                   chunked(std::string(2 << 20, 'z'), 65536)));
    const auto a = c.read_answer(5s);
    CHECK(a.status == 413);
    CHECK(a.body.find("too_large") != std::string::npos);
    CHECK(c.closed_by_peer(5s));
  }
  CHECK(server.handled() == 1);  // only the first request
}

TEST_CASE("a request head over 16 KiB gets 431; just under is served", "[http]") {
  LiveServer server(small_limits());
  {
    RawConn c(server.port());
    c.send("GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: " + std::string(20 * 1024, 'a') +
           "\r\n\r\n");
    CHECK(c.read_answer(5s).status == 431);
  }
  {
    RawConn c(server.port());
    c.send("GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: " + std::string(15 * 1024, 'a') +
           "\r\n\r\n");
    CHECK(c.read_answer(5s).status == 200);
  }
  {
    // The head is measured as sent, not after decoding or trimming
    RawConn c(server.port());
    std::string query;
    for (int i = 0; i < 6 * 1024; ++i) query += "%41";
    c.send("GET /healthz?q=" + query + " HTTP/1.1\r\nHost: t\r\n\r\n");
    CHECK(c.read_answer(5s).status == 431);
    RawConn padded(server.port());
    padded.send("GET /healthz HTTP/1.1\r\nHost: t\r\nX-Pad: a" + std::string(20 * 1024, ' ') +
                "b\r\n\r\n");
    CHECK(padded.read_answer(5s).status == 431);
  }
  {
    // Far beyond what the connection's memory holds: still a 431, never a crash
    RawConn c(server.port());
    c.send("GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: " + std::string(200 * 1024, 'a') +
           "\r\n\r\n");
    const auto a = c.read_answer(5s);
    CHECK(a.status == 431);
  }
  CHECK(server.handled() == 1);
}

TEST_CASE("HTTP/1.0, keep-alive with 1,000 requests, a client gone before the answer", "[http]") {
  LiveServer server(small_limits());
  {
    RawConn c(server.port());
    c.send("GET /healthz HTTP/1.0\r\n\r\n");
    const auto a = c.read_answer(5s);
    CHECK(a.status == 200);
    CHECK(c.closed_by_peer(5s));  // HTTP/1.0 without keep-alive: closed after the answer
  }
  {
    RawConn c(server.port());
    int ok = 0;
    for (int i = 0; i < 1000; ++i) {
      const std::string body = std::to_string(i);
      if (!c.send(raw_post("/echo", body))) break;
      const auto a = c.read_answer(5s);
      ok += a.status == 200 && a.body == body;
    }
    CHECK(ok == 1000);
  }
  {
    // A client that disconnects while its answer is pending: dropped, the server serves on
    RawConn c(server.port());
    c.send(raw_post("/slow", "bye"));
    std::this_thread::sleep_for(50ms);
    c.close();
    std::this_thread::sleep_for(400ms);
    RawConn next(server.port());
    next.send(raw_get("/healthz"));
    CHECK(next.read_answer(5s).status == 200);
  }
}

TEST_CASE("2,000 half-sent heads are closed at the header timeout; the listener serves on",
          "[http]") {
  // This process holds both ends of every connection
  rlimit fds{};
  ::getrlimit(RLIMIT_NOFILE, &fds);
  fds.rlim_cur = fds.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &fds);
  ::getrlimit(RLIMIT_NOFILE, &fds);
  const int count = static_cast<int>(std::min<rlim_t>(2000, (fds.rlim_cur - 200) / 2));
  INFO("connections: " << count);
  Limits l = small_limits();
  l.header_timeout_ms = 500;  // the library's own idle timeout is 10 s: this is the sweep's work
  l.max_connections = 4096;
  LiveServer server(l);
  std::vector<RawConn> idle;
  idle.reserve(static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i) {
    idle.emplace_back(server.port());
    REQUIRE(idle.back().connected());
    idle.back().send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Le");
  }
  // A slow client trickling its head a byte at a time is closed by the same deadline
  RawConn slow(server.port());
  const auto start = std::chrono::steady_clock::now();
  bool slow_alive = true;
  for (int i = 0; i < 30 && slow_alive; ++i) {
    slow_alive = slow.send("X");
    std::this_thread::sleep_for(50ms);
    if (slow.closed_by_peer(1ms)) slow_alive = false;
  }
  CHECK_FALSE(slow_alive);
  // Meanwhile the listener answers
  RawConn probe(server.port());
  probe.send(raw_get("/healthz"));
  CHECK(probe.read_answer(5s).status == 200);
  // Every idle one is closed by the server, not long after the timeout
  int closed = 0;
  for (auto& c : idle) closed += c.closed_by_peer(3s);
  CHECK(closed == count);
  CHECK(std::chrono::steady_clock::now() - start < 10s);
  CHECK(server.handled() == 1);
}

TEST_CASE("beyond the connection cap new connections wait, then are served", "[http]") {
  Limits l = small_limits();
  l.header_timeout_ms = 60000;
  l.max_connections = 20;
  LiveServer server(l);
  std::vector<RawConn> idle;
  for (int i = 0; i < 20; ++i) {
    idle.emplace_back(server.port());
    idle.back().send("GET /healthz HTTP/1.1\r\nHost: t\r\n");  // never finished
  }
  std::this_thread::sleep_for(300ms);
  // Given the cap is reached: a new request is not served while it lasts
  RawConn waiting(server.port());
  REQUIRE(waiting.connected());  // the kernel's backlog holds it
  waiting.send(raw_get("/healthz"));
  CHECK(waiting.read_answers(1, 500ms).empty());
  // When the idle connections go, it is served
  idle.clear();
  CHECK(waiting.read_answer(5s).status == 200);
  RawConn later(server.port());
  later.send(raw_get("/healthz"));
  CHECK(later.read_answer(5s).status == 200);
}

TEST_CASE("50 connections opened at once, each with a request in flight, all answered", "[http]") {
  LiveServer server(small_limits());
  std::vector<RawConn> conns;
  for (int i = 0; i < 50; ++i) conns.emplace_back(server.port());
  for (int i = 0; i < 50; ++i) REQUIRE(conns[i].send(raw_post("/echo", std::to_string(i))));
  int ok = 0;
  for (int i = 0; i < 50; ++i) {
    const auto a = conns[i].read_answer(5s);
    ok += a.status == 200 && a.body == std::to_string(i);
  }
  CHECK(ok == 50);
}

TEST_CASE("a request sent a while after the connection opened is served", "[http]") {
  LiveServer server(small_limits());
  std::vector<RawConn> conns;
  for (int i = 0; i < 5; ++i) conns.emplace_back(server.port());
  std::this_thread::sleep_for(200ms);
  int ok = 0;
  for (int i = 0; i < 5; ++i) {
    REQUIRE(conns[i].send(raw_post("/echo", std::to_string(i))));
    ok += conns[i].read_answer(3s).status == 200;
  }
  CHECK(ok == 5);
}

TEST_CASE("a handler that never answers gets 504 at the handler timeout", "[http]") {
  Limits l = small_limits();
  l.handler_timeout_ms = 300;
  LiveServer server(l);
  RawConn c(server.port());
  const auto start = std::chrono::steady_clock::now();
  REQUIRE(c.send(raw_post("/hang", "x") + raw_get("/healthz")));
  const auto answers = c.read_answers(2, 5s);
  REQUIRE(answers.size() == 2);
  CHECK(answers[0].status == 504);
  CHECK(answers[1].status == 200);  // the connection serves on
  CHECK(std::chrono::steady_clock::now() - start < 3s);
}
