#pragma once
// The pipeline's MessageSink on a producers::Sink (RabbitMQ or Kafka): persistent, confirmed,
// message_id = envelope id, content type application/json. Everything the worker publishes
// has a deterministic id "<order_id>:<type>" (commands, outcomes), so the Kafka record key
// (the order_id) is the id up to its last ':'.
#include "app/worker/ports.hpp"
#include "producers/sink.hpp"

namespace sagaflow::app {

class SinkPort final : public MessageSink {
 public:
  explicit SinkPort(Sink& sink) : sink_(sink) {}
  void publish(const OutgoingMessage& m, std::function<void(Status)> done) override {
    Message msg;
    msg.exchange = m.exchange;
    msg.routing_key = m.routing_key;
    const auto colon = m.message_id.rfind(':');
    if (colon != std::string::npos) msg.key.assign(m.message_id, 0, colon);
    msg.message_id = m.message_id;
    msg.body = m.body;
    sink_.publish(std::move(msg), std::move(done));
  }

 private:
  Sink& sink_;
};

}  // namespace sagaflow::app
