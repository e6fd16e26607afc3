#include "app/worker/uv_timers.hpp"

#include <uv.h>

#include <unordered_set>

namespace sagaflow::app {

namespace {
struct Timer {
  uv_timer_t handle{};
  std::function<void()> fn;
  bool repeating = false;
  UvTimers::Impl* owner = nullptr;
};
}  // namespace

struct UvTimers::Impl {
  uv_loop_t* loop = nullptr;
  std::unordered_set<Timer*> live;
  bool stopped = false;

  void close(Timer* t) {
    live.erase(t);
    uv_timer_stop(&t->handle);
    uv_close(reinterpret_cast<uv_handle_t*>(&t->handle),
             [](uv_handle_t* h) { delete static_cast<Timer*>(h->data); });
  }

  void start(Millis delay, std::function<void()> fn, bool repeating) {
    if (stopped) return;
    auto* t = new Timer;
    t->fn = std::move(fn);
    t->repeating = repeating;
    t->owner = this;
    t->handle.data = t;
    uv_timer_init(loop, &t->handle);
    live.insert(t);
    const auto ms = static_cast<std::uint64_t>(delay < 0 ? 0 : delay);
    uv_timer_start(
        &t->handle,
        [](uv_timer_t* h) {
          auto* timer = static_cast<Timer*>(h->data);
          Impl* self = timer->owner;
          if (timer->repeating) {
            timer->fn();
            return;
          }
          // One-shot: take the callback, close the handle, then run (the callback may add timers).
          auto fn_once = std::move(timer->fn);
          self->close(timer);
          fn_once();
        },
        ms, repeating ? ms : 0);
  }
};

UvTimers::UvTimers(uv_loop_s* loop) : impl_(std::make_shared<Impl>()) {
  impl_->loop = loop;
}
UvTimers::~UvTimers() {
  stop();
}

void UvTimers::after(Millis delay, std::function<void()> fn) {
  impl_->start(delay, std::move(fn), false);
}
void UvTimers::every(Millis period_ms, std::function<void()> fn) {
  impl_->start(period_ms, std::move(fn), true);
}

void UvTimers::stop() noexcept {
  impl_->stopped = true;
  while (!impl_->live.empty()) impl_->close(*impl_->live.begin());
}

}  // namespace sagaflow::app
