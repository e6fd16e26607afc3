#include "app/impl/amqp_session.hpp"

#include <amqp_tcp_socket.h>

#include <fmt/format.h>

namespace sagaflow::app {

Result<std::unique_ptr<AmqpSession>> AmqpSession::open(const AmqpEndpoint& ep) {
  std::unique_ptr<AmqpSession> s(new AmqpSession());
  s->where_ = fmt::format("{}:{}", ep.host, ep.port);
  s->conn_ = amqp_new_connection();
  amqp_socket_t* socket = amqp_tcp_socket_new(s->conn_);
  if (socket == nullptr) return make_error(Errc::internal, "cannot create a socket");
  timeval tv{5, 0};
  if (const int rc = amqp_socket_open_noblock(socket, ep.host.c_str(), ep.port, &tv);
      rc != AMQP_STATUS_OK) {
    return make_error(Errc::unavailable, fmt::format("cannot connect to RabbitMQ at {}: {}",
                                                     s->where_, amqp_error_string2(rc)));
  }
  amqp_rpc_reply_t r = amqp_login(s->conn_, ep.vhost.c_str(), 0, 131072, 0, AMQP_SASL_METHOD_PLAIN,
                                  ep.user.c_str(), ep.password.c_str());
  if (r.reply_type != AMQP_RESPONSE_NORMAL)
    return make_error(Errc::unavailable, s->describe(r, "login"));
  amqp_channel_open(s->conn_, 1);
  r = amqp_get_rpc_reply(s->conn_);
  if (r.reply_type != AMQP_RESPONSE_NORMAL)
    return make_error(Errc::unavailable, s->describe(r, "channel.open"));
  s->open_ = true;
  return s;
}

AmqpSession::~AmqpSession() {
  if (conn_ == nullptr) return;
  if (open_) {
    amqp_channel_close(conn_, 1, AMQP_REPLY_SUCCESS);
    amqp_connection_close(conn_, AMQP_REPLY_SUCCESS);
  }
  amqp_destroy_connection(conn_);
}

std::string AmqpSession::describe(const amqp_rpc_reply_t& r, std::string_view what) const {
  switch (r.reply_type) {
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
      return fmt::format("RabbitMQ at {}: {} failed: {}", where_, what,
                         amqp_error_string2(r.library_error));
    case AMQP_RESPONSE_SERVER_EXCEPTION:
      if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        const auto* m = static_cast<amqp_channel_close_t*>(r.reply.decoded);
        return fmt::format(
            "RabbitMQ at {}: {} refused: {}", where_, what,
            std::string_view(static_cast<const char*>(m->reply_text.bytes), m->reply_text.len));
      }
      if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
        const auto* m = static_cast<amqp_connection_close_t*>(r.reply.decoded);
        return fmt::format(
            "RabbitMQ at {}: {} refused: {}", where_, what,
            std::string_view(static_cast<const char*>(m->reply_text.bytes), m->reply_text.len));
      }
      return fmt::format("RabbitMQ at {}: {} refused by the server", where_, what);
    default:
      return fmt::format("RabbitMQ at {}: {} failed", where_, what);
  }
}

Status AmqpSession::enable_confirms() {
  amqp_confirm_select(conn_, 1);
  const amqp_rpc_reply_t r = amqp_get_rpc_reply(conn_);
  if (r.reply_type != AMQP_RESPONSE_NORMAL)
    return make_error(Errc::unavailable, describe(r, "confirm.select"));
  return Status::success();
}

Status AmqpSession::publish_confirmed(std::string_view exchange, std::string_view routing_key,
                                      std::string_view message_id, std::string_view body) {
  amqp_basic_properties_t props{};
  props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG |
                 (message_id.empty() ? 0 : AMQP_BASIC_MESSAGE_ID_FLAG);
  props.delivery_mode = 2;
  props.content_type = amqp_cstring_bytes("application/json");
  props.message_id = amqp_bytes_t{message_id.size(), const_cast<char*>(message_id.data())};
  const amqp_bytes_t ex{exchange.size(), const_cast<char*>(exchange.data())};
  const amqp_bytes_t rk{routing_key.size(), const_cast<char*>(routing_key.data())};
  const amqp_bytes_t b{body.size(), const_cast<char*>(body.data())};
  if (amqp_basic_publish(conn_, 1, ex, rk, 0, 0, &props, b) != AMQP_STATUS_OK) {
    return make_error(Errc::unavailable, fmt::format("RabbitMQ at {}: publish failed", where_));
  }
  // Wait for the confirm (basic.ack or basic.nack) of this single outstanding publish.
  for (;;) {
    amqp_frame_t frame;
    timeval tv{10, 0};
    const int rc = amqp_simple_wait_frame_noblock(conn_, &frame, &tv);
    if (rc != AMQP_STATUS_OK) {
      return make_error(Errc::unavailable, fmt::format("RabbitMQ at {}: no publisher confirm: {}",
                                                       where_, amqp_error_string2(rc)));
    }
    if (frame.frame_type != AMQP_FRAME_METHOD) continue;
    if (frame.payload.method.id == AMQP_BASIC_ACK_METHOD) return Status::success();
    if (frame.payload.method.id == AMQP_BASIC_NACK_METHOD) {
      return make_error(Errc::unavailable, fmt::format("RabbitMQ at {}: publish nacked", where_));
    }
    if (frame.payload.method.id == AMQP_BASIC_RETURN_METHOD) continue;
    if (frame.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD) {
      return make_error(Errc::unavailable,
                        fmt::format("RabbitMQ at {}: channel closed during publish", where_));
    }
  }
}

Result<std::uint32_t> AmqpSession::queue_depth(std::string_view queue) {
  const amqp_bytes_t q{queue.size(), const_cast<char*>(queue.data())};
  amqp_queue_declare_ok_t* ok = amqp_queue_declare(conn_, 1, q, 1, 0, 0, 0, amqp_empty_table);
  const amqp_rpc_reply_t r = amqp_get_rpc_reply(conn_);
  if (ok == nullptr || r.reply_type != AMQP_RESPONSE_NORMAL) {
    return make_error(Errc::unavailable, describe(r, fmt::format("queue '{}'", queue)));
  }
  return ok->message_count;
}

}  // namespace sagaflow::app
