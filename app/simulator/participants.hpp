#pragma once
// The participants of the order fulfillment saga (inventory, payment, shipment) as a pure
// function of the command: the same command (same id) always gets the same answer, so the
// simulator is idempotent by command id and deterministic for a given seed, whatever the order
// or number of deliveries. Compensations are always acknowledged.
#include <cstdint>
#include <optional>
#include <string>

#include "core/clock.hpp"
#include "core/envelope.hpp"

namespace sagaflow::app {

struct ParticipantOdds {
  std::uint64_t seed = 1;
  double fail_inventory = 0;
  double fail_payment = 0;
  double fail_shipment = 0;
  double no_answer = 0;  // forward commands only; drives step timeouts
};

struct Reply {
  EventType type = EventType::inventory_reserved;
  std::string id;        // deterministic: sim_<hash of the command id>
  std::string body;      // the whole envelope
  std::string order_id;  // the command's data.order_id (the Kafka record key)
};

class Participants {
 public:
  explicit Participants(ParticipantOdds odds) : odds_(odds) {}
  // nullopt: this command is deliberately left unanswered.
  std::optional<Reply> answer(const Event& command, Millis now) const;

 private:
  ParticipantOdds odds_;
};

// A uniform number in [0, 1) from the seed and a key (FNV-1a and a splitmix finaliser).
double unit_hash(std::uint64_t seed, std::string_view key) noexcept;

}  // namespace sagaflow::app
