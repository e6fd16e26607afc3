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

}  // namespace sagaflow::brokers
