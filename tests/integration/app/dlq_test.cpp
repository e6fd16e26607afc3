// sagaflow dlq list / replay (CONTRACT.md section 1): list leaves the dead-letter queue as it
// was; replay re-publishes each body unchanged to its original route and removes it only then.
#include <catch2/catch.hpp>

#include <chrono>
#include <string>

#include "support/servers.hpp"

using namespace std::chrono_literals;
using sagaflow::testing::Process;

TEST_CASE("dlq list shows reasons and keeps the messages; replay sends them back to their route",
          "[dlq]") {
  auto& rabbit = sagaflow::testing::shared_rabbit();
  const std::vector<std::pair<std::string, std::string>> env = {
      {"SAGAFLOW_AMQP_URL", rabbit.amqp_url()}, {"SAGAFLOW_METRICS_ADDR", "0"}};
  auto run = [&](std::vector<std::string> args) {
    std::vector<std::string> argv{sagaflow::testing::sagaflow_binary()};
    for (auto& a : args) argv.push_back(std::move(a));
    Process p(argv, env);
    const auto code = p.wait_for(30s);
    REQUIRE(code.has_value());
    return std::make_pair(*code, p.read_stdout());
  };
  REQUIRE(run({"topology", "apply"}).first == 0);
  rabbit.purge("sagaflow.dead");
  rabbit.purge("sagaflow.saga");
  rabbit.purge("sagaflow.participants");

  // Given two dead letters as a worker writes them: the original body and the x-sagaflow-* headers
  const std::string order =
      R"({"id":"dl1","type":"order.created","store_id":"s","data":{"order_id":"o_dl1","customer_id":"c",)"
      R"("total":"5.00","currency":"EUR","items":[{"sku":"a","qty":1,"price":"5.00"}]}})";
  const std::string reply =
      R"({"id":"dl2","type":"inventory.reserved","data":{"order_id":"o_dl2","reservation_id":"r"}})";
  rabbit.publish("sagaflow.dlx", "order.created", order, true,
                 {{"x-sagaflow-error", "retries_exhausted"},
                  {"x-sagaflow-detail", "redis record unreadable"},
                  {"x-sagaflow-attempts", "8"},
                  {"x-sagaflow-original-route", "order.created"}});
  rabbit.publish("sagaflow.dlx", "inventory.reserved", reply, true,
                 {{"x-sagaflow-error", "unknown_saga"},
                  {"x-sagaflow-detail", "no saga for order o_dl2"},
                  {"x-sagaflow-attempts", "1"},
                  {"x-sagaflow-original-route", "inventory.reserved"}});
  REQUIRE(rabbit.queue_depth("sagaflow.dead") == 2);

  // When listed: one JSON line each with the reason, and nothing is consumed
  const auto [list_code, listed] = run({"dlq", "list"});
  CHECK(list_code == 0);
  CHECK_THAT(listed, Catch::Contains(R"("reason":"retries_exhausted")"));
  CHECK_THAT(listed, Catch::Contains(R"("reason":"unknown_saga")"));
  CHECK_THAT(listed, Catch::Contains(R"("route":"inventory.reserved")"));
  CHECK(rabbit.queue_depth("sagaflow.dead") == 2);

  // When replayed with a limit of one: the first goes back to sagaflow.events with its route
  // (and so into the saga queue), byte for byte; the second stays
  CHECK(run({"dlq", "replay", "--limit", "1"}).first == 0);
  CHECK(rabbit.queue_depth("sagaflow.dead") == 1);
  auto back = rabbit.get("sagaflow.saga");
  REQUIRE(back);
  CHECK(back->body == order);
  CHECK(back->routing_key == "order.created");
  CHECK(run({"dlq", "replay"}).first == 0);
  CHECK(rabbit.queue_depth("sagaflow.dead") == 0);
  auto second = rabbit.get("sagaflow.saga");
  REQUIRE(second);
  CHECK(second->body == reply);
  CHECK(second->routing_key == "inventory.reserved");
}
