// sagaflow dlq list / replay and status on Kafka (CONTRACT.md sections 1, 6), black box through
// the sagaflow binary against a librdkafka mock cluster in this process: list leaves the
// position of group sagaflow-dlq-replay alone; replay re-publishes value, key and headers
// (minus x-sagaflow-*) to the original topic and commits only what it replayed.
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <array>
#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "integration/store/loop.hpp"
#include "store/dead_letters.hpp"
#include "support/raw_http.hpp"
#include "support/servers.hpp"

using namespace std::chrono_literals;
using sagaflow::testing::KafkaMock;
using sagaflow::testing::Process;

namespace {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct Record {
  std::int32_t partition = 0;
  std::optional<std::string> key;
  std::string value;
  Headers headers;
};

rd_kafka_conf_t* config(const std::vector<std::pair<std::string, std::string>>& settings) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  std::array<char, 512> err{};
  for (const auto& [k, v] : settings) {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err.data(), err.size()) != RD_KAFKA_CONF_OK)
      FAIL("config " << k << ": " << err.data());
  }
  return conf;
}

// Produces each record to its partition of `topic` and waits until all are acknowledged.
void produce(const std::string& bootstrap, const std::string& topic,
             const std::vector<Record>& records) {
  std::array<char, 512> err{};
  rd_kafka_t* p =
      rd_kafka_new(RD_KAFKA_PRODUCER, config({{"bootstrap.servers", bootstrap}, {"acks", "all"}}),
                   err.data(), err.size());
  REQUIRE(p != nullptr);
  for (const Record& r : records) {
    rd_kafka_headers_t* hdrs = rd_kafka_headers_new(r.headers.size());
    for (const auto& [name, value] : r.headers) {
      rd_kafka_header_add(hdrs, name.data(), static_cast<ssize_t>(name.size()), value.data(),
                          static_cast<ssize_t>(value.size()));
    }
    std::array<rd_kafka_vu_t, 6> vus{};
    std::size_t n = 0;
    vus[n].vtype = RD_KAFKA_VTYPE_TOPIC;
    vus[n++].u.cstr = topic.c_str();
    vus[n].vtype = RD_KAFKA_VTYPE_PARTITION;
    vus[n++].u.i32 = r.partition;
    vus[n].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
    vus[n++].u.i = RD_KAFKA_MSG_F_COPY;
    vus[n].vtype = RD_KAFKA_VTYPE_VALUE;
    vus[n].u.mem.ptr = const_cast<char*>(r.value.data());
    vus[n++].u.mem.size = r.value.size();
    if (r.key) {
      vus[n].vtype = RD_KAFKA_VTYPE_KEY;
      vus[n].u.mem.ptr = const_cast<char*>(r.key->data());
      vus[n++].u.mem.size = r.key->size();
    }
    vus[n].vtype = RD_KAFKA_VTYPE_HEADERS;
    vus[n++].u.headers = hdrs;
    rd_kafka_error_t* e = rd_kafka_produceva(p, vus.data(), n);
    if (e != nullptr) {
      const std::string what = rd_kafka_error_string(e);
      rd_kafka_error_destroy(e);
      rd_kafka_headers_destroy(hdrs);
      rd_kafka_destroy(p);
      FAIL("produce: " << what);
    }
  }
  CHECK(rd_kafka_flush(p, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR);
  CHECK(rd_kafka_outq_len(p) == 0);
  rd_kafka_destroy(p);
}

// Everything in `topic` right now: each partition read from the beginning to its end.
std::vector<Record> read_all(const std::string& bootstrap, const std::string& topic,
                             int partitions) {
  std::array<char, 512> err{};
  rd_kafka_t* c = rd_kafka_new(RD_KAFKA_CONSUMER,
                               config({{"bootstrap.servers", bootstrap},
                                       {"group.id", "dlq-kafka-test-reader"},
                                       {"enable.auto.commit", "false"},
                                       {"enable.partition.eof", "true"}}),
                               err.data(), err.size());
  REQUIRE(c != nullptr);
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(partitions);
  for (int p = 0; p < partitions; ++p)
    rd_kafka_topic_partition_list_add(list, topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  REQUIRE(rd_kafka_assign(c, list) == RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_topic_partition_list_destroy(list);
  std::vector<Record> out;
  std::set<std::int32_t> ended;
  const auto deadline = std::chrono::steady_clock::now() + 15s;
  while (ended.size() < static_cast<std::size_t>(partitions) &&
         std::chrono::steady_clock::now() < deadline) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(c, 200);
    if (m == nullptr) continue;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      ended.insert(m->partition);
    } else if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
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
          r.headers.emplace_back(name, std::string(static_cast<const char*>(value), size));
        }
      }
      out.push_back(std::move(r));
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_destroy(c);
  REQUIRE(ended.size() == static_cast<std::size_t>(partitions));
  return out;
}

Headers without_sagaflow_headers(const Headers& h) {
  Headers out;
  for (const auto& kv : h) {
    if (kv.first.rfind("x-sagaflow-", 0) != 0) out.push_back(kv);
  }
  return out;
}

std::size_t count_lines(const std::string& s) {
  std::size_t n = 0;
  for (char ch : s) n += ch == '\n' ? 1 : 0;
  return n;
}

// The environment of a sagaflow command on this Kafka mock and Redis.
std::vector<std::pair<std::string, std::string>> kafka_env(
    const KafkaMock& kafka, const sagaflow::testing::RedisServer& redis) {
  return {{"SAGAFLOW_BROKER", "kafka"},
          {"SAGAFLOW_KAFKA_BROKERS", kafka.bootstrap()},
          {"SAGAFLOW_REDIS_URL", redis.url()},
          {"SAGAFLOW_METRICS_ADDR", "0"}};
}

struct Run {
  int code = -1;
  std::string out;
  std::string err;
  std::chrono::milliseconds took{};
};

Run run(const std::vector<std::pair<std::string, std::string>>& env,
        std::vector<std::string> args) {
  std::vector<std::string> argv{sagaflow::testing::sagaflow_binary()};
  for (auto& a : args) argv.push_back(std::move(a));
  const auto start = std::chrono::steady_clock::now();
  Process p(argv, env);
  const auto code = p.wait_for(30s);
  REQUIRE(code.has_value());
  return Run{*code, p.read_stdout(), p.read_stderr(),
             std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::steady_clock::now() - start)};
}

// "dead_letter_depth":N from `sagaflow status --json`.
long long status_depth(const std::vector<std::pair<std::string, std::string>>& env) {
  const Run r = run(env, {"status", "--json"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  const std::string key = "\"dead_letter_depth\":";
  const auto at = r.out.find(key);
  REQUIRE(at != std::string::npos);
  return std::stoll(r.out.substr(at + key.size()));
}

Record dead_letter(std::int32_t partition, std::optional<std::string> key, std::string value,
                   const std::string& type, const std::string& id, const std::string& reason,
                   const std::string& attempts, std::optional<std::string> route) {
  Record r;
  r.partition = partition;
  r.key = std::move(key);
  r.value = std::move(value);
  r.headers = {{"type", type},
               {"message_id", id},
               {"content_type", "application/json"},
               {"x-sagaflow-error", reason},
               {"x-sagaflow-detail", "detail of " + id},
               {"x-sagaflow-attempts", attempts}};
  if (route) r.headers.emplace_back("x-sagaflow-original-route", *route);
  return r;
}

}  // namespace

TEST_CASE("dlq on Kafka: list keeps the position, replay re-publishes and commits, status counts",
          "[dlq][kafka]") {
  KafkaMock kafka;
  kafka.create_topic("sagaflow.events", 3);
  kafka.create_topic("sagaflow.commands", 2);
  kafka.create_topic("sagaflow.dead", 3);
  auto& redis = sagaflow::testing::shared_redis();
  const auto env = kafka_env(kafka, redis);

  // Given no dead letter yet: depth 0, list prints nothing, replay replays nothing
  CHECK(status_depth(env) == 0);
  {
    const Run empty = run(env, {"dlq", "list"});
    INFO(empty.err);
    CHECK(empty.code == 0);
    CHECK(empty.out.empty());
  }

  // Given five dead letters as a worker writes them, spread over the partitions of sagaflow.dead
  const std::vector<Record> dead = {
      dead_letter(0, "o_k1",
                  R"({"id":"k1","type":"order.created","store_id":"s","data":{"order_id":"o_k1",)"
                  R"("customer_id":"c","total":"5.00","currency":"EUR",)"
                  R"("items":[{"sku":"a","qty":1,"price":"5.00"}]}})",
                  "order.created", "k1", "retries_exhausted", "8", "sagaflow.events"),
      dead_letter(0, "o_k2",
                  R"({"id":"k2","type":"inventory.reserved","data":{"order_id":"o_k2",)"
                  R"("reservation_id":"r"}})",
                  "inventory.reserved", "k2", "unknown_saga", "1", "sagaflow.retry.sagaflow-saga"),
      dead_letter(1, std::nullopt, std::string("{\"id\":\"k3\", not json \x01\x02 \xc3\xa9"), "",
                  "k3", "malformed_json", "1", "sagaflow.events"),
      dead_letter(2, "o_k4",
                  R"({"id":"o_k4:payment.charge","type":"payment.charge","saga_id":"x",)"
                  R"("data":{"order_id":"o_k4","amount":"1.00","currency":"EUR",)"
                  R"("customer_id":"c"}})",
                  "payment.charge", "o_k4:payment.charge", "retries_exhausted", "8",
                  "sagaflow.retry.sagaflow-participants"),
      dead_letter(2, "o_k5",
                  R"({"id":"k5","type":"payment.failed","data":{"order_id":"o_k5","reason":"x"}})",
                  "payment.failed", "k5", "unknown_saga", "1", std::nullopt),
  };
  produce(kafka.bootstrap(), "sagaflow.dead", dead);
  CHECK(status_depth(env) == 5);

  // When listed: one JSON line each, in partition order, and the depth stays 5
  {
    const Run list = run(env, {"dlq", "list"});
    INFO(list.err);
    CHECK(list.code == 0);
    CHECK(count_lines(list.out) == 5);
    const auto k1 = list.out.find(R"("message_id":"k1")");
    const auto k2 = list.out.find(R"("message_id":"k2")");
    const auto k4 = list.out.find(R"("message_id":"o_k4:payment.charge")");
    CHECK(k1 != std::string::npos);
    CHECK(k2 != std::string::npos);
    CHECK(k4 != std::string::npos);
    CHECK(k1 < k2);
    CHECK(k2 < k4);
    CHECK_THAT(list.out, Catch::Contains(R"({"reason":"retries_exhausted","detail":"detail of k1",)"
                                         R"("attempts":"8","route":"sagaflow.events",)"
                                         R"("message_id":"k1","body":"{\"id\":\"k1\",)"));
    CHECK_THAT(list.out, Catch::Contains(R"("reason":"malformed_json")"));
    CHECK_THAT(list.out, Catch::Contains(R"("route":"sagaflow.retry.sagaflow-saga")"));
  }
  {
    const Run two = run(env, {"dlq", "list", "--limit", "2"});
    CHECK(two.code == 0);
    CHECK(count_lines(two.out) == 2);
    CHECK_THAT(two.out, Catch::Contains(R"("message_id":"k1")"));
    CHECK_THAT(two.out, Catch::Contains(R"("message_id":"k2")"));
  }
  CHECK(status_depth(env) == 5);
  CHECK(read_all(kafka.bootstrap(), "sagaflow.events", 3).empty());

  // When replayed with --limit 2: exactly the first two (partition 0) go back to
  // sagaflow.events, value, key and headers byte for byte, without the x-sagaflow-* headers
  {
    const Run r = run(env, {"dlq", "replay", "--limit", "2"});
    INFO(r.err);
    CHECK(r.code == 0);
    CHECK_THAT(r.err, Catch::Contains("2 dead-lettered message(s) replayed"));
  }
  auto events = read_all(kafka.bootstrap(), "sagaflow.events", 3);
  REQUIRE(events.size() == 2);
  std::map<std::string, Record> by_value;
  for (auto& e : events) by_value.emplace(e.value, e);
  for (std::size_t i : {0u, 1u}) {
    INFO("dead letter " << i);
    REQUIRE(by_value.count(dead[i].value) == 1);
    const Record& back = by_value.at(dead[i].value);
    CHECK(back.key == dead[i].key);
    CHECK(back.headers == without_sagaflow_headers(dead[i].headers));
  }
  CHECK(status_depth(env) == 3);
  CHECK(read_all(kafka.bootstrap(), "sagaflow.commands", 2).empty());

  // When replayed again: the other three, each to its route (a participants' retry topic to
  // sagaflow.commands, no route to sagaflow.events), nothing twice
  {
    const Run r = run(env, {"dlq", "replay"});
    INFO(r.err);
    CHECK(r.code == 0);
    CHECK_THAT(r.err, Catch::Contains("3 dead-lettered message(s) replayed"));
  }
  events = read_all(kafka.bootstrap(), "sagaflow.events", 3);
  REQUIRE(events.size() == 4);
  by_value.clear();
  for (auto& e : events) by_value.emplace(e.value, e);
  for (std::size_t i : {2u, 4u}) {
    INFO("dead letter " << i);
    REQUIRE(by_value.count(dead[i].value) == 1);
    CHECK(by_value.at(dead[i].value).key == dead[i].key);
    CHECK(by_value.at(dead[i].value).headers == without_sagaflow_headers(dead[i].headers));
  }
  const auto commands = read_all(kafka.bootstrap(), "sagaflow.commands", 2);
  REQUIRE(commands.size() == 1);
  CHECK(commands[0].value == dead[3].value);
  CHECK(commands[0].key == dead[3].key);
  CHECK(status_depth(env) == 0);

  // When there is nothing left: replay replays nothing, list lists nothing
  {
    const Run r = run(env, {"dlq", "replay"});
    CHECK(r.code == 0);
    CHECK_THAT(r.err, Catch::Contains("0 dead-lettered message(s) replayed"));
    CHECK(run(env, {"dlq", "list"}).out.empty());
  }
  CHECK(read_all(kafka.bootstrap(), "sagaflow.events", 3).size() == 4);

  // A new dead letter after a replay is counted and listed from the committed position
  produce(kafka.bootstrap(), "sagaflow.dead",
          {dead_letter(1, "o_k6", R"({"id":"k6","type":"order.cancelled","data":{"order_id":"o"}})",
                       "order.cancelled", "k6", "unknown_saga", "1", "sagaflow.events")});
  CHECK(status_depth(env) == 1);
  {
    const Run list = run(env, {"dlq", "list"});
    CHECK(list.code == 0);
    CHECK(count_lines(list.out) == 1);
    CHECK_THAT(list.out, Catch::Contains(R"("message_id":"k6")"));
  }
}

TEST_CASE("dlq on Kafka: an unreachable broker is one line on stderr and exit code 1",
          "[dlq][kafka]") {
  const std::vector<std::pair<std::string, std::string>> env = {
      {"SAGAFLOW_BROKER", "kafka"},
      {"SAGAFLOW_KAFKA_BROKERS", "127.0.0.1:" + std::to_string(sagaflow::testing::free_port())},
      {"SAGAFLOW_METRICS_ADDR", "0"}};
  for (const char* sub : {"list", "replay"}) {
    INFO("dlq " << sub);
    const Run r = run(env, {"dlq", sub});
    INFO(r.err);
    CHECK(r.code == 1);
    CHECK(r.out.empty());
    CHECK(count_lines(r.err) == 1);
    CHECK_THAT(r.err, Catch::Contains("Kafka"));
    CHECK(r.took < 12s);
  }
}

TEST_CASE("dlq replay on Kafka: a commit that fails after the publish re-publishes, never loses",
          "[dlq][kafka]") {
  constexpr std::int16_t kOffsetCommitApiKey = 8;  // Kafka protocol ApiKey of OffsetCommit
  KafkaMock kafka;
  kafka.create_topic("sagaflow.events", 2);
  kafka.create_topic("sagaflow.dead", 1);
  const std::vector<std::pair<std::string, std::string>> env = {
      {"SAGAFLOW_BROKER", "kafka"},
      {"SAGAFLOW_KAFKA_BROKERS", kafka.bootstrap()},
      {"SAGAFLOW_METRICS_ADDR", "0"}};
  const Record letter =
      dead_letter(0, "o_c1", R"({"id":"c1","type":"order.cancelled","data":{"order_id":"o_c1"}})",
                  "order.cancelled", "c1", "unknown_saga", "1", "sagaflow.events");
  produce(kafka.bootstrap(), "sagaflow.dead", {letter});

  // Given the broker refuses the next offset commit (not retriable)
  rd_kafka_mock_push_request_errors(kafka.cluster(), kOffsetCommitApiKey, 1,
                                    RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED);
  // When replayed: the event is published, the commit fails, exit 1 with one line
  {
    const Run r = run(env, {"dlq", "replay"});
    INFO(r.err);
    CHECK(r.code == 1);
    CHECK(count_lines(r.err) == 1);
    CHECK_THAT(r.err, Catch::Contains("commit"));
  }
  CHECK(read_all(kafka.bootstrap(), "sagaflow.events", 2).size() == 1);
  // Then the dead letter is still there, and the next replay publishes it again (same id)
  CHECK(count_lines(run(env, {"dlq", "list"}).out) == 1);
  {
    const Run r = run(env, {"dlq", "replay"});
    INFO(r.err);
    CHECK(r.code == 0);
  }
  const auto events = read_all(kafka.bootstrap(), "sagaflow.events", 2);
  REQUIRE(events.size() == 2);
  for (const Record& e : events) {
    CHECK(e.value == letter.value);
    CHECK(e.headers == without_sagaflow_headers(letter.headers));
  }
  CHECK(run(env, {"dlq", "list"}).out.empty());
}

TEST_CASE("the console's replay on Kafka: by reason, skipped ones keep the group's position",
          "[dlq][kafka][console]") {
  KafkaMock kafka;
  kafka.create_topic("sagaflow.events", 1);
  kafka.create_topic("sagaflow.commands", 1);
  kafka.create_topic("sagaflow.dead", 2);
  sagaflow::testing::RedisServer redis;
  const int port = sagaflow::testing::free_port();
  auto env = kafka_env(kafka, redis);
  env.emplace_back("SAGAFLOW_CONSOLE_ADDR", "127.0.0.1:" + std::to_string(port));
  auto with_id = [](Record r, const std::string& id) {
    r.headers.emplace_back("x-sagaflow-dead-letter-id", id);
    return r;
  };
  // Partition 0: a (unknown_saga), b (retries_exhausted), c (unknown_saga); partition 1: d
  const std::vector<Record> dead = {
      with_id(dead_letter(0, "o_a",
                          R"({"id":"a","type":"inventory.reserved","data":{"order_id":"o_a"}})",
                          "inventory.reserved", "a", "unknown_saga", "1", "sagaflow.events"),
              "dl-a"),
      with_id(
          dead_letter(0, "o_b", R"({"id":"b","type":"order.created","data":{"order_id":"o_b"}})",
                      "order.created", "b", "retries_exhausted", "8", "sagaflow.events"),
          "dl-b"),
      with_id(
          dead_letter(0, "o_c", R"({"id":"c","type":"payment.failed","data":{"order_id":"o_c"}})",
                      "payment.failed", "c", "unknown_saga", "1", "sagaflow.events"),
          "dl-c"),
      with_id(
          dead_letter(1, "o_d", R"({"id":"d","type":"shipment.created","data":{"order_id":"o_d"}})",
                      "shipment.created", "d", "unknown_saga", "1", "sagaflow.events"),
          "dl-d"),
  };
  produce(kafka.bootstrap(), "sagaflow.dead", dead);
  CHECK(status_depth(env) == 4);
  // As the worker that dead-lettered them would have: in the console's index
  {
    sagaflow::store::test::Loop loop;
    auto client =
        sagaflow::store::test::connected_client(loop, sagaflow::store::test::client_options(redis));
    sagaflow::store::DeadLetterIndex index(*client);
    for (const Record& r : dead) {
      sagaflow::store::DeadLetterEntry e;
      for (const auto& [k, v] : r.headers) {
        if (k == "x-sagaflow-dead-letter-id") e.id = v;
        if (k == "x-sagaflow-error") e.reason = v;
      }
      e.at = 1;
      auto added = loop.await<bool>([&](auto cb) {
        index.add(e, [cb](sagaflow::Status st) {
          cb(st ? sagaflow::Result<bool>(true) : sagaflow::Result<bool>(st.error()));
        });
      });
      REQUIRE(added.ok());
    }
  }

  Process console({sagaflow::testing::sagaflow_binary(), "console"}, env);
  const std::string host = "Host: 127.0.0.1:" + std::to_string(port) + "\r\n";
  auto call = [&](const std::string& head, const std::string& body = {}) {
    sagaflow::testing::RawConn c(port);
    REQUIRE(c.send(
        head + host + "Connection: close\r\n" +
        (body.empty() ? std::string() : "Content-Length: " + std::to_string(body.size()) + "\r\n") +
        "\r\n" + body));
    return c.read_answer(60s);
  };
  REQUIRE(sagaflow::testing::wait_until_answers(port));
  const sagaflow::testing::RawAnswer page = call("GET / HTTP/1.1\r\n");
  REQUIRE(page.status == 200);
  const auto meta = page.body.find(R"(<meta name="csrf-token" content=")");
  REQUIRE(meta != std::string::npos);
  const std::string csrf = "X-CSRF-Token: " + page.body.substr(meta + 33, 32) + "\r\n";

  // By reason: a, c and d go back; b is skipped, so partition 0 stays committed only past a
  auto replayed =
      call("POST /api/dead-letters/replay HTTP/1.1\r\n" + csrf, R"({"reason":"unknown_saga"})");
  CHECK(replayed.status == 200);
  CHECK(replayed.body == R"({"replayed":3})");
  auto events = read_all(kafka.bootstrap(), "sagaflow.events", 1);
  std::multiset<std::string> values;
  for (const auto& e : events) values.insert(e.value);
  CHECK(values == std::multiset<std::string>{dead[0].value, dead[2].value, dead[3].value});
  CHECK(status_depth(env) == 2);  // b and c, after the committed position of partition 0

  // By id: b only
  auto by_id = call("POST /api/dead-letters/replay HTTP/1.1\r\n" + csrf, R"({"ids":["dl-b"]})");
  CHECK(by_id.status == 200);
  CHECK(by_id.body == R"({"replayed":1})");
  // An id no longer pending: 404, nothing published
  auto gone = call("POST /api/dead-letters/replay HTTP/1.1\r\n" + csrf, R"({"ids":["dl-a"]})");
  CHECK(gone.status == 404);
  events = read_all(kafka.bootstrap(), "sagaflow.events", 1);
  CHECK(events.size() == 4);
  CHECK(status_depth(env) == 1);  // b was next after the position: committed past it; c remains
  // The rest by the CLI: c again (same id, deduplicated downstream), never lost
  const Run rest = run(env, {"dlq", "replay"});
  INFO(rest.err);
  CHECK(rest.code == 0);
  CHECK(status_depth(env) == 0);
  values.clear();
  for (const auto& e : read_all(kafka.bootstrap(), "sagaflow.events", 1)) values.insert(e.value);
  CHECK(values.count(dead[1].value) == 1);
  CHECK(values.count(dead[2].value) == 2);
  CHECK(values.count(dead[0].value) == 1);
  CHECK(values.count(dead[3].value) == 1);
  console.signal(SIGTERM);
  CHECK(console.wait_for(10s) == 0);
}

TEST_CASE("dlq replay on Kafka: a dead letter kept without its body is passed, not replayed",
          "[dlq][kafka]") {
  KafkaMock kafka;
  kafka.create_topic("sagaflow.events", 1);
  kafka.create_topic("sagaflow.commands", 1);
  kafka.create_topic("sagaflow.dead", 1);
  auto& redis = sagaflow::testing::shared_redis();
  const auto env = kafka_env(kafka, redis);
  Record bodyless =
      dead_letter(0, "o_big", "", "order.created", "big", "too_large", "1", "sagaflow.events");
  bodyless.headers.emplace_back("x-sagaflow-body-size", "2000000");
  bodyless.headers.emplace_back("x-sagaflow-body-sha256", std::string(64, 'a'));
  const Record normal =
      dead_letter(0, "o_n", R"({"id":"n","type":"order.cancelled","data":{"order_id":"o_n"}})",
                  "order.cancelled", "n", "unknown_saga", "1", "sagaflow.events");
  produce(kafka.bootstrap(), "sagaflow.dead", {bodyless, normal});
  CHECK(status_depth(env) == 2);
  const Run r = run(env, {"dlq", "replay"});
  INFO(r.err);
  CHECK(r.code == 0);
  CHECK_THAT(r.err, Catch::Contains("1 dead-lettered message(s) replayed"));
  CHECK_THAT(r.err, Catch::Contains("not replayable"));
  const auto events = read_all(kafka.bootstrap(), "sagaflow.events", 1);
  REQUIRE(events.size() == 1);  // an empty event never goes back to the saga
  CHECK(events[0].value == normal.value);
  CHECK(status_depth(env) == 0);  // passed: it stays in the topic, behind the group's position
}
