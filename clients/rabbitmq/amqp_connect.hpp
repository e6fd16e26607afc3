#pragma once
// The steps of opening a rabbitmq-c connection that the libuv-driven link (amqp_link.hpp) and
// the blocking connection (blocking_amqp.hpp) share: TCP connect with a timeout, login,
// channel 1, and the one-line error texts of each step. Blocking calls.
#include <amqp.h>

#include <string>
#include <string_view>

#include "core/config.hpp"
#include "core/result.hpp"

namespace sagaflow::rabbit {

inline amqp_bytes_t bytes(std::string_view s) {
  return amqp_bytes_t{s.size(), const_cast<char*>(s.data())};
}
inline std::string_view view(const amqp_bytes_t& b) {
  return {static_cast<const char*>(b.bytes), b.len};
}

// One line for a failed rabbitmq-c RPC: the server's reply text or the library's error.
std::string reply_text(const amqp_rpc_reply_t& reply);
// The AMQP reply code of a server exception (channel.close or connection.close), else 0.
int reply_code(const amqp_rpc_reply_t& reply);

// "host:port", as the error texts name the broker.
std::string where(const AmqpEndpoint& endpoint);

// TCP connect bounded by connect_timeout_ms: "cannot connect to RabbitMQ at 127.0.0.1:5672:
// connection refused" (a TCP probe says why when rabbitmq-c cannot). Code unavailable.
Status open_socket(amqp_connection_state_t conn, const AmqpEndpoint& endpoint,
                   int connect_timeout_ms);
// PLAIN login; client_properties may be null. "cannot log in to RabbitMQ at ... as '<user>'
// (vhost '<vhost>'): <reply>". Code unavailable.
Status login(amqp_connection_state_t conn, const AmqpEndpoint& endpoint, int heartbeat_s,
             const amqp_table_t* client_properties);
// channel.open of channel 1: "RabbitMQ at ...: cannot open a channel: <reply>".
Status open_channel(amqp_connection_state_t conn, const AmqpEndpoint& endpoint);

}  // namespace sagaflow::rabbit
