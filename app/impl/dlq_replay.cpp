#include "app/impl/dlq_replay.hpp"

#include <optional>
#include <string_view>

#include <fmt/format.h>

#include "app/impl/amqp_dead_letter.hpp"
#include "app/impl/kafka_dlq.hpp"
#include "clients/rabbitmq/blocking_amqp.hpp"
#include "topology/names.hpp"

namespace sagaflow::app {
namespace {

ReplayOutcome replay_rabbitmq(const Config& config, std::int64_t limit,
                              const DeadLetterSelect& select) {
  ReplayOutcome out;
  auto session = rabbit::BlockingAmqp::open(config.amqp);
  if (!session) {
    out.error = std::move(session).error();
    return out;
  }
  rabbit::BlockingAmqp& s = *session.value();
  if (auto st = s.enable_confirms(); !st) {
    out.error = st.error();
    return out;
  }
  // Only what is in the queue now: a replayed event that fails again comes back as a new dead
  // letter behind these, and must not be taken again in the same scan.
  auto depth = s.queue_depth(topology::kDeadQueue);
  if (!depth) {
    out.error = std::move(depth).error();
    return out;
  }
  std::int64_t left = depth.value();
  while (out.replayed < limit) {
    if (left-- <= 0) {
      out.complete = true;
      break;
    }
    auto got = get_dead_letter(s);
    if (!got) {
      out.error = std::move(got).error();
      return out;
    }
    if (!got.value()) {
      out.complete = true;
      break;
    }
    const AmqpDeadLetter& d = *got.value();
    if (select && !select(DeadLetterRef{d.id, d.reason})) continue;  // back to the queue on close
    if (auto st = s.publish_confirmed(topology::kEventsExchange, d.route, d.message_id, d.body);
        !st) {
      out.error = make_error(st.error().code, fmt::format("{} (that one stays in {})",
                                                          st.error().detail, topology::kDeadQueue));
      return out;
    }
    if (!s.ack(d.tag)) {
      out.error = make_error(Errc::unavailable,
                             "ack failed after a publish: that one may be replayed twice");
      return out;
    }
    ++out.replayed;
    if (!d.id.empty()) out.ids.push_back(d.id);
  }
  return out;
}

ReplayOutcome replay_kafka(const Config& config, std::int64_t limit,
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
  std::int64_t confirmed = 0;
  auto n = kafka_dlq_replay(
      options, limit, kafka_select,
      [&](const KafkaDeadLetter& d) {
        ++confirmed;
        std::string id = d.header(topology::kHeaderDeadLetterId);
        if (!id.empty()) out.ids.push_back(std::move(id));
      },
      [&](const KafkaDeadLetter&) { ++out.passed; });
  out.replayed = confirmed;
  if (!n) {
    out.error = std::move(n).error();
  } else {
    out.complete = !select || n.value() < limit;
  }
  return out;
}

}  // namespace

ReplayOutcome replay_dead_letters(const Config& config, std::int64_t limit,
                                  const DeadLetterSelect& select) {
  if (config.broker == BrokerKind::kafka) return replay_kafka(config, limit, select);
  return replay_rabbitmq(config, limit, select);
}

}  // namespace sagaflow::app
