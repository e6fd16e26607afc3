#pragma once
// A libuv loop for the store tests: run it until a condition holds (or a timeout), and turn
// one callback-style call into a value.
#include <uv.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include "core/config.hpp"
#include "core/result.hpp"
#include "store/redis_client.hpp"
#include "support/servers.hpp"

namespace sagaflow::store::test {

class Loop {
 public:
  Loop() {
    uv_loop_init(&loop_);
    uv_timer_init(&loop_, &tick_);
  }
  ~Loop() {
    uv_close(reinterpret_cast<uv_handle_t*>(&tick_), nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);  // let every closed handle finish
    uv_loop_close(&loop_);
  }
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  uv_loop_t* get() { return &loop_; }

  // Runs the loop until done() holds; false on timeout.
  bool run_until(const std::function<bool()>& done,
                 std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    uv_timer_start(
        &tick_, [](uv_timer_t*) {}, 2, 2);  // wakes uv_run(ONCE) regularly
    bool ok = done();
    while (!ok && std::chrono::steady_clock::now() < end) {
      uv_run(&loop_, UV_RUN_ONCE);
      ok = done();
    }
    uv_timer_stop(&tick_);
    return ok;
  }

  void run_for(std::chrono::milliseconds d) {
    run_until([] { return false; }, d);
  }

  // Calls start(cb) and runs the loop until cb ran; returns what it was given.
  template <class T>
  Result<T> await(const std::function<void(std::function<void(Result<T>)>)>& start,
                  std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    auto slot = std::make_shared<std::optional<Result<T>>>();
    start([slot](Result<T> r) { slot->emplace(std::move(r)); });
    if (!run_until([&] { return slot->has_value(); }, timeout)) {
      throw std::runtime_error("callback never ran");
    }
    return std::move(**slot);
  }

 private:
  uv_loop_t loop_;
  uv_timer_t tick_;
};

inline RedisEndpoint endpoint_of(const testing::RedisServer& server) {
  RedisEndpoint ep;
  ep.host = "127.0.0.1";
  ep.port = server.port();
  return ep;
}

inline RedisClientOptions client_options(const testing::RedisServer& server) {
  RedisClientOptions o;
  o.endpoint = endpoint_of(server);
  return o;
}

// A started client, connected (or throws).
inline std::unique_ptr<RedisClient> connected_client(Loop& loop, RedisClientOptions options) {
  auto c = std::make_unique<RedisClient>(loop.get(), std::move(options));
  c->start();
  if (!loop.run_until([&] { return c->connected(); })) throw std::runtime_error("no connection");
  return c;
}

inline Result<Reply> call(Loop& loop, RedisClient& c, std::vector<std::string> argv) {
  return loop.await<Reply>([&](auto cb) { c.command(std::move(argv), std::move(cb)); });
}

}  // namespace sagaflow::store::test
