#pragma once
// One delivery (an event to one endpoint) as kept in Redis (store/deliveries.hpp) and shown by
// `sagaflow deliveries`: its state, its attempts and the last 10 of them (CONTRACT.md section 9).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.hpp"
#include "core/result.hpp"

namespace sagaflow::delivery {

enum class DeliveryState : std::uint8_t { pending, delivered, dead };
std::string_view to_string(DeliveryState s) noexcept;  // "pending", "delivered", "dead"

struct Attempt {
  Millis at_ms = 0;
  int status = 0;     // HTTP status; 0: no answer
  std::string error;  // empty on an answer; else one line ("timeout", "connection refused")
  Millis latency_ms = 0;
};

inline constexpr std::size_t kAttemptsKept = 10;

struct DeliveryRecord {
  DeliveryState state = DeliveryState::pending;
  int attempts = 0;   // attempts made (all kinds)
  int scheduled = 0;  // attempts that count against the schedule (every attempt but replays)
  int last_status = 0;
  Millis next_at_ms = 0;     // pending: when the next attempt is due
  std::vector<Attempt> log;  // the last kAttemptsKept attempts, oldest first

  void add(Attempt a);  // appends, keeping the last kAttemptsKept
  // A replay (`deliveries replay`, the console): new attempts with the same webhook-id, on a
  // fresh schedule from `now`; the log of earlier attempts is kept.
  void restart(Millis now);
};

std::string to_json(const DeliveryRecord& r);
Result<DeliveryRecord> record_from_json(std::string_view json);

}  // namespace sagaflow::delivery
