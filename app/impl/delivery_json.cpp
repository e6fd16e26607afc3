#include "app/impl/delivery_json.hpp"

#include <cstdlib>
#include <ctime>

#include <fmt/format.h>

#include "core/envelope.hpp"

namespace sagaflow::app {

using delivery::Endpoint;

store::DeliveriesOptions deliveries_options(const Config& c) {
  store::DeliveriesOptions o;
  o.partitions = c.redis_partitions;
  o.ttl_s = c.dedup_ttl_s;
  o.log_max = c.delivery_log_max;
  return o;
}

std::string iso_time(Millis ms) {
  if (ms <= 0) return "-";
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string endpoint_json(const Endpoint& e, delivery::Circuit circuit, bool with_secret_times) {
  std::string out = "{\"id\":";
  append_json_string(out, e.id);
  out += ",\"url\":";
  append_json_string(out, e.url);
  out += ",\"events\":[";
  for (std::size_t i = 0; i < e.events.size(); ++i) {
    if (i) out += ',';
    append_json_string(out, e.events[i]);
  }
  out += "],\"store_id\":";
  if (e.store_id.empty()) {
    out += "null";
  } else {
    append_json_string(out, e.store_id);
  }
  out += ",\"plan\":";
  if (e.plan.empty()) {
    out += "null";
  } else {
    append_json_string(out, e.plan);
  }
  out += fmt::format(",\"state\":\"{}\",\"circuit\":\"{}\"", delivery::to_string(e.state),
                     delivery::to_string(circuit));
  if (with_secret_times) {
    out += ",\"secrets\":[";
    for (std::size_t i = 0; i < e.secrets.size(); ++i) {
      if (i) out += ',';
      out += fmt::format("{{\"created\":\"{}\"}}", iso_time(e.secrets[i].created_ms));
    }
    out += "]";
  }
  out += "}";
  return out;
}

std::vector<DeliveryRow> rows_of(const std::vector<store::Deliveries::Logged>& logged) {
  std::vector<DeliveryRow> rows;
  for (const auto& [event, fields] : logged) {
    Millis created = 0;
    if (auto it = fields.find("created"); it != fields.end())
      created = std::atoll(it->second.c_str());
    for (const auto& [field, value] : fields) {
      if (field.rfind("ep_", 0) != 0) continue;
      auto rec = delivery::record_from_json(value);
      if (!rec) continue;
      rows.push_back(DeliveryRow{event, field, value, std::move(rec.value()), created});
    }
  }
  return rows;
}

bool failed_row(const DeliveryRow& r) {
  return r.record.state == delivery::DeliveryState::pending && r.record.attempts > 0;
}

std::string row_json(const DeliveryRow& r) {
  std::string out = "{\"event_id\":";
  append_json_string(out, r.event_id);
  out += ",\"endpoint\":";
  append_json_string(out, r.endpoint);
  out += fmt::format(",\"state\":\"{}\",\"attempts\":{},\"last_status\":{},\"next_at\":",
                     delivery::to_string(r.record.state), r.record.attempts, r.record.last_status);
  if (r.record.next_at_ms > 0) {
    out += "\"" + iso_time(r.record.next_at_ms) + "\"";
  } else {
    out += "null";
  }
  out += "}";
  return out;
}

}  // namespace sagaflow::app
