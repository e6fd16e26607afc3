// apply_kafka_topology against librdkafka's mock cluster: idempotent, every topic there
// afterwards (seen by a separate client's metadata), and a quick one-line error when no broker
// listens.
#include <librdkafka/rdkafka.h>

#include <array>
#include <catch2/catch.hpp>
#include <chrono>
#include <map>
#include <string>

#include "support/servers.hpp"
#include "topology/kafka_topology.hpp"
#include "topology/names.hpp"

using namespace sagaflow;
using namespace sagaflow::testing;
using namespace std::chrono_literals;

namespace {

// Partition count of each topic the cluster knows (an all-topics request creates none).
std::map<std::string, int> cluster_topics(const std::string& bootstrap) {
  std::array<char, 512> err{};
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap.c_str(), err.data(), err.size());
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err.data(), err.size());
  REQUIRE(rk != nullptr);
  const rd_kafka_metadata_t* md = nullptr;
  REQUIRE(rd_kafka_metadata(rk, 1, nullptr, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR);
  std::map<std::string, int> topics;
  for (int i = 0; i < md->topic_cnt; ++i) {
    if (md->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR)
      topics[md->topics[i].topic] = md->topics[i].partition_cnt;
  }
  rd_kafka_metadata_destroy(md);
  rd_kafka_destroy(rk);
  return topics;
}

}  // namespace

TEST_CASE("the Kafka topology names the contract's topics and both retry topics",
          "[kafka][topology]") {
  const auto topics = kafka_topics();
  REQUIRE(topics.size() == 5);
  CHECK(topics[0] == "sagaflow.events");
  CHECK(topics[1] == "sagaflow.commands");
  CHECK(topics[2] == "sagaflow.dead");
  CHECK(topics[3] == "sagaflow.retry.sagaflow-saga");
  CHECK(topics[4] == "sagaflow.retry.sagaflow-participants");
}

TEST_CASE("applying the Kafka topology twice succeeds and every topic exists",
          "[kafka][topology]") {
  // Given a fresh mock cluster with none of the topics
  KafkaMock kafka;
  for (const auto& t : kafka_topics()) CHECK(cluster_topics(kafka.bootstrap()).count(t) == 0);
  KafkaTopologyOptions o;
  o.brokers = kafka.bootstrap();
  o.partitions = 3;

  // When the topology is applied twice
  KafkaTopologyReport first;
  const Status s1 = apply_kafka_topology(o, &first);
  INFO((s1 ? std::string("ok") : s1.error().detail));
  REQUIRE(s1.ok());
  KafkaTopologyReport second;
  const Status s2 = apply_kafka_topology(o, &second);
  REQUIRE(s2.ok());

  // Then both succeed, the second finds everything there already, and a separate client sees
  // every topic with partitions
  CHECK(first.created.size() + first.existing.size() == 5);
  CHECK(second.created.empty());
  CHECK(second.existing.size() == 5);
  // librdkafka 2.0's mock has no usable controller for CreateTopics: apply only checks (and the
  // mock auto-creates on the metadata request). A broker with CreateTopics creates them.
  std::printf("kafka topology on the mock: %s, created %zu, existing %zu\n",
              first.checked_only ? "checked only" : "created", first.created.size(),
              first.existing.size());
  const auto topics = cluster_topics(kafka.bootstrap());
  for (const auto& t : kafka_topics()) {
    INFO("topic " << t);
    REQUIRE(topics.count(t) == 1);
    CHECK(topics.at(t) >= 1);
    if (!first.checked_only) CHECK(topics.at(t) == 3);
  }
}

TEST_CASE("topics created up front (as sagaflow kafka-mock does) keep their partitions",
          "[kafka][topology]") {
  KafkaMock kafka;
  for (const auto& t : kafka_topics()) kafka.create_topic(t, 8);
  KafkaTopologyOptions o;
  o.brokers = kafka.bootstrap();
  KafkaTopologyReport report;
  REQUIRE(apply_kafka_topology(o, &report).ok());
  CHECK(report.existing.size() == 5);
  const auto topics = cluster_topics(kafka.bootstrap());
  for (const auto& t : kafka_topics()) CHECK(topics.at(t) == 8);
}

TEST_CASE("no broker listening: apply fails quickly with one line saying what to do",
          "[kafka][topology]") {
  // Given a port where nothing listens
  KafkaTopologyOptions o;
  o.brokers = "127.0.0.1:" + std::to_string(free_port());
  // When the topology is applied
  const auto t0 = std::chrono::steady_clock::now();
  const Status s = apply_kafka_topology(o);
  const auto took = std::chrono::steady_clock::now() - t0;
  // Then it fails as unavailable well within 10 s, naming the address and the remedy
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().code == Errc::unavailable);
  CHECK(took < 10s);
  INFO(s.error().detail);
  CHECK(s.error().detail.find(o.brokers) != std::string::npos);
  CHECK(s.error().detail.find("SAGAFLOW_KAFKA_BROKERS") != std::string::npos);
  CHECK(s.error().detail.find('\n') == std::string::npos);
  std::printf("kafka topology, no broker: %s (%.1f s)\n", s.error().detail.c_str(),
              std::chrono::duration<double>(took).count());
}

TEST_CASE("bad options are refused before any connection", "[kafka][topology]") {
  KafkaTopologyOptions o;
  o.brokers = "127.0.0.1:1";
  o.partitions = 0;
  const Status s = apply_kafka_topology(o);
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().code == Errc::invalid_config);
}
