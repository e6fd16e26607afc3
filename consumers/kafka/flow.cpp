// KafkaSource's flow control: held retries released when due, records handed to the handler
// while fewer than max_in_flight are in flight, the window's gate, and which partitions are
// paused (pause(), stop(), too many held retries).
#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <optional>

#include "consumers/kafka/source_impl.hpp"

namespace sagaflow {

using kafka_source::unix_ms;

void KafkaSource::Impl::release_due() {
  const std::int64_t now = unix_ms();
  while (const std::optional<std::uint64_t> tag = held_.pop_due(now)) {
    Slot* s = find(*tag);
    if (s == nullptr || s->state != State::waiting) continue;  // revoked meanwhile
    s->state = State::held;
    held_.left();
    ready_.push_back(*tag);
  }
  arm_hold_timer();
}

void KafkaSource::Impl::arm_hold_timer() {
  const std::optional<std::int64_t> at = held_.next_due();
  if (!at) {
    hold_timer_.stop();
    return;
  }
  const std::int64_t delay = std::max<std::int64_t>(1, *at - unix_ms());
  hold_timer_.start(delay, [this] {
    if (rk_ == nullptr || closing_) return;
    release_due();
    apply_flow();
    dispatch();
  });
}

void KafkaSource::Impl::dispatch() {
  if (dispatching_ || !handler_) return;
  dispatching_ = true;
  while (!app_paused_ && !stopping_ && !ready_.empty() && in_flight() < gate_.limit()) {
    const std::uint64_t tag = ready_.front();
    ready_.pop_front();
    Slot* s = find(tag);
    if (s == nullptr || s->state != State::held) continue;
    s->state = State::handed;
    busy_++;
    stats_.delivered++;
    Delivery d;
    d.tag = tag;
    d.body = std::string_view(static_cast<const char*>(s->msg->payload), s->msg->len);
    d.routing_key = s->route;
    d.message_id = s->message_id;
    d.attempt = s->attempt;
    d.redelivered = false;
    handler_(d);  // may settle, pause, stop; s may be gone afterwards
  }
  dispatching_ = false;
}

std::size_t KafkaSource::Impl::active() const noexcept {
  return pending_ - held_.waiting() + abandoned_.size();
}

bool KafkaSource::Impl::window_full() const {
  return gate_.full(active());
}

void KafkaSource::Impl::apply_flow() {
  if (rk_ == nullptr || closing_) return;
  if (gate_.update(active())) kick();  // what librdkafka buffered meanwhile does not signal
  const bool held_full = held_.update_paused();
  rd_kafka_topic_partition_list_t* to_pause = nullptr;
  rd_kafka_topic_partition_list_t* to_resume = nullptr;
  for (auto& t : tracks_) {
    const bool want = app_paused_ || stopping_ || (t->retry && held_full);
    if (t->paused == (want ? 1 : 0)) continue;
    t->paused = want ? 1 : 0;
    auto*& list = want ? to_pause : to_resume;
    if (list == nullptr) list = rd_kafka_topic_partition_list_new(8);
    rd_kafka_topic_partition_list_add(list, t->topic.c_str(), t->partition);
  }
  if (to_pause != nullptr) {
    rd_kafka_pause_partitions(rk_, to_pause);
    rd_kafka_topic_partition_list_destroy(to_pause);
  }
  if (to_resume != nullptr) {
    rd_kafka_resume_partitions(rk_, to_resume);
    rd_kafka_topic_partition_list_destroy(to_resume);
  }
}

}  // namespace sagaflow
