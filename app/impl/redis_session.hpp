#pragma once
// A RedisClient on a private libuv loop, for the command-line tools (status, saga show):
// run() drives the loop until the given work calls finish(), or the deadline passes.
#include <functional>
#include <memory>

#include "core/config.hpp"
#include "core/result.hpp"
#include "store/redis_client.hpp"

namespace sagaflow::app {

class RedisSession {
 public:
  explicit RedisSession(const Config& config);
  ~RedisSession();
  RedisSession(const RedisSession&) = delete;
  RedisSession& operator=(const RedisSession&) = delete;

  store::RedisClient& client() { return *client_; }
  // Starts the client, calls work(finish), runs the loop until finish() or timeout_ms.
  Status run(const std::function<void(std::function<void()> finish)>& work,
             Millis timeout_ms = 5000);

 private:
  struct Loop;
  std::unique_ptr<Loop> loop_;
  std::unique_ptr<store::RedisClient> client_;
};

}  // namespace sagaflow::app
