// KafkaSource's life cycle: construction, start, the loop's wake-ups, and the public calls.
// The other jobs of KafkaSource::Impl are in consumers/kafka/ (see source_impl.hpp).
#include "consumers/kafka_source.hpp"

#include <algorithm>
#include <chrono>
#include <random>
#include <stdexcept>
#include <utility>

#include "consumers/kafka/source_impl.hpp"
#include "core/log.hpp"

namespace sagaflow {

using kafka_source::kTickMs;

KafkaSource::Impl::Impl(uv_loop_t* loop, KafkaSourceOptions options, Sink& copies)
    : loop_(loop),
      options_(std::move(options)),
      copies_(loop, copies, copy_options(), copy_events()),
      retry_topic_(topology::kafka_retry_topic(options_.group)),
      gate_(options_.max_in_flight),
      deferred_(loop),
      tick_(loop),
      hold_timer_(loop),
      held_(options_.max_held_retries) {
  rng_ = options_.jitter_seed != 0 ? options_.jitter_seed
                                   : (std::uint64_t{std::random_device{}()} << 1) | 1ULL;
  if (options_.group.empty()) throw std::invalid_argument("KafkaSource: group is empty");
  if (options_.topics.empty()) throw std::invalid_argument("KafkaSource: no topics");

  auto client = kafka::Client::open(RD_KAFKA_CONSUMER, kafka_source::client_config(options_, this));
  if (!client) throw std::invalid_argument("KafkaSource: " + client.error().detail);
  client_ = std::move(client).value();
  rk_ = client_.get();
  rd_kafka_poll_set_consumer(rk_);  // error, stats and rebalance events on the consumer queue
  queue_ = rd_kafka_queue_get_consumer(rk_);
}

KafkaSource::Impl::~Impl() {
  alive_.reset();
  if (rk_ != nullptr) {
    flush_stores();  // what was settled since the last loop turn
    clear_all();     // librdkafka wants every record destroyed before the handle
    if (closing_) {
      // An asynchronous close is under way: let it finish (bounded).
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
      while (rd_kafka_consumer_closed(rk_) == 0 && std::chrono::steady_clock::now() < deadline) {
        if (rd_kafka_message_t* m = rd_kafka_consumer_poll(rk_, 10)) rd_kafka_message_destroy(m);
        client_.drain_logs();
      }
      destroy_handle(rd_kafka_consumer_closed(rk_) != 0);
    } else {
      // Leaves the group (its partitions move at once); only settled offsets are committed.
      closing_ = true;
      if (started_) rd_kafka_consumer_close(rk_);
      clear_all();
      destroy_handle(true);
    }
  }
}

double KafkaSource::Impl::next_random() noexcept {
  rng_ ^= rng_ << 13;
  rng_ ^= rng_ >> 7;
  rng_ ^= rng_ << 17;
  return static_cast<double>(rng_ >> 11) / static_cast<double>(std::uint64_t{1} << 53);
}

void KafkaSource::Impl::start(Handler handler) {
  if (started_ || stopping_ || rk_ == nullptr) return;
  started_ = true;
  handler_ = std::move(handler);

  rd_kafka_topic_partition_list_t* topics =
      rd_kafka_topic_partition_list_new(static_cast<int>(options_.topics.size()) + 1);
  for (const auto& t : options_.topics) {
    rd_kafka_topic_partition_list_add(topics, t.c_str(), RD_KAFKA_PARTITION_UA);
  }
  if (std::find(options_.topics.begin(), options_.topics.end(), retry_topic_) ==
      options_.topics.end()) {
    rd_kafka_topic_partition_list_add(topics, retry_topic_.c_str(), RD_KAFKA_PARTITION_UA);
  }
  const rd_kafka_resp_err_t err = rd_kafka_subscribe(rk_, topics);
  rd_kafka_topic_partition_list_destroy(topics);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    log::error("cannot subscribe", {{"source", options_.name}, {"error", rd_kafka_err2str(err)}});
  }

  if (!wakeup_.ok()) {
    log::error("pipe2 failed; polling on the timer only", {{"source", options_.name}});
  } else {
    wakeup_.watch(queue_);
    wakeup_.watch(client_.log_queue());
    wakeup_.start(loop_, [this] { pump(); });
  }
  tick_.start(
      kTickMs, [this] { pump(); }, kTickMs);
  kick();
}

void KafkaSource::Impl::kick() {
  if (kicked_) return;
  kicked_ = true;
  std::weak_ptr<int> alive = alive_;
  deferred_.post([this, alive] {
    if (alive.expired()) return;
    kicked_ = false;
    pump();
  });
}

void KafkaSource::Impl::notify_state() {
  const bool now = connected();
  if (now == reported_) return;
  reported_ = now;
  if (on_state_) on_state_(now);
}

// ---- KafkaSource -------------------------------------------------------------------------

KafkaSource::KafkaSource(uv_loop_s* loop, KafkaSourceOptions options, Sink& copies)
    : impl_(std::make_unique<Impl>(loop, std::move(options), copies)) {}

KafkaSource::~KafkaSource() = default;

void KafkaSource::start(Handler handler) {
  impl_->start(std::move(handler));
}

void KafkaSource::pause() noexcept {
  if (impl_->app_paused_) return;
  impl_->app_paused_ = true;
  impl_->apply_flow();
}

void KafkaSource::resume() noexcept {
  if (!impl_->app_paused_) return;
  impl_->app_paused_ = false;
  impl_->apply_flow();
  impl_->kick();  // hand over what is held, on a later loop turn
}

void KafkaSource::settle(std::uint64_t tag, Verdict verdict) {
  impl_->settle(tag, std::move(verdict));
}

void KafkaSource::stop(std::function<void()> on_stopped) noexcept {
  impl_->stop(std::move(on_stopped));
}

bool KafkaSource::connected() const noexcept {
  return impl_->connected();
}

bool KafkaSource::reading() const noexcept {
  return impl_->connected() && !impl_->tracks_.empty();
}

bool KafkaSource::paused() const noexcept {
  return impl_->app_paused_;
}

std::size_t KafkaSource::in_flight() const noexcept {
  return impl_->in_flight();
}

void KafkaSource::on_state_change(std::function<void(bool connected)> fn) {
  impl_->on_state_ = std::move(fn);
}

const KafkaSource::Stats& KafkaSource::stats() const noexcept {
  return impl_->stats_;
}

}  // namespace sagaflow
