#pragma once
// KafkaSink: the Sink on Kafka (librdkafka on the libuv loop). See producers/sink.hpp for the
// contract.
//
// The idempotent producer (enable.idempotence=true, acks=all): a message is confirmed by its
// delivery report. Message::exchange is the topic, Message::key the record key (the order_id,
// so that one order stays on one partition; empty: no key), and the record carries the headers
// `type` (Message::routing_key), `message_id`, `content_type` plus Message::headers (integers
// as decimal text). librdkafka's main queue signals a pipe when a delivery report is ready; a
// uv_poll on that pipe runs rd_kafka_poll(0) on the loop thread, so `done` is always called
// there. At most `window` messages are unconfirmed at once; more wait in memory and
// can_publish() is false until on_writable().
//
// connected(): true once a broker answered (a delivery report or metadata), false after
// librdkafka reports all brokers down; librdkafka reconnects by itself. A message that is not
// confirmed within `message_timeout_ms` (broker down) fails with Errc::unavailable. A fatal
// producer error (idempotence broken) fails everything unconfirmed and recreates the producer.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "producers/sink.hpp"

struct uv_loop_s;

namespace sagaflow {

struct KafkaSinkOptions {
  std::string brokers = "127.0.0.1:9092";   // bootstrap.servers
  std::string name = "sink";                // client.id, in logs
  std::size_t window = 8192;                // unconfirmed messages in flight at most
  int linger_ms = 1;                        // linger.ms: batching delay
  std::int64_t message_timeout_ms = 30000;  // message.timeout.ms
  std::int64_t drain_timeout_ms = 5000;     // stop(): longest wait for outstanding reports
  // Extra librdkafka properties (name, value), applied last.
  std::vector<std::pair<std::string, std::string>> properties;
};

class KafkaSink final : public Sink {
 public:
  KafkaSink(uv_loop_s* loop, KafkaSinkOptions options);
  ~KafkaSink() override;
  KafkaSink(const KafkaSink&) = delete;
  KafkaSink& operator=(const KafkaSink&) = delete;

  void start() override;
  void stop(std::function<void()> on_stopped = {}) noexcept override;

  void publish(Message message, PublishCallback done) override;

  bool can_publish() const noexcept override;
  bool connected() const noexcept override;
  std::size_t unconfirmed() const noexcept override;

  void on_state_change(std::function<void(bool connected)> fn) override;
  void on_writable(std::function<void()> fn) override;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace sagaflow
