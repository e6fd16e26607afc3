#include "participants.hpp"

#include <ctime>

#include <fmt/format.h>

namespace sagaflow::app {
namespace {

std::uint64_t hash64(std::uint64_t seed, std::string_view key) noexcept {
  std::uint64_t h = 1469598103934665603ULL ^ seed;
  for (unsigned char c : key) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  h += 0x9e3779b97f4a7c15ULL;  // splitmix64 finaliser
  h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
  h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
  return h ^ (h >> 31);
}

void append_rfc3339(std::string& out, Millis now) {
  const std::time_t secs = static_cast<std::time_t>(now / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  fmt::format_to(std::back_inserter(out), "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 static_cast<int>(now % 1000));
}

}  // namespace

double unit_hash(std::uint64_t seed, std::string_view key) noexcept {
  return static_cast<double>(hash64(seed, key) >> 11) * 0x1.0p-53;
}

std::optional<Reply> Participants::answer(const Event& command, Millis now) const {
  const std::string_view cmd_id = command.id.view();
  const bool compensation = command.type == EventType::inventory_release ||
                            command.type == EventType::payment_refund ||
                            command.type == EventType::shipment_cancel;
  if (!compensation && odds_.no_answer > 0 &&
      unit_hash(odds_.seed ^ 0x5151, cmd_id) < odds_.no_answer) {
    return std::nullopt;
  }
  const double roll = unit_hash(odds_.seed, cmd_id);
  const std::uint64_t h = hash64(odds_.seed, cmd_id);

  Reply r;
  r.order_id.assign(command.order_id.view());
  std::string_view ref_key;  // reservation_id, payment_id or shipment_id on a success
  std::string ref;
  std::string_view reason;
  switch (command.type) {
    case EventType::inventory_reserve:
      if (roll < odds_.fail_inventory) {
        r.type = EventType::inventory_rejected;
        reason = "out_of_stock";
      } else {
        r.type = EventType::inventory_reserved;
        ref_key = "reservation_id";
        ref = fmt::format("res_{:016x}", h);
      }
      break;
    case EventType::payment_charge:
      if (roll < odds_.fail_payment) {
        r.type = EventType::payment_failed;
        reason = "card_declined";
      } else {
        r.type = EventType::payment_completed;
        ref_key = "payment_id";
        ref = fmt::format("pay_{:016x}", h);
      }
      break;
    case EventType::shipment_create:
      if (roll < odds_.fail_shipment) {
        r.type = EventType::shipment_failed;
        reason = "no_carrier";
      } else {
        r.type = EventType::shipment_created;
        ref_key = "shipment_id";
        ref = fmt::format("shp_{:016x}", h);
      }
      break;
    case EventType::inventory_release:
      r.type = EventType::inventory_released;
      break;
    case EventType::payment_refund:
      r.type = EventType::payment_refunded;
      break;
    case EventType::shipment_cancel:
      r.type = EventType::shipment_cancelled;
      break;
    default:
      return std::nullopt;  // not a command: nothing to answer
  }

  r.id = fmt::format("sim_{:016x}", hash64(odds_.seed ^ 0xa11ce, cmd_id));
  std::string& b = r.body;
  b.reserve(256);
  b.append(R"({"id":")").append(r.id).append(R"(","type":")").append(to_string(r.type));
  b.append(R"(","created":")");
  append_rfc3339(b, now);
  b.push_back('"');
  if (!command.store_id.empty()) {
    b.append(R"(,"store_id":)");
    append_json_string(b, command.store_id.view());
  }
  b.append(R"(,"data":{"order_id":)");
  append_json_string(b, command.order_id.view());
  if (!ref_key.empty()) {
    b.append(",\"").append(ref_key).append("\":\"").append(ref).push_back('"');
  }
  if (r.type == EventType::payment_completed && command.amount) {
    b.append(R"(,"amount":)");
    command.amount->append_json(b);
  }
  if (!reason.empty()) b.append(R"(,"reason":")").append(reason).push_back('"');
  b.append("}}");
  return r;
}

}  // namespace sagaflow::app
