#include "brokers/broker.hpp"

#include "brokers/impl/kinds.hpp"

namespace sagaflow::brokers {

std::unique_ptr<Broker> open_broker(const Config& config) {
  switch (config.broker) {
    case BrokerKind::kafka:
      return impl::make_kafka_broker(config);
    case BrokerKind::rabbitmq:
      break;
  }
  return impl::make_rabbitmq_broker(config);
}

PublishTarget publish_target(const Broker& broker) {
  PublishTarget target;
  target.probe = [&broker] { return broker.probe(); };
  target.make_sink = [&broker](uv_loop_s* loop, std::size_t window) {
    return broker.make_sink(loop, "sagaflow-publish", window, Broker::SinkUse::publish);
  };
  return target;
}

}  // namespace sagaflow::brokers
