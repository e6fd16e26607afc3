// The event types' names (CONTRACT.md section 2) and their groups.
#include <array>

#include "core/envelope.hpp"

namespace sagaflow {
namespace {

constexpr std::array<std::string_view, kEventTypeCount> kTypeNames = {
    "order.created",      "order.cancelled",  "inventory.reserved", "inventory.rejected",
    "payment.completed",  "payment.failed",   "shipment.created",   "shipment.failed",
    "inventory.released", "payment.refunded", "shipment.cancelled", "inventory.reserve",
    "payment.charge",     "shipment.create",  "shipment.cancel",    "payment.refund",
    "inventory.release",  "order.confirmed",  "order.failed",
};

}  // namespace

std::string_view to_string(EventType type) noexcept {
  return kTypeNames[static_cast<std::size_t>(type)];
}

std::optional<EventType> event_type_from(std::string_view name) noexcept {
  for (std::size_t i = 0; i < kTypeNames.size(); ++i) {
    if (kTypeNames[i] == name) return static_cast<EventType>(i);
  }
  return std::nullopt;
}

bool is_saga_input(EventType t) noexcept {
  return t <= EventType::shipment_cancelled;
}
bool is_command(EventType t) noexcept {
  return t >= EventType::inventory_reserve && t <= EventType::inventory_release;
}
bool is_outcome(EventType t) noexcept {
  return t == EventType::order_confirmed || t == EventType::order_failed;
}

}  // namespace sagaflow
