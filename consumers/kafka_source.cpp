#include "consumers/kafka_source.hpp"

#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <functional>
#include <queue>
#include <random>
#include <stdexcept>
#include <string_view>
#include <unordered_map>
#include <utility>

#include <fmt/format.h>

#include "consumers/copy_plan.hpp"
#include "consumers/copy_publisher.hpp"
#include "core/log.hpp"
#include "clients/uv_helpers.hpp"

namespace sagaflow {
namespace {

using clients::Deferred;
using clients::Timer;

// Exposed tag = track id (one per partition assignment, never reused) << 40 | sequence number
// of the record within that assignment. Unique across rebalances; O(1) to find.
constexpr int kSeqBits = 40;
constexpr std::uint64_t kSeqMask = (std::uint64_t{1} << kSeqBits) - 1;
constexpr std::uint32_t kTrackIdMask = (std::uint32_t{1} << 24) - 1;

constexpr std::int64_t kTickMs = 100;      // polls even when the pipe is quiet
constexpr std::int64_t kCloseTickMs = 10;  // while the consumer closes
constexpr std::int64_t kCloseTimeoutMs = 3000;
constexpr int kPollBatch = 512;  // consumer-queue ops, then records, per pump; more next turn
// Per partition, what librdkafka prefetches into the partition's own queue (a partition queue
// is not forwarded, so each has its own bound); a property of the same name overrides them.
constexpr const char* kQueuedMinMessages = "10000";
constexpr const char* kQueuedMaxKbytes = "4096";
constexpr char kWake = 1;  // written to the pipe by librdkafka when a queue becomes non-empty

std::uint64_t make_tag(std::uint32_t track, std::uint64_t seq) {
  return (std::uint64_t{track} << kSeqBits) | (seq & kSeqMask);
}

std::int64_t unix_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

// A decimal integer header value; fallback if absent or not a number.
std::int64_t parse_int(std::string_view s, std::int64_t fallback) {
  if (s.empty() || s.size() > 18) return fallback;
  std::size_t i = 0;
  const bool neg = s[0] == '-';
  if (neg) i = 1;
  if (i == s.size()) return fallback;
  std::int64_t v = 0;
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return fallback;
    v = v * 10 + (s[i] - '0');
  }
  return neg ? -v : v;
}

// The last header `name` (a NUL-terminated literal) of a record; empty if absent.
std::string_view header_of(rd_kafka_headers_t* hdrs, std::string_view name, bool* found = nullptr) {
  if (found != nullptr) *found = false;
  if (hdrs == nullptr) return {};
  const void* value = nullptr;
  std::size_t size = 0;
  if (rd_kafka_header_get_last(hdrs, name.data(), &value, &size) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return {};
  }
  if (found != nullptr) *found = true;
  if (value == nullptr) return {};
  return {static_cast<const char*>(value), size};
}

// Headers sagaflow writes itself on a copy (never carried over from the original).
bool is_rewritten_header(std::string_view name) {
  return is_copy_header(name) || name == topology::kKafkaHeaderType ||
         name == topology::kKafkaHeaderMessageId || name == topology::kKafkaHeaderContentType;
}

// The next JSON string value after `key` in `json` starting at `from`; npos-safe.
std::string_view json_string_after(std::string_view json, std::string_view key, std::size_t from,
                                   std::size_t* end) {
  const std::size_t k = json.find(key, from);
  if (k == std::string_view::npos) return {};
  std::size_t p = json.find('"', k + key.size());
  if (p == std::string_view::npos) return {};
  const std::size_t q = json.find('"', p + 1);
  if (q == std::string_view::npos) return {};
  if (end != nullptr) *end = q;
  return json.substr(p + 1, q - p - 1);
}

// True when librdkafka's statistics list a real (not internal) broker in state UP.
bool stats_show_broker_up(std::string_view json) {
  std::size_t pos = 0;
  while (true) {
    std::size_t end = 0;
    const std::size_t at = json.find("\"source\":", pos);
    if (at == std::string_view::npos) return false;
    const std::string_view source = json_string_after(json, "\"source\":", at, &end);
    if (end == 0) return false;
    const std::string_view state = json_string_after(json, "\"state\":", end, &end);
    if ((source == "learned" || source == "configured") && state == "UP") return true;
    pos = end + 1;
  }
}

// A uv_poll on the read end of the pipe librdkafka writes to; freed by its close callback.
struct PipePoll {
  uv_poll_t handle;
  int fd = -1;
  std::function<void()> on_readable;
  bool alive = true;
};

}  // namespace

struct KafkaSource::Impl {
  enum class State : std::uint8_t { waiting, held, handed, publishing, settled };
  struct Slot {
    rd_kafka_message_t* msg = nullptr;  // alive until settled (the Delivery's views point in)
    std::int64_t offset = 0;
    std::string_view route;       // into msg (or the track's topic)
    std::string_view message_id;  // into msg
    int attempt = 1;
    State state = State::held;
  };
  struct Track {  // one assigned partition, for one assignment
    std::uint32_t id = 0;
    std::string topic;
    std::int32_t partition = 0;
    bool retry = false;           // the group's retry topic
    std::deque<Slot> window;      // polled, in offset order, from the oldest unsettled one
    std::uint64_t first_seq = 0;  // sequence number of window.front()
    std::uint64_t next_seq = 0;
    std::int64_t last_offset = -1;  // highest offset polled
    std::int64_t store = -1;        // offset to store (next to consume), when dirty
    bool dirty = false;
    std::int8_t paused = -1;            // -1: unknown (just assigned), 0 / 1
    rd_kafka_queue_t* queue = nullptr;  // the partition's own queue (not forwarded), owned
    bool dry = false;                   // read_partitions(): found empty in this turn
  };
  struct Due {
    std::int64_t at;  // unix ms
    std::uint64_t tag;
    bool operator>(const Due& o) const { return at > o.at; }
  };

  Impl(uv_loop_t* loop, KafkaSourceOptions options, Sink& copies);
  ~Impl();

  // librdkafka callbacks (on the loop thread, inside rd_kafka_consumer_poll).
  void on_rebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts);
  void on_error(int err, const char* reason);
  void on_stats(std::string_view json);

  void start(Handler handler);
  void pump();
  bool read_partitions();
  void open_queue(Track& t);
  void close_queue(Track& t);
  void on_message(rd_kafka_message_t* m, Track* known = nullptr);
  void after_turn();
  void kick();
  void dispatch();
  void release_due();
  void arm_hold_timer();
  void apply_flow();
  bool window_full() const;
  std::size_t span_cap() const;  // records tracked per partition at most (settled or not)
  void settle(std::uint64_t tag, Verdict verdict);
  void finish_slot(Track& t, Slot& s);
  void advance(Track& t);
  void flush_stores();
  Message build_copy(const Slot& s) const;
  CopyPublisherOptions copy_options() const;
  CopyPublisher::Events copy_events();
  Track* track_by_id(std::uint32_t id);
  Track* track_of(const rd_kafka_message_t* m);
  Slot* find(std::uint64_t tag, Track** track = nullptr);
  void forget_track(std::size_t index);
  void clear_all();
  void stop(std::function<void()> on_stopped);
  void check_stop();
  void begin_close();
  void close_step();
  void finish_close(bool clean);
  void destroy_handle(bool clean);
  void notify_state();
  bool connected() const noexcept { return started_ && rk_ != nullptr && !closing_ && up_; }
  std::size_t in_flight() const noexcept { return busy_ + abandoned_.size(); }
  double next_random() noexcept;

  uv_loop_t* loop_;
  KafkaSourceOptions options_;
  CopyPublisher copies_;
  std::string retry_topic_;
  std::size_t max_in_flight_;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);  // guards callbacks from the sink

  rd_kafka_t* rk_ = nullptr;
  rd_kafka_queue_t* queue_ = nullptr;  // the consumer queue (main queue forwarded to it)
  std::array<int, 2> pipe_{-1, -1};
  PipePoll* poll_ = nullptr;
  Deferred deferred_;
  Timer tick_;
  Timer hold_timer_;

  Handler handler_;
  std::function<void(bool)> on_state_;
  std::function<void()> on_stopped_;

  std::vector<std::unique_ptr<Track>> tracks_;
  std::size_t rr_ = 0;  // read_partitions() starts at this track: round robin across turns
  std::uint32_t next_track_id_ = 1;
  std::deque<std::uint64_t> ready_;  // polled (or due) and not yet handed, in order
  std::priority_queue<Due, std::vector<Due>, std::greater<>> due_;    // held retries
  std::unordered_map<std::uint64_t, rd_kafka_message_t*> abandoned_;  // handed, partition revoked
  std::size_t pending_ = 0;  // polled and unsettled (tracked slots not settled)
  std::size_t waiting_ = 0;  // retry records held until their not-before
  std::size_t busy_ = 0;     // handed or publishing
  bool full_ = false;        // reading held: too much unsettled (partitions keep fetching)
  bool held_full_ = false;   // retry partitions paused: too many held retries

  bool started_ = false;
  bool app_paused_ = false;
  bool stopping_ = false;
  bool closing_ = false;
  bool stopped_ = false;
  bool dispatching_ = false;
  bool kicked_ = false;
  bool up_ = false;  // assignment / records / a broker UP seen, and not all brokers down since
  bool reported_ = false;
  std::int64_t drain_deadline_ = 0;
  std::int64_t close_deadline_ = 0;
  std::uint64_t rng_;
  Stats stats_;
};

namespace {

void rebalance_cb(rd_kafka_t* /*rk*/, rd_kafka_resp_err_t err,
                  rd_kafka_topic_partition_list_t* parts, void* opaque) {
  static_cast<KafkaSource::Impl*>(opaque)->on_rebalance(err, parts);
}

void error_cb(rd_kafka_t* /*rk*/, int err, const char* reason, void* opaque) {
  static_cast<KafkaSource::Impl*>(opaque)->on_error(err, reason);
}

int stats_cb(rd_kafka_t* /*rk*/, char* json, size_t len, void* opaque) {
  static_cast<KafkaSource::Impl*>(opaque)->on_stats(std::string_view(json, len));
  return 0;  // librdkafka frees json
}

// From librdkafka's threads: into the structured log. Its errors (connection refused while
// a broker is down...) are warnings here: what matters arrives through error_cb.
void log_cb(const rd_kafka_t* /*rk*/, int level, const char* fac, const char* buf) {
  if (level <= 4) {
    log::warn("librdkafka", {{"component", "kafka_source"}, {"facility", fac}, {"detail", buf}});
  } else {
    log::debug("librdkafka", {{"component", "kafka_source"}, {"facility", fac}, {"detail", buf}});
  }
}

void set_conf(rd_kafka_conf_t* conf, const std::string& name, const std::string& value) {
  std::array<char, 512> err{};
  if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), err.data(), err.size()) !=
      RD_KAFKA_CONF_OK) {
    rd_kafka_conf_destroy(conf);
    throw std::invalid_argument(
        fmt::format("KafkaSource: librdkafka property {}={}: {}", name, value, err.data()));
  }
}

}  // namespace

KafkaSource::Impl::Impl(uv_loop_t* loop, KafkaSourceOptions options, Sink& copies)
    : loop_(loop),
      options_(std::move(options)),
      copies_(loop, copies, copy_options(), copy_events()),
      retry_topic_(topology::kafka_retry_topic(options_.group)),
      max_in_flight_(std::max<std::size_t>(1, options_.max_in_flight)),
      deferred_(loop),
      tick_(loop),
      hold_timer_(loop) {
  rng_ = options_.jitter_seed != 0 ? options_.jitter_seed
                                   : (std::uint64_t{std::random_device{}()} << 1) | 1ULL;
  if (options_.group.empty()) throw std::invalid_argument("KafkaSource: group is empty");
  if (options_.topics.empty()) throw std::invalid_argument("KafkaSource: no topics");

  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  set_conf(conf, "bootstrap.servers", options_.brokers);
  set_conf(conf, "group.id", options_.group);
  set_conf(conf, "client.id", options_.name);
  set_conf(conf, "enable.auto.offset.store", "false");
  set_conf(conf, "enable.auto.commit", "true");
  set_conf(conf, "auto.commit.interval.ms",
           std::to_string(std::max<std::int64_t>(1, options_.commit_interval_ms)));
  set_conf(conf, "session.timeout.ms", std::to_string(options_.session_timeout_ms));
  set_conf(conf, "heartbeat.interval.ms",
           std::to_string(std::clamp<std::int64_t>(options_.session_timeout_ms / 3, 100, 3000)));
  set_conf(conf, "partition.assignment.strategy", "range,roundrobin");
  set_conf(conf, "auto.offset.reset", options_.auto_offset_reset);
  set_conf(conf, "enable.partition.eof", "false");
  set_conf(conf, "statistics.interval.ms", "1000");
  set_conf(conf, "queued.min.messages", kQueuedMinMessages);
  set_conf(conf, "queued.max.messages.kbytes", kQueuedMaxKbytes);
  for (const auto& [name, value] : options_.properties) set_conf(conf, name, value);
  rd_kafka_conf_set_opaque(conf, this);
  rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
  rd_kafka_conf_set_error_cb(conf, error_cb);
  rd_kafka_conf_set_stats_cb(conf, stats_cb);
  rd_kafka_conf_set_log_cb(conf, log_cb);

  std::array<char, 512> err{};
  rk_ = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err.data(), err.size());
  if (rk_ == nullptr) {
    rd_kafka_conf_destroy(conf);
    throw std::invalid_argument(fmt::format("KafkaSource: rd_kafka_new: {}", err.data()));
  }
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
  if (poll_ != nullptr) {
    poll_->alive = false;
    uv_poll_stop(&poll_->handle);
    uv_close(reinterpret_cast<uv_handle_t*>(&poll_->handle), [](uv_handle_t* h) {
      auto* p = static_cast<PipePoll*>(h->data);
      if (p->fd >= 0) ::close(p->fd);
      delete p;
    });
    poll_ = nullptr;
    pipe_[0] = -1;
  }
  if (pipe_[0] >= 0) ::close(pipe_[0]);
  if (pipe_[1] >= 0) ::close(pipe_[1]);
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

  if (::pipe2(pipe_.data(), O_NONBLOCK | O_CLOEXEC) != 0) {
    log::error("pipe2 failed; polling on the timer only", {{"source", options_.name}});
    pipe_ = {-1, -1};
  } else {
    rd_kafka_queue_io_event_enable(queue_, pipe_[1], &kWake, 1);
    poll_ = new PipePoll;
    poll_->fd = pipe_[0];
    poll_->handle.data = poll_;
    poll_->on_readable = [this] { pump(); };
    uv_poll_init(loop_, &poll_->handle, pipe_[0]);
    uv_poll_start(&poll_->handle, UV_READABLE, [](uv_poll_t* h, int /*status*/, int /*events*/) {
      auto* p = static_cast<PipePoll*>(h->data);
      if (!p->alive) return;
      std::function<void()> call = p->on_readable;  // may close this handle
      call();
    });
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

void KafkaSource::Impl::pump() {
  if (rk_ == nullptr || stopped_) return;
  if (pipe_[0] >= 0) {
    std::array<char, 64> buf{};
    while (::read(pipe_[0], buf.data(), buf.size()) > 0) {
    }
  }
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
  if (window_full()) full_ = true;
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
    if (t.window.size() >= span_cap()) {
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
  if (pipe_[1] >= 0) rd_kafka_queue_io_event_enable(t.queue, pipe_[1], &kWake, 1);
}

void KafkaSource::Impl::close_queue(Track& t) {
  if (t.queue == nullptr) return;
  rd_kafka_queue_io_event_enable(t.queue, -1, nullptr, 0);
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
  Track* t = track_by_id(static_cast<std::uint32_t>(tag >> kSeqBits));
  if (t == nullptr) return nullptr;
  const std::uint64_t seq = tag & kSeqMask;
  if (seq < t->first_seq || seq >= t->next_seq) return nullptr;
  if (track != nullptr) *track = t;
  return &t->window[seq - t->first_seq];
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
  if (t == nullptr || m->offset <= t->last_offset) {
    rd_kafka_message_destroy(m);  // not ours (revoked) or already polled
    return;
  }
  Slot s;
  s.msg = m;
  s.offset = m->offset;
  rd_kafka_headers_t* hdrs = nullptr;
  if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR) hdrs = nullptr;
  s.message_id = header_of(hdrs, topology::kKafkaHeaderMessageId);
  s.attempt = static_cast<int>(std::clamp<std::int64_t>(
      parse_int(header_of(hdrs, topology::kHeaderAttempts), 1), 1, 1000000));
  const std::string_view original = header_of(hdrs, topology::kHeaderOriginalRoute);
  // The record's topic handle lives as long as the record (the track may go first).
  s.route = original.empty() ? std::string_view(rd_kafka_topic_name(m->rkt)) : original;
  std::int64_t not_before = 0;
  if (t->retry) {
    // Never held longer than the longest backoff (plus slack): a skewed or forged header must
    // not pin the retry partition.
    not_before = std::min(parse_int(header_of(hdrs, topology::kHeaderNotBefore), 0),
                          unix_ms() + options_.retry.cap_ms + 60000);
  }

  t->last_offset = m->offset;
  const std::uint64_t tag = make_tag(t->id, t->next_seq++);
  pending_++;
  if (not_before > 0 && not_before > unix_ms()) {
    s.state = State::waiting;
    waiting_++;
    t->window.push_back(s);
    due_.push(Due{not_before, tag});
    arm_hold_timer();
  } else {
    s.state = State::held;
    t->window.push_back(s);
    ready_.push_back(tag);
  }
  stats_.largest_span = std::max<std::uint64_t>(stats_.largest_span, t->window.size());
}

void KafkaSource::Impl::release_due() {
  const std::int64_t now = unix_ms();
  while (!due_.empty() && due_.top().at <= now) {
    const std::uint64_t tag = due_.top().tag;
    due_.pop();
    Slot* s = find(tag);
    if (s == nullptr || s->state != State::waiting) continue;  // revoked meanwhile
    s->state = State::held;
    waiting_--;
    ready_.push_back(tag);
  }
  arm_hold_timer();
}

void KafkaSource::Impl::arm_hold_timer() {
  if (due_.empty()) {
    hold_timer_.stop();
    return;
  }
  const std::int64_t delay = std::max<std::int64_t>(1, due_.top().at - unix_ms());
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
  while (!app_paused_ && !stopping_ && !ready_.empty() && in_flight() < max_in_flight_) {
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

std::size_t KafkaSource::Impl::span_cap() const {
  return std::max<std::size_t>(1024, 16 * max_in_flight_);
}

bool KafkaSource::Impl::window_full() const {
  return pending_ - waiting_ + abandoned_.size() >= max_in_flight_;
}

void KafkaSource::Impl::apply_flow() {
  if (rk_ == nullptr || closing_) return;
  const std::size_t active = pending_ - waiting_ + abandoned_.size();
  if (!full_ && active >= max_in_flight_) {
    full_ = true;
  } else if (full_ && active <= max_in_flight_ * 3 / 4) {
    full_ = false;
    kick();  // what librdkafka buffered meanwhile does not signal the pipe again
  }
  const std::size_t max_held = std::max<std::size_t>(1, options_.max_held_retries);
  if (!held_full_ && waiting_ >= max_held) {
    held_full_ = true;
  } else if (held_full_ && waiting_ <= max_held / 2) {
    held_full_ = false;
  }
  rd_kafka_topic_partition_list_t* to_pause = nullptr;
  rd_kafka_topic_partition_list_t* to_resume = nullptr;
  for (auto& t : tracks_) {
    const bool want = app_paused_ || stopping_ || (t->retry && held_full_);
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

void KafkaSource::Impl::settle(std::uint64_t tag, Verdict verdict) {
  if (auto it = abandoned_.find(tag); it != abandoned_.end()) {
    // Its partition was revoked: the new owner gets the record again.
    rd_kafka_message_destroy(it->second);
    abandoned_.erase(it);
    log::debug("settled a delivery of a revoked partition; its new owner gets it again",
               {{"source", options_.name}});
    kick();
    return;
  }
  Track* t = nullptr;
  Slot* s = find(tag, &t);
  if (s == nullptr || s->state != State::handed) {
    log::debug("settle of an unknown, revoked or already settled delivery",
               {{"source", options_.name}, {"tag", tag}});
    return;
  }
  verdict = effective_verdict(options_.retry, s->attempt, std::move(verdict));
  if (verdict.kind == Verdict::Kind::ack) {
    stats_.acked++;
    finish_slot(*t, *s);
    return;
  }

  Message m = build_copy(*s);
  const std::string route(s->route);
  if (verdict.kind == Verdict::Kind::retry) {
    const RetryPlan plan = plan_retry(options_.retry, s->attempt, next_random());
    m.exchange = retry_topic_;
    add_retry_headers(m.headers, s->attempt, route);
    m.headers.push_back(Header{std::string(topology::kHeaderNotBefore), unix_ms() + plan.delay_ms});
    stats_.retried++;
    log::debug("retrying delivery", {{"source", options_.name},
                                     {"message_id", s->message_id},
                                     {"attempt", s->attempt},
                                     {"delay_ms", plan.delay_ms},
                                     {"reason", reason_code(verdict.reason)}});
  } else {
    m.exchange = options_.dead_letter_topic;
    add_dead_letter_headers(m.headers, verdict, s->attempt, route);
    stats_.dead_lettered++;
    log::info("dead-lettering delivery", {{"source", options_.name},
                                          {"message_id", s->message_id},
                                          {"reason", reason_code(verdict.reason)},
                                          {"detail", verdict.detail},
                                          {"attempts", s->attempt}});
  }
  // The copy owns its bytes: the record is no longer needed.
  s->state = State::publishing;
  s->route = {};
  s->message_id = {};
  rd_kafka_message_destroy(s->msg);
  s->msg = nullptr;
  copies_.publish(tag, std::move(m));
}

Message KafkaSource::Impl::build_copy(const Slot& s) const {
  Message m;
  const rd_kafka_message_t* r = s.msg;
  if (r->payload != nullptr) m.body.assign(static_cast<const char*>(r->payload), r->len);
  if (r->key != nullptr) m.key.assign(static_cast<const char*>(r->key), r->key_len);
  m.message_id.assign(s.message_id);
  rd_kafka_headers_t* hdrs = nullptr;
  if (rd_kafka_message_headers(r, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR) return m;
  bool found = false;
  const std::string_view type = header_of(hdrs, topology::kKafkaHeaderType, &found);
  m.routing_key.assign(type);
  const std::string_view ct = header_of(hdrs, topology::kKafkaHeaderContentType, &found);
  if (found) m.content_type.assign(ct);
  const char* name = nullptr;
  const void* value = nullptr;
  std::size_t size = 0;
  for (std::size_t i = 0;
       rd_kafka_header_get_all(hdrs, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i) {
    if (is_rewritten_header(name)) continue;
    m.headers.push_back(Header{
        std::string(name),
        value != nullptr ? std::string(static_cast<const char*>(value), size) : std::string()});
  }
  return m;
}

CopyPublisherOptions KafkaSource::Impl::copy_options() const {
  CopyPublisherOptions o;
  o.name = options_.name;
  o.dead_letter_destination = options_.dead_letter_topic;
  o.dead_letter_where = options_.dead_letter_topic;
  o.on_dead_lettered = options_.on_dead_lettered;
  o.republish_delay_ms = options_.republish_delay_ms;
  return o;
}

CopyPublisher::Events KafkaSource::Impl::copy_events() {
  CopyPublisher::Events e;
  e.wanted = [this](std::uint64_t tag) {  // revoked: the new owner redoes it
    const Slot* s = find(tag);
    return s != nullptr && s->state == State::publishing;
  };
  e.settled = [this](std::uint64_t tag) {
    Track* t = nullptr;
    Slot* s = find(tag, &t);
    finish_slot(*t, *s);
  };
  e.too_large = [this](std::uint64_t tag, const Message& refused, bool given_up) {
    Track* t = nullptr;
    Slot* s = find(tag, &t);
    if (!given_up) {
      log::error(
          "retry / dead-letter copy too large for the broker; dead-lettering it "
          "without its body",
          {{"source", options_.name},
           {"topic", t->topic},
           {"partition", t->partition},
           {"offset", s->offset},
           {"message_id", refused.message_id},
           {"bytes", static_cast<std::uint64_t>(refused.body.size())}});
      if (refused.exchange != options_.dead_letter_topic) stats_.dead_lettered++;  // was a retry
      return;
    }
    log::error(
        "dead letter too large for the broker even without its body; left in the "
        "source topic",
        {{"source", options_.name},
         {"topic", t->topic},
         {"partition", t->partition},
         {"offset", s->offset},
         {"message_id", refused.message_id}});
  };
  return e;
}

void KafkaSource::Impl::finish_slot(Track& t, Slot& s) {
  if (s.msg != nullptr) {
    rd_kafka_message_destroy(s.msg);
    s.msg = nullptr;
  }
  s.route = {};
  s.message_id = {};
  s.state = State::settled;
  busy_--;
  pending_--;
  advance(t);
  kick();  // store offsets, hand over more, finish a stop: on the next loop turn
}

void KafkaSource::Impl::advance(Track& t) {
  bool moved = false;
  std::int64_t last = -1;
  while (!t.window.empty() && t.window.front().state == State::settled) {
    last = t.window.front().offset;
    t.window.pop_front();
    t.first_seq++;
    moved = true;
  }
  if (moved) {
    t.store = last + 1;
    t.dirty = true;
  }
}

void KafkaSource::Impl::flush_stores() {
  if (rk_ == nullptr) return;
  rd_kafka_topic_partition_list_t* list = nullptr;
  for (auto& t : tracks_) {
    if (!t->dirty) continue;
    t->dirty = false;
    if (list == nullptr) list = rd_kafka_topic_partition_list_new(8);
    rd_kafka_topic_partition_list_add(list, t->topic.c_str(), t->partition)->offset = t->store;
  }
  if (list == nullptr) return;
  const rd_kafka_resp_err_t err = rd_kafka_offsets_store(rk_, list);
  stats_.offsets_stored++;
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    log::debug("offsets store failed",
               {{"source", options_.name}, {"error", rd_kafka_err2str(err)}});
  }
  rd_kafka_topic_partition_list_destroy(list);
}

void KafkaSource::Impl::forget_track(std::size_t index) {
  Track& t = *tracks_[index];
  close_queue(t);
  for (std::size_t i = 0; i < t.window.size(); ++i) {
    Slot& s = t.window[i];
    switch (s.state) {
      case State::waiting:
        waiting_--;
        pending_--;
        break;
      case State::held:
        pending_--;
        break;
      case State::handed:
        // The handler still holds views into it: kept until it is settled (a no-op then).
        abandoned_.emplace(make_tag(t.id, t.first_seq + i), s.msg);
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
  }
  tracks_.erase(tracks_.begin() + static_cast<std::ptrdiff_t>(index));
}

void KafkaSource::Impl::clear_all() {
  while (!tracks_.empty()) forget_track(tracks_.size() - 1);
  for (auto& [tag, m] : abandoned_) rd_kafka_message_destroy(m);
  abandoned_.clear();
  ready_.clear();
  due_ = {};
  copies_.clear();
  pending_ = waiting_ = busy_ = 0;
}

void KafkaSource::Impl::on_rebalance(rd_kafka_resp_err_t err,
                                     rd_kafka_topic_partition_list_t* parts) {
  const bool coop = std::strcmp(rd_kafka_rebalance_protocol(rk_), "COOPERATIVE") == 0;
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    stats_.rebalances++;
    // The tracks and their partition queues first: the assignment starts the fetch.
    for (int i = 0; i < parts->cnt; ++i) {
      const rd_kafka_topic_partition_t& p = parts->elems[i];
      for (std::size_t k = 0; k < tracks_.size(); ++k) {
        if (tracks_[k]->partition == p.partition && tracks_[k]->topic == p.topic) {
          forget_track(k);
          break;
        }
      }
      auto t = std::make_unique<Track>();
      t->id = next_track_id_;
      next_track_id_ = (next_track_id_ + 1) & kTrackIdMask;
      if (next_track_id_ == 0) next_track_id_ = 1;
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
    for (int i = 0; i < parts->cnt; ++i) {
      const rd_kafka_topic_partition_t& p = parts->elems[i];
      for (std::size_t k = 0; k < tracks_.size(); ++k) {
        if (tracks_[k]->partition == p.partition && tracks_[k]->topic == p.topic) {
          forget_track(k);
          break;
        }
      }
    }
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
  if (!up_ && stats_show_broker_up(json)) up_ = true;
}

void KafkaSource::Impl::notify_state() {
  const bool now = connected();
  if (now == reported_) return;
  reported_ = now;
  if (on_state_) on_state_(now);
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
  close_deadline_ = clients::now_ms(loop_) + kCloseTimeoutMs;
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
      kCloseTickMs, [this] { pump(); }, kCloseTickMs);
}

void KafkaSource::Impl::close_step() {
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
  rd_kafka_queue_io_event_enable(queue_, -1, nullptr, 0);
  rd_kafka_queue_destroy(queue_);
  queue_ = nullptr;
  rd_kafka_destroy_flags(rk_, clean ? 0 : RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
  rk_ = nullptr;
  if (poll_ != nullptr) uv_poll_stop(&poll_->handle);
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
