#pragma once
// The source's window (pure: no librdkafka, no libuv). At most `max_in_flight` records are
// read and unsettled ("active": polled and unsettled, retries held until their not-before
// excluded, deliveries of revoked partitions still with the handler included); beyond that
// records wait in librdkafka's per-partition prefetch. No partition is paused for this.
//
// Once full, the gate reopens only at 3/4 of the limit; the reopening is the moment to read
// again what librdkafka buffered meanwhile (a partition queue signals only when it was empty).
// A partition whose oldest record is unsettled keeps the settled ones behind it: past
// span_cap() records tracked it is not read until that record settles.
#include <algorithm>
#include <cstddef>

namespace sagaflow::kafka_source {

class FlowGate {
 public:
  explicit FlowGate(std::size_t max_in_flight) : max_(std::max<std::size_t>(1, max_in_flight)) {}

  std::size_t limit() const noexcept { return max_; }
  bool full(std::size_t active) const noexcept { return active >= max_; }
  std::size_t span_cap() const noexcept { return std::max<std::size_t>(1024, 16 * max_); }

  // A turn found the window full.
  void close() noexcept { closed_ = true; }
  // Updates the hysteresis; true when the gate just reopened.
  bool update(std::size_t active) noexcept {
    if (!closed_ && active >= max_) {
      closed_ = true;
    } else if (closed_ && active <= max_ * 3 / 4) {
      closed_ = false;
      return true;
    }
    return false;
  }
  bool closed() const noexcept { return closed_; }

 private:
  std::size_t max_;
  bool closed_ = false;
};

}  // namespace sagaflow::kafka_source
