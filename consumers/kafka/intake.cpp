// KafkaSource's intake: each loop turn, the consumer queue (rebalances, errors, statistics)
// and then the partition queues, round robin, while the window has room; each record decoded
// and tracked in its partition's window, ready or held until its not-before. See
// kafka_source.hpp for the rules; flow.cpp hands the records over.
#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <chrono>
#include <optional>

#include "consumers/kafka/record_headers.hpp"
#include "consumers/kafka/source_impl.hpp"
#include "core/log.hpp"

namespace sagaflow {

std::int64_t kafka_source::unix_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

using kafka_source::HeldRetries;
using kafka_source::kPollBatch;
using kafka_source::unix_ms;

void KafkaSource::Impl::pump() {
  if (rk_ == nullptr || stopped_) return;
  wakeup_.drain();
  // The log queue's pipe fires again only once the queue was empty: a full batch means more
  // lines wait, so take them on the next turn rather than at the next tick.
  if (client_.drain_logs() == 512) kick();
  if (closing_) {
    close_step();
    return;
  }
  // 1. The consumer queue, every turn whatever the window: rebalances, errors and statistics
  //    are served inside the poll. It carries no records (each assigned partition has its own
  //    queue), except those librdkafka had routed to it before that queue was set up: taken
  //    here even over the window (a few at most, once).
  int n = 0;
  while (n < kPollBatch && rk_ != nullptr && !closing_) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk_, 0);
    if (m == nullptr) break;
    ++n;
    on_message(m);
  }
  // 2. Records, from the partition queues, while the window has room. Only once the consumer
  //    queue is drained: what it still holds of a partition precedes that partition's queue.
  bool more = n == kPollBatch;
  if (!more && rk_ != nullptr && !closing_) more = read_partitions();
  if (more) kick();  // more may be buffered; a queue signals the pipe only when it was empty
  if (window_full()) gate_.close();
  after_turn();
}

// Round robin across the partition queues, one record per partition per round, starting after
// the partition read last (so a small window does not always go to the same partition), until
// the window is full, every queue is empty or kPollBatch records were read. While the window
// is full, records stay in librdkafka's bounded per-partition prefetch queues; no partition is
// paused (pausing purges the prefetched records and stalls the fetcher at every resume). Paused
// or stopping: nothing is read (those partitions are paused anyway). Returns true when it
// stopped on kPollBatch.
bool KafkaSource::Impl::read_partitions() {
  if (app_paused_ || stopping_ || tracks_.empty()) return false;
  const std::size_t count = tracks_.size();
  std::size_t live = 0;
  for (auto& t : tracks_) {
    t->dry = t->queue == nullptr;
    if (!t->dry) ++live;
  }
  std::size_t i = rr_ % count;
  int n = 0;
  while (live > 0 && n < kPollBatch && !window_full()) {
    Track& t = *tracks_[i];
    i = (i + 1) % count;
    if (t.dry) continue;
    // A partition whose oldest record is still unsettled keeps the settled ones behind it
    // (their offsets cannot be committed past it): past the span cap it is not read until that
    // record settles, so memory never grows with what is settled behind a stuck one.
    if (t.window.size() >= gate_.span_cap()) {
      t.dry = true;
      --live;
      continue;
    }
    rd_kafka_message_t* m = rd_kafka_consume_queue(t.queue, 0);
    if (m == nullptr) {
      t.dry = true;
      --live;
      continue;
    }
    ++n;
    rr_ = i;
    on_message(m, &t);  // never changes tracks_
  }
  return n == kPollBatch;
}

// Before the partition is assigned: its fetched records then go to its own queue, never to the
// consumer queue (librdkafka keeps a forward set by the application), and wake the loop
// through the pipe.
void KafkaSource::Impl::open_queue(Track& t) {
  t.queue = rd_kafka_queue_get_partition(rk_, t.topic.c_str(), t.partition);
  if (t.queue == nullptr) {
    log::error("no partition queue; its records come through the consumer queue",
               {{"source", options_.name}, {"topic", t.topic}, {"partition", t.partition}});
    return;
  }
  rd_kafka_queue_forward(t.queue, nullptr);
  wakeup_.watch(t.queue);
}

void KafkaSource::Impl::close_queue(Track& t) {
  if (t.queue == nullptr) return;
  kafka::QueueWakeup::unwatch(t.queue);
  // Back to librdkafka's default (forwarded to the consumer queue) before the partition is
  // unassigned, as its maintainers advise for partition queues under a consumer group: a
  // forward left in place across a rebalance can leave the next assignment without fetches.
  // Whatever it still holds then reaches the consumer queue, where no track takes it.
  if (queue_ != nullptr) rd_kafka_queue_forward(t.queue, queue_);
  rd_kafka_queue_destroy(t.queue);
  t.queue = nullptr;
}

void KafkaSource::Impl::after_turn() {
  if (rk_ == nullptr || closing_) return;
  flush_stores();
  release_due();
  apply_flow();
  notify_state();
  dispatch();
  check_stop();
}

KafkaSource::Impl::Track* KafkaSource::Impl::track_by_id(std::uint32_t id) {
  for (auto& t : tracks_) {
    if (t->id == id) return t.get();
  }
  return nullptr;
}

KafkaSource::Impl::Track* KafkaSource::Impl::track_of(const rd_kafka_message_t* m) {
  const char* topic = rd_kafka_topic_name(m->rkt);
  for (auto& t : tracks_) {
    if (t->partition == m->partition && t->topic == topic) return t.get();
  }
  return nullptr;
}

KafkaSource::Impl::Slot* KafkaSource::Impl::find(std::uint64_t tag, Track** track) {
  Track* t = track_by_id(kafka_source::track_of_tag(tag));
  if (t == nullptr) return nullptr;
  Slot* s = t->window.find(kafka_source::seq_of_tag(tag));
  if (s != nullptr && track != nullptr) *track = t;
  return s;
}

void KafkaSource::Impl::on_message(rd_kafka_message_t* m, Track* known) {
  if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      log::warn("consumer error", {{"source", options_.name},
                                   {"topic", m->rkt != nullptr ? rd_kafka_topic_name(m->rkt) : ""},
                                   {"error", rd_kafka_message_errstr(m)}});
    }
    rd_kafka_message_destroy(m);
    return;
  }
  up_ = true;
  Track* t = known != nullptr && known->partition == m->partition ? known : track_of(m);
  if (t == nullptr || !t->window.fresh(m->offset)) {
    rd_kafka_message_destroy(m);  // not ours (revoked) or already polled
    return;
  }
  const kafka_source::RecordFields f = kafka_source::read_fields(m, t->retry);
  Slot s;
  s.msg = m;
  s.offset = m->offset;
  s.message_id = f.message_id;
  s.attempt = f.attempt;
  s.route = f.route;
  const std::int64_t not_before =
      t->retry ? HeldRetries::bounded(f.not_before, unix_ms(), options_.retry.cap_ms) : 0;
  pending_++;
  if (HeldRetries::must_hold(not_before, unix_ms())) {
    s.state = State::waiting;
    const std::uint64_t tag = kafka_source::make_tag(t->id, t->window.push(s));
    held_.hold(tag, not_before);
    arm_hold_timer();
  } else {
    s.state = State::held;
    ready_.push_back(kafka_source::make_tag(t->id, t->window.push(s)));
  }
  stats_.largest_span = std::max<std::uint64_t>(stats_.largest_span, t->window.size());
}

}  // namespace sagaflow
