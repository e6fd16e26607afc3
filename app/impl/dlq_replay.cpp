#include "app/impl/dlq_replay.hpp"

#include <amqp.h>

#include <optional>
#include <string_view>

#include <fmt/format.h>

#include "app/impl/amqp_dead_letter.hpp"
#include "app/impl/amqp_session.hpp"
#include "app/impl/kafka_dlq.hpp"
#include "topology/names.hpp"

namespace sagaflow::app {
namespace {

Result<ReplayOutcome> replay_rabbitmq(const Config& config, std::int64_t limit,
                                      const DeadLetterSelect& select) {
  auto session = AmqpSession::open(config.amqp);
  if (!session) return std::move(session).error();
  AmqpSession& s = *session.value();
  if (auto st = s.enable_confirms(); !st) return st.error();
  // Only what is in the queue now: a replayed event that fails again comes back as a new dead
  // letter behind these, and must not be taken again in the same scan.
  auto depth = s.queue_depth(topology::kDeadQueue);
  if (!depth) return std::move(depth).error();
  std::int64_t left = depth.value();
  ReplayOutcome out;
  while (out.replayed < limit && left-- > 0) {
    auto got = get_dead_letter(s);
    if (!got) return std::move(got).error();
    if (!got.value()) break;
    const AmqpDeadLetter& d = *got.value();
    if (select && !select(DeadLetterRef{d.id, d.reason})) continue;  // back to the queue on close
    if (auto st = s.publish_confirmed(topology::kEventsExchange, d.route, d.message_id, d.body);
        !st) {
      return make_error(st.error().code,
                        fmt::format("{} (the message stays in {}; {} replayed before it)",
                                    st.error().detail, topology::kDeadQueue, out.replayed));
    }
    if (amqp_basic_ack(s.conn(), 1, d.tag, 0) != AMQP_STATUS_OK) {
      return make_error(Errc::unavailable,
                        fmt::format("ack failed after a publish: that one may be replayed twice; "
                                    "{} replayed before it",
                                    out.replayed));
    }
    ++out.replayed;
    if (!d.id.empty()) out.ids.push_back(d.id);
  }
  return out;
}

Result<ReplayOutcome> replay_kafka(const Config& config, std::int64_t limit,
                                   const DeadLetterSelect& select) {
  KafkaDlqOptions options;
  options.brokers = config.kafka_brokers;
  ReplayOutcome out;
  KafkaDlqSelect kafka_select;
  if (select) {
    kafka_select = [&](const KafkaDeadLetter& d) {
      return select(
          DeadLetterRef{d.header(topology::kHeaderDeadLetterId), d.header(topology::kHeaderError)});
    };
  }
  auto n = kafka_dlq_replay(options, limit, kafka_select, [&](const KafkaDeadLetter& d) {
    std::string id = d.header(topology::kHeaderDeadLetterId);
    if (!id.empty()) out.ids.push_back(std::move(id));
  });
  if (!n) return std::move(n).error();
  out.replayed = n.value();
  return out;
}

}  // namespace

Result<ReplayOutcome> replay_dead_letters(const Config& config, std::int64_t limit,
                                          const DeadLetterSelect& select) {
  if (config.broker == BrokerKind::kafka) return replay_kafka(config, limit, select);
  return replay_rabbitmq(config, limit, select);
}

}  // namespace sagaflow::app
