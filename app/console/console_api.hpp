#pragma once
// The console's HTTP surface (CONTRACT.md section 10): the page, its static files, the login,
// and the JSON API the page and scripts use. Everything is asynchronous on the console's libuv
// loop and reads Redis through the indexes the apply path keeps (store/saga_index.hpp,
// store/dead_letters.hpp): no request scans the keyspace. A dead-letter replay is the blocking
// path of `sagaflow dlq replay` (brokers/broker.hpp, replay_dead_letters), run on libuv's thread
// pool, one at a time. Every action (resend, replay, login) is logged as one JSON line: who, what,
// result.
#include <memory>

#include "core/config.hpp"
#include "http/server.hpp"

struct uv_loop_s;

namespace sagaflow {
struct SagaDefinition;
namespace store {
class RedisClient;
}
}  // namespace sagaflow

namespace sagaflow::app::console {

class Access;

class ConsoleApi {
 public:
  ConsoleApi(uv_loop_s* loop, store::RedisClient& redis, const Config& config,
             std::vector<SagaDefinition> definitions, const Access& access);
  ~ConsoleApi();
  ConsoleApi(const ConsoleApi&) = delete;
  ConsoleApi& operator=(const ConsoleApi&) = delete;

  void operator()(const http::Request& request, http::Respond respond);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace sagaflow::app::console
