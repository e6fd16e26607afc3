#pragma once
// One blocking rabbitmq-c connection for the tools that talk to RabbitMQ step by step
// (topology apply, the deliver command's declaration, dlq, status): connect with a timeout,
// log in, open channel 1, and a few calls with one-line errors. The worker does not use this;
// it runs the libuv-driven link (amqp_link.hpp) on the loop.
#include <amqp.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "clients/rabbitmq/amqp_connect.hpp"
#include "core/config.hpp"
#include "core/result.hpp"

namespace sagaflow::rabbit {

class BlockingAmqp {
 public:
  // Errors (code unavailable) as the link's: "cannot connect to RabbitMQ at 127.0.0.1:5672:
  // connection refused", "cannot log in to ...", "RabbitMQ at ...: cannot open a channel: ...".
  // Each RPC then waits at most connect_timeout_ms + 5 s.
  static Result<std::unique_ptr<BlockingAmqp>> open(const AmqpEndpoint& endpoint,
                                                    int connect_timeout_ms = 5000);
  ~BlockingAmqp();
  BlockingAmqp(const BlockingAmqp&) = delete;
  BlockingAmqp& operator=(const BlockingAmqp&) = delete;

  amqp_connection_state_t conn() const noexcept { return conn_; }
  const std::string& where() const noexcept { return where_; }

  // The broker's reply text of a server exception ("PRECONDITION_FAILED - ..."), or the
  // library's error string; code is the AMQP reply code (0 for library errors).
  struct ReplyError {
    int code = 0;
    std::string text;
    bool server = false;
  };
  static ReplyError reply_error(const amqp_rpc_reply_t& reply);
  // After a server exception: answer close-ok so the connection closes cleanly (a channel
  // exception leaves the connection without channel 1).
  void after_exception(const amqp_rpc_reply_t& reply);
  // "RabbitMQ at <where>: <what> refused: <reply text>" / "... <what> failed: <library error>".
  std::string describe(const amqp_rpc_reply_t& reply, std::string_view what) const;

  Status enable_confirms();
  // Persistent, application/json, message_id; waits (10 s) for the broker's confirm.
  Status publish_confirmed(std::string_view exchange, std::string_view routing_key,
                           std::string_view message_id, std::string_view body);
  // Messages ready in a queue (passive declare); an error if it does not exist.
  Result<std::uint32_t> queue_depth(std::string_view queue);
  // basic.get without auto-ack: false when the queue has nothing ready; else on_message gets
  // the delivery tag, the routing key and the message (valid during the call only).
  using GotMessage =
      std::function<void(std::uint64_t tag, std::string_view routing_key, const amqp_message_t&)>;
  Result<bool> basic_get(std::string_view queue, const GotMessage& on_message);
  Status ack(std::uint64_t tag);

 private:
  BlockingAmqp() = default;
  amqp_connection_state_t conn_ = nullptr;
  std::string where_;
  bool open_ = false;
  bool channel_open_ = false;
};

// A header's value as text (strings as they are, integers in decimal); empty if absent.
std::string header_text(const amqp_basic_properties_t& properties, std::string_view name);

}  // namespace sagaflow::rabbit
