// Envelope parsing with simdjson On-Demand (CONTRACT.md section 2).
//
// On-Demand is the API that exposes the raw text of a number, which exact money needs, but it
// does not validate what it skips. So the parser visits every value of the document once
// (known fields are read, unknown ones walked with a depth limit): one pass that validates the
// whole body. Fields may come in any order; type-specific rules are checked after the pass.
#include "core/envelope.hpp"

#include <simdjson.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <new>

#include <fmt/format.h>

namespace sagaflow {

namespace {

namespace od = simdjson::ondemand;

constexpr std::array<std::string_view, kEventTypeCount> kTypeNames = {
    "order.created",      "order.cancelled",  "inventory.reserved", "inventory.rejected",
    "payment.completed",  "payment.failed",   "shipment.created",   "shipment.failed",
    "inventory.released", "payment.refunded", "shipment.cancelled", "inventory.reserve",
    "payment.charge",     "shipment.create",  "shipment.cancel",    "payment.refund",
    "inventory.release",  "order.confirmed",  "order.failed",
};

constexpr int kMaxDepth = 64;
constexpr std::int64_t kMaxQty = 1'000'000;

Error invalid(std::string_view field, std::string_view why) {
  return make_error(Errc::invalid_event, fmt::format("field '{}': {}", field, why));
}

Error malformed(simdjson::error_code e) {
  switch (e) {
    case simdjson::UTF8_ERROR:
      return make_error(Errc::malformed_json, "body is not valid UTF-8");
    case simdjson::EMPTY:
      return make_error(Errc::malformed_json, "body is empty");
    case simdjson::DEPTH_ERROR:
      return make_error(Errc::malformed_json,
                        fmt::format("JSON nested deeper than {} levels", kMaxDepth));
    case simdjson::UNCLOSED_STRING:
      return make_error(Errc::malformed_json, "body is not JSON: unclosed string");
    case simdjson::STRING_ERROR:
      return make_error(Errc::malformed_json,
                        "body is not JSON: bad string escape or control character");
    case simdjson::NUMBER_ERROR:
      return make_error(Errc::malformed_json, "body is not JSON: bad number");
    default:
      return make_error(Errc::malformed_json,
                        fmt::format("body is not JSON: {}", simdjson::error_message(e)));
  }
}

// A value the parser visited: what kind it was and its text (unescaped for strings, the raw
// token for numbers). Views point into the parser's buffers, valid until the next parse.
struct Seen {
  enum class Kind : std::uint8_t { absent, string, number, other } kind = Kind::absent;
  std::string_view text;
  bool duplicate = false;
};

// JSON's number grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? . Checked on the raw
// token, so that integers too large for 64 bits are still valid JSON (simdjson 3.0 refuses
// them in get_number()).
bool valid_json_number(std::string_view s) {
  std::size_t i = 0;
  auto digits = [&] {
    const std::size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    return i > start;
  };
  if (i < s.size() && s[i] == '-') ++i;
  if (i < s.size() && s[i] == '0') {
    ++i;
  } else if (!digits()) {
    return false;
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (!digits()) return false;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (!digits()) return false;
  }
  return i == s.size();
}

std::string_view trim_right(std::string_view s);

// Walks a value of no interest, validating it (and everything in it) with a depth limit.
simdjson::error_code walk(od::value v, int depth) {
  if (depth > kMaxDepth) return simdjson::DEPTH_ERROR;
  od::json_type t;
  if (auto e = v.type().get(t)) return e;
  switch (t) {
    case od::json_type::array: {
      od::array a;
      if (auto e = v.get_array().get(a)) return e;
      for (auto element : a) {
        od::value x;
        if (auto e = element.get(x)) return e;
        if (auto e = walk(x, depth + 1)) return e;
      }
      return simdjson::SUCCESS;
    }
    case od::json_type::object: {
      od::object o;
      if (auto e = v.get_object().get(o)) return e;
      for (auto field : o) {
        std::string_view key;
        if (auto e = field.unescaped_key().get(key)) return e;
        if (auto e = walk(field.value(), depth + 1)) return e;
      }
      return simdjson::SUCCESS;
    }
    case od::json_type::number:
      return valid_json_number(trim_right(v.raw_json_token())) ? simdjson::SUCCESS
                                                               : simdjson::NUMBER_ERROR;
    case od::json_type::string: {
      std::string_view s;
      return v.get_string().get(s);
    }
    case od::json_type::boolean: {
      bool b;
      return v.get_bool().get(b);
    }
    case od::json_type::null: {
      bool is_null = false;
      if (auto e = v.is_null().get(is_null)) return e;
      return is_null ? simdjson::SUCCESS : simdjson::TAPE_ERROR;
    }
  }
  return simdjson::TAPE_ERROR;
}

std::string_view trim_right(std::string_view s) {
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\n' || s.back() == '\r' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

// Reads a string or number value into seen; other kinds are walked (validated) and marked.
simdjson::error_code read_scalar(od::value v, Seen& seen, int depth) {
  if (seen.kind != Seen::Kind::absent) seen.duplicate = true;
  od::json_type t;
  if (auto e = v.type().get(t)) return e;
  if (t == od::json_type::string) {
    seen.kind = Seen::Kind::string;
    return v.get_string().get(seen.text);
  }
  if (t == od::json_type::number) {
    seen.kind = Seen::Kind::number;
    seen.text = trim_right(v.raw_json_token());
    (void)depth;
    return valid_json_number(seen.text) ? simdjson::SUCCESS : simdjson::NUMBER_ERROR;
  }
  seen.kind = Seen::Kind::other;
  return walk(v, depth);
}

// The end of the JSON value that starts at p (an array here), for its exact bytes. The
// document was validated by the walk, so bracket matching with string awareness suffices.
const char* value_end(const char* p, const char* end) {
  int depth = 0;
  bool in_string = false;
  for (; p < end; ++p) {
    const char c = *p;
    if (in_string) {
      if (c == '\\') {
        ++p;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      ++depth;
    } else if (c == ']' || c == '}') {
      if (--depth == 0) return p + 1;
    }
  }
  return end;
}

bool valid_rfc3339(std::string_view s) {
  // YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)
  auto digits = [&](std::size_t pos, std::size_t n, int& out) {
    if (pos + n > s.size()) return false;
    out = 0;
    for (std::size_t i = pos; i < pos + n; ++i) {
      if (s[i] < '0' || s[i] > '9') return false;
      out = out * 10 + (s[i] - '0');
    }
    return true;
  };
  int year, month, day, hour, minute, second;
  if (s.size() < 20 || !digits(0, 4, year) || s[4] != '-' || !digits(5, 2, month) || s[7] != '-' ||
      !digits(8, 2, day) || (s[10] != 'T' && s[10] != 't') || !digits(11, 2, hour) ||
      s[13] != ':' || !digits(14, 2, minute) || s[16] != ':' || !digits(17, 2, second)) {
    return false;
  }
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month < 1 || month > 12 || hour > 23 || minute > 59 || second > 60) return false;
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  const int max_day = kDays[month - 1] + (month == 2 && leap ? 1 : 0);
  if (day < 1 || day > max_day) return false;
  std::size_t i = 19;
  if (i < s.size() && s[i] == '.') {
    ++i;
    const std::size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    if (i == start) return false;
  }
  if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) return i + 1 == s.size();
  int oh, om;
  return i + 6 == s.size() && (s[i] == '+' || s[i] == '-') && digits(i + 1, 2, oh) &&
         s[i + 3] == ':' && digits(i + 4, 2, om) && oh <= 23 && om <= 59;
}

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

void append_json_counts(std::string& out, const std::map<std::string, std::int64_t>& counts) {
  out += '{';
  bool first = true;
  for (const auto& [name, n] : counts) {
    if (!first) out += ',';
    first = false;
    append_json_string(out, name);
    out += ':';
    out += std::to_string(n);
  }
  out += '}';
}

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  std::size_t run = 0;  // start of the current run of bytes that need no escaping
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"':
        out.append("\\\"");
        break;
      case '\\':
        out.append("\\\\");
        break;
      case '\n':
        out.append("\\n");
        break;
      case '\r':
        out.append("\\r");
        break;
      case '\t':
        out.append("\\t");
        break;
      case '\b':
        out.append("\\b");
        break;
      case '\f':
        out.append("\\f");
        break;
      default:
        out.append("\\u00");
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 15]);
    }
  }
  out.append(s.data() + run, s.size() - run);
  out.push_back('"');
}

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
