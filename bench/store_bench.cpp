// store_bench: the cost of sagaflow's Redis scripts next to the cheapest useful write.
//
// Starts its own redis-server (no persistence) on a free loopback port, then runs, each with a
// fixed number of calls in flight on one pipelined connection:
//   set_nx      SET key 1 NX EX 86400        (a bare dedup mark: the baseline)
//   apply       apply.lua: new saga, one outbox command, a deadline, counters, dedup mark
//   rate_limit  gcra.lua on 1000 stores
// and prints ops/s and the ratio to set_nx, and per op: redis-server's CPU (from /proc), the
// commands Redis executed (INFO commandstats, those inside scripts included), the time Redis
// counted in scripts and in the commands they called, and the difference: the script's own
// cost (the Lua interpreter, its argument and reply conversions).
//
// usage: store_bench [N=100000] [in_flight=256] [redis-server path]
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "bench_util.hpp"
#include "core/log.hpp"
#include "store/rate_limiter.hpp"
#include "store/redis_client.hpp"
#include "store/saga_store.hpp"

using namespace sagaflow;
using namespace sagaflow::store;

namespace {

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    return 0;
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

pid_t spawn_redis(const std::string& binary, int port) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    const std::string p = std::to_string(port);
    ::execlp(binary.c_str(), binary.c_str(), "--port", p.c_str(), "--bind", "127.0.0.1", "--save",
             "", "--appendonly", "no", "--dir", "/tmp", "--loglevel", "warning", "--logfile",
             "/dev/null", static_cast<char*>(nullptr));
    std::_Exit(127);
  }
  return pid;
}

using sagaflow::bench::CommandStat;
using sagaflow::bench::CommandStats;
using sagaflow::bench::parse_commandstats;

struct Phase {
  std::string name;
  double seconds = 0;
  double client_cpu = 0;  // this process' CPU seconds (user + system)
  double redis_cpu = 0;   // redis-server's CPU seconds over the phase
  long ops = 0;
  long errors = 0;
  CommandStats commands;  // executed during the phase
};

// The commands a phase executed, and the share of scripts: (calls, script usec, usec of the
// commands scripts called). Script calls themselves are not counted as commands.
struct CommandCounts {
  long long commands = 0;
  long long script_usec = 0;
  long long other_usec = 0;
};

CommandCounts count(const CommandStats& stats) {
  CommandCounts c;
  for (const auto& [name, st] : stats) {
    if (name == "evalsha" || name == "eval") {
      c.script_usec += st.usec;
    } else if (name != "info" && name != "script|load" && name != "ping") {
      c.commands += st.calls;
      c.other_usec += st.usec;
    }
  }
  return c;
}

double cpu_seconds() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// Runs `n` calls of `issue(i, done)` keeping `in_flight` outstanding.
Phase run_phase(uv_loop_t* loop, const std::string& name, long n, int in_flight,
                const std::function<void(long, std::function<void(bool)>)>& issue) {
  Phase ph;
  ph.name = name;
  long next = 0;
  long completed = 0;
  std::function<void(bool)> on_done = [&](bool ok) {
    ++completed;
    if (!ok) ++ph.errors;
    if (next < n) issue(next++, on_done);
  };
  const auto t0 = std::chrono::steady_clock::now();
  const double cpu0 = cpu_seconds();
  for (int k = 0; k < in_flight && next < n; ++k) issue(next++, on_done);
  while (completed < n) uv_run(loop, UV_RUN_ONCE);
  ph.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ph.client_cpu = cpu_seconds() - cpu0;
  ph.ops = n;
  return ph;
}

}  // namespace

int main(int argc, char** argv) {
  const long n = argc > 1 ? std::atol(argv[1]) : 100000;
  const int in_flight = argc > 2 ? std::atoi(argv[2]) : 256;
  const std::string redis_bin = argc > 3 ? argv[3] : "redis-server";
  if (n <= 0 || in_flight <= 0) {
    std::fprintf(stderr, "usage: store_bench [N] [in_flight] [redis-server]\n");
    return 2;
  }
  log::set_level(log::Level::error);

  const int port = free_port();
  const pid_t redis = spawn_redis(redis_bin, port);
  if (redis <= 0 || port == 0) {
    std::fprintf(stderr, "store_bench: cannot start %s\n", redis_bin.c_str());
    return 1;
  }

  uv_loop_t loop;
  uv_loop_init(&loop);
  RedisClientOptions opts;
  opts.endpoint.host = "127.0.0.1";
  opts.endpoint.port = port;
  opts.command_timeout_ms = 10000;
  opts.heartbeat_ms = 0;
  int rc = 0;
  {
    RedisClient client(&loop, opts);
    client.start();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    uv_timer_t tick;
    uv_timer_init(&loop, &tick);
    uv_timer_start(
        &tick, [](uv_timer_t*) {}, 5, 5);
    while (!client.connected() && std::chrono::steady_clock::now() < deadline) {
      uv_run(&loop, UV_RUN_ONCE);
    }
    uv_timer_stop(&tick);
    uv_close(reinterpret_cast<uv_handle_t*>(&tick), nullptr);
    if (!client.connected()) {
      std::fprintf(stderr, "store_bench: redis-server on port %d never answered\n", port);
      rc = 1;
    } else {
      SagaStore store(client, SagaStoreOptions{16, 86400, 0, 0});
      RateLimiter limiter(client, RateLimiterOptions{});
      const RatePlan plan{"bench", 1000000, 1000, 1000000};
      std::vector<Phase> phases;
      auto commandstats = [&] {
        std::string info;
        bool answered = false;
        client.command({"INFO", "commandstats"}, [&](Result<Reply> r) {
          if (r.ok()) info = r->str;
          answered = true;
        });
        while (!answered) uv_run(&loop, UV_RUN_ONCE);
        return parse_commandstats(info);
      };
      // Runs a phase with Redis' CPU and commands counted over it.
      auto measured = [&](const std::string& name, auto issue) {
        const CommandStats before = commandstats();
        const double cpu0 = bench::process_cpu(redis);
        Phase ph = run_phase(&loop, name, n, in_flight, issue);
        ph.redis_cpu = bench::process_cpu(redis) - cpu0;
        for (const auto& [cmd, st] : commandstats()) {
          const auto it = before.find(cmd);
          const CommandStat b = it == before.end() ? CommandStat{} : it->second;
          if (st.calls != b.calls) ph.commands[cmd] = {st.calls - b.calls, st.usec - b.usec};
        }
        phases.push_back(std::move(ph));
      };

      measured("set_nx", [&](long i, auto done) {
        client.command({"SET", fmt::format("bench:dedup:{}", i), "1", "NX", "EX", "86400"},
                       [done](Result<Reply> r) { done(r.ok() && !r->is_error()); });
      });
      measured("apply", [&](long i, auto done) {
        ApplyRequest req;
        req.order_id = OrderId{fmt::format("ord_{}", i)};
        req.event_id = EventId{fmt::format("evt_{}", i)};
        req.expected_version = 0;
        req.new_state = std::string(300, 's');
        req.new_status = "reserving";
        req.commands.push_back({fmt::format("ord_{}:inventory.reserve", i), "sagaflow.commands",
                                "inventory.reserve", std::string(250, 'b')});
        req.deadline = 4102444800000;
        store.apply(
            req, [done](Result<ApplyOutcome> r) { done(r.ok() && r->kind == ApplyKind::applied); });
      });

      measured("rate_limit", [&](long i, auto done) {
        limiter.admit_with(StoreId{fmt::format("store_{}", i % 1000)}, plan,
                           [done](Result<Admission> r) { done(r.ok()); });
      });

      std::printf("store_bench: redis-server on 127.0.0.1:%d, N=%ld, in flight %d\n", port, n,
                  in_flight);
      std::printf("%-12s %10s %9s %12s %9s %11s %7s\n", "phase", "ops", "seconds", "ops/s",
                  "vs set_nx", "client cpu", "errors");
      const double base = static_cast<double>(phases[0].ops) / phases[0].seconds;
      for (const auto& ph : phases) {
        const double rate = static_cast<double>(ph.ops) / ph.seconds;
        std::printf("%-12s %10ld %9.3f %12.0f %8.2fx %10.2fs %7ld\n", ph.name.c_str(), ph.ops,
                    ph.seconds, rate, rate / base, ph.client_cpu, ph.errors);
        if (ph.errors != 0) rc = 1;
      }
      std::printf(
          "\nper op, in redis-server: CPU (/proc); commands executed (scripts' included,\n"
          "script calls not); time in scripts, in the commands they and the client called,\n"
          "and the scripts' own (script - their commands; the Lua interpreter's share)\n");
      std::printf("%-12s %10s %9s %10s %10s %10s  %s\n", "phase", "cpu us", "commands", "script us",
                  "cmds us", "lua us", "by command (calls per op)");
      for (const auto& ph : phases) {
        const auto ops = static_cast<double>(ph.ops);
        const CommandCounts c = count(ph.commands);
        std::string by;
        for (const auto& [cmd, st] : ph.commands) {
          if (cmd == "info") continue;
          by += fmt::format(" {} {:.2f}", cmd, static_cast<double>(st.calls) / ops);
        }
        const double script = static_cast<double>(c.script_usec) / ops;
        // Commands called by scripts run inside the script's time; a phase without scripts
        // has no Lua share.
        const double cmds = static_cast<double>(c.other_usec) / ops;
        std::printf("%-12s %10.1f %9.2f %10.1f %10.1f %10.1f %s\n", ph.name.c_str(),
                    ph.redis_cpu * 1e6 / ops, static_cast<double>(c.commands) / ops, script, cmds,
                    script > 0 ? script - cmds : 0.0, by.c_str());
      }
    }
    client.stop();
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  ::kill(redis, SIGTERM);
  int status = 0;
  ::waitpid(redis, &status, 0);
  return rc;
}
