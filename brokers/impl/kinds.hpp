#pragma once
// The two brokers behind open_broker(), for brokers/ only.
#include <memory>

#include "brokers/broker.hpp"

namespace sagaflow::brokers::impl {

std::unique_ptr<Broker> make_rabbitmq_broker(const Config& config);
std::unique_ptr<Broker> make_kafka_broker(const Config& config);

// Both brokers' sources: the drain limit, so that stop() (with a Kafka group's leave of up to
// 3 s) ends within SIGTERM's 10 s.
inline constexpr std::int64_t kSourceDrainTimeoutMs = 6000;

// What a replay's selection is shown of a dead letter: its id and reason (no body copied).
inline DeadLetter selection_view(std::string id, std::string reason) {
  DeadLetter d;
  d.id = std::move(id);
  d.reason = std::move(reason);
  return d;
}

}  // namespace sagaflow::brokers::impl
