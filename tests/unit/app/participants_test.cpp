// The participant simulator answers each command deterministically by command id: a re-sent
// command gets the same reply (same id), failure ratios hold roughly, compensations always ack.
#include <catch2/catch.hpp>

#include <string>

#include "app/simulator/participants.hpp"
#include "core/envelope.hpp"

using namespace sagaflow;
using namespace sagaflow::app;

namespace {

Event command(EventType type, const std::string& order) {
  Event e;
  e.type = type;
  e.order_id.assign(order);
  e.id.assign(order + ":" + std::string(to_string(type)));
  e.store_id.assign("store_1");
  if (type == EventType::payment_charge) e.amount = Money::parse("99.99", false).value();
  return e;
}

}  // namespace

TEST_CASE("the same command gets the same reply", "[simulator]") {
  const Participants p({.seed = 7, .fail_inventory = 0.5});
  const auto a = p.answer(command(EventType::inventory_reserve, "o1"), 1000);
  const auto b = p.answer(command(EventType::inventory_reserve, "o1"), 2000);
  REQUIRE(a);
  REQUIRE(b);
  CHECK(a->id == b->id);
  CHECK(a->type == b->type);
}

TEST_CASE("replies are valid envelopes for the saga worker", "[simulator]") {
  const Participants p({.seed = 3});
  EnvelopeParser parser;
  for (auto type :
       {EventType::inventory_reserve, EventType::payment_charge, EventType::shipment_create,
        EventType::inventory_release, EventType::payment_refund, EventType::shipment_cancel}) {
    const auto r = p.answer(command(type, "ord_42"), 1'700'000'000'000);
    REQUIRE(r);
    auto parsed = parser.parse(r->body);
    INFO(r->body);
    REQUIRE(parsed.ok());
    CHECK(parsed->type == r->type);
    CHECK(parsed->order_id.str() == "ord_42");
    CHECK(parsed->store_id.str() == "store_1");
    if (r->type == EventType::payment_completed) {
      REQUIRE(parsed->amount);
      CHECK(parsed->amount->to_string() == "99.99");  // exact money echoed
    }
  }
}

TEST_CASE("failure ratios are honoured and compensations always acknowledged", "[simulator]") {
  const Participants p({.seed = 11, .fail_payment = 0.25, .no_answer = 0.1});
  int failed = 0, unanswered = 0;
  const int n = 4000;
  for (int i = 0; i < n; ++i) {
    const auto r = p.answer(command(EventType::payment_charge, "o" + std::to_string(i)), 0);
    if (!r) {
      ++unanswered;
    } else if (r->type == EventType::payment_failed) {
      ++failed;
    }
    const auto refund = p.answer(command(EventType::payment_refund, "o" + std::to_string(i)), 0);
    REQUIRE(refund);
    CHECK(refund->type == EventType::payment_refunded);
  }
  CHECK(unanswered == Approx(0.1 * n).epsilon(0.25));
  CHECK(failed == Approx(0.25 * 0.9 * n).epsilon(0.15));
}
