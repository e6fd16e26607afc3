#pragma once
// Per-store start admission: GCRA in one Lua script (scripts/gcra.lua, math in gcra.hpp) on
// the key sagaflow:rl:{<store_id>}, timed by Redis' TIME. Because every client runs the same
// script on the same key with the same clock, the plan's bound holds across any number of
// workers: in any window W, admitted <= burst + rate x W / period.
//
// A store's plan is the value of field <store_id> in the hash sagaflow:store_plans (a plan
// name of SAGAFLOW_PLANS); a store not in it, or naming an unknown plan, has the default plan.
// The mapping is cached in this process for plan_refresh_ms (stale entries are used while one
// refresh is in flight), so the admission script touches one key and stays cluster-safe; a
// plan change takes effect within plan_refresh_ms.
//
// admit() calls for one store in one loop turn share one script call (as admit_up_to(n)):
// the first k callers in call order are admitted, the others refused. A store has at most one
// such call out: callers that come while it is out wait for its answer and then go together,
// so under load a store's calls grow with the load instead of staying at what one turn held.
// On a Redis Cluster, where a start's admission cannot run inside its saga's script, that is
// at most one admission call per store per round trip instead of one per start.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/clock.hpp"
#include "core/config.hpp"
#include "core/ids.hpp"
#include "core/result.hpp"
#include "store/gcra.hpp"
#include "store/redis_client.hpp"

struct uv_timer_s;

namespace sagaflow::store {

struct Admission {
  bool allowed = false;
  std::int64_t granted = 0;         // starts admitted (admit_up_to: 0..n; admit: 0 or 1)
  std::int64_t retry_after_ms = 0;  // when refused: earliest time worth trying again
};

struct RateLimiterOptions {
  std::vector<RatePlan> plans;        // SAGAFLOW_PLANS; empty: free=60/min:100
  std::string default_plan = "free";  // SAGAFLOW_DEFAULT_PLAN
  Millis plan_refresh_ms = 5000;      // store -> plan cache lifetime
  std::size_t max_cached_stores = 100000;
  Millis timeout_ms = 0;  // per call; 0: the client's default
};

class RateLimiter final {
 public:
  using AdmitCallback = std::function<void(Result<Admission>)>;

  RateLimiter(RedisClient& redis, RateLimiterOptions options);
  ~RateLimiter();
  RateLimiter(const RateLimiter&) = delete;
  RateLimiter& operator=(const RateLimiter&) = delete;

  // One saga start for this store, under its plan; answered together with the store's other
  // admit() calls of the turn (one script call for them all), or, while the store's call is
  // out, with the callers that came meanwhile once it answered. In call order: once a caller
  // is refused, every caller after it that is waiting is refused too.
  void admit(const StoreId& store, AdmitCallback done);
  // Up to n starts at once (as n admissions in a row would grant); with peek, only counts
  // what would be granted now and takes nothing.
  void admit_up_to(const StoreId& store, std::int64_t n, bool peek, AdmitCallback done);
  // One start under an explicit plan (no lookup): for tests and tools.
  void admit_with(const StoreId& store, const RatePlan& plan, AdmitCallback done);
  // The store's plan as GCRA parameters, for an admission made inside another script on the
  // same key (apply.lua's starts, on one Redis). From the cache: usually on the caller's stack.
  void plan_of(const StoreId& store, std::function<void(Result<GcraParams>)> done);
  // True where a start's admission can run in its saga's own script (one Redis; on a cluster
  // the store's bucket is in another slot).
  bool admits_in_apply() const noexcept { return !redis_.cluster(); }

  // The plan used for a plan name (the default plan for an unknown or empty name).
  const RatePlan& plan_named(std::string_view name) const;

 private:
  using PlanCallback = std::function<void(Result<GcraParams>)>;
  struct CacheEntry {
    bool known = false;  // plan holds a looked-up value
    std::string plan;
    std::chrono::steady_clock::time_point fetched;
    bool fetching = false;
    std::vector<PlanCallback> waiters;
  };

  void fetch_plan(const std::string& store);
  void run(const StoreId& store, const GcraParams& g, std::int64_t n, bool peek,
           AdmitCallback done);
  void evict_if_full();
  static void on_turn_end(uv_timer_s* timer);
  void admit_turn();

  // A store's admit() callers: waiting to go at a turn's end, or behind the store's call out.
  struct StoreTurn {
    StoreId store;
    std::vector<AdmitCallback> waiting;  // in call order, not sent yet
    bool in_flight = false;              // a call for this store is out
    bool due = false;                    // listed in due_: goes at this turn's end
  };
  void schedule(const std::string& key, StoreTurn& t);
  void send(const std::string& key, StoreTurn& t);
  std::vector<AdmitCallback> answered(const std::string& key, bool take_waiting);

  RedisClient& redis_;
  RateLimiterOptions options_;
  std::size_t default_index_ = 0;
  ScriptRef script_;
  std::unordered_map<std::string, CacheEntry> cache_;
  // Stores with admit() callers waiting or a call out; due_: those that go at this turn's end,
  // in the order of their first call.
  std::unordered_map<std::string, StoreTurn> turns_;
  std::vector<std::string> due_;
  uv_timer_s* turn_timer_ = nullptr;                            // created at the first admit()
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // answers after destruction
};

}  // namespace sagaflow::store
