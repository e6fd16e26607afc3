// clients/kafka: the handle factory's one-line errors, the log bridge (librdkafka's log lines
// wait in their queue until the owner drains them on its own thread) and the loop's wake-up.
// A closed loopback port (127.0.0.1:1) makes librdkafka log connection failures.
#include <librdkafka/rdkafka.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "clients/kafka/client.hpp"
#include "clients/kafka/queue_wakeup.hpp"
#include "core/log.hpp"
#include "support/uv_loop.hpp"

using namespace sagaflow;
using namespace std::chrono_literals;

namespace {

// What this process writes to stderr while `fn` runs.
template <class F>
std::string stderr_of(F&& fn) {
  std::FILE* tmp = std::tmpfile();
  REQUIRE(tmp != nullptr);
  std::fflush(stderr);
  const int saved = ::dup(2);
  ::dup2(::fileno(tmp), 2);
  fn();
  std::fflush(stderr);
  ::dup2(saved, 2);
  ::close(saved);
  std::string out;
  std::rewind(tmp);
  char buf[4096];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, tmp)) > 0) out.append(buf, n);
  std::fclose(tmp);
  return out;
}

kafka::ClientConfig unreachable(std::optional<kafka::LogStyle> logs) {
  kafka::ClientConfig c;
  c.brokers = "127.0.0.1:1";
  c.client_id = "client-test";
  c.settings = {{"reconnect.backoff.ms", "50"}, {"reconnect.backoff.max.ms", "100"}};
  c.logs = std::move(logs);
  return c;
}

}  // namespace

TEST_CASE("a refused property is one line that names it", "[kafka][client]") {
  kafka::ClientConfig c;
  c.brokers = "127.0.0.1:1";
  c.settings = {{"no.such.property", "1"}};
  auto client = kafka::Client::open(RD_KAFKA_PRODUCER, c);
  REQUIRE_FALSE(client);
  CHECK(client.error().code == Errc::invalid_config);
  CHECK(client.error().detail.starts_with("librdkafka property no.such.property=1: "));
  CHECK(client.error().detail.find('\n') == std::string::npos);
}

TEST_CASE("librdkafka's log lines wait until the owner drains them", "[kafka][client]") {
  log::set_level(log::Level::debug);
  // Given a producer whose broker refuses connections
  auto client = kafka::Client::open(
      RD_KAFKA_PRODUCER,
      unreachable(kafka::LogStyle{"link", "t1", kafka::LogStyle::Levels::syslog}));
  REQUIRE(client);
  REQUIRE(client->log_queue() != nullptr);
  // when librdkafka's threads log meanwhile, nothing is written by them
  const std::string meanwhile = stderr_of([] { std::this_thread::sleep_for(1500ms); });
  CHECK(meanwhile.find("librdkafka") == std::string::npos);
  // and the owner writes the lines when it drains, with the owner's field
  std::size_t drained = 0;
  const std::string written = stderr_of([&] { drained = client->drain_logs(); });
  CHECK(drained > 0);
  CHECK(written.find(R"("msg":"librdkafka")") != std::string::npos);
  CHECK(written.find(R"("link":"t1")") != std::string::npos);
  CHECK(written.find(R"("facility":)") != std::string::npos);
  log::set_level(log::Level::info);
}

TEST_CASE("without a LogStyle librdkafka's log lines are dropped", "[kafka][client]") {
  const std::string out = stderr_of([] {
    auto client = kafka::Client::open(RD_KAFKA_PRODUCER, unreachable(std::nullopt));
    REQUIRE(client);
    CHECK(client->log_queue() == nullptr);
    std::this_thread::sleep_for(500ms);
    CHECK(client->drain_logs() == 0);
  });
  CHECK(out.find("librdkafka") == std::string::npos);
  CHECK(out.find("127.0.0.1:1") == std::string::npos);
}

TEST_CASE("a watched queue wakes the loop when it becomes non-empty", "[kafka][client]") {
  testing::UvLoop loop;
  log::set_level(log::Level::error);  // count the lines, do not write them
  kafka::ClientConfig config = unreachable(kafka::LogStyle{"", "", kafka::LogStyle::Levels::debug});
  config.settings.emplace_back("debug", "broker");  // a steady stream of log lines
  auto client = kafka::Client::open(RD_KAFKA_PRODUCER, config);
  REQUIRE(client);
  int wakes = 0;
  std::size_t lines = 0;
  {
    kafka::QueueWakeup wakeup;
    REQUIRE(wakeup.ok());
    wakeup.watch(client->log_queue());
    // The pipe is written when the queue goes from empty to non-empty: empty it first, as the
    // owners do when they start.
    client->drain_logs(100000);
    wakeup.start(loop.get(), [&] {
      ++wakes;
      wakeup.drain();
      lines += client->drain_logs();
    });
    CHECK(loop.run_until([&] { return lines > 0; }, 5s));
    kafka::QueueWakeup::unwatch(client->log_queue());
  }
  CHECK(wakes > 0);
  log::set_level(log::Level::info);
}
