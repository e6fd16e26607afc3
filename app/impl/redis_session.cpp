#include "app/impl/redis_session.hpp"

#include <uv.h>

#include <fmt/format.h>

namespace sagaflow::app {

struct RedisSession::Loop {
  uv_loop_t loop{};
  Loop() { uv_loop_init(&loop); }
  ~Loop() {
    uv_walk(
        &loop,
        [](uv_handle_t* h, void*) {
          if (!uv_is_closing(h)) uv_close(h, nullptr);
        },
        nullptr);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
  }
};

RedisSession::RedisSession(const Config& config) : loop_(std::make_unique<Loop>()) {
  store::RedisClientOptions o;
  o.endpoint = config.redis;
  o.name = "sagaflow-cli";
  o.heartbeat_ms = 0;
  client_ = std::make_unique<store::RedisClient>(&loop_->loop, o);
}

RedisSession::~RedisSession() {
  client_->stop();
  client_.reset();
}

Status RedisSession::run(const std::function<void(std::function<void()>)>& work,
                         Millis timeout_ms) {
  bool finished = false;
  uv_timer_t timer;
  uv_timer_init(&loop_->loop, &timer);
  timer.data = &loop_->loop;
  uv_timer_start(
      &timer, [](uv_timer_t* t) { uv_stop(static_cast<uv_loop_t*>(t->data)); },
      static_cast<std::uint64_t>(timeout_ms), 0);
  client_->start();
  work([this, &finished] {
    finished = true;
    uv_stop(&loop_->loop);
  });
  if (!finished) uv_run(&loop_->loop, UV_RUN_DEFAULT);
  uv_timer_stop(&timer);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer), nullptr);
  uv_run(&loop_->loop, UV_RUN_NOWAIT);
  if (!finished)
    return make_error(Errc::timeout, fmt::format("Redis did not answer within {} ms", timeout_ms));
  return Status::success();
}

}  // namespace sagaflow::app
