// Proves RedisServer: a real redis-server per test on a free port, pause/resume, AOF restart.
#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <catch2/catch.hpp>
#include <memory>

#include "support/servers.hpp"

using sagaflow::testing::RedisOptions;
using sagaflow::testing::RedisServer;

namespace {

// PING on a fresh connection with a 500 ms reply timeout: true iff PONG came back in time.
bool ping_within_500ms(int port) {
  const timeval connect_timeout{0, 500000};
  std::unique_ptr<redisContext, decltype(&redisFree)> c(
      redisConnectWithTimeout("127.0.0.1", port, connect_timeout), &redisFree);
  if (!c || c->err != 0) return false;
  redisSetTimeout(c.get(), timeval{0, 500000});
  auto* reply = static_cast<redisReply*>(redisCommand(c.get(), "PING"));
  if (reply == nullptr) return false;
  const bool pong = reply->type == REDIS_REPLY_STATUS && std::string(reply->str) == "PONG";
  freeReplyObject(reply);
  return pong;
}

}  // namespace

TEST_CASE("RedisServer starts on a free loopback port and answers commands") {
  // Given a fresh server
  RedisServer redis;
  REQUIRE(redis.port() != 6379);
  REQUIRE(redis.url() == "redis://127.0.0.1:" + std::to_string(redis.port()) + "/0");
  REQUIRE(redis.pid() > 0);
  // When a key is set, then it reads back, and replies are rendered as text
  CHECK(redis.command({"SET", "greeting", "hello world"}) == "OK");
  CHECK(redis.command({"GET", "greeting"}) == "hello world");
  CHECK(redis.command({"GET", "missing"}) == "(nil)");
  CHECK(redis.command({"INCRBY", "counter", "42"}) == "42");
  CHECK(redis.command({"RPUSH", "list", "a", "b"}) == "2");
  CHECK(redis.command({"LRANGE", "list", "0", "-1"}) == "a\nb");
  CHECK(redis.command({"NOSUCHCOMMAND"}).rfind("(error) ", 0) == 0);
}

TEST_CASE("RedisServer pause makes it unresponsive and resume brings it back") {
  RedisServer redis;
  REQUIRE(ping_within_500ms(redis.port()));
  // When paused (SIGSTOP), then a PING with a 500 ms timeout fails
  redis.pause();
  CHECK_FALSE(ping_within_500ms(redis.port()));
  // When resumed (SIGCONT), then it answers again
  redis.resume();
  CHECK(ping_within_500ms(redis.port()));
}

TEST_CASE("RedisServer restart with appendonly keeps the data, port and pid changes") {
  RedisServer redis(RedisOptions{.appendonly = true});
  const int port = redis.port();
  const pid_t first_pid = redis.pid();
  REQUIRE(redis.command({"SET", "durable", "yes"}) == "OK");
  // When restarted
  redis.restart();
  // Then same port, a new process, and the key survived through the AOF
  CHECK(redis.port() == port);
  CHECK(redis.pid() != first_pid);
  CHECK(redis.command({"GET", "durable"}) == "yes");
}

TEST_CASE("RedisServer stop makes the port refuse connections; start brings the data back") {
  RedisServer redis(RedisOptions{.appendonly = true});
  REQUIRE(redis.command({"SET", "k", "v"}) == "OK");
  redis.stop();
  CHECK(redis.pid() == 0);
  CHECK_FALSE(ping_within_500ms(redis.port()));
  CHECK_THROWS(redis.command({"PING"}));
  redis.start();
  CHECK(redis.command({"GET", "k"}) == "v");
}

TEST_CASE("RedisServer stopped while paused still stops") {
  RedisServer redis;
  redis.pause();
  redis.stop();  // must not hang: SIGCONT is sent before SIGTERM
  CHECK(redis.pid() == 0);
}

TEST_CASE("shared_redis is one server per process") {
  auto& a = sagaflow::testing::shared_redis();
  auto& b = sagaflow::testing::shared_redis();
  CHECK(&a == &b);
  CHECK(a.command({"PING"}) == "PONG");
}
