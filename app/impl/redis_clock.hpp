#pragma once
// Redis' clock, read through the host's (core/clock.hpp SyncedClock): every time a process
// writes for a Redis script to compare with Redis TIME (deadlines, due times, leases) comes
// from this, so a host clock that is off changes nothing. sync() reads TIME (at connect and on
// a timer); synced() is false until the first reading.
#include <functional>

#include "core/clock.hpp"

namespace sagaflow::store {
class RedisClient;
}

namespace sagaflow::app {

class RedisClock final : public Clock {
 public:
  explicit RedisClock(store::RedisClient& redis, Millis host_skew_ms = 0);
  Millis now_ms() const override { return clock_.now_ms(); }
  bool synced() const noexcept { return clock_.synced(); }
  Millis offset_ms() const noexcept { return clock_.offset_ms(); }
  // Reads Redis TIME once (skipped while a reading is out or Redis is away); on_first runs
  // after the first successful reading.
  void sync(std::function<void()> on_first = {});

 private:
  store::RedisClient& redis_;
  SkewedClock host_;
  SyncedClock clock_{host_};
  bool asking_ = false;
};

}  // namespace sagaflow::app
