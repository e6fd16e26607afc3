#include "harness.hpp"

#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <stdexcept>

#include "support/raw_http.hpp"

namespace sagaflow::e2e {

using namespace std::chrono_literals;
using testing::Process;
using testing::sagaflow_binary;

Process& Processes::start_worker(const std::string& name) {
  workers.emplace_back(
      name,
      std::make_unique<Process>(std::vector<std::string>{sagaflow_binary(), "worker"}, env, false));
  return *workers.back().second;
}

Process& Processes::start_ready_worker(const std::string& name) {
  const int port = testing::free_port();
  Env worker_env = env;
  std::erase_if(worker_env, [](const auto& kv) { return kv.first == "SAGAFLOW_METRICS_ADDR"; });
  worker_env.emplace_back("SAGAFLOW_METRICS_ADDR", "127.0.0.1:" + std::to_string(port));
  workers.emplace_back(
      name, std::make_unique<Process>(std::vector<std::string>{sagaflow_binary(), "worker"},
                                      std::move(worker_env), false));
  Process& p = *workers.back().second;
  if (!testing::wait_until_answers(port, "/readyz", 30s)) {
    FAIL("worker " << name << " not ready within 30 s; stderr: " << tail(p.read_stderr(), 2000));
  }
  return p;
}

Process& Processes::worker(const std::string& name) {
  for (auto& [n, p] : workers)
    if (n == name) return *p;
  throw std::runtime_error("no worker " + name);
}

void Processes::start_simulator(const std::vector<std::string>& args) {
  std::vector<std::string> argv{sagaflow_binary(), "simulate"};
  argv.insert(argv.end(), args.begin(), args.end());
  simulator = std::make_unique<Process>(argv, env, false);
}

void Processes::drain_workers() {
  for (auto& [name, p] : workers) {
    if (p->wait_for(0ms)) continue;
    p->signal(SIGTERM);
    const auto t0 = Clock::now();
    const auto code = p->wait_for(10s);
    INFO("worker " << name << " after SIGTERM, stderr: " << tail(p->read_stderr(), 2000));
    CHECK(code.has_value());
    CHECK(code.value_or(-1) == 0);
    std::printf("worker %s drained in %.2f s\n", name.c_str(), since(t0));
  }
  if (simulator) {
    simulator->signal(SIGTERM);
    simulator->wait_for(10s);
  }
}

void Processes::kill_processes() noexcept {
  simulator.reset();
  workers.clear();
}

std::string Processes::diagnostics() {
  std::string d;
  std::string why;
  if (auto s = read_status(env, &why)) {
    d += "status: " + s->raw + "\n";
  } else {
    d += "status: " + why + "\n";
  }
  for (auto& [name, p] : workers) {
    const auto code = p->wait_for(0ms);
    d += "--- worker " + name +
         (code ? " exited " + std::to_string(*code) : std::string(" running")) + ", stderr:\n" +
         tail(p->read_stderr(), 2500) + "\n";
  }
  if (simulator) {
    const auto code = simulator->wait_for(0ms);
    d += "--- simulator" + (code ? " exited " + std::to_string(*code) : std::string(" running")) +
         ", stderr:\n" + tail(simulator->read_stderr(), 1500) + "\n";
  }
  return d;
}

std::vector<std::pair<std::string, std::string>> trace_bindings() {
  return {{"sagaflow.commands", "#"}, {"sagaflow.events", "#"}};
}

std::string queue_depths(testing::RabbitServer& rabbit) {
  try {
    return "queues: saga=" + std::to_string(rabbit.queue_depth("sagaflow.saga")) +
           " participants=" + std::to_string(rabbit.queue_depth("sagaflow.participants")) +
           " dead=" + std::to_string(rabbit.queue_depth("sagaflow.dead")) + "\n";
  } catch (const std::exception& e) {
    return std::string("queue depths: ") + e.what() + "\n";
  }
}

std::size_t count_outcomes(const std::vector<Observed>& trace, const Orders& orders) {
  std::size_t n = 0;
  for (const auto& [order_id, type] : outcome_types(trace)) n += orders.count(order_id);
  return n;
}

void fail_unfinished(Processes& c, const std::vector<Observed>& trace, const Orders& orders,
                     std::chrono::seconds timeout) {
  std::vector<std::string> missing;
  const auto outs = outcome_types(trace);
  for (const auto& [order_id, total] : orders)
    if (outs.count(order_id) == 0 && missing.size() < 10) missing.push_back(order_id);
  std::string show;
  if (!missing.empty()) {
    const auto r = run_cli({"saga", "show", missing.front()}, c.env, 20s);
    show = "saga show " + missing.front() + " (exit " + std::to_string(r.code) +
           "): " + tail(r.out, 1500) + tail(r.err, 500);
  }
  std::string list;
  for (const auto& m : missing) list += m + " ";
  FAIL("only " << count_outcomes(trace, orders) << " of " << orders.size()
               << " orders have an outcome after " << timeout.count() << " s; missing e.g. " << list
               << "\n"
               << show << "\n"
               << c.diagnostics());
}

void require_status_finished(const Env& env, const Orders& orders) {
  std::string last;
  const bool counted = wait_until(
      [&] {
        std::string why;
        auto s = read_status(env, &why);
        if (!s) {
          last = why;
          return false;
        }
        last = s->raw;
        return s->sagas["confirmed"] + s->sagas["failed"] == static_cast<long long>(orders.size());
      },
      30s, 500ms);
  INFO("last status: " << last);
  REQUIRE(counted);
}

Report require_invariants(const std::vector<Observed>& trace, const Orders& orders, Report* out) {
  const Report r = check_sagas(trace, orders);
  std::printf("%s\n", r.summary().c_str());
  std::string v;
  for (const auto& line : r.violations) v += "  " + line + "\n";
  INFO(r.summary() << "\n" << v);
  CHECK(r.violations.empty());
  CHECK(r.outcomes.count("confirmed") != 0);
  if (out != nullptr) *out = r;
  return r;
}

void check_status_counts(const Env& env, const Report& r, long long expect_dead) {
  std::string why;
  auto s = read_status(env, &why);
  INFO(why);
  REQUIRE(s.has_value());
  INFO("status: " << s->raw);
  long long failed = 0;
  for (const auto& [k, n] : r.outcomes)
    if (k != "confirmed") failed += n;
  auto at = [&](const char* key) { return s->sagas.count(key) ? s->sagas.at(key) : -1; };
  CHECK(at("running") == 0);
  CHECK(at("compensating") == 0);
  CHECK(at("stuck") == 0);
  const long long confirmed = r.outcomes.count("confirmed") != 0 ? r.outcomes.at("confirmed") : 0;
  CHECK(at("confirmed") == confirmed);
  CHECK(at("failed") == failed);
  CHECK(s->dead_letter_depth == expect_dead);
}

void check_limit(const std::vector<Observed>& trace, const Orders& orders, double rate,
                 double burst) {
  std::map<std::string, Clock::time_point> starts;
  for (const auto& m : trace) {
    if (m.exchange != "sagaflow.commands" || m.routing_key != "inventory.reserve") continue;
    auto e = parse_envelope(m.body);
    if (e && orders.count(e->order_id) != 0) starts.emplace(e->id, m.at);
  }
  REQUIRE(starts.size() == orders.size());
  std::vector<Clock::time_point> times;
  for (const auto& [id, at] : starts) times.push_back(at);
  std::sort(times.begin(), times.end());
  const double tolerance = 1 + rate * 1.0;  // see harness.hpp
  double worst = -1e9;
  std::string worst_window;
  for (std::size_t i = 0; i < times.size(); ++i) {
    for (std::size_t j = i; j < times.size(); ++j) {
      const double window = std::chrono::duration<double>(times[j] - times[i]).count();
      const double excess = static_cast<double>(j - i + 1) - (burst + rate * window);
      if (excess > worst) {
        worst = excess;
        worst_window = std::to_string(j - i + 1) + " starts in " + std::to_string(window) + " s";
      }
    }
  }
  const double span = std::chrono::duration<double>(times.back() - times.front()).count();
  std::printf("limited store: %zu starts over %.2f s (%.1f/s); worst window %s (excess %.2f)\n",
              times.size(), span, span > 0 ? static_cast<double>(times.size() - 1) / span : 0.0,
              worst_window.c_str(), worst);
  INFO("worst window: " << worst_window << ", excess over burst + rate x window: " << worst);
  CHECK(worst <= tolerance);
}

}  // namespace sagaflow::e2e
