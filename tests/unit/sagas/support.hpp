#pragma once
// Helpers for the saga engine tests: events as the envelope parser would produce them, and a
// Saga driver that applies inputs like the worker does (state persisted only when applied,
// and every stored state round-tripped through its JSON form).
#include <catch2/catch.hpp>

#include <optional>
#include <string>
#include <vector>

#include "sagas/definition.hpp"
#include "sagas/engine.hpp"
#include "sagas/saga_state.hpp"

namespace sagaflow::test {

inline constexpr Millis kT0 = 1'700'000'000'000;  // 2023-11-14T22:13:20Z
inline constexpr Millis kTimeout = 30'000;

inline const SagaDefinition& fulfillment() {
  static const std::vector<SagaDefinition> defs = builtin_definitions(kTimeout).value();
  return defs.front();
}

inline Money money(std::string_view text, bool quoted) {
  return Money::parse(text, quoted).value();
}

inline Event created(const std::string& order, std::string_view total = "99.99",
                     bool quoted = false) {
  Event e;
  e.id = EventId("evt_created_" + order);
  e.type = EventType::order_created;
  e.store_id = StoreId(std::string("store_1"));
  e.order_id = OrderId(order);
  e.customer_id = "cust_1";
  e.total = money(total, quoted);
  e.currency = "EUR";
  e.items_json = R"([{"sku":"A-1","qty":1,"price":99.99}, {"sku":"B","qty":1,"price":"0"}])";
  return e;
}

inline Event cancelled(const std::string& order, std::string reason = "customer asked") {
  Event e;
  e.id = EventId("evt_cancel_" + order);
  e.type = EventType::order_cancelled;
  e.order_id = OrderId(order);
  e.reason = std::move(reason);
  return e;
}

inline Event reply(EventType type, const std::string& order, std::string ref = {}) {
  Event e;
  e.id = EventId(std::string(to_string(type)) + "_" + order);
  e.type = type;
  e.order_id = OrderId(order);
  e.ref_id = std::move(ref);
  if (type == EventType::inventory_rejected || type == EventType::payment_failed ||
      type == EventType::shipment_failed) {
    e.reason = "participant said no";
  }
  return e;
}

// One saga driven through the engine the way the worker does it.
struct Saga {
  const SagaDefinition& def;
  std::optional<SagaState> state;
  Millis now = kT0;

  explicit Saga(const SagaDefinition& d = fulfillment()) : def(d) {}

  StepResult apply(const SagaInput& input) {
    StepResult r = step(def, state ? &*state : nullptr, input, now);
    if (r.disposition == Disposition::applied) {
      // Stored as JSON and read back, exactly.
      auto back = SagaState::from_json(r.state.to_json());
      REQUIRE(back.ok());
      REQUIRE(back.value() == r.state);
      REQUIRE(back->to_json() == r.state.to_json());
      REQUIRE(r.deadline == r.state.deadline);
      state = std::move(back.value());
    }
    return r;
  }
  StepResult on(const Event& e) { return apply(SagaInput(e)); }
  // Keeps a result the way apply does (stored as JSON, read back).
  StepResult keep(StepResult r) {
    if (r.disposition == Disposition::applied) {
      auto back = SagaState::from_json(r.state.to_json());
      REQUIRE(back.ok());
      REQUIRE(back.value() == r.state);
      state = std::move(back.value());
    }
    return r;
  }
  StepResult park(const Event& created) { return keep(sagaflow::park(def, created, now)); }
  StepResult start_parked() {
    REQUIRE(state);
    return keep(sagaflow::start_parked(def, *state, now));
  }
  StepResult resend() {
    REQUIRE(state);
    return keep(sagaflow::resend_stuck(def, *state, now));
  }
  StepResult timeout() { return apply(SagaInput(Timeout{state ? state->order_id : OrderId()})); }
  // Advances the clock to the current deadline and fires it.
  StepResult fire_deadline() {
    REQUIRE(state);
    REQUIRE(state->deadline);
    now = *state->deadline;
    return timeout();
  }
};

inline std::vector<std::string> types_of(const std::vector<SagaMessage>& ms) {
  std::vector<std::string> out;
  for (const auto& m : ms) out.emplace_back(to_string(m.type));
  return out;
}

using Strings = std::vector<std::string>;

}  // namespace sagaflow::test
