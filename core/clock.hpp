#pragma once
// Time as an interface (STYLE.md 4): the saga engine and the pipeline take `now` from a Clock,
// so tests inject a ManualClock and never sleep.
#include <chrono>
#include <cstdint>

namespace sagaflow {

using Millis = std::int64_t;  // milliseconds since the Unix epoch

class Clock {
 public:
  virtual ~Clock() = default;
  virtual Millis now_ms() const = 0;
};

class SystemClock final : public Clock {
 public:
  Millis now_ms() const override {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
  }
};

// The system clock moved by a fixed offset: how tests give a worker a clock that is off.
class SkewedClock final : public Clock {
 public:
  explicit SkewedClock(Millis skew_ms) : skew_ms_(skew_ms) {}
  Millis now_ms() const override { return system_.now_ms() + skew_ms_; }

 private:
  SystemClock system_;
  Millis skew_ms_;
};

// Another clock's time, read through a local one: local time plus the offset of the last
// observation of the reference (e.g. Redis TIME), so that every time a worker writes and every
// time Redis compares it with are on one clock, however far off the host's clock is.
class SyncedClock final : public Clock {
 public:
  explicit SyncedClock(const Clock& local) : local_(local) {}
  Millis now_ms() const override { return local_.now_ms() + offset_ms_; }
  // The reference read `reference_ms` between the local readings `sent_ms` and `received_ms`.
  void observe(Millis reference_ms, Millis sent_ms, Millis received_ms) {
    offset_ms_ = reference_ms - (sent_ms + (received_ms - sent_ms) / 2);
    synced_ = true;
  }
  bool synced() const noexcept { return synced_; }
  Millis offset_ms() const noexcept { return offset_ms_; }
  const Clock& local() const noexcept { return local_; }

 private:
  const Clock& local_;
  Millis offset_ms_ = 0;
  bool synced_ = false;
};

class ManualClock final : public Clock {
 public:
  explicit ManualClock(Millis start = 0) : now_(start) {}
  Millis now_ms() const override { return now_; }
  void advance(Millis ms) { now_ += ms; }
  void set(Millis ms) { now_ = ms; }

 private:
  Millis now_;
};

}  // namespace sagaflow
