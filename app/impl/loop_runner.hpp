#pragma once
// A libuv loop for one long-running subcommand, with SIGTERM / SIGINT turned into a callback
// (the drain). run() returns when every handle is closed.
#include <functional>
#include <memory>

struct uv_loop_s;

namespace sagaflow::app {

class LoopRunner {
 public:
  LoopRunner();
  ~LoopRunner();
  LoopRunner(const LoopRunner&) = delete;
  LoopRunner& operator=(const LoopRunner&) = delete;

  uv_loop_s* loop() noexcept;
  // on_signal runs once, on the first SIGTERM or SIGINT; the signal handlers are then closed.
  void on_signal(std::function<void()> fn);
  void run();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace sagaflow::app
