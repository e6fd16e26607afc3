#pragma once
// KafkaSource: the Source on a Kafka consumer group (librdkafka on the libuv loop). The
// ack / retry / dead-letter contract is in consumers/source.hpp; this adds how it is done.
//
// - Intake: a consumer in group `group` subscribed to `topics` and to the group's retry topic
//   (topology::kafka_retry_topic(group)); enable.auto.offset.store=false.
// - Flow control: every assigned partition has its own queue (rd_kafka_queue_get_partition,
//   set up before the assignment and not forwarded), so the consumer queue carries only
//   rebalances, errors and statistics. Each loop turn (a uv_poll on a pipe that every queue
//   signals when it becomes non-empty, a 100 ms tick, or a settle) first polls the consumer
//   queue until it is empty (at most 512 ops), whatever the window, then reads records from the
//   partition queues, round robin (one per partition per round), only while fewer than
//   `max_in_flight` are unsettled and at most 512 per turn; more on the next turn. So two polls
//   of the consumer queue are never more than one loop turn apart (at most 100 ms when idle):
//   rebalance and error callbacks are served and max.poll.interval.ms is never exceeded while
//   the window is full. A turn's own work is bounded: 512 ops, 512 records, and at most
//   `max_in_flight` hand-overs to the handler (which must not block). A full window pauses no
//   partition (pausing purges the prefetched records and stalls librdkafka at every resume):
//   records wait in librdkafka's per-partition prefetch, bounded by queued.min.messages
//   (10000) and queued.max.messages.kbytes (4096) per partition unless `properties` set them.
//   Records are handed to the handler in partition order.
// - Offsets: per partition, the offsets handed over are tracked in order; an offset is stored
//   (rd_kafka_offsets_store, committed by the auto-commit every `commit_interval_ms`, and
//   synchronously on revoke and stop) only when it and every earlier one of its partition are
//   settled. The committed offset never passes unsettled work: events may finish out of order.
// - Delivery fields: body = the record value, routing_key = the topic it came from (or, for a
//   retry, header x-sagaflow-original-route), message_id = header message_id, attempt = header
//   x-sagaflow-attempts (1 if absent), redelivered = false (Kafka cannot tell).
// - retry: a copy (same value, key and headers; x-sagaflow-attempts = attempt + 1,
//   x-sagaflow-original-route kept, x-sagaflow-not-before = now + the jittered backoff of
//   RetryPolicy) goes to the retry topic through `copies`; the original is settled once the
//   copy is confirmed. A retry record whose not-before is in the future is held in memory (its
//   offset unsettled) until then, without blocking other partitions or later records. After
//   max_attempts: dead-letter retries_exhausted. dead_letter: a copy to `dead_letter_topic`
//   with x-sagaflow-error, x-sagaflow-detail, x-sagaflow-attempts, x-sagaflow-original-route,
//   the value byte for byte; settled once confirmed. An unconfirmed copy is sent again after
//   `republish_delay_ms` (never lost, at worst twice).
// - Rebalance: on revoke, stored offsets are committed; deliveries of revoked partitions still
//   in flight are abandoned (settling them is a no-op; the new owner gets them again and the
//   dedup by envelope id absorbs the duplicate).
// - pause() pauses every assigned partition (and holds what was already polled); resume()
//   resumes them. stop(on_stopped): no new deliveries, waits for in-flight ones (at most
//   `drain_timeout_ms`), stores and commits offsets, closes the consumer (leaves the group).
// - connected(): the group has an assignment or is rejoining with a broker up; false after
//   librdkafka reports all brokers down.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "consumers/retry_policy.hpp"
#include "consumers/source.hpp"
#include "producers/sink.hpp"
#include "topology/names.hpp"

struct uv_loop_s;

namespace sagaflow {

struct KafkaSourceOptions {
  std::string brokers = "127.0.0.1:9092";  // bootstrap.servers
  std::string group = std::string(topology::kSagaGroup);
  std::vector<std::string> topics = {std::string(topology::kEventsTopic)};
  std::string name = "source";      // client.id, in logs
  std::size_t max_in_flight = 256;  // unsettled deliveries at most (the prefetch)
  RetryPolicy retry;
  std::string dead_letter_topic = std::string(topology::kDeadTopic);
  DeadLetterListener on_dead_lettered;  // each dead-letter copy the broker confirmed
  std::int64_t commit_interval_ms = 500;
  std::int64_t drain_timeout_ms = 8000;
  std::int64_t republish_delay_ms = 1000;
  std::int64_t session_timeout_ms = 6000;  // group membership: a dead worker's partitions move
  std::string auto_offset_reset = "earliest";
  std::uint64_t jitter_seed = 0;  // 0: random
  // Retry records held in memory until their not-before; more pause the retry topic.
  std::size_t max_held_retries = 1024;
  // Extra librdkafka properties (name, value), applied last.
  std::vector<std::pair<std::string, std::string>> properties;
};

class KafkaSource final : public Source {
 public:
  // Publishes retry and dead-letter copies through `copies` (not owned; must outlive this
  // source and be started by its owner; a KafkaSink).
  KafkaSource(uv_loop_s* loop, KafkaSourceOptions options, Sink& copies);
  ~KafkaSource() override;
  KafkaSource(const KafkaSource&) = delete;
  KafkaSource& operator=(const KafkaSource&) = delete;

  void start(Handler handler) override;
  void pause() noexcept override;
  void resume() noexcept override;
  void settle(std::uint64_t tag, Verdict verdict) override;
  void stop(std::function<void()> on_stopped = {}) noexcept override;

  bool connected() const noexcept override;
  bool reading() const noexcept override;  // connected with at least one partition assigned
  bool paused() const noexcept override;
  std::size_t in_flight() const noexcept override;
  void on_state_change(std::function<void(bool connected)> fn) override;

  struct Stats {
    std::uint64_t delivered = 0;
    std::uint64_t acked = 0;
    std::uint64_t retried = 0;
    std::uint64_t dead_lettered = 0;
    std::uint64_t offsets_stored = 0;  // rd_kafka_offsets_store calls
    std::uint64_t rebalances = 0;
    std::uint64_t largest_span = 0;  // most records tracked at once for one partition
  };
  const Stats& stats() const noexcept;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace sagaflow
