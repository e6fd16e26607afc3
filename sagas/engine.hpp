#pragma once
// The saga engine (CONTRACT.md section 3) as a pure function: no I/O, no clock reads, no
// randomness. Given a definition, the saga's current state (or none), one input and `now`,
// step() says what to do: the new state, the commands to send, the outcome to publish and
// the next deadline. The caller makes that durable atomically, then acks the input.
//
// Rules, in short (sagas/README.md has them in full):
// - order.created starts the saga (one per order; a second one is ignored) and sends the
//   first step's command. An order.cancelled before it is remembered (a state with no
//   command); the order.created then ends the saga at once: order.failed, reason cancelled.
// - A step's success sends the next command; the last one publishes order.confirmed.
// - A step's failure, an order.cancelled or a step timeout (after `retries` re-sends) starts
//   compensation: in reverse, one command at a time, each after the previous ack, for every
//   step whose command was sent and that did not report failure. Then order.failed.
// - A success arriving late for a step not compensated yet gets its compensation (queued
//   behind an outstanding one; after the outcome, no second outcome).
// - An unacked compensation is re-sent (same id) compensation_retries times, then the saga is
//   `stuck` until the ack still arrives.
// - Anything else that does not fit is ignored; a reply for an order with no saga is
//   dead-lettered (unknown_saga). Exactly one outcome per saga, ever.
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/clock.hpp"
#include "core/envelope.hpp"
#include "core/result.hpp"
#include "sagas/definition.hpp"
#include "sagas/saga_state.hpp"

namespace sagaflow {

// A saga's deadline fired (claimed from the deadline set by the caller).
struct Timeout {
  OrderId order_id;
};

// One input of the engine: an event (by reference: it must outlive the step() call) or a
// timeout (held by value).
class SagaInput {
 public:
  SagaInput(const Event& event) : event_(&event) {}  // NOLINT(google-explicit-constructor)
  SagaInput(const Event&&) = delete;                 // would dangle
  SagaInput(Timeout timeout)
      : timeout_(std::move(timeout)) {}  // NOLINT(google-explicit-constructor)

  const Event* event() const noexcept { return event_; }  // nullptr for a timeout
  bool is_timeout() const noexcept { return event_ == nullptr; }
  const OrderId& order_id() const noexcept { return event_ ? event_->order_id : timeout_.order_id; }

 private:
  const Event* event_ = nullptr;
  Timeout timeout_;
};

enum class Disposition : std::uint8_t {
  applied,      // the state changed: persist state, commands, outcome and deadline, then ack
  ignored,      // ack and change nothing (duplicate, stale, not due); state is left empty
  dead_letter,  // the input can never apply (error says why: unknown_saga, ...)
};

// A message to publish: a command (to sagaflow.commands) or an outcome (to sagaflow.events),
// routing key = to_string(type), message_id = id.
struct SagaMessage {
  EventType type = EventType::inventory_reserve;
  std::string id;    // "<order_id>:<type>", deterministic
  std::string body;  // the JSON envelope
};

struct StepResult {
  Disposition disposition = Disposition::ignored;
  Error error;      // dead_letter only
  SagaState state;  // applied only: the new state
  std::vector<SagaMessage> commands;
  std::optional<SagaMessage> outcome;  // order.confirmed / order.failed, at most once per saga
  std::optional<Millis> deadline;      // applied: the next deadline (absolute ms), or none
};

// An operator's re-send of a stuck saga's outstanding compensation (the console): applied with
// that one command, same id, compensation_attempts + 1, the saga still stuck (no deadline, no
// history entry) until the ack arrives and compensation continues. Ignored unless stuck.
StepResult resend_stuck(const SagaDefinition& definition, const SagaState& current, Millis now);

StepResult step(const SagaDefinition& definition, const SagaState* current, const SagaInput& input,
                Millis now);

// A saga start over its store's rate limit (CONTRACT.md section 5): the order is recorded in
// state `parked`, with no command and no deadline. `created` must be an order.created.
StepResult park(const SagaDefinition& definition, const Event& created, Millis now);
// A parked saga whose store's bucket now allows it: starts as order.created would have (the
// first step's command and deadline). Anything but a parked state is ignored.
StepResult start_parked(const SagaDefinition& definition, const SagaState& parked, Millis now);

// "<saga>:<order_id>", the saga_id of commands.
std::string saga_id(const SagaDefinition& definition, const OrderId& order);

// The order id of a message the engine made: its id is "<order_id>:<type>" (SagaMessage::id),
// so the order id is the id up to its last ':'. Empty for an id without one.
std::string_view order_of_message(std::string_view message_id) noexcept;

// Whether a saga in `state` still wants `command` (a command or compensation type of
// `definition`) sent: a step's command while the saga runs and the step is pending; a
// compensation while its step is compensating. Outcomes are always wanted; a type the
// definition does not send, never. The outbox relay drops a command no longer wanted.
bool still_wanted(const SagaDefinition& definition, const SagaState& state, EventType command);

}  // namespace sagaflow
