// The consumer's librdkafka configuration, made from KafkaSourceOptions.
#include <algorithm>
#include <string>

#include "consumers/kafka/source_impl.hpp"

namespace sagaflow::kafka_source {
namespace {

// Per partition, what librdkafka prefetches into the partition's own queue (a partition queue
// is not forwarded, so each has its own bound); a property of the same name overrides them.
constexpr const char* kQueuedMinMessages = "10000";
constexpr const char* kQueuedMaxKbytes = "4096";

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

}  // namespace

kafka::ClientConfig client_config(const KafkaSourceOptions& o, KafkaSource::Impl* impl) {
  kafka::ClientConfig c;
  c.brokers = o.brokers;
  c.client_id = o.name;
  c.settings = {
      {"group.id", o.group},
      {"enable.auto.offset.store", "false"},
      {"enable.auto.commit", "true"},
      {"auto.commit.interval.ms", std::to_string(std::max<std::int64_t>(1, o.commit_interval_ms))},
      {"session.timeout.ms", std::to_string(o.session_timeout_ms)},
      {"heartbeat.interval.ms",
       std::to_string(std::clamp<std::int64_t>(o.session_timeout_ms / 3, 100, 3000))},
      {"partition.assignment.strategy", "range,roundrobin"},
      {"auto.offset.reset", o.auto_offset_reset},
      {"enable.partition.eof", "false"},
      {"statistics.interval.ms", "1000"},
      {"queued.min.messages", kQueuedMinMessages},
      {"queued.max.messages.kbytes", kQueuedMaxKbytes},
  };
  c.overrides = o.properties;
  // librdkafka's errors (connection refused while a broker is down...) are warnings here:
  // what matters arrives through error_cb.
  c.logs = kafka::LogStyle{"component", "kafka_source", kafka::LogStyle::Levels::warn_or_debug};
  c.configure = [impl](rd_kafka_conf_t* conf) {
    rd_kafka_conf_set_opaque(conf, impl);
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_stats_cb(conf, stats_cb);
  };
  return c;
}

}  // namespace sagaflow::kafka_source
