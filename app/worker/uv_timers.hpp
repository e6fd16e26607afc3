#pragma once
// Timers on the libuv loop: one-shot callbacks (the pipeline's Timers port) and a repeating
// tick. Pending one-shots are cancelled (not run) by stop() or destruction.
#include <functional>
#include <memory>

#include "app/worker/ports.hpp"

struct uv_loop_s;

namespace sagaflow::app {

class UvTimers final : public Timers {
 public:
  explicit UvTimers(uv_loop_s* loop);
  ~UvTimers() override;
  void after(Millis delay, std::function<void()> fn) override;
  // Calls fn every period_ms until stop().
  void every(Millis period_ms, std::function<void()> fn);
  void stop() noexcept;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace sagaflow::app
