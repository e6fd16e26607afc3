// Proves: the GCRA limit holds across several concurrent clients (own connections, one store):
// in the measured window, admitted <= burst + rate x window (the contract) and close to it
// (the limiter does not starve); the store's plan comes from sagaflow:store_plans, with the
// default plan for unknown stores and unknown plan names.
#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "loop.hpp"
#include "store/keyspace.hpp"
#include "store/rate_limiter.hpp"
#include "support/servers.hpp"

using namespace sagaflow;
using namespace sagaflow::store;
using namespace sagaflow::store::test;
using namespace std::chrono_literals;

namespace {

const std::vector<RatePlan> kDefaultPlans{
    {"free", 60, 60000, 100}, {"pro", 300, 60000, 500}, {"enterprise", 1000, 60000, 2000}};

struct Tally {
  std::int64_t admitted = 0;
  std::int64_t refused = 0;
  std::int64_t errors = 0;
  std::int64_t min_retry_ms = INT64_MAX;
  double window_s = 0;
};

// Four clients, each keeping 32 admissions in flight on one store for `window`.
Tally hammer(Loop& loop, testing::RedisServer& server, const RatePlan& plan,
             std::chrono::milliseconds window) {
  const StoreId store{fmt::format("store_{}_{}", plan.name, plan.rate)};
  server.command({"DEL", Keyspace::rate_key(store)});
  std::vector<std::unique_ptr<RedisClient>> clients;
  std::vector<std::unique_ptr<RateLimiter>> limiters;
  for (int i = 0; i < 4; ++i) {
    clients.push_back(connected_client(loop, client_options(server)));
    limiters.push_back(std::make_unique<RateLimiter>(*clients.back(), RateLimiterOptions{}));
  }
  Tally t;
  int in_flight = 0;
  const auto start = std::chrono::steady_clock::now();
  const auto end = start + window;
  std::function<void(RateLimiter&)> issue = [&](RateLimiter& rl) {
    ++in_flight;
    rl.admit_with(store, plan, [&](Result<Admission> r) {
      --in_flight;
      if (!r.ok()) {
        ++t.errors;
      } else if (r->allowed) {
        ++t.admitted;
      } else {
        ++t.refused;
        t.min_retry_ms = std::min(t.min_retry_ms, r->retry_after_ms);
      }
      if (std::chrono::steady_clock::now() < end) issue(rl);
    });
  };
  for (auto& rl : limiters) {
    for (int k = 0; k < 32; ++k) issue(*rl);
  }
  REQUIRE(loop.run_until([&] { return in_flight == 0; }, window + 5s));
  // Every admission happened between the first send and the last reply.
  t.window_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (auto& c : clients) c->stop();
  return t;
}

void check_plan(const RatePlan& plan, std::chrono::milliseconds window) {
  Loop loop;
  auto& server = testing::shared_redis();
  const Tally t = hammer(loop, server, plan, window);
  const double per_s =
      static_cast<double>(plan.rate) * 1000.0 / static_cast<double>(plan.period_ms);
  const double upper = static_cast<double>(plan.burst) + per_s * t.window_s;
  // Demand never stopped during the window, so at least the burst plus what the rate gave over
  // the window minus a generous 300 ms of start-up and scheduling slack, and a fifth for Redis
  // being descheduled on a loaded 2-core machine (under ASan, tokens it could not hand out
  // while stalled are gone: a bucket holds at most its burst). The upper bound is exact.
  const double lower =
      static_cast<double>(plan.burst) + std::floor(0.8 * per_s * (window.count() / 1000.0 - 0.3));
  INFO(fmt::format("plan {} admitted {} refused {} window {:.3f}s bound [{}, {:.1f}]", plan.name,
                   t.admitted, t.refused, t.window_s, lower, upper));
  CHECK(t.errors == 0);
  CHECK(static_cast<double>(t.admitted) <= upper);
  CHECK(static_cast<double>(t.admitted) >= lower);
  CHECK(t.refused > 0);
  CHECK(t.min_retry_ms >= 0);
}

}  // namespace

TEST_CASE("rate limit accuracy, plan free (60/min burst 100)", "[store][ratelimit]") {
  check_plan(kDefaultPlans[0], 2200ms);
}

TEST_CASE("rate limit accuracy, plan pro (300/min burst 500)", "[store][ratelimit]") {
  check_plan(kDefaultPlans[1], 2200ms);
}

TEST_CASE("rate limit accuracy, plan enterprise (1000/min burst 2000)", "[store][ratelimit]") {
  check_plan(kDefaultPlans[2], 2200ms);
}

TEST_CASE("rate limit accuracy when the rate dominates (scaled: 500/s burst 10)",
          "[store][ratelimit]") {
  check_plan(RatePlan{"scaled", 500, 1000, 10}, 2200ms);
}

TEST_CASE("a store's plan comes from sagaflow:store_plans", "[store][ratelimit]") {
  auto& server = testing::shared_redis();
  Loop loop;
  auto c = connected_client(loop, client_options(server));
  RateLimiterOptions opts;
  opts.plans = kDefaultPlans;
  opts.default_plan = "free";
  RateLimiter rl(*c, opts);
  server.command(
      {"HSET", std::string(kStorePlansKey), "store_pro", "pro", "store_odd", "platinum"});
  for (const char* s : {"store_pro", "store_free", "store_odd"}) {
    server.command({"DEL", Keyspace::rate_key(StoreId{std::string(s)})});
  }

  auto admitted_of = [&](const std::string& store, int n) {
    int admitted = 0;
    int done = 0;
    for (int i = 0; i < n; ++i) {
      rl.admit(StoreId{store}, [&](Result<Admission> r) {
        ++done;
        if (r.ok() && r->allowed) ++admitted;
      });
    }
    REQUIRE(loop.run_until([&] { return done == n; }));
    return admitted;
  };
  // A store on pro gets pro's burst, an unlisted store and an unknown plan get free's
  const int pro = admitted_of("store_pro", 700);
  CHECK(pro >= 500);
  CHECK(pro <= 502);
  const int free = admitted_of("store_free", 300);
  CHECK(free >= 100);
  CHECK(free <= 102);
  const int odd = admitted_of("store_odd", 300);
  CHECK(odd >= 100);
  CHECK(odd <= 102);
  CHECK(opts.plans.size() == 3);
  CHECK(rl.plan_named("platinum").name == "free");
  c->stop();
}

TEST_CASE("many starts at once: as many as that many single admissions; peek takes none",
          "[store][ratelimit]") {
  auto& server = testing::shared_redis();
  Loop loop;
  auto c = connected_client(loop, client_options(server));
  RateLimiterOptions opts;
  opts.plans = {RatePlan{"t", 10, 1000, 20}};  // 10/s, burst 20
  opts.default_plan = "t";
  RateLimiter rl(*c, opts);
  const StoreId store{std::string("store_batch")};
  server.command({"DEL", Keyspace::rate_key(store)});
  auto up_to = [&](std::int64_t n, bool peek) {
    auto r = loop.await<Admission>([&](auto cb) { rl.admit_up_to(store, n, peek, std::move(cb)); });
    REQUIRE(r.ok());
    return r.value();
  };
  // A fresh bucket has its burst: peeking shows it and takes nothing
  CHECK(up_to(50, true).granted == 20);
  CHECK(up_to(50, true).granted == 20);
  // Asking for fewer than are there takes exactly that many
  CHECK(up_to(5, false).granted == 5);
  // Asking for more takes what is left, then nothing (with a time to try again)
  CHECK(up_to(50, false).granted == 15);
  const Admission none = up_to(50, false);
  CHECK(none.granted == 0);
  CHECK_FALSE(none.allowed);
  CHECK(none.retry_after_ms > 0);
  CHECK(none.retry_after_ms <= 100);
  // Half a second later, the rate has added about 5 (never more than rate x time + 1)
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const Admission later = up_to(50, false);
  CHECK(later.granted >= 4);
  CHECK(later.granted <= 6);
  c->stop();
}

TEST_CASE("admit() calls of one loop turn: one script call per store, the first callers admitted",
          "[store][ratelimit]") {
  auto& server = testing::shared_redis();
  Loop loop;
  auto c = connected_client(loop, client_options(server));
  RateLimiterOptions opts;
  opts.plans = {RatePlan{"t", 1, 1000, 20}};  // 1/s, burst 20: no token comes back in the test
  opts.default_plan = "t";
  auto rl = std::make_unique<RateLimiter>(*c, opts);
  const StoreId busy{std::string("store_turn_busy")};
  const StoreId calm{std::string("store_turn_calm")};
  server.command({"DEL", Keyspace::rate_key(busy), Keyspace::rate_key(calm)});
  // The plan lookups first, so the count below is of admissions only
  REQUIRE(loop.await<GcraParams>([&](auto cb) { rl->plan_of(busy, std::move(cb)); }).ok());
  REQUIRE(loop.await<GcraParams>([&](auto cb) { rl->plan_of(calm, std::move(cb)); }).ok());
  const long evals_before = server.command_calls()["evalsha"];

  // 50 starts of a flooding store and 5 of another, interleaved, in one turn. Callbacks only
  // record (they run inside hiredis' reply handling); the checks come after.
  std::vector<int> busy_order;  // call index, in answer order
  std::vector<Result<Admission>> busy_results(50, make_error(Errc::internal, "not answered"));
  std::vector<Result<Admission>> calm_results;
  for (int i = 0; i < 50; ++i) {
    rl->admit(busy, [&, i](Result<Admission> r) {
      busy_results[static_cast<std::size_t>(i)] = std::move(r);
      busy_order.push_back(i);
    });
    if (i % 10 == 0) rl->admit(calm, [&](Result<Admission> r) { calm_results.push_back(r); });
  }
  REQUIRE(loop.run_until([&] { return busy_order.size() == 50 && calm_results.size() == 5; }));
  // One script call per store for the whole turn
  CHECK(server.command_calls()["evalsha"] - evals_before == 2);
  // The burst went to the first 20 callers in call order, each answered in that order; the
  // others were refused with a time to try again (about one emission interval)
  for (int i = 0; i < 50; ++i) {
    CHECK(busy_order[static_cast<std::size_t>(i)] == i);
    const auto& a = busy_results[static_cast<std::size_t>(i)];
    REQUIRE(a.ok());
    CHECK(a->allowed == (i < 20));
    CHECK(a->granted == (i < 20 ? 1 : 0));
    if (i >= 20) {
      CHECK(a->retry_after_ms > 0);
      CHECK(a->retry_after_ms <= 1000);
    }
  }
  // The other store has its own bucket: all five admitted despite the flood
  for (const auto& a : calm_results) {
    REQUIRE(a.ok());
    CHECK(a->allowed);
  }
  // The bucket holds exactly what the 20 took: nothing left now
  auto after =
      loop.await<Admission>([&](auto cb) { rl->admit_up_to(busy, 1, true, std::move(cb)); });
  REQUIRE(after.ok());
  CHECK(after->granted == 0);

  // A turn in which nothing is granted: every caller refused with the script's wait
  std::vector<Result<Admission>> refused;
  for (int i = 0; i < 3; ++i) rl->admit(busy, [&](Result<Admission> r) { refused.push_back(r); });
  REQUIRE(loop.run_until([&] { return refused.size() == 3; }));
  for (const auto& a : refused) {
    REQUIRE(a.ok());
    CHECK_FALSE(a->allowed);
    CHECK(a->retry_after_ms > 0);
    CHECK(a->retry_after_ms <= 1000);
  }

  // A store's callers that come while its call is out wait for its answer, then go together:
  // Redis paused holds the first call; two later turns' callers make one call, not two.
  const StoreId held{std::string("store_turn_held")};
  server.command({"DEL", Keyspace::rate_key(held)});
  REQUIRE(loop.await<GcraParams>([&](auto cb) { rl->plan_of(held, std::move(cb)); }).ok());
  long evals_held = server.command_calls()["evalsha"];
  std::vector<int> held_order;
  std::vector<bool> held_allowed;
  auto held_admit = [&](int i) {
    rl->admit(held, [&, i](Result<Admission> r) {
      held_order.push_back(i);
      held_allowed.push_back(r.ok() && r->allowed);
    });
  };
  auto call_out = [&] { return c->stats().in_flight >= 1; };
  REQUIRE(server.command({"CLIENT", "PAUSE", "1000"}) == "OK");
  for (int i = 0; i < 3; ++i) held_admit(i);
  REQUIRE(loop.run_until(call_out));  // the first call is out, held by the pause
  for (int i = 3; i < 5; ++i) held_admit(i);
  loop.run_for(std::chrono::milliseconds(20));  // another turn: these wait behind it
  for (int i = 5; i < 7; ++i) held_admit(i);
  REQUIRE(held_order.empty());  // still paused: nothing answered yet
  REQUIRE(loop.run_until([&] { return held_order.size() == 7; }));
  CHECK(server.command_calls()["evalsha"] - evals_held == 2);
  CHECK(held_order == std::vector<int>{0, 1, 2, 3, 4, 5, 6});  // in call order
  CHECK(held_allowed == std::vector<bool>(7, true));           // 7 of the burst of 20

  // Once a caller of the call out is refused, those waiting behind it are refused with it (no
  // later start goes ahead of an earlier one), without a call of their own. A plan of burst 2
  // and one token a minute: none comes back during the test.
  RateLimiterOptions slow_opts;
  slow_opts.plans = {RatePlan{"slow", 1, 60000, 2}};
  slow_opts.default_plan = "slow";
  RateLimiter slow(*c, slow_opts);
  const StoreId scarce{std::string("store_turn_scarce")};
  server.command({"DEL", Keyspace::rate_key(scarce)});
  REQUIRE(loop.await<GcraParams>([&](auto cb) { slow.plan_of(scarce, std::move(cb)); }).ok());
  evals_held = server.command_calls()["evalsha"];
  held_order.clear();
  held_allowed.clear();
  auto scarce_admit = [&](int i) {
    slow.admit(scarce, [&, i](Result<Admission> r) {
      held_order.push_back(i);
      held_allowed.push_back(r.ok() && r->allowed);
    });
  };
  REQUIRE(server.command({"CLIENT", "PAUSE", "1000"}) == "OK");
  for (int i = 0; i < 3; ++i) scarce_admit(i);
  REQUIRE(loop.run_until(call_out));
  for (int i = 3; i < 5; ++i) scarce_admit(i);
  REQUIRE(held_order.empty());
  REQUIRE(loop.run_until([&] { return held_order.size() == 5; }));
  CHECK(server.command_calls()["evalsha"] - evals_held == 1);
  CHECK(held_order == std::vector<int>{0, 1, 2, 3, 4});
  CHECK(held_allowed == std::vector<bool>{true, true, false, false, false});

  // Destroyed while a store's plan lookup is out: its caller is answered, and the lookup's
  // late answer touches nothing of the gone limiter (AddressSanitizer would see it)
  std::optional<Result<Admission>> orphan;
  {
    RateLimiter doomed(*c, opts);
    REQUIRE(server.command({"CLIENT", "PAUSE", "300"}) == "OK");
    doomed.admit(StoreId(std::string("store_turn_uncached")),
                 [&](Result<Admission> r) { orphan = std::move(r); });
    REQUIRE(loop.run_until(call_out));  // the plan's HGET is out, held by the pause
  }
  REQUIRE(orphan.has_value());
  CHECK_FALSE(orphan->ok());
  REQUIRE(loop.run_until([&] { return c->stats().in_flight == 0; }));

  // An admission made from an answer goes into the next turn (and is answered)
  bool again = false;
  rl->admit(calm, [&](Result<Admission> r) {
    if (r.ok()) rl->admit(calm, [&](Result<Admission>) { again = true; });
  });
  REQUIRE(loop.run_until([&] { return again; }));

  // Redis gone: every caller of the turn gets the error, none is left waiting
  c->stop();
  std::vector<Result<Admission>> failed;
  for (int i = 0; i < 4; ++i) rl->admit(busy, [&](Result<Admission> r) { failed.push_back(r); });
  REQUIRE(loop.run_until([&] { return failed.size() == 4; }));
  for (const auto& a : failed) CHECK_FALSE(a.ok());

  // Destroyed with calls of the turn still waiting: they are answered too
  std::vector<Result<Admission>> dropped;
  for (int i = 0; i < 2; ++i) rl->admit(calm, [&](Result<Admission> r) { dropped.push_back(r); });
  rl.reset();
  REQUIRE(dropped.size() == 2);
  for (const auto& a : dropped) CHECK_FALSE(a.ok());
}
