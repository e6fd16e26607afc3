#pragma once
// A libuv loop for the broker tests (RabbitMQ and Kafka sources and sinks): run it until a
// condition holds or a timeout passes. Header-only; the test links libuv.
#include <uv.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <utility>

namespace sagaflow::testing {

class UvLoop {
 public:
  UvLoop() { uv_loop_init(&loop_); }
  ~UvLoop() {
    // Let close callbacks run; then close (handles of leaked objects would keep it busy).
    for (int i = 0; i < 100 && uv_loop_alive(&loop_) != 0; ++i) uv_run(&loop_, UV_RUN_NOWAIT);
    uv_loop_close(&loop_);
  }
  UvLoop(const UvLoop&) = delete;
  UvLoop& operator=(const UvLoop&) = delete;
  uv_loop_t* get() { return &loop_; }

  // Runs the loop until pred() is true (checked every 5 ms) or the timeout; returns pred().
  bool run_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
    struct Ctx {
      const std::function<bool()>* pred;
      std::chrono::steady_clock::time_point deadline;
      bool result = false;
    } ctx{&pred, std::chrono::steady_clock::now() + timeout};
    if (pred()) return true;
    uv_timer_t timer;
    uv_timer_init(&loop_, &timer);
    timer.data = &ctx;
    uv_timer_start(
        &timer,
        [](uv_timer_t* t) {
          auto* c = static_cast<Ctx*>(t->data);
          if ((*c->pred)()) {
            c->result = true;
            uv_stop(t->loop);
          } else if (std::chrono::steady_clock::now() > c->deadline) {
            uv_stop(t->loop);
          }
        },
        5, 5);
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_timer_stop(&timer);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer), nullptr);
    uv_run(&loop_, UV_RUN_NOWAIT);
    return ctx.result || pred();
  }

  // Runs the loop for a while, whatever happens.
  void run_for(std::chrono::milliseconds d) {
    run_until([] { return false; }, d);
  }

  // Calls fn every `period` while the loop runs, until destroyed (safe at any time: the handle
  // is freed by its close callback).
  class Every {
   public:
    Every(uv_loop_t* loop, std::chrono::milliseconds period, std::function<void()> fn)
        : t_(new Timer{{}, std::move(fn)}) {
      uv_timer_init(loop, &t_->h);
      t_->h.data = t_;
      const auto ms = static_cast<std::uint64_t>(period.count());
      uv_timer_start(
          &t_->h, [](uv_timer_t* h) { static_cast<Timer*>(h->data)->fn(); }, ms, ms);
    }
    ~Every() {
      uv_timer_stop(&t_->h);
      uv_close(reinterpret_cast<uv_handle_t*>(&t_->h),
               [](uv_handle_t* h) { delete static_cast<Timer*>(h->data); });
    }
    Every(const Every&) = delete;
    Every& operator=(const Every&) = delete;

   private:
    struct Timer {
      uv_timer_t h;
      std::function<void()> fn;
    };
    Timer* t_;
  };

 private:
  uv_loop_t loop_;
};

}  // namespace sagaflow::testing
