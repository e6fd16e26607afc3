#pragma once
// A blocking rabbitmq-c session for the command-line tools (dlq, status): connect, log in,
// open channel 1, and a few calls with one-line errors. The worker does not use this; it runs
// the asynchronous Source and Sink on the libuv loop.
#include <amqp.h>

#include <memory>
#include <string>
#include <string_view>

#include "core/config.hpp"
#include "core/result.hpp"

namespace sagaflow::app {

class AmqpSession {
 public:
  static Result<std::unique_ptr<AmqpSession>> open(const AmqpEndpoint& endpoint);
  ~AmqpSession();
  AmqpSession(const AmqpSession&) = delete;
  AmqpSession& operator=(const AmqpSession&) = delete;

  amqp_connection_state_t conn() const noexcept { return conn_; }
  std::string describe(const amqp_rpc_reply_t& reply, std::string_view what) const;

  Status enable_confirms();
  // Persistent, application/json, message_id; waits for the broker's confirm.
  Status publish_confirmed(std::string_view exchange, std::string_view routing_key,
                           std::string_view message_id, std::string_view body);
  // Messages ready in a queue (passive declare); an error if it does not exist.
  Result<std::uint32_t> queue_depth(std::string_view queue);

 private:
  AmqpSession() = default;
  amqp_connection_state_t conn_ = nullptr;
  std::string where_;
  bool open_ = false;
};

}  // namespace sagaflow::app
