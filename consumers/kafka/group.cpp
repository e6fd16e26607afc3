// KafkaSource and its consumer group: rebalances (tracks and partition queues made before the
// assignment, settled offsets committed on revoke, deliveries in flight abandoned), errors and
// statistics (connected()), and the stop: drain, asynchronous close, destroy.
#include <librdkafka/rdkafka.h>

#include <array>
#include <cstring>
#include <memory>
#include <utility>

#include "clients/kafka/statistics.hpp"
#include "consumers/kafka/source_impl.hpp"
#include "core/log.hpp"

namespace sagaflow {

void KafkaSource::Impl::forget_partition(const rd_kafka_topic_partition_t& p) {
  for (std::size_t k = 0; k < tracks_.size(); ++k) {
    if (tracks_[k]->partition == p.partition && tracks_[k]->topic == p.topic) {
      return forget_track(k);
    }
  }
}

void KafkaSource::Impl::forget_track(std::size_t index) {
  Track& t = *tracks_[index];
  close_queue(t);
  t.window.for_each([&](std::uint64_t seq, Slot& s) {
    switch (s.state) {
      case State::waiting:
        held_.left();
        pending_--;
        break;
      case State::held:
        pending_--;
        break;
      case State::handed:
        // The handler still holds views into it: kept until it is settled (a no-op then).
        abandoned_.emplace(kafka_source::make_tag(t.id, seq), s.msg);
        s.msg = nullptr;
        busy_--;
        pending_--;
        break;
      case State::publishing:
        busy_--;
        pending_--;
        break;
      case State::settled:
        break;
    }
    if (s.msg != nullptr) rd_kafka_message_destroy(s.msg);
    s.msg = nullptr;
  });
  tracks_.erase(tracks_.begin() + static_cast<std::ptrdiff_t>(index));
}

void KafkaSource::Impl::clear_all() {
  while (!tracks_.empty()) forget_track(tracks_.size() - 1);
  for (auto& [tag, m] : abandoned_) rd_kafka_message_destroy(m);
  abandoned_.clear();
  ready_.clear();
  held_.clear();
  copies_.clear();
  pending_ = busy_ = 0;
}

void KafkaSource::Impl::on_rebalance(rd_kafka_resp_err_t err,
                                     rd_kafka_topic_partition_list_t* parts) {
  const bool coop = std::strcmp(rd_kafka_rebalance_protocol(rk_), "COOPERATIVE") == 0;
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    stats_.rebalances++;
    // The tracks and their partition queues first: the assignment starts the fetch.
    for (int i = 0; i < parts->cnt; ++i) {
      const rd_kafka_topic_partition_t& p = parts->elems[i];
      forget_partition(p);
      auto t = std::make_unique<Track>();
      t->id = track_ids_.next();
      t->topic = p.topic;
      t->partition = p.partition;
      t->retry = t->topic == retry_topic_;
      open_queue(*t);
      tracks_.push_back(std::move(t));
    }
    if (coop) {
      if (rd_kafka_error_t* e = rd_kafka_incremental_assign(rk_, parts)) {
        log::error("incremental assign failed",
                   {{"source", options_.name}, {"error", rd_kafka_error_string(e)}});
        rd_kafka_error_destroy(e);
      }
    } else if (const rd_kafka_resp_err_t e = rd_kafka_assign(rk_, parts);
               e != RD_KAFKA_RESP_ERR_NO_ERROR) {
      log::error("assign failed", {{"source", options_.name}, {"error", rd_kafka_err2str(e)}});
    }
    up_ = true;
    log::info("partitions assigned",
              {{"source", options_.name}, {"count", parts->cnt}, {"total", tracks_.size()}});
    apply_flow();  // paused (app, stop): the new partitions too
    return;
  }

  if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
    // Commit what is settled before the partitions go; in-flight deliveries are abandoned.
    flush_stores();
    const rd_kafka_resp_err_t ce = rd_kafka_commit(rk_, nullptr, 0);
    if (ce != RD_KAFKA_RESP_ERR_NO_ERROR && ce != RD_KAFKA_RESP_ERR__NO_OFFSET) {
      log::warn("commit on revoke failed",
                {{"source", options_.name}, {"error", rd_kafka_err2str(ce)}});
    }
    std::size_t abandoned_before = abandoned_.size();
    for (int i = 0; i < parts->cnt; ++i) forget_partition(parts->elems[i]);
    log::info("partitions revoked", {{"source", options_.name},
                                     {"count", parts->cnt},
                                     {"abandoned", abandoned_.size() - abandoned_before}});
    if (coop) {
      if (rd_kafka_error_t* e = rd_kafka_incremental_unassign(rk_, parts)) {
        rd_kafka_error_destroy(e);
      }
    } else {
      rd_kafka_assign(rk_, nullptr);
    }
    return;
  }

  log::error("rebalance error", {{"source", options_.name}, {"error", rd_kafka_err2str(err)}});
  while (!tracks_.empty()) forget_track(tracks_.size() - 1);
  rd_kafka_assign(rk_, nullptr);
}

void KafkaSource::Impl::on_error(int err, const char* reason) {
  const auto code = static_cast<rd_kafka_resp_err_t>(err);
  if (code == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
    up_ = false;
    log::warn("all Kafka brokers down", {{"source", options_.name}, {"detail", reason}});
  } else if (code == RD_KAFKA_RESP_ERR__FATAL) {
    std::array<char, 512> buf{};
    rd_kafka_fatal_error(rk_, buf.data(), buf.size());
    log::error("fatal consumer error", {{"source", options_.name}, {"detail", buf.data()}});
  } else {
    log::debug("consumer error",
               {{"source", options_.name}, {"error", rd_kafka_err2str(code)}, {"detail", reason}});
  }
}

void KafkaSource::Impl::on_stats(std::string_view json) {
  if (!up_ && kafka::broker_up(json)) up_ = true;
}

void KafkaSource::Impl::stop(std::function<void()> on_stopped) {
  if (stopping_) return;
  stopping_ = true;
  on_stopped_ = std::move(on_stopped);
  if (!started_ || rk_ == nullptr) {
    stopped_ = true;
    std::weak_ptr<int> alive = alive_;
    deferred_.post([this, alive] {
      if (alive.expired() || !on_stopped_) return;
      auto fn = std::move(on_stopped_);
      on_stopped_ = nullptr;
      fn();
    });
    return;
  }
  drain_deadline_ = clients::now_ms(loop_) + options_.drain_timeout_ms;
  log::info("draining deliveries",
            {{"source", options_.name}, {"in_flight", static_cast<std::uint64_t>(in_flight())}});
  apply_flow();  // pauses every partition: nothing new is fetched
  kick();
}

void KafkaSource::Impl::check_stop() {
  if (!stopping_ || closing_ || stopped_) return;
  const bool timed_out = clients::now_ms(loop_) >= drain_deadline_;
  if (in_flight() != 0 && !timed_out) return;
  if (in_flight() != 0) {
    log::warn("drain timed out; unsettled deliveries go to the group's next consumer",
              {{"source", options_.name}, {"in_flight", static_cast<std::uint64_t>(in_flight())}});
  }
  begin_close();
}

void KafkaSource::Impl::begin_close() {
  flush_stores();
  clear_all();  // handed views end here (the source stopped)
  closing_ = true;
  close_deadline_ = clients::now_ms(loop_) + kafka_source::kCloseTimeoutMs;
  hold_timer_.stop();
  notify_state();
  if (rd_kafka_error_t* e = rd_kafka_consumer_close_queue(rk_, queue_)) {
    log::warn("consumer close failed",
              {{"source", options_.name}, {"error", rd_kafka_error_string(e)}});
    rd_kafka_error_destroy(e);
    finish_close(false);
    return;
  }
  // The revoke (commit of the stored offsets) and the leave are served by close_step().
  tick_.start(
      kafka_source::kCloseTickMs, [this] { pump(); }, kafka_source::kCloseTickMs);
}

void KafkaSource::Impl::close_step() {
  client_.drain_logs();
  while (rk_ != nullptr) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk_, 0);
    if (m == nullptr) break;
    rd_kafka_message_destroy(m);
  }
  if (rk_ == nullptr) return;
  if (rd_kafka_consumer_closed(rk_) != 0) {
    finish_close(true);
  } else if (clients::now_ms(loop_) >= close_deadline_) {
    log::warn("consumer close timed out", {{"source", options_.name}});
    finish_close(false);
  }
}

void KafkaSource::Impl::finish_close(bool clean) {
  tick_.stop();
  clear_all();
  destroy_handle(clean);
  stopped_ = true;
  log::info("source stopped", {{"source", options_.name}});
  std::weak_ptr<int> alive = alive_;
  deferred_.post([this, alive] {
    if (alive.expired() || !on_stopped_) return;
    auto fn = std::move(on_stopped_);
    on_stopped_ = nullptr;
    fn();
  });
}

void KafkaSource::Impl::destroy_handle(bool clean) {
  if (rk_ == nullptr) return;
  kafka::QueueWakeup::unwatch(queue_);
  rd_kafka_queue_destroy(queue_);
  queue_ = nullptr;
  rk_ = nullptr;
  client_.destroy(clean ? 0 : RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
  wakeup_.stop();
}

}  // namespace sagaflow
