#pragma once
// The Sink interface: publish a message and learn when the broker has it.
//
// Contract:
// - publish(message, done): done(ok) once the broker confirmed the message (RabbitMQ publisher
//   confirm / Kafka acks=all). done(error) on a nack or when the connection is lost before the
//   confirm, with Errc::unavailable (transient: publishing again may succeed; the message may
//   or may not have reached the broker, so re-sends must be idempotent, which the
//   deterministic envelope ids make them). When the sink is not connected, done(unavailable)
//   comes at once (on a later loop turn, never inside publish()).
// - done is always called exactly once, on the loop thread, never inside publish() itself.
// - Backpressure: can_publish() is false while the window of unconfirmed messages is full (or
//   the broker blocked the connection). publish() still accepts the message and queues it in
//   memory; a well-behaved caller waits for on_writable() instead of piling up.
// - Lifecycle: start() connects (and reconnects with backoff until stop()); stop() stops
//   taking messages, waits for outstanding confirms (bounded), closes, then calls on_stopped.
//   Never destroy a sink inside one of its own callbacks.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <variant>
#include <vector>

#include "core/result.hpp"

namespace sagaflow {

using HeaderValue = std::variant<std::string, std::int64_t>;

struct Header {
  std::string key;
  HeaderValue value;
};

struct Message {
  std::string exchange;     // RabbitMQ exchange / Kafka topic
  std::string routing_key;  // the type: RabbitMQ routing key / Kafka header "type"
  std::string key;          // Kafka message key (the order_id); empty: none. RabbitMQ ignores it
  std::string message_id;   // the envelope id
  std::string body;
  std::vector<Header> headers;
  std::string content_type = "application/json";
  std::int64_t expiration_ms = 0;  // per-message TTL (RabbitMQ retry delays); 0: none
};

using PublishCallback = std::function<void(Status)>;

class Sink {
 public:
  virtual ~Sink() = default;

  virtual void start() = 0;
  virtual void stop(std::function<void()> on_stopped = {}) noexcept = 0;

  virtual void publish(Message message, PublishCallback done) = 0;

  virtual bool can_publish() const noexcept = 0;
  virtual bool connected() const noexcept = 0;
  virtual std::size_t unconfirmed() const noexcept = 0;  // sent, not yet confirmed (plus queued)

  // Called when connected() changes (for /readyz).
  virtual void on_state_change(std::function<void(bool connected)> fn) = 0;
  // Called when can_publish() becomes true again after being false.
  virtual void on_writable(std::function<void()> fn) = 0;
};

}  // namespace sagaflow
