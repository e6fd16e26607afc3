// The saga engine, one test per rule of CONTRACT.md section 3 (given / when / then).
#include "support.hpp"

using namespace sagaflow;
using namespace sagaflow::test;
using Catch::Matchers::Contains;

namespace {

// Drives o1 to the point where `steps_done` steps succeeded and the next command is out.
Saga running_after(int steps_done, const SagaDefinition& def = fulfillment()) {
  Saga s(def);
  s.on(created("o1"));
  const char* refs[] = {"res_1", "pay_1", "shp_1"};
  for (int i = 0; i < steps_done; ++i) {
    s.now += 100;
    const auto r = s.on(reply(def.steps[static_cast<std::size_t>(i)].success, "o1", refs[i]));
    REQUIRE(r.disposition == Disposition::applied);
  }
  return s;
}

void require_ignored(Saga& s, const Event& e) {
  const std::string before = s.state->to_json();
  const auto r = s.on(e);
  CHECK(r.disposition == Disposition::ignored);
  CHECK(r.commands.empty());
  CHECK_FALSE(r.outcome);
  CHECK(s.state->to_json() == before);
}

}  // namespace

TEST_CASE("order.created starts the saga and sends inventory.reserve", "[engine]") {
  // Given no saga for o1
  Saga s;
  // When order.created arrives
  const auto r = s.on(created("o1"));
  // Then the saga runs and the first command goes out with its deterministic id and envelope
  REQUIRE(r.disposition == Disposition::applied);
  CHECK(r.state.status == SagaStatus::running);
  REQUIRE(r.commands.size() == 1);
  const SagaMessage& c = r.commands[0];
  CHECK(c.type == EventType::inventory_reserve);
  CHECK(c.id == "o1:inventory.reserve");
  CHECK(
      c.body ==
      R"({"id":"o1:inventory.reserve","type":"inventory.reserve","created":"2023-11-14T22:13:20Z",)"
      R"("store_id":"store_1","saga_id":"order_fulfillment:o1","data":{"order_id":"o1",)"
      R"("items":[{"sku":"A-1","qty":1,"price":99.99}, {"sku":"B","qty":1,"price":"0"}]}})");
  CHECK_FALSE(r.outcome);
  // And the step waits for its reply until now + the step timeout
  REQUIRE(r.deadline);
  CHECK(*r.deadline == kT0 + kTimeout);
  CHECK(r.state.steps[0].status == StepStatus::pending);
  CHECK(r.state.steps[0].attempts == 1);
}

TEST_CASE("one saga per order: a second order.created is ignored", "[engine]") {
  // Given a running saga
  Saga s = running_after(1);
  // When another order.created for the same order arrives (other event id, other total)
  Event again = created("o1", "5.00");
  again.id = EventId(std::string("evt_other"));
  // Then it is acknowledged and changes nothing
  require_ignored(s, again);
}

TEST_CASE("a step's success sends the next step's command", "[engine]") {
  // Given inventory.reserve is out
  Saga s = running_after(0);
  s.now += 500;
  // When inventory.reserved arrives
  const auto r = s.on(reply(EventType::inventory_reserved, "o1", "res_1"));
  // Then payment.charge is sent with the exact order total, currency and customer
  REQUIRE(r.disposition == Disposition::applied);
  REQUIRE(types_of(r.commands) == Strings{"payment.charge"});
  CHECK(r.commands[0].id == "o1:payment.charge");
  CHECK_THAT(
      r.commands[0].body,
      Contains(
          R"("data":{"order_id":"o1","amount":99.99,"currency":"EUR","customer_id":"cust_1"}})"));
  CHECK(*r.deadline == kT0 + 500 + kTimeout);
  CHECK(r.state.steps[0].status == StepStatus::succeeded);
  CHECK(r.state.steps[0].ref_id == "res_1");
  CHECK(r.state.steps[1].status == StepStatus::pending);
}

TEST_CASE("money keeps its exact value and form from order.created into commands", "[engine]") {
  // Given totals written as a string, a number, with one or no fraction digit
  for (auto [text, quoted, expected] :
       {std::tuple{"99.99", true, R"("amount":"99.99")"},
        std::tuple{"99.99", false, R"("amount":99.99)"},
        std::tuple{"0.1", false, R"("amount":0.1)"},
        std::tuple{"1234567890123.45", true, R"("amount":"1234567890123.45")"},
        std::tuple{"100", false, R"("amount":100,)"}}) {
    Saga s;
    s.on(created("o1", text, quoted));
    // When the charge and later the refund are sent
    const auto charge = s.on(reply(EventType::inventory_reserved, "o1", "r"));
    s.on(reply(EventType::payment_completed, "o1", "p"));
    const auto refund = s.on(cancelled("o1"));
    // Then both carry the total exactly as received
    CHECK_THAT(charge.commands.at(0).body, Contains(expected));
    REQUIRE(types_of(refund.commands) == Strings{"shipment.cancel"});
    const auto refund2 = s.on(reply(EventType::shipment_cancelled, "o1"));
    REQUIRE(types_of(refund2.commands) == Strings{"payment.refund"});
    CHECK_THAT(refund2.commands[0].body, Contains(expected));
  }
}

TEST_CASE("the last success publishes order.confirmed", "[engine]") {
  // Given shipment.create is out
  Saga s = running_after(2);
  // When shipment.created arrives
  s.now += 1000;
  const auto r = s.on(reply(EventType::shipment_created, "o1", "shp_1"));
  // Then order.confirmed is published, once, with its deterministic id, and nothing waits
  REQUIRE(r.disposition == Disposition::applied);
  CHECK(r.commands.empty());
  REQUIRE(r.outcome);
  CHECK(r.outcome->type == EventType::order_confirmed);
  CHECK(r.outcome->id == "o1:order.confirmed");
  CHECK_THAT(r.outcome->body, Contains(R"("type":"order.confirmed")"));
  CHECK_THAT(r.outcome->body, Contains(R"("data":{"order_id":"o1"}})"));
  CHECK_FALSE(r.deadline);
  CHECK(r.state.status == SagaStatus::confirmed);
  CHECK(r.state.finished());
}

TEST_CASE("a failure compensates in reverse, one command at a time, each after the previous ack",
          "[engine]") {
  // Given inventory and payment succeeded and shipment.create is out
  Saga s = running_after(2);
  // When shipment.failed arrives
  auto r = s.on(reply(EventType::shipment_failed, "o1"));
  // Then only the payment is refunded first (the failed shipment is not compensated)
  REQUIRE(types_of(r.commands) == Strings{"payment.refund"});
  CHECK(r.commands[0].id == "o1:payment.refund");
  CHECK_THAT(
      r.commands[0].body,
      Contains(
          R"("data":{"order_id":"o1","payment_id":"pay_1","amount":99.99,"currency":"EUR"}})"));
  CHECK(r.state.status == SagaStatus::compensating);
  CHECK(r.state.reason == "shipment_failed");
  CHECK(r.deadline);
  CHECK_FALSE(r.outcome);
  // And nothing more is sent before the refund is acknowledged
  require_ignored(s, reply(EventType::inventory_released, "o1"));
  // When the refund is acknowledged, the reservation is released
  r = s.on(reply(EventType::payment_refunded, "o1"));
  REQUIRE(types_of(r.commands) == Strings{"inventory.release"});
  CHECK_THAT(r.commands[0].body, Contains(R"("data":{"order_id":"o1","reservation_id":"res_1"}})"));
  CHECK_FALSE(r.outcome);
  // When the release is acknowledged, order.failed is published with the compensations in order
  r = s.on(reply(EventType::inventory_released, "o1"));
  CHECK(r.commands.empty());
  REQUIRE(r.outcome);
  CHECK(r.outcome->id == "o1:order.failed");
  CHECK_THAT(
      r.outcome->body,
      Contains(
          R"("data":{"order_id":"o1","reason":"shipment_failed","compensated":["payment.refund","inventory.release"]}})"));
  CHECK(r.state.status == SagaStatus::failed);
  CHECK_FALSE(r.deadline);
}

TEST_CASE("a failed step is not compensated, a never-started one neither", "[engine]") {
  SECTION("inventory.rejected: nothing to undo, order.failed at once") {
    // Given inventory.reserve is out
    Saga s = running_after(0);
    // When inventory.rejected arrives
    const auto r = s.on(reply(EventType::inventory_rejected, "o1"));
    // Then order.failed at once, reason inventory_rejected, nothing compensated
    CHECK(r.commands.empty());
    REQUIRE(r.outcome);
    CHECK_THAT(r.outcome->body, Contains(R"("reason":"inventory_rejected","compensated":[])"));
  }
  SECTION("payment.failed: only the reservation is released, the shipment never started") {
    // Given payment.charge is out
    Saga s = running_after(1);
    // When payment.failed arrives
    const auto r = s.on(reply(EventType::payment_failed, "o1"));
    // Then only inventory.release is sent
    CHECK(types_of(r.commands) == Strings{"inventory.release"});
    CHECK(r.state.reason == "payment_failed");
    CHECK(r.state.detail == "participant said no");
    const auto done = s.on(reply(EventType::inventory_released, "o1"));
    REQUIRE(done.outcome);
    CHECK_THAT(done.outcome->body,
               Contains(R"("reason":"payment_failed","compensated":["inventory.release"])"));
  }
}

TEST_CASE("order.cancelled while running compensates every step whose command was sent",
          "[engine]") {
  // Given inventory succeeded and payment.charge is out (no reply yet)
  Saga s = running_after(1);
  // When order.cancelled arrives
  auto r = s.on(cancelled("o1"));
  // Then the pending payment is refunded first (it may have happened): no payment_id known
  REQUIRE(types_of(r.commands) == Strings{"payment.refund"});
  CHECK_THAT(r.commands[0].body,
             Contains(R"("data":{"order_id":"o1","amount":99.99,"currency":"EUR"}})"));
  CHECK(r.state.reason == "cancelled");
  CHECK(r.state.detail == "customer asked");
  // And the release follows the refund's ack, then order.failed (cancelled)
  r = s.on(reply(EventType::payment_refunded, "o1"));
  CHECK(types_of(r.commands) == Strings{"inventory.release"});
  r = s.on(reply(EventType::inventory_released, "o1"));
  REQUIRE(r.outcome);
  CHECK_THAT(
      r.outcome->body,
      Contains(R"("reason":"cancelled","compensated":["payment.refund","inventory.release"])"));
}

TEST_CASE("a step timeout compensates, the timed-out step included", "[engine]") {
  // Given shipment.create is out
  Saga s = running_after(2);
  // When its deadline passes without a reply
  auto r = s.fire_deadline();
  // Then the shipment is cancelled first (it may have happened), without a shipment_id
  REQUIRE(r.disposition == Disposition::applied);
  REQUIRE(types_of(r.commands) == Strings{"shipment.cancel"});
  CHECK_THAT(r.commands[0].body, Contains(R"("data":{"order_id":"o1"}})"));
  CHECK(r.state.reason == "timeout:shipment");
  CHECK(r.state.steps[2].status == StepStatus::compensating);
  // And the other steps follow in reverse
  r = s.on(reply(EventType::shipment_cancelled, "o1"));
  CHECK(types_of(r.commands) == Strings{"payment.refund"});
  r = s.on(reply(EventType::payment_refunded, "o1"));
  CHECK(types_of(r.commands) == Strings{"inventory.release"});
  r = s.on(reply(EventType::inventory_released, "o1"));
  REQUIRE(r.outcome);
  CHECK_THAT(
      r.outcome->body,
      Contains(
          R"("reason":"timeout:shipment","compensated":["shipment.cancel","payment.refund","inventory.release"])"));
}

TEST_CASE("timeout reasons name the step", "[engine]") {
  for (int at = 0; at < 3; ++at) {
    // Given step `at` is waiting
    Saga s = running_after(at);
    // When it times out
    const auto r = s.fire_deadline();
    // Then the reason is timeout:<step>
    CHECK(r.state.reason == "timeout:" + fulfillment().steps[static_cast<std::size_t>(at)].name);
  }
}

TEST_CASE("a timeout that is not due, or for no waiting saga, is ignored", "[engine]") {
  // Given payment.charge is out with a deadline
  Saga s = running_after(1);
  // When a timeout fires early (a stale deadline claimed after the step advanced)
  s.now = *s.state->deadline - 1;
  const std::string before = s.state->to_json();
  auto r = s.timeout();
  // Then nothing changes
  CHECK(r.disposition == Disposition::ignored);
  CHECK(s.state->to_json() == before);
  // And a timeout for an order with no saga, or a finished one, is ignored too
  CHECK(step(fulfillment(), nullptr, SagaInput(Timeout{OrderId(std::string("nobody"))}), kT0)
            .disposition == Disposition::ignored);
  Saga done = running_after(3);
  done.now += 10 * kTimeout;
  CHECK(done.timeout().disposition == Disposition::ignored);
}

TEST_CASE("step retries: a timed-out command is re-sent with the same id, then compensated",
          "[engine]") {
  // Given a definition whose payment step has retries: 2 and a 5 s timeout
  SagaDefinition def = fulfillment();
  def.steps[1].retries = 2;
  def.steps[1].timeout_ms = 5000;
  Saga s = running_after(1, def);
  const Millis sent_at = s.now;
  CHECK(*s.state->deadline == sent_at + 5000);
  // When the deadline passes twice
  for (int attempt = 2; attempt <= 3; ++attempt) {
    const auto r = s.fire_deadline();
    // Then the same command is re-sent (same id) with a new deadline
    REQUIRE(types_of(r.commands) == Strings{"payment.charge"});
    CHECK(r.commands[0].id == "o1:payment.charge");
    CHECK(r.state.steps[1].attempts == attempt);
    CHECK(*r.deadline == s.now + 5000);
    CHECK(r.state.status == SagaStatus::running);
  }
  // When it passes a third time, the saga compensates (payment included)
  const auto r = s.fire_deadline();
  CHECK(types_of(r.commands) == Strings{"payment.refund"});
  CHECK(r.state.reason == "timeout:payment");
  // And a success on a retried step still advances normally
  Saga t = running_after(1, def);
  t.fire_deadline();
  const auto ok = t.on(reply(EventType::payment_completed, "o1", "pay_9"));
  CHECK(types_of(ok.commands) == Strings{"shipment.create"});
}

TEST_CASE("an unacknowledged compensation is re-sent, then the saga is stuck until the ack arrives",
          "[engine]") {
  // Given payment.failed started compensation: inventory.release is out
  Saga s = running_after(1);
  s.on(reply(EventType::payment_failed, "o1"));
  REQUIRE(s.state->status == SagaStatus::compensating);
  // When its deadline passes 5 times (compensation_retries, the default)
  for (int i = 0; i < kDefaultCompensationRetries; ++i) {
    const auto r = s.fire_deadline();
    // Then the release is re-sent with the same id, and still listed once
    REQUIRE(types_of(r.commands) == Strings{"inventory.release"});
    CHECK(r.commands[0].id == "o1:inventory.release");
    CHECK(r.state.compensations.size() == 1);
    CHECK(r.state.status == SagaStatus::compensating);
  }
  CHECK(s.state->steps[0].compensation_attempts == 1 + kDefaultCompensationRetries);
  // When it passes once more, the saga is parked as stuck, with nothing left to wait for
  auto r = s.fire_deadline();
  CHECK(r.disposition == Disposition::applied);
  CHECK(r.commands.empty());
  CHECK_FALSE(r.outcome);
  CHECK(r.state.status == SagaStatus::stuck);
  CHECK(r.state.status_name() == "stuck");
  CHECK_FALSE(r.deadline);
  CHECK_FALSE(r.state.finished());
  // And a late timeout changes nothing
  s.now += kTimeout * 10;
  CHECK(s.timeout().disposition == Disposition::ignored);
  // When the ack finally arrives, the saga resumes and ends
  r = s.on(reply(EventType::inventory_released, "o1"));
  REQUIRE(r.outcome);
  CHECK(r.outcome->type == EventType::order_failed);
  CHECK(r.state.status == SagaStatus::failed);
}

TEST_CASE("an operator re-sends a stuck saga's compensation: same id, still stuck until the ack",
          "[engine]") {
  SagaDefinition def = fulfillment();
  def.compensation_retries = 0;
  Saga s = running_after(2, def);
  // A saga that is not stuck has nothing to re-send
  CHECK(s.resend().disposition == Disposition::ignored);
  s.on(reply(EventType::shipment_failed, "o1"));          // payment.refund out
  CHECK(s.resend().disposition == Disposition::ignored);  // compensating: not stuck
  s.fire_deadline();
  REQUIRE(s.state->status == SagaStatus::stuck);
  const auto history = s.state->history.size();
  // When the operator re-sends
  auto r = s.resend();
  // Then the refund goes out again with the same id; the saga stays stuck, without a deadline,
  // and its history (inputs only) is unchanged
  REQUIRE(r.disposition == Disposition::applied);
  REQUIRE(types_of(r.commands) == Strings{"payment.refund"});
  CHECK(r.commands[0].id == "o1:payment.refund");
  CHECK(r.state.status == SagaStatus::stuck);
  CHECK_FALSE(r.deadline);
  CHECK(r.state.history.size() == history);
  CHECK(r.state.steps[1].compensation_attempts == 2);
  CHECK(r.state.compensations.size() == 1);
  CHECK_FALSE(r.outcome);
  // And the ack resumes compensation as before
  r = s.on(reply(EventType::payment_refunded, "o1"));
  CHECK(types_of(r.commands) == Strings{"inventory.release"});
  CHECK(r.state.status == SagaStatus::compensating);
}

TEST_CASE("a stuck saga resumes with the next compensation", "[engine]") {
  // Given compensation_retries 0: the first missed ack parks the saga
  SagaDefinition def = fulfillment();
  def.compensation_retries = 0;
  Saga s = running_after(2, def);
  s.on(reply(EventType::shipment_failed, "o1"));  // payment.refund out
  auto r = s.fire_deadline();
  CHECK(r.state.status == SagaStatus::stuck);
  // When the refund's ack arrives
  r = s.on(reply(EventType::payment_refunded, "o1"));
  // Then the release goes out and the saga is compensating again
  CHECK(types_of(r.commands) == Strings{"inventory.release"});
  CHECK(r.state.status == SagaStatus::compensating);
  CHECK(r.deadline);
}

TEST_CASE("a late success while compensating gets its compensation, after the outstanding one",
          "[engine]") {
  // Given shipment.failed: payment.refund is out
  Saga s = running_after(2);
  s.on(reply(EventType::shipment_failed, "o1"));
  // When shipment.created arrives late (the shipment happened after all)
  auto r = s.on(reply(EventType::shipment_created, "o1", "shp_late"));
  // Then it is remembered but nothing is sent while the refund is outstanding
  CHECK(r.disposition == Disposition::applied);
  CHECK(r.commands.empty());
  // When the refund is acknowledged, the shipment is cancelled (with its id), then the release
  r = s.on(reply(EventType::payment_refunded, "o1"));
  REQUIRE(types_of(r.commands) == Strings{"shipment.cancel"});
  CHECK_THAT(r.commands[0].body, Contains(R"("shipment_id":"shp_late")"));
  r = s.on(reply(EventType::shipment_cancelled, "o1"));
  CHECK(types_of(r.commands) == Strings{"inventory.release"});
  r = s.on(reply(EventType::inventory_released, "o1"));
  REQUIRE(r.outcome);
  CHECK_THAT(r.outcome->body,
             Contains(R"("compensated":["payment.refund","shipment.cancel","inventory.release"])"));
}

TEST_CASE("a late success after the saga failed gets its compensation and no second outcome",
          "[engine]") {
  // Given payment.failed, the reservation released, order.failed published
  Saga s = running_after(1);
  s.on(reply(EventType::payment_failed, "o1"));
  REQUIRE(s.on(reply(EventType::inventory_released, "o1")).outcome);
  // When payment.completed arrives late
  auto r = s.on(reply(EventType::payment_completed, "o1", "pay_late"));
  // Then the payment is refunded, and no outcome is published again
  REQUIRE(types_of(r.commands) == Strings{"payment.refund"});
  CHECK_THAT(r.commands[0].body, Contains(R"("payment_id":"pay_late")"));
  CHECK_FALSE(r.outcome);
  CHECK(r.state.status == SagaStatus::failed);
  CHECK(r.deadline);  // the refund still has to be acknowledged
  // When the refund is acknowledged: applied, still no outcome
  r = s.on(reply(EventType::payment_refunded, "o1"));
  CHECK(r.disposition == Disposition::applied);
  CHECK_FALSE(r.outcome);
  CHECK(r.commands.empty());
  CHECK_FALSE(r.deadline);
  // And a duplicate of the late success changes nothing
  require_ignored(s, reply(EventType::payment_completed, "o1", "pay_late"));
}

TEST_CASE("events that do not fit the saga's state are ignored", "[engine]") {
  // Given payment.charge is out
  Saga s = running_after(1);
  // Then a duplicate success of the previous step is ignored
  require_ignored(s, reply(EventType::inventory_reserved, "o1", "res_other"));
  // And a reply for a step that never started
  require_ignored(s, reply(EventType::shipment_created, "o1", "x"));
  require_ignored(s, reply(EventType::shipment_failed, "o1"));
  // And a failure of a step that already succeeded
  require_ignored(s, reply(EventType::inventory_rejected, "o1"));
  // And compensation acks while nothing is being compensated
  require_ignored(s, reply(EventType::inventory_released, "o1"));
  require_ignored(s, reply(EventType::payment_refunded, "o1"));
  // And while compensating: another cancel, a stale failure, an ack of another step
  s.on(cancelled("o1"));
  require_ignored(s, cancelled("o1"));
  require_ignored(s, reply(EventType::payment_failed, "o1"));
  require_ignored(s, reply(EventType::inventory_released, "o1"));
  require_ignored(s, created("o1"));
}

TEST_CASE("a reply for an order with no saga is dead-lettered as unknown_saga", "[engine]") {
  for (EventType t :
       {EventType::inventory_reserved, EventType::payment_failed, EventType::shipment_cancelled}) {
    // Given no saga; when a reply arrives
    const Event e = reply(t, "ghost");
    const auto r = step(fulfillment(), nullptr, SagaInput(e), kT0);
    // Then it is dead-lettered with unknown_saga and a detail
    CHECK(r.disposition == Disposition::dead_letter);
    CHECK(r.error.code == Errc::unknown_saga);
    CHECK_THAT(r.error.detail, Contains("ghost"));
    CHECK(r.commands.empty());
  }
  // And also when only a cancellation is remembered (no saga started, no command was sent)
  Saga s;
  s.on(cancelled("o1"));
  const auto r = s.on(reply(EventType::inventory_reserved, "o1", "r"));
  CHECK(r.disposition == Disposition::dead_letter);
  CHECK(r.error.code == Errc::unknown_saga);
}

TEST_CASE("a finished saga keeps its record: late replies are ignored, not dead-lettered",
          "[engine]") {
  // Given a confirmed saga
  Saga s = running_after(3);
  REQUIRE(s.state->status == SagaStatus::confirmed);
  // Then late or duplicate replies, a cancel and a second order.created are ignored
  require_ignored(s, reply(EventType::shipment_created, "o1", "shp_1"));
  require_ignored(s, reply(EventType::payment_failed, "o1"));
  require_ignored(s, reply(EventType::inventory_released, "o1"));
  require_ignored(s, cancelled("o1"));
  require_ignored(s, created("o1"));
  // Given a failed saga: the same
  Saga f = running_after(0);
  f.on(reply(EventType::inventory_rejected, "o1"));
  REQUIRE(f.state->status == SagaStatus::failed);
  require_ignored(f, reply(EventType::inventory_rejected, "o1"));
  require_ignored(
      f, reply(EventType::payment_completed, "o1", "p"));  // never started: no charge to undo
  require_ignored(f, cancelled("o1"));
}

TEST_CASE("order.cancelled before order.created is remembered; the saga then fails at once",
          "[engine]") {
  // Given no saga, when order.cancelled arrives first
  Saga s;
  auto r = s.on(cancelled("o1"));
  // Then it is remembered: a state with no command, no deadline, no outcome
  REQUIRE(r.disposition == Disposition::applied);
  CHECK(r.state.status == SagaStatus::cancelled_before_start);
  CHECK(r.commands.empty());
  CHECK_FALSE(r.outcome);
  CHECK_FALSE(r.deadline);
  CHECK_FALSE(r.state.finished());
  // And a duplicate cancel changes nothing
  require_ignored(s, cancelled("o1"));
  // When order.created arrives
  r = s.on(created("o1"));
  // Then order.failed (cancelled) is published at once, and no command is ever sent
  REQUIRE(r.disposition == Disposition::applied);
  CHECK(r.commands.empty());
  REQUIRE(r.outcome);
  CHECK(r.outcome->type == EventType::order_failed);
  CHECK(r.outcome->id == "o1:order.failed");
  CHECK_THAT(r.outcome->body,
             Contains(R"("data":{"order_id":"o1","reason":"cancelled","compensated":[]}})"));
  CHECK(r.state.status == SagaStatus::failed);
  CHECK(r.state.finished());
  CHECK_FALSE(r.deadline);
  // And a re-delivered order.created does not start anything
  require_ignored(s, created("o1"));
}

TEST_CASE("each saga publishes exactly one outcome", "[engine]") {
  // Given a confirmed saga and a failed one, whatever arrives afterwards
  for (int failed = 0; failed < 2; ++failed) {
    Saga s = running_after(failed ? 1 : 3);
    if (failed) {
      s.on(reply(EventType::payment_failed, "o1"));
      s.on(reply(EventType::inventory_released, "o1"));
    }
    REQUIRE(s.state->outcome_published);
    int outcomes = 0;
    for (EventType t :
         {EventType::inventory_reserved, EventType::payment_completed, EventType::shipment_created,
          EventType::inventory_released, EventType::payment_refunded, EventType::shipment_failed}) {
      s.now += 1000;
      if (s.on(reply(t, "o1", "x")).outcome) ++outcomes;
      if (s.state->deadline) {
        if (s.fire_deadline().outcome) ++outcomes;
      }
    }
    if (s.on(cancelled("o1")).outcome) ++outcomes;
    if (s.on(created("o1")).outcome) ++outcomes;
    // Then no second outcome ever
    CHECK(outcomes == 0);
  }
}

TEST_CASE("inputs that are not saga inputs, or for another order, are refused", "[engine]") {
  // Given a command type fed back as an input
  Event cmd = reply(EventType::payment_charge, "o1");
  auto r = step(fulfillment(), nullptr, SagaInput(cmd), kT0);
  // Then it is dead-lettered as unknown_type
  CHECK(r.disposition == Disposition::dead_letter);
  CHECK(r.error.code == Errc::unknown_type);
  // And a state given for another order is a caller bug, refused
  Saga s = running_after(1);
  const Event other = reply(EventType::payment_completed, "o2", "p");
  r = step(fulfillment(), &*s.state, SagaInput(other), s.now);
  CHECK(r.disposition == Disposition::dead_letter);
  CHECK(r.error.code == Errc::internal);
}

TEST_CASE("the history keeps the last 32 inputs", "[engine]") {
  // Given a saga whose payment step re-sends many times
  SagaDefinition def = fulfillment();
  def.steps[1].retries = 50;
  Saga s = running_after(1, def);
  for (int i = 0; i < 40; ++i) s.fire_deadline();
  // Then the history is bounded, oldest first dropped
  CHECK(s.state->history.size() == kMaxHistory);
  CHECK_FALSE(s.state->history.back().event.has_value());  // a timeout
  CHECK_FALSE(s.state->history.back().started);            // not a parked start
  CHECK(s.state->history.back().at == s.now);
  CHECK(s.state->steps[1].attempts == 41);
}

TEST_CASE("command created timestamps are RFC 3339 UTC", "[engine]") {
  // Given now values around leap days and epochs
  for (auto [ms, text] : {std::pair<Millis, const char*>{0, "1970-01-01T00:00:00Z"},
                          {951'782'400'000, "2000-02-29T00:00:00Z"},
                          {1'709'251'199'999, "2024-02-29T23:59:59Z"},
                          {4'102'444'800'000, "2100-01-01T00:00:00Z"}}) {
    const Event e = created("o1");
    const auto r = step(fulfillment(), nullptr, SagaInput(e), ms);
    // Then created is that instant, second precision, Z
    CHECK_THAT(r.commands.at(0).body, Contains(std::string(R"("created":")") + text + "\""));
  }
}

TEST_CASE("emitted commands and outcomes are valid envelopes for the core parser", "[engine]") {
  // Given a saga that charged, then failed at shipment and compensated
  Saga s;
  std::vector<SagaMessage> out;
  auto keep = [&](StepResult r) {
    for (auto& c : r.commands) out.push_back(std::move(c));
    if (r.outcome) out.push_back(std::move(*r.outcome));
  };
  keep(s.on(created("o\"1", "99.99", true)));
  keep(s.on(reply(EventType::inventory_reserved, "o\"1", "res_1")));
  keep(s.on(reply(EventType::payment_completed, "o\"1", "pay_1")));
  keep(s.on(reply(EventType::shipment_failed, "o\"1")));
  keep(s.on(reply(EventType::payment_refunded, "o\"1")));
  keep(s.on(reply(EventType::inventory_released, "o\"1")));
  REQUIRE(types_of(out) == Strings{"inventory.reserve", "payment.charge", "shipment.create",
                                   "payment.refund", "inventory.release", "order.failed"});
  // When each body is parsed by the envelope parser the worker and the simulator use
  EnvelopeParser parser;
  for (const SagaMessage& m : out) {
    INFO(m.body);
    auto e = parser.parse(m.body);
    // Then it parses, with the expected id, type, order, saga and store
    REQUIRE(e.ok());
    CHECK(e->id.str() == m.id);
    CHECK(e->type == m.type);
    CHECK(e->order_id.str() == "o\"1");
    CHECK(e->saga_id.str() == "order_fulfillment:o\"1");
    CHECK(e->store_id.str() == "store_1");
    if (m.type == EventType::payment_charge || m.type == EventType::payment_refund) {
      // And the money is the order total, exactly
      REQUIRE(e->amount);
      CHECK(e->amount->minor_units() == 9999);
      std::string text;
      e->amount->append_json(text);
      CHECK(text == "\"99.99\"");
    }
  }
}

TEST_CASE("a parked start waits with no command, then starts as order.created would", "[engine]") {
  // Given an order.created over its store's limit: parked, nothing sent, no deadline
  Saga s;
  const auto parked = s.park(created("o1"));
  REQUIRE(parked.disposition == Disposition::applied);
  CHECK(parked.commands.empty());
  CHECK_FALSE(parked.deadline);
  CHECK(s.state->status == SagaStatus::parked);
  CHECK(s.state->status_name() == "parked");
  CHECK(s.state->store_id.view() == created("o1").store_id.view());
  // A second order.created and a stray reply change nothing
  require_ignored(s, created("o1"));
  require_ignored(s, reply(EventType::inventory_reserved, "o1", "res_1"));
  // When its store's bucket allows: the first command and its deadline, like a direct start
  s.now += 5000;
  const auto started = s.start_parked();
  REQUIRE(started.disposition == Disposition::applied);
  CHECK(types_of(started.commands) == Strings{"inventory.reserve"});
  REQUIRE(started.deadline);
  CHECK(*started.deadline == s.now + fulfillment().steps[0].timeout_ms);
  CHECK(s.state->status == SagaStatus::running);
  // Its history says it started then (not a timeout: none fired)
  REQUIRE_FALSE(s.state->history.empty());
  CHECK_FALSE(s.state->history.back().event.has_value());
  CHECK(s.state->history.back().started);
  CHECK(s.state->history.back().at == s.now);
  CHECK_THAT(s.state->to_json(), Contains(R"({"event":"started","at_ms":)"));
  Saga direct;
  direct.now = s.now;
  const auto direct_start = direct.on(created("o1"));
  CHECK(started.commands[0].body == direct_start.commands[0].body);
  // Starting it again is ignored: a start runs once
  CHECK(sagaflow::start_parked(s.def, *s.state, s.now).disposition == Disposition::ignored);
}

TEST_CASE("an order.cancelled for a parked saga ends it at once: order.failed, no command",
          "[engine]") {
  Saga s;
  s.park(created("o1"));
  const auto r = s.on(cancelled("o1", "changed my mind"));
  REQUIRE(r.disposition == Disposition::applied);
  CHECK(r.commands.empty());
  REQUIRE(r.outcome);
  CHECK(to_string(r.outcome->type) == std::string("order.failed"));
  CHECK_THAT(r.outcome->body, Contains(R"("reason":"cancelled")"));
  CHECK(s.state->status == SagaStatus::failed);
  CHECK_FALSE(r.deadline);
  // and a later start of it is ignored
  CHECK(sagaflow::start_parked(s.def, *s.state, s.now).disposition == Disposition::ignored);
}
