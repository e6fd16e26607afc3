// KafkaMock: librdkafka's in-process mock cluster, listening on 127.0.0.1 ephemeral ports.
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <array>
#include <stdexcept>
#include <string>

#include "support/servers.hpp"

namespace sagaflow::testing {

KafkaMock::KafkaMock(int brokers) : brokers_(brokers) {
  if (brokers < 1) throw std::runtime_error("KafkaMock: brokers must be >= 1");
  // The mock cluster needs a client handle to live in (its broker threads belong to it); a
  // producer that has no bootstrap servers never connects anywhere.
  std::array<char, 512> err{};
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "client.id", "sagaflow-kafka-mock", err.data(), err.size());
  rd_kafka_conf_set(conf, "log_level", "3", err.data(), err.size());  // no "no bootstrap" notice
  handle_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err.data(), err.size());
  if (handle_ == nullptr) {
    rd_kafka_conf_destroy(conf);
    throw std::runtime_error(std::string("KafkaMock: rd_kafka_new: ") + err.data());
  }
  cluster_ = rd_kafka_mock_cluster_new(handle_, brokers);
  if (cluster_ == nullptr) {
    rd_kafka_destroy(handle_);
    throw std::runtime_error("KafkaMock: rd_kafka_mock_cluster_new failed");
  }
  bootstrap_ = rd_kafka_mock_cluster_bootstraps(cluster_);
}

KafkaMock::~KafkaMock() {
  rd_kafka_mock_cluster_destroy(cluster_);
  rd_kafka_destroy(handle_);
}

std::string KafkaMock::bootstrap() const {
  return bootstrap_;
}

rd_kafka_mock_cluster_s* KafkaMock::cluster() {
  return cluster_;
}

void KafkaMock::create_topic(const std::string& topic, int partitions) {
  const rd_kafka_resp_err_t err =
      rd_kafka_mock_topic_create(cluster_, topic.c_str(), partitions, brokers_ < 3 ? brokers_ : 3);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw std::runtime_error("KafkaMock: create topic " + topic + ": " + rd_kafka_err2str(err));
  }
}

}  // namespace sagaflow::testing
