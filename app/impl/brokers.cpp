#include "app/impl/brokers.hpp"

#include "consumers/kafka_source.hpp"
#include "consumers/rabbit_source.hpp"
#include "producers/kafka_sink.hpp"
#include "producers/rabbit_sink.hpp"
#include "topology/names.hpp"

namespace sagaflow::app {

std::unique_ptr<Sink> make_sink(uv_loop_s* loop, const Config& config, const std::string& name) {
  if (config.broker == BrokerKind::kafka) {
    KafkaSinkOptions o;
    o.brokers = config.kafka_brokers;
    o.name = name;
    return std::make_unique<KafkaSink>(loop, std::move(o));
  }
  RabbitSinkOptions o;
  o.endpoint = config.amqp;
  o.name = name;
  return std::make_unique<RabbitSink>(loop, std::move(o));
}

std::unique_ptr<Source> make_source(uv_loop_s* loop, const Config& config, Role role, Sink& copies,
                                    const std::string& name) {
  if (config.broker == BrokerKind::kafka) {
    KafkaSourceOptions o;
    o.brokers = config.kafka_brokers;
    o.group = std::string(role == Role::saga ? topology::kSagaGroup : topology::kParticipantsGroup);
    o.topics = {
        std::string(role == Role::saga ? topology::kEventsTopic : topology::kCommandsTopic)};
    o.name = name;
    o.max_in_flight = static_cast<std::size_t>(config.prefetch);
    o.retry.max_attempts = config.max_attempts;
    return std::make_unique<KafkaSource>(loop, std::move(o), copies);
  }
  RabbitSourceOptions o;
  o.endpoint = config.amqp;
  o.queue = std::string(role == Role::saga ? topology::kSagaQueue : topology::kParticipantsQueue);
  o.prefetch = config.prefetch;
  o.retry.max_attempts = config.max_attempts;
  o.name = name;
  return std::make_unique<RabbitSource>(loop, std::move(o), copies);
}

std::string describe_intake(const Config& config, Role role) {
  if (config.broker == BrokerKind::kafka) {
    return "group " +
           std::string(role == Role::saga ? topology::kSagaGroup : topology::kParticipantsGroup);
  }
  return "queue " +
         std::string(role == Role::saga ? topology::kSagaQueue : topology::kParticipantsQueue);
}

}  // namespace sagaflow::app
