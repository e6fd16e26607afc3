#pragma once
// KafkaSource::Impl, shared by the files that each do one of its jobs (private to consumers/):
//   consumers/kafka_source.cpp   life cycle: construction, start, wake-ups, the public calls
//   kafka/source_config.cpp      the librdkafka configuration made from KafkaSourceOptions
//   kafka/intake.cpp             reading records from the queues into the partition windows
//   kafka/flow.cpp               held retries released, hand-over, the window, pausing
//   kafka/offsets.cpp            settling a record and storing the offsets it frees
//   kafka/copies.cpp             retry and dead-letter copies (settle with a copy verdict)
//   kafka/group.cpp              rebalance, errors, statistics, stop and close
// The pure pieces they use: offset_window.hpp (which offsets may be committed),
// held_retries.hpp (retries held until their not-before), flow_gate.hpp (the window).
#include <librdkafka/rdkafka.h>
#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "clients/kafka/client.hpp"
#include "clients/kafka/queue_wakeup.hpp"
#include "clients/uv_helpers.hpp"
#include "consumers/copy_publisher.hpp"
#include "consumers/kafka/flow_gate.hpp"
#include "consumers/kafka/held_retries.hpp"
#include "consumers/kafka/offset_window.hpp"
#include "consumers/kafka_source.hpp"

namespace sagaflow {

namespace kafka_source {

constexpr std::int64_t kTickMs = 100;      // polls even when the pipe is quiet
constexpr std::int64_t kCloseTickMs = 10;  // while the consumer closes
constexpr std::int64_t kCloseTimeoutMs = 3000;
constexpr int kPollBatch = 512;  // consumer-queue ops, then records, per pump; more next turn

std::int64_t unix_ms();

// The consumer's librdkafka configuration (see source_config.cpp); `impl` is the opaque of
// the callbacks.
kafka::ClientConfig client_config(const KafkaSourceOptions& options, KafkaSource::Impl* impl);

}  // namespace kafka_source

struct KafkaSource::Impl {
  using State = kafka_source::SlotState;
  using Window = kafka_source::OffsetWindow<rd_kafka_message_t>;
  using Slot = Window::Slot;
  struct Track {  // one assigned partition, for one assignment
    std::uint32_t id = 0;
    std::string topic;
    std::int32_t partition = 0;
    bool retry = false;                 // the group's retry topic
    Window window;                      // polled, in offset order, from the oldest unsettled
    std::int8_t paused = -1;            // -1: unknown (just assigned), 0 / 1
    rd_kafka_queue_t* queue = nullptr;  // the partition's own queue (not forwarded), owned
    bool dry = false;                   // read_partitions(): found empty in this turn
  };
  Impl(uv_loop_t* loop, KafkaSourceOptions options, Sink& copies);
  ~Impl();

  // librdkafka callbacks (on the loop thread, inside rd_kafka_consumer_poll).
  void on_rebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts);
  void on_error(int err, const char* reason);
  void on_stats(std::string_view json);

  // kafka_source.cpp
  void start(Handler handler);
  void kick();
  void notify_state();
  double next_random() noexcept;
  // intake.cpp
  void pump();
  bool read_partitions();
  void open_queue(Track& t);
  void close_queue(Track& t);
  void on_message(rd_kafka_message_t* m, Track* known = nullptr);
  void after_turn();
  Track* track_by_id(std::uint32_t id);
  Track* track_of(const rd_kafka_message_t* m);
  Slot* find(std::uint64_t tag, Track** track = nullptr);
  // flow.cpp
  void dispatch();
  void release_due();
  void arm_hold_timer();
  void apply_flow();
  std::size_t active() const noexcept;  // what the window counts (see flow_gate.hpp)
  bool window_full() const;
  // offsets.cpp
  void finish_slot(Track& t, Slot& s);
  void flush_stores();
  // copies.cpp
  void settle(std::uint64_t tag, Verdict verdict);
  Message build_copy(const Slot& s) const;
  CopyPublisherOptions copy_options() const;
  CopyPublisher::Events copy_events();
  // group.cpp
  void forget_track(std::size_t index);
  void forget_partition(const rd_kafka_topic_partition_t& p);  // its track, if any
  void clear_all();
  void stop(std::function<void()> on_stopped);
  void check_stop();
  void begin_close();
  void close_step();
  void finish_close(bool clean);
  void destroy_handle(bool clean);

  bool connected() const noexcept { return started_ && rk_ != nullptr && !closing_ && up_; }
  std::size_t in_flight() const noexcept { return busy_ + abandoned_.size(); }

  uv_loop_t* loop_;
  KafkaSourceOptions options_;
  CopyPublisher copies_;
  std::string retry_topic_;
  kafka_source::FlowGate gate_;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);  // guards callbacks from the sink

  kafka::QueueWakeup wakeup_;  // every partition queue, the consumer and the log queue
  kafka::Client client_;
  rd_kafka_t* rk_ = nullptr;           // client_.get() until the handle is destroyed
  rd_kafka_queue_t* queue_ = nullptr;  // the consumer queue (main queue forwarded to it)
  clients::Deferred deferred_;
  clients::Timer tick_;
  clients::Timer hold_timer_;

  Handler handler_;
  std::function<void(bool)> on_state_;
  std::function<void()> on_stopped_;

  std::vector<std::unique_ptr<Track>> tracks_;
  std::size_t rr_ = 0;  // read_partitions() starts at this track: round robin across turns
  kafka_source::TrackIds track_ids_;
  std::deque<std::uint64_t> ready_;  // polled (or due) and not yet handed, in order
  kafka_source::HeldRetries held_;   // retry records held until their not-before
  std::unordered_map<std::uint64_t, rd_kafka_message_t*> abandoned_;  // handed, partition revoked
  std::size_t pending_ = 0;  // polled and unsettled (tracked slots not settled)
  std::size_t busy_ = 0;     // handed or publishing

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

}  // namespace sagaflow
