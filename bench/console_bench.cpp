// console_bench: the console's overview and lists over a large Redis (issue 15's target: the
// overview of 1,000,000 finished and 10,000 running sagas renders in under 1 s).
//
// Starts its own redis-server, fills it through the real apply path (apply.lua, pipelined):
// `finished` sagas that end confirmed (90 %) or failed with reason payment_failed (10 %), then
// `running` ones with a deadline; starts `sagaflow console` on it and measures, over one
// keep-alive connection, alternating rounds of
//   GET /api/overview, GET / + /static/console.js (the page), GET /api/sagas?state=running,
//   GET /api/sagas?reason=payment_failed&limit=50,
// with p50 / p99 / max, Redis commands per overview (INFO commandstats deltas), and the CPU of
// the console and of Redis over the timed span. As the reference, a keyspace SCAN (what an
// overview without the indexes would at least cost) is timed once. With
// bench/console_render.py and chromium present, the time from navigation to the overview's
// numbers on screen in a headless browser is measured too.
//
// usage: SAGAFLOW_BINARY=build/app/sagaflow console_bench [finished=1000000] [running=10000]
//        [rounds=200]
#include <uv.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "bench_util.hpp"
#include "core/log.hpp"
#include "store/redis_client.hpp"
#include "store/saga_store.hpp"
#include "support/raw_http.hpp"
#include "support/servers.hpp"

using namespace sagaflow;
using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

namespace {

Millis wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Runs n applies with `in_flight` outstanding on one pipelined connection.
double fill(uv_loop_t* loop, store::SagaStore& sagas, long n,
            const std::function<store::ApplyRequest(long)>& make) {
  long started = 0, done = 0, failed = 0;
  const auto t0 = SteadyClock::now();
  std::function<void()> next = [&] {
    if (started >= n) return;
    const long i = started++;
    sagas.apply(make(i), [&](Result<store::ApplyOutcome> r) {
      ++done;
      if (!r) ++failed;
      next();
    });
  };
  for (int k = 0; k < 512; ++k) next();
  while (done < n) uv_run(loop, UV_RUN_ONCE);
  if (failed > 0) std::fprintf(stderr, "%ld applies failed\n", failed);
  return std::chrono::duration<double>(SteadyClock::now() - t0).count();
}

std::int64_t info_field(testing::RedisServer& redis, const std::string& section,
                        const std::string& key) {
  const std::string text = redis.command({"INFO", section});
  const auto at = text.find(key + ":");
  if (at == std::string::npos) return 0;
  return std::atoll(text.c_str() + at + key.size() + 1);
}

std::int64_t commands_processed(testing::RedisServer& redis) {
  return info_field(redis, "stats", "total_commands_processed");
}

struct Sample {
  std::vector<double> ms;
  void add(double v) { ms.push_back(v); }
  std::string line(const char* what) {
    return fmt::format("  {:<44} p50 {:7.2f} ms   p99 {:7.2f} ms   max {:7.2f} ms", what,
                       bench::percentile(ms, 0.5), bench::percentile(ms, 0.99),
                       bench::percentile(ms, 1.0));
  }
};

}  // namespace

int main(int argc, char** argv) {
  const long finished = argc > 1 ? std::atol(argv[1]) : 1000000;
  const long running = argc > 2 ? std::atol(argv[2]) : 10000;
  const int rounds = argc > 3 ? std::atoi(argv[3]) : 200;
  log::set_level(log::Level::error);

  testing::RedisServer redis;
  uv_loop_t loop;
  uv_loop_init(&loop);
  store::RedisClientOptions ro;
  ro.endpoint.host = "127.0.0.1";
  ro.endpoint.port = redis.port();
  store::RedisClient client(&loop, ro);
  client.start();
  store::SagaStoreOptions so;
  so.partitions = 16;
  store::SagaStore sagas(client, so);

  const Millis now = wall_ms();
  const double fill_finished = fill(&loop, sagas, finished, [&](long i) {
    store::ApplyRequest r;
    r.order_id = OrderId(fmt::format("f{}", i));
    const bool failed = i % 10 == 0;
    r.new_status = failed ? "failed" : "confirmed";
    r.reason = failed ? "payment_failed" : "";
    r.new_state = fmt::format(
        R"({{"schema":1,"saga":"order_fulfillment","order_id":"f{}","state":"{}","status":"{}"{}}})",
        i, r.new_status, r.new_status, failed ? R"(,"reason":"payment_failed")" : "");
    r.finished = true;
    r.store_id = StoreId(std::string("s1"));
    r.updated_at = now - (finished - i);  // one per ms, oldest first
    return r;
  });
  const double fill_running = fill(&loop, sagas, running, [&](long i) {
    store::ApplyRequest r;
    r.order_id = OrderId(fmt::format("r{}", i));
    r.new_status = "running";
    r.new_state = fmt::format(
        R"({{"schema":1,"saga":"order_fulfillment","order_id":"r{}","state":"running","status":"running"}})",
        i);
    r.deadline = now + 3600 * 1000;
    r.store_id = StoreId(std::string("s1"));
    r.updated_at = now + i;
    return r;
  });
  client.stop();
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);

  std::printf("filled through apply.lua: %ld finished in %.1f s (%.0f/s), %ld running in %.1f s\n",
              finished, fill_finished, static_cast<double>(finished) / fill_finished, running,
              fill_running);
  std::printf("redis: %s keys, used_memory %.0f MiB\n", redis.command({"DBSIZE"}).c_str(),
              static_cast<double>(info_field(redis, "memory", "used_memory")) / (1 << 20));

  const int port = testing::free_port();
  testing::Process console({testing::sagaflow_binary(), "console"},
                           {{"SAGAFLOW_REDIS_URL", redis.url()},
                            {"SAGAFLOW_METRICS_ADDR", "0"},
                            {"SAGAFLOW_LOG_LEVEL", "error"},
                            {"SAGAFLOW_AMQP_URL", "amqp://guest:guest@127.0.0.1:1/"},
                            {"SAGAFLOW_CONSOLE_ADDR", fmt::format("127.0.0.1:{}", port)}});
  const std::string host = fmt::format("Host: 127.0.0.1:{}\r\n", port);
  if (!testing::wait_until_answers(port)) {
    std::fprintf(stderr, "the console did not start\n");
    return 1;
  }
  testing::RawConn conn(port);
  auto get = [&](const std::string& path, Sample& s) {
    const auto t0 = SteadyClock::now();
    if (!conn.send("GET " + path + " HTTP/1.1\r\n" + host + "\r\n"))
      throw std::runtime_error("send");
    const auto a = conn.read_answer(30s);
    s.add(std::chrono::duration<double, std::milli>(SteadyClock::now() - t0).count());
    if (a.status != 200) throw std::runtime_error(fmt::format("{}: {} {}", path, a.status, a.body));
    return a;
  };
  Sample overview, page, running_list, reason_list;
  std::string first_overview;
  const double console_cpu0 = bench::process_cpu(console.pid());
  const double redis_cpu0 = bench::process_cpu(redis.pid());
  std::int64_t overview_commands = 0;
  const auto t0 = SteadyClock::now();
  for (int r = 0; r < rounds; ++r) {
    const std::int64_t c0 = commands_processed(redis);
    const auto o = get("/api/overview", overview);
    overview_commands += commands_processed(redis) - c0 - 1;  // minus this INFO
    if (r == 0) first_overview = o.body;
    Sample page_parts;
    const auto p0 = SteadyClock::now();
    get("/", page_parts);
    get("/static/console.js", page_parts);
    get("/static/console.css", page_parts);
    page.add(std::chrono::duration<double, std::milli>(SteadyClock::now() - p0).count());
    get("/api/sagas?state=running", running_list);
    get("/api/sagas?reason=payment_failed&limit=50", reason_list);
  }
  const double span = std::chrono::duration<double>(SteadyClock::now() - t0).count();
  const double console_cpu = bench::process_cpu(console.pid()) - console_cpu0;
  const double redis_cpu = bench::process_cpu(redis.pid()) - redis_cpu0;

  std::printf("overview: %s\n", first_overview.c_str());
  std::printf("%d rounds in %.2f s (every request on one keep-alive connection):\n", rounds, span);
  std::puts(overview.line("GET /api/overview").c_str());
  std::puts(page.line("GET / + console.js + console.css").c_str());
  std::puts(running_list.line("GET /api/sagas?state=running (50)").c_str());
  std::puts(reason_list.line("GET /api/sagas?reason=payment_failed (50)").c_str());
  std::printf("  Redis commands per overview: %.1f\n",
              static_cast<double>(overview_commands) / rounds);
  std::printf("  CPU over the span: console %.2f s, redis %.2f s (%.2f ms / round together)\n",
              console_cpu, redis_cpu, (console_cpu + redis_cpu) * 1000 / rounds);

  // The reference: one pass of SCAN over the keyspace (no reads of the records at all).
  {
    const auto s0 = SteadyClock::now();
    std::string cursor = "0";
    long keys = 0, calls = 0;
    do {
      const std::string reply = redis.command({"SCAN", cursor, "COUNT", "1000"});
      const auto nl = reply.find('\n');
      cursor = reply.substr(0, nl);
      if (nl != std::string::npos) {
        for (char c : reply.substr(nl)) keys += c == '\n';
      }
      ++calls;
    } while (cursor != "0");
    std::printf("reference: SCAN of the keyspace (COUNT 1000): %ld keys in %ld calls, %.0f ms\n",
                keys, calls,
                std::chrono::duration<double, std::milli>(SteadyClock::now() - s0).count());
  }

  // In a browser, when chromium and the script are there.
  const char* source = std::getenv("SAGAFLOW_SOURCE_DIR");
  const std::string script = std::string(source ? source : ".") + "/bench/console_render.py";
  if (std::filesystem::exists("/usr/bin/chromium") && std::filesystem::exists(script)) {
    testing::Process render({"/usr/bin/python3", script, fmt::format("http://127.0.0.1:{}/", port)},
                            {});
    render.wait_for(120s);
    std::printf("%s%s", render.read_stdout().c_str(), render.read_stderr().c_str());
  } else {
    std::printf("browser render: skipped (no chromium, or %s missing)\n", script.c_str());
  }
  console.signal(SIGTERM);
  console.wait_for(10s);
  return 0;
}
