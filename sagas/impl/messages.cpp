#include "sagas/impl/messages.hpp"

#include "core/civil_date.hpp"

namespace sagaflow::impl {

namespace {

void append_2(std::string& out, unsigned v) {
  out += static_cast<char>('0' + v / 10);
  out += static_cast<char>('0' + v % 10);
}


void append_envelope_head(std::string& out, const SagaState& s, EventType type, std::string_view id,
                          Millis now) {
  out += "{\"id\":";
  append_json_string(out, id);
  out += ",\"type\":\"";
  out += to_string(type);
  out += "\",\"created\":\"";
  append_rfc3339(out, now);
  out += '"';
  if (!s.store_id.empty()) {
    out += ",\"store_id\":";
    append_json_string(out, s.store_id.view());
  }
  // saga_id = "<saga>:<order_id>": the saga name needs no escaping (validated [a-z0-9_]), the
  // order id is escaped in place (its opening quote dropped) to avoid a temporary string.
  out += ",\"saga_id\":\"";
  out += s.saga;
  out += ':';
  const std::size_t at = out.size();
  append_json_string(out, s.order_id.view());
  out.erase(at, 1);
  out += ",\"data\":{\"order_id\":";
  append_json_string(out, s.order_id.view());
}

void append_ref(std::string& out, std::string_view key, std::string_view ref) {
  if (ref.empty()) return;
  out += ",\"";
  out += key;
  out += "\":";
  append_json_string(out, ref);
}

}  // namespace

void append_rfc3339(std::string& out, Millis ms) {
  constexpr std::int64_t kDayMs = 86'400'000;
  std::int64_t days = ms / kDayMs;
  std::int64_t rem = ms % kDayMs;
  if (rem < 0) {
    rem += kDayMs;
    --days;
  }
  const CivilDate date = civil_from_days(days);
  std::int64_t y = date.year;
  const unsigned m = date.month;
  const unsigned d = date.day;
  const auto secs = static_cast<unsigned>(rem / 1000);
  if (y < 0 || y > 9999) y = y < 0 ? 0 : 9999;  // RFC 3339 has 4-digit years
  const auto yy = static_cast<unsigned>(y);
  append_2(out, yy / 100);
  append_2(out, yy % 100);
  out += '-';
  append_2(out, m);
  out += '-';
  append_2(out, d);
  out += 'T';
  append_2(out, secs / 3600);
  out += ':';
  append_2(out, secs / 60 % 60);
  out += ':';
  append_2(out, secs % 60);
  out += 'Z';
}

std::string message_id(const OrderId& order, EventType type) {
  const std::string_view t = to_string(type);
  std::string id;
  id.reserve(order.view().size() + 1 + t.size());
  id += order.view();
  id += ':';
  id += t;
  return id;
}

std::string command_body(const SagaState& s, EventType type, std::string_view id,
                         std::string_view step_ref_id, Millis now) {
  std::string out;
  out.reserve(224 + id.size() + s.items_json.size() + s.order_id.view().size() * 2 +
              s.customer_id.size() + step_ref_id.size());
  append_envelope_head(out, s, type, id, now);
  switch (type) {
    case EventType::inventory_reserve:
    case EventType::shipment_create:
      out += ",\"items\":";
      out += s.items_json.empty() ? std::string_view("[]") : std::string_view(s.items_json);
      break;
    case EventType::payment_charge:
      out += ",\"amount\":";
      s.total.append_json(out);
      out += ",\"currency\":";
      append_json_string(out, s.currency);
      out += ",\"customer_id\":";
      append_json_string(out, s.customer_id);
      break;
    case EventType::payment_refund:
      append_ref(out, "payment_id", step_ref_id);
      out += ",\"amount\":";
      s.total.append_json(out);
      out += ",\"currency\":";
      append_json_string(out, s.currency);
      break;
    case EventType::inventory_release:
      append_ref(out, "reservation_id", step_ref_id);
      break;
    case EventType::shipment_cancel:
      append_ref(out, "shipment_id", step_ref_id);
      break;
    default:
      break;
  }
  out += "}}";
  return out;
}

std::string outcome_body(const SagaState& s, EventType type, std::string_view id, Millis now) {
  std::string out;
  out.reserve(224 + id.size() + s.order_id.view().size() * 2 + s.compensations.size() * 20);
  append_envelope_head(out, s, type, id, now);
  if (type == EventType::order_failed) {
    out += ",\"reason\":";
    append_json_string(out, s.reason);
    out += ",\"compensated\":[";
    for (std::size_t i = 0; i < s.compensations.size(); ++i) {
      if (i > 0) out += ',';
      out += '"';
      out += to_string(s.compensations[i]);
      out += '"';
    }
    out += ']';
  }
  out += "}}";
  return out;
}

}  // namespace sagaflow::impl
