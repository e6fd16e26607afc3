#include "clients/uv_helpers.hpp"

#include <utility>

namespace sagaflow::clients {

struct Timer::State {
  uv_timer_t handle;
  std::function<void()> fn;
  bool alive = true;
};

Timer::Timer(uv_loop_t* loop) : state_(new State) {
  uv_timer_init(loop, &state_->handle);
  state_->handle.data = state_;
}

Timer::~Timer() {
  state_->alive = false;
  uv_timer_stop(&state_->handle);
  uv_close(reinterpret_cast<uv_handle_t*>(&state_->handle),
           [](uv_handle_t* h) { delete static_cast<State*>(h->data); });
}

void Timer::start(std::int64_t delay_ms, std::function<void()> fn, std::int64_t repeat_ms) {
  state_->fn = std::move(fn);
  uv_timer_start(
      &state_->handle,
      [](uv_timer_t* h) {
        auto* s = static_cast<State*>(h->data);
        if (!s->alive || !s->fn) return;
        std::function<void()> call = s->fn;  // the callback may restart or destroy the timer
        call();
      },
      static_cast<std::uint64_t>(delay_ms < 0 ? 0 : delay_ms),
      static_cast<std::uint64_t>(repeat_ms));
}

void Timer::stop() noexcept {
  uv_timer_stop(&state_->handle);
}

bool Timer::active() const noexcept {
  return uv_is_active(reinterpret_cast<const uv_handle_t*>(&state_->handle)) != 0;
}

struct EndOfTurn::State {
  uv_idle_t idle;
  uv_check_t check;
  std::function<void()> fn;
  int open = 2;  // handles not yet closed
  bool alive = true;

  void fire() {
    uv_idle_stop(&idle);
    uv_check_stop(&check);
    std::function<void()> call = std::move(fn);
    fn = nullptr;
    if (alive && call) call();
  }
};

EndOfTurn::EndOfTurn(uv_loop_t* loop) : state_(new State) {
  uv_idle_init(loop, &state_->idle);
  uv_check_init(loop, &state_->check);
  state_->idle.data = state_;
  state_->check.data = state_;
}

EndOfTurn::~EndOfTurn() {
  state_->alive = false;
  state_->fn = nullptr;
  uv_idle_stop(&state_->idle);
  uv_check_stop(&state_->check);
  auto closed = [](uv_handle_t* h) {
    auto* s = static_cast<State*>(h->data);
    if (--s->open == 0) delete s;
  };
  uv_close(reinterpret_cast<uv_handle_t*>(&state_->idle), closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&state_->check), closed);
}

void EndOfTurn::arm(std::function<void()> fn) {
  if (state_->fn) return;
  state_->fn = std::move(fn);
  uv_idle_start(&state_->idle, [](uv_idle_t* h) { static_cast<State*>(h->data)->fire(); });
  uv_check_start(&state_->check, [](uv_check_t* h) { static_cast<State*>(h->data)->fire(); });
}

bool EndOfTurn::armed() const noexcept {
  return static_cast<bool>(state_->fn);
}

struct Deferred::State {
  uv_timer_t handle;
  std::vector<std::function<void()>> queue;
  bool alive = true;
};

Deferred::Deferred(uv_loop_t* loop) : state_(new State) {
  uv_timer_init(loop, &state_->handle);
  state_->handle.data = state_;
}

Deferred::~Deferred() {
  state_->alive = false;
  state_->queue.clear();
  uv_timer_stop(&state_->handle);
  uv_close(reinterpret_cast<uv_handle_t*>(&state_->handle),
           [](uv_handle_t* h) { delete static_cast<State*>(h->data); });
}

void Deferred::post(std::function<void()> fn) {
  state_->queue.push_back(std::move(fn));
  if (uv_is_active(reinterpret_cast<uv_handle_t*>(&state_->handle)) != 0) return;
  uv_timer_start(
      &state_->handle,
      [](uv_timer_t* h) {
        auto* s = static_cast<State*>(h->data);
        std::vector<std::function<void()>> batch;
        batch.swap(s->queue);
        for (auto& item : batch) {
          if (!s->alive) return;  // the owner went away inside an earlier function
          item();
        }
      },
      0, 0);
}

std::int64_t now_ms(uv_loop_t* loop) noexcept {
  return static_cast<std::int64_t>(uv_now(loop));
}

}  // namespace sagaflow::clients
