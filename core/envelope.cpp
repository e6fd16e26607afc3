// Envelope parsing with simdjson On-Demand (CONTRACT.md section 2).
//
// On-Demand is the API that exposes the raw text of a number, which exact money needs, but it
// does not validate what it skips. So the parser visits every value of the document once
// (known fields are read, unknown ones walked with a depth limit): one pass that validates the
// whole body. Fields may come in any order; type-specific rules are checked after the pass.
#include "core/envelope.hpp"

#include <simdjson.h>

#include <algorithm>
#include <cstring>
#include <new>

#include <fmt/format.h>

#include "core/impl/json_walk.hpp"
#include "core/impl/rfc3339.hpp"

namespace sagaflow {

namespace {

using namespace core_impl;  // NOLINT(google-build-using-namespace): the JSON walk's vocabulary

constexpr std::int64_t kMaxQty = 1'000'000;

Error invalid(std::string_view field, std::string_view why) {
  return make_error(Errc::invalid_event, fmt::format("field '{}': {}", field, why));
}

}  // namespace

struct EnvelopeParser::Impl {
  od::parser parser;
  std::string buffer;  // the body plus simdjson's padding; capacity kept across messages

  // What one pass saw. Top level:
  Seen id, type, created, store_id, saga_id;
  bool has_data = false, data_duplicate = false, data_not_object = false;
  // data.*:
  Seen order_id, customer_id, total, currency, reservation_id, payment_id, shipment_id, reason,
      amount;
  bool has_items = false, items_duplicate = false;
  std::string_view items_raw;
  Status items_status;

  void reset() {
    id = type = created = store_id = saga_id = Seen{};
    order_id = customer_id = total = currency = reservation_id = payment_id = shipment_id = reason =
        amount = Seen{};
    has_data = data_duplicate = data_not_object = false;
    has_items = items_duplicate = false;
    items_raw = {};
    items_status = Status::success();
  }

  // items: a non-empty array of {sku: non-empty string, qty: integer >= 1, price: money}.
  simdjson::error_code read_items(od::value v, const char* doc_end) {
    if (has_items) items_duplicate = true;
    has_items = true;
    od::json_type t;
    if (auto e = v.type().get(t)) return e;
    if (t != od::json_type::array) {
      items_status = invalid("data.items", "must be a non-empty array");
      return walk(v, 3);
    }
    const std::string_view start = v.raw_json_token();
    od::array a;
    if (auto e = v.get_array().get(a)) return e;
    std::size_t index = 0;
    for (auto element : a) {
      od::value item;
      if (auto e = element.get(item)) return e;
      auto where = [index] { return fmt::format("data.items[{}]", index); };  // only on errors
      od::json_type it;
      if (auto e = item.type().get(it)) return e;
      if (it != od::json_type::object) {
        if (items_status) items_status = invalid(where(), "must be an object {sku, qty, price}");
        if (auto e = walk(item, 4)) return e;
        ++index;
        continue;
      }
      od::object o;
      if (auto e = item.get_object().get(o)) return e;
      Seen sku, qty, price;
      for (auto field : o) {
        std::string_view key;
        if (auto e = field.unescaped_key().get(key)) return e;
        od::value fv;
        if (auto e = field.value().get(fv)) return e;
        simdjson::error_code e = simdjson::SUCCESS;
        if (key == "sku")
          e = read_scalar(fv, sku, 5);
        else if (key == "qty")
          e = read_scalar(fv, qty, 5);
        else if (key == "price")
          e = read_scalar(fv, price, 5);
        else
          e = walk(fv, 5);
        if (e) return e;
      }
      if (items_status) items_status = check_item(index, sku, qty, price);
      ++index;
    }
    if (index == 0 && items_status) items_status = invalid("data.items", "must not be empty");
    const char* begin = start.data();
    items_raw =
        std::string_view(begin, static_cast<std::size_t>(value_end(begin, doc_end) - begin));
    return simdjson::SUCCESS;
  }

  static Status check_item(std::size_t index, const Seen& sku, const Seen& qty, const Seen& price) {
    auto bad = [index](std::string_view field, std::string_view why) {
      return invalid(fmt::format("data.items[{}].{}", index, field), why);
    };
    if (sku.kind != Seen::Kind::string || sku.text.empty() || sku.duplicate)
      return bad("sku", "must be a non-empty string");
    std::int64_t q = 0;
    bool digits_only = qty.kind == Seen::Kind::number && !qty.duplicate && !qty.text.empty() &&
                       qty.text.size() <= 7;
    for (char c : qty.text) {
      digits_only = digits_only && c >= '0' && c <= '9';
      q = q * 10 + (c - '0');
    }
    if (!digits_only || q < 1 || q > kMaxQty || (qty.text.size() > 1 && qty.text[0] == '0')) {
      return bad("qty", "must be an integer from 1 to 1000000");
    }
    if (price.kind != Seen::Kind::string && price.kind != Seen::Kind::number) {
      return bad("price",
                 "must be money (a number or numeric string with at most 2 fraction digits)");
    }
    if (auto m = Money::parse(price.text, price.kind == Seen::Kind::string); !m)
      return bad("price", m.error().detail);
    return Status::success();
  }

  simdjson::error_code read_data(od::value v, const char* doc_end) {
    if (has_data) data_duplicate = true;
    has_data = true;
    od::json_type t;
    if (auto e = v.type().get(t)) return e;
    if (t != od::json_type::object) {
      data_not_object = true;
      return walk(v, 2);
    }
    od::object o;
    if (auto e = v.get_object().get(o)) return e;
    for (auto field : o) {
      std::string_view key;
      if (auto e = field.unescaped_key().get(key)) return e;
      od::value fv;
      if (auto e = field.value().get(fv)) return e;
      simdjson::error_code e = simdjson::SUCCESS;
      if (key == "order_id")
        e = read_scalar(fv, order_id, 3);
      else if (key == "customer_id")
        e = read_scalar(fv, customer_id, 3);
      else if (key == "total")
        e = read_scalar(fv, total, 3);
      else if (key == "currency")
        e = read_scalar(fv, currency, 3);
      else if (key == "items")
        e = read_items(fv, doc_end);
      else if (key == "reservation_id")
        e = read_scalar(fv, reservation_id, 3);
      else if (key == "payment_id")
        e = read_scalar(fv, payment_id, 3);
      else if (key == "shipment_id")
        e = read_scalar(fv, shipment_id, 3);
      else if (key == "reason")
        e = read_scalar(fv, reason, 3);
      else if (key == "amount")
        e = read_scalar(fv, amount, 3);
      else
        e = walk(fv, 3);
      if (e) return e;
    }
    return simdjson::SUCCESS;
  }
};

namespace {

Status require_string(const Seen& s, std::string_view field, bool required, std::size_t max = 0,
                      bool non_empty = false) {
  if (s.duplicate) return make_error(Errc::invalid_event, fmt::format("duplicate key '{}'", field));
  if (s.kind == Seen::Kind::absent) {
    return required ? invalid(field, "is required") : Status::success();
  }
  if (s.kind != Seen::Kind::string) return invalid(field, "must be a string");
  if (non_empty && s.text.empty()) return invalid(field, "must not be empty");
  if (max > 0 && s.text.size() > max)
    return invalid(field, fmt::format("must be at most {} bytes", max));
  return Status::success();
}

Result<std::optional<Money>> money_of(const Seen& s, std::string_view field, bool required) {
  if (s.duplicate) return make_error(Errc::invalid_event, fmt::format("duplicate key '{}'", field));
  if (s.kind == Seen::Kind::absent) {
    if (required) return invalid(field, "is required");
    return std::optional<Money>{};
  }
  if (s.kind != Seen::Kind::string && s.kind != Seen::Kind::number) {
    return invalid(field,
                   "must be money (a number or numeric string with at most 2 fraction digits)");
  }
  auto m = Money::parse(s.text, s.kind == Seen::Kind::string);
  if (!m) return invalid(field, m.error().detail);
  return std::optional<Money>{m.value()};
}

}  // namespace

EnvelopeParser::EnvelopeParser(std::size_t max_message_bytes)
    : impl_(std::make_unique<Impl>()), max_message_bytes_(max_message_bytes) {
  // Capacity for the largest accepted body; the depth limit is enforced by the walk (and by
  // simdjson a little above it).
  if (impl_->parser.allocate(std::max<std::size_t>(max_message_bytes, 4096), kMaxDepth + 8) !=
      simdjson::SUCCESS) {
    throw std::bad_alloc();
  }
}

EnvelopeParser::~EnvelopeParser() = default;

Result<Event> EnvelopeParser::parse(std::string_view body) {
  Event e;
  if (auto st = parse(body, e); !st) return st.error();
  return e;
}

Status EnvelopeParser::parse(std::string_view body, Event& out) {
  if (body.size() > max_message_bytes_) {
    return make_error(Errc::too_large, fmt::format("body is {} bytes, over the limit of {} bytes",
                                                   body.size(), max_message_bytes_));
  }
  Impl& m = *impl_;
  m.reset();
  m.buffer.resize(body.size() + simdjson::SIMDJSON_PADDING);
  if (!body.empty()) std::memcpy(m.buffer.data(), body.data(), body.size());
  const char* doc_end = m.buffer.data() + body.size();

  od::document doc;
  if (auto e = m.parser.iterate(m.buffer.data(), body.size(), m.buffer.size()).get(doc))
    return malformed(e);
  od::object root;
  if (auto e = doc.get_object().get(root)) {
    if (e == simdjson::INCORRECT_TYPE)
      return make_error(Errc::malformed_json, "body is not a JSON object");
    return malformed(e);
  }
  for (auto field : root) {
    std::string_view key;
    if (auto e = field.unescaped_key().get(key)) return malformed(e);
    od::value v;
    if (auto e = field.value().get(v)) return malformed(e);
    simdjson::error_code e = simdjson::SUCCESS;
    if (key == "id")
      e = read_scalar(v, m.id, 2);
    else if (key == "type")
      e = read_scalar(v, m.type, 2);
    else if (key == "created")
      e = read_scalar(v, m.created, 2);
    else if (key == "store_id")
      e = read_scalar(v, m.store_id, 2);
    else if (key == "saga_id")
      e = read_scalar(v, m.saga_id, 2);
    else if (key == "data")
      e = m.read_data(v, doc_end);
    else
      e = walk(v, 2);
    if (e) return malformed(e);
  }
  if (const char* rest = nullptr; doc.current_location().get(rest) == simdjson::SUCCESS) {
    return make_error(Errc::malformed_json,
                      "body is not JSON: trailing characters after the object");
  }

  // The envelope.
  if (auto st = require_string(m.id, "id", true, kMaxIdBytes, true); !st) return st;
  if (auto st = require_string(m.type, "type", true); !st) return st;
  const auto type = event_type_from(m.type.text);
  if (!type) {
    return make_error(Errc::unknown_type,
                      fmt::format("unknown event type '{}'", m.type.text.substr(0, 64)));
  }
  if (auto st = require_string(m.created, "created", false); !st) return st;
  if (m.created.kind == Seen::Kind::string && !valid_rfc3339(m.created.text)) {
    return invalid("created", "must be an RFC 3339 timestamp such as 2024-01-15T10:30:00Z");
  }
  const bool created_event = *type == EventType::order_created;
  if (auto st = require_string(m.store_id, "store_id", created_event, kMaxIdBytes, true); !st)
    return st;
  if (auto st = require_string(m.saga_id, "saga_id", false); !st) return st;
  if (m.data_duplicate) return make_error(Errc::invalid_event, "duplicate key 'data'");
  if (!m.has_data) return invalid("data", "is required");
  if (m.data_not_object) return invalid("data", "must be an object");
  if (auto st = require_string(m.order_id, "data.order_id", true, kMaxIdBytes, true); !st)
    return st;

  // Per type.
  out.amount.reset();
  auto ref = [&](const Seen& s, std::string_view name, bool required) -> Status {
    if (auto st = require_string(s, name, required, 0, required); !st) return st;
    if (s.kind == Seen::Kind::string) out.ref_id.assign(s.text);
    return Status::success();
  };
  auto optional_reason = [&]() { return require_string(m.reason, "data.reason", false); };
  auto items = [&](bool required) -> Status {
    if (m.items_duplicate) return make_error(Errc::invalid_event, "duplicate key 'items'");
    if (!m.has_items) return required ? invalid("data.items", "is required") : Status::success();
    return m.items_status;
  };
  auto amount = [&](bool required) -> Status {
    auto a = money_of(m.amount, "data.amount", required);
    if (!a) return a.error();
    out.amount = a.value();
    return Status::success();
  };
  out.ref_id.clear();
  Status st;
  switch (*type) {
    case EventType::order_created: {
      if (st = require_string(m.customer_id, "data.customer_id", true, 0, true); !st) return st;
      auto total = money_of(m.total, "data.total", true);
      if (!total) return total.error();
      out.total = *total.value();
      if (st = require_string(m.currency, "data.currency", true); !st) return st;
      const auto c = m.currency.text;
      if (c.size() != 3 ||
          !std::all_of(c.begin(), c.end(), [](char ch) { return ch >= 'A' && ch <= 'Z'; })) {
        return invalid("data.currency", "must be 3 upper-case letters (ISO 4217, e.g. EUR)");
      }
      if (st = items(true); !st) return st;
      break;
    }
    case EventType::order_cancelled:
    case EventType::inventory_rejected:
    case EventType::payment_failed:
    case EventType::shipment_failed:
      st = optional_reason();
      break;
    case EventType::order_failed:
      st = require_string(m.reason, "data.reason", true);
      break;
    case EventType::inventory_reserved:
      st = ref(m.reservation_id, "data.reservation_id", true);
      break;
    case EventType::payment_completed:
      if (st = ref(m.payment_id, "data.payment_id", true); !st) return st;
      st = amount(false);
      break;
    case EventType::shipment_created:
      st = ref(m.shipment_id, "data.shipment_id", true);
      break;
    case EventType::inventory_released:
    case EventType::payment_refunded:
    case EventType::shipment_cancelled:
    case EventType::order_confirmed:
      break;
    case EventType::inventory_reserve:
    case EventType::shipment_create:
      st = items(true);
      break;
    case EventType::payment_charge:
      if (st = amount(true); !st) return st;
      if (st = require_string(m.currency, "data.currency", true); !st) return st;
      st = require_string(m.customer_id, "data.customer_id", true);
      break;
    case EventType::payment_refund:
      if (st = ref(m.payment_id, "data.payment_id", false); !st) return st;
      st = amount(false);
      break;
    case EventType::inventory_release:
      st = ref(m.reservation_id, "data.reservation_id", false);
      break;
    case EventType::shipment_cancel:
      st = ref(m.shipment_id, "data.shipment_id", false);
      break;
  }
  if (!st) return st;

  out.id.assign(m.id.text);
  out.type = *type;
  out.created.assign(m.created.text);
  out.store_id.assign(m.store_id.text);
  out.order_id.assign(m.order_id.text);
  out.saga_id.assign(m.saga_id.text);
  out.customer_id.assign(m.customer_id.kind == Seen::Kind::string ? m.customer_id.text
                                                                  : std::string_view{});
  out.currency.assign(m.currency.kind == Seen::Kind::string ? m.currency.text : std::string_view{});
  out.items_json.assign(m.has_items ? m.items_raw : std::string_view{});
  out.reason.assign(m.reason.kind == Seen::Kind::string ? m.reason.text : std::string_view{});
  if (*type != EventType::order_created) out.total = Money{};
  return Status::success();
}

}  // namespace sagaflow
