#include "sagas/saga_state.hpp"

#include <array>
#include <charconv>

#include <fmt/format.h>
#include <simdjson.h>

namespace sagaflow {

namespace {

namespace od = simdjson::ondemand;

// Format 1: the full object (what `saga show` prints; every record before format 2).
// Format 2: the compact record (append_record): no order facts (they are in the record's own
// `order` field, written once) and no derived fields.
constexpr int kFullSchema = 1;
constexpr int kRecordSchema = 2;

constexpr std::array<std::string_view, 7> kSagaStatusNames = {
    "cancelled_before_start", "running", "compensating", "stuck", "confirmed", "failed", "parked"};
constexpr std::array<std::string_view, 7> kStepStatusNames = {
    "not_started", "pending", "succeeded", "failed", "timed_out", "compensating", "compensated"};

void append_int(std::string& out, std::int64_t n) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, n);
  out.append(buf, r.ptr);
}

void append_type_list(std::string& out, const std::vector<EventType>& types) {
  out += '[';
  for (std::size_t i = 0; i < types.size(); ++i) {
    if (i > 0) out += ',';
    out += '"';
    out += to_string(types[i]);
    out += '"';
  }
  out += ']';
}

// --- reading ------------------------------------------------------------------------------

Error bad(std::string_view field, std::string_view why) {
  return make_error(Errc::invalid_event, fmt::format("saga state: {}: {}", field, why));
}

Status read_string(od::value& v, std::string_view field, std::string& out) {
  std::string_view s;
  if (v.get_string().get(s) != simdjson::SUCCESS) return bad(field, "must be a string");
  out.assign(s.data(), s.size());
  return {};
}

Status read_int(od::value& v, std::string_view field, std::int64_t& out) {
  if (v.get_int64().get(out) != simdjson::SUCCESS) return bad(field, "must be an integer");
  return {};
}

Status read_small_int(od::value& v, std::string_view field, int& out) {
  std::int64_t n = 0;
  if (v.get_int64().get(n) != simdjson::SUCCESS || n < 0 || n > 1'000'000) {
    return bad(field, "must be a small non-negative integer");
  }
  out = static_cast<int>(n);
  return {};
}

Status read_bool(od::value& v, std::string_view field, bool& out) {
  if (v.get_bool().get(out) != simdjson::SUCCESS) return bad(field, "must be true or false");
  return {};
}

Status read_type(od::value& v, std::string_view field, EventType& out) {
  std::string_view s;
  if (v.get_string().get(s) != simdjson::SUCCESS) return bad(field, "must be a string");
  auto t = event_type_from(s);
  if (!t) return bad(field, "unknown event type");
  out = *t;
  return {};
}

Status read_money(od::value& v, std::string_view field, Money& out) {
  od::json_type type;
  if (v.type().get(type) != simdjson::SUCCESS) return bad(field, "unreadable");
  Result<Money> m = make_error(Errc::invalid_event, "");
  if (type == od::json_type::string) {
    std::string_view s;
    if (v.get_string().get(s) != simdjson::SUCCESS) return bad(field, "unreadable");
    m = Money::parse(s, true);
  } else if (type == od::json_type::number) {
    std::string_view s = v.raw_json_token();
    while (!s.empty() &&
           (s.back() == ' ' || s.back() == '\n' || s.back() == '\r' || s.back() == '\t')) {
      s.remove_suffix(1);
    }
    m = Money::parse(s, false);
  } else {
    return bad(field, "must be money (a number or a numeric string)");
  }
  if (!m) return bad(field, m.error().detail);
  out = m.value();
  return {};
}

Status read_type_list(od::value& v, std::string_view field, std::vector<EventType>& out) {
  od::array arr;
  if (v.get_array().get(arr) != simdjson::SUCCESS) return bad(field, "must be an array");
  out.clear();
  for (auto item : arr) {
    od::value e;
    if (std::move(item).get(e) != simdjson::SUCCESS) return bad(field, "unreadable");
    EventType t{};
    if (auto st = read_type(e, field, t); !st) return st;
    out.push_back(t);
  }
  return {};
}

Status read_step(od::value& v, StepState& step) {
  od::object obj;
  if (v.get_object().get(obj) != simdjson::SUCCESS) return bad("steps[]", "must be an object");
  bool have_name = false;
  bool have_status = false;
  for (auto f : obj) {
    od::field field;
    std::string_view key;
    if (std::move(f).get(field) != simdjson::SUCCESS ||
        field.unescaped_key().get(key) != simdjson::SUCCESS) {
      return bad("steps[]", "unreadable");
    }
    od::value& value = field.value();
    Status st;
    if (key == "name") {
      st = read_string(value, "steps[].name", step.name);
      have_name = true;
    } else if (key == "compensation") {
      st = read_type(value, "steps[].compensation", step.compensation);
    } else if (key == "status") {
      std::string_view s;
      if (value.get_string().get(s) != simdjson::SUCCESS)
        return bad("steps[].status", "must be a string");
      auto status = step_status_from(s);
      if (!status) return bad("steps[].status", "unknown step status");
      step.status = *status;
      have_status = true;
    } else if (key == "ref_id") {
      st = read_string(value, "steps[].ref_id", step.ref_id);
    } else if (key == "attempts") {
      st = read_small_int(value, "steps[].attempts", step.attempts);
    } else if (key == "compensation_attempts") {
      st = read_small_int(value, "steps[].compensation_attempts", step.compensation_attempts);
    } else if (key == "success_reported") {
      st = read_bool(value, "steps[].success_reported", step.success_reported);
    }
    if (!st) return st;
  }
  if (!have_name || !have_status) return bad("steps[]", "name and status are required");
  return {};
}

Status read_history(od::value& v, std::vector<HistoryEntry>& out) {
  od::array arr;
  if (v.get_array().get(arr) != simdjson::SUCCESS) return bad("history", "must be an array");
  out.clear();
  for (auto item : arr) {
    od::object obj;
    if (item.get_object().get(obj) != simdjson::SUCCESS)
      return bad("history[]", "must be an object");
    HistoryEntry h;
    for (auto f : obj) {
      od::field field;
      std::string_view key;
      if (std::move(f).get(field) != simdjson::SUCCESS ||
          field.unescaped_key().get(key) != simdjson::SUCCESS) {
        return bad("history[]", "unreadable");
      }
      od::value& value = field.value();
      if (key == "event") {
        std::string_view s;
        if (value.get_string().get(s) != simdjson::SUCCESS)
          return bad("history[].event", "must be a string");
        if (s == "timeout") {
          h.event.reset();
        } else if (s == "started") {
          h.event.reset();
          h.started = true;
        } else {
          h.event = event_type_from(s);
          if (!h.event) return bad("history[].event", "unknown event type");
        }
      } else if (key == "at_ms") {
        if (auto st = read_int(value, "history[].at_ms", h.at); !st) return st;
      } else if (key == "started") {
        bool started = false;
        if (value.get_bool().get(started) != simdjson::SUCCESS)
          return bad("history[].started", "must be true or false");
        h.started = h.started || started;
      }
    }
    if (h.event) h.started = false;  // only a time entry can be a start
    out.push_back(h);
  }
  if (out.size() > kMaxHistory)
    out.erase(out.begin(), out.end() - static_cast<std::ptrdiff_t>(kMaxHistory));
  return {};
}

struct Seen {
  int schema = 0;
  bool order_id = false;
  bool status = false;
};

// Every key of the full object, of the compact record and of the order facts (the same names).
Status read_fields(od::object& obj, SagaState& s, Seen& seen) {
  for (auto f : obj) {
    od::field field;
    std::string_view key;
    if (std::move(f).get(field) != simdjson::SUCCESS ||
        field.unescaped_key().get(key) != simdjson::SUCCESS) {
      return bad("(root)", "unreadable");
    }
    od::value& v = field.value();
    Status st;
    if (key == "schema") {
      std::int64_t n = 0;
      st = read_int(v, key, n);
      // A newer format is not this record's fault: Errc::unavailable (transient), so the
      // worker retries the event (a worker of the newer version will take it) instead of
      // dead-lettering it.
      if (st && n > kRecordSchema) {
        return make_error(Errc::unavailable,
                          fmt::format("schema: saga record format {} is newer than this build's "
                                      "({}): it was written by a newer sagaflow",
                                      n, kRecordSchema));
      }
      if (st && n < kFullSchema)
        return bad(key, fmt::format("version {} is not supported (this build reads {} to {})", n,
                                    kFullSchema, kRecordSchema));
      seen.schema = static_cast<int>(n);
    } else if (key == "saga") {
      st = read_string(v, key, s.saga);
    } else if (key == "order_id") {
      std::string id;
      st = read_string(v, key, id);
      s.order_id = OrderId(std::move(id));
      seen.order_id = true;
    } else if (key == "state" || key == "status") {
      std::string_view name;
      if (v.get_string().get(name) != simdjson::SUCCESS) return bad(key, "must be a string");
      auto status = saga_status_from(name);
      if (!status) return bad(key, "unknown saga status");
      s.status = *status;
      seen.status = true;
    } else if (key == "outcome") {
      std::string_view name;
      if (v.get_string().get(name) != simdjson::SUCCESS) return bad(key, "must be a string");
      s.outcome_published = true;
    } else if (key == "reason") {
      st = read_string(v, key, s.reason);
    } else if (key == "detail") {
      st = read_string(v, key, s.detail);
    } else if (key == "store_id") {
      std::string id;
      st = read_string(v, key, id);
      s.store_id = StoreId(std::move(id));
    } else if (key == "customer_id") {
      st = read_string(v, key, s.customer_id);
    } else if (key == "total") {
      st = read_money(v, key, s.total);
    } else if (key == "currency") {
      st = read_string(v, key, s.currency);
    } else if (key == "items") {
      od::array arr;
      std::string_view raw;
      if (v.get_array().get(arr) != simdjson::SUCCESS ||
          arr.raw_json().get(raw) != simdjson::SUCCESS) {
        return bad(key, "must be an array");
      }
      s.items_json.assign(raw.data(), raw.size());
    } else if (key == "steps") {
      od::array arr;
      if (v.get_array().get(arr) != simdjson::SUCCESS) return bad(key, "must be an array");
      s.steps.clear();
      for (auto item : arr) {
        od::value e;
        if (std::move(item).get(e) != simdjson::SUCCESS) return bad(key, "unreadable");
        StepState step;
        if (auto r = read_step(e, step); !r) return r;
        s.steps.push_back(std::move(step));
      }
    } else if (key == "compensations") {
      st = read_type_list(v, key, s.compensations);
    } else if (key == "deadline_ms") {
      bool is_null = false;
      if (v.is_null().get(is_null) != simdjson::SUCCESS) return bad(key, "unreadable");
      if (is_null) {
        s.deadline.reset();
      } else {
        std::int64_t n = 0;
        st = read_int(v, key, n);
        s.deadline = n;
      }
    } else if (key == "history") {
      st = read_history(v, s.history);
    }
    // Other keys (derived ones such as steps_done, or a newer writer's) are skipped.
    if (!st) return st;
  }
  return {};
}

// simdjson needs padding: one parser and one padded buffer per slot and thread, so no
// allocation once warmed up (the state and the order are parsed one after the other).
Result<od::object> open_object(std::string_view json, int slot, od::document& doc) {
  thread_local od::parser parsers[2];
  thread_local std::string buffers[2];
  std::string& buffer = buffers[slot];
  buffer.reserve(json.size() + simdjson::SIMDJSON_PADDING);
  buffer.assign(json.data(), json.size());
  if (parsers[slot]
          .iterate(simdjson::padded_string_view(buffer.data(), buffer.size(), buffer.capacity()))
          .get(doc) != simdjson::SUCCESS) {
    return bad("(root)", "not valid JSON");
  }
  od::object obj;
  if (doc.get_object().get(obj) != simdjson::SUCCESS) return bad("(root)", "must be an object");
  return obj;
}

}  // namespace

std::string_view to_string(SagaStatus s) noexcept {
  return kSagaStatusNames[static_cast<std::size_t>(s)];
}
std::string_view to_string(StepStatus s) noexcept {
  return kStepStatusNames[static_cast<std::size_t>(s)];
}

std::optional<SagaStatus> saga_status_from(std::string_view s) noexcept {
  for (std::size_t i = 0; i < kSagaStatusNames.size(); ++i) {
    if (kSagaStatusNames[i] == s) return static_cast<SagaStatus>(i);
  }
  return std::nullopt;
}

std::optional<StepStatus> step_status_from(std::string_view s) noexcept {
  for (std::size_t i = 0; i < kStepStatusNames.size(); ++i) {
    if (kStepStatusNames[i] == s) return static_cast<StepStatus>(i);
  }
  return std::nullopt;
}

void SagaState::add_history(std::optional<EventType> event, Millis at) {
  if (history.size() >= kMaxHistory) history.erase(history.begin());
  history.push_back(HistoryEntry{event, at});
}

void SagaState::add_start(Millis at) {
  add_history(std::nullopt, at);
  history.back().started = true;
}

std::vector<EventType> SagaState::pending_compensations() const {
  std::vector<EventType> out;
  if (status != SagaStatus::compensating && status != SagaStatus::stuck &&
      status != SagaStatus::failed)
    return out;
  for (const auto& step : steps) {
    if (step.status == StepStatus::compensating) out.push_back(step.compensation);
  }
  for (auto it = steps.rbegin(); it != steps.rend(); ++it) {
    if (it->status == StepStatus::succeeded || it->status == StepStatus::pending ||
        it->status == StepStatus::timed_out) {
      out.push_back(it->compensation);
    }
  }
  return out;
}

void SagaState::append_json(std::string& out) const {
  append_object(out, true);
}

void SagaState::append_record(std::string& out) const {
  append_object(out, false);
}

void SagaState::append_order(std::string& out) const {
  if (!has_order()) return;
  out += '{';
  append_order_fields(out);
  out += '}';
}

void SagaState::append_order_fields(std::string& out) const {
  out += "\"customer_id\":";
  append_json_string(out, customer_id);
  out += ",\"total\":";
  total.append_json(out);
  out += ",\"currency\":";
  append_json_string(out, currency);
  out += ",\"items\":";
  out += items_json;
}

void SagaState::append_object(std::string& out, bool full) const {
  out += "{\"schema\":";
  append_int(out, full ? kFullSchema : kRecordSchema);
  out += ",\"saga\":";
  append_json_string(out, saga);
  out += ",\"order_id\":";
  append_json_string(out, order_id.view());
  // "state" is the name `sagaflow saga show` users read; "status" the same, for tools that
  // count sagas by status (the record has "status" only).
  if (full) {
    out += ",\"state\":\"";
    out += to_string(status);
    out += '"';
  }
  out += ",\"status\":\"";
  out += to_string(status);
  out += '"';
  if (outcome_published) {
    out += ",\"outcome\":";
    out += status == SagaStatus::confirmed ? "\"confirmed\"" : "\"failed\"";
  }
  if (!reason.empty()) {
    out += ",\"reason\":";
    append_json_string(out, reason);
  }
  if (!detail.empty()) {
    out += ",\"detail\":";
    append_json_string(out, detail);
  }
  if (!store_id.empty()) {
    out += ",\"store_id\":";
    append_json_string(out, store_id.view());
  }
  if (full && has_order()) {
    out += ',';
    append_order_fields(out);
  }
  out += ",\"steps\":[";
  for (std::size_t i = 0; i < steps.size(); ++i) {
    const StepState& st = steps[i];
    if (i > 0) out += ',';
    out += "{\"name\":";
    append_json_string(out, st.name);
    out += ",\"compensation\":\"";
    out += to_string(st.compensation);
    out += "\",\"status\":\"";
    out += to_string(st.status);
    out += '"';
    if (!st.ref_id.empty()) {
      out += ",\"ref_id\":";
      append_json_string(out, st.ref_id);
    }
    out += ",\"attempts\":";
    append_int(out, st.attempts);
    out += ",\"compensation_attempts\":";
    append_int(out, st.compensation_attempts);
    if (st.success_reported) out += ",\"success_reported\":true";
    out += '}';
  }
  out += ']';
  if (full) {
    out += ",\"steps_done\":[";
    bool first = true;
    for (const auto& st : steps) {
      if (!st.success_reported) continue;
      if (!first) out += ',';
      first = false;
      append_json_string(out, st.name);
    }
    out += ']';
  }
  out += ",\"compensations\":";
  append_type_list(out, compensations);
  if (full) {
    out += ",\"pending_compensations\":";
    append_type_list(out, pending_compensations());
  }
  out += ",\"deadline_ms\":";
  if (deadline) {
    append_int(out, *deadline);
  } else {
    out += "null";
  }
  out += ",\"history\":[";
  for (std::size_t i = 0; i < history.size(); ++i) {
    if (i > 0) out += ',';
    const HistoryEntry& h = history[i];
    out += "{\"event\":\"";
    if (h.event) {
      out += to_string(*h.event);
    } else {
      // A start prints as "started"; the compact record writes it as earlier builds read it,
      // a "timeout" with "started":true (saga_state.hpp).
      out += h.started && full ? std::string_view("started") : std::string_view("timeout");
    }
    out += "\",\"at_ms\":";
    append_int(out, h.at);
    if (h.started && !h.event && !full) out += ",\"started\":true";
    out += '}';
  }
  out += "]}";
}

std::string SagaState::to_json() const {
  std::string out;
  out.reserve(512 + items_json.size() + steps.size() * 128 + history.size() * 48);
  append_json(out);
  return out;
}

Result<SagaState> SagaState::from_json(std::string_view json) {
  return from_record(json, {});
}

Result<SagaState> SagaState::from_record(std::string_view state, std::string_view order) {
  SagaState s;
  Seen seen;
  {
    od::document doc;
    auto obj = open_object(state, 0, doc);
    if (!obj) return obj.error();
    if (auto st = read_fields(obj.value(), s, seen); !st) return st.error();
  }
  if (seen.schema == 0 || !seen.order_id || !seen.status)
    return bad("(root)", "schema, order_id and status are required");
  if (seen.schema >= kRecordSchema && !order.empty()) {
    od::document doc;
    auto obj = open_object(order, 1, doc);
    if (!obj) return make_error(Errc::rejected, "order: " + obj.error().detail);
    Seen order_seen;
    if (auto st = read_fields(obj.value(), s, order_seen); !st) return st.error();
  }
  return s;
}

bool operator==(const SagaState& a, const SagaState& b) {
  std::string ta;
  std::string tb;
  a.total.append_json(ta);
  b.total.append_json(tb);
  return a.saga == b.saga && a.order_id == b.order_id && a.status == b.status &&
         a.outcome_published == b.outcome_published && a.reason == b.reason &&
         a.detail == b.detail && a.store_id == b.store_id && a.customer_id == b.customer_id &&
         ta == tb && a.currency == b.currency && a.items_json == b.items_json &&
         a.steps == b.steps && a.compensations == b.compensations && a.deadline == b.deadline &&
         a.history == b.history;
}

}  // namespace sagaflow
