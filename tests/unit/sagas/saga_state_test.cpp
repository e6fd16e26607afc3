// SagaState: its JSON form (Redis and `sagaflow saga show`) and the exact round trip.
#include <catch2/catch.hpp>

#include <simdjson.h>

#include "sagas/saga_state.hpp"
#include "support.hpp"

using namespace sagaflow;
using namespace sagaflow::test;
using Catch::Matchers::Contains;

namespace {

SagaState rich_state() {
  SagaState s;
  s.saga = "order_fulfillment";
  s.order_id = OrderId(std::string("ord \"7\"\\ é\n"));
  s.status = SagaStatus::stuck;
  s.outcome_published = true;
  s.reason = "timeout:payment";
  s.detail = "tab\there, unicode ✓, control \x01";
  s.store_id = StoreId(std::string("store_9"));
  s.customer_id = "cust \"q\"";
  s.total = money("1234567890123.45", true);
  s.currency = "EUR";
  s.items_json = "[ {\"sku\" : \"A\", \"qty\":3,\n \"price\": 0.1} ]";
  s.steps = {
      StepState{"inventory", EventType::inventory_release, StepStatus::compensating, "res/1", 1, 3,
                true},
      StepState{"payment", EventType::payment_refund, StepStatus::compensated, "", 2, 1, false},
      StepState{"shipment", EventType::shipment_cancel, StepStatus::not_started, "", 0, 0, false}};
  s.compensations = {EventType::payment_refund, EventType::inventory_release};
  s.deadline = kT0 + 123;
  s.add_history(EventType::order_created, kT0);
  s.add_history(std::nullopt, kT0 + 5);
  s.add_history(EventType::inventory_released, kT0 + 9);
  return s;
}

void require_round_trip(const SagaState& s) {
  const std::string json = s.to_json();
  // Valid JSON, one object
  simdjson::dom::parser p;
  simdjson::dom::element e;
  REQUIRE(p.parse(json).get(e) == simdjson::SUCCESS);
  REQUIRE(e.is_object());
  // Parsed back to the same state, serialized to the same bytes
  auto back = SagaState::from_json(json);
  REQUIRE(back.ok());
  CHECK(back.value() == s);
  CHECK(back->to_json() == json);
}

}  // namespace

TEST_CASE("saga state JSON round trip is exact", "[state]") {
  // Given states with escapes, unicode, big string money, raw items with whitespace, history
  SagaState s = rich_state();
  require_round_trip(s);
  // And money written as a number keeps that form
  s.total = money("0.5", false);
  require_round_trip(s);
  s.total = money("100", false);
  require_round_trip(s);
  // And a state with no deadline, no outcome, no order data (a remembered cancel)
  SagaState marker;
  marker.saga = "order_fulfillment";
  marker.order_id = OrderId(std::string("o1"));
  marker.status = SagaStatus::cancelled_before_start;
  marker.steps.resize(3);
  marker.add_history(EventType::order_cancelled, kT0);
  require_round_trip(marker);
  CHECK_THAT(marker.to_json(), Contains(R"("deadline_ms":null)"));
  CHECK_THAT(marker.to_json(), !Contains("total"));
}

TEST_CASE("every status survives the round trip", "[state]") {
  SagaState s = rich_state();
  for (int i = 0; i <= static_cast<int>(SagaStatus::failed); ++i) {
    s.status = static_cast<SagaStatus>(i);
    for (int j = 0; j <= static_cast<int>(StepStatus::compensated); ++j) {
      s.steps[2].status = static_cast<StepStatus>(j);
      require_round_trip(s);
    }
  }
}

TEST_CASE("the saga show view: state, steps done, pending compensations, history", "[state]") {
  // Given shipment.failed while inventory and payment succeeded: the refund is out
  Saga saga;
  saga.on(created("o1"));
  saga.on(reply(EventType::inventory_reserved, "o1", "res_1"));
  saga.on(reply(EventType::payment_completed, "o1", "pay_1"));
  saga.on(reply(EventType::shipment_failed, "o1"));
  const std::string json = saga.state->to_json();
  // Then one JSON object says all of it
  CHECK_THAT(
      json,
      Contains(
          R"({"schema":1,"saga":"order_fulfillment","order_id":"o1","state":"compensating","status":"compensating")"));
  CHECK_THAT(json, Contains(R"("reason":"shipment_failed")"));
  CHECK_THAT(json, Contains(R"("steps_done":["inventory","payment"])"));
  CHECK_THAT(json, Contains(R"("compensations":["payment.refund"])"));
  CHECK_THAT(json, Contains(R"("pending_compensations":["payment.refund","inventory.release"])"));
  CHECK_THAT(json, Contains(R"("history":[{"event":"order.created","at_ms":1700000000000},)"));
  CHECK_THAT(json, Contains(R"("total":99.99)"));
  CHECK(saga.state->pending_compensations() ==
        std::vector<EventType>{EventType::payment_refund, EventType::inventory_release});
}

TEST_CASE("unreadable saga records are refused with a reason", "[state]") {
  const std::string good = rich_state().to_json();
  for (const char* bad :
       {"", "not json", "[]", R"({"schema":1})",
        R"({"schema":3,"order_id":"o","status":"running"})",
        R"({"schema":1,"order_id":"o","status":"sleeping"})",
        R"({"schema":1,"order_id":"o","status":"running","total":"12.345"})",
        R"({"schema":1,"order_id":"o","status":"running","steps":[{"name":"x"}]})",
        R"({"schema":1,"order_id":"o","status":"running","compensations":["x.y"]})",
        R"({"schema":1,"order_id":"o","status":"running","deadline_ms":"soon"})"}) {
    auto r = SagaState::from_json(bad);
    CHECK_FALSE(r.ok());
  }
  // A newer format is transient (retried until a newer worker takes it), a corrupt one is not
  const auto newer = SagaState::from_json(R"({"schema":3,"order_id":"o","status":"running"})");
  REQUIRE_FALSE(newer.ok());
  CHECK(is_transient(newer.error().code));
  const auto older = SagaState::from_json(R"({"schema":0,"order_id":"o","status":"running"})");
  REQUIRE_FALSE(older.ok());
  CHECK_FALSE(is_transient(older.error().code));
  // Unknown keys (a newer writer's) are skipped
  std::string extended = good;
  extended.insert(1, R"("future":{"a":[1,2,{"b":null}]},)");
  auto r = SagaState::from_json(extended);
  REQUIRE(r.ok());
  CHECK(r.value() == rich_state());
}

TEST_CASE("the stored record: compact state plus the order facts once; format 1 still read",
          "[state]") {
  const SagaState s = rich_state();
  REQUIRE(s.has_order());
  std::string state;
  std::string order;
  s.append_record(state);
  s.append_order(order);
  // The compact state has neither the order facts nor the derived fields
  CHECK(state.rfind("{\"schema\":2,", 0) == 0);
  for (const char* gone : {"\"items\"", "\"customer_id\"", "\"steps_done\"",
                           "\"pending_compensations\"", "\"state\""}) {
    CHECK(state.find(gone) == std::string::npos);
  }
  CHECK(order.find("\"items\":" + s.items_json) != std::string::npos);
  CHECK(state.size() + order.size() < s.to_json().size());
  // Both together read back as the same saga
  auto back = SagaState::from_record(state, order);
  REQUIRE(back.ok());
  CHECK(back.value() == s);
  // A record of format 1 (the full object, no order field: written before this version)
  auto old = SagaState::from_record(s.to_json(), "");
  REQUIRE(old.ok());
  CHECK(old.value() == s);
  // A saga without an order (an early cancel) has no order facts to store
  SagaState early;
  early.saga = "order_fulfillment";
  early.order_id = OrderId(std::string("o9"));
  early.status = SagaStatus::cancelled_before_start;
  std::string none;
  early.append_order(none);
  CHECK(none.empty());
  std::string early_state;
  early.append_record(early_state);
  auto early_back = SagaState::from_record(early_state, "");
  REQUIRE(early_back.ok());
  CHECK(early_back.value() == early);
  // Unreadable order facts are refused with a reason
  auto bad_order = SagaState::from_record(state, "[1]");
  REQUIRE_FALSE(bad_order.ok());
  CHECK(bad_order.error().code == Errc::rejected);
}

TEST_CASE("a parked start is \"started\" in the history, never a timeout; earlier builds read it",
          "[state]") {
  SagaState s = rich_state();
  s.add_start(kT0 + 20);
  s.add_history(std::nullopt, kT0 + 30);  // a real timeout after it
  // saga show and the console: its own name
  const std::string json = s.to_json();
  CHECK_THAT(json, Contains(R"({"event":"started","at_ms":1700000000020},)"
                            R"({"event":"timeout","at_ms":1700000000030})"));
  require_round_trip(s);
  // The stored record: an entry earlier builds know ("timeout", the name they always gave it)
  // with a key they skip; read back by this build as a start
  std::string state;
  s.append_record(state);
  CHECK_THAT(state, Contains(R"({"event":"timeout","at_ms":1700000000020,"started":true})"));
  CHECK(state.find(R"("event":"started")") == std::string::npos);
  std::string order;
  s.append_order(order);
  auto back = SagaState::from_record(state, order);
  REQUIRE(back.ok());
  CHECK(back.value() == s);
  REQUIRE(back->history.size() >= 2);
  CHECK(back->history[back->history.size() - 2].started);
  CHECK_FALSE(back->history.back().started);
  // "started" only marks a time entry, and must be a boolean
  auto odd = SagaState::from_json(R"({"schema":1,"saga":"order_fulfillment","order_id":"o1",)"
                                  R"("status":"running","history":[{"event":"order.created",)"
                                  R"("at_ms":1,"started":true}]})");
  REQUIRE(odd.ok());
  CHECK_FALSE(odd->history[0].started);
  auto bad = SagaState::from_json(R"({"schema":1,"saga":"order_fulfillment","order_id":"o1",)"
                                  R"("status":"running","history":[{"event":"timeout",)"
                                  R"("at_ms":1,"started":"yes"}]})");
  REQUIRE_FALSE(bad.ok());
  CHECK_THAT(bad.error().detail, Contains("history[].started"));
}

TEST_CASE("the history is bounded", "[state]") {
  SagaState s;
  for (int i = 0; i < 100; ++i) s.add_history(EventType::payment_completed, i);
  CHECK(s.history.size() == kMaxHistory);
  CHECK(s.history.front().at == 100 - static_cast<Millis>(kMaxHistory));
  CHECK(s.history.back().at == 99);
}
