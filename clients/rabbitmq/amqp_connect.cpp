#include "clients/rabbitmq/amqp_connect.hpp"

#include <amqp_tcp_socket.h>

#include <fmt/format.h>

#include "core/tcp_probe.hpp"

namespace sagaflow::rabbit {

std::string reply_text(const amqp_rpc_reply_t& r) {
  switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
      return "ok";
    case AMQP_RESPONSE_NONE:
      return "no reply";
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
      return amqp_error_string2(r.library_error);
    case AMQP_RESPONSE_SERVER_EXCEPTION:
      if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        return std::string(
            view(static_cast<const amqp_channel_close_t*>(r.reply.decoded)->reply_text));
      }
      if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
        return std::string(
            view(static_cast<const amqp_connection_close_t*>(r.reply.decoded)->reply_text));
      }
      return "unexpected reply from the server";
  }
  return "unknown reply";
}

int reply_code(const amqp_rpc_reply_t& r) {
  if (r.reply_type != AMQP_RESPONSE_SERVER_EXCEPTION) return 0;
  if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD)
    return static_cast<const amqp_channel_close_t*>(r.reply.decoded)->reply_code;
  if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD)
    return static_cast<const amqp_connection_close_t*>(r.reply.decoded)->reply_code;
  return 0;
}

std::string where(const AmqpEndpoint& ep) {
  return fmt::format("{}:{}", ep.host, ep.port);
}

Status open_socket(amqp_connection_state_t conn, const AmqpEndpoint& ep, int connect_timeout_ms) {
  amqp_socket_t* socket = amqp_tcp_socket_new(conn);
  if (socket == nullptr) return make_error(Errc::unavailable, "cannot create a socket");
  timeval tv{connect_timeout_ms / 1000, (connect_timeout_ms % 1000) * 1000};
  if (const int rc = amqp_socket_open_noblock(socket, ep.host.c_str(), ep.port, &tv);
      rc != AMQP_STATUS_OK) {
    std::string why = tcp_probe(ep.host, ep.port, connect_timeout_ms);
    if (why.empty()) why = amqp_error_string2(rc);
    return make_error(Errc::unavailable,
                      fmt::format("cannot connect to RabbitMQ at {}: {}", where(ep), why));
  }
  return Status::success();
}

Status login(amqp_connection_state_t conn, const AmqpEndpoint& ep, int heartbeat_s,
             const amqp_table_t* client_properties) {
  const amqp_rpc_reply_t r =
      client_properties != nullptr
          ? amqp_login_with_properties(conn, ep.vhost.c_str(), 0, 131072, heartbeat_s,
                                       client_properties, AMQP_SASL_METHOD_PLAIN, ep.user.c_str(),
                                       ep.password.c_str())
          : amqp_login(conn, ep.vhost.c_str(), 0, 131072, heartbeat_s, AMQP_SASL_METHOD_PLAIN,
                       ep.user.c_str(), ep.password.c_str());
  if (r.reply_type != AMQP_RESPONSE_NORMAL) {
    return make_error(Errc::unavailable,
                      fmt::format("cannot log in to RabbitMQ at {} as '{}' (vhost '{}'): {}",
                                  where(ep), ep.user, ep.vhost, reply_text(r)));
  }
  return Status::success();
}

Status open_channel(amqp_connection_state_t conn, const AmqpEndpoint& ep) {
  amqp_channel_open(conn, 1);
  const amqp_rpc_reply_t r = amqp_get_rpc_reply(conn);
  if (r.reply_type != AMQP_RESPONSE_NORMAL) {
    return make_error(Errc::unavailable, fmt::format("RabbitMQ at {}: cannot open a channel: {}",
                                                     where(ep), reply_text(r)));
  }
  return Status::success();
}

}  // namespace sagaflow::rabbit
