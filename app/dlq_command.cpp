// sagaflow dlq list | replay, on RabbitMQ (here) or Kafka (SAGAFLOW_BROKER=kafka, the broker
// work in app/impl/kafka_dlq.cpp).
//
// RabbitMQ:
// list: takes up to --limit messages from sagaflow.dead without acknowledging them, prints one
//   JSON object per line (reason, detail, attempts, original route, message id, body), then
//   closes the channel so the broker puts every message back, in order. Nothing is consumed.
// replay: for each message, publishes the body unchanged to sagaflow.events with its original
//   routing key (persistent, with publisher confirms, attempts reset), and only after the
//   broker confirmed does it ack the dead letter. A crash in between re-publishes at worst
//   (the event id deduplicates it downstream), never loses.
//
// Kafka: the topic sagaflow.dead, from the committed position of the consumer group
// sagaflow-dlq-replay (the beginning if none) up to the high watermarks at the start.
// list: prints the same JSON lines (plus partition and offset); commits nothing.
// replay: re-publishes value, key and headers (minus x-sagaflow-*, so attempts start again
//   at 1) to the original topic with the idempotent producer and acks=all, waits for each
//   delivery report, and only then commits the offsets after the replayed ones for the group.
//   A crash between the publish and the commit re-publishes at worst (same ids, deduplicated
//   downstream), never loses.
#include <amqp.h>
#include <amqp_tcp_socket.h>

#include <cstdio>
#include <string>

#include <fmt/format.h>

#include "app/commands.hpp"
#include "app/impl/amqp_session.hpp"
#include "app/impl/kafka_dlq.hpp"
#include "core/envelope.hpp"
#include "topology/names.hpp"

namespace sagaflow::app {
namespace {

// NUL-terminated: the names are string literals.
constexpr const char* kDeadQueue = topology::kDeadQueue.data();
constexpr const char* kEventsExchange = topology::kEventsExchange.data();

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

struct DeadLetter {
  std::uint64_t tag = 0;
  std::string body;
  std::string route;
  std::string reason;
  std::string detail;
  std::string attempts;
  std::string message_id;
};

// basic.get one message; nullopt when the queue is empty. The message stays unacked.
Result<std::optional<DeadLetter>> get_one(AmqpSession& s) {
  amqp_rpc_reply_t r = amqp_basic_get(s.conn(), 1, amqp_cstring_bytes(kDeadQueue), 0);
  if (r.reply_type != AMQP_RESPONSE_NORMAL)
    return make_error(Errc::unavailable, s.describe(r, "basic.get"));
  if (r.reply.id == AMQP_BASIC_GET_EMPTY_METHOD) return std::optional<DeadLetter>{};
  const auto* ok = static_cast<amqp_basic_get_ok_t*>(r.reply.decoded);
  DeadLetter d;
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
  if (msg.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG) {
    d.message_id.assign(static_cast<const char*>(msg.properties.message_id.bytes),
                        msg.properties.message_id.len);
  }
  if (d.route.empty()) {
    d.route.assign(static_cast<const char*>(ok->routing_key.bytes), ok->routing_key.len);
  }
  amqp_destroy_message(&msg);
  return std::optional<DeadLetter>{std::move(d)};
}

// One JSON object per line: the same fields on both brokers; `extra` (already JSON, starting
// with a comma) is appended before the closing brace.
void print_dead_letter_line(std::string_view reason, std::string_view detail,
                            std::string_view attempts, std::string_view route,
                            std::string_view message_id, std::string_view body,
                            std::string_view extra = {}) {
  std::string line = "{\"reason\":";
  append_json_string(line, reason);
  line += ",\"detail\":";
  append_json_string(line, detail);
  line += ",\"attempts\":";
  append_json_string(line, attempts);
  line += ",\"route\":";
  append_json_string(line, route);
  line += ",\"message_id\":";
  append_json_string(line, message_id);
  line += ",\"body\":";
  append_json_string(line, body);
  line += extra;
  line += "}\n";
  std::fwrite(line.data(), 1, line.size(), stdout);
}

void print_dead_letter(const DeadLetter& d) {
  print_dead_letter_line(d.reason, d.detail, d.attempts, d.route, d.message_id, d.body);
}

KafkaDlqOptions kafka_options(const Config& config) {
  KafkaDlqOptions o;
  o.brokers = config.kafka_brokers;
  return o;
}

int kafka_dlq_list_command(const Config& config, const DlqArgs& args) {
  const auto listed =
      kafka_dlq_list(kafka_options(config), args.limit, [](const KafkaDeadLetter& d) {
        print_dead_letter_line(
            d.header(topology::kHeaderError), d.header(topology::kHeaderDetail),
            d.header(topology::kHeaderAttempts), d.header(topology::kHeaderOriginalRoute),
            d.header(topology::kKafkaHeaderMessageId), d.value,
            fmt::format(",\"partition\":{},\"offset\":{}", d.partition, d.offset));
      });
  std::fflush(stdout);
  if (!listed) {
    std::fprintf(stderr, "sagaflow dlq list: %s\n", listed.error().detail.c_str());
    return 1;
  }
  std::fprintf(stderr, "%lld dead-lettered message(s) listed\n",
               static_cast<long long>(listed.value()));
  return 0;
}

int kafka_dlq_replay_command(const Config& config, const DlqArgs& args) {
  const auto replayed = kafka_dlq_replay(kafka_options(config), args.limit);
  if (!replayed) {
    std::fprintf(stderr, "sagaflow dlq replay: %s\n", replayed.error().detail.c_str());
    return 1;
  }
  std::fprintf(stderr, "%lld dead-lettered message(s) replayed to their original topics\n",
               static_cast<long long>(replayed.value()));
  return 0;
}

}  // namespace

int run_dlq_list(const Config& config, const DlqArgs& args) {
  if (config.broker == BrokerKind::kafka) return kafka_dlq_list_command(config, args);
  auto session = AmqpSession::open(config.amqp);
  if (!session) {
    std::fprintf(stderr, "sagaflow dlq list: %s\n", session.error().detail.c_str());
    return 1;
  }
  std::int64_t n = 0;
  while (n < args.limit) {
    auto d = get_one(*session.value());
    if (!d) {
      std::fprintf(stderr, "sagaflow dlq list: %s\n", d.error().detail.c_str());
      return 1;
    }
    if (!d.value()) break;
    print_dead_letter(*d.value());
    ++n;
  }
  std::fflush(stdout);
  // Closing without acks returns every message to the queue in order.
  std::fprintf(stderr, "%lld dead-lettered message(s) listed\n", static_cast<long long>(n));
  return 0;
}

int run_dlq_replay(const Config& config, const DlqArgs& args) {
  if (config.broker == BrokerKind::kafka) return kafka_dlq_replay_command(config, args);
  auto session = AmqpSession::open(config.amqp);
  if (!session) {
    std::fprintf(stderr, "sagaflow dlq replay: %s\n", session.error().detail.c_str());
    return 1;
  }
  AmqpSession& s = *session.value();
  if (auto st = s.enable_confirms(); !st) {
    std::fprintf(stderr, "sagaflow dlq replay: %s\n", st.error().detail.c_str());
    return 1;
  }
  std::int64_t n = 0;
  while (n < args.limit) {
    auto d = get_one(s);
    if (!d) {
      std::fprintf(stderr, "sagaflow dlq replay: %s\n", d.error().detail.c_str());
      return 1;
    }
    if (!d.value()) break;
    const DeadLetter& dl = *d.value();
    if (auto st = s.publish_confirmed(kEventsExchange, dl.route, dl.message_id, dl.body); !st) {
      std::fprintf(stderr, "sagaflow dlq replay: %s (the message stays in %s)\n",
                   st.error().detail.c_str(), kDeadQueue);
      return 1;
    }
    if (amqp_basic_ack(s.conn(), 1, dl.tag, 0) != AMQP_STATUS_OK) {
      std::fprintf(stderr,
                   "sagaflow dlq replay: ack failed after publish; it may be replayed twice\n");
      return 1;
    }
    ++n;
  }
  std::fprintf(stderr, "%lld dead-lettered message(s) replayed to %s\n", static_cast<long long>(n),
               kEventsExchange);
  return 0;
}

}  // namespace sagaflow::app
