#pragma once
// RabbitSource: the Source on a RabbitMQ queue (rabbitmq-c on the libuv loop). The
// ack / retry / dead-letter contract is in consumers/source.hpp; this adds how it is done.
//
// - Intake: its own connection, basic.qos prefetch, basic.consume with manual acks; the
//   socket is watched with uv_poll and every readable event drains all frames already
//   received, assembles the deliveries and hands them to the handler as one batch.
// - Memory: the window holds only deliveries not yet acked (at most `prefetch`): a settled one
//   behind an unsettled one is acked singly and dropped at once. Their bodies are bounded by
//   `max_bytes_in_flight`: at the budget the socket is not read (heartbeats still go out) until
//   acks free room, so a flood of huge messages costs about the budget, not prefetch x size.
// - Acks: settled deliveries are acknowledged once per loop turn; a contiguous run of settled
//   tags from the oldest outstanding one goes as a single multiple-ack, the others singly.
// - retry: a copy (same body, message_id, headers; x-sagaflow-attempts = attempt + 1,
//   x-sagaflow-original-route kept) is published with confirms to the delay tier
//   sagaflow.retry.<tier> with routing key = this queue and a per-message expiration (the
//   jittered backoff of RetryPolicy); when it expires, sagaflow.retry.return routes it back to
//   this queue. dead_letter (or a retry after max_attempts): a copy with the x-sagaflow-*
//   headers to sagaflow.dlx. Either way the original is acked only after the broker confirmed
//   the copy. The copies go through the Sink given (consumers/copy_publisher.hpp: an
//   unconfirmed copy is published again, never lost, at worst twice; one too large for the
//   broker becomes a dead letter without its body).
// - Reconnect with backoff when the broker restarts or the connection drops; deliveries not
//   yet acked come back from the broker (redelivered), settling one of the lost connection is
//   a no-op. on_state_change reports connected (the consumer connection up; the copies' sink
//   reports its own state to its owner, as on Kafka) / disconnected, on each change.
// - pause() holds new deliveries in memory (at most `prefetch` of them, the broker sends no
//   more); resume() hands them over in order. stop() cancels the consumer, drains (deliveries
//   held but never handed over are left to the broker), acks, closes its connection.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "consumers/retry_policy.hpp"
#include "consumers/source.hpp"
#include "core/config.hpp"
#include "producers/sink.hpp"
#include "topology/names.hpp"

struct uv_loop_s;

namespace sagaflow {

class CopyPublisher;
namespace rabbit {
class UvLink;
}  // namespace rabbit
namespace clients {
class Deferred;
class Timer;
}  // namespace clients

struct RabbitSourceOptions {
  AmqpEndpoint endpoint;
  std::string queue = std::string(topology::kSagaQueue);  // consume from; retries return here
  std::string name = "source";                            // connection name, in logs
  int prefetch = 256;                                     // basic.qos: unacked deliveries at most
  RetryPolicy retry;                                      // backoff, tiers, max attempts
  std::string dead_letter_exchange = std::string(topology::kDeadLetterExchange);
  DeadLetterListener on_dead_lettered;  // each dead-letter copy the broker confirmed
  int heartbeat_s = 30;
  std::int64_t reconnect_min_ms = 100;
  std::int64_t reconnect_max_ms = 5000;
  std::int64_t drain_timeout_ms = 8000;    // stop(): longest wait for in-flight deliveries
  std::int64_t republish_delay_ms = 1000;  // after a retry / dead-letter copy was not confirmed
  // Bytes of bodies held at most (received, not yet acked): over it, the socket is not read
  // until acks bring it under (one delivery is always taken, whatever its size).
  std::size_t max_bytes_in_flight = std::size_t{64} << 20;
  std::uint64_t jitter_seed = 0;  // 0: random
};

class RabbitSource final : public Source {
 public:
  // Publishes retry and dead-letter copies through `copies` (not owned; must outlive this
  // source and be started by its owner).
  RabbitSource(uv_loop_s* loop, RabbitSourceOptions options, Sink& copies);
  ~RabbitSource() override;
  RabbitSource(const RabbitSource&) = delete;
  RabbitSource& operator=(const RabbitSource&) = delete;

  void start(Handler handler) override;
  void pause() noexcept override;
  void resume() noexcept override;
  void settle(std::uint64_t tag, Verdict verdict) override;
  void stop(std::function<void()> on_stopped = {}) noexcept override;

  bool connected() const noexcept override;
  bool paused() const noexcept override { return paused_; }
  std::size_t in_flight() const noexcept override { return busy_; }
  // Deliveries received and not yet acked (at most prefetch; settled ones are dropped at once,
  // so this never grows with the settled deliveries behind an unsettled one), and their bytes.
  std::size_t window_size() const noexcept { return window_.size(); }
  std::size_t window_bytes() const noexcept { return window_bytes_; }
  void on_state_change(std::function<void(bool connected)> fn) override {
    on_state_ = std::move(fn);
  }

  struct Stats {
    std::uint64_t delivered = 0;
    std::uint64_t acked = 0;
    std::uint64_t retried = 0;
    std::uint64_t dead_lettered = 0;
    std::uint64_t ack_frames = 0;  // basic.ack frames sent (multiple-acks count once)
    std::uint64_t reconnects = 0;
    std::uint64_t read_holds = 0;  // times reading stopped at the byte budget
  };
  const Stats& stats() const noexcept { return stats_; }

 private:
  enum class State : std::uint8_t { held, handed, publishing, ack_ready };
  struct Inflight {
    std::uint64_t amqp_tag = 0;
    State state = State::held;
    bool redelivered = false;
    int attempt = 1;
    std::string body;
    std::size_t bytes = 0;       // body size as received (counted until the entry leaves)
    std::string routing_key;     // as delivered
    std::string original_route;  // x-sagaflow-original-route, empty if absent
    std::string message_id;
    std::string content_type;
    std::vector<Header> extra_headers;  // other string / integer headers, kept on copies
  };
  void on_up();
  void on_readable();
  void on_down(const Error& error);
  void notify_state();
  void on_header(const void* properties, std::uint64_t body_size);
  void complete_delivery();
  void dispatch();
  Inflight* find(std::uint64_t amqp_tag);
  void mark_ack_ready(Inflight& e);
  void too_large_copy(std::uint64_t amqp_tag, const Message& refused, bool given_up);
  void schedule_flush();
  void flush_acks();
  void forget(std::map<std::uint64_t, Inflight>::iterator it);
  bool over_budget() const noexcept;
  void maybe_finish_stop();
  void finish_stop() noexcept;
  double next_random() noexcept;

  uv_loop_s* loop_;
  RabbitSourceOptions options_;
  std::unique_ptr<CopyPublisher> copies_;
  std::unique_ptr<clients::Deferred> deferred_;
  std::unique_ptr<clients::Timer> drain_timer_;
  std::unique_ptr<rabbit::UvLink> link_;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);  // guards callbacks from the sink

  Handler handler_;
  std::function<void(bool)> on_state_;
  std::function<void()> on_stopped_;

  std::uint64_t generation_ = 0;
  // Received and not yet acked, by amqp tag; an entry leaves as soon as it is acked.
  std::map<std::uint64_t, Inflight> window_;
  std::size_t window_bytes_ = 0;  // bodies in window_ (and of the delivery being received)
  std::uint64_t last_tag_ = 0;    // the newest delivery tag of this connection
  std::uint64_t next_dispatch_ = 1;
  bool reads_held_ = false;  // over max_bytes_in_flight: the socket is not read
  std::size_t busy_ = 0;     // handed or publishing
  std::size_t ack_ready_ = 0;
  bool flush_scheduled_ = false;

  // Frame assembly of the delivery being received.
  enum class Assembly : std::uint8_t { idle, want_header, want_body };
  Assembly assembly_ = Assembly::idle;
  Inflight incoming_;
  std::uint64_t body_expected_ = 0;

  std::string consumer_tag_;  // written by the setup on the pool thread, read after up
  bool reported_connected_ = false;
  bool started_ = false;
  bool paused_ = false;
  bool stopping_ = false;
  bool stopped_ = false;
  std::uint64_t rng_;
  Stats stats_;
};

}  // namespace sagaflow
