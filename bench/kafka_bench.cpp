// Kafka saga-step benchmark (issue 6), side by side in one run on this machine:
//
//  bare:   a plain librdkafka loop on the mock cluster: N order.created records pre-produced
//          to `sagaflow.events` (8 partitions, key = order_id); a consumer (group, manual
//          offset store) consumes each, produces one record to `sagaflow.commands` (idempotent
//          producer, acks=all) and stores the offset after the delivery report: the
//          broker-bound limit of the job. Run twice: at most 256 records in flight (the
//          worker's SAGAFLOW_PREFETCH) and unbounded.
//  ours:   one `sagaflow worker` (SAGAFLOW_BROKER=kafka) on a fresh mock cluster + Redis: the
//          same N order.created pre-produced; N distinct inventory.reserve records on
//          `sagaflow.commands` (counted by a consumer in this process), timed by their
//          producer timestamps (first to last: the counter may start reading late). The
//          worker's and Redis' CPU cover the worker's whole life (start-up and group join too),
//          and so do its heap allocations (counted by bench/alloc_count.c, preloaded into it).
//  redis:  the Redis-bound limit: store::SagaStore::apply of a new saga with one outbox
//          command and a deadline (store_bench's apply phase), 256 in flight, one connection.
//
// CPU seconds per party are read from /proc: the worker and redis-server by pid; this process
// split into the mock cluster's broker thread ("rdk:mock...") and everything else (the bare
// loop's clients, or the pre-producer and the command counter).
//
// With --redis-scaling: only `ours`, on one Redis and on a 3-primary + 3-replica Redis Cluster,
// with 1 and 2 workers, alternating setups round by round; per-primary Redis CPU per start.
//
// With --compare A B: only `ours` (one Redis, prefetch 256 and 65535; rate, worker and Redis CPU
// per start, worker allocations per start), binaries A and B
// alternating round by round (A, B, B, A, A, B, ...), for a change measured side by side.
//
// Usage: kafka_bench [N=50000] [--redis-scaling [ROUNDS=2] | --compare BIN_A BIN_B [ROUNDS=2]]
// (needs redis-server; the mock cluster runs in this process; the sagaflow binary from
// SAGAFLOW_BINARY or ./app/sagaflow).
// librdkafka 2.0's mock keeps about 5 MiB per partition and drops older data: keep N x ~300 bytes
// under ~30 MiB.
#include <dirent.h>
#include <librdkafka/rdkafka.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_set>
#include <vector>

#include <fmt/format.h>

#include "bench_util.hpp"
#include "core/log.hpp"
#include "store/redis_client.hpp"
#include "store/saga_store.hpp"
#include "support/servers.hpp"

using namespace std::chrono;
using sagaflow::bench::process_cpu;
using sagaflow::bench::stat_cpu;
using sagaflow::testing::KafkaMock;
using sagaflow::testing::Process;
using sagaflow::testing::RedisServer;

namespace {

constexpr int kPartitions = 8;
constexpr const char* kEvents = "sagaflow.events";
constexpr const char* kCommands = "sagaflow.commands";

std::string order_created(const std::string& order, int store) {
  return R"({"id":"evt_)" + order + R"(","type":"order.created","store_id":"store_)" +
         std::to_string(store) + R"(","data":{"order_id":")" + order +
         R"(","customer_id":"c_1","total":"123.45","currency":"EUR","items":[{"sku":"SKU-1","qty":1,"price":"123.45"}]}})";
}

// ---- CPU accounting from /proc ----

// This process' threads: tid -> (name, CPU seconds).
std::map<std::string, std::pair<std::string, double>> threads_now() {
  std::map<std::string, std::pair<std::string, double>> out;
  DIR* d = ::opendir("/proc/self/task");
  if (d == nullptr) return out;
  while (const dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::string comm;
    const double cpu = stat_cpu(std::string("/proc/self/task/") + e->d_name + "/stat", &comm);
    out[e->d_name] = {comm, cpu};
  }
  ::closedir(d);
  return out;
}

struct SelfCpu {
  double mock = 0;   // the mock cluster's threads (rdk:mock*)
  double other = 0;  // everything else in this process
};

// CPU used since `before` by threads alive now (threads that ended in between are lost: take
// the second snapshot before destroying the clients).
SelfCpu self_cpu_since(const std::map<std::string, std::pair<std::string, double>>& before) {
  SelfCpu s;
  for (const auto& [tid, v] : threads_now()) {
    const auto it = before.find(tid);
    const double used = v.second - (it == before.end() ? 0.0 : it->second.second);
    if (v.first.rfind("rdk:mock", 0) == 0) {
      s.mock += used;
    } else {
      s.other += used;
    }
  }
  return s;
}

// ---- librdkafka helpers ----

rd_kafka_conf_t* make_conf(const std::vector<std::pair<std::string, std::string>>& props) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  std::array<char, 512> err{};
  for (const auto& [k, v] : props) {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err.data(), err.size()) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      throw std::runtime_error("librdkafka property " + k + "=" + v + ": " + err.data());
    }
  }
  return conf;
}

rd_kafka_t* make_client(rd_kafka_type_t type, rd_kafka_conf_t* conf) {
  std::array<char, 512> err{};
  rd_kafka_t* rk = rd_kafka_new(type, conf, err.data(), err.size());
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    throw std::runtime_error(std::string("rd_kafka_new: ") + err.data());
  }
  return rk;
}

std::vector<std::pair<std::string, std::string>> producer_props(const std::string& bootstrap) {
  return {{"bootstrap.servers", bootstrap},
          {"enable.idempotence", "true"},
          {"acks", "all"},
          {"linger.ms", "1"},                 // KafkaSink's default
          {"partitioner", "murmur2_random"},  // KafkaSink's: same key, same partition
          {"log_level", "3"}};
}

// rd_kafka_produce (rd_kafka_producev's macros are C casts); waits while the queue is full.
void produce_or_wait(rd_kafka_t* p, rd_kafka_topic_t* topic, std::string_view key,
                     std::string_view value, void* opaque) {
  for (;;) {
    if (rd_kafka_produce(topic, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY,
                         const_cast<char*>(value.data()), value.size(), key.data(), key.size(),
                         opaque) == 0)
      return;
    const rd_kafka_resp_err_t err = rd_kafka_last_error();
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
      throw std::runtime_error(std::string("produce: ") + rd_kafka_err2str(err));
    rd_kafka_poll(p, 10);
  }
}

void count_failed_delivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
  if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) ++*static_cast<long*>(opaque);
}

// N order.created records (orders <prefix><i>, 16 stores) on sagaflow.events, key = order_id.
void preproduce(const std::string& bootstrap, const std::string& prefix, int n) {
  long failed = 0;
  rd_kafka_conf_t* conf = make_conf(producer_props(bootstrap));
  rd_kafka_conf_set_dr_msg_cb(conf, &count_failed_delivery);
  rd_kafka_conf_set_opaque(conf, &failed);
  rd_kafka_t* p = make_client(RD_KAFKA_PRODUCER, conf);
  rd_kafka_topic_t* topic = rd_kafka_topic_new(p, kEvents, nullptr);
  for (int i = 0; i < n; ++i) {
    const std::string order = prefix + std::to_string(i);
    produce_or_wait(p, topic, order, order_created(order, i % 16), nullptr);
    rd_kafka_poll(p, 0);
  }
  const rd_kafka_resp_err_t err = rd_kafka_flush(p, 120000);
  rd_kafka_topic_destroy(topic);
  rd_kafka_destroy(p);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR || failed != 0)
    throw std::runtime_error("pre-produce: " + std::to_string(failed) + " failed deliveries, " +
                             rd_kafka_err2str(err));
}

void make_topics(KafkaMock& kafka) {
  for (const char* t : {kEvents, kCommands, "sagaflow.dead", "sagaflow.retry.sagaflow-saga"})
    kafka.create_topic(t, kPartitions);
}

struct Row {
  std::string path;
  double rate = 0;
  double seconds = 0;
  long count = 0;
  double worker_cpu = -1;         // < 0: not part of this path
  double redis_cpu = -1;          // every Redis process (a cluster: primaries + replicas)
  double redis_commands = -1;     // commands executed per start (INFO commandstats)
  std::string redis_breakdown;    // the most executed commands, per start
  double allocations = -1;        // the workers' heap allocations per start (whole life)
  std::vector<double> shard_cpu;  // a cluster: each primary's CPU seconds
  SelfCpu self{};
  std::string note;
};

// ---- bare: consume -> produce (idempotent, acks=all) -> store offset on the delivery report --

struct Bare {
  rd_kafka_t* consumer = nullptr;
  rd_kafka_topic_t* in_topic = nullptr;                       // for rd_kafka_offset_store
  std::vector<std::pair<std::int32_t, std::int64_t>> origin;  // record k: its input position
  std::array<std::int64_t, kPartitions> stored{};             // highest offset stored per partition
  long delivered = 0;
  long failed = 0;
};

void bare_delivered(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
  auto& b = *static_cast<Bare*>(opaque);
  if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    ++b.failed;
    return;
  }
  ++b.delivered;
  const auto k = reinterpret_cast<std::uintptr_t>(m->_private);
  const auto [partition, offset] = b.origin[k];
  auto& top = b.stored[static_cast<std::size_t>(partition) % kPartitions];
  if (offset + 1 > top) {
    top = offset + 1;
    rd_kafka_offset_store(b.in_topic, partition, offset);  // stores offset + 1
  }
}

// pause_like_source: instead of not polling while full, pause every assigned partition at
// max_in_flight unsettled and resume at 3/4 of it, as KafkaSource's flow control does.
Row bare_loop(int n, long max_in_flight, bool pause_like_source) {
  KafkaMock kafka(1);
  make_topics(kafka);
  preproduce(kafka.bootstrap(), "o_bare_", n);

  Bare b;
  b.origin.reserve(static_cast<std::size_t>(n));
  b.stored.fill(-1);
  const auto before = threads_now();
  b.consumer = make_client(RD_KAFKA_CONSUMER,
                           make_conf({{"bootstrap.servers", kafka.bootstrap()},
                                      {"group.id", "bench-bare"},
                                      {"enable.auto.offset.store", "false"},
                                      {"enable.auto.commit", "true"},
                                      {"auto.offset.reset", "earliest"},
                                      {"enable.partition.eof", "false"},
                                      {"fetch.wait.max.ms", "10"},  // as the worker's source
                                      {"log_level", "3"}}));
  rd_kafka_poll_set_consumer(b.consumer);
  b.in_topic = rd_kafka_topic_new(b.consumer, kEvents, nullptr);
  rd_kafka_conf_t* pconf = make_conf(producer_props(kafka.bootstrap()));
  rd_kafka_conf_set_dr_msg_cb(pconf, &bare_delivered);
  rd_kafka_conf_set_opaque(pconf, &b);
  rd_kafka_t* producer = make_client(RD_KAFKA_PRODUCER, pconf);
  rd_kafka_topic_t* out_topic = rd_kafka_topic_new(producer, kCommands, nullptr);

  rd_kafka_topic_partition_list_t* sub = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(sub, kEvents, RD_KAFKA_PARTITION_UA);
  rd_kafka_subscribe(b.consumer, sub);
  rd_kafka_topic_partition_list_destroy(sub);

  steady_clock::time_point t0{};
  long consumed = 0;
  const auto give_up = steady_clock::now() + 300s;
  bool paused = false;
  long pauses = 0;
  auto pause_all = [&](bool pause) {
    rd_kafka_topic_partition_list_t* a = nullptr;
    if (rd_kafka_assignment(b.consumer, &a) != RD_KAFKA_RESP_ERR_NO_ERROR || a == nullptr) return;
    if (pause) {
      rd_kafka_pause_partitions(b.consumer, a);
      ++pauses;
    } else {
      rd_kafka_resume_partitions(b.consumer, a);
    }
    rd_kafka_topic_partition_list_destroy(a);
    paused = pause;
  };
  while (b.delivered + b.failed < n && steady_clock::now() < give_up) {
    const long in_flight = consumed - b.delivered - b.failed;
    if (pause_like_source) {
      if (!paused && in_flight >= max_in_flight) pause_all(true);
      if (paused && in_flight <= max_in_flight * 3 / 4) pause_all(false);
    }
    if (consumed < n && (pause_like_source ? !paused : in_flight < max_in_flight)) {
      rd_kafka_message_t* m = rd_kafka_consumer_poll(b.consumer, in_flight > 0 ? 0 : 100);
      if (m != nullptr) {
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
          if (consumed == 0) t0 = steady_clock::now();
          const auto k = static_cast<std::uintptr_t>(b.origin.size());
          b.origin.emplace_back(m->partition, m->offset);
          const std::string_view key(static_cast<const char*>(m->key), m->key_len);
          const std::string_view value(static_cast<const char*>(m->payload), m->len);
          produce_or_wait(producer, out_topic, key, value, reinterpret_cast<void*>(k));
          ++consumed;
        }
        rd_kafka_message_destroy(m);
        rd_kafka_poll(producer, 0);
        continue;
      }
    }
    rd_kafka_poll(producer, 1);
  }
  Row r;
  r.seconds = duration<double>(steady_clock::now() - t0).count();
  r.count = b.delivered;
  r.rate = static_cast<double>(b.delivered) / r.seconds;
  r.self = self_cpu_since(before);
  if (pause_like_source) r.note = std::to_string(pauses) + " pauses";
  if (b.failed != 0) r.note += " " + std::to_string(b.failed) + " deliveries failed";
  rd_kafka_consumer_close(b.consumer);
  rd_kafka_topic_destroy(b.in_topic);
  rd_kafka_destroy(b.consumer);
  rd_kafka_flush(producer, 10000);
  rd_kafka_topic_destroy(out_topic);
  rd_kafka_destroy(producer);
  return r;
}

// ---- ours: one sagaflow worker ----

// The Redis of one `ours` run: one redis-server, or a 3-primary + 3-replica cluster.
struct RedisUnderTest {
  std::unique_ptr<RedisServer> one;
  std::unique_ptr<sagaflow::testing::RedisCluster> cluster;

  explicit RedisUnderTest(bool as_cluster) {
    if (as_cluster) {
      cluster = std::make_unique<sagaflow::testing::RedisCluster>(3, 1);
    } else {
      one = std::make_unique<RedisServer>();
    }
  }
  std::string url() const { return one ? one->url() : cluster->url(); }
  std::vector<pid_t> pids() const {
    if (one) return {one->pid()};
    std::vector<pid_t> out;
    for (std::size_t i = 0; i < cluster->size(); ++i) out.push_back(cluster->node(i).pid());
    return out;
  }
  // Every node's RedisServer (one, or the cluster's six).
  std::vector<RedisServer*> servers() const {
    if (one) return {one.get()};
    std::vector<RedisServer*> out;
    for (std::size_t i = 0; i < cluster->size(); ++i) out.push_back(&cluster->node(i));
    return out;
  }
  // Commands executed on the primaries since the last reset (INFO commandstats; commands run
  // inside scripts count, EVALSHA itself too), by command.
  std::map<std::string, long> calls() const {
    std::map<std::string, long> out;
    const auto primary = primaries();
    const auto all = servers();
    for (std::size_t i = 0; i < all.size(); ++i) {
      if (!primary[i]) continue;
      for (const auto& [name, st] :
           sagaflow::bench::parse_commandstats(all[i]->command({"INFO", "commandstats"}))) {
        out[name] += static_cast<long>(st.calls);
      }
    }
    return out;
  }
  void reset_calls() const {
    for (RedisServer* s : servers()) s->command({"CONFIG", "RESETSTAT"});
  }
  std::vector<bool> primaries() const {
    if (one) return {true};
    std::vector<bool> out;
    for (std::size_t i = 0; i < cluster->size(); ++i) out.push_back(cluster->is_primary(i));
    return out;
  }
};

// prefetch: SAGAFLOW_PREFETCH for the workers ("" = their default, 256).
Row ours(const std::string& bin, int n, const std::string& prefetch, bool cluster = false,
         int workers = 1) {
  KafkaMock kafka(1);
  make_topics(kafka);
  RedisUnderTest redis(cluster);
  std::vector<std::pair<std::string, std::string>> env{
      {"SAGAFLOW_BROKER", "kafka"},        {"SAGAFLOW_KAFKA_BROKERS", kafka.bootstrap()},
      {"SAGAFLOW_REDIS_URL", redis.url()}, {"SAGAFLOW_METRICS_ADDR", "0"},
      {"SAGAFLOW_LOG_LEVEL", "warn"},      {"SAGAFLOW_PLANS", "free=1000000/s:1000000"}};
  if (!prefetch.empty()) env.emplace_back("SAGAFLOW_PREFETCH", prefetch);
  {
    Process topo({bin, "topology", "apply"}, env);
    if (topo.wait_for(60s).value_or(-1) != 0)
      throw std::runtime_error("topology apply failed: " + topo.read_stderr());
  }
  preproduce(kafka.bootstrap(), "o_tp_", n);

  // The counter: every partition of sagaflow.commands from the beginning, no group rebalance.
  rd_kafka_t* counter =
      make_client(RD_KAFKA_CONSUMER, make_conf({{"bootstrap.servers", kafka.bootstrap()},
                                                {"group.id", "bench-count"},
                                                {"enable.auto.commit", "false"},
                                                {"enable.partition.eof", "false"},
                                                {"fetch.wait.max.ms", "10"},
                                                {"log_level", "3"}}));
  rd_kafka_poll_set_consumer(counter);
  rd_kafka_topic_partition_list_t* parts = rd_kafka_topic_partition_list_new(kPartitions);
  for (int p = 0; p < kPartitions; ++p)
    rd_kafka_topic_partition_list_add(parts, kCommands, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  rd_kafka_assign(counter, parts);
  rd_kafka_topic_partition_list_destroy(parts);

  std::unordered_set<std::string> seen;
  seen.reserve(static_cast<std::size_t>(n) * 2);
  long records = 0;
  redis.reset_calls();
  const auto before = threads_now();
  const std::vector<pid_t> redis_pids = redis.pids();
  std::vector<double> redis0;
  for (pid_t pid : redis_pids) redis0.push_back(process_cpu(pid));
  // Each worker counts its heap allocations (bench/alloc_count.c, preloaded) into a file.
  std::vector<std::string> alloc_files;
  std::vector<std::unique_ptr<Process>> procs;
  for (int w = 0; w < workers; ++w) {
    auto worker_env = env;
    alloc_files.push_back(fmt::format("/tmp/kafka_bench_allocs.{}.{}", getpid(), w));
    std::remove(alloc_files.back().c_str());
    worker_env.emplace_back("LD_PRELOAD", SAGAFLOW_ALLOC_COUNT_LIB);
    worker_env.emplace_back("SAGAFLOW_ALLOC_COUNT_OUT", alloc_files.back());
    procs.push_back(
        std::make_unique<Process>(std::vector<std::string>{bin, "worker"}, worker_env, false));
  }
  const auto started = steady_clock::now();
  steady_clock::time_point first{};
  std::int64_t first_ts = -1, last_ts = -1;  // CreateTime of the first and last command (ms)
  const auto give_up = started + 300s;
  auto any_died = [&] {
    for (auto& w : procs) {
      if (w->wait_for(0ms)) return true;
    }
    return false;
  };
  while (static_cast<long>(seen.size()) < n && steady_clock::now() < give_up) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(counter, 20);
    if (m == nullptr) {
      if (any_died()) break;
      continue;
    }
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      const std::string_view value(static_cast<const char*>(m->payload), m->len);
      if (value.find(R"("type":"inventory.reserve")") != std::string_view::npos) {
        if (first == steady_clock::time_point{}) first = steady_clock::now();
        // The producer's time of each record (CreateTime, ms): the counter may start reading
        // late and then see a burst, so the rate is timed by when the worker produced them.
        const std::int64_t ts = rd_kafka_message_timestamp(m, nullptr);
        if (ts > 0) {
          first_ts = first_ts < 0 ? ts : std::min(first_ts, ts);
          last_ts = std::max(last_ts, ts);
        }
        ++records;
        seen.emplace(static_cast<const char*>(m->key), m->key_len);
      }
    }
    rd_kafka_message_destroy(m);
  }
  const auto end = steady_clock::now();
  Row r;
  r.count = static_cast<long>(seen.size());
  r.seconds = first_ts >= 0 && last_ts > first_ts ? static_cast<double>(last_ts - first_ts) / 1000.0
                                                  : duration<double>(end - first).count();
  r.rate = static_cast<double>(r.count) / r.seconds;
  r.worker_cpu = 0;
  for (auto& w : procs) r.worker_cpu += process_cpu(w->pid());
  r.redis_cpu = 0;
  const std::vector<bool> primary = redis.primaries();
  for (std::size_t i = 0; i < redis_pids.size(); ++i) {
    const double used = process_cpu(redis_pids[i]) - redis0[i];
    r.redis_cpu += used;
    if (redis.cluster && primary[i]) r.shard_cpu.push_back(used);
  }
  r.self = self_cpu_since(before);
  const double from_start = duration<double>(end - started).count();
  const auto calls = redis.calls();
  long total = 0;
  for (const auto& [name, k] : calls) total += k;
  std::vector<std::pair<long, std::string>> top;
  for (const auto& [name, k] : calls) top.emplace_back(k, name);
  std::sort(top.rbegin(), top.rend());
  std::string breakdown;
  for (std::size_t i = 0; i < top.size() && i < 8; ++i) {
    breakdown += fmt::format(" {} {:.2f}", top[i].second,
                             static_cast<double>(top[i].first) / std::max(1L, r.count));
  }
  r.redis_commands = static_cast<double>(total) / static_cast<double>(std::max(1L, r.count));
  r.redis_breakdown = breakdown;
  r.note = fmt::format(
      "{:.0f}/s from the worker's start ({:.2f} s); {} records (re-sends: {}); Redis commands "
      "per start {:.2f}:{}",
      static_cast<double>(r.count) / from_start, from_start, records, records - r.count,
      r.redis_commands, breakdown);
  rd_kafka_consumer_close(counter);
  rd_kafka_destroy(counter);
  for (auto& w : procs) w->signal(SIGTERM);
  long allocations = 0;
  bool counted = true;
  for (std::size_t w = 0; w < procs.size(); ++w) {
    if (!procs[w]->wait_for(15s)) std::fprintf(stderr, "ours: a worker did not exit within 15 s\n");
    std::ifstream in(alloc_files[w]);
    long k = -1;
    counted = counted && static_cast<bool>(in >> k) && k >= 0;
    allocations += std::max(0L, k);
    std::remove(alloc_files[w].c_str());
  }
  if (counted && r.count > 0) {
    r.allocations = static_cast<double>(allocations) / static_cast<double>(r.count);
    r.note +=
        fmt::format("; allocations per start {:.1f} (the workers' whole life)", r.allocations);
  }
  if (r.count < n) {
    std::fprintf(stderr, "ours: only %ld of %d commands arrived; worker stderr:\n%s\n", r.count, n,
                 procs.front()->read_stderr().c_str());
  }
  return r;
}

// ---- redis-bound: store_bench's apply phase ----

Row redis_bound(long n, int in_flight) {
  using namespace sagaflow;
  using namespace sagaflow::store;
  RedisServer server;
  uv_loop_t loop;
  uv_loop_init(&loop);
  RedisClientOptions opts;
  opts.endpoint.host = "127.0.0.1";
  opts.endpoint.port = server.port();
  opts.command_timeout_ms = 10000;
  opts.heartbeat_ms = 0;
  Row r;
  {
    RedisClient client(&loop, opts);
    client.start();
    const auto deadline = steady_clock::now() + 10s;
    uv_timer_t tick;
    uv_timer_init(&loop, &tick);
    uv_timer_start(
        &tick, [](uv_timer_t*) {}, 5, 5);
    while (!client.connected() && steady_clock::now() < deadline) uv_run(&loop, UV_RUN_ONCE);
    uv_timer_stop(&tick);
    uv_close(reinterpret_cast<uv_handle_t*>(&tick), nullptr);
    if (!client.connected()) throw std::runtime_error("redis-bound: redis-server never answered");
    SagaStore store(client, SagaStoreOptions{16, 86400, 0, 0});
    long next = 0, completed = 0, errors = 0;
    std::function<void(long)> issue;
    issue = [&](long i) {
      ApplyRequest req;
      req.order_id = OrderId{fmt::format("ord_{}", i)};
      req.event_id = EventId{fmt::format("evt_{}", i)};
      req.expected_version = 0;
      req.new_state = std::string(300, 's');
      req.new_status = "reserving";
      req.commands.push_back({fmt::format("ord_{}:inventory.reserve", i), "sagaflow.commands",
                              "inventory.reserve", std::string(250, 'b')});
      req.deadline = 4102444800000;
      store.apply(req, [&](Result<ApplyOutcome> res) {
        ++completed;
        if (!res.ok() || res->kind != ApplyKind::applied) ++errors;
        if (next < n) issue(next++);
      });
    };
    const auto before = threads_now();
    const double redis0 = process_cpu(server.pid());
    const auto t0 = steady_clock::now();
    for (int k = 0; k < in_flight && next < n; ++k) issue(next++);
    while (completed < n) uv_run(&loop, UV_RUN_ONCE);
    r.seconds = duration<double>(steady_clock::now() - t0).count();
    r.redis_cpu = process_cpu(server.pid()) - redis0;
    r.self = self_cpu_since(before);
    r.count = n - errors;
    r.rate = static_cast<double>(r.count) / r.seconds;
    if (errors != 0) r.note = std::to_string(errors) + " errors";
    client.stop();
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  return r;
}

void print_row(const Row& r) {
  auto cpu = [](double v) { return v < 0 ? std::string("-") : fmt::format("{:.2f}", v); };
  std::printf("%-44s %9.0f/s %8.2f s %8ld | %7s %7s %7.2f %7.2f | %s\n", r.path.c_str(), r.rate,
              r.seconds, r.count, cpu(r.worker_cpu).c_str(), cpu(r.redis_cpu).c_str(), r.self.mock,
              r.self.other, r.note.c_str());
}

}  // namespace

// One Redis against a 3-primary cluster, 1 and 2 workers, alternating round by round.
int redis_scaling(const std::string& bin, int n, int rounds) {
  struct Setup {
    const char* name;
    bool cluster;
    int workers;
  };
  const Setup setups[] = {{"one Redis, 1 worker", false, 1},
                          {"cluster 3+3, 1 worker", true, 1},
                          {"one Redis, 2 workers", false, 2},
                          {"cluster 3+3, 2 workers", true, 2}};
  std::printf("%-26s %5s %11s %8s | %7s %7s %7s | %s\n", "setup", "round", "rate", "count",
              "workers", "redis", "mock", "per start: worker CPU, Redis CPU (each primary)");
  bool ok = true;
  for (int round = 1; round <= rounds; ++round) {
    for (const auto& s : setups) {
      const Row r = ours(bin, n, "", s.cluster, s.workers);
      ok = ok && r.count == n;
      const double per = 1e6 / static_cast<double>(std::max(1L, r.count));
      std::string shards;
      for (double c : r.shard_cpu) shards += fmt::format(" {:.1f}", c * per);
      std::printf(
          "%-26s %5d %9.0f/s %8ld | %7.2f %7.2f %7.2f | %.1f us, %.1f us%s%s; %.2f commands\n",
          s.name, round, r.rate, r.count, r.worker_cpu, r.redis_cpu, r.self.mock,
          r.worker_cpu * per, r.redis_cpu * per,
          shards.empty() ? "" : " (primaries:", shards.empty() ? "" : (shards + " us)").c_str(),
          r.redis_commands);
      std::printf("%-26s   commands per start:%s\n", "", r.redis_breakdown.c_str());
      std::fflush(stdout);
    }
  }
  return ok ? 0 : 1;
}

int compare(const std::string& a, const std::string& b, int n, int rounds) {
  std::printf("%-6s %5s | %12s %10s %9s %12s | %12s %10s %9s %12s\n", "build", "round",
              "sagas/s 256", "worker us", "redis us", "allocations", "sagas/s 64k", "worker us",
              "redis us", "allocations");
  bool ok = true;
  for (int round = 1; round <= rounds; ++round) {
    // A B, then B A: neither build always runs first (the machine warms up, others wake).
    const bool a_first = round % 2 == 1;
    for (int k = 0; k < 2; ++k) {
      const bool is_a = (k == 0) == a_first;
      const std::string& bin = is_a ? a : b;
      const Row small = ours(bin, n, "");
      const Row big = ours(bin, n, "65535");
      ok = ok && small.count == n && big.count == n;
      auto per = [](const Row& r, double cpu) {
        return cpu / static_cast<double>(std::max(1L, r.count)) * 1e6;
      };
      std::printf("%-6s %5d | %10.0f/s %10.1f %9.1f %12.1f | %10.0f/s %10.1f %9.1f %12.1f\n",
                  is_a ? "A" : "B", round, small.rate, per(small, small.worker_cpu),
                  per(small, small.redis_cpu), small.allocations, big.rate,
                  per(big, big.worker_cpu), per(big, big.redis_cpu), big.allocations);
      std::fflush(stdout);
    }
  }
  std::printf("A = %s\nB = %s\n", a.c_str(), b.c_str());
  return ok ? 0 : 1;
}

int main(int argc, char** argv) {
  const bool scaling = argc > 2 && std::string_view(argv[2]) == "--redis-scaling";
  const bool comparing = argc > 4 && std::string_view(argv[2]) == "--compare";
  const int n = argc > 1 ? std::atoi(argv[1]) : 50000;
  if (n <= 0 || (argc > 2 && !scaling && !comparing)) {
    std::fprintf(stderr,
                 "usage: kafka_bench [N=50000] [--redis-scaling [ROUNDS=2] | --compare BIN_A "
                 "BIN_B [ROUNDS=2]]\n");
    return 2;
  }
  const char* b = std::getenv("SAGAFLOW_BINARY");
  const std::string bin = b ? b : "./app/sagaflow";
  sagaflow::log::set_level(sagaflow::log::Level::error);
  if (scaling) return redis_scaling(bin, n, argc > 3 ? std::max(1, std::atoi(argv[3])) : 2);
  if (comparing) {
    return compare(argv[3], argv[4], n, argc > 5 ? std::max(1, std::atoi(argv[5])) : 2);
  }
  std::printf(
      "kafka_bench: N=%d, %d partitions, librdkafka %s mock cluster (in this process), "
      "%u cores\n",
      n, kPartitions, rd_kafka_version_str(), std::thread::hardware_concurrency());
  std::fflush(stdout);

  // rows: 0 bare 256, 1 bare unbounded, 2 bare pausing, 3 ours, 4 ours never pausing, 5 redis
  std::vector<Row> rows;
  rows.push_back(bare_loop(n, 256, false));
  rows.back().path = "bare librdkafka, 256 in flight";
  rows.push_back(bare_loop(n, 1L << 30, false));
  rows.back().path = "bare librdkafka, unbounded";
  // Slow (each pause stalls the fetcher for most of a second): a tenth of N, at most 5000.
  rows.push_back(bare_loop(std::clamp(n / 10, 1, 5000), 256, true));
  rows.back().path = "bare, pause/resume partitions at 256/192";
  rows.push_back(ours(bin, n, ""));
  rows.back().path = "sagaflow worker (1 process, prefetch 256)";
  rows.push_back(ours(bin, n, "65535"));
  rows.back().path = "sagaflow worker, SAGAFLOW_PREFETCH=65535";
  rows.push_back(redis_bound(n, 256));
  rows.back().path = "Redis-bound: apply script, 256 in flight";

  std::printf("%-44s %11s %10s %8s | %7s %7s %7s %7s |\n", "path", "rate", "time", "count",
              "worker", "redis", "mock", "bench");
  std::printf("%-44s %11s %10s %8s | %31s |\n", "", "", "", "", "CPU seconds in the timed span");
  for (const auto& r : rows) print_row(r);
  const double bare = rows[0].rate, bare_max = rows[1].rate, our = rows[3].rate, big = rows[4].rate,
               redis = rows[5].rate;
  std::printf(
      "bare librdkafka consume+produce: %.0f msg/s (unbounded %.0f); sagaflow worker: %.0f "
      "sagas/s (ours/bare = %.3f); Redis-bound apply script: %.0f/s (ours/redis = %.3f)\n",
      bare, bare_max, our, our / bare, redis, our / redis);
  std::printf(
      "a whole backlog taken at once (SAGAFLOW_PREFETCH=65535): %.0f sagas/s (/bare = %.2f, /redis "
      "= "
      "%.2f)\n",
      big, big / bare, big / redis);
  for (const Row* w : {&rows[3], &rows[4]}) {
    if (w->worker_cpu > 0 && w->count > 0)
      std::printf(
          "%s: %.1f us worker CPU, %.1f us Redis CPU and %.1f heap allocations per saga start\n",
          w->path.c_str(), w->worker_cpu / static_cast<double>(w->count) * 1e6,
          w->redis_cpu / static_cast<double>(w->count) * 1e6, w->allocations);
  }
  const bool ok =
      rows[3].count == n && rows[4].count == n && rows[0].note.empty() && rows[5].note.empty();
  return ok ? 0 : 1;
}
