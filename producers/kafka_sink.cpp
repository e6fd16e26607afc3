#include "producers/kafka_sink.hpp"

#include <librdkafka/rdkafka.h>
#include <uv.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <deque>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "clients/kafka/client.hpp"
#include "clients/kafka/queue_wakeup.hpp"
#include "clients/kafka/statistics.hpp"
#include "clients/uv_helpers.hpp"
#include "core/log.hpp"
#include "topology/names.hpp"

namespace sagaflow {
namespace {

constexpr std::int64_t kSafetyPollMs = 1000;  // a missed wake-up costs at most this
constexpr int kMaxPollRounds = 16;            // rd_kafka_poll(0) rounds per wake-up
constexpr std::size_t kMaxLogLines = 256;     // librdkafka log lines written per round
constexpr std::uint32_t kNoSlot = 0xffffffffU;

Errc errc_of(rd_kafka_resp_err_t err) {
  switch (err) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
      return Errc::too_large;
    default:
      return Errc::unavailable;  // timeouts, purges, broker errors: trying again may help
  }
}

}  // namespace

struct KafkaSink::Impl {
  struct Slot {
    PublishCallback done;
    std::uint32_t generation = 0;
    std::uint32_t next_free = kNoSlot;
  };
  struct Waiting {
    Message message;
    PublishCallback done;
  };
  struct Report {
    std::uint64_t opaque;
    rd_kafka_resp_err_t err;
  };
  enum class Signal : std::uint8_t { none, up, down };
  enum class Sent : std::uint8_t { ok, queue_full, failed };

  Impl(uv_loop_t* loop, KafkaSinkOptions o)
      : loop_(loop),
        options_(std::move(o)),
        deferred_(loop),
        drain_timer_(loop),
        safety_timer_(loop) {
    if (options_.window == 0) options_.window = 1;
    if (!wakeup_.ok())
      throw std::runtime_error(fmt::format("KafkaSink: pipe2: {}", std::strerror(errno)));
    if (Status s = create_producer(); !s) {
      throw std::invalid_argument("KafkaSink: " + s.error().detail);
    }
  }

  ~Impl() {
    // Callbacks still owed are dropped (never call user code from a destructor).
    drain_timer_.stop();
    safety_timer_.stop();
    destroy_producer();
  }

  // ---- producer lifecycle ------------------------------------------------------------------

  Status create_producer() {
    kafka::ClientConfig config;
    config.brokers = options_.brokers;
    config.client_id = options_.name;
    config.settings = {
        {"enable.idempotence", "true"},
        {"acks", "all"},
        {"linger.ms", std::to_string(options_.linger_ms)},
        {"message.timeout.ms", std::to_string(options_.message_timeout_ms)},
        {"statistics.interval.ms", "1000"},  // broker state UP: connected() after an outage
        {"reconnect.backoff.ms", "100"},
        {"reconnect.backoff.max.ms", "1000"},
        {"partitioner", "murmur2_random"},  // the Java client's: same key, same partition
    };
    config.overrides = options_.properties;
    // Log lines served on the loop thread (log.queue=true), drained by service().
    config.logs = kafka::LogStyle{"link", options_.name, kafka::LogStyle::Levels::syslog};
    config.configure = [this](rd_kafka_conf_t* conf) {
      rd_kafka_conf_set_opaque(conf, this);
      rd_kafka_conf_set_dr_msg_cb(conf, &Impl::on_delivery);
      rd_kafka_conf_set_error_cb(conf, &Impl::on_error);
      rd_kafka_conf_set_stats_cb(conf, &Impl::on_stats);
    };
    auto client = kafka::Client::open(RD_KAFKA_PRODUCER, config);
    if (!client) return std::move(client).error();
    client_ = std::move(client).value();
    rk_ = client_.get();
    main_q_ = rd_kafka_queue_get_main(rk_);
    wakeup_.watch(main_q_);
    wakeup_.watch(client_.log_queue());
    return Status::success();
  }

  void destroy_producer() noexcept {
    if (rk_ == nullptr) return;
    rd_kafka_t* rk = rk_;
    rk_ = nullptr;  // callbacks of this handle are ignored from now on
    kafka::QueueWakeup::unwatch(main_q_);
    kafka::QueueWakeup::unwatch(client_.log_queue());
    rd_kafka_queue_destroy(main_q_);
    main_q_ = nullptr;
    rd_kafka_purge(
        rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT | RD_KAFKA_PURGE_F_NON_BLOCKING);
    client_.destroy();
  }

  void start() {
    if (started_ || stopped_) return;
    started_ = true;
    wakeup_.start(loop_, [this] { service(); });
    safety_timer_.start(
        kSafetyPollMs, [this] { service(); }, kSafetyPollMs);
    deferred_.post([this] { service(); });  // anything queued before the pipe was watched
  }

  // ---- librdkafka callbacks (all run inside rd_kafka_poll, on the loop thread) -------------

  static void on_delivery(rd_kafka_t* rk, const rd_kafka_message_t* m, void* opaque) {
    auto* self = static_cast<Impl*>(opaque);
    if (rk != self->rk_) return;
    self->reports_.push_back(Report{reinterpret_cast<std::uintptr_t>(m->_private), m->err});
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) self->signal_ = Signal::up;
  }

  static void on_error(rd_kafka_t* rk, int code, const char* reason, void* opaque) {
    auto* self = static_cast<Impl*>(opaque);
    if (rk != self->rk_) return;
    const auto err = static_cast<rd_kafka_resp_err_t>(code);
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
      self->signal_ = Signal::down;
      self->down_reason_ = self->last_error_.empty() ? reason : self->last_error_;
    } else if (err == RD_KAFKA_RESP_ERR__FATAL) {
      self->fatal_ = true;
    } else {
      self->last_error_ = reason;
      log::debug(
          "kafka producer error",
          {{"link", self->options_.name}, {"error", rd_kafka_err2name(err)}, {"detail", reason}});
    }
  }

  static int on_stats(rd_kafka_t* rk, char* json, size_t len, void* opaque) {
    auto* self = static_cast<Impl*>(opaque);
    if (rk != self->rk_) return 0;
    if (kafka::broker_up(std::string_view(json, len))) {
      self->signal_ = Signal::up;
    } else if (self->connected_) {
      // Also corrects a stale UP (statistics taken just before the connection dropped).
      self->signal_ = Signal::down;
      self->down_reason_ = "no broker connection (librdkafka statistics)";
    }
    return 0;  // librdkafka frees json
  }

  // ---- the loop side ------------------------------------------------------------------------

  // Runs on the pipe's readable event (and the safety timer): serve librdkafka's main queue,
  // then act on what it reported, outside of rd_kafka_poll.
  void service() {
    if (servicing_) return;
    servicing_ = true;
    wakeup_.drain();
    if (rk_ == nullptr) recreate();  // a recreation after a fatal error failed: try again
    bool more = false;               // the round cap was reached with events still being served
    for (int round = 0; round < kMaxPollRounds && rk_ != nullptr; ++round) {
      const int served = rd_kafka_poll(rk_, 0) + static_cast<int>(client_.drain_logs(kMaxLogLines));
      settle_reports();
      apply_signal();
      if (fatal_) handle_fatal();
      if (served == 0) break;
      more = round + 1 == kMaxPollRounds;
    }
    // The pipe signals only when the queue goes from empty to non-empty: what is left now
    // would otherwise wait for the safety timer.
    if (more) deferred_.post([this] { service(); });
    pump();
    servicing_ = false;
    maybe_finish_stop();
    note_writable(true);
  }

  void settle_reports() {
    if (reports_.empty()) return;
    batch_.swap(reports_);  // user code below may publish; reports_ keeps collecting
    for (const Report& r : batch_) {
      PublishCallback done = release(r.opaque);
      if (!done) continue;  // already failed (fatal error, stop) or unknown
      if (r.err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        done(Status::success());
      } else {
        done(make_error(errc_of(r.err), describe(r.err)));
      }
    }
    batch_.clear();
  }

  std::string describe(rd_kafka_resp_err_t err) const {
    // On a fatal error librdkafka purges what it holds: those reports come with the error.
    if (fatal_ &&
        (err == RD_KAFKA_RESP_ERR__PURGE_QUEUE || err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT))
      err = RD_KAFKA_RESP_ERR__FATAL;
    switch (err) {
      case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
        return fmt::format("not delivered within {} ms (Kafka at {} unreachable?)",
                           options_.message_timeout_ms, options_.brokers);
      case RD_KAFKA_RESP_ERR__FATAL:
        return "fatal Kafka producer error; the producer is recreated, publish again";
      default:
        return fmt::format("Kafka did not take the message: {}", rd_kafka_err2str(err));
    }
  }

  void apply_signal() {
    const Signal s = signal_;
    signal_ = Signal::none;
    if (s == Signal::up) set_connected(true);
    if (s == Signal::down) {
      known_down_ = true;
      set_connected(false);
      fail_waiting(make_error(Errc::unavailable, "all Kafka brokers are down: " + down_reason_));
    }
  }

  void set_connected(bool up) {
    if (up) known_down_ = false;
    if (up == connected_) return;
    connected_ = up;
    if (up) {
      log::info("kafka producer connected",
                {{"link", options_.name}, {"brokers", options_.brokers}});
    } else {
      log::warn("kafka producer lost every broker",
                {{"link", options_.name}, {"brokers", options_.brokers}, {"detail", down_reason_}});
    }
    if (on_state_) on_state_(up);
  }

  void handle_fatal() {
    fatal_ = false;
    if (rk_ == nullptr) return;
    std::array<char, 512> reason{};
    const rd_kafka_resp_err_t code = rd_kafka_fatal_error(rk_, reason.data(), reason.size());
    log::error(
        "kafka producer fatal error; recreating the producer",
        {{"link", options_.name}, {"error", rd_kafka_err2name(code)}, {"detail", reason.data()}});
    destroy_producer();
    recreate();  // first, so that callbacks publishing again reach the new producer
    fail_in_flight(make_error(Errc::unavailable,
                              fmt::format("fatal Kafka producer error ({}); the producer was "
                                          "recreated, publish again",
                                          reason.data())));
  }

  void recreate() {
    if (rk_ != nullptr || stopped_) return;
    if (Status s = create_producer(); !s) {
      log::error("cannot recreate the kafka producer",
                 {{"link", options_.name}, {"detail", s.error().detail}});
    }
  }

  // ---- publishing ---------------------------------------------------------------------------

  void publish(Message&& message, PublishCallback&& done) {
    if (stopping_ || rk_ == nullptr || known_down_) {
      const std::string why = stopping_        ? "the Kafka publisher is stopping"
                              : rk_ == nullptr ? "the Kafka producer is being recreated"
                                               : "all Kafka brokers are down: " + down_reason_;
      deferred_.post([done = std::move(done), why] { done(make_error(Errc::unavailable, why)); });
      return;
    }
    if (!waiting_.empty() || in_flight_ >= options_.window ||
        send(message, done) == Sent::queue_full) {
      waiting_.push_back(Waiting{std::move(message), std::move(done)});
    }
    note_writable(false);
  }

  // Hands one message to librdkafka. On queue_full nothing was consumed (done still owned).
  Sent send(const Message& m, PublishCallback& done) {
    const std::uint32_t slot = acquire();
    const std::uint64_t opaque =
        (static_cast<std::uint64_t>(slots_[slot].generation) << 32U) | slot;
    vus_.clear();
    numbers_.clear();
    numbers_.reserve(m.headers.size() * 24);  // no reallocation below: pointers stay valid
    auto add = [&](rd_kafka_vtype_t type) -> rd_kafka_vu_t& {
      rd_kafka_vu_t& vu = vus_.emplace_back();
      vu.vtype = type;
      return vu;
    };
    add(RD_KAFKA_VTYPE_TOPIC).u.cstr = m.exchange.c_str();
    add(RD_KAFKA_VTYPE_MSGFLAGS).u.i = RD_KAFKA_MSG_F_COPY;
    {
      rd_kafka_vu_t& v = add(RD_KAFKA_VTYPE_VALUE);
      v.u.mem.ptr = const_cast<char*>(m.body.data());
      v.u.mem.size = m.body.size();
    }
    if (!m.key.empty()) {
      rd_kafka_vu_t& k = add(RD_KAFKA_VTYPE_KEY);
      k.u.mem.ptr = const_cast<char*>(m.key.data());
      k.u.mem.size = m.key.size();
    }
    add(RD_KAFKA_VTYPE_OPAQUE).u.ptr = reinterpret_cast<void*>(static_cast<std::uintptr_t>(opaque));
    auto header = [&](const char* name, const char* value, std::size_t size) {
      rd_kafka_vu_t& h = add(RD_KAFKA_VTYPE_HEADER);
      h.u.header.name = name;
      h.u.header.val = value;
      h.u.header.size = static_cast<ssize_t>(size);
    };
    // names.hpp constants are string literals: NUL-terminated.
    header(topology::kKafkaHeaderType.data(), m.routing_key.data(), m.routing_key.size());
    if (!m.message_id.empty())
      header(topology::kKafkaHeaderMessageId.data(), m.message_id.data(), m.message_id.size());
    if (!m.content_type.empty())
      header(topology::kKafkaHeaderContentType.data(), m.content_type.data(),
             m.content_type.size());
    for (const Header& h : m.headers) {
      if (const auto* s = std::get_if<std::string>(&h.value)) {
        header(h.key.c_str(), s->data(), s->size());
      } else {
        std::array<char, 24> text{};
        const auto r =
            std::to_chars(text.data(), text.data() + text.size(), std::get<std::int64_t>(h.value));
        const std::size_t at = numbers_.size();
        numbers_.append(text.data(), r.ptr);
        header(h.key.c_str(), numbers_.data() + at, numbers_.size() - at);
      }
    }
    rd_kafka_error_t* error = rd_kafka_produceva(rk_, vus_.data(), vus_.size());
    if (error == nullptr) {
      slots_[slot].done = std::move(done);
      in_flight_++;
      return Sent::ok;
    }
    const rd_kafka_resp_err_t code = rd_kafka_error_code(error);
    std::string why = rd_kafka_error_string(error);
    rd_kafka_error_destroy(error);
    free_slot(slot);
    if (code == RD_KAFKA_RESP_ERR__QUEUE_FULL) return Sent::queue_full;
    if (code == RD_KAFKA_RESP_ERR__FATAL) fatal_ = true;  // handled on the next service()
    deferred_.post([done = std::move(done), code, why = std::move(why), topic = m.exchange] {
      done(make_error(errc_of(code),
                      fmt::format("Kafka refused a message for topic '{}': {}", topic, why)));
    });
    if (fatal_) deferred_.post([this] { service(); });
    return Sent::failed;
  }

  void pump() {
    while (!waiting_.empty() && rk_ != nullptr && !known_down_ && in_flight_ < options_.window) {
      Waiting& w = waiting_.front();
      if (send(w.message, w.done) == Sent::queue_full) break;  // retried after the next reports
      waiting_.pop_front();
    }
  }

  // ---- slots: the per-message opaque indexes a pool, no allocation per message ------------

  std::uint32_t acquire() {
    if (free_head_ != kNoSlot) {
      const std::uint32_t slot = free_head_;
      free_head_ = slots_[slot].next_free;
      slots_[slot].next_free = kNoSlot;
      return slot;
    }
    slots_.emplace_back();
    return static_cast<std::uint32_t>(slots_.size() - 1);
  }

  void free_slot(std::uint32_t slot) {
    Slot& s = slots_[slot];
    s.done = nullptr;
    s.generation++;
    s.next_free = free_head_;
    free_head_ = slot;
  }

  // The callback of a delivered message, its slot freed; empty if the report is stale.
  PublishCallback release(std::uint64_t opaque) {
    const auto slot = static_cast<std::uint32_t>(opaque & 0xffffffffU);
    const auto generation = static_cast<std::uint32_t>(opaque >> 32U);
    if (slot >= slots_.size() || slots_[slot].generation != generation || !slots_[slot].done)
      return {};
    PublishCallback done = std::move(slots_[slot].done);
    free_slot(slot);
    in_flight_--;
    return done;
  }

  void fail_in_flight(const Error& error) {
    std::vector<PublishCallback> owed;
    for (std::uint32_t i = 0; i < slots_.size(); ++i) {
      if (slots_[i].done) {
        owed.push_back(std::move(slots_[i].done));
        free_slot(i);
      }
    }
    in_flight_ = 0;
    for (auto& cb : owed) cb(error);
  }

  void fail_waiting(const Error& error) {
    std::deque<Waiting> owed;
    owed.swap(waiting_);
    for (auto& w : owed) w.done(error);
  }

  // ---- backpressure and stop ----------------------------------------------------------------

  bool can_publish() const noexcept {
    return rk_ != nullptr && !known_down_ && !stopping_ && waiting_.empty() &&
           in_flight_ < options_.window;
  }

  void note_writable(bool may_fire) {
    const bool now = can_publish();
    if (!now) {
      was_writable_ = false;
    } else if (!was_writable_ && may_fire) {
      was_writable_ = true;
      if (on_writable_) on_writable_();
    }
  }

  void stop(std::function<void()> on_stopped) noexcept {
    if (stopping_) return;
    stopping_ = true;
    on_stopped_ = std::move(on_stopped);
    if (known_down_ || rk_ == nullptr)
      fail_waiting(make_error(Errc::unavailable, "the Kafka publisher stopped"));
    if (in_flight_ == 0 && waiting_.empty()) {
      finish_stop();
      return;
    }
    drain_timer_.start(options_.drain_timeout_ms, [this] {
      const Error e =
          make_error(Errc::unavailable, "the Kafka publisher stopped before the delivery report");
      fail_waiting(e);
      fail_in_flight(e);
      finish_stop();
    });
  }

  void maybe_finish_stop() {
    if (stopping_ && !stopped_ && in_flight_ == 0 && waiting_.empty()) finish_stop();
  }

  void finish_stop() noexcept {
    if (stopped_) return;
    stopped_ = true;
    drain_timer_.stop();
    safety_timer_.stop();
    destroy_producer();
    wakeup_.stop();
    if (on_stopped_) deferred_.post(std::move(on_stopped_));
  }

  uv_loop_t* loop_;
  KafkaSinkOptions options_;
  clients::Deferred deferred_;
  clients::Timer drain_timer_;
  clients::Timer safety_timer_;
  kafka::QueueWakeup wakeup_;  // the main queue and the log queue signal it
  kafka::Client client_;
  rd_kafka_t* rk_ = nullptr;  // client_.get() while it serves; nullptr once destroyed
  rd_kafka_queue_t* main_q_ = nullptr;

  std::vector<Slot> slots_;
  std::uint32_t free_head_ = kNoSlot;
  std::size_t in_flight_ = 0;  // handed to librdkafka, no delivery report yet
  std::deque<Waiting> waiting_;
  std::vector<Report> reports_;  // filled by on_delivery during rd_kafka_poll
  std::vector<Report> batch_;
  std::vector<rd_kafka_vu_t> vus_;  // scratch for send()
  std::string numbers_;             // scratch: integer header values as text

  Signal signal_ = Signal::none;  // the latest connection signal seen during rd_kafka_poll
  bool fatal_ = false;
  std::string last_error_;
  std::string down_reason_;
  bool connected_ = false;
  bool known_down_ = false;  // all brokers reported down and none came back: fail at once
  bool started_ = false;
  bool servicing_ = false;
  bool stopping_ = false;
  bool stopped_ = false;
  bool was_writable_ = true;
  std::function<void()> on_stopped_;
  std::function<void(bool)> on_state_;
  std::function<void()> on_writable_;
};

KafkaSink::KafkaSink(uv_loop_s* loop, KafkaSinkOptions options)
    : impl_(std::make_unique<Impl>(loop, std::move(options))) {}

KafkaSink::~KafkaSink() = default;

void KafkaSink::start() {
  impl_->start();
}

void KafkaSink::stop(std::function<void()> on_stopped) noexcept {
  impl_->stop(std::move(on_stopped));
}

void KafkaSink::publish(Message message, PublishCallback done) {
  impl_->publish(std::move(message), std::move(done));
}

bool KafkaSink::can_publish() const noexcept {
  return impl_->can_publish();
}

bool KafkaSink::connected() const noexcept {
  return impl_->connected_;
}

std::size_t KafkaSink::unconfirmed() const noexcept {
  return impl_->in_flight_ + impl_->waiting_.size();
}

void KafkaSink::on_state_change(std::function<void(bool)> fn) {
  impl_->on_state_ = std::move(fn);
}

void KafkaSink::on_writable(std::function<void()> fn) {
  impl_->on_writable_ = std::move(fn);
}

}  // namespace sagaflow
