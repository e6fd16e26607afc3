// The outbox relay re-sends a taken-over command only while its saga still waits for it.
#include <catch2/catch.hpp>

#include "app/worker/background.hpp"
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
  CHECK(app::command_still_wanted(def, waiting, EventType::inventory_reserve));
  CHECK_FALSE(app::command_still_wanted(def, waiting, EventType::payment_charge));
  CHECK_FALSE(app::command_still_wanted(def, waiting, EventType::inventory_release));
  CHECK(app::command_still_wanted(def, waiting, EventType::order_failed));

  // When the step times out and is being compensated
  auto timed_out = step(def, &waiting, SagaInput{Timeout{OrderId(std::string("o1"))}}, 5000);
  REQUIRE(timed_out.disposition == Disposition::applied);
  // Then a stale inventory.reserve must not go out any more; its compensation must
  CHECK_FALSE(app::command_still_wanted(def, timed_out.state, EventType::inventory_reserve));
  CHECK(app::command_still_wanted(def, timed_out.state, EventType::inventory_release));
}
