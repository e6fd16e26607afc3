#include "topology/rabbitmq_topology.hpp"

#include <amqp.h>

#include <string>
#include <string_view>

#include <fmt/format.h>

#include "clients/rabbitmq/blocking_amqp.hpp"

namespace sagaflow {
namespace {

using rabbit::BlockingAmqp;
using rabbit::bytes;

// "PRECONDITION_FAILED - inequivalent arg ..." -> "inequivalent arg ..."
std::string strip_code(std::string text) {
  if (const auto dash = text.find(" - "); dash != std::string::npos && dash < 32)
    text.erase(0, dash + 3);
  return text;
}

class Declarer {
 public:
  explicit Declarer(BlockingAmqp& amqp) : amqp_(amqp) {}

  Status exchange(std::string_view name, const char* type) {
    amqp_exchange_declare(amqp_.conn(), 1, bytes(name), amqp_cstring_bytes(type), /*passive=*/0,
                          /*durable=*/1,
                          /*auto_delete=*/0, /*internal=*/0, amqp_empty_table);
    return check(fmt::format("exchange '{}'", name), "a different type or arguments");
  }

  Status queue(std::string_view name, amqp_table_t args = amqp_empty_table) {
    amqp_queue_declare(amqp_.conn(), 1, bytes(name), /*passive=*/0, /*durable=*/1, /*exclusive=*/0,
                       /*auto_delete=*/0, args);
    return check(fmt::format("queue '{}'", name), "different arguments");
  }

  // True when the queue exists (a passive declare; the channel is reopened if it does not).
  bool exists(std::string_view name) {
    amqp_queue_declare(amqp_.conn(), 1, bytes(name), /*passive=*/1, 0, 0, 0, amqp_empty_table);
    const amqp_rpc_reply_t r = amqp_get_rpc_reply(amqp_.conn());
    if (r.reply_type == AMQP_RESPONSE_NORMAL) return true;
    amqp_.after_exception(r);
    return false;
  }

  Status bind(std::string_view queue, std::string_view exchange, std::string_view key) {
    amqp_queue_bind(amqp_.conn(), 1, bytes(queue), bytes(exchange), bytes(key), amqp_empty_table);
    return check(fmt::format("binding of queue '{}' to '{}' with '{}'", queue, exchange, key),
                 "a conflict");
  }

 private:
  Status check(const std::string& what, std::string_view conflict) {
    const amqp_rpc_reply_t r = amqp_get_rpc_reply(amqp_.conn());
    if (r.reply_type == AMQP_RESPONSE_NORMAL) return Status::success();
    const BlockingAmqp::ReplyError e = BlockingAmqp::reply_error(r);
    amqp_.after_exception(r);
    if (e.server && e.code == AMQP_PRECONDITION_FAILED) {
      return make_error(
          Errc::invalid_config,
          fmt::format("{} exists with {} ({}); delete it or apply the topology on a fresh vhost",
                      what, conflict, strip_code(e.text)));
    }
    if (e.server) {
      return make_error(
          Errc::invalid_config,
          fmt::format("RabbitMQ at {} refused to declare {}: {}", amqp_.where(), what, e.text));
    }
    return make_error(Errc::unavailable,
                      fmt::format("RabbitMQ at {}: lost the connection declaring {}: {}",
                                  amqp_.where(), what, e.text));
  }

  BlockingAmqp& amqp_;
};

}  // namespace

Status apply_rabbitmq_topology(const AmqpEndpoint& endpoint, const TopologyOptions& options) {
  using namespace topology;
  auto amqp = BlockingAmqp::open(endpoint, options.connect_timeout_ms);
  if (!amqp) return std::move(amqp).error();
  Declarer d(*amqp.value());

  // Exchanges.
  for (const auto& [name, type] :
       {std::pair{kEventsExchange, "topic"}, std::pair{kCommandsExchange, "topic"},
        std::pair{kDeadLetterExchange, "fanout"}, std::pair{kRetryReturnExchange, "direct"}}) {
    if (Status s = d.exchange(name, type); !s) return s;
  }

  // Work queues and their bindings.
  if (Status s = d.queue(kSagaQueue); !s) return s;
  for (std::string_view key : kSagaBindings) {
    if (Status s = d.bind(kSagaQueue, kEventsExchange, key); !s) return s;
  }
  if (Status s = d.queue(kParticipantsQueue); !s) return s;
  for (std::string_view key : kParticipantsBindings) {
    if (Status s = d.bind(kParticipantsQueue, kCommandsExchange, key); !s) return s;
  }

  // Dead letters.
  if (Status s = d.queue(kDeadQueue); !s) return s;
  if (Status s = d.bind(kDeadQueue, kDeadLetterExchange, ""); !s) return s;

  // Retry tiers: exchange + delay queue per tier, expiring into the return exchange, which
  // routes by queue name back to where the message came from.
  for (std::string_view queue : kRetryableQueues) {
    if (Status s = d.bind(queue, kRetryReturnExchange, queue); !s) return s;
  }
  for (const std::int64_t tier : options.retry_tiers_ms) {
    if (tier <= 0)
      return make_error(Errc::invalid_config,
                        fmt::format("retry tier {} ms is not positive", tier));
    const std::string name = retry_tier_name(tier);
    if (Status s = d.exchange(name, "fanout"); !s) return s;
    amqp_table_entry_t entries[2];
    entries[0].key = amqp_cstring_bytes("x-message-ttl");
    entries[0].value.kind = AMQP_FIELD_KIND_I64;
    entries[0].value.value.i64 = tier;
    entries[1].key = amqp_cstring_bytes("x-dead-letter-exchange");
    entries[1].value.kind = AMQP_FIELD_KIND_UTF8;
    entries[1].value.value.bytes = bytes(kRetryReturnExchange);
    const amqp_table_t args{2, entries};
    if (Status s = d.queue(name, args); !s) return s;
    if (Status s = d.bind(name, name, ""); !s) return s;
  }
  return Status::success();
}

Status apply_rabbitmq_deliveries(const AmqpEndpoint& endpoint, bool only_if_exists,
                                 int connect_timeout_ms) {
  using namespace topology;
  auto amqp = BlockingAmqp::open(endpoint, connect_timeout_ms);
  if (!amqp) return std::move(amqp).error();
  Declarer d(*amqp.value());
  if (only_if_exists && !d.exists(kDeliveriesQueue)) return Status::success();
  for (const auto& [name, type] :
       {std::pair{kEventsExchange, "topic"}, std::pair{kDeadLetterExchange, "fanout"}}) {
    if (Status s = d.exchange(name, type); !s) return s;
  }
  if (Status s = d.queue(kDeliveriesQueue); !s) return s;
  return d.bind(kDeliveriesQueue, kEventsExchange, "#");
}

}  // namespace sagaflow
