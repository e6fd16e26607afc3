// The dead-letter topic on Kafka for dlq list / dlq replay / status (see dead_letter_topic.hpp).
//
// Every broker call is a blocking librdkafka call with a bound: metadata, watermarks and the
// committed offsets take options.timeout_ms each; reading and publishing give up after
// options.idle_timeout_ms without progress. An unreachable broker therefore ends in one Error
// after about timeout_ms (the metadata request is the first call and fails first).
//
// Replay and crashes: a dead letter is re-published (idempotent producer, acks=all), its
// delivery report is awaited, and only then is the offset after it committed for the group
// sagaflow-dlq-replay (synchronously, waiting for the broker's answer). A crash or a failed
// commit between the publish and the commit leaves the offset where it was, so the next replay
// re-publishes that dead letter once more: same value, same key, same message_id, deduplicated
// downstream by the envelope id. It is never lost. Offsets are committed every kCommitEvery
// replays and at the end, so a crash re-publishes at most that many.
//
// The consumer never joins the group (assign(), not subscribe()): the group is only a place to
// keep the replay position, so no rebalance or session is involved.
#include "brokers/kafka/dead_letter_topic.hpp"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <limits>
#include <map>
#include <memory>
#include <set>

#include <fmt/format.h>

#include "clients/kafka/client.hpp"
#include "core/log.hpp"
#include "topology/names.hpp"

namespace sagaflow::brokers {

std::string KafkaDeadLetter::header(std::string_view name) const {
  for (auto it = headers.rbegin(); it != headers.rend(); ++it) {
    if (it->first == name) return it->second;
  }
  return {};
}

std::string kafka_replay_topic(std::string_view original_route) {
  if (original_route.empty()) return std::string(topology::kEventsTopic);
  if (original_route == topology::kafka_retry_topic(topology::kParticipantsGroup))
    return std::string(topology::kCommandsTopic);
  if (original_route.starts_with(topology::kRetryTopicPrefix))
    return std::string(topology::kEventsTopic);
  return std::string(original_route);
}

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::int64_t kCommitEvery = 256;  // replayed dead letters between two commits
const std::string kDeadTopic(topology::kDeadTopic);

struct PartitionListDeleter {
  void operator()(rd_kafka_topic_partition_list_t* l) const noexcept {
    rd_kafka_topic_partition_list_destroy(l);
  }
};
using PartitionList = std::unique_ptr<rd_kafka_topic_partition_list_t, PartitionListDeleter>;

struct MessageDeleter {
  void operator()(rd_kafka_message_t* m) const noexcept { rd_kafka_message_destroy(m); }
};
using MessagePtr = std::unique_ptr<rd_kafka_message_t, MessageDeleter>;

struct QueueDeleter {
  void operator()(rd_kafka_queue_t* q) const noexcept { rd_kafka_queue_destroy(q); }
};
using QueuePtr = std::unique_ptr<rd_kafka_queue_t, QueueDeleter>;

struct EventDeleter {
  void operator()(rd_kafka_event_t* e) const noexcept { rd_kafka_event_destroy(e); }
};
using EventPtr = std::unique_ptr<rd_kafka_event_t, EventDeleter>;

int ms_left(Clock::time_point deadline) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return static_cast<int>(std::clamp<std::int64_t>(left, 0, 1 << 30));
}

// One librdkafka handle (consumer or producer) and the last error it reported. librdkafka's
// own log lines (connection refused, ...) show only at debug level, written on the calling
// thread by serve() and at the end: a CLI tool prints one line of its own instead.
class Client {
 public:
  static Result<std::unique_ptr<Client>> open(rd_kafka_type_t type, const KafkaDlqOptions& options,
                                              const kafka::Settings& properties) {
    auto client = std::unique_ptr<Client>(new Client(options));
    kafka::ClientConfig config;
    config.brokers = options.brokers;
    config.client_id = "sagaflow-dlq";
    config.settings = {
        {"socket.timeout.ms", std::to_string(std::max<std::int64_t>(options.timeout_ms, 10))},
        {"log.connection.close", "false"}};
    config.settings.insert(config.settings.end(), properties.begin(), properties.end());
    config.logs = kafka::LogStyle{"", "", kafka::LogStyle::Levels::debug};
    config.configure = [type, self = client.get()](rd_kafka_conf_t* conf) {
      rd_kafka_conf_set_error_cb(conf, &Client::on_error);
      if (type == RD_KAFKA_PRODUCER) rd_kafka_conf_set_dr_msg_cb(conf, &Client::on_delivery);
      rd_kafka_conf_set_opaque(conf, self);
    };
    auto handle = kafka::Client::open(type, config);
    if (!handle) return std::move(handle).error();
    client->handle_ = std::move(handle).value();
    client->rk_ = client->handle_.get();
    return client;
  }

  ~Client() {
    // The consumer never joined its group and commits explicitly: nothing to close.
    handle_.destroy(RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  rd_kafka_t* rk() const noexcept { return rk_; }
  const KafkaDlqOptions& options() const noexcept { return options_; }

  // Serves the callbacks (errors, delivery reports) for up to `timeout_ms`, then writes the
  // queued log lines.
  void serve(int timeout_ms = 0) {
    rd_kafka_poll(rk_, timeout_ms);
    handle_.drain_logs();
  }

  // An Error whose detail says what failed, with librdkafka's last reported cause.
  Error failure(Errc code, std::string_view what, rd_kafka_resp_err_t err) {
    serve();  // error callbacks, for last_error_
    std::string detail =
        fmt::format("Kafka at {}: {}: {}", options_.brokers, what,
                    err == RD_KAFKA_RESP_ERR_NO_ERROR ? "no answer" : rd_kafka_err2str(err));
    if (!last_error_.empty() && last_error_ != rd_kafka_err2str(err))
      detail += fmt::format(" ({})", last_error_);
    return make_error(code, std::move(detail));
  }
  Error unreachable(std::string_view what, rd_kafka_resp_err_t err) {
    Error e = failure(Errc::unavailable, what, err);
    e.detail += "; is it running? (SAGAFLOW_KAFKA_BROKERS)";
    return e;
  }
  void note_error(std::string text) { last_error_ = std::move(text); }

  struct Delivery {
    bool done = false;
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
  };

 private:
  explicit Client(KafkaDlqOptions options) : options_(std::move(options)) {}

  static void on_error(rd_kafka_t*, int, const char* reason, void* opaque) {
    static_cast<Client*>(opaque)->last_error_ = reason;
  }
  static void on_delivery(rd_kafka_t*, const rd_kafka_message_t* m, void*) {
    auto* d = static_cast<Delivery*>(m->_private);
    d->done = true;
    d->err = m->err;
  }

  KafkaDlqOptions options_;
  kafka::Client handle_;
  rd_kafka_t* rk_ = nullptr;  // handle_.get()
  std::string last_error_;
};

Result<std::unique_ptr<Client>> open_consumer(const KafkaDlqOptions& options) {
  return Client::open(RD_KAFKA_CONSUMER, options,
                      {{"group.id", std::string(topology::kDlqReplayGroup)},
                       {"enable.auto.commit", "false"},
                       {"enable.auto.offset.store", "false"},
                       {"enable.partition.eof", "true"},
                       {"allow.auto.create.topics", "false"},
                       {"fetch.wait.max.ms", "100"}});
}

// What is left to handle in one partition: offsets [begin, end).
struct Range {
  std::int32_t partition = 0;
  std::int64_t begin = 0;
  std::int64_t end = 0;
};

Result<std::vector<Range>> read_ranges(Client& c) {
  const int timeout = static_cast<int>(c.options().timeout_ms);
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(c.rk(), kDeadTopic.c_str(), nullptr);
  if (rkt == nullptr) {
    return c.failure(Errc::internal, "topic handle " + kDeadTopic, rd_kafka_last_error());
  }
  const rd_kafka_metadata_t* md = nullptr;
  const rd_kafka_resp_err_t err = rd_kafka_metadata(c.rk(), 0, rkt, &md, timeout);
  rd_kafka_topic_destroy(rkt);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR || md == nullptr) {
    if (md != nullptr) rd_kafka_metadata_destroy(md);
    return c.unreachable("metadata of " + kDeadTopic, err);
  }
  std::vector<std::int32_t> partitions;
  rd_kafka_resp_err_t topic_err = RD_KAFKA_RESP_ERR_NO_ERROR;
  for (int i = 0; i < md->topic_cnt; ++i) {
    const rd_kafka_metadata_topic_t& t = md->topics[i];
    if (kDeadTopic != t.topic) continue;
    topic_err = t.err;
    for (int p = 0; p < t.partition_cnt; ++p) partitions.push_back(t.partitions[p].id);
  }
  rd_kafka_metadata_destroy(md);
  // No dead-letter topic yet: nothing was ever dead-lettered.
  if (topic_err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) return std::vector<Range>{};
  if (topic_err != RD_KAFKA_RESP_ERR_NO_ERROR)
    return c.failure(Errc::unavailable, "metadata of " + kDeadTopic, topic_err);
  std::sort(partitions.begin(), partitions.end());

  std::vector<Range> ranges;
  std::vector<std::int64_t> low;
  for (const std::int32_t p : partitions) {
    std::int64_t lo = 0;
    std::int64_t hi = 0;
    const rd_kafka_resp_err_t werr =
        rd_kafka_query_watermark_offsets(c.rk(), kDeadTopic.c_str(), p, &lo, &hi, timeout);
    if (werr != RD_KAFKA_RESP_ERR_NO_ERROR)
      return c.unreachable(fmt::format("watermarks of {} [{}]", kDeadTopic, p), werr);
    ranges.push_back(Range{p, lo, hi});
  }
  if (ranges.empty()) return ranges;

  PartitionList list(rd_kafka_topic_partition_list_new(static_cast<int>(ranges.size())));
  for (const Range& r : ranges)
    rd_kafka_topic_partition_list_add(list.get(), kDeadTopic.c_str(), r.partition);
  const rd_kafka_resp_err_t cerr = rd_kafka_committed(c.rk(), list.get(), timeout);
  if (cerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return c.unreachable(fmt::format("committed offsets of group {}", topology::kDlqReplayGroup),
                         cerr);
  }
  for (Range& r : ranges) {
    const rd_kafka_topic_partition_t* tp =
        rd_kafka_topic_partition_list_find(list.get(), kDeadTopic.c_str(), r.partition);
    if (tp == nullptr) continue;
    if (tp->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return c.failure(Errc::unavailable,
                       fmt::format("committed offset of group {} on {} [{}]",
                                   topology::kDlqReplayGroup, kDeadTopic, r.partition),
                       tp->err);
    }
    // No committed offset: from the low watermark. One that retention deleted: likewise.
    if (tp->offset >= 0) r.begin = std::clamp(tp->offset, r.begin, r.end);
  }
  return ranges;
}

KafkaDeadLetter to_dead_letter(const rd_kafka_message_t& m) {
  KafkaDeadLetter d;
  d.partition = m.partition;
  d.offset = m.offset;
  if (m.key != nullptr) d.key.emplace(static_cast<const char*>(m.key), m.key_len);
  if (m.payload != nullptr) d.value.assign(static_cast<const char*>(m.payload), m.len);
  rd_kafka_headers_t* hdrs = nullptr;
  if (rd_kafka_message_headers(&m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR && hdrs != nullptr) {
    const char* name = nullptr;
    const void* value = nullptr;
    std::size_t size = 0;
    for (std::size_t i = 0;
         rd_kafka_header_get_all(hdrs, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
         ++i) {
      d.headers.emplace_back(name, value == nullptr
                                       ? std::string()
                                       : std::string(static_cast<const char*>(value), size));
    }
  }
  return d;
}

// Reads the dead letters of `ranges`, partition after partition, calling `each` for up to
// `limit` of them; stops at the first Error of `each`. Returns how many were handled.
Result<std::int64_t> read_dead_letters(Client& c, const std::vector<Range>& ranges,
                                       std::int64_t limit,
                                       const std::function<Status(const KafkaDeadLetter&)>& each) {
  const auto idle = std::chrono::milliseconds(c.options().idle_timeout_ms);
  std::int64_t count = 0;
  for (const Range& r : ranges) {
    if (count >= limit) break;
    if (r.begin >= r.end) continue;
    PartitionList list(rd_kafka_topic_partition_list_new(1));
    rd_kafka_topic_partition_list_add(list.get(), kDeadTopic.c_str(), r.partition)->offset =
        r.begin;
    if (const rd_kafka_resp_err_t err = rd_kafka_assign(c.rk(), list.get()); err) {
      return c.failure(Errc::internal, fmt::format("assign {} [{}]", kDeadTopic, r.partition), err);
    }
    std::int64_t next = r.begin;
    auto deadline = Clock::now() + idle;
    while (next < r.end && count < limit) {
      const int left = ms_left(deadline);
      if (left == 0) {
        rd_kafka_assign(c.rk(), nullptr);
        return c.failure(Errc::timeout,
                         fmt::format("reading {} [{}] at offset {}: nothing within {} ms",
                                     kDeadTopic, r.partition, next, idle.count()),
                         RD_KAFKA_RESP_ERR__TIMED_OUT);
      }
      MessagePtr m(rd_kafka_consumer_poll(c.rk(), std::min(left, 200)));
      c.serve();  // error callbacks
      if (!m) continue;
      if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
        c.note_error(rd_kafka_message_errstr(m.get()));
      if (m->rkt == nullptr || kDeadTopic != rd_kafka_topic_name(m->rkt) ||
          m->partition != r.partition) {
        continue;  // a leftover of an earlier assignment, or a client-level event
      }
      if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        if (m->offset >= next) break;  // the log ends before the snapshot (a gap): done
        continue;
      }
      if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (m->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE) {
          rd_kafka_assign(c.rk(), nullptr);
          return c.failure(
              Errc::unavailable,
              fmt::format("reading {} [{}] at offset {}", kDeadTopic, r.partition, next), m->err);
        }
        continue;
      }
      if (m->offset < next) continue;
      if (m->offset >= r.end) break;
      const KafkaDeadLetter d = to_dead_letter(*m);
      if (Status st = each(d); !st) {
        rd_kafka_assign(c.rk(), nullptr);
        return st.error();
      }
      next = m->offset + 1;
      ++count;
      deadline = Clock::now() + idle;
    }
  }
  rd_kafka_assign(c.rk(), nullptr);
  return count;
}

// Commits `next_offsets` (partition -> the offset after the last replayed one) for the group
// and waits for the broker's answer, at most timeout_ms.
Status commit(Client& c, const std::map<std::int32_t, std::int64_t>& next_offsets) {
  if (next_offsets.empty()) return Status::success();
  PartitionList list(rd_kafka_topic_partition_list_new(static_cast<int>(next_offsets.size())));
  for (const auto& [p, offset] : next_offsets)
    rd_kafka_topic_partition_list_add(list.get(), kDeadTopic.c_str(), p)->offset = offset;
  QueuePtr queue(rd_kafka_queue_new(c.rk()));
  const std::string what = fmt::format("commit for group {}", topology::kDlqReplayGroup);
  if (const rd_kafka_resp_err_t err =
          rd_kafka_commit_queue(c.rk(), list.get(), queue.get(), nullptr, nullptr);
      err) {
    return c.failure(Errc::unavailable, what, err);
  }
  const auto deadline = Clock::now() + std::chrono::milliseconds(c.options().timeout_ms);
  while (true) {
    const int left = ms_left(deadline);
    if (left == 0) return c.failure(Errc::timeout, what, RD_KAFKA_RESP_ERR__TIMED_OUT);
    EventPtr ev(rd_kafka_queue_poll(queue.get(), left));
    if (!ev || rd_kafka_event_type(ev.get()) != RD_KAFKA_EVENT_OFFSET_COMMIT) continue;
    if (const rd_kafka_resp_err_t err = rd_kafka_event_error(ev.get()); err)
      return c.failure(Errc::unavailable, what, err);
    if (const rd_kafka_topic_partition_list_t* done = rd_kafka_event_topic_partition_list(ev.get());
        done != nullptr) {
      for (int i = 0; i < done->cnt; ++i) {
        if (done->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR)
          return c.failure(Errc::unavailable, what, done->elems[i].err);
      }
    }
    return Status::success();
  }
}

// Looks up `topic` once before the first publish to it: the producer then knows its partitions
// at once (instead of at its next periodic metadata scan, about a second later), and a topic
// that does not exist is one clear error instead of a delivery timeout.
Status know_topic(Client& producer, const std::string& topic, std::set<std::string>& known) {
  if (known.count(topic) != 0) return Status::success();
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(producer.rk(), topic.c_str(), nullptr);
  if (rkt == nullptr)
    return producer.failure(Errc::internal, "topic handle " + topic, rd_kafka_last_error());
  const rd_kafka_metadata_t* md = nullptr;
  const rd_kafka_resp_err_t err = rd_kafka_metadata(
      producer.rk(), 0, rkt, &md, static_cast<int>(producer.options().timeout_ms));
  rd_kafka_topic_destroy(rkt);
  rd_kafka_resp_err_t topic_err = err;
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR && md != nullptr) {
    for (int i = 0; i < md->topic_cnt; ++i) {
      if (topic == md->topics[i].topic) topic_err = md->topics[i].err;
    }
  }
  if (md != nullptr) rd_kafka_metadata_destroy(md);
  if (topic_err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
    return make_error(
        Errc::unavailable,
        fmt::format("Kafka at {}: the replay target topic {} does not exist (sagaflow "
                    "topology apply creates it)",
                    producer.options().brokers, topic));
  }
  if (topic_err != RD_KAFKA_RESP_ERR_NO_ERROR)
    return producer.unreachable("metadata of " + topic, topic_err);
  known.insert(topic);
  return Status::success();
}

// Publishes one dead letter back and waits for its delivery report.
Status republish(Client& producer, const KafkaDeadLetter& d, std::set<std::string>& known) {
  const std::string topic = kafka_replay_topic(d.header(topology::kHeaderOriginalRoute));
  if (Status st = know_topic(producer, topic, known); !st) return st;
  rd_kafka_headers_t* hdrs = rd_kafka_headers_new(d.headers.size());
  for (const auto& [name, value] : d.headers) {
    if (std::string_view(name).starts_with("x-sagaflow-")) continue;  // starts fresh
    rd_kafka_header_add(hdrs, name.data(), static_cast<ssize_t>(name.size()), value.data(),
                        static_cast<ssize_t>(value.size()));
  }
  Client::Delivery delivery;
  std::array<rd_kafka_vu_t, 6> vus{};
  std::size_t n = 0;
  vus[n].vtype = RD_KAFKA_VTYPE_TOPIC;
  vus[n++].u.cstr = topic.c_str();
  vus[n].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
  vus[n++].u.i = RD_KAFKA_MSG_F_COPY;
  vus[n].vtype = RD_KAFKA_VTYPE_VALUE;
  vus[n].u.mem.ptr = const_cast<char*>(d.value.data());
  vus[n++].u.mem.size = d.value.size();
  if (d.key) {
    vus[n].vtype = RD_KAFKA_VTYPE_KEY;
    vus[n].u.mem.ptr = const_cast<char*>(d.key->data());
    vus[n++].u.mem.size = d.key->size();
  }
  vus[n].vtype = RD_KAFKA_VTYPE_HEADERS;
  vus[n++].u.headers = hdrs;  // owned by librdkafka once produced
  vus[n].vtype = RD_KAFKA_VTYPE_OPAQUE;
  vus[n++].u.ptr = &delivery;
  const std::string what =
      fmt::format("publish of {} [{}] offset {} to {}", kDeadTopic, d.partition, d.offset, topic);
  if (rd_kafka_error_t* error = rd_kafka_produceva(producer.rk(), vus.data(), n); error) {
    rd_kafka_headers_destroy(hdrs);
    const rd_kafka_resp_err_t code = rd_kafka_error_code(error);
    rd_kafka_error_destroy(error);
    return producer.failure(Errc::unavailable, what, code);
  }
  // message.timeout.ms is the idle timeout: a report comes by then; a little slack on top.
  const auto deadline = Clock::now() +
                        std::chrono::milliseconds(producer.options().idle_timeout_ms) +
                        std::chrono::seconds(2);
  while (!delivery.done) {
    const int left = ms_left(deadline);
    if (left == 0) return producer.failure(Errc::timeout, what, RD_KAFKA_RESP_ERR__TIMED_OUT);
    producer.serve(std::min(left, 100));
  }
  if (delivery.err != RD_KAFKA_RESP_ERR_NO_ERROR)
    return producer.failure(Errc::unavailable, what, delivery.err);
  return Status::success();
}

}  // namespace

Result<std::int64_t> kafka_dlq_depth(const KafkaDlqOptions& options) {
  auto consumer = open_consumer(options);
  if (!consumer) return std::move(consumer).error();
  auto ranges = read_ranges(*consumer.value());
  if (!ranges) return std::move(ranges).error();
  std::int64_t depth = 0;
  for (const Range& r : ranges.value()) depth += r.end - r.begin;
  return depth;
}

Result<std::int64_t> kafka_dlq_list(const KafkaDlqOptions& options, std::int64_t limit,
                                    const std::function<void(const KafkaDeadLetter&)>& visit) {
  auto consumer = open_consumer(options);
  if (!consumer) return std::move(consumer).error();
  auto ranges = read_ranges(*consumer.value());
  if (!ranges) return std::move(ranges).error();
  return read_dead_letters(*consumer.value(), ranges.value(), limit, [&](const KafkaDeadLetter& d) {
    visit(d);
    return Status::success();
  });
}

Result<std::int64_t> kafka_dlq_replay(
    const KafkaDlqOptions& options, std::int64_t limit, const KafkaDlqSelect& select,
    const std::function<void(const KafkaDeadLetter&)>& replayed_one,
    const std::function<void(const KafkaDeadLetter&)>& passed) {
  auto consumer = open_consumer(options);
  if (!consumer) return std::move(consumer).error();
  Client& c = *consumer.value();
  auto ranges = read_ranges(c);
  if (!ranges) return std::move(ranges).error();
  std::int64_t pending = 0;
  for (const Range& r : ranges.value()) pending += r.end - r.begin;
  if (pending == 0) return std::int64_t{0};

  auto producer = Client::open(
      RD_KAFKA_PRODUCER, options,
      {{"enable.idempotence", "true"},
       {"acks", "all"},
       {"linger.ms", "0"},
       {"partitioner",
        "murmur2_random"},  // as KafkaSink: a key lands where the rest of its order is
       {"message.timeout.ms", std::to_string(std::max<std::int64_t>(options.idle_timeout_ms, 1))}});
  if (!producer) return std::move(producer).error();

  std::set<std::string> known_topics;                // replay targets looked up already
  std::map<std::int32_t, std::int64_t> uncommitted;  // partition -> offset after the last replayed
  std::int64_t committed = 0;
  std::int64_t confirmed = 0;
  auto flush_commits = [&]() -> Status {
    if (Status st = commit(c, uncommitted); !st) return st;
    committed = confirmed;
    uncommitted.clear();
    return Status::success();
  };
  std::set<std::int32_t> skipped_in;  // partitions whose commit stops at a skipped one
  const std::int64_t read_limit = select ? std::numeric_limits<std::int64_t>::max() : limit;
  auto replayed = read_dead_letters(c, ranges.value(), read_limit, [&](const KafkaDeadLetter& d) {
    if (!d.header(topology::kHeaderBodySize).empty()) {
      // Dead-lettered without its body (too large for the producer): nothing to send back. A
      // full replay passes it (it stays in the topic); a selection skips it.
      log::warn("dead letter kept without its body: not replayable",
                {{"partition", d.partition},
                 {"offset", d.offset},
                 {"message_id", d.header(topology::kKafkaHeaderMessageId)}});
      if (select) {
        skipped_in.insert(d.partition);
      } else {
        if (!skipped_in.contains(d.partition)) uncommitted[d.partition] = d.offset + 1;
        if (passed) passed(d);
      }
      return Status::success();
    }
    if (select && (confirmed >= limit || !select(d))) {
      skipped_in.insert(d.partition);
      return Status::success();
    }
    if (Status st = republish(*producer.value(), d, known_topics); !st) return st;
    if (!skipped_in.contains(d.partition)) uncommitted[d.partition] = d.offset + 1;
    ++confirmed;
    if (replayed_one) replayed_one(d);
    if (confirmed - committed >= kCommitEvery) return flush_commits();
    return Status::success();
  });
  // Whatever was confirmed is committed, also when the read or a publish failed.
  const Status last_commit = flush_commits();
  if (!replayed) {
    Error e = std::move(replayed).error();
    if (!last_commit) {
      e.detail += fmt::format(
          "; {} replayed but their commit failed ({}): they will be replayed "
          "again",
          confirmed - committed, last_commit.error().detail);
    }
    e.detail += fmt::format("; {} dead letter(s) replayed and committed before that", committed);
    return e;
  }
  if (!last_commit) {
    Error e = last_commit.error();
    e.detail += fmt::format(
        "; {} replayed, {} of them not committed: those will be replayed "
        "again (same ids, deduplicated downstream)",
        confirmed, confirmed - committed);
    return e;
  }
  return confirmed;
}

}  // namespace sagaflow::brokers
