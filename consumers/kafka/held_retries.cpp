#include "consumers/kafka/held_retries.hpp"

#include <algorithm>

namespace sagaflow::kafka_source {

std::int64_t HeldRetries::bounded(std::int64_t header_not_before, std::int64_t now_ms,
                                  std::int64_t cap_ms) noexcept {
  return std::min(header_not_before, now_ms + cap_ms + 60000);
}

void HeldRetries::hold(std::uint64_t tag, std::int64_t at) {
  waiting_++;
  due_.push(Due{at, tag});
}

std::optional<std::uint64_t> HeldRetries::pop_due(std::int64_t now_ms) {
  if (due_.empty() || due_.top().at > now_ms) return std::nullopt;
  const std::uint64_t tag = due_.top().tag;
  due_.pop();
  return tag;
}

std::optional<std::int64_t> HeldRetries::next_due() const {
  if (due_.empty()) return std::nullopt;
  return due_.top().at;
}

bool HeldRetries::update_paused() noexcept {
  if (!paused_ && waiting_ >= max_held_) {
    paused_ = true;
  } else if (paused_ && waiting_ <= max_held_ / 2) {
    paused_ = false;
  }
  return paused_;
}

void HeldRetries::clear() noexcept {
  due_ = {};
  waiting_ = 0;
}

}  // namespace sagaflow::kafka_source
