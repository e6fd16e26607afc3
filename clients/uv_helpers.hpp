#pragma once
// Small libuv helpers that are safe to destroy at any time (handles are heap-allocated and
// freed by their close callback, so an owner may go away without running the loop first).
#include <uv.h>

#include <cstdint>
#include <functional>
#include <vector>

namespace sagaflow::clients {

// A one-shot or repeating timer running a std::function.
class Timer {
 public:
  explicit Timer(uv_loop_t* loop);
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  void start(std::int64_t delay_ms, std::function<void()> fn, std::int64_t repeat_ms = 0);
  void stop() noexcept;
  bool active() const noexcept;

 private:
  struct State;
  State* state_;
};

// Runs posted functions on a later loop turn (never inside the caller), in order.
class Deferred {
 public:
  explicit Deferred(uv_loop_t* loop);
  ~Deferred();  // functions not yet run are dropped
  Deferred(const Deferred&) = delete;
  Deferred& operator=(const Deferred&) = delete;

  void post(std::function<void()> fn);

 private:
  struct State;
  State* state_;
};

// Runs a function once at the end of the current loop turn: after this turn's I/O callbacks
// (uv_check) or, when armed outside them (a timer), before the loop next waits for I/O
// (uv_idle), whichever comes first. While armed, the loop's wait for I/O does not block (an
// active idle handle), so a hook armed late in a turn (in a prepare callback, after the idle
// phase) still runs in this turn's check phase rather than after the next I/O or timer.
// Arming again while armed keeps the first function.
class EndOfTurn {
 public:
  explicit EndOfTurn(uv_loop_t* loop);
  ~EndOfTurn();  // an armed function is dropped
  EndOfTurn(const EndOfTurn&) = delete;
  EndOfTurn& operator=(const EndOfTurn&) = delete;

  void arm(std::function<void()> fn);
  bool armed() const noexcept;

 private:
  struct State;
  State* state_;
};

// Milliseconds on the loop's monotonic clock.
std::int64_t now_ms(uv_loop_t* loop) noexcept;

}  // namespace sagaflow::clients
