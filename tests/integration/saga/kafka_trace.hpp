// Kafka side of the end-to-end saga tests: an observer that reads sagaflow.commands and
// sagaflow.events (every partition assigned from the beginning, no group) on a background
// thread and turns each record into the same `Observed` the AMQP observer yields, so one
// invariant checker (e2e.hpp) serves both brokers; and a blocking reader of a whole topic.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "e2e.hpp"

namespace sagaflow::e2e {

class KafkaObserver {
 public:
  KafkaObserver(std::string bootstrap, std::vector<std::string> topics);
  ~KafkaObserver();
  KafkaObserver(const KafkaObserver&) = delete;
  KafkaObserver& operator=(const KafkaObserver&) = delete;

  // Records so far. exchange = topic, routing_key = header "type", message_id and content_type
  // from their headers; delivery_mode = 2 (acks=all: Kafka has no non-persistent records).
  // Ordered by the records' CreateTime, then arrival: records of two topics arrive at the
  // observer in no particular order relative to each other, but their producers stamped them.
  std::vector<Observed> snapshot() const;
  std::size_t size() const;
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct KafkaRecord {
  int partition = 0;
  std::string key, value;
  std::map<std::string, std::string> headers;
};

// Every record of `topic` up to its current end (all partitions), read without a group.
std::vector<KafkaRecord> read_topic(const std::string& bootstrap, const std::string& topic);

}  // namespace sagaflow::e2e
