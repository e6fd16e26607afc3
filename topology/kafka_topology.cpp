#include "topology/kafka_topology.hpp"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "clients/kafka/client.hpp"
#include "topology/names.hpp"

namespace sagaflow {
namespace {

using Clock = std::chrono::steady_clock;

// A short-lived producer handle (a producer's metadata requests may auto-create topics, which
// the check-only path relies on) plus what its error callback reported.
struct Client {
  kafka::Client handle;
  rd_kafka_t* rk = nullptr;  // handle.get()
  bool all_down = false;
  std::string last_error;

  Client() = default;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Serves the error callback; true when every broker is down (unreachable).
  bool unreachable() {
    rd_kafka_poll(rk, 0);
    return all_down;
  }
};

void on_error(rd_kafka_t*, int code, const char* reason, void* opaque) {
  auto* c = static_cast<Client*>(opaque);
  if (code == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
    c->all_down = true;
  } else {
    c->last_error = reason;
  }
}

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return static_cast<int>(std::max<std::int64_t>(0, left.count()));
}

Error unreachable(const KafkaTopologyOptions& o, const std::string& why) {
  return make_error(Errc::unavailable,
                    fmt::format("cannot reach Kafka at {}: {}; start the broker (or `sagaflow "
                                "kafka-mock`) or point SAGAFLOW_KAFKA_BROKERS at it",
                                o.brokers, why));
}

std::string strip_thread(std::string reason) {
  // "[thrd:...]: 127.0.0.1:1/bootstrap: Connect to ... failed: Connection refused (after ...)"
  if (const auto p = reason.find(" (after "); p != std::string::npos) reason.erase(p);
  return reason;
}

// Waits for the first metadata answer: the broker ids, or an error.
Result<std::set<int>> connect(Client& c, const KafkaTopologyOptions& o,
                              Clock::time_point deadline) {
  for (;;) {
    const rd_kafka_metadata_t* md = nullptr;
    const int slice = std::min(500, std::max(1, remaining_ms(deadline)));
    const rd_kafka_resp_err_t err = rd_kafka_metadata(c.rk, 0, nullptr, &md, slice);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      std::set<int> ids;
      for (int i = 0; i < md->broker_cnt; ++i) ids.insert(md->brokers[i].id);
      rd_kafka_metadata_destroy(md);
      return ids;
    }
    if (c.unreachable())
      return unreachable(
          o, c.last_error.empty() ? "all brokers are down" : strip_thread(c.last_error));
    if (remaining_ms(deadline) == 0)
      return unreachable(o, fmt::format("no metadata answer within {} ms ({})", o.timeout_ms,
                                        rd_kafka_err2str(err)));
  }
}

enum class Created : std::uint8_t { done, cannot };

// CreateTopics. Created::cannot when the broker turned out unable to create topics.
Result<Created> create_topics(Client& c, const KafkaTopologyOptions& o,
                              const std::vector<std::string>& topics, KafkaTopologyReport& rep,
                              Clock::time_point deadline) {
  std::array<char, 512> err{};
  std::vector<rd_kafka_NewTopic_t*> news;
  auto free_news = [&] {
    for (auto* t : news) rd_kafka_NewTopic_destroy(t);
  };
  for (const std::string& t : topics) {
    rd_kafka_NewTopic_t* nt =
        rd_kafka_NewTopic_new(t.c_str(), o.partitions, o.replication, err.data(), err.size());
    if (nt == nullptr) {
      free_news();
      return make_error(Errc::invalid_config, fmt::format("topic '{}': {}", t, err.data()));
    }
    news.push_back(nt);
  }
  rd_kafka_AdminOptions_t* ao = rd_kafka_AdminOptions_new(c.rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
  const int budget = std::max(1, remaining_ms(deadline));
  rd_kafka_AdminOptions_set_request_timeout(ao, budget, err.data(), err.size());
  rd_kafka_AdminOptions_set_operation_timeout(ao, std::max(1, budget - 500), err.data(),
                                              err.size());
  rd_kafka_queue_t* q = rd_kafka_queue_new(c.rk);
  rd_kafka_CreateTopics(c.rk, news.data(), news.size(), ao, q);
  free_news();
  rd_kafka_AdminOptions_destroy(ao);

  rd_kafka_event_t* ev = nullptr;
  while (ev == nullptr) {
    ev = rd_kafka_queue_poll(q, std::min(200, std::max(1, remaining_ms(deadline))));
    if (ev != nullptr) break;
    if (c.unreachable()) {
      rd_kafka_queue_destroy(q);
      return unreachable(o, "all brokers went down while creating the topics");
    }
    if (remaining_ms(deadline) == 0) {
      rd_kafka_queue_destroy(q);
      return unreachable(o, fmt::format("no CreateTopics answer within {} ms", o.timeout_ms));
    }
  }
  Result<Created> out = Created::done;
  const rd_kafka_resp_err_t whole = rd_kafka_event_error(ev);
  if (whole == RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE || whole == RD_KAFKA_RESP_ERR__TIMED_OUT) {
    out = Created::cannot;  // no CreateTopics, or no controller to send it to
  } else if (whole != RD_KAFKA_RESP_ERR_NO_ERROR) {
    out = make_error(Errc::unavailable, fmt::format("Kafka at {}: CreateTopics failed: {}",
                                                    o.brokers, rd_kafka_event_error_string(ev)));
  } else {
    std::size_t n = 0;
    const rd_kafka_topic_result_t** results =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
    for (std::size_t i = 0; i < n && out.ok(); ++i) {
      const std::string name = rd_kafka_topic_result_name(results[i]);
      const rd_kafka_resp_err_t e = rd_kafka_topic_result_error(results[i]);
      const char* text = rd_kafka_topic_result_error_string(results[i]);
      const std::string why = text != nullptr ? text : rd_kafka_err2str(e);
      switch (e) {
        case RD_KAFKA_RESP_ERR_NO_ERROR:
          rep.created.push_back(name);
          break;
        case RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS:
          rep.existing.push_back(name);
          break;
        case RD_KAFKA_RESP_ERR_INVALID_REPLICATION_FACTOR:
          out = make_error(Errc::invalid_config,
                           fmt::format("Kafka at {} refused topic '{}': {}; set "
                                       "SAGAFLOW_KAFKA_REPLICATION to at most the broker count",
                                       o.brokers, name, why));
          break;
        case RD_KAFKA_RESP_ERR_INVALID_PARTITIONS:
          out = make_error(Errc::invalid_config,
                           fmt::format("Kafka at {} refused topic '{}': {}; check "
                                       "SAGAFLOW_KAFKA_PARTITIONS",
                                       o.brokers, name, why));
          break;
        case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
        case RD_KAFKA_RESP_ERR_NOT_CONTROLLER:
        case RD_KAFKA_RESP_ERR__TIMED_OUT:
          out = make_error(Errc::unavailable,
                           fmt::format("Kafka at {} did not create topic '{}' in time: {}; "
                                       "apply again",
                                       o.brokers, name, why));
          break;
        default:
          out = make_error(Errc::invalid_config,
                           fmt::format("Kafka at {} refused topic '{}': {}", o.brokers, name, why));
          break;
      }
    }
  }
  rd_kafka_event_destroy(ev);
  rd_kafka_queue_destroy(q);
  return out;
}

// For a broker that cannot create topics: every topic must show up in metadata (a producer's
// metadata request lets the broker auto-create it, if it allows that).
Status check_topics(Client& c, const KafkaTopologyOptions& o,
                    const std::vector<std::string>& topics, KafkaTopologyReport& rep,
                    Clock::time_point deadline) {
  std::vector<rd_kafka_topic_t*> handles;
  for (const std::string& t : topics)
    handles.push_back(rd_kafka_topic_new(c.rk, t.c_str(), nullptr));
  std::vector<std::string> missing = topics;
  std::string why;
  while (!missing.empty()) {
    const rd_kafka_metadata_t* md = nullptr;
    const int slice = std::min(500, std::max(1, remaining_ms(deadline)));
    if (rd_kafka_metadata(c.rk, 0, nullptr, &md, slice) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      for (int i = 0; i < md->topic_cnt; ++i) {
        const rd_kafka_metadata_topic_t& t = md->topics[i];
        auto it = std::find(missing.begin(), missing.end(), t.topic);
        if (it == missing.end()) continue;
        if (t.err == RD_KAFKA_RESP_ERR_NO_ERROR && t.partition_cnt > 0) {
          missing.erase(it);
        } else {
          why = rd_kafka_err2str(t.err);
        }
      }
      rd_kafka_metadata_destroy(md);
    }
    if (missing.empty() || remaining_ms(deadline) == 0 || c.unreachable()) break;
  }
  for (auto* h : handles) rd_kafka_topic_destroy(h);
  if (c.all_down) return unreachable(o, "all brokers went down while checking the topics");
  if (!missing.empty()) {
    std::string names;
    for (const auto& m : missing) names += (names.empty() ? "" : ", ") + m;
    return make_error(Errc::invalid_config,
                      fmt::format("Kafka at {} cannot create topics (no usable controller for "
                                  "CreateTopics, e.g. librdkafka's mock cluster) and {} missing "
                                  "({}); create them on the broker (`sagaflow kafka-mock` does)",
                                  o.brokers, names, why.empty() ? "not in metadata" : why));
  }
  for (const std::string& t : topics) rep.existing.push_back(t);
  rep.checked_only = true;
  return Status::success();
}

}  // namespace

std::vector<std::string> kafka_topics() {
  using namespace topology;
  return {std::string(kEventsTopic), std::string(kCommandsTopic), std::string(kDeadTopic),
          kafka_retry_topic(kSagaGroup), kafka_retry_topic(kParticipantsGroup)};
}

Status apply_kafka_topology(const KafkaTopologyOptions& o, KafkaTopologyReport* report) {
  if (o.partitions < 1)
    return make_error(Errc::invalid_config, fmt::format("partitions {} < 1", o.partitions));
  if (o.replication < 1)
    return make_error(Errc::invalid_config, fmt::format("replication {} < 1", o.replication));
  if (o.timeout_ms < 1)
    return make_error(Errc::invalid_config, fmt::format("timeout {} ms < 1", o.timeout_ms));
  KafkaTopologyReport local;
  KafkaTopologyReport& rep = report != nullptr ? *report : local;
  rep = KafkaTopologyReport{};
  const auto deadline = Clock::now() + std::chrono::milliseconds(o.timeout_ms);

  Client c;
  kafka::ClientConfig config;
  config.brokers = o.brokers;
  config.client_id = "sagaflow-topology";
  config.settings = {{"reconnect.backoff.ms", "100"}, {"reconnect.backoff.max.ms", "500"}};
  // No LogStyle: librdkafka's log lines are dropped; what matters reaches the error callback
  // and ends up in the returned Status.
  config.configure = [&c](rd_kafka_conf_t* conf) {
    rd_kafka_conf_set_opaque(conf, &c);
    rd_kafka_conf_set_error_cb(conf, &on_error);
  };
  auto handle = kafka::Client::open(RD_KAFKA_PRODUCER, config);
  if (!handle) return handle.error();
  c.handle = std::move(handle).value();
  c.rk = c.handle.get();

  auto brokers = connect(c, o, deadline);
  if (!brokers) return brokers.error();
  const std::vector<std::string> topics = kafka_topics();
  // librdkafka's mock cluster names controller 0, which is none of its brokers (1..N): a
  // CreateTopics would only wait for it until the timeout.
  const bool has_controller = brokers->count(rd_kafka_controllerid(c.rk, 0)) == 1;
  if (has_controller) {
    auto created = create_topics(c, o, topics, rep, deadline);
    if (!created) return created.error();
    if (*created == Created::done) return Status::success();
    rep = KafkaTopologyReport{};
  }
  return check_topics(c, o, topics, rep, deadline);
}

}  // namespace sagaflow
