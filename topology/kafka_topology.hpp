#pragma once
// `sagaflow topology apply` for Kafka: creates the topics of CONTRACT.md section 6
// (sagaflow.events, sagaflow.commands, sagaflow.dead) and the retry topic of each consumer
// group (topology::kafka_retry_topic: sagaflow.retry.sagaflow-saga,
// sagaflow.retry.sagaflow-participants) with the Admin API (CreateTopics). Synchronous (a
// short-lived client; for the CLI and tests, never on the worker's loop).
//
// Idempotent: a topic that exists already is left as it is (whatever its partition count).
// A broker that cannot create topics (no usable controller: librdkafka's mock cluster) is
// only checked: a metadata request for the topics, which such a broker answers by
// auto-creating them if it allows that (`sagaflow kafka-mock` creates them up front); the
// report says so.
// Errors (one line): unavailable (no broker reachable within the timeout, or all brokers
// down), invalid_config (bad options, the broker refused a topic, e.g. a replication factor
// above the broker count).
#include <string>
#include <vector>

#include "core/result.hpp"

namespace sagaflow {

struct KafkaTopologyOptions {
  std::string brokers = "127.0.0.1:9092";  // bootstrap.servers
  int partitions = 8;                      // partitions of each topic created
  int replication = 1;                     // replication factor of each topic created
  int timeout_ms = 10000;                  // the whole apply, at most
};

struct KafkaTopologyReport {
  std::vector<std::string> created;   // created by this apply
  std::vector<std::string> existing;  // there already
  bool checked_only = false;          // the broker cannot create topics: existence was checked
};

// The topics `apply` manages, in order.
std::vector<std::string> kafka_topics();

Status apply_kafka_topology(const KafkaTopologyOptions& options,
                            KafkaTopologyReport* report = nullptr);

}  // namespace sagaflow
