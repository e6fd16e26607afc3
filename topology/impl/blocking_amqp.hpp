#pragma once
// A minimal blocking rabbitmq-c connection for topology apply: connect with a timeout, log
// in, open channel 1, and turn replies into one-line errors.
#include <amqp.h>

#include <string>
#include <string_view>

#include "core/config.hpp"
#include "core/result.hpp"

namespace sagaflow::topology::impl {

class BlockingAmqp {
 public:
  BlockingAmqp() = default;
  ~BlockingAmqp();
  BlockingAmqp(const BlockingAmqp&) = delete;
  BlockingAmqp& operator=(const BlockingAmqp&) = delete;

  Status open(const AmqpEndpoint& endpoint, int connect_timeout_ms);
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
  // After a server exception: answer channel.close-ok so the connection closes cleanly.
  void after_exception(const amqp_rpc_reply_t& reply);

 private:
  amqp_connection_state_t conn_ = nullptr;
  std::string where_;
  bool open_ = false;
  bool channel_open_ = false;
};

}  // namespace sagaflow::topology::impl
