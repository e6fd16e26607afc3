#include "topology/impl/blocking_amqp.hpp"

#include "core/tcp_probe.hpp"

#include <amqp_tcp_socket.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace sagaflow::topology::impl {

BlockingAmqp::~BlockingAmqp() {
  if (conn_ == nullptr) return;
  if (open_) {
    if (channel_open_) amqp_channel_close(conn_, 1, AMQP_REPLY_SUCCESS);
    amqp_connection_close(conn_, AMQP_REPLY_SUCCESS);
  }
  amqp_destroy_connection(conn_);
}

BlockingAmqp::ReplyError BlockingAmqp::reply_error(const amqp_rpc_reply_t& r) {
  ReplyError e;
  switch (r.reply_type) {
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
      e.text = amqp_error_string2(r.library_error);
      break;
    case AMQP_RESPONSE_SERVER_EXCEPTION:
      e.server = true;
      if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        const auto* m = static_cast<const amqp_channel_close_t*>(r.reply.decoded);
        e.code = m->reply_code;
        e.text.assign(static_cast<const char*>(m->reply_text.bytes), m->reply_text.len);
      } else if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
        const auto* m = static_cast<const amqp_connection_close_t*>(r.reply.decoded);
        e.code = m->reply_code;
        e.text.assign(static_cast<const char*>(m->reply_text.bytes), m->reply_text.len);
      } else {
        e.text = "unexpected reply from the server";
      }
      break;
    case AMQP_RESPONSE_NONE:
      e.text = "no reply";
      break;
    case AMQP_RESPONSE_NORMAL:
      break;
  }
  return e;
}

Status BlockingAmqp::open(const AmqpEndpoint& ep, int connect_timeout_ms) {
  where_ = fmt::format("{}:{}", ep.host, ep.port);
  conn_ = amqp_new_connection();
  amqp_socket_t* socket = amqp_tcp_socket_new(conn_);
  if (socket == nullptr) return make_error(Errc::internal, "cannot create a socket");
  timeval tv{connect_timeout_ms / 1000, (connect_timeout_ms % 1000) * 1000};
  if (const int rc = amqp_socket_open_noblock(socket, ep.host.c_str(), ep.port, &tv);
      rc != AMQP_STATUS_OK) {
    std::string why = tcp_probe(ep.host, ep.port, connect_timeout_ms);
    if (why.empty()) why = amqp_error_string2(rc);
    return make_error(Errc::unavailable,
                      fmt::format("cannot connect to RabbitMQ at {}: {}", where_, why));
  }
  const timeval rpc{connect_timeout_ms / 1000 + 5, 0};
  amqp_set_rpc_timeout(conn_, &rpc);
  const amqp_rpc_reply_t r =
      amqp_login(conn_, ep.vhost.c_str(), 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, ep.user.c_str(),
                 ep.password.c_str());
  if (r.reply_type != AMQP_RESPONSE_NORMAL) {
    const ReplyError e = reply_error(r);
    return make_error(Errc::unavailable,
                      fmt::format("cannot log in to RabbitMQ at {} as '{}' (vhost '{}'): {}",
                                  where_, ep.user, ep.vhost, e.text));
  }
  amqp_channel_open(conn_, 1);
  const amqp_rpc_reply_t c = amqp_get_rpc_reply(conn_);
  if (c.reply_type != AMQP_RESPONSE_NORMAL) {
    return make_error(Errc::unavailable, fmt::format("RabbitMQ at {}: cannot open a channel: {}",
                                                     where_, reply_error(c).text));
  }
  open_ = true;
  channel_open_ = true;
  return Status::success();
}

void BlockingAmqp::after_exception(const amqp_rpc_reply_t& r) {
  if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
    amqp_channel_close_ok_t ok{};
    amqp_send_method(conn_, 1, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
    channel_open_ = false;
  } else if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
             r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
    amqp_connection_close_ok_t ok{};
    amqp_send_method(conn_, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
    open_ = false;
    channel_open_ = false;
  } else {
    open_ = false;  // library error: the socket is gone
    channel_open_ = false;
  }
}

}  // namespace sagaflow::topology::impl
