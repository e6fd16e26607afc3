#pragma once
// RabbitSink: the Sink on RabbitMQ (rabbitmq-c on the libuv loop). See producers/sink.hpp for
// the contract.
//
// Its own connection and channel in confirm mode (confirm.select). Every message is published
// persistent (delivery mode 2) with content_type and message_id; confirms (basic.ack /
// basic.nack, multiple or single) are read from the socket, which a uv_poll watches. At most
// `window` messages are unconfirmed at once; more are queued in memory and sent as confirms
// come back. The connection is re-established with backoff after a drop; everything
// unconfirmed at that moment fails with Errc::unavailable.
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>

#include "core/config.hpp"
#include "producers/sink.hpp"

struct uv_loop_s;

namespace sagaflow {

namespace rabbit {
class UvLink;
}  // namespace rabbit
namespace clients {
class Deferred;
class Timer;
}  // namespace clients

struct RabbitSinkOptions {
  AmqpEndpoint endpoint;
  std::string name = "sink";            // connection name, in logs and the management UI
  std::size_t window = 512;             // unconfirmed messages in flight at most
  int heartbeat_s = 30;                 // AMQP heartbeat; 0: none
  std::int64_t reconnect_min_ms = 100;  // first reconnect delay, doubled up to the max
  std::int64_t reconnect_max_ms = 5000;
  std::int64_t drain_timeout_ms = 5000;  // stop(): longest wait for outstanding confirms
};

class RabbitSink final : public Sink {
 public:
  RabbitSink(uv_loop_s* loop, RabbitSinkOptions options);
  ~RabbitSink() override;
  RabbitSink(const RabbitSink&) = delete;
  RabbitSink& operator=(const RabbitSink&) = delete;

  void start() override;
  void stop(std::function<void()> on_stopped = {}) noexcept override;

  void publish(Message message, PublishCallback done) override;

  bool can_publish() const noexcept override;
  bool connected() const noexcept override;
  std::size_t unconfirmed() const noexcept override;

  void on_state_change(std::function<void(bool connected)> fn) override;
  void on_writable(std::function<void()> fn) override;

 private:
  struct Pending {
    std::uint64_t seq = 0;
    PublishCallback done;
    bool settled = false;
  };
  struct Waiting {
    Message message;
    PublishCallback done;
  };

  void on_up();
  void on_readable();
  void on_down(const Error& error);
  void send(Message& message, PublishCallback done);
  void confirm(std::uint64_t tag, bool multiple, bool ack);
  void pump();
  void fail_all(const Error& error);
  void maybe_finish_stop();
  void finish_stop() noexcept;

  RabbitSinkOptions options_;
  std::unique_ptr<clients::Deferred> deferred_;
  std::unique_ptr<clients::Timer> drain_timer_;
  std::unique_ptr<rabbit::UvLink> link_;
  std::deque<Pending> unconfirmed_;  // contiguous sequence numbers, oldest first
  std::deque<Waiting> waiting_;      // not yet sent (window full, blocked)
  std::uint64_t next_seq_ = 1;
  bool blocked_ = false;      // connection.blocked by the broker (memory / disk alarm)
  bool was_writable_ = true;  // for on_writable edges
  bool stopping_ = false;
  bool stopped_ = false;
  std::function<void()> on_stopped_;
  std::function<void(bool)> on_state_;
  std::function<void()> on_writable_;
};

}  // namespace sagaflow
