// Parked starts under a flood (issue 10): one store floods (N order.created on a plan of R/s),
// then 1,000 orders of 100 other stores arrive at a steady rate while the flood is parked.
//
//   - the flooded store's start rate (inventory.reserve on the broker) against its plan;
//   - the other stores' start latency (order.created published -> inventory.reserve received):
//     p50 / p99 / max, which the contract wants under 100 ms whatever is parked;
//   - how long one worker takes to park the flood (intake is never held by it).
//
// Usage: park_bench [N=100000] [R=2000] [WORKERS=1]
// (needs redis-server and rabbitmq-server installed; it starts its own on free loopback ports,
// and the sagaflow binary from SAGAFLOW_BINARY or ./app/sagaflow)
#include <amqp.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.hpp"
#include "support/servers.hpp"

using namespace std::chrono;
using sagaflow::testing::Process;
using sagaflow::testing::RabbitServer;
using sagaflow::testing::RedisServer;

namespace {

std::string order_created(const std::string& order, const std::string& store) {
  return R"({"id":"evt_)" + order + R"(","type":"order.created","store_id":")" + store +
         R"(","data":{"order_id":")" + order +
         R"(","customer_id":"c_1","total":"12.30","currency":"EUR","items":[{"sku":"S","qty":1,"price":"12.30"}]}})";
}

struct Publisher {
  amqp_connection_state_t conn;
  explicit Publisher(const sagaflow::AmqpEndpoint& ep) : conn(sagaflow::bench::bare_connect(ep)) {}
  ~Publisher() { sagaflow::bench::bare_close(conn); }
  void order(const std::string& id, const std::string& store) {
    amqp_basic_properties_t p = sagaflow::bench::persistent_json();
    const std::string mid = "evt_" + id;
    p.message_id = amqp_cstring_bytes(mid.c_str());
    const std::string body = order_created(id, store);
    amqp_basic_publish(conn, 1, amqp_cstring_bytes("sagaflow.events"),
                       amqp_cstring_bytes("order.created"), 0, 0, &p,
                       amqp_cstring_bytes(body.c_str()));
  }
};

// Consumes sagaflow.participants (no-ack) and records when each inventory.reserve arrived.
class Starts {
 public:
  explicit Starts(const sagaflow::AmqpEndpoint& ep, std::size_t calm)
      : calm_at_(calm), thread_([this, ep] { run(ep); }) {}
  ~Starts() {
    stop_ = true;
    thread_.join();
  }
  std::size_t flood() const { return flood_.load(); }
  std::size_t calm() const { return calm_seen_.load(); }
  // Flood starts seen between two instants of the run.
  std::vector<steady_clock::time_point> flood_times() {
    std::lock_guard lock(mutex_);
    return flood_times_;
  }
  std::vector<steady_clock::time_point> calm_times() {
    std::lock_guard lock(mutex_);
    return calm_at_;
  }

 private:
  void run(const sagaflow::AmqpEndpoint& ep) {
    amqp_connection_state_t c = sagaflow::bench::bare_connect(ep);
    amqp_basic_consume(c, 1, amqp_cstring_bytes("sagaflow.participants"), amqp_empty_bytes, 0, 1, 0,
                       amqp_empty_table);
    amqp_get_rpc_reply(c);
    while (!stop_) {
      amqp_envelope_t e;
      amqp_maybe_release_buffers(c);
      timeval tv{0, 100000};
      if (amqp_consume_message(c, &e, &tv, 0).reply_type != AMQP_RESPONSE_NORMAL) continue;
      const auto now = steady_clock::now();
      const std::string id(static_cast<char*>(e.message.properties.message_id.bytes),
                           e.message.properties.message_id.len);
      amqp_destroy_envelope(&e);
      if (id.find(":inventory.reserve") == std::string::npos) continue;
      std::lock_guard lock(mutex_);
      if (id.rfind("f_", 0) == 0) {
        flood_times_.push_back(now);
        flood_++;
      } else if (id.rfind("c_", 0) == 0) {
        const std::size_t i = std::strtoul(id.c_str() + 2, nullptr, 10);
        if (i < calm_at_.size() && calm_at_[i] == steady_clock::time_point{}) {
          calm_at_[i] = now;
          calm_seen_++;
        }
      }
    }
    sagaflow::bench::bare_close(c);
  }

  std::mutex mutex_;
  std::vector<steady_clock::time_point> flood_times_;
  std::vector<steady_clock::time_point> calm_at_;
  std::atomic<std::size_t> flood_{0}, calm_seen_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 100000;
  const int rate = argc > 2 ? std::atoi(argv[2]) : 2000;
  const int workers = argc > 3 ? std::atoi(argv[3]) : 1;
  constexpr int kCalm = 1000, kCalmStores = 100, kBurst = 100;
  const char* b = std::getenv("SAGAFLOW_BINARY");
  const std::string bin = b ? b : "./app/sagaflow";
  RedisServer redis;
  RabbitServer rabbit;
  const std::vector<std::pair<std::string, std::string>> env = {
      {"SAGAFLOW_AMQP_URL", rabbit.amqp_url()},
      {"SAGAFLOW_REDIS_URL", redis.url()},
      {"SAGAFLOW_METRICS_ADDR", "0"},
      {"SAGAFLOW_LOG_LEVEL", "warn"},
      {"SAGAFLOW_STEP_TIMEOUT_MS", "3600000"},  // no participant answers: nothing times out
      {"SAGAFLOW_PLANS",
       "free=1000000/s:1000000,flood=" + std::to_string(rate) + "/s:" + std::to_string(kBurst)}};
  Process topo({bin, "topology", "apply"}, env);
  if (topo.wait_for(30s).value_or(-1) != 0) {
    std::fprintf(stderr, "topology apply failed: %s\n", topo.read_stderr().c_str());
    return 1;
  }
  redis.command({"HSET", "sagaflow:store_plans", "flood_store", "flood"});
  sagaflow::AmqpEndpoint ep;
  ep.port = static_cast<std::uint16_t>(rabbit.port());
  std::printf(
      "park_bench: %d starts of one store on %d/s (burst %d), then %d orders of %d other "
      "stores; %d worker(s)\n",
      n, rate, kBurst, kCalm, kCalmStores, workers);

  Starts starts(ep, kCalm);
  {
    Publisher pub(ep);
    for (int i = 0; i < n; ++i) pub.order("f_" + std::to_string(i), "flood_store");
  }
  std::vector<std::unique_ptr<Process>> procs;
  const auto t0 = steady_clock::now();
  for (int w = 0; w < workers; ++w)
    procs.push_back(std::make_unique<Process>(std::vector<std::string>{bin, "worker"}, env, false));
  // Parked: the saga queue is empty (every flood delivery acked).
  while (rabbit.queue_depth("sagaflow.saga") > 0 && steady_clock::now() - t0 < 300s)
    std::this_thread::sleep_for(20ms);
  const double park_s = duration<double>(steady_clock::now() - t0).count();
  std::printf("flood taken in (parked or started) and acked: %.1f s (%.0f/s)\n", park_s,
              n / park_s);

  // The other stores' orders, 200/s, while the flood is parked.
  std::vector<steady_clock::time_point> sent(kCalm);
  {
    Publisher pub(ep);
    const auto c0 = steady_clock::now();
    for (int i = 0; i < kCalm; ++i) {
      std::this_thread::sleep_until(c0 + milliseconds(5 * i));
      sent[static_cast<std::size_t>(i)] = steady_clock::now();
      pub.order("c_" + std::to_string(i), "calm_store_" + std::to_string(i % kCalmStores));
    }
  }
  const auto give_up = steady_clock::now() + 30s;
  while (starts.calm() < kCalm && steady_clock::now() < give_up) std::this_thread::sleep_for(20ms);
  const std::size_t parked_left = static_cast<std::size_t>(n) - starts.flood();
  std::vector<double> lat;
  const auto calm_at = starts.calm_times();
  for (int i = 0; i < kCalm; ++i) {
    if (calm_at[static_cast<std::size_t>(i)] == steady_clock::time_point{}) continue;
    lat.push_back(duration<double, std::milli>(calm_at[static_cast<std::size_t>(i)] -
                                               sent[static_cast<std::size_t>(i)])
                      .count());
  }
  std::vector<double> sorted = lat;
  const double p50 = sagaflow::bench::percentile(sorted, 0.50);
  const double p99 = sagaflow::bench::percentile(sorted, 0.99);
  std::printf(
      "other stores: %zu of %d started; publish -> inventory.reserve p50 %.2f ms  p99 "
      "%.2f ms  max %.2f ms  (flood still parked then: %zu)\n",
      lat.size(), kCalm, p50, p99, sorted.empty() ? 0.0 : sorted.back(), parked_left);

  // The flood's start rate over 10 s of the steady state (after the burst).
  const auto m0 = steady_clock::now();
  const std::size_t f0 = starts.flood();
  std::this_thread::sleep_for(10s);
  const std::size_t f1 = starts.flood();
  const double secs = duration<double>(steady_clock::now() - m0).count();
  const double got = static_cast<double>(f1 - f0) / secs;
  std::printf(
      "flooded store: %.0f starts/s over %.1f s against its plan of %d/s (%.1f %%)%s\n", got, secs,
      rate, 100.0 * got / rate,
      f1 >= static_cast<std::size_t>(n) ? " (backlog ran out: measure with a larger N)" : "");
  for (auto& p : procs) {
    p->signal(SIGTERM);
    p->wait_for(15s);
  }
  return 0;
}
