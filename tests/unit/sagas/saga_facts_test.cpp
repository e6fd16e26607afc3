// What the worker asks the saga layer about commands: whether a saga still wants one (the outbox
// relay re-sends a taken-over command only then), which step and role a command type has, and
// the order a message id belongs to.
#include <catch2/catch.hpp>

#include "core/envelope.hpp"
#include "sagas/engine.hpp"

using namespace sagaflow;

namespace {

Event parse(const std::string& body) {
  EnvelopeParser p;
  auto e = p.parse(body);
  REQUIRE(e.ok());
  return std::move(e).value();
}

}  // namespace

TEST_CASE("a taken-over command is re-sent only while its step still waits for it", "[relay]") {
  const auto defs = builtin_definitions(1000).value();
  const SagaDefinition& def = defs.front();
  // Given a saga whose inventory.reserve is out
  const Event created = parse(
      R"({"id":"e1","type":"order.created","store_id":"s","data":{"order_id":"o1","customer_id":"c",)"
      R"("total":"5.00","currency":"EUR","items":[{"sku":"a","qty":1,"price":"5.00"}]}})");
  auto started = step(def, nullptr, SagaInput{created}, 0);
  REQUIRE(started.disposition == Disposition::applied);
  const SagaState& waiting = started.state;
  CHECK(still_wanted(def, waiting, EventType::inventory_reserve));
  CHECK_FALSE(still_wanted(def, waiting, EventType::payment_charge));
  CHECK_FALSE(still_wanted(def, waiting, EventType::inventory_release));
  CHECK(still_wanted(def, waiting, EventType::order_failed));

  // When the step times out and is being compensated
  auto timed_out = step(def, &waiting, SagaInput{Timeout{OrderId(std::string("o1"))}}, 5000);
  REQUIRE(timed_out.disposition == Disposition::applied);
  // Then a stale inventory.reserve must not go out any more; its compensation must
  CHECK_FALSE(still_wanted(def, timed_out.state, EventType::inventory_reserve));
  CHECK(still_wanted(def, timed_out.state, EventType::inventory_release));
}

TEST_CASE("a command type maps to its step and role in the definition", "[facts]") {
  const auto defs = builtin_definitions(1000).value();
  const SagaDefinition& def = defs.front();
  CHECK(def.command_role(EventType::inventory_reserve).step == 0);
  CHECK_FALSE(def.command_role(EventType::inventory_reserve).compensation);
  CHECK(def.command_role(EventType::payment_refund).step == 1);
  CHECK(def.is_compensation(EventType::payment_refund));
  CHECK(def.is_compensation(EventType::shipment_cancel));
  CHECK_FALSE(def.is_compensation(EventType::shipment_create));
  CHECK(def.command_role(EventType::order_created).step == -1);
  CHECK_FALSE(def.is_compensation(EventType::payment_completed));
  // a type the definition does not send is never wanted
  SagaState none;
  CHECK_FALSE(still_wanted(def, none, EventType::payment_completed));
}

TEST_CASE("a message id gives back its order id", "[facts]") {
  CHECK(order_of_message("o1:inventory.reserve") == "o1");
  CHECK(order_of_message("ord:with:colons:payment.charge") == "ord:with:colons");
  CHECK(order_of_message("no-colon").empty());
  CHECK(order_of_message(":order.failed").empty());
}
