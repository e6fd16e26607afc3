// KafkaSink against librdkafka's mock cluster: delivery reports under load, what lands in the
// topic (key, value, headers, partition per key), backpressure, broker down and back, a fatal
// idempotence error, stop draining.
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <uv.h>

#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "producers/kafka_sink.hpp"
#include "support/servers.hpp"
#include "support/uv_loop.hpp"
#include "topology/names.hpp"

using namespace sagaflow;
using namespace sagaflow::testing;
using namespace std::chrono_literals;

namespace {

constexpr std::int16_t kInitProducerIdApiKey = 22;  // Kafka protocol ApiKey

using Loop = sagaflow::testing::UvLoop;

struct Record {
  int partition = -1;
  std::optional<std::string> key;
  std::string value;
  std::map<std::string, std::string> headers;
};

// Reads `count` records of every partition of `topic` from the beginning (no consumer group).
std::vector<Record> read_topic(const std::string& bootstrap, const std::string& topic,
                               int partitions, std::size_t count) {
  std::array<char, 512> err{};
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap.c_str(), err.data(), err.size());
  rd_kafka_conf_set(conf, "group.id", "sagaflow-sink-test-reader", err.data(), err.size());
  rd_kafka_t* consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err.data(), err.size());
  REQUIRE(consumer != nullptr);
  rd_kafka_poll_set_consumer(consumer);
  rd_kafka_topic_partition_list_t* parts = rd_kafka_topic_partition_list_new(partitions);
  for (int p = 0; p < partitions; ++p)
    rd_kafka_topic_partition_list_add(parts, topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  REQUIRE(rd_kafka_assign(consumer, parts) == RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_topic_partition_list_destroy(parts);
  std::vector<Record> records;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (records.size() < count && std::chrono::steady_clock::now() < deadline) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer, 100);
    if (m == nullptr) continue;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      Record r;
      r.partition = m->partition;
      if (m->key != nullptr) r.key.emplace(static_cast<const char*>(m->key), m->key_len);
      r.value.assign(static_cast<const char*>(m->payload), m->len);
      rd_kafka_headers_t* hdrs = nullptr;
      if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char* name = nullptr;
        const void* value = nullptr;
        std::size_t size = 0;
        for (std::size_t i = 0;
             rd_kafka_header_get_all(hdrs, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
             ++i) {
          r.headers[name] = std::string(static_cast<const char*>(value), size);
        }
      }
      records.push_back(std::move(r));
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_consumer_close(consumer);
  rd_kafka_destroy(consumer);
  return records;
}

Message message(const std::string& topic, int n, std::string key = {}) {
  Message m;
  m.exchange = topic;
  m.routing_key = "order.created";
  m.key = std::move(key);
  m.message_id = "evt_" + std::to_string(n);
  m.body = R"({"id":"evt_)" + std::to_string(n) + R"(","type":"order.created"})";
  return m;
}

struct Outcomes {
  int ok = 0;
  int failed = 0;
  int unavailable = 0;
  std::string last_error;
  PublishCallback callback() {
    return [this](Status s) {
      if (s) {
        ok++;
        return;
      }
      failed++;
      if (s.error().code == Errc::unavailable) unavailable++;
      last_error = s.error().detail;
    };
  }
  int total() const { return ok + failed; }
};

void stop_sink(Loop& loop, KafkaSink& sink) {
  bool stopped = false;
  sink.stop([&] { stopped = true; });
  CHECK(loop.run_until([&] { return stopped; }, 10s));
}

}  // namespace

TEST_CASE("20k publishes are confirmed and land with key, value and headers intact",
          "[kafka][sink]") {
  // Given a mock cluster with a 4-partition topic and a connected sink
  KafkaMock kafka;
  const std::string topic = "sagaflow.test.sink";
  constexpr int kPartitions = 4;
  kafka.create_topic(topic, kPartitions);
  Loop loop;
  KafkaSinkOptions o;
  o.brokers = kafka.bootstrap();
  o.window = 1024;
  KafkaSink sink(loop.get(), o);
  sink.start();

  // When 20k messages are fed as fast as the window allows, keys ord_0..ord_99, a body with a
  // NUL and non-ASCII bytes, integer and text headers, and one message without a key
  constexpr int kCount = 20000;
  const std::string odd_body = std::string("{\"x\":\"caf\xc3\xa9\"}\0tail", 18);
  int sent = 0;
  Outcomes out;
  std::size_t max_unconfirmed = 0;
  std::function<void()> feed = [&] {
    while (sent < kCount && sink.can_publish()) {
      Message m = message(topic, sent, sent == 7 ? "" : "ord_" + std::to_string(sent % 100));
      if (sent == 42) m.body = odd_body;
      m.headers.push_back({std::string(topology::kHeaderAttempts), std::int64_t{sent % 5}});
      m.headers.push_back({std::string(topology::kHeaderOriginalRoute), std::string("orders")});
      sent++;
      sink.publish(std::move(m), out.callback());
      max_unconfirmed = std::max(max_unconfirmed, sink.unconfirmed());
    }
  };
  sink.on_writable(feed);
  const auto t0 = std::chrono::steady_clock::now();
  feed();
  REQUIRE(loop.run_until(
      [&] {
        feed();
        return out.total() == kCount;
      },
      40s));
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("kafka sink: %d confirmed in %.2f s (%.0f/s)\n", out.ok, secs, out.ok / secs);

  // Then every one was confirmed within the window, and the sink says it is connected
  CHECK(out.ok == kCount);
  CHECK(out.failed == 0);
  CHECK(max_unconfirmed <= o.window);
  CHECK(sink.connected());
  CHECK(sink.unconfirmed() == 0);
  stop_sink(loop, sink);

  // And a plain consumer reads back each message byte for byte with its key and headers
  const std::vector<Record> records =
      read_topic(kafka.bootstrap(), topic, kPartitions, static_cast<std::size_t>(kCount));
  REQUIRE(records.size() == static_cast<std::size_t>(kCount));
  std::map<std::string, std::set<int>> partitions_of_key;
  std::set<std::string> ids;
  int checked = 0;
  for (const Record& r : records) {
    const std::string id = r.headers.count("message_id") ? r.headers.at("message_id") : "";
    REQUIRE(id.rfind("evt_", 0) == 0);
    const int n = std::stoi(id.substr(4));
    ids.insert(id);
    CHECK(r.headers.at("type") == "order.created");
    CHECK(r.headers.at("content_type") == "application/json");
    CHECK(r.headers.at("x-sagaflow-attempts") == std::to_string(n % 5));
    CHECK(r.headers.at("x-sagaflow-original-route") == "orders");
    CHECK(r.headers.size() == 5);
    if (n == 7) {
      CHECK_FALSE(r.key.has_value());
    } else {
      REQUIRE(r.key.has_value());
      CHECK(*r.key == "ord_" + std::to_string(n % 100));
      partitions_of_key[*r.key].insert(r.partition);
    }
    CHECK(r.value == (n == 42 ? odd_body : message(topic, n).body));
    checked++;
  }
  CHECK(checked == kCount);
  CHECK(ids.size() == static_cast<std::size_t>(kCount));  // no duplicates (idempotent producer)
  // Same key, same partition; and the 100 keys spread over more than one partition
  std::set<int> used;
  for (const auto& [key, parts] : partitions_of_key) {
    INFO("key " << key);
    CHECK(parts.size() == 1);
    used.insert(*parts.begin());
  }
  CHECK(partitions_of_key.size() == 100);
  CHECK(used.size() > 1);
}

TEST_CASE("a full window turns can_publish off, queues more, and on_writable turns it back on",
          "[kafka][sink]") {
  // Given a sink with a window of 8 to a broker with 200 ms round trips
  KafkaMock kafka;
  kafka.create_topic("sagaflow.test.window", 2);
  REQUIRE(rd_kafka_mock_broker_set_rtt(kafka.cluster(), 1, 200) == RD_KAFKA_RESP_ERR_NO_ERROR);
  Loop loop;
  KafkaSinkOptions o;
  o.brokers = kafka.bootstrap();
  o.window = 8;
  KafkaSink sink(loop.get(), o);
  int writable = 0;
  sink.on_writable([&] { writable++; });
  sink.start();
  CHECK(sink.can_publish());

  // When 8 messages fill the window and 12 more are published anyway
  Outcomes out;
  for (int i = 0; i < 8; ++i) sink.publish(message("sagaflow.test.window", i, "k"), out.callback());
  const bool after_window = sink.can_publish();
  for (int i = 8; i < 20; ++i)
    sink.publish(message("sagaflow.test.window", i, "k"), out.callback());

  // Then can_publish is off, nothing was called back inside publish, all 20 are owed
  CHECK_FALSE(after_window);
  CHECK_FALSE(sink.can_publish());
  CHECK(out.total() == 0);
  CHECK(sink.unconfirmed() == 20);
  CHECK(writable == 0);

  // And when the broker answers, all 20 are confirmed and on_writable says to go on
  REQUIRE(loop.run_until([&] { return out.total() == 20; }, 20s));
  CHECK(out.ok == 20);
  CHECK(loop.run_until([&] { return writable > 0; }, 2s));
  CHECK(sink.can_publish());
  CHECK(sink.unconfirmed() == 0);
  stop_sink(loop, sink);
}

TEST_CASE(
    "broker down: publishes fail as unavailable and connected() goes false; back up: "
    "publishes succeed and connected() is true again",
    "[kafka][sink]") {
  // Given a connected sink with a short message timeout
  KafkaMock kafka;
  kafka.create_topic("sagaflow.test.down", 2);
  Loop loop;
  KafkaSinkOptions o;
  o.brokers = kafka.bootstrap();
  o.message_timeout_ms = 1500;
  KafkaSink sink(loop.get(), o);
  std::vector<bool> states;
  sink.on_state_change([&](bool up) { states.push_back(up); });
  int writable = 0;
  sink.on_writable([&] { writable++; });
  sink.start();
  Outcomes warmup;
  sink.publish(message("sagaflow.test.down", 0, "ord_1"), warmup.callback());
  REQUIRE(loop.run_until([&] { return warmup.total() == 1; }, 10s));
  REQUIRE(warmup.ok == 1);
  REQUIRE(sink.connected());
  REQUIRE(states == std::vector<bool>{true});

  // When the broker goes down and 5 messages are published right away
  REQUIRE(rd_kafka_mock_broker_set_down(kafka.cluster(), 1) == RD_KAFKA_RESP_ERR_NO_ERROR);
  Outcomes during;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 1; i <= 5; ++i)
    sink.publish(message("sagaflow.test.down", i, "ord_1"), during.callback());

  // Then connected() goes false and all 5 fail as unavailable (none confirmed)
  REQUIRE(loop.run_until([&] { return during.total() == 5 && !sink.connected(); }, 10s));
  const double waited =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("kafka sink: broker down noticed, 5 publishes failed after %.2f s (%s)\n", waited,
              during.last_error.c_str());
  CHECK(during.ok == 0);
  CHECK(during.unavailable == 5);
  CHECK(states == std::vector<bool>{true, false});
  CHECK_FALSE(sink.can_publish());

  // And a publish while it is known to be down fails at once (a later loop turn)
  Outcomes down;
  sink.publish(message("sagaflow.test.down", 6, "ord_1"), down.callback());
  CHECK(down.total() == 0);
  REQUIRE(loop.run_until([&] { return down.total() == 1; }, 1s));
  CHECK(down.unavailable == 1);

  // When the broker is back
  const int writable_before = writable;
  REQUIRE(rd_kafka_mock_broker_set_up(kafka.cluster(), 1) == RD_KAFKA_RESP_ERR_NO_ERROR);

  // Then connected() turns true, can_publish comes back with on_writable, publishes succeed
  REQUIRE(loop.run_until([&] { return sink.connected(); }, 15s));
  CHECK(states == std::vector<bool>{true, false, true});
  CHECK(sink.can_publish());
  CHECK(writable > writable_before);
  Outcomes after;
  for (int i = 7; i < 17; ++i)
    sink.publish(message("sagaflow.test.down", i, "ord_1"), after.callback());
  REQUIRE(loop.run_until([&] { return after.total() == 10; }, 15s));
  CHECK(after.ok == 10);
  stop_sink(loop, sink);
}

TEST_CASE("no broker at all: a publish fails as unavailable, later, not inside publish",
          "[kafka][sink]") {
  Loop loop;
  KafkaSinkOptions o;
  o.brokers = "127.0.0.1:" + std::to_string(free_port());
  o.message_timeout_ms = 2000;
  KafkaSink sink(loop.get(), o);
  sink.start();
  Outcomes out;
  sink.publish(message("sagaflow.events", 1, "ord_1"), out.callback());
  CHECK(out.total() == 0);
  REQUIRE(loop.run_until([&] { return out.total() == 1; }, 6s));
  CHECK(out.unavailable == 1);
  CHECK_FALSE(sink.connected());
  stop_sink(loop, sink);
}

TEST_CASE("a fatal idempotence error fails what was unconfirmed and a new producer takes over",
          "[kafka][sink]") {
  // Given a broker whose first InitProducerId answer is a fatal error for the idempotent
  // producer
  KafkaMock kafka;
  kafka.create_topic("sagaflow.test.fatal", 1);
  rd_kafka_mock_push_request_errors(kafka.cluster(), kInitProducerIdApiKey, 1,
                                    RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED);
  Loop loop;
  KafkaSinkOptions o;
  o.brokers = kafka.bootstrap();
  KafkaSink sink(loop.get(), o);
  sink.start();

  // When 3 messages are published
  Outcomes first;
  for (int i = 0; i < 3; ++i)
    sink.publish(message("sagaflow.test.fatal", i, "ord_1"), first.callback());

  // Then they fail as unavailable (not after the 30 s message timeout)
  REQUIRE(loop.run_until([&] { return first.total() == 3; }, 10s));
  CHECK(first.unavailable == 3);
  INFO(first.last_error);
  CHECK(first.last_error.find("fatal") != std::string::npos);

  // And publishing again succeeds on the recreated producer
  Outcomes again;
  for (int i = 0; i < 3; ++i)
    sink.publish(message("sagaflow.test.fatal", i, "ord_1"), again.callback());
  REQUIRE(loop.run_until([&] { return again.total() == 3; }, 10s));
  CHECK(again.ok == 3);
  stop_sink(loop, sink);
}

TEST_CASE("stop waits for outstanding delivery reports, then refuses new publishes",
          "[kafka][sink]") {
  KafkaMock kafka;
  kafka.create_topic("sagaflow.test.stop", 2);
  REQUIRE(rd_kafka_mock_broker_set_rtt(kafka.cluster(), 1, 100) == RD_KAFKA_RESP_ERR_NO_ERROR);
  Loop loop;
  KafkaSinkOptions o;
  o.brokers = kafka.bootstrap();
  KafkaSink sink(loop.get(), o);
  sink.start();
  // Given 200 publishes in flight
  Outcomes out;
  for (int i = 0; i < 200; ++i)
    sink.publish(message("sagaflow.test.stop", i, "ord_" + std::to_string(i)), out.callback());
  // When the sink is stopped at once
  bool stopped = false;
  int owed_at_stop = -1;
  sink.stop([&] {
    stopped = true;
    owed_at_stop = 200 - out.total();
  });
  // Then on_stopped comes after every report, all confirmed
  REQUIRE(loop.run_until([&] { return stopped; }, 10s));
  CHECK(owed_at_stop == 0);
  CHECK(out.ok == 200);
  // And a publish after stop fails as unavailable
  Outcomes late;
  sink.publish(message("sagaflow.test.stop", 0, "ord_0"), late.callback());
  REQUIRE(loop.run_until([&] { return late.total() == 1; }, 1s));
  CHECK(late.unavailable == 1);
}
