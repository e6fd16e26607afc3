#include "brokers/rabbitmq/dead_letter_queue.hpp"

#include <string_view>

#include "clients/rabbitmq/blocking_amqp.hpp"
#include "topology/names.hpp"

namespace sagaflow::brokers {

Result<std::optional<AmqpDeadLetter>> get_dead_letter(rabbit::BlockingAmqp& amqp) {
  using rabbit::header_text;
  AmqpDeadLetter d;
  auto got = amqp.basic_get(
      topology::kDeadQueue,
      [&](std::uint64_t tag, std::string_view routing_key, const amqp_message_t& msg) {
        d.tag = tag;
        d.body.assign(static_cast<const char*>(msg.body.bytes), msg.body.len);
        d.route = header_text(msg.properties, "x-sagaflow-original-route");
        d.reason = header_text(msg.properties, "x-sagaflow-error");
        d.detail = header_text(msg.properties, "x-sagaflow-detail");
        d.attempts = header_text(msg.properties, "x-sagaflow-attempts");
        d.id = header_text(msg.properties, topology::kHeaderDeadLetterId);
        if (msg.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG)
          d.message_id = std::string(rabbit::view(msg.properties.message_id));
        if (d.route.empty()) d.route = std::string(routing_key);
      });
  if (!got) return std::move(got).error();
  if (!got.value()) return std::optional<AmqpDeadLetter>{};
  return std::optional<AmqpDeadLetter>{std::move(d)};
}

}  // namespace sagaflow::brokers
