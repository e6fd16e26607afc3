#include "delivery/record.hpp"

#include <simdjson.h>

#include <fmt/format.h>

#include "core/envelope.hpp"

namespace sagaflow::delivery {

std::string_view to_string(DeliveryState s) noexcept {
  switch (s) {
    case DeliveryState::pending:
      return "pending";
    case DeliveryState::delivered:
      return "delivered";
    case DeliveryState::dead:
      return "dead";
  }
  return "pending";
}

void DeliveryRecord::add(Attempt a) {
  log.push_back(std::move(a));
  if (log.size() > kAttemptsKept) log.erase(log.begin(), log.end() - kAttemptsKept);
}

void DeliveryRecord::restart(Millis now) {
  state = DeliveryState::pending;
  scheduled = 0;
  next_at_ms = now;
}

std::string to_json(const DeliveryRecord& r) {
  std::string out =
      fmt::format(R"({{"state":"{}","attempts":{},"scheduled":{},"last_status":{},)"
                  R"("next_at":{},"log":[)",
                  to_string(r.state), r.attempts, r.scheduled, r.last_status, r.next_at_ms);
  bool first = true;
  for (const auto& a : r.log) {
    if (!first) out += ',';
    first = false;
    out +=
        fmt::format(R"({{"at":{},"status":{},"ms":{},"error":)", a.at_ms, a.status, a.latency_ms);
    append_json_string(out, a.error);
    out += '}';
  }
  out += "]}";
  return out;
}

Result<DeliveryRecord> record_from_json(std::string_view json) {
  // One parser per thread, reused: a record is read for every attempt.
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(json.data(), json.size()).get(root) != simdjson::SUCCESS || !root.is_object())
    return make_error(Errc::internal, "delivery record: not a JSON object");
  DeliveryRecord r;
  std::string_view state;
  if (root["state"].get_string().get(state) != simdjson::SUCCESS)
    return make_error(Errc::internal, "delivery record: no state");
  if (state == "pending") {
    r.state = DeliveryState::pending;
  } else if (state == "delivered") {
    r.state = DeliveryState::delivered;
  } else if (state == "dead") {
    r.state = DeliveryState::dead;
  } else {
    return make_error(Errc::internal, fmt::format("delivery record: unknown state '{}'", state));
  }
  auto int_of = [&](const char* key) -> std::int64_t {
    std::int64_t v = 0;
    if (root[key].get_int64().get(v) != simdjson::SUCCESS) return 0;
    return v;
  };
  r.attempts = static_cast<int>(int_of("attempts"));
  r.scheduled = static_cast<int>(int_of("scheduled"));
  r.last_status = static_cast<int>(int_of("last_status"));
  r.next_at_ms = int_of("next_at");
  simdjson::dom::array log;
  if (root["log"].get_array().get(log) == simdjson::SUCCESS) {
    for (simdjson::dom::element e : log) {
      Attempt a;
      std::int64_t v = 0;
      if (e["at"].get_int64().get(v) == simdjson::SUCCESS) a.at_ms = v;
      if (e["status"].get_int64().get(v) == simdjson::SUCCESS) a.status = static_cast<int>(v);
      if (e["ms"].get_int64().get(v) == simdjson::SUCCESS) a.latency_ms = v;
      std::string_view err;
      if (e["error"].get_string().get(err) == simdjson::SUCCESS) a.error = std::string(err);
      r.log.push_back(std::move(a));
    }
  }
  return r;
}

}  // namespace sagaflow::delivery
