#include "clients/rabbitmq/blocking_amqp.hpp"

#include <fmt/format.h>

namespace sagaflow::rabbit {

Result<std::unique_ptr<BlockingAmqp>> BlockingAmqp::open(const AmqpEndpoint& ep,
                                                         int connect_timeout_ms) {
  std::unique_ptr<BlockingAmqp> a(new BlockingAmqp());
  a->where_ = rabbit::where(ep);
  a->conn_ = amqp_new_connection();
  if (Status s = open_socket(a->conn_, ep, connect_timeout_ms); !s) return s.error();
  const timeval rpc{connect_timeout_ms / 1000 + 5, 0};
  amqp_set_rpc_timeout(a->conn_, &rpc);
  if (Status s = login(a->conn_, ep, /*heartbeat_s=*/0, nullptr); !s) return s.error();
  if (Status s = open_channel(a->conn_, ep); !s) return s.error();
  a->open_ = true;
  a->channel_open_ = true;
  return a;
}

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
  if (r.reply_type == AMQP_RESPONSE_NORMAL) return e;
  e.server = r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION;
  e.code = reply_code(r);
  e.text = reply_text(r);
  return e;
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

std::string BlockingAmqp::describe(const amqp_rpc_reply_t& r, std::string_view what) const {
  switch (r.reply_type) {
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
      return fmt::format("RabbitMQ at {}: {} failed: {}", where_, what,
                         amqp_error_string2(r.library_error));
    case AMQP_RESPONSE_SERVER_EXCEPTION:
      if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD || r.reply.id == AMQP_CONNECTION_CLOSE_METHOD)
        return fmt::format("RabbitMQ at {}: {} refused: {}", where_, what, reply_text(r));
      return fmt::format("RabbitMQ at {}: {} refused by the server", where_, what);
    default:
      return fmt::format("RabbitMQ at {}: {} failed", where_, what);
  }
}

Status BlockingAmqp::enable_confirms() {
  amqp_confirm_select(conn_, 1);
  const amqp_rpc_reply_t r = amqp_get_rpc_reply(conn_);
  if (r.reply_type != AMQP_RESPONSE_NORMAL)
    return make_error(Errc::unavailable, describe(r, "confirm.select"));
  return Status::success();
}

Status BlockingAmqp::publish_confirmed(std::string_view exchange, std::string_view routing_key,
                                       std::string_view message_id, std::string_view body) {
  amqp_basic_properties_t props{};
  props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG |
                 (message_id.empty() ? 0 : AMQP_BASIC_MESSAGE_ID_FLAG);
  props.delivery_mode = 2;
  props.content_type = amqp_cstring_bytes("application/json");
  props.message_id = bytes(message_id);
  if (amqp_basic_publish(conn_, 1, bytes(exchange), bytes(routing_key), 0, 0, &props,
                         bytes(body)) != AMQP_STATUS_OK) {
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

Result<std::uint32_t> BlockingAmqp::queue_depth(std::string_view queue) {
  amqp_queue_declare_ok_t* ok =
      amqp_queue_declare(conn_, 1, bytes(queue), 1, 0, 0, 0, amqp_empty_table);
  const amqp_rpc_reply_t r = amqp_get_rpc_reply(conn_);
  if (ok == nullptr || r.reply_type != AMQP_RESPONSE_NORMAL) {
    return make_error(Errc::unavailable, describe(r, fmt::format("queue '{}'", queue)));
  }
  return ok->message_count;
}

Result<bool> BlockingAmqp::basic_get(std::string_view queue, const GotMessage& on_message) {
  amqp_rpc_reply_t r = amqp_basic_get(conn_, 1, bytes(queue), 0);
  if (r.reply_type != AMQP_RESPONSE_NORMAL)
    return make_error(Errc::unavailable, describe(r, "basic.get"));
  if (r.reply.id == AMQP_BASIC_GET_EMPTY_METHOD) return false;
  const auto* ok = static_cast<amqp_basic_get_ok_t*>(r.reply.decoded);
  const std::uint64_t tag = ok->delivery_tag;
  const std::string routing_key(view(ok->routing_key));
  amqp_message_t msg;
  r = amqp_read_message(conn_, 1, &msg, 0);
  if (r.reply_type != AMQP_RESPONSE_NORMAL)
    return make_error(Errc::unavailable, describe(r, "read message"));
  on_message(tag, routing_key, msg);
  amqp_destroy_message(&msg);
  return true;
}

Status BlockingAmqp::ack(std::uint64_t tag) {
  if (amqp_basic_ack(conn_, 1, tag, 0) != AMQP_STATUS_OK)
    return make_error(Errc::unavailable, fmt::format("RabbitMQ at {}: ack failed", where_));
  return Status::success();
}

std::string header_text(const amqp_basic_properties_t& props, std::string_view name) {
  if ((props._flags & AMQP_BASIC_HEADERS_FLAG) == 0) return {};
  for (int i = 0; i < props.headers.num_entries; ++i) {
    const amqp_table_entry_t& e = props.headers.entries[i];
    if (view(e.key) != name) continue;
    switch (e.value.kind) {
      case AMQP_FIELD_KIND_UTF8:
      case AMQP_FIELD_KIND_BYTES:
        return std::string(view(e.value.value.bytes));
      case AMQP_FIELD_KIND_I32:
        return std::to_string(e.value.value.i32);
      case AMQP_FIELD_KIND_I64:
        return std::to_string(e.value.value.i64);
      case AMQP_FIELD_KIND_U32:
        return std::to_string(e.value.value.u32);
      case AMQP_FIELD_KIND_I16:
        return std::to_string(e.value.value.i16);
      case AMQP_FIELD_KIND_U8:
        return std::to_string(e.value.value.u8);
      case AMQP_FIELD_KIND_I8:
        return std::to_string(e.value.value.i8);
      default:
        return {};
    }
  }
  return {};
}

}  // namespace sagaflow::rabbit
