#pragma once
// The pipeline's MessageSink on a producers::Sink (RabbitMQ or Kafka): persistent, confirmed,
// message_id = envelope id, content type application/json. Everything the worker publishes
// has a deterministic id "<order_id>:<type>" (commands, outcomes), so the Kafka record key is
// the order id the engine reads back out of it (sagas/engine.hpp, order_of_message).
#include "app/worker/ports.hpp"
#include "producers/sink.hpp"
#include "sagas/engine.hpp"

namespace sagaflow::app {

class SinkPort final : public MessageSink {
 public:
  explicit SinkPort(Sink& sink) : sink_(sink) {}
  void publish(store::OutboxCommand m, std::function<void(Status)> done) override {
    Message msg;
    msg.exchange = std::move(m.exchange);
    msg.routing_key = std::move(m.route);
    msg.key = order_of_message(m.id);  // a copy: before m.id is moved below
    msg.message_id = std::move(m.id);
    msg.body = std::move(m.body);
    sink_.publish(std::move(msg), std::move(done));
  }

 private:
  Sink& sink_;
};

}  // namespace sagaflow::app
