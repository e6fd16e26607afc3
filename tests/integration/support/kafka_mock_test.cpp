// Proves KafkaMock: a librdkafka producer and consumer talk to it like to a Kafka cluster.
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <array>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <set>
#include <string>

#include "support/servers.hpp"

using sagaflow::testing::KafkaMock;

namespace {

constexpr std::int16_t kProduceApiKey = 0;  // Kafka protocol ApiKey of Produce

rd_kafka_conf_t* config(const std::vector<std::pair<std::string, std::string>>& settings) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  std::array<char, 512> err{};
  for (const auto& [k, v] : settings) {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err.data(), err.size()) != RD_KAFKA_CONF_OK) {
      FAIL("config " << k << ": " << err.data());
    }
  }
  return conf;
}

void produce(const std::string& bootstrap, const std::string& topic, int count) {
  std::array<char, 512> err{};
  rd_kafka_t* producer =
      rd_kafka_new(RD_KAFKA_PRODUCER, config({{"bootstrap.servers", bootstrap}, {"acks", "all"}}),
                   err.data(), err.size());
  REQUIRE(producer != nullptr);
  rd_kafka_topic_t* handle = rd_kafka_topic_new(producer, topic.c_str(), nullptr);
  REQUIRE(handle != nullptr);
  for (int i = 0; i < count; ++i) {
    std::string key = "ord_" + std::to_string(i);
    std::string value = R"({"id":"evt_)" + std::to_string(i) + R"("})";
    REQUIRE(rd_kafka_produce(handle, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, value.data(),
                             value.size(), key.data(), key.size(), nullptr) == 0);
  }
  CHECK(rd_kafka_flush(producer, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR);
  CHECK(rd_kafka_outq_len(producer) == 0);
  rd_kafka_topic_destroy(handle);
  rd_kafka_destroy(producer);
}

std::set<std::string> consume(const std::string& bootstrap, const std::string& topic,
                              std::size_t count) {
  std::array<char, 512> err{};
  rd_kafka_t* consumer = rd_kafka_new(RD_KAFKA_CONSUMER,
                                      config({{"bootstrap.servers", bootstrap},
                                              {"group.id", "sagaflow-harness-test"},
                                              {"auto.offset.reset", "earliest"}}),
                                      err.data(), err.size());
  REQUIRE(consumer != nullptr);
  rd_kafka_poll_set_consumer(consumer);
  rd_kafka_topic_partition_list_t* topics = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(topics, topic.c_str(), RD_KAFKA_PARTITION_UA);
  REQUIRE(rd_kafka_subscribe(consumer, topics) == RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_topic_partition_list_destroy(topics);
  std::set<std::string> values;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (values.size() < count && std::chrono::steady_clock::now() < deadline) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer, 200);
    if (m == nullptr) continue;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      values.emplace(static_cast<const char*>(m->payload), m->len);
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_consumer_close(consumer);
  rd_kafka_destroy(consumer);
  return values;
}

}  // namespace

TEST_CASE("KafkaMock accepts 10 messages and gives them back to a consumer group") {
  // Given a mock cluster with a 3-partition topic
  KafkaMock kafka;
  REQUIRE(kafka.bootstrap().rfind("127.0.0.1:", 0) == 0);
  REQUIRE(kafka.cluster() != nullptr);
  kafka.create_topic("orders", 3);
  CHECK_THROWS(kafka.create_topic("orders", 3));
  // When 10 messages are produced
  produce(kafka.bootstrap(), "orders", 10);
  // Then a consumer reads all 10 back
  const auto values = consume(kafka.bootstrap(), "orders", 10);
  CHECK(values.size() == 10);
  CHECK(values.count(R"({"id":"evt_0"})") == 1);
  CHECK(values.count(R"({"id":"evt_9"})") == 1);
}

TEST_CASE("KafkaMock with 3 brokers lists them all and allows fault injection") {
  KafkaMock kafka(3);
  std::size_t commas = 0;
  for (char c : kafka.bootstrap()) commas += c == ',' ? 1 : 0;
  CHECK(commas == 2);
  kafka.create_topic("events", 6);
  // A broker going down and up again is accepted by the mock
  CHECK(rd_kafka_mock_broker_set_down(kafka.cluster(), 2) == RD_KAFKA_RESP_ERR_NO_ERROR);
  CHECK(rd_kafka_mock_broker_set_up(kafka.cluster(), 2) == RD_KAFKA_RESP_ERR_NO_ERROR);
  // A transient produce error is retried by the client transparently
  rd_kafka_mock_push_request_errors(kafka.cluster(), kProduceApiKey, 1,
                                    RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS);
  produce(kafka.bootstrap(), "events", 5);
  CHECK(consume(kafka.bootstrap(), "events", 5).size() == 5);
}
