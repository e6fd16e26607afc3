// What every end-to-end saga test does, on either broker: the sagaflow processes of one test
// (workers and the simulator), waiting until every order has its outcome, and the checks each
// run ends with. Observers (e2e::Observer on RabbitMQ, e2e::KafkaObserver) only need
// snapshot(); clusters derive from Processes and may add broker facts to diagnostics().
#pragma once

#include <catch2/catch.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "e2e.hpp"
#include "support/servers.hpp"

namespace sagaflow::e2e {

class Processes {
 public:
  Env env;
  std::vector<std::pair<std::string, std::unique_ptr<testing::Process>>> workers;
  std::unique_ptr<testing::Process> simulator;

  virtual ~Processes() = default;

  testing::Process& start_worker(const std::string& name);
  // A worker with its metrics listener on a free port, once its /readyz answers 200 (broker
  // and Redis connected; REQUIREd within 30 s): for checks that time what it does from the
  // first message on.
  testing::Process& start_ready_worker(const std::string& name);
  testing::Process& worker(const std::string& name);
  void start_simulator(const std::vector<std::string>& args);
  // SIGTERM drains: every worker still running exits 0 within 10 s (CHECKed).
  void drain_workers();
  // Kills what is left; a derived cluster calls it before its servers stop.
  void kill_processes() noexcept;
  // Everything a failing test wants to see: status, each process's exit and stderr tail.
  virtual std::string diagnostics();
};

std::size_t count_outcomes(const std::vector<Observed>& trace, const Orders& orders);

// RabbitMQ: the observer's bindings (every command, reply and outcome), and the queue depths a
// failing test shows ("queues: saga=n participants=n dead=n", or why they could not be read).
std::vector<std::pair<std::string, std::string>> trace_bindings();
std::string queue_depths(testing::RabbitServer& rabbit);

template <class Obs>
std::size_t count_outcomes(const Obs& obs, const Orders& orders) {
  return count_outcomes(obs.snapshot(), orders);
}

// Fails the test, with the diagnostics, the missing orders and `saga show` of one of them.
void fail_unfinished(Processes& c, const std::vector<Observed>& trace, const Orders& orders,
                     std::chrono::seconds timeout);
// `sagaflow status` counts every order as confirmed or failed (REQUIREd, within 30 s).
void require_status_finished(const Env& env, const Orders& orders);

// Waits until the observer saw an outcome for every order and `sagaflow status` counts them
// all as confirmed or failed. Fails the test with diagnostics otherwise.
template <class Obs>
void wait_finished(Processes& c, const Obs& obs, const Orders& orders,
                   std::chrono::seconds timeout) {
  const auto t0 = Clock::now();
  if (!wait_until([&] { return count_outcomes(obs, orders) >= orders.size(); }, timeout,
                  std::chrono::milliseconds(250))) {
    fail_unfinished(c, obs.snapshot(), orders, timeout);
  }
  std::printf("all %zu outcomes seen after %.1f s\n", orders.size(), since(t0));
  require_status_finished(c.env, orders);
}

// The invariants of CONTRACT.md sections 2-4 over the trace (CHECKed), and at least one saga
// confirmed. Returns the report (also into *out when given).
Report require_invariants(const std::vector<Observed>& trace, const Orders& orders,
                          Report* out = nullptr);

// After the run: nothing left running, compensating or stuck; status agrees with the trace
// and counts `expect_dead` dead letters.
void check_status_counts(const Env& env, const Report& r, long long expect_dead);

// Saga starts (inventory.reserve, first arrival of each id) of the given orders: in every
// window [t_i, t_j], j - i + 1 starts <= burst + rate * (t_j - t_i), with a tolerance of one
// token and 1 s of observation jitter (CHECKed; CONTRACT.md section 5). Arrival times are
// taken at the observer, after the worker's publish and the broker's routing, so a stall of
// any process on the way bunches starts: on loaded 2-core CI machines one stall bunched 46
// starts into 33 ms (31.0003 over the 31 that 200 ms allowed at 150/s), another 51.3 over the
// 46 that 300 ms allowed, and with two e2e suites side by side 360 starts of a 20/s store came
// 11.17 over the 11 that 500 ms allowed (a 0.51 s skew). (The envelope's own time has whole
// seconds only. The bound itself is exact in Redis and checked to the token, two limiters
// sharing one bucket included, by the rate limiter's tests; this check catches what a wrong
// admission path would do, e.g. two workers each granting the plan: an excess of the rate
// times the window, 320 starts over 16 s at 20/s.)
void check_limit(const std::vector<Observed>& trace, const Orders& orders, double rate,
                 double burst);

}  // namespace sagaflow::e2e
