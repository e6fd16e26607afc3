// `topology apply` on a real node: declares everything, twice changes nothing, a conflicting
// declaration and an unreachable broker are one-line errors.
#include <catch2/catch.hpp>

#include "rabbit_fixture.hpp"
#include "topology/names.hpp"

using namespace sagaflow;
using namespace sagaflow::testing;

TEST_CASE("topology apply declares everything and is idempotent", "[rabbitmq][topology]") {
  RabbitServer& rabbit = shared_rabbit();
  const AmqpEndpoint ep = endpoint_of(rabbit);

  // Given a message waiting in the saga queue after a first apply
  REQUIRE(apply_rabbitmq_topology(ep).ok());
  rabbit.purge("sagaflow.saga");
  rabbit.publish("sagaflow.events", "order.created", R"({"id":"t1"})");
  REQUIRE(rabbit.queue_depth("sagaflow.saga") == 1);

  // When the topology is applied again
  const Status again = apply_rabbitmq_topology(ep);

  // Then it succeeds and changed nothing: the message is still there, bindings route
  INFO((again ? std::string("ok") : again.error().detail));
  REQUIRE(again.ok());
  CHECK(rabbit.queue_depth("sagaflow.saga") == 1);
  rabbit.publish("sagaflow.events", "payment.completed", "{}");
  rabbit.publish("sagaflow.events", "order.confirmed", "{}");  // an outcome: not for the saga queue
  CHECK(rabbit.queue_depth("sagaflow.saga") == 2);
  rabbit.purge("sagaflow.participants");
  rabbit.publish("sagaflow.commands", "inventory.reserve", "{}");
  CHECK(rabbit.queue_depth("sagaflow.participants") == 1);
  rabbit.purge("sagaflow.dead");
  rabbit.publish("sagaflow.dlx", "anything", "{}");
  CHECK(rabbit.queue_depth("sagaflow.dead") == 1);
  // And every retry tier exists
  for (std::int64_t tier : topology::kDefaultRetryTiersMs) {
    rabbit.publish(topology::retry_tier_name(tier), "nowhere", "{}", true);
  }
  rabbit.purge("sagaflow.saga");
  rabbit.purge("sagaflow.participants");
  rabbit.purge("sagaflow.dead");
}

TEST_CASE("a conflicting declaration is one line that says what to do", "[rabbitmq][topology]") {
  RabbitServer& rabbit = shared_rabbit();
  // Given a queue with the name of a retry tier but without its arguments
  rabbit.declare_queue("sagaflow.retry.77ms");

  // When the topology with that tier is applied
  TopologyOptions o;
  o.retry_tiers_ms = {77};
  const Status s = apply_rabbitmq_topology(endpoint_of(rabbit), o);

  // Then it fails with one line naming the queue, the broker's reason and the remedy
  REQUIRE_FALSE(s.ok());
  const std::string& msg = s.error().detail;
  INFO(msg);
  CHECK(s.error().code == Errc::invalid_config);
  CHECK(msg.find("queue 'sagaflow.retry.77ms' exists with different arguments (") == 0);
  CHECK(msg.find("x-message-ttl") != std::string::npos);
  CHECK(msg.find("delete it") != std::string::npos);
  CHECK(msg.find('\n') == std::string::npos);
}

TEST_CASE("an unreachable broker is one line", "[rabbitmq][topology]") {
  AmqpEndpoint ep;
  ep.port = free_port();
  const Status s = apply_rabbitmq_topology(ep);
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().code == Errc::unavailable);
  CHECK(s.error().detail == "cannot connect to RabbitMQ at 127.0.0.1:" + std::to_string(ep.port) +
                                ": connection refused");
}
