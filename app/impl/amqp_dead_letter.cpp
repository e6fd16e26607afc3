#include "app/impl/amqp_dead_letter.hpp"

#include <string_view>

#include "topology/names.hpp"

namespace sagaflow::app {
namespace {

constexpr const char* kDeadQueue = topology::kDeadQueue.data();

std::string header_text(const amqp_basic_properties_t& props, std::string_view name) {
  if ((props._flags & AMQP_BASIC_HEADERS_FLAG) == 0) return {};
  for (int i = 0; i < props.headers.num_entries; ++i) {
    const amqp_table_entry_t& e = props.headers.entries[i];
    const std::string_view key(static_cast<const char*>(e.key.bytes), e.key.len);
    if (key != name) continue;
    switch (e.value.kind) {
      case AMQP_FIELD_KIND_UTF8:
      case AMQP_FIELD_KIND_BYTES:
        return std::string(static_cast<const char*>(e.value.value.bytes.bytes),
                           e.value.value.bytes.len);
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

}  // namespace

Result<std::optional<AmqpDeadLetter>> get_dead_letter(AmqpSession& s) {
  amqp_rpc_reply_t r = amqp_basic_get(s.conn(), 1, amqp_cstring_bytes(kDeadQueue), 0);
  if (r.reply_type != AMQP_RESPONSE_NORMAL)
    return make_error(Errc::unavailable, s.describe(r, "basic.get"));
  if (r.reply.id == AMQP_BASIC_GET_EMPTY_METHOD) return std::optional<AmqpDeadLetter>{};
  const auto* ok = static_cast<amqp_basic_get_ok_t*>(r.reply.decoded);
  AmqpDeadLetter d;
  d.tag = ok->delivery_tag;
  amqp_message_t msg;
  r = amqp_read_message(s.conn(), 1, &msg, 0);
  if (r.reply_type != AMQP_RESPONSE_NORMAL)
    return make_error(Errc::unavailable, s.describe(r, "read message"));
  d.body.assign(static_cast<const char*>(msg.body.bytes), msg.body.len);
  d.route = header_text(msg.properties, "x-sagaflow-original-route");
  d.reason = header_text(msg.properties, "x-sagaflow-error");
  d.detail = header_text(msg.properties, "x-sagaflow-detail");
  d.attempts = header_text(msg.properties, "x-sagaflow-attempts");
  d.id = header_text(msg.properties, topology::kHeaderDeadLetterId);
  if (msg.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG) {
    d.message_id.assign(static_cast<const char*>(msg.properties.message_id.bytes),
                        msg.properties.message_id.len);
  }
  if (d.route.empty()) {
    d.route.assign(static_cast<const char*>(ok->routing_key.bytes), ok->routing_key.len);
  }
  amqp_destroy_message(&msg);
  return std::optional<AmqpDeadLetter>{std::move(d)};
}

}  // namespace sagaflow::app
