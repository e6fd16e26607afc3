// `sagaflow publish` as a library call: generated orders all confirmed and routed to the saga
// queue; a file with a bad line reports "line N: reason: detail", sends the rest, exits 1;
// an unreachable broker is one line and exit 1.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "brokers/broker.hpp"
#include "producers/publish_job.hpp"
#include "support/servers.hpp"
#include "topology/rabbitmq_topology.hpp"

using namespace sagaflow;
using namespace sagaflow::testing;

namespace {

// Runs fn with stderr captured; returns (exit code, stderr text).
template <class Fn>
std::pair<int, std::string> capture_stderr(Fn fn) {
  char path[] = "/tmp/sagaflow_publish_stderrXXXXXX";
  const int fd = ::mkstemp(path);
  REQUIRE(fd >= 0);
  std::fflush(stderr);
  const int saved = ::dup(2);
  ::dup2(fd, 2);
  const int code = fn();
  std::fflush(stderr);
  ::dup2(saved, 2);
  ::close(saved);
  ::close(fd);
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  ::unlink(path);
  return {code, ss.str()};
}

Config config_for(RabbitServer& rabbit) {
  Config c;
  c.amqp = parse_amqp_url(rabbit.amqp_url()).value();
  c.amqp_url = rabbit.amqp_url();
  return c;
}

}  // namespace

TEST_CASE("publish --generate sends N valid order.created, all confirmed", "[rabbitmq][publish]") {
  RabbitServer& rabbit = shared_rabbit();
  const Config config = config_for(rabbit);
  REQUIRE(apply_rabbitmq_topology(config.amqp).ok());
  rabbit.purge("sagaflow.saga");

  PublishOptions o;
  o.generate = 5000;
  o.seed = 3;
  o.stores = 4;
  o.progress = 0;
  const auto [code, err] = capture_stderr([&] {
    return run_publish_job(config, o, brokers::publish_target(*brokers::open_broker(config)));
  });
  INFO(err);
  CHECK(code == 0);
  CHECK(err.find("published 5000 events in ") == 0);
  CHECK(err.find("0 failed") != std::string::npos);
  CHECK(rabbit.queue_depth("sagaflow.saga") == 5000);
  auto first = rabbit.get("sagaflow.saga");
  REQUIRE(first);
  CHECK(first->routing_key == "order.created");
  CHECK(first->body.find(R"("id":"evt_3_1")") != std::string::npos);
  rabbit.purge("sagaflow.saga");
}

TEST_CASE("publish --rate holds the rate", "[rabbitmq][publish]") {
  RabbitServer& rabbit = shared_rabbit();
  const Config config = config_for(rabbit);
  REQUIRE(apply_rabbitmq_topology(config.amqp).ok());
  rabbit.purge("sagaflow.saga");
  PublishOptions o;
  o.generate = 100;
  o.rate = 200;
  o.progress = 0;
  const auto t0 = std::chrono::steady_clock::now();
  const auto [code, err] = capture_stderr([&] {
    return run_publish_job(config, o, brokers::publish_target(*brokers::open_broker(config)));
  });
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(code == 0);
  CHECK(secs >= 0.4);
  CHECK(rabbit.queue_depth("sagaflow.saga") == 100);
  rabbit.purge("sagaflow.saga");
}

TEST_CASE("publish --file reports a bad line, sends the rest, exits 1", "[rabbitmq][publish]") {
  RabbitServer& rabbit = shared_rabbit();
  const Config config = config_for(rabbit);
  REQUIRE(apply_rabbitmq_topology(config.amqp).ok());
  rabbit.purge("sagaflow.saga");
  char path[] = "/tmp/sagaflow_publish_fileXXXXXX";
  const int fd = ::mkstemp(path);
  REQUIRE(fd >= 0);
  ::close(fd);
  {
    std::ofstream f(path);
    f << R"({"id":"e1","type":"order.cancelled","data":{"order_id":"o1"}})"
      << "\n";
    f << "{not json\n";
    f << "\n";
    f << R"({"id":"e2","type":"payment.failed","data":{"order_id":"o1","reason":"card"}})"
      << "\n";
  }
  PublishOptions o;
  o.file = path;
  o.progress = 0;
  const auto [code, err] = capture_stderr([&] {
    return run_publish_job(config, o, brokers::publish_target(*brokers::open_broker(config)));
  });
  ::unlink(path);
  INFO(err);
  CHECK(code == 1);
  CHECK(err.find("line 2: malformed_json: ") != std::string::npos);
  CHECK(err.find("published 2 events in ") != std::string::npos);
  CHECK(rabbit.queue_depth("sagaflow.saga") == 2);
  auto first = rabbit.get("sagaflow.saga");
  REQUIRE(first);
  CHECK(first->body == R"({"id":"e1","type":"order.cancelled","data":{"order_id":"o1"}})");
  CHECK(first->routing_key == "order.cancelled");
  rabbit.purge("sagaflow.saga");
}

TEST_CASE("publish to an unreachable broker is one line, exit 1", "[rabbitmq][publish]") {
  Config config;
  config.amqp.port = free_port();
  PublishOptions o;
  o.generate = 10;
  const auto [code, err] = capture_stderr([&] {
    return run_publish_job(config, o, brokers::publish_target(*brokers::open_broker(config)));
  });
  CHECK(code == 1);
  CHECK(err == "sagaflow publish: cannot connect to RabbitMQ at 127.0.0.1:" +
                   std::to_string(config.amqp.port) + ": connection refused\n");
}
