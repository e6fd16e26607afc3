// Proves: the async client talks RESP correctly (every reply type), pipelines thousands of
// calls in order, selects the configured db and authenticates, fails fast when nothing
// listens, and reloads a script transparently after the server lost it (NOSCRIPT).
#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <vector>

#include "loop.hpp"
#include "store/redis_client.hpp"
#include "support/servers.hpp"

using namespace sagaflow;
using namespace sagaflow::store;
using namespace sagaflow::store::test;
using namespace std::chrono_literals;

TEST_CASE("replies of every type come back owned", "[store][redis]") {
  auto& server = testing::shared_redis();
  Loop loop;
  auto c = connected_client(loop, client_options(server));

  auto r = call(loop, *c, {"SET", "t:k", "v"});
  REQUIRE(r.ok());
  CHECK(r->type == Reply::Type::status);
  CHECK(r->str == "OK");

  r = call(loop, *c, {"GET", "t:k"});
  REQUIRE(r.ok());
  CHECK(r->type == Reply::Type::string);

  r = call(loop, *c, {"GET", "t:missing"});
  REQUIRE(r.ok());
  CHECK(r->is_nil());

  REQUIRE(call(loop, *c, {"DEL", "t:n"}).ok());
  r = call(loop, *c, {"INCRBY", "t:n", "41"});
  REQUIRE(r.ok());
  CHECK(r->type == Reply::Type::integer);
  CHECK(r->integer == 41);

  r = call(loop, *c, {"NOSUCHCOMMAND"});
  REQUIRE(r.ok());  // a server error is a reply, not a transport failure
  CHECK(r->is_error());

  REQUIRE(call(loop, *c, {"DEL", "t:l"}).ok());
  REQUIRE(call(loop, *c, {"RPUSH", "t:l", "a", "b"}).ok());
  r = call(loop, *c, {"LRANGE", "t:l", "0", "-1"});
  REQUIRE(r.ok());
  REQUIRE(r->is_array());
  REQUIRE(r->elements.size() == 2);
  CHECK(r->elements[1].str == "b");

  // Binary-safe arguments.
  const std::string bin("a\0b\r\n", 5);
  REQUIRE(call(loop, *c, {"SET", "t:bin", bin}).ok());
  r = call(loop, *c, {"GET", "t:bin"});
  REQUIRE(r.ok());
  CHECK(r->str == bin);
  c->stop();
}

TEST_CASE("thousands of calls pipelined complete in order", "[store][redis]") {
  auto& server = testing::shared_redis();
  Loop loop;
  auto c = connected_client(loop, client_options(server));
  REQUIRE(call(loop, *c, {"DEL", "t:counter"}).ok());

  // Given 20000 INCRs sent without waiting
  constexpr int kCalls = 20000;
  std::vector<std::int64_t> seen;
  int failed = 0;
  for (int i = 0; i < kCalls; ++i) {
    c->command({"INCR", "t:counter"}, [&](Result<Reply> r) {
      if (r.ok()) {
        seen.push_back(r->integer);
      } else {
        ++failed;
      }
    });
  }
  // Then every callback runs once, with the replies in order
  REQUIRE(loop.run_until([&] { return static_cast<int>(seen.size()) + failed == kCalls; }));
  CHECK(failed == 0);
  for (int i = 0; i < kCalls; ++i) REQUIRE(seen[static_cast<std::size_t>(i)] == i + 1);
  CHECK(c->stats().in_flight == 0);
  c->stop();
}

TEST_CASE("SELECT and AUTH come from the endpoint", "[store][redis]") {
  testing::RedisServer server;
  server.command({"CONFIG", "SET", "requirepass", "s3cret"});
  Loop loop;

  // Given the right password and db 3
  auto opts = client_options(server);
  opts.endpoint.password = "s3cret";
  opts.endpoint.db = 3;
  auto c = connected_client(loop, opts);
  auto r = call(loop, *c, {"CLIENT", "INFO"});
  REQUIRE(r.ok());
  CHECK(r->str.find(" db=3 ") != std::string::npos);

  // Given a wrong password: never connected, calls fail as unavailable
  auto bad_opts = client_options(server);
  bad_opts.endpoint.password = "wrong";
  RedisClient bad(loop.get(), bad_opts);
  bad.start();
  auto br = call(loop, bad, {"PING"});
  REQUIRE_FALSE(br.ok());
  CHECK(br.error().code == Errc::unavailable);
  CHECK_FALSE(bad.connected());
  bad.stop();

  REQUIRE(call(loop, *c, {"CONFIG", "SET", "requirepass", ""}).ok());
  c->stop();
}

TEST_CASE("calls fail fast as unavailable when nothing listens", "[store][redis]") {
  Loop loop;
  RedisClientOptions opts;
  opts.endpoint.host = "127.0.0.1";
  opts.endpoint.port = testing::free_port();
  RedisClient c(loop.get(), opts);
  c.start();
  const auto t0 = std::chrono::steady_clock::now();
  auto r = call(loop, c, {"PING"});
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == Errc::unavailable);
  // And later calls too, without waiting for a timeout
  r = call(loop, c, {"PING"});
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == Errc::unavailable);
  CHECK(std::chrono::steady_clock::now() - t0 < 500ms);
  c.stop();
}

TEST_CASE("calls before start or after stop fail as unavailable", "[store][redis]") {
  Loop loop;
  RedisClient c(loop.get(), client_options(testing::shared_redis()));
  auto r = call(loop, c, {"PING"});
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == Errc::unavailable);
}

TEST_CASE("a script survives SCRIPT FLUSH (NOSCRIPT -> one SCRIPT LOAD -> EVALSHA)",
          "[store][redis]") {
  auto& server = testing::shared_redis();
  Loop loop;
  auto c = connected_client(loop, client_options(server));
  const ScriptRef s = c->register_script("echo", "return {KEYS[1], ARGV[1]}");
  auto run = [&] {
    return loop.await<Reply>([&](auto cb) { c->eval(s, {"t:key"}, {"arg"}, std::move(cb)); });
  };
  // Given the script never loaded on the server, and then flushed after a first run
  auto r = run();
  REQUIRE(r.ok());
  REQUIRE(r->elements.size() == 2);
  CHECK(r->elements[1].str == "arg");
  REQUIRE(call(loop, *c, {"SCRIPT", "FLUSH"}).ok());
  // When it runs again
  r = run();
  // Then it works, after one reload (the first run found it loaded at registration)
  REQUIRE(r.ok());
  CHECK(r->elements[0].str == "t:key");
  CHECK(c->stats().script_reloads == 1);
  // And many calls in flight when the cache is lost cause one reload, not one each
  REQUIRE(call(loop, *c, {"SCRIPT", "FLUSH"}).ok());
  int ok = 0;
  int done = 0;
  for (int i = 0; i < 100; ++i) {
    c->eval(s, {"t:key"}, {"arg"}, [&](Result<Reply> rr) {
      ++done;
      if (rr.ok() && rr->is_array()) ++ok;
    });
  }
  REQUIRE(loop.run_until([&] { return done == 100; }));
  CHECK(ok == 100);
  CHECK(c->stats().script_reloads == 2);
  c->stop();
}
