// End-to-end saga-step benchmark (issue 5), side by side in one run on this machine:
//
//  bare:   a rabbitmq-c loop that consumes a message, publishes one (persistent, publisher
//          confirms) and acks the delivery after the confirm: the broker-bound limit of the job.
//  reference: the same loop doing the saga step's minimal work too: each order.created parsed
//          (simdjson), one EVALSHA (dedup SET NX EX + the saga's HSET when new; the EVALSHAs
//          of the deliveries at hand pipelined on one hiredis connection), inventory.reserve
//          published persistent with confirms, multiple-ack after the confirms.
//  ours:   one `sagaflow worker`: order.created consumed -> saga committed in Redis ->
//          inventory.reserve published and confirmed -> delivery acked.
// The three alternate round by round. Rates are timed from the first message handled to the
// N-th; CPU seconds per party (the worker or this loop, redis-server) over that span only; the
// commands' queue depth is polled on one connection.
//  latency: order.created published at half of our maximum rate; time until its
//          inventory.reserve arrives at a consumer of the commands (p50 / p99), for our worker
//          and then for the reference loop fed at the same rate (this machine's floor).
//
// Usage: saga_bench [N=20000] [ROUNDS=2]   (needs redis-server and rabbitmq-server installed; it
// starts its own on free loopback ports, and the sagaflow binary from SAGAFLOW_BINARY or
// ./app/sagaflow)
#include <amqp.h>
#include <amqp_tcp_socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>
#include <hiredis/hiredis.h>
#include <simdjson.h>

#include "bench_util.hpp"
#include "support/servers.hpp"

using namespace std::chrono;
using sagaflow::testing::Process;
using sagaflow::testing::RabbitServer;
using sagaflow::testing::RedisServer;

namespace {

struct Amqp {
  amqp_connection_state_t conn = amqp_new_connection();
  explicit Amqp(int port) {
    amqp_socket_t* s = amqp_tcp_socket_new(conn);
    if (amqp_socket_open(s, "127.0.0.1", port) != AMQP_STATUS_OK)
      throw std::runtime_error("connect");
    amqp_login(conn, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest");
    amqp_channel_open(conn, 1);
    amqp_get_rpc_reply(conn);
  }
  ~Amqp() {
    amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(conn);
  }
  void publish(const char* exchange, const std::string& key, const std::string& body,
               const std::string& id = {}) {
    amqp_basic_properties_t p{};
    p._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG |
               (id.empty() ? 0 : AMQP_BASIC_MESSAGE_ID_FLAG);
    p.delivery_mode = 2;
    p.content_type = amqp_cstring_bytes("application/json");
    p.message_id = amqp_cstring_bytes(id.c_str());
    amqp_basic_publish(conn, 1, amqp_cstring_bytes(exchange), amqp_cstring_bytes(key.c_str()), 0, 0,
                       &p, amqp_cstring_bytes(body.c_str()));
  }
};

std::string order_created(const std::string& order, int store) {
  return R"({"id":"evt_)" + order + R"(","type":"order.created","store_id":"store_)" +
         std::to_string(store) + R"(","data":{"order_id":")" + order +
         R"(","customer_id":"c_1","total":"123.45","currency":"EUR","items":[{"sku":"SKU-1","qty":1,"price":"123.45"}]}})";
}

// Consumes `queue` on channel 1 (prefetch 256, manual acks) and publishes on channel 2 with
// publisher confirms, as the worker's source and sink do.
void consume_with_confirms(Amqp& a, const std::string& queue) {
  amqp_channel_open(a.conn, 2);
  amqp_get_rpc_reply(a.conn);
  amqp_confirm_select(a.conn, 2);
  amqp_get_rpc_reply(a.conn);
  amqp_basic_qos(a.conn, 1, 0, 256, 0);
  amqp_basic_consume(a.conn, 1, amqp_cstring_bytes(queue.c_str()), amqp_empty_bytes, 0, 0, 0,
                     amqp_empty_table);
  amqp_get_rpc_reply(a.conn);
}

// Publisher confirms arrive in order: each one acks the deliveries whose copies it confirms
// (one multiple-ack). read() takes one frame; false when the connection failed.
struct ConfirmAcks {
  std::uint64_t confirmed = 0;
  std::uint64_t last_tag = 0;
  std::vector<std::uint64_t> tag_of_publish;  // delivery tag of publish seq i + 1

  bool read(amqp_connection_state_t conn) {
    amqp_frame_t f;
    if (amqp_simple_wait_frame(conn, &f) != AMQP_STATUS_OK) return false;
    if (f.frame_type != AMQP_FRAME_METHOD || f.payload.method.id != AMQP_BASIC_ACK_METHOD) {
      return true;
    }
    const auto* ack = static_cast<amqp_basic_ack_t*>(f.payload.method.decoded);
    if (ack->delivery_tag <= confirmed) return true;
    confirmed = ack->delivery_tag;
    const std::uint64_t tag = tag_of_publish[confirmed - 1];
    if (tag > last_tag) {
      amqp_basic_ack(conn, 1, tag, 1);
      last_tag = tag;
    }
    return true;
  }
};

// bare: consume from bench.in (prefetch 256), publish each to bench.out with confirms, and
// ack the deliveries once the confirms for their copies arrived (multiple-ack).
double bare_loop(RabbitServer& rabbit, int n) {
  rabbit.declare_queue("bench.in");
  rabbit.declare_queue("bench.out");
  {
    Amqp pub(rabbit.port());
    const std::string body = order_created("o_bare", 1);
    for (int i = 0; i < n; ++i) pub.publish("", "bench.in", body);
  }
  while (rabbit.queue_depth("bench.in") < static_cast<std::uint32_t>(n))
    std::this_thread::sleep_for(10ms);
  Amqp a(rabbit.port());
  consume_with_confirms(a, "bench.in");
  const auto t0 = steady_clock::now();
  ConfirmAcks acks;
  acks.tag_of_publish.reserve(static_cast<std::size_t>(n));
  int done = 0;
  while (done < n) {
    amqp_envelope_t env;
    amqp_maybe_release_buffers(a.conn);
    amqp_rpc_reply_t r = amqp_consume_message(a.conn, &env, nullptr, 0);
    if (r.reply_type == AMQP_RESPONSE_NORMAL) {
      amqp_basic_properties_t p{};
      p._flags = AMQP_BASIC_DELIVERY_MODE_FLAG;
      p.delivery_mode = 2;
      amqp_basic_publish(a.conn, 2, amqp_empty_bytes, amqp_cstring_bytes("bench.out"), 0, 0, &p,
                         env.message.body);
      acks.tag_of_publish.push_back(env.delivery_tag);
      amqp_destroy_envelope(&env);
      continue;
    }
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
        r.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
      if (!acks.read(a.conn)) break;
      done = static_cast<int>(acks.confirmed);
      continue;
    }
    break;
  }
  const double secs = duration<double>(steady_clock::now() - t0).count();
  return done / secs;
}

// The reference: bare_loop plus the saga step's minimal work, pipelined on one Redis
// connection. Returns the rate; *cpu gets this process's and redis-server's CPU seconds.
constexpr const char* kRefScript =
    "if redis.call('SET', KEYS[1], '1', 'NX', 'EX', 86400) then "
    "redis.call('HSET', KEYS[2], 'version', 1, 'state', ARGV[1], 'status', 'running') "
    "return 1 end return 0";

// With `paced` (the latency run): nothing is pre-published; the loop serves the queue `in`
// (fed by the caller) until n are done or *paced is set.
double reference_loop(RabbitServer& rabbit, RedisServer& redis, int n, int round,
                      std::pair<double, double>* cpu, const std::atomic<bool>* paced = nullptr,
                      const std::string& paced_in = {}) {
  const std::string in = paced ? paced_in : "bench.ref.in." + std::to_string(round);
  rabbit.declare_queue(in);
  rabbit.declare_queue("bench.ref.out");
  if (!paced) {
    {
      Amqp pub(rabbit.port());
      for (int i = 0; i < n; ++i) {
        const std::string order = "o_ref" + std::to_string(round) + "_" + std::to_string(i);
        pub.publish("", in, order_created(order, i % 16));
      }
    }
    while (rabbit.queue_depth(in) < static_cast<std::uint32_t>(n))
      std::this_thread::sleep_for(10ms);
  }
  redisContext* rc = redisConnect("127.0.0.1", redis.port());
  if (rc == nullptr || rc->err != 0) throw std::runtime_error("reference: redis connect");
  auto* load = static_cast<redisReply*>(redisCommand(rc, "SCRIPT LOAD %s", kRefScript));
  if (load == nullptr || load->type != REDIS_REPLY_STRING) throw std::runtime_error("SCRIPT LOAD");
  const std::string sha(load->str, load->len);
  freeReplyObject(load);

  Amqp a(rabbit.port());
  consume_with_confirms(a, in);
  simdjson::ondemand::parser parser;
  struct Held {
    std::uint64_t tag;
    std::string order;
    simdjson::padded_string body;
  };
  std::vector<Held> batch;
  ConfirmAcks acks;
  acks.tag_of_publish.reserve(static_cast<std::size_t>(n));
  int done = 0;
  steady_clock::time_point t0{};
  double self0 = 0, redis0 = 0;
  auto step_batch = [&] {
    // One pipelined round of EVALSHAs for the deliveries at hand, then their publishes.
    for (const auto& h : batch) {
      const std::string dedup = "ref:dedup:evt_" + h.order;
      const std::string saga = "ref:saga:" + h.order;
      const char* argv[] = {"EVALSHA",     sha.c_str(),  "2",
                            dedup.c_str(), saga.c_str(), h.body.data()};
      const std::size_t lens[] = {7, sha.size(), 1, dedup.size(), saga.size(), h.body.size()};
      redisAppendCommandArgv(rc, 6, argv, lens);
    }
    for (const auto& h : batch) {
      void* reply = nullptr;
      if (redisGetReply(rc, &reply) != REDIS_OK) throw std::runtime_error("reference: redis");
      freeReplyObject(reply);
      const std::string out =
          R"({"id":")" + h.order +
          R"(:inventory.reserve","type":"inventory.reserve","data":{"order_id":")" + h.order +
          R"("}})";
      amqp_basic_properties_t p{};
      p._flags = AMQP_BASIC_DELIVERY_MODE_FLAG;
      p.delivery_mode = 2;
      amqp_basic_publish(a.conn, 2, amqp_empty_bytes, amqp_cstring_bytes("bench.ref.out"), 0, 0, &p,
                         amqp_cstring_bytes(out.c_str()));
      acks.tag_of_publish.push_back(h.tag);
    }
    batch.clear();
  };
  while (done < n && !(paced && *paced)) {
    amqp_envelope_t env;
    amqp_maybe_release_buffers(a.conn);
    timeval zero{0, 0};
    timeval idle{0, 100000};  // paced: wake up to see *paced
    amqp_rpc_reply_t r =
        amqp_consume_message(a.conn, &env, !batch.empty() ? &zero : (paced ? &idle : nullptr), 0);
    if (r.reply_type == AMQP_RESPONSE_NORMAL) {
      if (t0 == steady_clock::time_point{}) {
        t0 = steady_clock::now();
        self0 = sagaflow::bench::process_cpu(::getpid());
        redis0 = sagaflow::bench::process_cpu(redis.pid());
      }
      Held h{env.delivery_tag,
             {},
             simdjson::padded_string(static_cast<const char*>(env.message.body.bytes),
                                     env.message.body.len)};
      simdjson::ondemand::document doc;
      std::string_view order;
      if (parser.iterate(h.body).get(doc) == simdjson::SUCCESS &&
          doc["data"]["order_id"].get_string().get(order) == simdjson::SUCCESS) {
        h.order = std::string(order);
      }
      batch.push_back(std::move(h));
      amqp_destroy_envelope(&env);
      if (batch.size() >= 256) step_batch();
      continue;
    }
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && r.library_error == AMQP_STATUS_TIMEOUT) {
      if (!batch.empty()) step_batch();
      continue;
    }
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
        r.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
      if (!acks.read(a.conn)) break;
      done = static_cast<int>(acks.confirmed);
      continue;
    }
    break;
  }
  const double secs = duration<double>(steady_clock::now() - t0).count();
  if (cpu != nullptr) {
    *cpu = {sagaflow::bench::process_cpu(::getpid()) - self0,
            sagaflow::bench::process_cpu(redis.pid()) - redis0};
  }
  redisFree(rc);
  return done / secs;
}

// Redis commands executed per message since the last CONFIG RESETSTAT (those inside scripts
// count, and the script calls themselves), in total and by command (the script calls and
// those of >= 0.05 per message), each with the µs Redis counted in it per message (a script's
// includes the commands it called), e.g. "4.31: evalsha 0.02 (20.1 us), hset 1.00 (2.3 us), ...".
std::string commands_per_message(RedisServer& redis, int n) {
  const auto stats = sagaflow::bench::parse_commandstats(redis.command({"INFO", "commandstats"}));
  long long all = 0;
  std::string each;
  for (const auto& [name, st] : stats) {
    if (name == "info" || name == "config") continue;  // this bench's own
    all += st.calls;
    const double per = static_cast<double>(st.calls) / n;
    if (per >= 0.05 || name == "evalsha") {
      each += fmt::format("{}{} {:.2f} ({:.1f} us)", each.empty() ? "" : ", ", name, per,
                          static_cast<double>(st.usec) / n);
    }
  }
  return fmt::format("{:.2f}: {}", static_cast<double>(all) / n, each);
}

struct Env {
  std::vector<std::pair<std::string, std::string>> vars;
};

// The depth of a queue, on a connection kept open (a passive queue.declare per call).
std::uint32_t depth_of(Amqp& a, const char* queue) {
  amqp_queue_declare_ok_t* ok =
      amqp_queue_declare(a.conn, 1, amqp_cstring_bytes(queue), 1, 0, 0, 0, amqp_empty_table);
  return ok != nullptr ? ok->message_count : 0;
}

double ours(RabbitServer& rabbit, RedisServer& redis, const Env& env, const std::string& bin, int n,
            int round, std::pair<double, double>* cpu) {
  rabbit.purge("sagaflow.participants");
  {
    Amqp pub(rabbit.port());
    for (int i = 0; i < n; ++i) {
      const std::string order = "o_tp" + std::to_string(round) + "_" + std::to_string(i);
      pub.publish("sagaflow.events", "order.created", order_created(order, i % 16), "evt_" + order);
    }
  }
  Amqp poll(rabbit.port());
  while (depth_of(poll, "sagaflow.saga") < static_cast<std::uint32_t>(n))
    std::this_thread::sleep_for(10ms);
  Process worker({bin, "worker"}, env.vars, false);
  // Time from the first command seen to the last: excludes the worker's start-up.
  steady_clock::time_point first{};
  double worker0 = 0, redis0 = 0;
  std::uint32_t depth = 0;
  const auto give_up = steady_clock::now() + 300s;
  while (depth < static_cast<std::uint32_t>(n) && steady_clock::now() < give_up) {
    depth = depth_of(poll, "sagaflow.participants");
    if (depth > 0 && first == steady_clock::time_point{}) {
      first = steady_clock::now();
      worker0 = sagaflow::bench::process_cpu(worker.pid());
      redis0 = sagaflow::bench::process_cpu(redis.pid());
    }
    std::this_thread::sleep_for(2ms);
  }
  const double secs = duration<double>(steady_clock::now() - first).count();
  if (cpu != nullptr) {
    *cpu = {sagaflow::bench::process_cpu(worker.pid()) - worker0,
            sagaflow::bench::process_cpu(redis.pid()) - redis0};
  }
  worker.signal(SIGTERM);
  worker.wait_for(15s);
  if (depth < static_cast<std::uint32_t>(n)) {
    std::fprintf(stderr, "ours: only %u of %d commands arrived\n", depth, n);
    return 0;
  }
  return n / secs;
}

// order.created published at `rate` for `seconds` (to exchange / key), each one's command
// timed when it arrives on `out` (matched by the order's number in its message id or body).
// Returns the latencies in ms, sorted.
std::vector<double> paced_latency(RabbitServer& rabbit, const char* exchange,
                                  const std::string& key, const std::string& out, double rate,
                                  int seconds) {
  const int n = static_cast<int>(rate * seconds);
  std::vector<steady_clock::time_point> sent(static_cast<std::size_t>(n));
  std::vector<double> lat;
  lat.reserve(static_cast<std::size_t>(n));
  std::atomic<bool> stop{false};
  std::atomic<int> published{0};
  std::thread consumer([&] {
    Amqp c(rabbit.port());
    amqp_basic_consume(c.conn, 1, amqp_cstring_bytes(out.c_str()), amqp_empty_bytes, 0, 1, 0,
                       amqp_empty_table);
    amqp_get_rpc_reply(c.conn);
    while (!stop && static_cast<int>(lat.size()) < n) {
      amqp_envelope_t e;
      amqp_maybe_release_buffers(c.conn);
      timeval tv{0, 200000};
      if (amqp_consume_message(c.conn, &e, &tv, 0).reply_type != AMQP_RESPONSE_NORMAL) continue;
      const auto now = steady_clock::now();
      std::string id(static_cast<char*>(e.message.properties.message_id.bytes),
                     e.message.properties.message_id.len);
      if (id.find("o_lat_") == std::string::npos) {
        id.assign(static_cast<char*>(e.message.body.bytes), e.message.body.len);
      }
      const auto at = id.find("o_lat_");
      const int i = at == std::string::npos ? -1 : std::atoi(id.c_str() + at + 6);
      if (i >= 0 && i < published.load())
        lat.push_back(
            duration<double, std::milli>(now - sent[static_cast<std::size_t>(i)]).count());
      amqp_destroy_envelope(&e);
    }
  });
  {
    Amqp pub(rabbit.port());
    const auto t0 = steady_clock::now();
    for (int i = 0; i < n; ++i) {
      const auto due = t0 + duration_cast<steady_clock::duration>(duration<double>(i / rate));
      std::this_thread::sleep_until(due);
      const std::string order = "o_lat_" + std::to_string(i);
      sent[static_cast<std::size_t>(i)] = steady_clock::now();
      published = i + 1;
      pub.publish(exchange, key, order_created(order, i % 16), "evt_" + order);
    }
  }
  const auto give_up = steady_clock::now() + 30s;
  while (static_cast<int>(lat.size()) < n && steady_clock::now() < give_up)
    std::this_thread::sleep_for(20ms);
  stop = true;
  consumer.join();
  std::sort(lat.begin(), lat.end());
  return lat;
}

void print_latency(const char* who, const std::vector<double>& lat, int n) {
  if (lat.empty()) {
    std::printf("  %-44s no command arrived\n", who);
    return;
  }
  auto pct = [&](double p) {
    return lat[std::min(lat.size() - 1, static_cast<std::size_t>(p * lat.size()))];
  };
  std::printf("  %-44s %zu of %d: p50 %.2f ms  p99 %.2f ms  max %.2f ms\n", who, lat.size(), n,
              pct(0.50), pct(0.99), lat.back());
}

// At half of our maximum rate: our worker, then the reference loop doing the same job at the
// same rate (what this machine and broker give such a loop: the floor of our latency).
void latency(RabbitServer& rabbit, RedisServer& redis, const Env& env, const std::string& bin,
             double rate, int seconds) {
  const int n = static_cast<int>(rate * seconds);
  std::printf(
      "latency at %.0f orders/s for %d s, order.created published -> its "
      "inventory.reserve received:\n",
      rate, seconds);
  rabbit.purge("sagaflow.participants");
  {
    Process worker({bin, "worker"}, env.vars, false);
    std::this_thread::sleep_for(1500ms);
    const auto lat = paced_latency(rabbit, "sagaflow.events", "order.created",
                                   "sagaflow.participants", rate, seconds);
    worker.signal(SIGTERM);
    worker.wait_for(15s);
    print_latency("sagaflow worker", lat, n);
  }
  {
    rabbit.declare_queue("bench.ref.out");
    rabbit.purge("bench.ref.out");
    std::atomic<bool> done{false};
    std::thread loop([&] { reference_loop(rabbit, redis, n, 0, nullptr, &done, "bench.ref.lat"); });
    std::this_thread::sleep_for(500ms);
    const auto lat = paced_latency(rabbit, "", "bench.ref.lat", "bench.ref.out", rate, seconds);
    done = true;
    loop.join();
    print_latency("reference loop (same job, same rate)", lat, n);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 20000;
  const char* b = std::getenv("SAGAFLOW_BINARY");
  const std::string bin = b ? b : "./app/sagaflow";
  RedisServer redis;
  RabbitServer rabbit;
  Env env{{{"SAGAFLOW_AMQP_URL", rabbit.amqp_url()},
           {"SAGAFLOW_REDIS_URL", redis.url()},
           {"SAGAFLOW_METRICS_ADDR", "0"},
           {"SAGAFLOW_LOG_LEVEL", "warn"},
           {"SAGAFLOW_PLANS", "free=10000000/s:10000000"}}};
  Process topo({bin, "topology", "apply"}, env.vars);
  if (topo.wait_for(30s).value_or(-1) != 0) {
    std::fprintf(stderr, "topology apply failed: %s\n", topo.read_stderr().c_str());
    return 1;
  }
  const int rounds = argc > 2 ? std::max(1, std::atoi(argv[2])) : 2;
  std::printf("saga_bench: %d messages x %d rounds, RabbitMQ %s, Redis %s\n", n, rounds,
              rabbit.amqp_url().c_str(), redis.url().c_str());
  std::printf("%-5s %-44s %10s | %s\n", "round", "path", "rate",
              "CPU us per message (loop or worker, redis)");
  double last_ours = 0;
  for (int round = 1; round <= rounds; ++round) {
    const double bare = bare_loop(rabbit, n);
    std::printf("%-5d %-44s %8.0f/s |\n", round, "bare: consume -> publish+confirm -> ack", bare);
    std::pair<double, double> ref_cpu{}, our_cpu{};
    redis.command({"CONFIG", "RESETSTAT"});
    const double ref = reference_loop(rabbit, redis, n, round, &ref_cpu);
    const std::string ref_commands = commands_per_message(redis, n);
    std::printf("%-5d %-44s %8.0f/s | %.1f, %.1f\n", round,
                "reference: + parse + 1 EVALSHA (pipelined)", ref, ref_cpu.first / n * 1e6,
                ref_cpu.second / n * 1e6);
    redis.command({"CONFIG", "RESETSTAT"});
    const double our = ours(rabbit, redis, env, bin, n, round, &our_cpu);
    const std::string our_commands = commands_per_message(redis, n);
    std::printf("%-5d %-44s %8.0f/s | %.1f, %.1f\n", round, "sagaflow worker (1 process)", our,
                our_cpu.first / n * 1e6, our_cpu.second / n * 1e6);
    std::printf(
        "%-5d ours/reference %.2f, ours/bare %.2f; CPU (worker + redis) / (loop + redis) "
        "per message %.2f\n",
        round, ref > 0 ? our / ref : 0.0, bare > 0 ? our / bare : 0.0,
        (our_cpu.first + our_cpu.second) / std::max(1e-9, ref_cpu.first + ref_cpu.second));
    std::printf("%-5d Redis commands per message: reference %s\n", round, ref_commands.c_str());
    std::printf("%-5d Redis commands per message: ours %s\n", round, our_commands.c_str());
    std::fflush(stdout);
    last_ours = our;
  }
  if (last_ours > 0) latency(rabbit, redis, env, bin, last_ours / 2, 5);
  return 0;
}
