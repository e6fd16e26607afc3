#include "app/impl/loop_runner.hpp"

#include <uv.h>

#include <csignal>

#include "core/log.hpp"

namespace sagaflow::app {

struct LoopRunner::Impl {
  uv_loop_t loop{};
  uv_signal_t term{};
  uv_signal_t intr{};
  std::function<void()> fn;
  bool fired = false;
  bool signals_open = false;

  void close_signals() {
    if (!signals_open) return;
    signals_open = false;
    uv_close(reinterpret_cast<uv_handle_t*>(&term), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&intr), nullptr);
  }
};

LoopRunner::LoopRunner() : impl_(std::make_unique<Impl>()) {
  uv_loop_init(&impl_->loop);
}

LoopRunner::~LoopRunner() {
  impl_->close_signals();
  uv_walk(
      &impl_->loop,
      [](uv_handle_t* h, void*) {
        if (!uv_is_closing(h)) uv_close(h, nullptr);
      },
      nullptr);
  uv_run(&impl_->loop, UV_RUN_DEFAULT);
  uv_loop_close(&impl_->loop);
}

uv_loop_s* LoopRunner::loop() noexcept {
  return &impl_->loop;
}

void LoopRunner::on_signal(std::function<void()> fn) {
  Impl& m = *impl_;
  m.fn = std::move(fn);
  uv_signal_init(&m.loop, &m.term);
  uv_signal_init(&m.loop, &m.intr);
  m.term.data = &m;
  m.intr.data = &m;
  m.signals_open = true;
  auto cb = [](uv_signal_t* s, int signum) {
    auto* self = static_cast<Impl*>(s->data);
    if (self->fired) return;
    self->fired = true;
    log::info("signal received: draining", {{"signal", signum}});
    self->close_signals();
    if (self->fn) self->fn();
  };
  uv_signal_start(&m.term, cb, SIGTERM);
  uv_signal_start(&m.intr, cb, SIGINT);
}

void LoopRunner::run() {
  uv_run(&impl_->loop, UV_RUN_DEFAULT);
}

}  // namespace sagaflow::app
