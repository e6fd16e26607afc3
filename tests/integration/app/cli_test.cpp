// The command line of CONTRACT.md section 1, as a black box: --help lists every subcommand,
// exit codes 0 / 1 / 2, and every error is one line on stderr.
#include <catch2/catch.hpp>

#include <chrono>
#include <csignal>
#include <string>
#include <vector>

#include "support/servers.hpp"

using namespace std::chrono_literals;
using sagaflow::testing::Process;
using sagaflow::testing::sagaflow_binary;

namespace {

struct Run {
  int code;
  std::string out;
  std::string err;
};

Run run(std::vector<std::string> args, std::vector<std::pair<std::string, std::string>> env = {}) {
  std::vector<std::string> argv{sagaflow_binary()};
  for (auto& a : args) argv.push_back(std::move(a));
  env.emplace_back("SAGAFLOW_METRICS_ADDR", "0");
  Process p(argv, env);
  const auto code = p.wait_for(30s);
  REQUIRE(code.has_value());
  return {*code, p.read_stdout(), p.read_stderr()};
}

int lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

}  // namespace

TEST_CASE("--help lists every subcommand and exits 0", "[cli]") {
  const auto r = run({"--help"});
  CHECK(r.code == 0);
  for (const char* sub : {"worker", "topology", "publish", "simulate", "saga", "status", "dlq",
                          "webhook", "kafka-mock"}) {
    CAPTURE(sub);
    CHECK_THAT(r.out, Catch::Contains(sub));
  }
  CHECK(run({"worker", "--help"}).code == 0);
  CHECK(run({"dlq", "replay", "--help"}).code == 0);
  CHECK_THAT(run({"--version"}).out, Catch::Contains("sagaflow "));
}

TEST_CASE("bad usage exits 2 with one line on stderr", "[cli]") {
  for (const auto& args :
       std::vector<std::vector<std::string>>{{"frobnicate"},
                                             {"worker", "--no-such-flag"},
                                             {},
                                             {"publish"},
                                             {"saga", "show"},
                                             {"publish", "--generate", "-5"},
                                             {"simulate", "--fail-payment", "2"}}) {
    const auto r = run(args);
    CAPTURE(args, r.err);
    CHECK(r.code == 2);
    CHECK(lines(r.err) == 1);
  }
}

TEST_CASE("a bad configuration value is one line naming the key, exit 2", "[cli]") {
  const auto r = run({"status"}, {{"SAGAFLOW_MAX_ATTEMPTS", "lots"}});
  CHECK(r.code == 2);
  CHECK(lines(r.err) == 1);
  CHECK_THAT(r.err, Catch::Contains("SAGAFLOW_MAX_ATTEMPTS"));
  const auto flag = run({"status", "--redis-url", "http://nope"});
  CHECK(flag.code == 2);
  CHECK_THAT(flag.err, Catch::Contains("SAGAFLOW_REDIS_URL"));
}

TEST_CASE("unreachable dependencies are runtime failures: exit 1, one line", "[cli]") {
  const int dead = sagaflow::testing::free_port();
  const std::string redis = "redis://127.0.0.1:" + std::to_string(dead) + "/0";
  const std::string amqp = "amqp://guest:guest@127.0.0.1:" + std::to_string(dead) + "/";
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"status"}, {"saga", "show", "ord_1"}, {"topology", "apply"}, {"dlq", "list"}}) {
    const auto r = run(args, {{"SAGAFLOW_REDIS_URL", redis}, {"SAGAFLOW_AMQP_URL", amqp}});
    CAPTURE(args, r.err);
    CHECK(r.code == 1);
    CHECK(lines(r.err) == 1);
  }
  const auto webhook = run({"webhook"});
  CHECK(webhook.code == 2);
  CHECK_THAT(webhook.err, Catch::Contains("SAGAFLOW_WEBHOOK_SECRET"));
}

TEST_CASE("kafka-mock prints its bootstrap address first and stops on SIGTERM", "[cli]") {
  Process p({sagaflow_binary(), "kafka-mock"}, {{"SAGAFLOW_METRICS_ADDR", "0"}});
  const std::string line = p.read_stdout_line(20s);
  CHECK_THAT(line, Catch::Contains("127.0.0.1:"));
  p.signal(SIGTERM);
  CHECK(p.wait_for(10s) == 0);
}
