#pragma once
// The event envelope of CONTRACT.md section 2 and its parser.
//
// EnvelopeParser turns one message body into an Event, or into an Error whose code is the
// dead-letter reason: too_large (over the size limit), malformed_json (not UTF-8, not JSON,
// not an object, nesting too deep), invalid_event (a field missing or of the wrong shape; the
// detail names the field), unknown_type. The parser is reusable and keeps its buffers, so the
// hot path does not allocate once warmed up; an Event passed back in reuses its strings.
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/ids.hpp"
#include "core/money.hpp"
#include "core/result.hpp"

namespace sagaflow {

enum class EventType : std::uint8_t {
  // Inputs of the saga worker.
  order_created,
  order_cancelled,
  inventory_reserved,
  inventory_rejected,
  payment_completed,
  payment_failed,
  shipment_created,
  shipment_failed,
  inventory_released,
  payment_refunded,
  shipment_cancelled,
  // Commands to participants.
  inventory_reserve,
  payment_charge,
  shipment_create,
  shipment_cancel,
  payment_refund,
  inventory_release,
  // Outcomes.
  order_confirmed,
  order_failed,
};
inline constexpr std::size_t kEventTypeCount = 19;

std::string_view to_string(EventType type) noexcept;  // "order.created", ...
std::optional<EventType> event_type_from(std::string_view name) noexcept;
bool is_saga_input(EventType type) noexcept;
bool is_command(EventType type) noexcept;
bool is_outcome(EventType type) noexcept;

inline constexpr std::size_t kDefaultMaxMessageBytes = 1024 * 1024;

// One parsed envelope. Fields that a type does not carry are left empty.
struct Event {
  EventId id;
  EventType type = EventType::order_created;
  std::string created;  // RFC 3339 text as received; empty when absent
  StoreId store_id;     // empty when absent
  OrderId order_id;     // data.order_id
  SagaId saga_id;       // top-level saga_id on commands; empty when absent

  // order.created
  std::string customer_id;
  Money total;
  std::string currency;    // three letters
  std::string items_json;  // the data.items array, validated, as the exact bytes received

  // Replies and commands.
  std::string ref_id;           // reservation_id | payment_id | shipment_id
  std::string reason;           // failure or cancellation reason
  std::optional<Money> amount;  // payment.completed, payment.charge, payment.refund
};

class EnvelopeParser {
 public:
  explicit EnvelopeParser(std::size_t max_message_bytes = kDefaultMaxMessageBytes);
  ~EnvelopeParser();
  EnvelopeParser(const EnvelopeParser&) = delete;
  EnvelopeParser& operator=(const EnvelopeParser&) = delete;

  // Parses body into out (whose string buffers are reused).
  Status parse(std::string_view body, Event& out);
  Result<Event> parse(std::string_view body);

  std::size_t max_message_bytes() const noexcept { return max_message_bytes_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::size_t max_message_bytes_;
};

// Appends s to out as a JSON string literal (quotes and escapes included).
void append_json_string(std::string& out, std::string_view s);
// Appends {"name": n, ...} (in the map's order).
void append_json_counts(std::string& out, const std::map<std::string, std::int64_t>& counts);

}  // namespace sagaflow
