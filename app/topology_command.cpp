// sagaflow topology apply: declares the broker topology of CONTRACT.md section 6 (idempotent).
#include <cstdio>

#include "app/commands.hpp"
#include "topology/kafka_topology.hpp"
#include "topology/rabbitmq_topology.hpp"

namespace sagaflow::app {
namespace {

int apply_kafka(const Config& config) {
  KafkaTopologyOptions o;
  o.brokers = config.kafka_brokers;
  o.partitions = config.kafka_partitions;
  o.replication = config.kafka_replication;
  KafkaTopologyReport report;
  if (auto st = apply_kafka_topology(o, &report); !st) {
    std::fprintf(stderr, "sagaflow topology apply: %s\n", st.error().detail.c_str());
    return 1;
  }
  if (report.checked_only) {
    std::fprintf(stderr,
                 "topology checked on %s: %zu topics exist (this broker cannot create topics, "
                 "e.g. librdkafka's mock cluster)\n",
                 config.kafka_brokers.c_str(), report.existing.size());
  } else {
    std::fprintf(stderr, "topology applied on %s: %zu topics (%zu created, %zu already there)\n",
                 config.kafka_brokers.c_str(), report.created.size() + report.existing.size(),
                 report.created.size(), report.existing.size());
  }
  return 0;
}

}  // namespace

int run_topology_apply(const Config& config) {
  if (config.broker == BrokerKind::kafka) return apply_kafka(config);
  if (auto st = apply_rabbitmq_topology(config.amqp); !st) {
    std::fprintf(stderr, "sagaflow topology apply: %s\n", st.error().detail.c_str());
    return 1;
  }
  if (auto st = apply_rabbitmq_deliveries(config.amqp, /*only_if_exists=*/true); !st) {
    std::fprintf(stderr, "sagaflow topology apply: %s\n", st.error().detail.c_str());
    return 1;
  }
  std::fprintf(stderr, "topology applied on %s:%d\n", config.amqp.host.c_str(), config.amqp.port);
  return 0;
}

}  // namespace sagaflow::app
