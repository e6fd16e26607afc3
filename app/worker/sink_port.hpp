#pragma once
// The pipeline's MessageSink on a producers::Sink (RabbitMQ or Kafka): persistent, confirmed,
// message_id = envelope id, content type application/json.
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
    msg.message_id = m.message_id;
    msg.body = m.body;
    sink_.publish(std::move(msg), std::move(done));
  }

 private:
  Sink& sink_;
};

}  // namespace sagaflow::app
