#pragma once
// Retry records held in memory until their not-before time (pure: no librdkafka, no libuv).
//
// A record of the group's retry topic carries x-sagaflow-not-before (unix ms). One that is not
// due yet is held (its offset stays unsettled) and handed over once due, without blocking
// other records or partitions. Over `max_held` held, the retry topic's partitions are paused
// until at most half of that remain (hysteresis, so they do not flap).
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <queue>
#include <vector>

namespace sagaflow::kafka_source {

class HeldRetries {
 public:
  explicit HeldRetries(std::size_t max_held) : max_held_(max_held < 1 ? 1 : max_held) {}

  // The time a retry record is held until: its header's value, but never later than
  // now + the longest backoff + 60 s (a skewed or forged header must not pin the partition).
  static std::int64_t bounded(std::int64_t header_not_before, std::int64_t now_ms,
                              std::int64_t cap_ms) noexcept;
  // True when a record with this not-before (0: none) must be held at `now_ms`.
  static bool must_hold(std::int64_t not_before, std::int64_t now_ms) noexcept {
    return not_before > 0 && not_before > now_ms;
  }

  // Holds the record `tag` until `at` (unix ms).
  void hold(std::uint64_t tag, std::int64_t at);
  // The next held tag due at `now_ms`, earliest first; nullopt when none is due. A tag whose
  // record was revoked meanwhile comes too (the caller skips it: no record for it).
  std::optional<std::uint64_t> pop_due(std::int64_t now_ms);
  // When the earliest held record is due; nullopt when none is held.
  std::optional<std::int64_t> next_due() const;

  // Counting: a held record left the hold (released when due, or revoked).
  void left() noexcept {
    if (waiting_ > 0) waiting_--;
  }
  std::size_t waiting() const noexcept { return waiting_; }

  // Whether the retry partitions should be paused now (updates the hysteresis).
  bool update_paused() noexcept;
  bool paused() const noexcept { return paused_; }

  void clear() noexcept;

 private:
  struct Due {
    std::int64_t at;  // unix ms
    std::uint64_t tag;
    bool operator>(const Due& o) const { return at > o.at; }
  };
  std::priority_queue<Due, std::vector<Due>, std::greater<>> due_;
  std::size_t max_held_;
  std::size_t waiting_ = 0;  // held records not yet due, released or revoked
  bool paused_ = false;
};

}  // namespace sagaflow::kafka_source
