#pragma once
// The JSON bodies the engine emits: commands to participants and outcome events
// (CONTRACT.md section 2), built by appending to one reserved string.
#include <string>

#include "core/clock.hpp"
#include "core/envelope.hpp"
#include "sagas/saga_state.hpp"

namespace sagaflow::impl {

// RFC 3339 UTC with second precision ("2024-01-15T10:30:00Z"); pure, no libc time zone.
void append_rfc3339(std::string& out, Millis ms);

// "<order_id>:<type>": the same for every send of one command or outcome.
std::string message_id(const OrderId& order, EventType type);

// A command envelope for state's order; id is message_id(order, type). step_ref_id: the ref id of
// the step the command belongs to (used by compensations: reservation_id / payment_id /
// shipment_id, if known).
std::string command_body(const SagaState& state, EventType type, std::string_view id,
                         std::string_view step_ref_id, Millis now);

// order.confirmed or order.failed (data: order_id, and reason + compensated for a failure).
std::string outcome_body(const SagaState& state, EventType type, std::string_view id, Millis now);

}  // namespace sagaflow::impl
