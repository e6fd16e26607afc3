#include "app/impl/brokers.hpp"

#include <algorithm>

#include "consumers/kafka_source.hpp"
#include "consumers/rabbit_source.hpp"
#include "core/clock.hpp"
#include "core/log.hpp"
#include "producers/kafka_sink.hpp"
#include "producers/rabbit_sink.hpp"
#include "store/dead_letters.hpp"
#include "topology/names.hpp"

namespace sagaflow::app {
namespace {

std::string_view group_of(Role role) {
  switch (role) {
    case Role::saga:
      return topology::kSagaGroup;
    case Role::participants:
      return topology::kParticipantsGroup;
    case Role::deliver:
      return topology::kDeliverGroup;
  }
  return topology::kSagaGroup;
}
std::string_view topic_of(Role role) {
  return role == Role::participants ? topology::kCommandsTopic : topology::kEventsTopic;
}
std::string_view queue_of(Role role) {
  switch (role) {
    case Role::saga:
      return topology::kSagaQueue;
    case Role::participants:
      return topology::kParticipantsQueue;
    case Role::deliver:
      return topology::kDeliveriesQueue;
  }
  return topology::kSagaQueue;
}

// A request the broker has not answered by then is failed and sent again (librdkafka's default
// is 60 s): after a broker restart, a request caught in the switch delays its partition by at
// most this much.
constexpr const char* kSocketTimeoutMs = "10000";

}  // namespace

std::unique_ptr<Sink> make_sink(uv_loop_s* loop, const Config& config, const std::string& name) {
  if (config.broker == BrokerKind::kafka) {
    KafkaSinkOptions o;
    o.brokers = config.kafka_brokers;
    o.name = name;
    // A record the broker has not confirmed by then fails (the outbox re-sends it): bounded
    // delivery time after an outage, instead of waiting behind librdkafka's retries.
    o.message_timeout_ms = 5000;
    o.properties.emplace_back("socket.timeout.ms", kSocketTimeoutMs);
    // Room for a dead-letter copy of the largest accepted message plus its headers, and never
    // below librdkafka's own default (1,000,000): a message over the intake limit is
    // dead-lettered with its body whenever the broker takes it (a copy over this limit too
    // goes without its body: consumers/copy_plan.hpp, without_body).
    o.properties.emplace_back("message.max.bytes", std::to_string(std::max<std::size_t>(
                                                       config.max_message_bytes + 65536, 1000000)));
    return std::make_unique<KafkaSink>(loop, std::move(o));
  }
  RabbitSinkOptions o;
  o.endpoint = config.amqp;
  o.name = name;
  return std::make_unique<RabbitSink>(loop, std::move(o));
}

DeadLetterListener index_dead_letters(store::DeadLetterIndex& index) {
  return [&index](const DeadLetterNote& note) {
    store::DeadLetterEntry e;
    e.id = note.id;
    e.reason = note.reason;
    e.detail = note.detail;
    e.attempts = note.attempts;
    e.route = note.route;
    e.at = SystemClock().now_ms();
    e.body_preview = store::body_preview(note.body);
    e.message_id = note.message_id;
    e.where = note.where;
    index.add(e, [id = e.id](Status st) {
      if (!st) {
        log::warn("dead letter not recorded in the index (it is in the broker)",
                  {{"dead_letter_id", id}, {"error", st.error().detail}});
      }
    });
  };
}

std::unique_ptr<Source> make_source(uv_loop_s* loop, const Config& config, Role role, Sink& copies,
                                    const std::string& name, DeadLetterListener on_dead_lettered) {
  if (config.broker == BrokerKind::kafka) {
    KafkaSourceOptions o;
    o.brokers = config.kafka_brokers;
    o.group = std::string(group_of(role));
    o.topics = {std::string(topic_of(role))};
    o.name = name;
    o.max_in_flight = static_cast<std::size_t>(config.prefetch);
    o.retry.max_attempts = config.max_attempts;
    // stop() may take this plus up to 3 s to leave the group: within SIGTERM's 10 s.
    o.drain_timeout_ms = 6000;
    // A fetch that finds nothing waits at most this long before the next one: the latency of
    // every saga hop when the topic is quiet. (A real broker answers a waiting fetch as soon as
    // data arrives; librdkafka's mock cluster only at the end of the wait.)
    o.properties.emplace_back("fetch.wait.max.ms", "10");
    o.properties.emplace_back("socket.timeout.ms", kSocketTimeoutMs);
    o.on_dead_lettered = std::move(on_dead_lettered);
    return std::make_unique<KafkaSource>(loop, std::move(o), copies);
  }
  RabbitSourceOptions o;
  o.endpoint = config.amqp;
  o.queue = std::string(queue_of(role));
  o.prefetch = config.prefetch;
  o.retry.max_attempts = config.max_attempts;
  o.name = name;
  o.drain_timeout_ms = 6000;  // as on Kafka: with the close, within SIGTERM's 10 s
  o.on_dead_lettered = std::move(on_dead_lettered);
  return std::make_unique<RabbitSource>(loop, std::move(o), copies);
}

std::string describe_intake(const Config& config, Role role) {
  if (config.broker == BrokerKind::kafka) return "group " + std::string(group_of(role));
  return "queue " + std::string(queue_of(role));
}

}  // namespace sagaflow::app
