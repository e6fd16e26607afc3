#include "kafka_trace.hpp"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <mutex>
#include <random>
#include <stdexcept>
#include <thread>

namespace sagaflow::e2e {
namespace {

rd_kafka_conf_t* base_conf(const std::string& bootstrap) {
  std::array<char, 512> err{};
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  auto set = [&](const char* k, const std::string& v) {
    if (rd_kafka_conf_set(conf, k, v.c_str(), err.data(), err.size()) != RD_KAFKA_CONF_OK)
      throw std::runtime_error(std::string("kafka conf ") + k + ": " + err.data());
  };
  set("bootstrap.servers", bootstrap);
  set("log_level", "2");
  return conf;
}

std::map<std::string, std::string> headers_of(const rd_kafka_message_t* m) {
  std::map<std::string, std::string> out;
  rd_kafka_headers_t* hdrs = nullptr;
  if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR) return out;
  const char* name = nullptr;
  const void* value = nullptr;
  size_t size = 0;
  for (size_t i = 0;
       rd_kafka_header_get_all(hdrs, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i) {
    out[name] =
        value == nullptr ? std::string() : std::string(static_cast<const char*>(value), size);
  }
  return out;
}

std::string text(const void* p, size_t n) {
  return p == nullptr ? std::string() : std::string(static_cast<const char*>(p), n);
}

}  // namespace

struct KafkaObserver::Impl {
  struct Entry {
    std::int64_t timestamp;
    Observed observed;
  };
  rd_kafka_t* rk = nullptr;
  mutable std::mutex mutex;
  std::vector<Entry> entries;
  std::atomic<bool> stopping{false};
  std::thread thread;

  void run() {
    while (!stopping) {
      rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 100);
      if (m == nullptr) continue;
      if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        auto h = headers_of(m);
        Entry e;
        rd_kafka_timestamp_type_t tstype;
        e.timestamp = rd_kafka_message_timestamp(m, &tstype);
        Observed& o = e.observed;
        // When the record was produced (its CreateTime), not when this consumer fetched it:
        // fetches come in batches, and a rate measured on arrival times would be wrong.
        o.at = Clock::now();
        if (tstype == RD_KAFKA_TIMESTAMP_CREATE_TIME && e.timestamp > 0) {
          const auto wall_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count();
          o.at -= std::chrono::milliseconds(std::max<std::int64_t>(0, wall_ms - e.timestamp));
        }
        o.exchange = rd_kafka_topic_name(m->rkt);
        o.routing_key = h["type"];
        o.message_id = h["message_id"];
        o.content_type = h["content_type"];
        o.delivery_mode = 2;
        o.body = text(m->payload, m->len);
        std::lock_guard lock(mutex);
        o.seq = entries.size();
        entries.push_back(std::move(e));
      }
      rd_kafka_message_destroy(m);
    }
  }
};

// Partitions of `topic` (from metadata; throws if it has none within 10 s).
static std::vector<int> partitions_of(rd_kafka_t* rk, const std::string& topic) {
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
  const struct rd_kafka_metadata* md = nullptr;
  const rd_kafka_resp_err_t rc = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
  rd_kafka_topic_destroy(rkt);
  std::vector<int> out;
  if (rc == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1) {
    for (int i = 0; i < md->topics[0].partition_cnt; ++i)
      out.push_back(md->topics[0].partitions[i].id);
  }
  if (md != nullptr) rd_kafka_metadata_destroy(md);
  if (out.empty()) throw std::runtime_error("no partitions for topic " + topic);
  return out;
}

// Every partition assigned from the beginning, without a consumer group: no rebalance, so the
// observer resumes as soon as the broker is back after an outage.
KafkaObserver::KafkaObserver(std::string bootstrap, std::vector<std::string> topics)
    : impl_(std::make_unique<Impl>()) {
  std::array<char, 512> err{};
  rd_kafka_conf_t* conf = base_conf(bootstrap);
  std::random_device rd;
  const std::string group = "test-observer-" + std::to_string(rd());
  rd_kafka_conf_set(conf, "group.id", group.c_str(), err.data(), err.size());
  rd_kafka_conf_set(conf, "enable.auto.commit", "false", err.data(), err.size());
  rd_kafka_conf_set(conf, "fetch.wait.max.ms", "10", err.data(), err.size());
  rd_kafka_conf_set(conf, "socket.timeout.ms", "5000", err.data(), err.size());
  impl_->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err.data(), err.size());
  if (impl_->rk == nullptr) throw std::runtime_error(std::string("observer: ") + err.data());
  rd_kafka_poll_set_consumer(impl_->rk);
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(16);
  for (const auto& t : topics) {
    for (int p : partitions_of(impl_->rk, t))
      rd_kafka_topic_partition_list_add(list, t.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  }
  const rd_kafka_resp_err_t rc = rd_kafka_assign(impl_->rk, list);
  rd_kafka_topic_partition_list_destroy(list);
  if (rc != RD_KAFKA_RESP_ERR_NO_ERROR)
    throw std::runtime_error(std::string("observer assign: ") + rd_kafka_err2str(rc));
  impl_->thread = std::thread([this] { impl_->run(); });
}

KafkaObserver::~KafkaObserver() {
  stop();
}

void KafkaObserver::stop() {
  impl_->stopping = true;
  if (impl_->thread.joinable()) impl_->thread.join();
  if (impl_->rk != nullptr) {
    rd_kafka_assign(impl_->rk, nullptr);
    rd_kafka_destroy(impl_->rk);
    impl_->rk = nullptr;
  }
}

std::vector<Observed> KafkaObserver::snapshot() const {
  std::vector<Impl::Entry> copy;
  {
    std::lock_guard lock(impl_->mutex);
    copy = impl_->entries;
  }
  std::stable_sort(copy.begin(), copy.end(), [](const Impl::Entry& a, const Impl::Entry& b) {
    return a.timestamp < b.timestamp;
  });
  std::vector<Observed> out;
  out.reserve(copy.size());
  for (auto& e : copy) {
    e.observed.seq = out.size();
    out.push_back(std::move(e.observed));
  }
  return out;
}

std::size_t KafkaObserver::size() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->entries.size();
}

std::vector<KafkaRecord> read_topic(const std::string& bootstrap, const std::string& topic) {
  std::array<char, 512> err{};
  rd_kafka_conf_t* conf = base_conf(bootstrap);
  rd_kafka_conf_set(conf, "group.id", "test-reader", err.data(), err.size());
  rd_kafka_conf_set(conf, "enable.auto.commit", "false", err.data(), err.size());
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err.data(), err.size());
  if (rk == nullptr) throw std::runtime_error(std::string("reader: ") + err.data());
  rd_kafka_poll_set_consumer(rk);
  const struct rd_kafka_metadata* md = nullptr;
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
  if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR ||
      md->topic_cnt != 1) {
    if (md != nullptr) rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    throw std::runtime_error("reader: no metadata for " + topic);
  }
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(8);
  std::map<int, std::int64_t> end;
  for (int i = 0; i < md->topics[0].partition_cnt; ++i) {
    const int p = md->topics[0].partitions[i].id;
    std::int64_t lo = 0, hi = 0;
    rd_kafka_query_watermark_offsets(rk, topic.c_str(), p, &lo, &hi, 10000);
    if (hi > lo) {
      end[p] = hi;
      rd_kafka_topic_partition_list_add(list, topic.c_str(), p)->offset = lo;
    }
  }
  rd_kafka_metadata_destroy(md);
  rd_kafka_topic_destroy(rkt);
  std::vector<KafkaRecord> out;
  if (list->cnt > 0) rd_kafka_assign(rk, list);
  rd_kafka_topic_partition_list_destroy(list);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!end.empty() && std::chrono::steady_clock::now() < deadline) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 100);
    if (m == nullptr) continue;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      KafkaRecord r;
      r.partition = m->partition;
      r.key = text(m->key, m->key_len);
      r.value = text(m->payload, m->len);
      r.headers = headers_of(m);
      out.push_back(std::move(r));
      auto it = end.find(m->partition);
      if (it != end.end() && m->offset + 1 >= it->second) end.erase(it);
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  if (!end.empty()) throw std::runtime_error("reader: " + topic + " not read to its end in 20 s");
  return out;
}

}  // namespace sagaflow::e2e
