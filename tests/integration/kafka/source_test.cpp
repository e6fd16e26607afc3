// KafkaSource on librdkafka's mock cluster (a real Kafka-protocol broker with group
// coordination): committed offsets never pass unsettled work, unsettled records come back to
// the group's next consumer, retry through the retry topic with growing delays then a
// dead letter with its headers and the value intact, malformed input dead-lettered at once,
// pause / resume, and two consumers of one group sharing then taking over the partitions.
//
// Input is produced with a plain librdkafka producer (explicit partitions, so each record's
// offset is known); committed offsets and dead letters are read with plain clients too, so
// nothing here trusts the code under test to report on itself.
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <uv.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "consumers/kafka_source.hpp"
#include "core/log.hpp"
#include "producers/kafka_sink.hpp"
#include "support/servers.hpp"
#include "support/uv_loop.hpp"
#include "topology/names.hpp"

using namespace sagaflow;
using namespace sagaflow::testing;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

using Loop = sagaflow::testing::UvLoop;

// One mock cluster for the whole file (each test uses its own topics and group).
KafkaMock& mock() {
  static KafkaMock m(1);
  return m;
}

rd_kafka_t* plain_client(rd_kafka_type_t type, const std::string& group = {}) {
  std::array<char, 512> err{};
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  auto set = [&](const char* k, const std::string& v) {
    if (rd_kafka_conf_set(conf, k, v.c_str(), err.data(), err.size()) != RD_KAFKA_CONF_OK)
      throw std::runtime_error(std::string("conf ") + k + ": " + err.data());
  };
  set("bootstrap.servers", mock().bootstrap());
  set("log_level", "3");
  if (!group.empty()) set("group.id", group);
  if (type == RD_KAFKA_PRODUCER) set("enable.idempotence", "true");
  if (type == RD_KAFKA_CONSUMER) set("enable.auto.commit", "false");
  rd_kafka_t* rk = rd_kafka_new(type, conf, err.data(), err.size());
  if (rk == nullptr) throw std::runtime_error(std::string("rd_kafka_new: ") + err.data());
  return rk;
}

struct Input {
  std::int32_t partition;
  std::string value;
  std::string message_id;
  std::string key;
  std::vector<std::pair<std::string, std::string>> headers = {};
};
struct Placed {
  std::int32_t partition = -1;
  std::int64_t offset = -1;
};

// Produces every record to its partition (in order, acks=all) and returns where each landed.
std::vector<Placed> produce(const std::string& topic, const std::vector<Input>& in) {
  std::array<char, 512> err{};
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", mock().bootstrap().c_str(), err.data(), err.size());
  rd_kafka_conf_set(conf, "enable.idempotence", "true", err.data(), err.size());
  rd_kafka_conf_set(conf, "log_level", "3", err.data(), err.size());
  rd_kafka_conf_set_dr_msg_cb(conf, [](rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
    auto* out = static_cast<std::vector<Placed>*>(opaque);
    const auto i = reinterpret_cast<std::uintptr_t>(m->_private);
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) (*out)[i] = Placed{m->partition, m->offset};
  });
  std::vector<Placed> out(in.size());
  rd_kafka_conf_set_opaque(conf, &out);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err.data(), err.size());
  REQUIRE(rk != nullptr);
  for (std::size_t i = 0; i < in.size(); ++i) {
    const Input& r = in[i];
    std::array<rd_kafka_vu_t, 16> vu{};
    REQUIRE(r.headers.size() <= 8);
    vu[0].vtype = RD_KAFKA_VTYPE_TOPIC;
    vu[0].u.cstr = topic.c_str();
    vu[1].vtype = RD_KAFKA_VTYPE_PARTITION;
    vu[1].u.i32 = r.partition;
    vu[2].vtype = RD_KAFKA_VTYPE_VALUE;
    vu[2].u.mem = {const_cast<char*>(r.value.data()), r.value.size()};
    vu[3].vtype = RD_KAFKA_VTYPE_KEY;
    vu[3].u.mem = {const_cast<char*>(r.key.data()), r.key.size()};
    vu[4].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
    vu[4].u.i = RD_KAFKA_MSG_F_COPY;
    vu[5].vtype = RD_KAFKA_VTYPE_HEADER;
    vu[5].u.header = {"message_id", r.message_id.data(), static_cast<ssize_t>(r.message_id.size())};
    vu[6].vtype = RD_KAFKA_VTYPE_HEADER;
    vu[6].u.header = {"type", "order.created", -1};
    vu[7].vtype = RD_KAFKA_VTYPE_OPAQUE;
    vu[7].u.ptr = reinterpret_cast<void*>(static_cast<std::uintptr_t>(i));
    for (std::size_t h = 0; h < r.headers.size(); ++h) {
      vu[8 + h].vtype = RD_KAFKA_VTYPE_HEADER;
      vu[8 + h].u.header = {r.headers[h].first.c_str(), r.headers[h].second.data(),
                            static_cast<ssize_t>(r.headers[h].second.size())};
    }
    rd_kafka_error_t* e = rd_kafka_produceva(rk, vu.data(), 8 + r.headers.size());
    if (e != nullptr) FAIL(rd_kafka_error_string(e));
    rd_kafka_poll(rk, 0);
  }
  REQUIRE(rd_kafka_flush(rk, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_destroy(rk);
  for (const auto& p : out) REQUIRE(p.offset >= 0);
  return out;
}

// The group's committed offsets (-1001 = none yet), read by a client outside the group.
std::vector<std::int64_t> committed(rd_kafka_t* side, const std::string& topic, int partitions) {
  rd_kafka_topic_partition_list_t* l = rd_kafka_topic_partition_list_new(partitions);
  for (int p = 0; p < partitions; ++p) rd_kafka_topic_partition_list_add(l, topic.c_str(), p);
  std::vector<std::int64_t> out(static_cast<std::size_t>(partitions), -2);
  if (rd_kafka_committed(side, l, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    for (int i = 0; i < l->cnt; ++i)
      out[static_cast<std::size_t>(l->elems[i].partition)] = l->elems[i].offset;
  }
  rd_kafka_topic_partition_list_destroy(l);
  return out;
}

std::int64_t high_watermark(rd_kafka_t* rk, const std::string& topic, int partition) {
  std::int64_t lo = 0, hi = 0;
  REQUIRE(rd_kafka_query_watermark_offsets(rk, topic.c_str(), partition, &lo, &hi, 5000) ==
          RD_KAFKA_RESP_ERR_NO_ERROR);
  return hi;
}

struct Record {
  std::int32_t partition = 0;
  std::string key;
  std::string value;
  std::map<std::string, std::string> headers;
};

// Reads `topic` from the beginning (no group) until `count` records or the timeout.
std::vector<Record> read_topic(const std::string& topic, int partitions, std::size_t count,
                               std::chrono::milliseconds timeout = 10s) {
  rd_kafka_t* rk = plain_client(RD_KAFKA_CONSUMER, "reader-" + topic);
  rd_kafka_topic_partition_list_t* l = rd_kafka_topic_partition_list_new(partitions);
  for (int p = 0; p < partitions; ++p)
    rd_kafka_topic_partition_list_add(l, topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  rd_kafka_assign(rk, l);
  rd_kafka_topic_partition_list_destroy(l);
  std::vector<Record> out;
  const auto deadline = Clock::now() + timeout;
  while (out.size() < count && Clock::now() < deadline) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 100);
    if (m == nullptr) continue;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      Record r;
      r.partition = m->partition;
      if (m->key != nullptr) r.key.assign(static_cast<const char*>(m->key), m->key_len);
      if (m->payload != nullptr) r.value.assign(static_cast<const char*>(m->payload), m->len);
      rd_kafka_headers_t* h = nullptr;
      if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char* name;
        const void* v;
        std::size_t n;
        for (std::size_t i = 0; rd_kafka_header_get_all(h, i, &name, &v, &n) == 0; ++i)
          r.headers[name] = v != nullptr ? std::string(static_cast<const char*>(v), n) : "";
      }
      out.push_back(std::move(r));
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  return out;
}

std::string header(const Record& r, const std::string& k) {
  auto it = r.headers.find(k);
  return it == r.headers.end() ? "<missing>" : it->second;
}

KafkaSourceOptions source_options(const std::string& group, const std::string& topic) {
  KafkaSourceOptions o;
  o.brokers = mock().bootstrap();
  o.group = group;
  o.topics = {topic};
  o.name = group;
  o.session_timeout_ms = 4000;  // the mock needs > 3 s (its first-join delay)
  o.commit_interval_ms = 100;
  o.drain_timeout_ms = 3000;
  o.republish_delay_ms = 200;
  o.retry.max_attempts = 4;
  o.retry.base_ms = 100;  // retries wait [50,100], [100,200], [200,400] ms
  o.retry.cap_ms = 800;
  o.jitter_seed = 42;
  o.properties = {{"fetch.wait.max.ms", "20"}, {"log_level", "3"}};
  if (const char* dbg = std::getenv("KAFKA_SOURCE_TEST_DEBUG")) {  // e.g. "cgrp,consumer"
    log::set_level(log::Level::debug);
    o.properties = {{"fetch.wait.max.ms", "20"}, {"log_level", "7"}, {"debug", dbg}};
  }
  return o;
}

// The sink for the source's copies, started and stopped with the test.
struct Copies {
  explicit Copies(Loop& loop) : loop_(loop), sink(loop.get(), sink_options()) { sink.start(); }
  ~Copies() {
    bool stopped = false;
    sink.stop([&] { stopped = true; });
    loop_.run_until([&] { return stopped; }, 5s);
  }
  static KafkaSinkOptions sink_options() {
    KafkaSinkOptions o;
    o.brokers = mock().bootstrap();
    o.name = "copies";
    o.properties = {{"log_level", "3"}};
    return o;
  }
  Loop& loop_;
  KafkaSink sink;
};

void stop_and_wait(Loop& loop, KafkaSource& source, std::chrono::milliseconds timeout = 10s) {
  bool stopped = false;
  source.stop([&] { stopped = true; });
  REQUIRE(loop.run_until([&] { return stopped; }, timeout));
}

}  // namespace

TEST_CASE("offsets are committed only over settled records, out-of-order settles included",
          "[kafka][source]") {
  const std::string topic = "t1.events", group = "g1";
  constexpr int kParts = 4, kN = 400;
  mock().create_topic(topic, kParts);
  mock().create_topic(topology::kafka_retry_topic(group), 1);
  std::vector<Input> in;
  for (int i = 0; i < kN; ++i)
    in.push_back({i % kParts, "v" + std::to_string(i), "evt_" + std::to_string(i), "k"});
  const std::vector<Placed> placed = produce(topic, in);
  std::map<std::string, Placed> where;
  for (int i = 0; i < kN; ++i) where["v" + std::to_string(i)] = placed[static_cast<std::size_t>(i)];

  Loop loop;
  Copies copies(loop);
  KafkaSourceOptions o = source_options(group, topic);
  o.max_in_flight = 64;
  KafkaSource source(loop.get(), o, copies.sink);

  // Given a handler that settles each record after a random delay (0..40 ms), except two
  // stragglers (partition 0 offset 10, partition 2 offset 5) that it holds back
  struct Pending {
    std::uint64_t tag;
    std::string value;
    Clock::time_point due;
  };
  std::vector<Pending> pending;
  std::set<std::pair<std::int32_t, std::int64_t>> settled;
  std::set<std::string> seen;
  std::mt19937 rng(7);
  bool release_stragglers = false;
  auto is_straggler = [&](const std::string& v) {
    const Placed p = where[v];
    return (p.partition == 0 && p.offset == 10) || (p.partition == 2 && p.offset == 5);
  };
  source.start([&](const Delivery& d) {
    CHECK(d.routing_key == topic);
    CHECK(d.attempt == 1);
    const std::string v(d.body);
    CHECK(d.message_id == "evt_" + v.substr(1));
    seen.insert(v);
    pending.push_back({d.tag, v, Clock::now() + std::chrono::milliseconds(rng() % 40)});
  });
  Loop::Every settler(loop.get(), 2ms, [&] {
    std::shuffle(pending.begin(), pending.end(), rng);
    const auto now = Clock::now();
    for (auto it = pending.begin(); it != pending.end();) {
      if (it->due <= now && (release_stragglers || !is_straggler(it->value))) {
        settled.insert({where[it->value].partition, where[it->value].offset});
        source.settle(it->tag, Verdict::ack());
        it = pending.erase(it);
      } else {
        ++it;
      }
    }
  });
  // And a client outside the group that reads the committed offsets every 100 ms
  rd_kafka_t* side = plain_client(RD_KAFKA_CONSUMER, group);
  int checks = 0, violations = 0;
  std::vector<std::int64_t> last(kParts, -1001);
  Loop::Every checker(loop.get(), 100ms, [&] {
    last = committed(side, topic, kParts);
    checks++;
    for (int p = 0; p < kParts; ++p) {
      for (std::int64_t off = 0; off < last[static_cast<std::size_t>(p)]; ++off) {
        if (!settled.count({p, off})) violations++;
      }
    }
  });

  // When everything but the stragglers is settled
  REQUIRE(loop.run_until([&] { return seen.size() == kN && pending.size() == 2; }, 30s));
  loop.run_for(600ms);  // several auto-commit intervals
  // Then the committed offsets stop at the stragglers and reach the end elsewhere
  CHECK(last[0] == 10);
  CHECK(last[1] == kN / kParts);
  CHECK(last[2] == 5);
  CHECK(last[3] == kN / kParts);
  CHECK(source.in_flight() == 2);

  // When the stragglers are settled too
  release_stragglers = true;
  // Then every partition's committed offset reaches its high watermark
  std::vector<std::int64_t> hw;
  for (int p = 0; p < kParts; ++p) hw.push_back(high_watermark(side, topic, p));
  REQUIRE(loop.run_until([&] { return last == hw; }, 10s));
  std::printf("commits: %d checks, %d violations, %llu offset stores for %d records\n", checks,
              violations, static_cast<unsigned long long>(source.stats().offsets_stored), kN);
  CHECK(violations == 0);
  CHECK(checks >= 5);
  CHECK(source.stats().delivered == kN);
  CHECK(source.stats().acked == kN);
  CHECK(source.stats().offsets_stored < kN);  // batched per loop turn
  stop_and_wait(loop, source);
  rd_kafka_destroy(side);
}

namespace {

// A first source acks every third record and leaves the others unsettled, then goes away
// (stop() whose drain times out, or its destructor); a second source of the same group must
// get every record the first did not settle.
void unsettled_come_back(const std::string& topic, const std::string& group, bool destroy) {
  constexpr int kParts = 2, kN = 40;
  mock().create_topic(topic, kParts);
  mock().create_topic(topology::kafka_retry_topic(group), 1);
  std::vector<Input> in;
  for (int i = 0; i < kN; ++i)
    in.push_back({i % kParts, "v" + std::to_string(i), "evt_" + std::to_string(i), ""});
  produce(topic, in);

  Loop loop;
  Copies copies(loop);
  std::set<std::string> acked;
  {
    // Given a source that acks every third record and leaves the others unsettled
    KafkaSourceOptions o = source_options(group, topic);
    o.drain_timeout_ms = 300;
    KafkaSource a(loop.get(), o, copies.sink);
    int n = 0;
    a.start([&](const Delivery& d) {
      if (n++ % 3 == 0) {
        acked.insert(std::string(d.body));
        a.settle(d.tag, Verdict::ack());
      }
    });
    REQUIRE(loop.run_until([&] { return n == kN; }, 20s));
    loop.run_for(300ms);
    CHECK(a.in_flight() == kN - acked.size());
    // When it stops (the drain times out) or is simply destroyed
    if (!destroy) {
      const auto t0 = Clock::now();
      stop_and_wait(loop, a);
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
      std::printf("stop with unsettled deliveries took %lld ms\n",
                  static_cast<long long>(ms.count()));
      CHECK(ms < 3000ms);
    }
  }
  REQUIRE(acked.size() == (kN + 2) / 3);

  // And a new source of the same group starts
  KafkaSource b(loop.get(), source_options(group, topic), copies.sink);
  std::set<std::string> again;
  b.start([&](const Delivery& d) {
    again.insert(std::string(d.body));
    b.settle(d.tag, Verdict::ack());
  });
  // Then it gets every record the first one did not settle (nothing lost)
  REQUIRE(loop.run_until(
      [&] {
        for (int i = 0; i < kN; ++i) {
          const std::string v = "v" + std::to_string(i);
          if (!acked.count(v) && !again.count(v)) return false;
        }
        return true;
      },
      20s));
  loop.run_for(300ms);
  std::printf("second consumer got %zu records (%zu were unsettled)\n", again.size(),
              kN - acked.size());
  CHECK(again.size() >= kN - acked.size());
  CHECK(again.size() < kN);  // but not those below the committed offset
  stop_and_wait(loop, b);
  rd_kafka_t* side = plain_client(RD_KAFKA_CONSUMER, group);
  const auto c = committed(side, topic, kParts);
  CHECK(c[0] == kN / kParts);
  CHECK(c[1] == kN / kParts);
  rd_kafka_destroy(side);
}

}  // namespace

TEST_CASE("records not settled when a source stops go to the group's next consumer",
          "[kafka][source]") {
  unsettled_come_back("t2a.events", "g2a", false);
}

TEST_CASE("records not settled when a source is destroyed go to the group's next consumer",
          "[kafka][source]") {
  unsettled_come_back("t2b.events", "g2b", true);
}

TEST_CASE("a content failure is retried with growing delays, then dead-lettered intact",
          "[kafka][source]") {
  const std::string topic = "t3.events", group = "g3", dead = "t3.dead";
  mock().create_topic(topic, 2);
  mock().create_topic(topology::kafka_retry_topic(group), 2);
  mock().create_topic(dead, 1);
  // Given an event whose value has multi-byte UTF-8, escapes and a NUL byte
  const std::string body =
      std::string(
          "{\"id\":\"evt_r1\",\"type\":\"order.created\",\"note\":\"caf\xc3\xa9 "
          "\\u00e9 \\\"q\\\"\"}") +
      std::string(1, '\0') + "tail";
  produce(topic, {{1, body, "evt_r1", "ord_1"}});

  Loop loop;
  Copies copies(loop);
  KafkaSourceOptions o = source_options(group, topic);
  o.dead_letter_topic = dead;
  KafkaSource source(loop.get(), o, copies.sink);
  struct Got {
    std::string body, route, message_id;
    int attempt;
    Clock::time_point at;
  };
  std::vector<Got> got;
  // When the handler asks for a retry on every delivery (max 4 attempts)
  source.start([&](const Delivery& d) {
    got.push_back({std::string(d.body), std::string(d.routing_key), std::string(d.message_id),
                   d.attempt, Clock::now()});
    source.settle(d.tag, Verdict::retry(Errc::rejected, "saga record unreadable\nsecond line"));
  });
  REQUIRE(loop.run_until(
      [&] { return source.stats().dead_lettered == 1 && source.in_flight() == 0; }, 30s));

  // Then it was delivered 4 times, attempts 1..4, value, route and id unchanged, delays growing
  REQUIRE(got.size() == 4);
  for (std::size_t i = 0; i < 4; ++i) {
    CHECK(got[i].attempt == static_cast<int>(i) + 1);
    CHECK(got[i].body == body);
    CHECK(got[i].route == topic);
    CHECK(got[i].message_id == "evt_r1");
  }
  auto gap = [&](std::size_t i) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(got[i + 1].at - got[i].at).count();
  };
  std::printf("retry gaps: %lld ms, %lld ms, %lld ms\n", static_cast<long long>(gap(0)),
              static_cast<long long>(gap(1)), static_cast<long long>(gap(2)));
  CHECK(gap(0) >= 45);   // [50, 100] ms
  CHECK(gap(1) >= 95);   // [100, 200] ms
  CHECK(gap(2) >= 195);  // [200, 400] ms
  CHECK(gap(2) < 1500);  // held in memory, handed over when due (not on some slow poll)

  // And the dead letter carries the four headers, the key and the value byte for byte
  auto records = read_topic(dead, 1, 1);
  REQUIRE(records.size() == 1);
  const Record& r = records[0];
  CHECK(r.value == body);
  CHECK(r.key == "ord_1");
  CHECK(header(r, "x-sagaflow-error") == "retries_exhausted");
  CHECK(header(r, "x-sagaflow-attempts") == "4");
  CHECK(header(r, "x-sagaflow-original-route") == topic);
  const std::string detail = header(r, "x-sagaflow-detail");
  INFO(detail);
  CHECK(detail.find("rejected after 4 attempts: saga record unreadable") == 0);
  CHECK(detail.find('\n') == std::string::npos);
  CHECK(header(r, "message_id") == "evt_r1");
  CHECK(header(r, "type") == "order.created");
  CHECK(r.headers.count("x-sagaflow-not-before") == 0);

  // And the three retry copies went through the retry topic, each committed once handled
  rd_kafka_t* side = plain_client(RD_KAFKA_CONSUMER, group);
  const std::int64_t retries = high_watermark(side, topology::kafka_retry_topic(group), 0) +
                               high_watermark(side, topology::kafka_retry_topic(group), 1);
  CHECK(retries == 3);
  CHECK(source.stats().retried == 3);
  loop.run_for(300ms);
  stop_and_wait(loop, source);
  const auto c = committed(side, topic, 2);
  CHECK(c[1] == 1);
  const auto cr = committed(side, topology::kafka_retry_topic(group), 2);
  CHECK(std::max<std::int64_t>(cr[0], 0) + std::max<std::int64_t>(cr[1], 0) == 3);
  rd_kafka_destroy(side);
}

TEST_CASE("malformed input is dead-lettered at once, never retried", "[kafka][source]") {
  const std::string topic = "t4.events", group = "g4", dead = "t4.dead";
  mock().create_topic(topic, 1);
  mock().create_topic(topology::kafka_retry_topic(group), 1);
  mock().create_topic(dead, 1);
  const std::string body = "{not json \xff\xfe";
  produce(topic, {{0, body, "", "ord_9"}});

  Loop loop;
  Copies copies(loop);
  KafkaSourceOptions o = source_options(group, topic);
  o.dead_letter_topic = dead;
  o.retry.max_attempts = 8;
  KafkaSource source(loop.get(), o, copies.sink);
  int deliveries = 0;
  source.start([&](const Delivery& d) {
    deliveries++;
    source.settle(d.tag, Verdict::dead_letter(Errc::malformed_json, "not JSON at byte 1"));
  });
  REQUIRE(loop.run_until(
      [&] { return source.stats().dead_lettered == 1 && source.in_flight() == 0; }, 20s));
  loop.run_for(300ms);
  stop_and_wait(loop, source);

  CHECK(deliveries == 1);
  auto records = read_topic(dead, 1, 1);
  REQUIRE(records.size() == 1);
  CHECK(records[0].value == body);
  CHECK(header(records[0], "x-sagaflow-error") == "malformed_json");
  CHECK(header(records[0], "x-sagaflow-detail") == "not JSON at byte 1");
  CHECK(header(records[0], "x-sagaflow-attempts") == "1");
  CHECK(header(records[0], "x-sagaflow-original-route") == topic);
  rd_kafka_t* side = plain_client(RD_KAFKA_CONSUMER, group);
  CHECK(high_watermark(side, topology::kafka_retry_topic(group), 0) == 0);
  CHECK(committed(side, topic, 1)[0] == 1);
  rd_kafka_destroy(side);
}

TEST_CASE("pause holds deliveries back until resume", "[kafka][source]") {
  const std::string topic = "t5.events", group = "g5";
  constexpr int kN = 40;
  mock().create_topic(topic, 2);
  mock().create_topic(topology::kafka_retry_topic(group), 1);
  std::vector<Input> in;
  for (int i = 0; i < kN; ++i)
    in.push_back({i % 2, "v" + std::to_string(i), "evt_" + std::to_string(i), ""});
  produce(topic, in);

  Loop loop;
  Copies copies(loop);
  KafkaSource source(loop.get(), source_options(group, topic), copies.sink);
  std::vector<std::string> got;
  source.start([&](const Delivery& d) {
    got.emplace_back(d.body);
    source.settle(d.tag, Verdict::ack());
    if (got.size() == 5) source.pause();
  });
  REQUIRE(loop.run_until([&] { return got.size() == 5; }, 20s));
  loop.run_for(500ms);
  CHECK(got.size() == 5);
  CHECK(source.paused());
  source.resume();
  CHECK_FALSE(source.paused());
  REQUIRE(loop.run_until([&] { return got.size() == kN; }, 10s));
  loop.run_for(200ms);
  CHECK(got.size() == kN);
  CHECK(std::set<std::string>(got.begin(), got.end()).size() == kN);
  // Per partition, in order
  std::map<int, int> last_of;
  for (const auto& v : got) {
    const int i = std::stoi(v.substr(1));
    auto [it, fresh] = last_of.try_emplace(i % 2, i);
    if (!fresh) {
      CHECK(i > it->second);
      it->second = i;
    }
  }
  stop_and_wait(loop, source);
}

TEST_CASE("two sources of one group share the partitions; one stops, the other takes over",
          "[kafka][source]") {
  const std::string topic = "t6.events", group = "g6";
  constexpr int kParts = 4, kN = 600;
  mock().create_topic(topic, kParts);
  mock().create_topic(topology::kafka_retry_topic(group), 2);
  std::vector<Input> in;
  for (int i = 0; i < kN; ++i)
    in.push_back({i % kParts, "v" + std::to_string(i), "evt_" + std::to_string(i), ""});
  produce(topic, in);

  Loop loop;
  Copies copies(loop);
  std::set<std::string> unique;
  std::size_t deliveries = 0;
  // Given two sources that each settle at most 2 records every 10 ms
  struct Worker {
    std::unique_ptr<KafkaSource> source;
    std::vector<std::uint64_t> pending;
    std::size_t got = 0;
  };
  std::array<Worker, 2> w;
  std::vector<bool> states;
  for (int i = 0; i < 2; ++i) {
    KafkaSourceOptions o = source_options(group, topic);
    o.name = "w" + std::to_string(i);
    o.max_in_flight = 16;
    w[static_cast<std::size_t>(i)].source =
        std::make_unique<KafkaSource>(loop.get(), o, copies.sink);
  }
  w[0].source->on_state_change([&](bool up) { states.push_back(up); });
  for (auto& x : w) {
    Worker* me = &x;
    x.source->start([&, me](const Delivery& d) {
      me->got++;
      deliveries++;
      unique.insert(std::string(d.body));
      me->pending.push_back(d.tag);
    });
  }
  Loop::Every settler(loop.get(), 10ms, [&] {
    for (auto& x : w) {
      if (!x.source) continue;
      const std::size_t n = std::min<std::size_t>(2, x.pending.size());
      for (std::size_t i = 0; i < n; ++i) x.source->settle(x.pending[i], Verdict::ack());
      x.pending.erase(x.pending.begin(), x.pending.begin() + static_cast<std::ptrdiff_t>(n));
    }
  });

  // When both have worked for a while
  REQUIRE(loop.run_until([&] { return w[0].got >= 40 && w[1].got >= 40; }, 20s));
  CHECK(unique.size() < kN);
  CHECK(w[0].source->connected());
  CHECK(states == std::vector<bool>{true});
  // And the first one stops (its unsettled records are abandoned)
  const std::size_t first_got = w[0].got;
  {
    KafkaSource& a = *w[0].source;
    bool stopped = false;
    a.stop([&] { stopped = true; });
    REQUIRE(loop.run_until([&] { return stopped; }, 10s));
    CHECK_FALSE(a.connected());
  }
  w[0].pending.clear();
  w[0].source.reset();

  // Then the second one takes over its partitions and every record is processed
  const bool all = loop.run_until([&] { return unique.size() == kN; }, 60s);
  INFO("unique " << unique.size() << " of " << kN << ", w1 got " << w[1].got << ", in flight "
                 << w[1].source->in_flight() << ", pending " << w[1].pending.size()
                 << ", rebalances " << w[1].source->stats().rebalances << ", largest span "
                 << w[1].source->stats().largest_span);
  REQUIRE(all);
  loop.run_for(200ms);
  std::printf("takeover: %zu deliveries for %zu records (w0 %zu, w1 %zu), w1 rebalances %llu\n",
              deliveries, unique.size(), first_got, w[1].got,
              static_cast<unsigned long long>(w[1].source->stats().rebalances));
  CHECK(unique.size() == kN);
  CHECK(w[1].source->stats().rebalances >= 2);
  CHECK(states == std::vector<bool>{true, false});
  REQUIRE(
      loop.run_until([&] { return w[1].pending.empty() && w[1].source->in_flight() == 0; }, 10s));
  stop_and_wait(loop, *w[1].source);
  rd_kafka_t* side = plain_client(RD_KAFKA_CONSUMER, group);
  const auto c = committed(side, topic, kParts);
  for (int p = 0; p < kParts; ++p) CHECK(c[static_cast<std::size_t>(p)] == kN / kParts);
  rd_kafka_destroy(side);
}

TEST_CASE("a retry record not yet due is held without blocking anything else", "[kafka][source]") {
  const std::string topic = "t7.events", group = "g7";
  const std::string retry = topology::kafka_retry_topic(group);
  mock().create_topic(topic, 2);
  mock().create_topic(retry, 1);
  Loop loop;
  Copies copies(loop);
  KafkaSource source(loop.get(), source_options(group, topic), copies.sink);
  struct Got {
    std::string body, route;
    int attempt;
    std::int64_t at_ms;
  };
  auto unix_now = [] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  std::vector<Got> got;
  source.start([&](const Delivery& d) {
    got.push_back({std::string(d.body), std::string(d.routing_key), d.attempt, unix_now()});
    source.settle(d.tag, Verdict::ack());
  });
  REQUIRE(loop.run_until([&] { return source.stats().rebalances >= 1; }, 20s));

  // Given a retry record due in 4 s (attempt 2), one due now behind it, then ten fresh records
  // (4 s: room for a loaded machine to hand over the eleven others first)
  const std::int64_t not_before = unix_now() + 4000;
  produce(retry, {{0,
                   "retried",
                   "evt_retried",
                   "ord_r",
                   {{"x-sagaflow-attempts", "2"},
                    {"x-sagaflow-original-route", topic},
                    {"x-sagaflow-not-before", std::to_string(not_before)}}},
                  {0, "retried-due", "evt_due", "ord_d", {{"x-sagaflow-attempts", "3"}}}});
  std::vector<Input> in;
  for (int i = 0; i < 10; ++i)
    in.push_back({i % 2, "v" + std::to_string(i), "evt_" + std::to_string(i), ""});
  produce(topic, in);

  // When the records after it (same partition and others) have all been handled
  auto others = [&] {
    return std::count_if(got.begin(), got.end(), [](const Got& g) { return g.body != "retried"; });
  };
  const bool eleven = loop.run_until([&] { return others() >= 11; }, 20s);
  std::string seen_bodies;
  for (const auto& g : got) seen_bodies += g.body + " ";
  INFO("got: " << seen_bodies << "rebalances " << source.stats().rebalances);
  REQUIRE(eleven);
  CHECK(others() == 11);
  // Then the held one has not been handed over yet, and its offset is not committed
  CHECK(std::none_of(got.begin(), got.end(), [](const Got& g) { return g.body == "retried"; }));
  const auto due =
      std::find_if(got.begin(), got.end(), [](const Got& g) { return g.body == "retried-due"; });
  REQUIRE(due != got.end());
  CHECK(due->attempt == 3);
  CHECK(due->route == retry);  // no original route header: the topic it came from
  rd_kafka_t* side = plain_client(RD_KAFKA_CONSUMER, group);
  loop.run_for(300ms);
  REQUIRE(unix_now() < not_before - 100);  // still held: the check below means something
  CHECK(committed(side, retry, 1)[0] < 1);
  CHECK(source.in_flight() == 0);
  // And it comes when due, with its attempt and original route
  REQUIRE(loop.run_until([&] { return got.size() == 12; }, 10s));
  const Got& held = got.back();
  CHECK(others() == 11);
  CHECK(held.body == "retried");
  CHECK(held.attempt == 2);
  CHECK(held.route == topic);
  CHECK(held.at_ms >= not_before);
  CHECK(held.at_ms < not_before + 500);
  REQUIRE(loop.run_until([&] { return committed(side, retry, 1)[0] == 2; }, 5s));
  stop_and_wait(loop, source);
  rd_kafka_destroy(side);
}

TEST_CASE("connected() follows the broker going down and coming back", "[kafka][source]") {
  const std::string topic = "t8.events", group = "g8";
  mock().create_topic(topic, 1);
  mock().create_topic(topology::kafka_retry_topic(group), 1);
  Loop loop;
  Copies copies(loop);
  KafkaSource source(loop.get(), source_options(group, topic), copies.sink);
  std::vector<bool> states;
  source.on_state_change([&](bool up) { states.push_back(up); });
  int got = 0;
  source.start([&](const Delivery& d) {
    got++;
    source.settle(d.tag, Verdict::ack());
  });
  REQUIRE(loop.run_until([&] { return source.connected(); }, 20s));
  // When the only broker goes down
  REQUIRE(rd_kafka_mock_broker_set_down(mock().cluster(), 1) == RD_KAFKA_RESP_ERR_NO_ERROR);
  // Then the source reports it
  const bool went_down = loop.run_until([&] { return !source.connected(); }, 15s);
  // And when it comes back, the source reports that too and consumes again
  REQUIRE(rd_kafka_mock_broker_set_up(mock().cluster(), 1) == RD_KAFKA_RESP_ERR_NO_ERROR);
  REQUIRE(went_down);
  REQUIRE(loop.run_until([&] { return source.connected(); }, 15s));
  CHECK(states == std::vector<bool>{true, false, true});
  produce(topic, {{0, "after", "evt_after", ""}});
  REQUIRE(loop.run_until([&] { return got == 1; }, 15s));
  stop_and_wait(loop, source);
}

TEST_CASE("a full window keeps serving the group: a joining consumer gets its partitions",
          "[kafka][source]") {
  const std::string topic = "t9.events", group = "g9";
  constexpr int kParts = 4, kN = 200;
  mock().create_topic(topic, kParts);
  mock().create_topic(topology::kafka_retry_topic(group), 1);
  std::vector<Input> in;
  for (int i = 0; i < kN; ++i)
    in.push_back({i % kParts, "v" + std::to_string(i), "evt_" + std::to_string(i), ""});
  produce(topic, in);

  Loop loop;
  Copies copies(loop);
  // Given a source whose window (4) is full: its handler never settles anything
  KafkaSourceOptions oa = source_options(group, topic);
  oa.name = "full";
  oa.max_in_flight = 4;
  oa.drain_timeout_ms = 300;
  KafkaSource a(loop.get(), oa, copies.sink);
  std::size_t a_got = 0;
  a.start([&](const Delivery&) { a_got++; });
  REQUIRE(loop.run_until([&] { return a.in_flight() == 4 && a.stats().rebalances >= 1; }, 20s));
  loop.run_for(500ms);
  REQUIRE(a_got == 4);
  const std::uint64_t a_rebalances = a.stats().rebalances;

  // When a second source of the group joins
  KafkaSourceOptions ob = source_options(group, topic);
  ob.name = "joiner";
  KafkaSource b(loop.get(), ob, copies.sink);
  std::set<std::string> b_got;
  std::set<int> b_parts;
  b.start([&](const Delivery& d) {
    const std::string v(d.body);
    b_got.insert(v);
    b_parts.insert(std::stoi(v.substr(1)) % kParts);
    b.settle(d.tag, Verdict::ack());
  });
  const auto t0 = Clock::now();

  // Then the rebalance completes within a few seconds: the joiner gets every record of its
  // share of the partitions (2 of 4)
  const bool joined =
      loop.run_until([&] { return b_parts.size() == 2 && b_got.size() == kN / kParts * 2; }, 15s);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
  std::printf(
      "joiner got %zu records of %zu partitions after %lld ms; full source: %llu -> %llu "
      "rebalances, in flight %zu\n",
      b_got.size(), b_parts.size(), static_cast<long long>(ms.count()),
      static_cast<unsigned long long>(a_rebalances),
      static_cast<unsigned long long>(a.stats().rebalances), a.in_flight());
  REQUIRE(joined);
  CHECK(ms < 10s);
  // And the full source served the rebalance (its new assignment) while its window stayed
  // full: nothing settled, nothing more handed over, its share kept (not evicted)
  REQUIRE(loop.run_until([&] { return a.stats().rebalances > a_rebalances; }, 5s));
  loop.run_for(1s);
  CHECK(a.in_flight() == 4);
  CHECK(a_got == 4);
  CHECK(a.stats().delivered == 4);
  CHECK(b_parts.size() == 2);
  CHECK(a.connected());
  stop_and_wait(loop, b);
  stop_and_wait(loop, a);
}

TEST_CASE("a stuck record holds its partition at the span cap, not memory; others flow",
          "[kafka][source]") {
  const std::string topic = "t_span.events", group = "g_span";
  constexpr int kN = 3000;  // per partition
  mock().create_topic(topic, 2);
  mock().create_topic(topology::kafka_retry_topic(group), 1);
  std::vector<Input> in;
  for (int i = 0; i < 2 * kN; ++i)
    in.push_back({i % 2, "v" + std::to_string(i), "evt_" + std::to_string(i), "k"});
  produce(topic, in);

  Loop loop;
  Copies copies(loop);
  KafkaSourceOptions o = source_options(group, topic);
  o.max_in_flight = 8;  // span cap: max(1024, 16 x 8) = 1024 records per partition
  KafkaSource source(loop.get(), o, copies.sink);
  // Given a handler that holds the first record of partition 0 and acks everything else
  std::optional<std::uint64_t> stuck;
  std::map<int, int> got;  // by partition (v<i>: i % 2)
  source.start([&](const Delivery& d) {
    const int part = std::stoi(std::string(d.body.substr(1))) % 2;
    got[part]++;
    if (part == 0 && !stuck) {
      stuck = d.tag;
      return;
    }
    source.settle(d.tag, Verdict::ack());
  });
  // Then partition 1 is read to its end, partition 0 stops at the cap (its settled records
  // behind the stuck one are bounded)
  REQUIRE(loop.run_until([&] { return got[1] == kN && got[0] >= 1024; }, 30s));
  loop.run_for(500ms);
  CHECK(got[0] == 1024);
  CHECK(source.stats().largest_span == 1024);
  // When the stuck record settles, the rest of partition 0 flows
  source.settle(*stuck, Verdict::ack());
  REQUIRE(loop.run_until([&] { return got[0] == kN; }, 30s));
  CHECK(source.stats().largest_span <= 1024);
  stop_and_wait(loop, source);
}
